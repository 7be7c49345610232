//! G1, G2 and G4 under load: at least 8 threads run at least 4,096 sites
//! while a committer flips random batches of keys; after each commit
//! returns, every worker's next pass must see the committed states (see
//! `workload.rs` for the handshake). One child process per site kind and
//! rendezvous method, each under a seccomp filter that kills it on any
//! write+execute mapping request, and checked for W+X mappings at the end.

use crate::{child, last_json, role, workload};

const THREADS: usize = 8;
const SITES: usize = 4096;

fn check(kind: &str, method: &str, commits: usize) {
    let sites_mode = if kind == "atomic" { "atomic" } else { "patch" };
    let role = format!("{kind},{method},{commits}");
    let out = child(
        "stress::child_workload",
        &[
            ("DYNKEY_CHILD", role.as_str()),
            ("DYNKEY_SITES", sites_mode),
            ("DYNKEY_RENDEZVOUS", method),
            // Eight busy workers on two cores answer a signal only when
            // scheduled; a loaded CI machine must not turn that into a
            // timeout (which reports threads that never answer at all).
            ("DYNKEY_SIGNAL_TIMEOUT_MS", "30000"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child {role} failed: {:?}\n{stderr}",
        out.status
    );
    let j = last_json(&out);
    assert_eq!(j["kind"], kind, "the requested kind is in effect: {j}");
    assert_eq!(
        j["method"], method,
        "the requested method is in effect: {j}"
    );
    assert_eq!(
        j["stale"], 0,
        "no site showed a state older than a returned commit: {j}"
    );
    assert_eq!(
        j["state_ahead"], 0,
        "no site ran old code after its key read as changed (G4): {j}"
    );
    assert!(
        j["checked"].as_u64().unwrap() >= (SITES * THREADS * commits) as u64,
        "every commit was checked by every worker: {j}"
    );
    assert_eq!(j["rendezvous"], commits, "one rendezvous per commit: {j}");
    assert_eq!(j["wx"], 0, "no W+X mapping: {j}");
    assert_eq!(
        j["torn"], 0,
        "no execution returned a torn result (G1): {j}"
    );
    assert!(
        j["executions"].as_u64().unwrap() >= j["checked"].as_u64().unwrap(),
        "{j}"
    );
    let records = if kind == "trampoline" {
        SITES
    } else {
        workload::INLINE_SITES
    };
    assert_eq!(
        j["records"], records,
        "every generated site is a distinct site the runtime knows (none merged by the compiler): {j}"
    );
}

#[cfg(dynkey_patching)]
#[test]
fn inline_membarrier() {
    check("inline", "membarrier", 150);
}

#[cfg(dynkey_patching)]
#[test]
fn inline_signal() {
    check("inline", "signal", 30);
}

#[cfg(dynkey_patching)]
#[test]
fn trampoline_membarrier() {
    check("trampoline", "membarrier", 150);
}

#[cfg(dynkey_patching)]
#[test]
fn trampoline_signal() {
    check("trampoline", "signal", 30);
}

#[test]
fn atomic_membarrier() {
    check("atomic", "membarrier", 150);
}

#[test]
fn atomic_signal() {
    check("atomic", "signal", 30);
}

#[test]
fn atomic_none() {
    check("atomic", "none", 150);
}

/// Child entry point (does nothing unless run by `check`).
#[test]
#[ignore = "run by the stress tests in a child process"]
fn child_workload() {
    let Some(role) = role() else { return };
    let mut parts = role.split(',');
    let (kind, _method, commits) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    dynkey_text::testing::forbid_wx_mappings().expect("install the W^X seccomp filter");
    let status = dynkey_text::status().expect("runtime starts as configured");
    let p = workload::Params {
        threads: THREADS,
        sites: SITES,
        commits: commits.parse().unwrap(),
        kind: if kind == "trampoline" {
            workload::Kind::Trampoline
        } else {
            workload::Kind::Inline
        },
        batch_max: 16,
        seed: 0x5eed_1234,
    };
    let effective = match (kind, status.site_kind) {
        (_, dynkey_text::SiteKind::Atomic) => "atomic",
        ("trampoline", _) => "trampoline",
        _ => "inline",
    };
    let out = workload::run(&p);
    println!(
        "{}",
        serde_json::json!({
            "kind": effective,
            "method": status.method.as_str(),
            "stale": out.stale,
            "state_ahead": out.state_ahead,
            "checked": out.checked,
            "executions": out.executions,
            "torn": out.torn,
            "rendezvous": out.rendezvous,
            "records": workload::records(p.kind),
            "wx": dynkey_text::testing::wx_mappings().len(),
        })
    );
}
