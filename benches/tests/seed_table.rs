//! The seed-table binaries, run in their quick form: the counts they print
//! are deterministic (speed is for the benches, never asserted here).
//!
//! For 8,077 callsites, `+p` then `-p` costs 16,154 rendezvous unbatched,
//! 64 with the insertion-sorted 256-entry queue (32 batches per request),
//! and 2 by default; the requests' reports, the rendezvous counter and the
//! sites-patched counter (2 x 8,077) must agree in every mode. The binary
//! checks them itself and fails otherwise; this test reads them back from
//! its table and its last line.

#[cfg(not(dynkey_atomic_only))]
use std::process::Command;

/// The four layouts compare where patched sites and stubs sit in memory;
/// with every site atomic (`--cfg dynkey_atomic_only`) there is nothing to
/// lay out, so they are compiled out, and this says so once.
#[cfg(dynkey_atomic_only)]
#[test]
fn patch_only_tests() {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "seed_table: built with dynkey_atomic_only: the four layout tests (inline and trampoline \
         sites, registration and shuffled order) are compiled out"
    );
}

#[cfg(not(dynkey_atomic_only))]
const SITES: u64 = 8077;

/// One row of the table: (mode, rendezvous, counted, patched).
#[cfg(not(dynkey_atomic_only))]
fn rows(stdout: &str) -> Vec<(String, u64, u64, u64)> {
    stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| mode"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let n = |i: usize| cells[i].parse::<u64>().expect("a count");
            (cells[1].to_string(), n(2), n(3), n(4))
        })
        .collect()
}

/// Runs `seed-table --quick` with `args`; returns its parsed last line and rows.
#[cfg(not(dynkey_atomic_only))]
fn run(args: &[&str]) -> (serde_json::Value, Vec<(String, u64, u64, u64)>) {
    let out = Command::new(env!("CARGO_BIN_EXE_seed-table"))
        .arg("--quick")
        .args(args)
        .output()
        .expect("seed-table runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "seed-table {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("output");
    let json: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    (json, rows(&stdout))
}

#[cfg(not(dynkey_atomic_only))]
fn check(args: &[&str]) -> u64 {
    let (json, rows) = run(args);
    assert_eq!(json["sites"], SITES);
    let modes = &json["modes"];
    let rendezvous = |m: &str| modes[m]["rendezvous"].as_u64().expect("rendezvous");
    assert_eq!(
        rendezvous("unbatched"),
        2 * SITES,
        "{args:?}: one rendezvous per site and request"
    );
    assert_eq!(
        rendezvous("queued_sorted_256"),
        64,
        "{args:?}: 32 full sorted batches per request"
    );
    assert_eq!(
        rendezvous("default"),
        2,
        "{args:?}: one rendezvous per request"
    );
    assert_eq!(rows.len(), 4, "{args:?}: one row per mode");
    for (mode, reported, counted, patched) in &rows {
        assert_eq!(
            reported, counted,
            "{args:?} {mode}: reported and counted rendezvous"
        );
        assert_eq!(
            *patched,
            2 * SITES,
            "{args:?} {mode}: every site patched once per request"
        );
        assert_eq!(
            *reported,
            rendezvous(mode),
            "{args:?} {mode}: table and JSON agree"
        );
    }
    for m in [
        "unbatched",
        "queued_unsorted_256",
        "queued_sorted_256",
        "default",
    ] {
        let times = modes[m]["request_us"].as_array().expect("two times");
        assert_eq!(times.len(), 2);
        assert!(modes[m]["ipi_cal"].is_u64() && modes[m]["tlb"].is_u64());
    }
    rendezvous("queued_unsorted_256")
}

#[cfg(not(dynkey_atomic_only))]
#[test]
fn trampolines_in_registration_order() {
    let unsorted = check(&["--sites", "trampoline", "--layout", "registration"]);
    // Stubs are handed out in visit order: the unsorted queue flushes only
    // when full, or where a new chunk of stub pages lands lower.
    assert!((64..=128).contains(&unsorted), "unsorted: {unsorted}");
}

#[cfg(not(dynkey_atomic_only))]
#[test]
fn trampolines_shuffled() {
    let unsorted = check(&["--sites", "trampoline", "--layout", "shuffled"]);
    // About every other visit goes down in a random order.
    assert!(
        unsorted > 4 * 1024 && unsorted < 2 * SITES,
        "unsorted: {unsorted}"
    );
}

#[cfg(not(dynkey_atomic_only))]
#[test]
fn inline_sites_in_registration_order() {
    let unsorted = check(&["--sites", "inline", "--layout", "registration"]);
    assert!((64..=128).contains(&unsorted), "unsorted: {unsorted}");
}

#[cfg(not(dynkey_atomic_only))]
#[test]
fn inline_sites_shuffled() {
    let unsorted = check(&["--sites", "inline", "--layout", "shuffled"]);
    assert!(
        unsorted > 4 * 1024 && unsorted < 2 * SITES,
        "unsorted: {unsorted}"
    );
}
