//! `RUST_LOG` at start: the baseline layer, read by `init()` in a child
//! process (so the parent's environment and state play no part).

use dynkey_tracing::dynkey::control;
use dynkey_tracing::{debug, info, trace, warn};
use serde_json::json;

use crate::{last_json, role};

#[allow(dead_code)]
fn top() {
    warn!("top warn");
    info!("top info");
}

mod db {
    use super::*;

    #[allow(dead_code)]
    pub fn query() {
        debug!("db debug");
        trace!("db trace");
    }
}

/// The flags of this file's sites, by format.
fn flags() -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for row in control().sites() {
        if row.file == file!() {
            out.insert(row.format.to_string(), row.flags.to_string().into());
        }
    }
    out.into()
}

#[test]
#[ignore]
fn child_init() {
    if role().as_deref() != Some("baseline") {
        return;
    }
    let first = dynkey_tracing::init().map_err(|e| e.to_string()).err();
    let second = dynkey_tracing::init().map_err(|e| e.to_string()).err();
    let report = json!({
        "first": first,
        "second": second,
        "param": control().param("tracing.level"),
        "flags": flags(),
        "baseline": control().state_view().baseline.len(),
    });
    println!("{report}");
}

/// Runs `child_init` in a child with `RUST_LOG` set to `rust_log` (or
/// unset, whatever the parent's environment holds).
fn run(rust_log: Option<&str>) -> serde_json::Value {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "baseline::child_init",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("DYNKEY_CHILD", "baseline");
    for var in [
        "RUST_LOG",
        "DYNKEY_SITES",
        "DYNKEY_RENDEZVOUS",
        "DYNKEY_QUEUE",
        "DYNKEY_QUERY",
    ] {
        cmd.env_remove(var);
    }
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    last_json(&out)
}

#[test]
fn unset_means_error_warn_and_info() {
    let r = run(None);
    assert_eq!(r["first"], serde_json::Value::Null);
    assert_eq!(r["param"], "3");
    assert_eq!(
        r["flags"],
        json!({"top warn": "p", "top info": "p", "db debug": "_", "db trace": "_"})
    );
}

#[test]
fn directives_set_the_param_and_targets_most_specific_last() {
    let r = run(Some("warn,api::baseline::db=debug"));
    assert_eq!(r["first"], serde_json::Value::Null, "{r}");
    assert_eq!(r["param"], "2");
    assert_eq!(
        r["flags"],
        json!({"top warn": "p", "top info": "_", "db debug": "p", "db trace": "_"})
    );
    let r = run(Some("api=trace,api::baseline=error"));
    assert_eq!(r["param"], "0", "targets only: everything else is off");
    assert_eq!(
        r["flags"],
        json!({"top warn": "_", "top info": "_", "db debug": "_", "db trace": "_"}),
        "api::baseline=error is more specific than api=trace, and covers api::baseline::db"
    );
}

#[test]
fn bad_directives_are_reported_once_and_the_rest_applies() {
    let r = run(Some(
        "info,api::baseline[span]=trace,api::baseline::db=loud,api::baseline=warn",
    ));
    let first = r["first"].as_str().expect("an error");
    assert!(
        first.contains("\"api::baseline[span]=trace\" skipped: span and field filters"),
        "{first}"
    );
    assert!(
        first.contains("\"api::baseline::db=loud\" skipped: \"loud\" is not a level"),
        "{first}"
    );
    assert_eq!(
        r["second"], r["first"],
        "the first result, not applied again"
    );
    assert_eq!(r["baseline"], 2, "the param and one target directive");
    assert_eq!(r["param"], "3");
    assert_eq!(
        r["flags"],
        json!({"top warn": "p", "top info": "_", "db debug": "_", "db trace": "_"})
    );
}
