//! Modes chosen by the environment or in code, and the process-wide
//! counters: each case runs in its own child process.

use dynkey_text::{
    Change, Config, Error, Method, MethodChoice, RawKey, SiteKind, SiteMode, branch_unlikely,
    commit,
};

use crate::{child, last_json, role};

static KEY: RawKey = RawKey::new(false);

#[inline(never)]
fn site() -> bool {
    branch_unlikely!(KEY)
}

fn run(case: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let mut all = vec![("DYNKEY_CHILD", case)];
    all.extend_from_slice(env);
    let out = child("modes::child_case", &all);
    assert!(
        out.status.success(),
        "child {case} failed: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    last_json(&out)
}

#[test]
fn forced_atomic_sites_still_work() {
    let j = run("flip", &[("DYNKEY_SITES", "atomic")]);
    assert_eq!(j["kind"], "atomic");
    assert_eq!(
        j["fallback"],
        serde_json::Value::Null,
        "a forced setting is not a fallback"
    );
    assert_eq!(
        j["flipped"], true,
        "the compiled-in site follows the key in its atomic form"
    );
    assert_eq!(j["patched_atomic"], 2, "one atomic site patched per flip");
}

#[test]
fn forced_signal_skips_membarrier_registration() {
    let j = run("flip", &[("DYNKEY_RENDEZVOUS", "signal")]);
    assert_eq!(j["method"], "signal");
    assert_eq!(
        j["registered_at_start"], false,
        "the constructor does not register membarrier when signals are forced"
    );
    assert_eq!(j["rendezvous_signal"], 2);
    assert_eq!(j["rendezvous_membarrier"], 0);
}

#[test]
fn default_registers_membarrier_at_first_use() {
    // Issue 10, item 3: no constructor calls membarrier unless asked to.
    let j = run("flip", &[]);
    assert_eq!(j["method"], "membarrier");
    assert_eq!(
        j["registered_at_start"], false,
        "registration waits for the runtime's start"
    );
    assert_eq!(
        j["kind"],
        if dynkey_text::PATCHING_COMPILED {
            "inline"
        } else {
            "atomic"
        }
    );
    assert_eq!(j["fallback"], serde_json::Value::Null);
}

#[test]
fn early_registration_is_opt_in() {
    let j = run("flip", &[("DYNKEY_REGISTER_EARLY", "1")]);
    assert_eq!(j["method"], "membarrier");
    assert_eq!(
        j["registered_at_start"], true,
        "DYNKEY_REGISTER_EARLY=1 registers before main (one thread, no seccomp)"
    );
    let j = run(
        "flip",
        &[
            ("DYNKEY_REGISTER_EARLY", "1"),
            ("DYNKEY_RENDEZVOUS", "signal"),
        ],
    );
    assert_eq!(
        j["registered_at_start"], false,
        "not when signals are forced"
    );
}

#[test]
fn counters_count_commits_and_rendezvous() {
    let j = run("flip", &[]);
    assert_eq!(j["commits"], 3, "two flips and one no-op commit");
    assert_eq!(
        j["rendezvous_total"], 2,
        "the no-op commit costs no rendezvous"
    );
    assert_eq!(j["skipped"], 1, "the no-op commit skips the key's one site");
    assert_eq!(j["commit_histogram_count"], 3);
}

#[cfg(dynkey_patching)]
#[test]
fn none_with_patched_sites_is_refused() {
    let j = run(
        "start",
        &[("DYNKEY_SITES", "patch"), ("DYNKEY_RENDEZVOUS", "none")],
    );
    let err = j["error"].as_str().unwrap();
    assert!(
        err.contains("DYNKEY_RENDEZVOUS=none") && err.contains("G2"),
        "{err}"
    );
}

#[cfg(dynkey_patching)]
#[test]
fn none_with_auto_sites_falls_back_to_atomic() {
    let j = run("start", &[("DYNKEY_RENDEZVOUS", "none")]);
    assert_eq!(j["kind"], "atomic");
    assert!(
        j["fallback"].as_str().unwrap().contains("rendezvous none"),
        "{j}"
    );
}

#[test]
fn unknown_values_are_errors() {
    let j = run("start", &[("DYNKEY_SITES", "fast")]);
    assert!(
        j["error"]
            .as_str()
            .unwrap()
            .contains("DYNKEY_SITES=\"fast\""),
        "{j}"
    );
    let j = run("start", &[("DYNKEY_QUEUE", "fifo")]);
    assert!(j["error"].as_str().unwrap().contains("DYNKEY_QUEUE"), "{j}");
}

#[test]
fn configuration_in_code_wins_and_is_set_once() {
    let j = run("configure", &[("DYNKEY_SITES", "patch")]);
    assert_eq!(
        j["kind"], "atomic",
        "the value set in code is used, not the environment"
    );
    assert_eq!(
        j["second_configure"], "already",
        "configure after start is refused"
    );
}

#[cfg(dynkey_patching)]
#[test]
fn perf_map_names_the_taken_over_text() {
    let j = run("perfmap", &[("DYNKEY_PERF_MAP", "1")]);
    assert_eq!(j["kind"], "inline");
    let map =
        std::fs::read_to_string(j["map"].as_str().unwrap()).expect("the perf map was written");
    let _ = std::fs::remove_file(j["map"].as_str().unwrap());
    assert!(map.lines().count() > 10, "{map}");
    assert!(
        map.lines().all(|l| l.split(' ').count() >= 3),
        "START SIZE NAME lines: {map}"
    );
    assert!(
        map.contains("site"),
        "function symbols of the binary are named: {map}"
    );
}

/// Child entry point (does nothing unless run by a test above).
#[test]
#[ignore = "run by the modes tests in a child process"]
fn child_case() {
    let Some(case) = role() else { return };
    if case == "configure" {
        dynkey_text::configure(Config {
            sites: SiteMode::Atomic,
            rendezvous: MethodChoice::Auto,
            ..Config::default()
        })
        .unwrap();
    }
    let status = match dynkey_text::status() {
        Ok(s) => s,
        Err(e) => {
            println!("{}", serde_json::json!({ "error": e.to_string() }));
            return;
        }
    };
    let mut j = serde_json::json!({
        "kind": status.site_kind.as_str(),
        "method": status.method.as_str(),
        "fallback": status.fallback,
        "registered_at_start": status.registered_at_start,
    });
    if case == "configure" {
        j["second_configure"] = match dynkey_text::configure(Config::default()) {
            Err(Error::AlreadyInitialized) => "already".into(),
            other => format!("{other:?}").into(),
        };
    }
    if case == "perfmap" {
        site();
        j["map"] = format!("/tmp/perf-{}.map", std::process::id()).into();
    }
    if case == "flip" {
        // A helper thread so a signal rendezvous has someone to signal,
        // running (a thread being created blocks every signal for a moment).
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (up_tx, up_rx) = std::sync::mpsc::channel::<()>();
        let helper = std::thread::spawn(move || {
            up_tx.send(()).unwrap();
            rx.recv()
        });
        up_rx.recv().unwrap();
        let before = site();
        commit(&[Change::Key(&KEY, true)]).unwrap();
        let during = site();
        commit(&[Change::Key(&KEY, false)]).unwrap();
        commit(&[Change::Key(&KEY, false)]).unwrap();
        let after = site();
        drop(tx);
        let _ = helper.join();
        let c = dynkey_text::counters();
        j["flipped"] = (!before && during && !after).into();
        j["commits"] = c.commits.into();
        j["rendezvous_total"] = c.rendezvous_total().into();
        j["rendezvous_signal"] = c.rendezvous_of(Method::Signal).into();
        j["rendezvous_membarrier"] = c.rendezvous_of(Method::Membarrier).into();
        j["skipped"] = c.sites_skipped.into();
        j["patched_atomic"] = c.patched_of(SiteKind::Atomic).into();
        j["commit_histogram_count"] = c.commit_duration.count.into();
    }
    println!("{j}");
}
