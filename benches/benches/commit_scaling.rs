//! Commit scaling: one commit changing N sites, N = 1 to 100,000, as
//! run-time trampolines and (up to 8,077, what this binary compiles in) as
//! inline sites, next to the floor: N atomic 8-byte stores into a plain
//! buffer at the stubs' 16-byte spacing. Every commit must cost exactly one
//! rendezvous and patch exactly N sites; that is checked (and saved for the
//! report) before anything is timed.
//!
//! Run: `cargo bench -p dynkey-benches --bench commit_scaling`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use dynkey_text::{Change, RawKey, SiteKind, ValueSite, commit};

#[allow(clippy::all)]
mod generated {
    use dynkey_benches::hit;
    include!(concat!(env!("OUT_DIR"), "/commit_inline.rs"));
}
use generated::{COMMIT_KEYS, COMMIT_SITE_FNS};

/// Sites changed per commit, trampolines.
const TRAMPOLINE_NS: [usize; 6] = [1, 10, 100, 1_000, 8_077, 100_000];
/// Sites changed per commit, inline (at most the 8,192 compiled in).
const INLINE_NS: [usize; 5] = [1, 10, 100, 1_000, 8_077];

/// The keys of one commit size, and the changes turning them on and off.
struct Commits {
    first: &'static RawKey,
    on: Vec<Change>,
    off: Vec<Change>,
}

impl Commits {
    fn new(keys: Vec<&'static RawKey>) -> Commits {
        Commits {
            first: keys[0],
            on: keys.iter().map(|&k| Change::Key(k, true)).collect(),
            off: keys.iter().map(|&k| Change::Key(k, false)).collect(),
        }
    }

    /// Flips every key: one commit of N changed sites, whatever state the
    /// previous iteration (or warm-up) left.
    fn flip(&self) -> dynkey_text::CommitReport {
        let to = if self.first.is_enabled() {
            &self.off
        } else {
            &self.on
        };
        commit(to).expect("commit")
    }

    /// Turns every key off (sizes share keys: the next one starts clean).
    fn reset(&self) {
        commit(&self.off).expect("commit");
    }

    /// Flips twice, checking each commit's counts; returns them as JSON.
    fn check(&self, kind: SiteKind, n: usize, fired: impl Fn() -> usize) -> serde_json::Value {
        self.reset();
        let before = dynkey_text::counters();
        for want in [n, 0] {
            let r = self.flip();
            assert_eq!(r.rendezvous, 1, "{kind} x{n}: one rendezvous per commit");
            assert_eq!(
                r.sites_patched[kind as usize], n as u64,
                "{kind} x{n}: N sites patched"
            );
            assert_eq!(
                fired(),
                want,
                "{kind} x{n}: sites take the new path on return"
            );
        }
        let after = dynkey_text::counters();
        serde_json::json!({
            "n": n,
            "rendezvous_per_commit": (after.rendezvous_total() - before.rendezvous_total()) as f64 / 2.0,
            "sites_patched_per_commit": (after.patched_of(kind) - before.patched_of(kind)) as f64 / 2.0,
        })
    }
}

fn leaked_keys(n: usize) -> Vec<&'static RawKey> {
    (0..n)
        .map(|_| &*Box::leak(Box::new(RawKey::new(false))))
        .collect()
}

fn trampolines(c: &mut Criterion, counts: &mut Vec<serde_json::Value>) {
    let mut g = c.benchmark_group("commit_trampoline");
    g.sampling_mode(SamplingMode::Flat).sample_size(30);
    for n in TRAMPOLINE_NS {
        let keys = leaked_keys(n);
        let sites: Vec<ValueSite> = keys
            .iter()
            .map(|k| ValueSite::new(k).expect("site"))
            .collect();
        let commits = Commits::new(keys);
        let mut row = commits.check(SiteKind::Trampoline, n, || {
            sites.iter().filter(|s| s.get()).count()
        });
        row["kind"] = "trampoline".into();
        counts.push(row);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| commits.flip())
        });
        commits.reset();
    }
    g.finish();
}

fn inline(c: &mut Criterion, counts: &mut Vec<serde_json::Value>) {
    if dynkey_text::status().map(|s| s.site_kind) != Ok(SiteKind::Inline) {
        eprintln!("commit_scaling: inline sites are not patched here; skipping them");
        return;
    }
    let fired = || COMMIT_SITE_FNS.iter().map(|f| f() as usize).sum::<usize>();
    let mut g = c.benchmark_group("commit_inline");
    g.sampling_mode(SamplingMode::Flat).sample_size(30);
    for n in INLINE_NS {
        let commits = Commits::new(COMMIT_KEYS[..n].iter().collect());
        let mut row = commits.check(SiteKind::Inline, n, fired);
        row["kind"] = "inline".into();
        counts.push(row);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| commits.flip())
        });
        commits.reset();
    }
    g.finish();
}

/// N relaxed 8-byte stores 16 bytes apart: the writes alone.
fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("commit_floor");
    g.sampling_mode(SamplingMode::Flat).sample_size(30);
    for n in TRAMPOLINE_NS {
        let buf: Vec<AtomicU64> = (0..2 * n).map(|_| AtomicU64::new(0)).collect();
        let mut value = 0u64;
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                value = !value;
                for slot in black_box(&buf).iter().step_by(2) {
                    slot.store(value, Relaxed);
                }
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let status = dynkey_text::status().expect("dynkey starts");
    eprintln!(
        "commit_scaling: sites {}, rendezvous {}",
        status.site_kind, status.method
    );

    let mut counts = Vec::new();
    trampolines(c, &mut counts);
    inline(c, &mut counts);
    floor(c);
    dynkey_benches::save_counts("commit_scaling", &serde_json::Value::Array(counts));
}

criterion_group! {
    name = commit_scaling;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(commit_scaling);
