//! Process-wide counters: plain atomics, read by whoever wants a snapshot.
//!
//! Every counter is written only by the committer, which holds the text lock,
//! and read by scrapers at any time. Nothing here is on a site's read path, so
//! the counters need no padding against workers; they sit in one
//! cache-padded block so they never share a line with hot flags.
//!
//! # Orderings
//!
//! All operations are `Relaxed`: a snapshot is a set of independent monotonic
//! counts, not a consistent cut, and no other memory is published through
//! them.
//!
//! Durations go into fixed power-of-two buckets (`le` 1 µs, 2 µs, ... ~33 s),
//! enough for a Prometheus histogram built at scrape time.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::{Method, SiteKind};

/// Number of duration buckets; bucket `i` counts durations up to `2^i` µs.
pub const BUCKETS: usize = 26;

/// Upper bounds of the duration buckets, in seconds.
pub fn bucket_bounds() -> [f64; BUCKETS] {
    let mut out = [0.0; BUCKETS];
    for (i, b) in out.iter_mut().enumerate() {
        *b = (1u64 << i) as f64 * 1e-6;
    }
    out
}

struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    overflow: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            overflow: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    fn record(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        // Smallest i with us <= 2^i.
        let i = if us <= 1 {
            0
        } else {
            (64 - (us - 1).leading_zeros()) as usize
        };
        match self.buckets.get(i) {
            Some(b) => b.fetch_add(1, Relaxed),
            None => self.overflow.fetch_add(1, Relaxed),
        };
        self.sum_ns
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let buckets: [u64; BUCKETS] = std::array::from_fn(|i| self.buckets[i].load(Relaxed));
        // The count is derived from what was read, not read on its own: a
        // commit recording meanwhile could otherwise leave a bucket above
        // the total, which Prometheus rejects.
        let count = buckets.iter().sum::<u64>() + self.overflow.load(Relaxed);
        HistogramSnapshot {
            buckets,
            count,
            sum_seconds: self.sum_ns.load(Relaxed) as f64 * 1e-9,
        }
    }
}

/// A histogram's counts: per bucket (not cumulative), total and sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramSnapshot {
    /// Count of observations in each bucket of [`bucket_bounds`] (not cumulative).
    pub buckets: [u64; BUCKETS],
    /// All observations, including those above the last bound.
    pub count: u64,
    /// Sum of all observations, in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// Cumulative counts per bound, as Prometheus wants them.
    pub fn cumulative(&self) -> [u64; BUCKETS] {
        let mut acc = 0;
        std::array::from_fn(|i| {
            acc += self.buckets[i];
            acc
        })
    }
}

pub(crate) struct Counters {
    commits: AtomicU64,
    rendezvous: [AtomicU64; 3],
    sites_patched: [AtomicU64; 3],
    sites_skipped: AtomicU64,
    timeouts: AtomicU64,
    commit_time: Histogram,
    rendezvous_time: Histogram,
}

pub(crate) static COUNTERS: CachePadded<Counters> = CachePadded::new(Counters {
    commits: AtomicU64::new(0),
    rendezvous: [const { AtomicU64::new(0) }; 3],
    sites_patched: [const { AtomicU64::new(0) }; 3],
    sites_skipped: AtomicU64::new(0),
    timeouts: AtomicU64::new(0),
    commit_time: Histogram::new(),
    rendezvous_time: Histogram::new(),
});

impl Counters {
    pub(crate) fn commit(&self, d: Duration) {
        self.commits.fetch_add(1, Relaxed);
        self.commit_time.record(d);
    }
    pub(crate) fn rendezvous(&self, m: Method, d: Duration) {
        self.rendezvous[m as usize].fetch_add(1, Relaxed);
        self.rendezvous_time.record(d);
    }
    pub(crate) fn patched(&self, k: SiteKind, n: u64) {
        self.sites_patched[k as usize].fetch_add(n, Relaxed);
    }
    pub(crate) fn skipped(&self, n: u64) {
        self.sites_skipped.fetch_add(n, Relaxed);
    }
    pub(crate) fn timeout(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }
}

/// A copy of every counter at one moment (each read independently).
#[derive(Debug, Clone, PartialEq)]
pub struct CountersSnapshot {
    /// Commits that ran (including ones that changed nothing).
    pub commits: u64,
    /// Rendezvous performed, by method (index with `Method as usize`).
    pub rendezvous: [u64; 3],
    /// Site words or bytes written, by kind (index with `SiteKind as usize`).
    pub sites_patched: [u64; 3],
    /// Sites of changed keys that already held the wanted bytes.
    pub sites_skipped: u64,
    /// Signal rendezvous that timed out.
    pub rendezvous_timeouts: u64,
    /// Commit durations.
    pub commit_duration: HistogramSnapshot,
    /// Rendezvous durations.
    pub rendezvous_duration: HistogramSnapshot,
}

impl CountersSnapshot {
    /// Rendezvous of every method.
    pub fn rendezvous_total(&self) -> u64 {
        self.rendezvous.iter().sum()
    }
    /// Rendezvous of one method.
    pub fn rendezvous_of(&self, m: Method) -> u64 {
        self.rendezvous[m as usize]
    }
    /// Sites patched of one kind.
    pub fn patched_of(&self, k: SiteKind) -> u64 {
        self.sites_patched[k as usize]
    }
}

/// Reads every counter.
pub fn counters() -> CountersSnapshot {
    let c = &*COUNTERS;
    CountersSnapshot {
        commits: c.commits.load(Relaxed),
        rendezvous: std::array::from_fn(|i| c.rendezvous[i].load(Relaxed)),
        sites_patched: std::array::from_fn(|i| c.sites_patched[i].load(Relaxed)),
        sites_skipped: c.sites_skipped.load(Relaxed),
        rendezvous_timeouts: c.timeouts.load(Relaxed),
        commit_duration: c.commit_time.snapshot(),
        rendezvous_duration: c.rendezvous_time.snapshot(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_power_of_two_micros() {
        let h = Histogram::new();
        h.record(Duration::from_nanos(300)); // <= 1 us
        h.record(Duration::from_micros(1)); // <= 1 us
        h.record(Duration::from_micros(3)); // <= 4 us
        h.record(Duration::from_micros(4)); // <= 4 us
        h.record(Duration::from_secs(3600)); // above every bound
        let s = h.snapshot();
        assert_eq!(s.buckets[0], 2);
        assert_eq!(s.buckets[2], 2);
        assert_eq!(s.count, 5);
        assert_eq!(
            s.cumulative()[BUCKETS - 1],
            4,
            "the overflow is only in count"
        );
        assert!((bucket_bounds()[2] - 4e-6).abs() < 1e-12);
    }
}
