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
//! - `tracing_rows`: rows of kind `tracing`, as a tracing filter registers them.
//!
//! Children re-run this binary on one `#[ignore]`d test with `DYNKEY_CHILD`.

mod boot;
mod concurrency;
mod counts;
mod kernel_like;
mod output;
mod registration;
mod runtime;
mod tracing_rows;
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

pub use dynkey_text::testing::{child_role as role, run_child_test as child};

/// The last JSON object on a line of a child's stdout.
pub fn last_json(out: &Output) -> serde_json::Value {
    dynkey_text::testing::child_report(out, |text| serde_json::from_str(text).ok())
}

/// The repository's fixtures directory (`fixtures/`).
pub use dynkey_text::testing::{fixtures_dir as fixtures, vector_files};

/// A fixture file, parsed.
pub fn fixture_json(name: &str) -> serde_json::Value {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} is missing: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}
