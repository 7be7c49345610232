//! The stress workload shared by `tests/` and `examples/stress.rs`.
//!
//! Worker threads run sites in passes and record which branch each site
//! took (they execute the site's own code; `is_enabled()` would prove
//! nothing about the patched bytes). A committer flips random batches of
//! keys. The epoch protocol tells a worker which passes must be exact:
//!
//! - the committer makes `epoch` odd, commits, stores the expected states,
//!   then makes `epoch` even (Release) once the commit has returned;
//! - a worker reads `epoch` (Acquire) before and after a pass; if both reads
//!   are the same even value, no commit overlapped the pass and it started
//!   after the last commit returned, so every site must show the expected
//!   state (G2). A mismatch is *stale*;
//! - the committer waits until every worker has finished such a pass before
//!   the next commit (a handshake, no sleeping), so every commit is checked
//!   by every worker.
//!
//! G1 (no torn code) is checked in every execution: site `i` returns
//! `2 * i + taken`, so any other value is a torn result. The constant also
//! makes every generated site's function distinct *in code*, not only in
//! the key it names: LLVM merges functions that differ only in a symbol
//! (8,192 closures became 256 functions and the section held 259 records),
//! and `records` counts what the linker really kept.
//!
//! G4 (state implies code) is checked in the passes that overlap a commit:
//! at most one commit can publish during a pass (the next one waits for
//! the handshake), so once a worker reads a key's state as different from
//! its state before the commit (`prev`), the commit has published it, and
//! the site the worker runs next must already agree.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_utils::CachePadded;
use dynkey_text::{Change, RawKey, ValueSite, branch_unlikely_at};

/// Keys the compiled-in sites test.
pub const NKEYS: usize = 256;
/// Compiled-in sites available.
pub const INLINE_SITES: usize = 8192;

pub static INLINE_KEYS: [RawKey; NKEYS] = [const { RawKey::new(false) }; NKEYS];
pub static STUB_KEYS: [RawKey; NKEYS] = [const { RawKey::new(false) }; NKEYS];

macro_rules! push_sites {
    ($v:ident, $base:expr, 1) => {
        $v.push(|| {
            // A constant item: folded even in debug builds.
            const OFF: u32 = (2 * ($base)) as u32;
            if branch_unlikely_at!(INLINE_KEYS, ($base) % NKEYS) {
                OFF + 1
            } else {
                OFF
            }
        });
    };
    ($v:ident, $base:expr, 2) => {
        push_sites!($v, $base, 1);
        push_sites!($v, $base + 1, 1);
    };
    ($v:ident, $base:expr, 4) => {
        push_sites!($v, $base, 2);
        push_sites!($v, $base + 2, 2);
    };
    ($v:ident, $base:expr, 8) => {
        push_sites!($v, $base, 4);
        push_sites!($v, $base + 4, 4);
    };
    ($v:ident, $base:expr, 16) => {
        push_sites!($v, $base, 8);
        push_sites!($v, $base + 8, 8);
    };
    ($v:ident, $base:expr, 32) => {
        push_sites!($v, $base, 16);
        push_sites!($v, $base + 16, 16);
    };
    ($v:ident, $base:expr, 64) => {
        push_sites!($v, $base, 32);
        push_sites!($v, $base + 32, 32);
    };
    ($v:ident, $base:expr, 128) => {
        push_sites!($v, $base, 64);
        push_sites!($v, $base + 64, 64);
    };
    ($v:ident, $base:expr, 256) => {
        push_sites!($v, $base, 128);
        push_sites!($v, $base + 128, 128);
    };
    ($v:ident, $base:expr, 512) => {
        push_sites!($v, $base, 256);
        push_sites!($v, $base + 256, 256);
    };
    ($v:ident, $base:expr, 1024) => {
        push_sites!($v, $base, 512);
        push_sites!($v, $base + 512, 512);
    };
    ($v:ident, $base:expr, 2048) => {
        push_sites!($v, $base, 1024);
        push_sites!($v, $base + 1024, 1024);
    };
    ($v:ident, $base:expr, 4096) => {
        push_sites!($v, $base, 2048);
        push_sites!($v, $base + 2048, 2048);
    };
    ($v:ident, $base:expr, 8192) => {
        push_sites!($v, $base, 4096);
        push_sites!($v, $base + 4096, 4096);
    };
}

/// The compiled-in sites: site `i` tests `INLINE_KEYS[i % NKEYS]` and
/// returns `2 * i + 1` if it took the enabled branch, else `2 * i`.
pub fn inline_sites() -> Vec<fn() -> u32> {
    let mut v: Vec<fn() -> u32> = Vec::with_capacity(INLINE_SITES);
    push_sites!(v, 0usize, 8192);
    v
}

/// Site records (or run-time stubs) the runtime holds for the keys of
/// `kind`: what the linker really kept, whatever the source generated.
pub fn records(kind: Kind) -> u64 {
    let keys: &'static [RawKey; NKEYS] = match kind {
        Kind::Inline => &INLINE_KEYS,
        Kind::Trampoline => &STUB_KEYS,
    };
    keys.iter()
        .map(|k| {
            dynkey_text::key_site_counts(k)
                .expect("runtime")
                .iter()
                .sum::<u64>()
        })
        .sum()
}

/// Which sites the workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The compiled-in sites (inline when patched, their atomic form otherwise).
    Inline,
    /// Run-time value sites (trampolines when patched, atomic otherwise).
    Trampoline,
}

pub struct Params {
    pub threads: usize,
    pub sites: usize,
    pub commits: usize,
    pub kind: Kind,
    /// Largest number of keys flipped by one commit.
    pub batch_max: usize,
    pub seed: u64,
}

pub struct Outcome {
    /// Rendezvous the commits reported.
    pub rendezvous: usize,
    /// Site executions, all checked for a torn result.
    pub executions: u64,
    /// Executions whose result was neither of the site's two forms (G1).
    pub torn: u64,
    /// Site executions that showed a state older than a returned commit.
    pub stale: u64,
    /// Site executions that ran old code after reading the new state (G4).
    pub state_ahead: u64,
    /// Site executions checked.
    pub checked: u64,
    /// Commit durations, microseconds, sorted.
    pub commit_us: Vec<f64>,
    /// Commits that changed nothing (must be 0: every commit flips keys).
    pub empty_commits: usize,
}

impl Outcome {
    pub fn percentile(&self, p: f64) -> f64 {
        if self.commit_us.is_empty() {
            return 0.0;
        }
        let i = ((self.commit_us.len() - 1) as f64 * p).round() as usize;
        self.commit_us[i]
    }
}

enum Site {
    Compiled(fn() -> u32),
    Runtime(u32, ValueSite),
}

impl Site {
    /// `2 * i + taken` for site `i`.
    #[inline]
    fn run(&self) -> u32 {
        match self {
            Site::Compiled(f) => f(),
            Site::Runtime(i, s) => 2 * i + s.get() as u32,
        }
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Runs the workload; panics if a commit fails.
pub fn run(p: &Params) -> Outcome {
    let keys: &'static [RawKey; NKEYS] = match p.kind {
        Kind::Inline => &INLINE_KEYS,
        Kind::Trampoline => &STUB_KEYS,
    };
    // (key, site index, site)
    let sites: Vec<(usize, u32, Site)> = match p.kind {
        Kind::Inline => {
            assert!(
                p.sites <= INLINE_SITES,
                "at most {INLINE_SITES} compiled-in sites"
            );
            inline_sites()
                .into_iter()
                .take(p.sites)
                .enumerate()
                .map(|(i, f)| (i % NKEYS, i as u32, Site::Compiled(f)))
                .collect()
        }
        Kind::Trampoline => (0..p.sites)
            .map(|i| {
                let site = ValueSite::new(&keys[i % NKEYS]).expect("run-time site");
                (i % NKEYS, i as u32, Site::Runtime(i as u32, site))
            })
            .collect(),
    };
    let expected: Vec<AtomicBool> = keys
        .iter()
        .map(|k| AtomicBool::new(k.is_enabled()))
        .collect();
    let prev: Vec<AtomicBool> = keys
        .iter()
        .map(|k| AtomicBool::new(k.is_enabled()))
        .collect();
    let state_ahead = AtomicU64::new(0);
    let epoch = CachePadded::new(AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    let seen: Vec<CachePadded<AtomicU64>> = (0..p.threads)
        .map(|_| CachePadded::new(AtomicU64::new(0)))
        .collect();
    let stale = AtomicU64::new(0);
    let checked = AtomicU64::new(0);
    let executions = AtomicU64::new(0);
    let torn = AtomicU64::new(0);
    let started = AtomicU64::new(0);

    let mut outcome = Outcome {
        rendezvous: 0,
        executions: 0,
        torn: 0,
        stale: 0,
        state_ahead: 0,
        checked: 0,
        commit_us: Vec::new(),
        empty_commits: 0,
    };
    crossbeam_utils::thread::scope(|s| {
        for w in 0..p.threads {
            let (sites, expected, prev, epoch, stop, seen) =
                (&sites, &expected, &prev, &epoch, &stop, &seen[w]);
            let (stale, checked, state_ahead) = (&stale, &checked, &state_ahead);
            let (executions, torn, started) = (&executions, &torn, &started);
            s.spawn(move |_| {
                started.fetch_add(1, Ordering::Release);
                let (mut my_stale, mut my_checked, mut my_ahead) = (0u64, 0u64, 0u64);
                let (mut my_runs, mut my_torn) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let e1 = epoch.load(Ordering::Acquire);
                    let overlapping = e1 % 2 == 1;
                    let mut wrong = 0u64;
                    for (key, i, site) in sites {
                        let state = overlapping && keys[*key].is_enabled();
                        let v = site.run();
                        my_torn += (v >> 1 != *i) as u64;
                        let ran = v & 1 == 1;
                        if ran != expected[*key].load(Ordering::Relaxed) {
                            wrong += 1;
                        }
                        if overlapping
                            && state != prev[*key].load(Ordering::Relaxed)
                            && ran != state
                        {
                            my_ahead += 1;
                        }
                    }
                    my_runs += sites.len() as u64;
                    let e2 = epoch.load(Ordering::Acquire);
                    if e1 == e2 && e1 % 2 == 0 {
                        my_stale += wrong;
                        my_checked += sites.len() as u64;
                        seen.store(e1, Ordering::Release);
                    }
                }
                stale.fetch_add(my_stale, Ordering::Relaxed);
                executions.fetch_add(my_runs, Ordering::Relaxed);
                torn.fetch_add(my_torn, Ordering::Relaxed);
                state_ahead.fetch_add(my_ahead, Ordering::Relaxed);
                checked.fetch_add(my_checked, Ordering::Relaxed);
            });
        }

        // Workers stop even if the committer panics (a failed commit), so
        // the scope can join them and report the panic instead of hanging.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        // Commit once every worker runs: a thread being created blocks every
        // signal for a moment, and a signal rendezvous would report it.
        while started.load(Ordering::Acquire) < p.threads as u64 {
            std::thread::yield_now();
        }
        let mut rng = p.seed | 1;
        let mut states: Vec<bool> = keys.iter().map(|k| k.is_enabled()).collect();
        for c in 0..p.commits as u64 {
            let n = 1 + (xorshift(&mut rng) as usize) % p.batch_max;
            let mut changes = Vec::with_capacity(n);
            let mut picked = std::collections::HashSet::new();
            while picked.len() < n {
                let k = (xorshift(&mut rng) as usize) % NKEYS;
                if picked.insert(k) {
                    states[k] = !states[k];
                    changes.push(Change::Key(&keys[k], states[k]));
                }
            }
            for (k, key) in keys.iter().enumerate() {
                prev[k].store(key.is_enabled(), Ordering::Relaxed);
            }
            epoch.store(2 * c + 1, Ordering::Release);
            let t = Instant::now();
            let report = dynkey_text::commit(&changes).expect("commit");
            outcome.commit_us.push(t.elapsed().as_secs_f64() * 1e6);
            outcome.rendezvous += report.rendezvous;
            outcome.empty_commits += (report.sites_patched_total() == 0) as usize;
            for (k, &on) in states.iter().enumerate() {
                expected[k].store(on, Ordering::Relaxed);
            }
            let done = 2 * c + 2;
            epoch.store(done, Ordering::Release);
            // Handshake: every worker finishes a clean pass of this epoch.
            while seen.iter().any(|s| s.load(Ordering::Acquire) < done) {
                std::thread::yield_now();
            }
        }
    })
    .expect("a worker panicked");
    outcome.stale = stale.load(Ordering::Relaxed);
    outcome.executions = executions.load(Ordering::Relaxed);
    outcome.torn = torn.load(Ordering::Relaxed);
    outcome.state_ahead = state_ahead.load(Ordering::Relaxed);
    outcome.checked = checked.load(Ordering::Relaxed);
    outcome.commit_us.sort_by(f64::total_cmp);
    outcome
}
