//! Shared code of dynkey's benchmarks.
//!
//! The benches compare dynkey with what users would pick instead, and
//! reproduce the kernel experiment that motivated it; every figure is
//! meant to be quoted as a ratio to a dynkey baseline measured in the same
//! run, because these machines are shared and noisy. This library holds
//! what several bench targets need:
//!
//! - [`seed`]: the 8,077-callsite table over kernel-like modules;
//! - [`seed_table`]: the `seed-table` driver (queue modes, layouts, counts,
//!   `/proc/interrupts`), shared by its trampoline and inline binaries;
//! - [`interrupts`]: the `CAL` and `TLB` lines of `/proc/interrupts`;
//! - [`paths`]: where results go (honouring `CARGO_TARGET_DIR` and
//!   `CRITERION_HOME`, as criterion does; `bench-report` reads them there);
//! - [`stats`]: medians and quantiles.
//!
//! The `bench-report` tool that turns the results into `BENCHMARKS.md` is
//! `tools/bench-report`.

pub mod interrupts;
pub mod paths;
pub mod seed;
pub mod seed_table;
pub mod stats;

/// The enabled arm of every generated site: an opaque, cold call, so that
/// no competitor's test can be turned into branch-free arithmetic and each
/// pays the same for taking its arm.
#[cold]
#[inline(never)]
pub fn hit(n: u32) -> u32 {
    std::hint::black_box(n + 1)
}

/// A sink for `pr_debug!` output that drops it: enabled sites then cost
/// their check and the call, not terminal output.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullSink;

impl dynkey::sink::Sink for NullSink {
    fn emit(&self, record: &dynkey::sink::Record<'_>) {
        std::hint::black_box(record);
    }
}

/// True when a criterion bench binary runs as a benchmark (`cargo bench`
/// passes `--bench`), not as a test (`cargo test --benches`): only real
/// runs save their counts.
pub fn bench_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test")
}

/// Saves the deterministic counts a bench checked (rendezvous per commit,
/// sites patched) as `<results>/counts-<name>.json` for `bench-report`,
/// in bench mode only. Errors are reported, not fatal: the timing stands.
pub fn save_counts(name: &str, value: &serde_json::Value) {
    if !bench_mode() {
        return;
    }
    let path = paths::results_dir().join(format!("counts-{name}.json"));
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    if let Err(e) = paths::write(&path, &text) {
        eprintln!("warning: cannot save {}: {e}", path.display());
    }
}

/// A value alone on its 64-byte cache line, as a flag is when it lives in
/// its own callsite descriptor rather than packed in an array.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub struct Line<T>(pub T);

/// Checks per criterion iteration in the tight-loop benches: enough that
/// criterion's own per-iteration overhead (about a nanosecond) does not
/// swamp a sub-nanosecond check. Reports divide by it.
pub const INNER: u32 = 100;

/// Runs `check` [`INNER`] times in a loop, taking the arm ([`hit`]) when it
/// says so: the tight loop on one site. Inlined, so the site in `check` is
/// compiled into the loop (and stays one site unless the loop is unrolled).
#[inline(always)]
pub fn tight(check: impl Fn() -> bool) -> u32 {
    let mut n = 0;
    for _ in 0..INNER {
        if check() {
            n = hit(n);
        }
    }
    n
}

/// Evicts the cache line holding `p` from every cache level, then waits
/// for the eviction (`clflush` + `mfence`): the next load of it misses.
/// Code lines are not touched, so a patched site that loads no data does
/// not miss. A no-op on other architectures.
#[inline(always)]
pub fn evict<T: ?Sized>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        // Both are SSE2, part of the x86-64 baseline, so they exist.
        // SAFETY: `clflush` needs a mapped address and `p` is a live
        // reference; neither instruction changes memory contents, only where
        // they are cached and when earlier accesses complete.
        unsafe {
            core::arch::x86_64::_mm_clflush((p as *const T).cast::<u8>());
            core::arch::x86_64::_mm_mfence();
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
