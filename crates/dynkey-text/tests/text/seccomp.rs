//! Issue 10, item 3: membarrier under a seccomp filter that kills on it
//! (systemd's `SystemCallFilter=` default action, minijail).
//!
//! The filter is installed in `pre_exec`, so it holds from the child's
//! first instruction, constructors included: the old unconditional
//! `.init_array` constructor called membarrier and died by `SIGSYS` before
//! `main`, even in a binary that never used dynkey.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Output;

use dynkey_text::{Change, Error, Method, RawKey, ValueSite};

use crate::{last_json, role};

/// Runs `seccomp::NAME` in a child that is killed if it calls membarrier.
fn under_filter(name: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = dynkey_text::testing::child_test_command(name, env);
    // SAFETY: the hook only makes two system calls (async-signal-safe).
    unsafe { cmd.pre_exec(|| dynkey_text::testing::kill_on_syscall(libc::SYS_membarrier)) };
    cmd.output().unwrap()
}

fn assert_not_killed(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: status {:?} (signal {:?}; 31 is SIGSYS, the filter's kill)\n{}\n{}",
        out.status,
        out.status.signal(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_binary_that_never_uses_dynkey_never_calls_membarrier() {
    for early in ["0", "1"] {
        let out = under_filter(
            "seccomp::child_unused",
            &[("DYNKEY_CHILD", "unused"), ("DYNKEY_REGISTER_EARLY", early)],
        );
        assert_not_killed(&out, &format!("unused, DYNKEY_REGISTER_EARLY={early}"));
        assert!(String::from_utf8_lossy(&out.stdout).contains("unused: main ran"));
    }
}

#[test]
fn a_binary_that_uses_it_falls_back_to_signals_and_says_why() {
    let out = under_filter("seccomp::child_used", &[("DYNKEY_CHILD", "used")]);
    assert_not_killed(&out, "used");
    let j = last_json(&out);
    assert_eq!(j["method"], "signal", "{j}");
    let why = j["fallback"].as_str().unwrap();
    assert!(
        why.contains("seccomp filter forbids membarrier") && why.contains("signal 31"),
        "{why}"
    );
    assert_eq!(
        j["flipped"], true,
        "commits work through the signal rendezvous: {j}"
    );
}

#[test]
fn forced_membarrier_under_the_filter_is_a_typed_error() {
    let out = under_filter(
        "seccomp::child_used",
        &[
            ("DYNKEY_CHILD", "used"),
            ("DYNKEY_RENDEZVOUS", "membarrier"),
        ],
    );
    assert_not_killed(&out, "forced membarrier");
    let j = last_json(&out);
    let e = j["error"].as_str().unwrap();
    assert!(
        e.contains("DYNKEY_RENDEZVOUS=membarrier") && e.contains("seccomp"),
        "{e}"
    );
}

/// Child entry point: links dynkey-text (this binary does) and never uses it.
#[test]
#[ignore = "run by the seccomp tests in a child process"]
fn child_unused() {
    if role().as_deref() == Some("unused") {
        println!("unused: main ran");
    }
}

/// Child entry point: starts the runtime and flips a key.
#[test]
#[ignore = "run by the seccomp tests in a child process"]
fn child_used() {
    if role().as_deref() != Some("used") {
        return;
    }
    let status = match dynkey_text::status() {
        Ok(s) => s,
        Err(e @ Error::Unavailable { .. }) => {
            println!("{}", serde_json::json!({ "error": e.to_string() }));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    // A thread for the signal rendezvous to reach, running (a thread being
    // created blocks every signal for a moment).
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (up_tx, up_rx) = std::sync::mpsc::channel::<()>();
    let helper = std::thread::spawn(move || {
        up_tx.send(()).unwrap();
        rx.recv()
    });
    up_rx.recv().unwrap();
    let key: &'static RawKey = Box::leak(Box::new(RawKey::new(false)));
    let site = ValueSite::new(key).unwrap();
    let r = dynkey_text::commit(&[Change::Key(key, true)]).unwrap();
    let flipped = site.get() && r.method == Method::Signal;
    drop(tx);
    let _ = helper.join();
    println!(
        "{}",
        serde_json::json!({
            "method": status.method.as_str(),
            "fallback": status.fallback,
            "flipped": flipped,
        })
    );
}
