//! Every vector of `fixtures/vectors.json` (and of `DYNKEY_FIXTURES`), replayed through
//! `dynkey::control()` on the kernel-like sites compiled into this binary.
//! After each vector, the flags are read from the registry *and* each
//! compiled site is run: its printed/not printed must agree with `p`.

use dynkey::{Error, Flags, control};
use serde_json::{Value, json};

use crate::kernel_like::{self, SITES};
use crate::{child, last_json, role};

#[test]
fn every_vector_passes_on_compiled_sites() {
    let out = child("vectors::child_replay", &[("DYNKEY_CHILD", "vectors")]);
    let j = last_json(&out);
    assert!(
        j["vectors"].as_u64().unwrap() >= 100,
        "every vector ran: {j}"
    );
    assert_eq!(
        j["failures"],
        json!([]),
        "{}",
        serde_json::to_string_pretty(&j["failures"]).unwrap()
    );
}

/// Status code the HTTP API gives for an error (the HTTP contract, proto/openapi.yaml).
fn status_of(e: &Error) -> u16 {
    match e {
        Error::Query(errs) if errs.iter().any(|e| e.category() == "E_TOO_BIG") => 413,
        Error::UnknownParam(_) | Error::UnknownCall(_) => 404,
        Error::Text(_) => 500,
        _ => 400,
    }
}

fn reset() {
    let c = control();
    c.exec("=_").unwrap();
    for class in kernel_like::classes() {
        c.exec(format!("class {class} =_")).unwrap();
    }
    c.set_param("drm.debug", "0").unwrap();
    c.set_param("lvlmod.verbose", "0").unwrap();
}

/// Runs one vector; returns what went wrong, if anything.
fn replay(v: &Value) -> Vec<String> {
    let c = control();
    reset();
    let mut problems = Vec::new();
    let steps = v["steps"].as_array().unwrap();
    let mut last_status = 200;
    let mut last_error: Option<Error> = None;
    let mut last_queries = None;
    for (i, step) in steps.iter().enumerate() {
        let result = if let Some(q) = step["query"].as_str() {
            c.exec(q).map(|r| last_queries = Some(r.queries))
        } else {
            c.set_param(
                step["param"].as_str().unwrap(),
                step["value"].as_str().unwrap(),
            )
            .map(drop)
        };
        (last_status, last_error) = match result {
            Ok(()) => (200, None),
            Err(e) => (status_of(&e), Some(e)),
        };
        let want = step["status"].as_u64().unwrap_or(200) as u16;
        if i + 1 < steps.len() && last_status != want {
            problems.push(format!(
                "step {i}: status {last_status}, want {want}: {last_error:?}"
            ));
        }
    }
    let expect = &v["expect"];
    if last_status as u64 != expect["status"].as_u64().unwrap() {
        problems.push(format!(
            "status {last_status}, want {}: {last_error:?}",
            expect["status"]
        ));
    }
    let categories: Vec<(usize, &str)> = match &last_error {
        Some(Error::Query(errs)) => errs.iter().map(|e| (e.query, e.category())).collect(),
        Some(e) => vec![(0, e.category())],
        None => vec![],
    };
    if let Some(cat) = expect["category"].as_str()
        && !categories.iter().any(|(_, c)| *c == cat)
    {
        problems.push(format!("category {cat} missing from {categories:?}"));
    }
    if let Some(errs) = expect["errors"].as_array() {
        let want: Vec<(usize, &str)> = errs
            .iter()
            .map(|e| {
                (
                    e["query"].as_u64().unwrap() as usize,
                    e["category"].as_str().unwrap(),
                )
            })
            .collect();
        if want != categories {
            problems.push(format!("errors {categories:?}, want {want:?}"));
        }
    }
    if let Some(q) = expect["queries"].as_u64()
        && last_queries != Some(q as usize)
    {
        problems.push(format!("queries {last_queries:?}, want {q}"));
    }
    let rows = c.sites();
    for n in 1..=SITES {
        let got = kernel_like::row_of(&rows, n).flags;
        let want: Flags = expect["flags"][n.to_string()]
            .as_str()
            .unwrap_or("_")
            .parse()
            .unwrap();
        if got != want {
            problems.push(format!("site {n}: flags {got}, want {want}"));
        }
        let printed = kernel_like::run(n);
        if printed != got.contains(Flags::P) {
            problems.push(format!(
                "site {n}: the compiled site printed={printed} but its flags are {got}"
            ));
        }
    }
    if let Some(params) = expect["param"].as_object() {
        for (p, want) in params {
            let got = c.param(p);
            if got.as_deref() != want.as_str() {
                problems.push(format!("param {p} reads {got:?}, want {want}"));
            }
        }
    }
    let listing = c.listing_string();
    if let Some(h) = expect["header"].as_str()
        && listing.lines().next() != Some(h)
    {
        problems.push(format!("header {:?}", listing.lines().next()));
    }
    if let Some(rows) = expect["rows"].as_object() {
        for (n, want) in rows {
            if !listing.lines().any(|l| l == want.as_str().unwrap()) {
                problems.push(format!("row {n} {want} not in the listing"));
            }
        }
    }
    problems
}

/// Child: replays every vector, prints a JSON summary.
#[test]
#[ignore = "run by every_vector_passes_on_compiled_sites in a child process"]
fn child_replay() {
    if role().as_deref() != Some("vectors") {
        return;
    }
    // Enabled fixture sites print; keep the test output readable.
    struct Quiet;
    impl dynkey::sink::Sink for Quiet {
        fn emit(&self, _: &dynkey::sink::Record<'_>) {}
    }
    dynkey::sink::set_sink(Quiet);
    let mut failures = Vec::new();
    let mut count = 0;
    for file in crate::vector_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let vectors: Vec<serde_json::Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        count += vectors.len();
        for v in &vectors {
            let problems = replay(v);
            if !problems.is_empty() {
                failures.push(json!({ "file": file.display().to_string(), "id": v["id"], "problems": problems }));
            }
        }
    }
    println!("{}", json!({ "vectors": count, "failures": failures }));
}
