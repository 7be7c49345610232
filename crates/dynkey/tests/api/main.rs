//! Integration tests of dynkey, one binary.
//!
//! - `kernel_like`: the 17 sites of `fixtures/kernel-like.json` compiled into
//!   this binary as real callsites (and checked against the fixture).
//! - `vectors`: every public query vector, replayed on those compiled sites
//!   in a child process.
//! - `registration`: keys, calls, class maps and callsites of another crate
//!   register; never-run sites are listed; the order is stable.
//! - `output`: decoration, sinks, the ratelimit windows.
//! - `counts`: one rendezvous per exec, batch and param write (child process).
//! - `concurrency`: workers run sites and static calls while queries run.
//! - `boot`: `DYNKEY_QUERY` at start-up, and the embed example.
//! - `runtime`: sites declared by data.
//!
//! Children re-run this binary on one `#[ignore]`d test with `DYNKEY_CHILD`.

mod boot;
mod concurrency;
mod counts;
mod kernel_like;
mod output;
mod registration;
mod runtime;
mod vectors;

use std::process::Output;
use std::sync::Mutex;

/// Serializes in-process tests that touch process-wide state (the sink,
/// the ratelimit clock, broad queries).
pub static GLOBAL: Mutex<()> = Mutex::new(());

/// Takes the lock of [`GLOBAL`].
pub fn global() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the ignored test `name` of this binary in a child with `env`.
pub fn child(name: &str, env: &[(&str, &str)]) -> Output {
    dynkey_text::testing::run_child_test(name, env)
}

/// The last JSON object on a line of the child's stdout.
pub fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(&l[l.find('{')?..]).ok())
        .unwrap_or_else(|| {
            panic!(
                "no JSON from child; status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The child's role (None in the parent).
pub fn role() -> Option<String> {
    std::env::var("DYNKEY_CHILD").ok()
}

/// The shared fixtures directory (`DYNKEY_FIXTURES` or `../shared/fixtures`
/// beside the checkout). A missing fixture fails the test.
pub fn fixtures() -> std::path::PathBuf {
    match std::env::var_os("DYNKEY_FIXTURES") {
        Some(p) => p.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

/// A fixture file, parsed.
pub fn fixture_json(name: &str) -> serde_json::Value {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} is missing: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}
