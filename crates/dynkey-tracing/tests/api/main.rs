//! Integration tests of dynkey-tracing, one binary.
//!
//! - `capture`: the test subscriber: a tracing layer that records every
//!   event it is given (fields, span scope, thread), filtered by
//!   `dynkey_tracing::layer()`, installed once as the global default.
//! - `macros`: the macros' sites: listed before they run, off by default
//!   below INFO, switched by module, func, format, level param; tracing's
//!   syntax; class protection and the dry run.
//! - `rows`: every other tracing callsite as a row of kind `tracing`.
//! - `baseline`: `RUST_LOG` at start (child processes).
//! - `compose`: the filter as a global layer, and beside a global
//!   `EnvFilter` (child processes).
//! - `concurrency`: threads emitting while queries run (G2), one rendezvous
//!   per query (child process).
//! - `example`: the axum example as a subprocess, over loopback.
//! - `rust_log`: property tests of the `RUST_LOG` reader.
//!
//! Children re-run this binary on one `#[ignore]`d test with `DYNKEY_CHILD`.

mod baseline;
mod capture;
mod compose;
mod concurrency;
mod example;
mod macros;
mod rows;
mod rust_log;

use std::process::Output;
use std::sync::Mutex;

/// Serializes tests that change what other tests' sites do (the level
/// param, broad queries) or read the shared capture.
static GLOBAL: Mutex<()> = Mutex::new(());

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
