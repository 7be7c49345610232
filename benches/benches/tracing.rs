//! tracing's macros as dyndbg sites (`dynkey_tracing::debug!`) against
//! tracing's own `debug!`, across 1,000 distinct sites in one generated
//! function each, in one run so each figure is a ratio:
//!
//! - `tracing_disabled_1000`: every site off. `dynkey_tracing` and
//!   `pr_debug` (dynkey's own callsite: the same NOP) need no subscriber;
//!   tracing's under the filters services use: a global INFO max level
//!   (`LevelFilter::INFO`), an `EnvFilter` at `info`, the `reload` layer
//!   over it; then with another target at DEBUG (tracing's global level
//!   rises, each callsite answers from its interest cache, "never": what a
//!   third-party callsite costs under `dynkey_tracing::layer()`, which
//!   gives no level hint), and with the reload layer over an `EnvFilter`
//!   holding a span directive (every callsite "sometimes": the filter, and
//!   the reload layer's lock, on every call).
//! - `tracing_enabled_1000`: every site on, emitting to a no-op subscriber
//!   (`enabled` true, an empty `event`): `dynkey_tracing::debug!` against
//!   `tracing::debug!`; `tracing_enabled_1`: the same with one site each,
//!   in a loop of [`INNER`] events (the code of one site stays in cache).
//!
//! Each case installs its own dispatcher (`with_default`) and drops it
//! before the next, so tracing computes interest and max level for that
//! dispatcher alone; every case is checked (events counted) before it is
//! timed.
//!
//! Run: `cargo bench -p dynkey-benches --bench tracing`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dynkey_benches::INNER;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Dispatch, Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::{EnvFilter, filter::LevelFilter, reload};

#[allow(clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/read1000_tracing.rs"));
}
use generated::*;

/// Sites per generated function.
const N: u64 = 1000;

/// [`INNER`] events from one `dynkey_tracing::debug!` site.
#[inline(never)]
fn tight_dynkey_tracing() {
    for i in 0..INNER {
        dynkey_tracing::debug!(i, "tight");
    }
}

/// [`INNER`] events from one `tracing::debug!` callsite.
#[inline(never)]
fn tight_tracing() {
    for i in 0..INNER {
        tracing::debug!(i, "tight");
    }
}

/// Counts the events that reach it: a disabled case must see none.
#[derive(Clone, Default)]
struct Count(Arc<AtomicU64>);

impl<S: Subscriber> Layer<S> for Count {
    fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
        self.0.fetch_add(1, Relaxed);
    }
}

/// A subscriber that wants everything and does nothing with it.
#[derive(Clone, Default)]
struct NoOp(Arc<AtomicU64>);

impl Subscriber for NoOp {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        std::hint::black_box(e);
        // Relaxed: read by the check after the calls, on this thread.
        self.0.fetch_add(1, Relaxed);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// How one disabled case of `tracing::debug!` makes its subscriber.
type Make = Box<dyn Fn(&Count) -> Dispatch>;

fn with_count(
    filter: impl Layer<tracing_subscriber::Registry> + Send + Sync,
    count: &Count,
) -> Dispatch {
    Dispatch::new(
        tracing_subscriber::registry()
            .with(filter)
            .with(count.clone()),
    )
}

/// The disabled cases of `tracing::debug!`: criterion id and subscriber.
/// Each is made only when its turn comes (tracing combines the interest of
/// every live dispatcher).
fn filtered() -> Vec<(&'static str, Make)> {
    vec![
        (
            "tracing_max_level_info",
            Box::new(|c| with_count(LevelFilter::INFO, c)),
        ),
        (
            "tracing_env_filter_info",
            Box::new(|c| with_count(EnvFilter::new("info"), c)),
        ),
        (
            "tracing_reload_env_filter_info",
            Box::new(|c| with_count(reload::Layer::new(EnvFilter::new("info")).0, c)),
        ),
        (
            "tracing_callsite_never",
            Box::new(|c| with_count(EnvFilter::new("info,elsewhere=debug"), c)),
        ),
        (
            "tracing_reload_span_directive",
            Box::new(|c| {
                with_count(
                    reload::Layer::new(EnvFilter::new("info,[elsewhere]=debug")).0,
                    c,
                )
            }),
        ),
    ]
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

fn status() {
    let status = dynkey::control().status().expect("dynkey starts");
    eprintln!(
        "tracing: dynkey sites are {} (rendezvous {}{})",
        status.site_kind,
        status.method,
        status
            .fallback
            .map(|f| format!(", fallback: {f}"))
            .unwrap_or_default()
    );
}

fn disabled(c: &mut Criterion) {
    status();
    let mut g = c.benchmark_group("tracing_disabled_1000");
    g.throughput(Throughput::Elements(N));
    {
        // No subscriber at all: the sites are off before tracing is asked.
        let none = NoOp::default();
        let dispatch = Dispatch::new(none.clone());
        tracing::dispatcher::with_default(&dispatch, || {
            dynkey_tracing_debugs();
            assert_eq!(none.0.load(Relaxed), 0, "dynkey_tracing: sites are off");
            g.bench_function("dynkey_tracing", |b| b.iter(dynkey_tracing_debugs));
            g.bench_function("pr_debug", |b| b.iter(pr_debugs));
        });
    }
    let count = Count::default();
    for (id, make) in filtered() {
        let dispatch = make(&count);
        tracing::dispatcher::with_default(&dispatch, || {
            tracing_debugs();
            assert_eq!(count.0.load(Relaxed), 0, "{id}: every callsite is off");
            g.bench_function(id, |b| b.iter(tracing_debugs));
        });
        // Dropped before the next case: tracing forgets its interest.
        drop(dispatch);
    }
    g.finish();
}

fn enabled(c: &mut Criterion) {
    let control = dynkey::control();
    let r = control
        .exec("func dynkey_tracing_debugs class DEBUG +p")
        .expect("sites on");
    assert_eq!(r.changed as u64, N);
    let mut g = c.benchmark_group("tracing_enabled_1000");
    g.throughput(Throughput::Elements(N));
    let noop = NoOp::default();
    let dispatch = Dispatch::new(noop.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        dynkey_tracing_debugs();
        assert_eq!(noop.0.load(Relaxed), N, "dynkey_tracing: every site emits");
        tracing_debugs();
        assert_eq!(noop.0.load(Relaxed), 2 * N, "tracing: every callsite emits");
        g.bench_function("dynkey_tracing", |b| b.iter(dynkey_tracing_debugs));
        g.bench_function("tracing", |b| b.iter(tracing_debugs));
    });
    g.finish();

    // One site in a tight loop: the enabled path without the cost of
    // fetching 1,000 sites' code.
    let r = control
        .exec("func tight_dynkey_tracing class DEBUG +p")
        .expect("site on");
    assert_eq!(r.changed, 1);
    let mut g = c.benchmark_group("tracing_enabled_1");
    g.throughput(Throughput::Elements(INNER.into()));
    tracing::dispatcher::with_default(&dispatch, || {
        let before = noop.0.load(Relaxed);
        tight_dynkey_tracing();
        tight_tracing();
        assert_eq!(noop.0.load(Relaxed) - before, 2 * u64::from(INNER));
        g.bench_function("dynkey_tracing", |b| b.iter(tight_dynkey_tracing));
        g.bench_function("tracing", |b| b.iter(tight_tracing));
    });
    g.finish();
    control
        .exec("func tight_dynkey_tracing class DEBUG -p")
        .expect("site off");
    control
        .exec("func dynkey_tracing_debugs class DEBUG -p")
        .expect("sites off");
}

criterion_group! {
    name = benches;
    config = config();
    targets = disabled, enabled
}
criterion_main!(benches);
