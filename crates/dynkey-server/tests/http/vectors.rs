//! The query vectors over HTTP, each against a freshly started
//! `dynkeyd --sites fixtures/kernel-like.json` (as the fixtures' README
//! says: every vector starts from a fresh service).

use serde_json::Value;

use crate::{Daemon, fixtures};

fn flags_of(listing: &str) -> Vec<String> {
    listing
        .lines()
        .skip(1)
        .map(|row| {
            row.split(" =")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn replay(v: &Value) -> Vec<String> {
    let table = fixtures().join("kernel-like.json");
    let d = Daemon::start(&["--sites", table.to_str().unwrap()], &[]);
    let mut problems = Vec::new();
    let steps = v["steps"].as_array().unwrap();
    let mut last = None;
    for (i, step) in steps.iter().enumerate() {
        let reply = match step["query"].as_str() {
            Some(q) => d.request("POST", "/control", q.as_bytes()),
            None => d.request(
                "PUT",
                &format!("/params/{}", step["param"].as_str().unwrap()),
                step["value"].as_str().unwrap().as_bytes(),
            ),
        };
        if reply.status == 200 && step.get("query").is_some() {
            let j = reply.json();
            for f in ["queries", "matched", "changed", "rendezvous"] {
                if !j[f].is_u64() {
                    problems.push(format!("step {i}: reply lacks integer {f}: {j}"));
                }
            }
        }
        let want = step["status"].as_u64().unwrap_or(200);
        if i + 1 < steps.len() && reply.status as u64 != want {
            problems.push(format!(
                "step {i}: status {} want {want}: {}",
                reply.status,
                reply.text()
            ));
        }
        last = Some(reply);
    }
    let expect = &v["expect"];
    let status = last.as_ref().map_or(200, |r| r.status) as u64;
    if status != expect["status"].as_u64().unwrap() {
        problems.push(format!("status {status}, want {}", expect["status"]));
    }
    if let Some(r) = &last
        && r.status != 200
    {
        let errs: Vec<(u64, String)> = r.json()["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["query"].as_u64().unwrap(),
                    e["category"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        if let Some(cat) = expect["category"].as_str()
            && !errs.iter().any(|(_, c)| c == cat)
        {
            problems.push(format!("category {cat} not in {errs:?}"));
        }
        if let Some(want) = expect["errors"].as_array() {
            let want: Vec<(u64, String)> = want
                .iter()
                .map(|e| {
                    (
                        e["query"].as_u64().unwrap(),
                        e["category"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            if want != errs {
                problems.push(format!("errors {errs:?}, want {want:?}"));
            }
        }
    }
    if let (Some(q), Some(r)) = (expect["queries"].as_u64(), &last)
        && r.status == 200
        && r.json()["queries"].as_u64() != Some(q)
    {
        problems.push(format!("queries {}, want {q}", r.json()["queries"]));
    }
    let listing = d.request("GET", "/control", b"").text();
    let flags = flags_of(&listing);
    if flags.len() != 17 {
        problems.push(format!("{} rows, want 17", flags.len()));
    }
    for (n, got) in flags.iter().enumerate() {
        let want = expect["flags"][(n + 1).to_string()].as_str().unwrap_or("_");
        if got != want {
            problems.push(format!("site {}: ={got}, want ={want}", n + 1));
        }
    }
    if let Some(params) = expect["param"].as_object() {
        for (p, want) in params {
            let got = d.request("GET", &format!("/params/{p}"), b"").text();
            if got != want.as_str().unwrap() {
                problems.push(format!("param {p} reads {got:?}, want {want}"));
            }
        }
    }
    if let Some(h) = expect["header"].as_str()
        && listing.lines().next() != Some(h)
    {
        problems.push("header differs".into());
    }
    if let Some(rows) = expect["rows"].as_object() {
        for (n, want) in rows {
            let n: usize = n.parse().unwrap();
            if listing.lines().nth(n) != want.as_str() {
                problems.push(format!(
                    "row {n}: {:?}, want {want}",
                    listing.lines().nth(n)
                ));
            }
        }
    }
    problems
}

#[test]
fn every_vector_over_http() {
    let mut vectors: Vec<Value> = Vec::new();
    for file in crate::vector_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let more: Vec<Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        vectors.extend(more);
    }
    let failures: Vec<String> = vectors
        .iter()
        .filter_map(|v| {
            let p = replay(v);
            (!p.is_empty()).then(|| format!("{}: {}", v["id"], p.join("; ")))
        })
        .collect();
    assert!(vectors.len() >= 100, "{} vectors", vectors.len());
    assert!(
        failures.is_empty(),
        "{} of {} vectors failed:\n{}",
        failures.len(),
        vectors.len(),
        failures.join("\n")
    );
}
