//! Integration tests of dynkey-text, one binary.
//!
//! - `commit`: what a commit does to every kind of site, in this process.
//! - `queue_modes`: rendezvous per commit in each queue mode.
//! - `modes`: environment-chosen modes and global counters, each in a child
//!   process (libtest runs tests as threads of one process, and the runtime
//!   is configured once per process).
//! - `stress`: G1, G2 and G4 under many threads, for every site kind and
//!   rendezvous method, each in a child process under a W^X seccomp filter.
//! - `fork`: a fork child stops sharing code pages with its parent.
//!
//! Child processes re-run this binary on one `#[ignore]`d test, selected by
//! name, with the `DYNKEY_CHILD` variable telling it what to do.

mod commit;
mod fork;
mod modes;
mod queue_modes;
mod stress;
mod workload;

use std::process::Output;

pub use dynkey_text::testing::{child_role as role, run_child_test as child};

/// The last JSON object on a line of a child's stdout.
pub fn last_json(out: &Output) -> serde_json::Value {
    dynkey_text::testing::child_report(out, |text| serde_json::from_str(text).ok())
}
