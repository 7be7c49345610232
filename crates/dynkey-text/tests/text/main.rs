//! Integration tests of dynkey-text, one binary.
//!
//! - `commit`: what a commit does to every kind of site, in this process.
//! - `queue_modes`: rendezvous per commit in each queue mode.
//! - `modes`: environment-chosen modes and global counters, each in a child
//!   process (libtest runs tests as threads of one process, and the runtime
//!   is configured once per process).
//! - `stress`: G1, G2 and G4 under many threads, for every site kind and
//!   rendezvous method, each in a child process under a W^X seccomp filter.
//! - `fork`: a fork child stops sharing code pages with its parent, on its
//!   first patch.
//! - issue 10's regressions, each reproduced first on the old code:
//!   `value_stub` (a thread parked inside a stub during start-up),
//!   `uprobes` (breakpoints on taken-over pages), `seccomp` (membarrier
//!   under a filter that kills on it), `signals` (threads and handlers that
//!   are not the rendezvous's own), `views` (a remapped executable view).
//!
//! Tests that only make sense for patched sites are compiled out when the
//! crate is built without patching (`--cfg dynkey_atomic_only`, other
//! targets); `patch_only_tests` then says which.
//!
//! Child processes re-run this binary on one `#[ignore]`d test, selected by
//! name, with the `DYNKEY_CHILD` variable telling it what to do.

mod commit;
mod fork;
mod modes;
mod queue_modes;
mod seccomp;
mod signals;
mod stress;
#[cfg(dynkey_patching)]
mod uprobes;
#[cfg(dynkey_patching)]
mod value_stub;
#[cfg(dynkey_patching)]
mod views;
mod workload;

/// Says, once per run, which tests this build left out.
#[cfg(not(dynkey_patching))]
#[test]
fn patch_only_tests() {
    use std::io::Write;
    // Written to stderr directly: libtest does not capture it.
    let _ = writeln!(
        std::io::stderr(),
        "dynkey-text: built without patching (dynkey_atomic_only or another target): \
         patched-kind tests compiled out: stress inline/trampoline, uprobes, value_stub, views, \
         modes perf_map and none_with_{{patched,auto}}_sites, and the code_table boundaries unit tests"
    );
    const { assert!(!dynkey_text::PATCHING_COMPILED) };
}

use std::process::Output;

pub use dynkey_text::testing::{child_role as role, run_child_test as child};

/// The last JSON object on a line of a child's stdout.
pub fn last_json(out: &Output) -> serde_json::Value {
    dynkey_text::testing::child_report(out, |text| serde_json::from_str(text).ok())
}

/// Runs the `#[ignore]`d entry point `test` in a child with
/// `DYNKEY_CHILD=role` and checks that it exited normally and printed
/// `ROLE: ok`; `why` says what a failure means.
pub fn child_says_ok(test: &str, role: &str, why: &str) {
    let out = child(test, &[("DYNKEY_CHILD", role)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{why}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("{role}: ok")), "{stdout}");
}

/// The fields of the `/proc/self/maps` line whose range holds `addr`.
pub fn mapping_at(addr: usize) -> Option<Vec<String>> {
    std::fs::read_to_string("/proc/self/maps")
        .ok()?
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>())
        .find(|f| {
            let (a, b) = f[0].split_once('-').unwrap();
            usize::from_str_radix(a, 16).unwrap() <= addr
                && addr < usize::from_str_radix(b, 16).unwrap()
        })
}
