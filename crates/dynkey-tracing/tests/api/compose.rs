//! The two other ways to install the filter, each in a child process (one
//! global subscriber per process): `dynkey_tracing::layer()` as a layer of
//! its own (a global filter), and beside an `EnvFilter` kept as a global
//! filter, where both must say yes (the crate docs' rules).

use dynkey_tracing::dynkey::control;
use serde_json::json;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Layer, SubscriberExt};

use crate::capture::{Capture, take};
use crate::{child, last_json, role};

fn ours(n: u32) {
    dynkey_tracing::debug!(n, "ours");
}

fn theirs(n: u32) {
    tracing::debug!(target: "thirdparty::compose", n);
    tracing::warn!(target: "thirdparty::compose", n);
}

/// The events seen since the last call: "ours"/"theirs", level, n.
fn seen() -> Vec<String> {
    let mut out: Vec<String> = take("api::compose")
        .iter()
        .map(|s| format!("ours {} {}", s.level, s.field("n").unwrap()))
        .collect();
    out.extend(
        take("thirdparty::compose")
            .iter()
            .map(|s| format!("theirs {} {}", s.level, s.field("n").unwrap())),
    );
    out
}

/// Runs the same steps under whatever subscriber is installed.
fn steps() -> serde_json::Value {
    let c = control();
    ours(1);
    theirs(1);
    let default = seen();
    c.exec("module api::compose class DEBUG +p; module thirdparty::compose class DEBUG +p")
        .unwrap();
    ours(2);
    theirs(2);
    let debug_on = seen();
    c.exec("module thirdparty::compose class WARN -p").unwrap();
    theirs(3);
    let warn_off = seen();
    json!({"default": default, "debug_on": debug_on, "warn_off": warn_off})
}

#[test]
#[ignore]
fn child_compose() {
    match role().as_deref() {
        Some("global_layer") => {
            dynkey_tracing::init_with(None).unwrap();
            let s = tracing_subscriber::registry()
                .with(dynkey_tracing::layer())
                .with(Capture);
            tracing::subscriber::set_global_default(s).unwrap();
        }
        Some("beside_env_filter") => {
            dynkey_tracing::init_with(None).unwrap();
            let s = tracing_subscriber::registry()
                .with(EnvFilter::new("info"))
                .with(Capture.with_filter(dynkey_tracing::layer()));
            tracing::subscriber::set_global_default(s).unwrap();
        }
        _ => return,
    }
    println!("{}", steps());
}

fn run(role: &str) -> serde_json::Value {
    let out = child("compose::child_compose", &[("DYNKEY_CHILD", role)]);
    assert!(out.status.success(), "{out:?}");
    last_json(&out)
}

#[test]
fn as_a_global_filter_the_flags_decide() {
    assert_eq!(
        run("global_layer"),
        json!({
            "default": ["theirs WARN 1"],
            "debug_on": ["ours DEBUG 2", "theirs DEBUG 2", "theirs WARN 2"],
            "warn_off": ["theirs DEBUG 3"],
        })
    );
}

#[test]
fn beside_a_global_env_filter_both_must_say_yes() {
    assert_eq!(
        run("beside_env_filter"),
        json!({
            "default": ["theirs WARN 1"],
            "debug_on": ["theirs WARN 2"],
            "warn_off": [],
        }),
        "+p cannot show what the EnvFilter drops; -p still silences"
    );
}
