//! The project's performance targets, each checked against the measured
//! figures: met, not met (with the gap), or not measured here.

use super::Inputs;

/// One target's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The target, as the project states it.
    pub target: String,
    /// What was measured (ratios, counts).
    pub measured: String,
    /// `Some(true)` met, `Some(false)` not met, `None` not measured.
    pub met: Option<bool>,
}

impl Verdict {
    /// The verdict cell.
    pub fn cell(&self) -> &'static str {
        match self.met {
            Some(true) => "**met**",
            Some(false) => "**not met**",
            None => "not measured here",
        }
    }
}

fn v(target: &str, measured: String, met: Option<bool>) -> Verdict {
    Verdict {
        target: target.into(),
        measured,
        met,
    }
}

const MISSING: &str = "no result (run the command above)";

/// Every target.
pub fn evaluate(i: &Inputs) -> Vec<Verdict> {
    let c = &i.crit;
    let mut out = Vec::new();

    // 1. Disabled inline site across 1,000 distinct sites.
    let sk = c.ratio("sk_read_disabled_1000", "dynkey_inline", "static_keys");
    out.push(match sk {
        Some(r) => v(
            "disabled inline site, 1,000 distinct sites: within 1.5x of `static-keys`",
            format!("dynkey / static-keys = {r:.2}x"),
            Some(r <= 1.5),
        ),
        None => v(
            "disabled inline site, 1,000 distinct sites: within 1.5x of `static-keys`",
            MISSING.into(),
            None,
        ),
    });
    for (id, what) in [
        (
            "tracing_callsite_never",
            "tracing's disabled callsite (interest cached never)",
        ),
        ("tracing", "tracing `debug!` under a global INFO level"),
        (
            "dynkey_atomic",
            "a per-site atomic (dynkey's atomic kind, one key per line)",
        ),
        (
            "atomic_bool_per_line",
            "a per-site `AtomicBool`, one per line",
        ),
        ("atomic_bool", "a per-site `AtomicBool`, packed 64 per line"),
    ] {
        let target =
            format!("disabled inline site, 1,000 distinct sites: at least 10x cheaper than {what}");
        out.push(match c.ratio("read_disabled_1000", id, "dynkey_inline") {
            Some(r) => v(
                &target,
                format!(
                    "{r:.1}x cheaper{}",
                    if r < 10.0 {
                        format!(" (short by {:.1}x)", 10.0 / r)
                    } else {
                        String::new()
                    }
                ),
                Some(r >= 10.0),
            ),
            None => v(&target, MISSING.into(), None),
        });
    }

    // 2. Static calls.
    for (what, id, base) in [
        (
            "link-time stub within 1.2x of a direct call",
            "dynkey_link_call",
            "direct",
        ),
        (
            "run-time trampoline within 1.2x of a call through a fn pointer",
            "dynkey_runtime_call",
            "fn_pointer",
        ),
    ] {
        out.push(match c.ratio("call_hot", id, base) {
            Some(r) => v(what, format!("{r:.2}x (hot)"), Some(r <= 1.2)),
            None => v(what, MISSING.into(), None),
        });
    }
    let what = "run-time trampoline far cheaper than a fn pointer when the pointer's line is cold";
    out.push(
        match c.ratio("call_cold", "fn_pointer", "dynkey_runtime_call") {
            Some(r) => v(
                what,
                format!("fn pointer / trampoline = {r:.2}x (cold); counted as met from 2x"),
                Some(r >= 2.0),
            ),
            None => v(what, MISSING.into(), None),
        },
    );

    // 3. The seed table.
    let what = "`+p` then `-p` over 8,077 sites: 2 rendezvous, each request under 1 ms";
    if i.seeds.is_empty() {
        out.push(v(what, MISSING.into(), None));
    }
    for s in &i.seeds {
        let Some(d) = s["modes"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == "default"))
        else {
            continue;
        };
        let rendezvous = d["rendezvous"].as_u64().unwrap_or(0);
        let times: Vec<f64> = d["request_us"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_f64())
            .collect();
        let slowest = times.iter().copied().fold(0.0, f64::max);
        out.push(v(
            &format!(
                "{what} ({} sites, {} layout)",
                s["kind"].as_str().unwrap_or("?"),
                s["layout"].as_str().unwrap_or("?")
            ),
            format!(
                "{rendezvous} rendezvous; requests {} µs{}",
                times
                    .iter()
                    .map(|t| format!("{t:.0}"))
                    .collect::<Vec<_>>()
                    .join(" and "),
                if slowest >= 1000.0 {
                    format!(" (over by {:.1}x)", slowest / 1000.0)
                } else {
                    String::new()
                }
            ),
            Some(rendezvous == 2 && slowest < 1000.0),
        ));
    }

    // 4. Commit scaling.
    let what = "commit cost linear in changed sites, one rendezvous, 1 to 100,000 sites";
    let rows = i
        .counts
        .get("commit_scaling")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let one = !rows.is_empty()
        && rows
            .iter()
            .all(|r| r["rendezvous_per_commit"].as_f64() == Some(1.0));
    let t = |n: &str| c.get("commit_trampoline", n).map(|e| e.median);
    out.push(match (t("1"), t("1000"), t("100000")) {
        (Some(t1), Some(t3), Some(t5)) => {
            let (early, late) = ((t3 - t1) / 999.0, (t5 - t3) / 99_000.0);
            let linear = late <= 2.0 * early && early <= 2.0 * late;
            v(
                what,
                format!(
                    "rendezvous per commit: {}; marginal cost per trampoline {early:.0} ns (1 to 1,000) and {late:.0} ns (1,000 to 100,000); counted linear within 2x",
                    if one { "1 at every N" } else { "NOT 1 everywhere" }
                ),
                Some(one && linear),
            )
        }
        _ => v(what, MISSING.into(), None),
    });

    // 5. The server.
    let what = "dynkeyd: 20,000 small queries/s on 2 cores, p99 under 2 ms";
    let rows = i
        .load
        .as_ref()
        .and_then(|l| l["rows"].as_array().cloned())
        .unwrap_or_default();
    let num = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    out.push(if rows.is_empty() {
        v(
            what,
            "not run (`bash benches/load/run.sh --save`)".into(),
            None,
        )
    } else {
        let best = rows
            .iter()
            .filter(|r| num(r, "p99_us") < 2000.0)
            .max_by(|a, b| num(a, "rps").total_cmp(&num(b, "rps")))
            .unwrap_or(&rows[0]);
        let (rps, p99, conns) = (
            num(best, "rps"),
            num(best, "p99_us"),
            num(best, "connections"),
        );
        v(
            what,
            format!(
                "{rps:.0} queries/s with p99 {:.2} ms at {conns} connections, demo workers running",
                p99 / 1e3
            ),
            Some(rps >= 20_000.0 && p99 < 2000.0),
        )
    });
    batching(i, &mut out);
    fleet(i, &mut out);
    out
}

/// 6. Batching, with and without `--state-dir` (`benches/load/durable.sh`).
fn batching(i: &Inputs, out: &mut Vec<Verdict>) {
    const RATIO: &str =
        "POST /control at least 60% of GET /healthz in the same run, 16 connections";
    const RENDEZVOUS: &str = "fewer than 0.2 rendezvous per POST /control at 16 connections";
    const DURABLE: &str = "with `--state-dir`: at least 10,000 mutating requests/s, p99 under 5 ms";
    let rows = i
        .durable
        .as_ref()
        .and_then(|d| d["rows"].as_array().cloned())
        .unwrap_or_default();
    let row = |name: &str| rows.iter().find(|r| r["row"] == name);
    let num = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let missing = || "not run (`bash benches/load/durable.sh --save`)".to_string();
    let (healthz, plain, durable) = (
        row("GET /healthz"),
        row("POST /control"),
        row("POST /control --state-dir"),
    );
    out.push(match (healthz, plain) {
        (Some(h), Some(p)) => {
            let r = num(p, "rps") / num(h, "rps");
            v(
                RATIO,
                format!(
                    "{:.0}% ({:.0} of {:.0} requests/s)",
                    r * 100.0,
                    num(p, "rps"),
                    num(h, "rps")
                ),
                Some(r >= 0.6),
            )
        }
        _ => v(RATIO, missing(), None),
    });
    out.push(match plain {
        Some(p) => {
            let r = num(p, "rendezvous_per_request");
            v(
                RENDEZVOUS,
                format!("{r:.3} (mean batch {:.1} requests)", num(p, "mean_batch")),
                Some(r < 0.2),
            )
        }
        None => v(RENDEZVOUS, missing(), None),
    });
    out.push(match durable {
        Some(d) => {
            let (rps, p99) = (num(d, "rps"), num(d, "p99_us"));
            v(
                DURABLE,
                format!("{rps:.0} requests/s, p99 {:.2} ms", p99 / 1e3),
                Some(rps >= 10_000.0 && p99 < 5_000.0),
            )
        }
        None => v(DURABLE, missing(), None),
    });
}

/// 7. Fleet convergence (the `dynkey-fleet` converge bench).
fn fleet(i: &Inputs, out: &mut Vec<Verdict>) {
    const P99: &str =
        "fleet: `dynkeyctl apply` to every instance applied, p99 under 250 ms at 50 instances";
    const ONE: &str = "fleet: one commit per instance per apply";
    let rounds = i
        .fleet
        .as_ref()
        .and_then(|f| f["rounds"].as_array().cloned())
        .unwrap_or_default();
    let num = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let missing = || "not run (the converge bench with `--save`)".to_string();
    out.push(
        match rounds.iter().find(|r| r["instances"].as_u64() == Some(50)) {
            Some(r) => {
                let p99 = num(r, "p99_ms");
                v(
                    P99,
                    format!("p99 {p99:.1} ms over {} applies", r["applies"]),
                    Some(p99 < 250.0),
                )
            }
            None => v(P99, missing(), None),
        },
    );
    out.push(if rounds.is_empty() {
        v(ONE, missing(), None)
    } else {
        let worst = rounds
            .iter()
            .map(|r| num(r, "commits_per_instance_per_apply"))
            .fold(0.0, f64::max);
        v(
            ONE,
            format!("at most {worst:.2} at every fleet size measured"),
            Some(worst <= 1.0),
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict<'a>(all: &'a [Verdict], start: &str) -> &'a Verdict {
        all.iter().find(|v| v.target.starts_with(start)).unwrap()
    }

    #[test]
    fn batching_and_fleet_targets_follow_the_saved_figures() {
        let row = |name: &str, rps: f64, p99: f64, rv: f64| {
            serde_json::json!({ "row": name, "rps": rps, "p50_us": 100.0, "p99_us": p99,
                "rendezvous_per_request": rv, "mean_batch": 6.0 })
        };
        let mut i = Inputs {
            durable: Some(serde_json::json!({ "rows": [
                row("GET /healthz", 60_000.0, 500.0, 0.0),
                row("POST /control", 40_000.0, 900.0, 0.16),
                row("POST /control --state-dir", 9_000.0, 3_000.0, 0.1),
            ]})),
            fleet: Some(serde_json::json!({ "rounds": [
                { "instances": 1, "applies": 100, "p99_ms": 9.0, "commits_per_instance_per_apply": 1.0 },
                { "instances": 50, "applies": 100, "p99_ms": 260.0, "commits_per_instance_per_apply": 1.0 },
            ]})),
            ..Inputs::default()
        };
        let all = evaluate(&i);
        assert_eq!(verdict(&all, "POST /control at least 60%").met, Some(true));
        assert!(
            verdict(&all, "POST /control at least 60%")
                .measured
                .starts_with("67%")
        );
        assert_eq!(verdict(&all, "fewer than 0.2").met, Some(true));
        assert_eq!(
            verdict(&all, "with `--state-dir`").met,
            Some(false),
            "9,000/s is short"
        );
        assert_eq!(
            verdict(&all, "fleet: `dynkeyctl").met,
            Some(false),
            "260 ms is over"
        );
        assert_eq!(verdict(&all, "fleet: one commit").met, Some(true));

        i.durable = None;
        i.fleet = None;
        let all = evaluate(&i);
        for start in [
            "POST /control at least",
            "fewer than 0.2",
            "with `--state-dir`",
            "fleet: ",
        ] {
            assert_eq!(verdict(&all, start).met, None, "{start}: not measured");
        }
    }
}
