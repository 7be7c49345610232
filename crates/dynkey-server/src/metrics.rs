//! Prometheus metrics, read from dynkey's counters at scrape time.
//!
//! [`DynkeyCollector`] is a custom `prometheus::core::Collector`: nothing on
//! a hot path touches prometheus (a labelled counter costs ~13 ns per
//! increment); the collector reads dynkey's plain atomics when scraped and
//! builds the families then. The prometheus crate's process collector adds
//! the usual `process_*` metrics.

use std::collections::HashMap;

use dynkey::{Control, Method, RowKind, SiteKind};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    labels: &'static [&'static str],
}

const FAMILIES: &[Family] = &[
    Family {
        name: "dynkey_commits_total",
        help: "Commits run.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    Family {
        name: "dynkey_rendezvous_total",
        help: "Cross-thread rendezvous performed, by method.",
        kind: MetricType::COUNTER,
        labels: &["method"],
    },
    Family {
        name: "dynkey_sites_patched_total",
        help: "Sites rewritten, by kind.",
        kind: MetricType::COUNTER,
        labels: &["kind"],
    },
    Family {
        name: "dynkey_sites_skipped_total",
        help: "Sites of changed keys that already held the wanted bytes.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    Family {
        name: "dynkey_sites",
        help: "Sites by kind (inline, trampoline, atomic; tracing for rows of tracing callsites) and key state.",
        kind: MetricType::GAUGE,
        labels: &["kind", "state"],
    },
    Family {
        name: "dynkey_commit_duration_seconds",
        help: "Time per commit.",
        kind: MetricType::HISTOGRAM,
        labels: &[],
    },
    Family {
        name: "dynkey_rendezvous_duration_seconds",
        help: "Time per rendezvous.",
        kind: MetricType::HISTOGRAM,
        labels: &[],
    },
    Family {
        name: "dynkey_queries_total",
        help: "Dyndbg queries applied (ok) or rejected (error).",
        kind: MetricType::COUNTER,
        labels: &["result"],
    },
    Family {
        name: "dynkey_rendezvous_method",
        help: "The rendezvous method in use (1) and the others (0).",
        kind: MetricType::GAUGE,
        labels: &["method"],
    },
    Family {
        name: "dynkey_rendezvous_timeouts_total",
        help: "Signal rendezvous that timed out.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    Family {
        name: "dynkey_journal_bytes",
        help: "Bytes in the state directory's journal (0 without one).",
        kind: MetricType::GAUGE,
        labels: &[],
    },
    Family {
        name: "dynkey_journal_fsync_duration_seconds",
        help: "Time per journal write and fsync (one per batch of requests).",
        kind: MetricType::HISTOGRAM,
        labels: &[],
    },
    Family {
        name: "dynkey_batch_size",
        help: "Requests per batch (they share one journal write, one commit, one rendezvous).",
        kind: MetricType::HISTOGRAM,
        labels: &[],
    },
    Family {
        name: "dynkey_expired_operations_total",
        help: "Operations removed at their expiry.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    Family {
        name: "dynkey_revoked_operations_total",
        help: "Local operations revoked.",
        kind: MetricType::COUNTER,
        labels: &[],
    },
    Family {
        name: "dynkey_local_operations",
        help: "Local operations in force.",
        kind: MetricType::GAUGE,
        labels: &[],
    },
];

fn family(f: &Family, metrics: Vec<Metric>) -> MetricFamily {
    let mut mf = MetricFamily::default();
    mf.set_name(f.name.to_string());
    mf.set_help(f.help.to_string());
    mf.set_field_type(f.kind);
    mf.set_metric(metrics);
    mf
}

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name(k.to_string());
            l.set_value(v.to_string());
            l
        })
        .collect()
}

pub(crate) fn counter(value: f64, pairs: &[(&str, &str)]) -> Metric {
    let mut c = Counter::default();
    c.set_value(value);
    let mut m = Metric::from_label(labels(pairs));
    m.set_counter(c);
    m
}

pub(crate) fn gauge(value: f64, pairs: &[(&str, &str)]) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::from_label(labels(pairs));
    m.set_gauge(g);
    m
}

fn histogram(h: &dynkey::HistogramSnapshot) -> Metric {
    histogram_of(
        &h.cumulative(),
        &dynkey::bucket_bounds(),
        h.count,
        h.sum_seconds,
    )
}

/// A histogram from per-bucket (not cumulative) counts.
fn histogram_from_buckets(per_bucket: &[u64], bounds: &[f64], sum: f64) -> Metric {
    let mut acc = 0;
    let cumulative: Vec<u64> = per_bucket
        .iter()
        .map(|n| {
            acc += n;
            acc
        })
        .collect();
    histogram_of(&cumulative, bounds, acc, sum)
}

fn histogram_of(cumulative: &[u64], bounds: &[f64], count: u64, sum: f64) -> Metric {
    let buckets = cumulative
        .iter()
        .zip(bounds.iter().copied())
        .map(|(&count, bound)| {
            let mut b = Bucket::default();
            b.set_cumulative_count(count);
            b.set_upper_bound(bound);
            b
        })
        .collect();
    let mut hist = Histogram::default();
    hist.set_sample_count(count);
    hist.set_sample_sum(sum);
    hist.set_bucket(buckets);
    let mut m = Metric::default();
    m.set_histogram(hist);
    m
}

/// Reads dynkey's counters at scrape time.
#[derive(Debug)]
pub struct DynkeyCollector {
    control: Control,
    descs: Vec<Desc>,
}

impl DynkeyCollector {
    /// A collector for the process's dynkey.
    pub fn new(control: Control) -> DynkeyCollector {
        let descs = FAMILIES
            .iter()
            .map(|f| {
                Desc::new(
                    f.name.into(),
                    f.help.into(),
                    f.labels.iter().map(|l| l.to_string()).collect(),
                    HashMap::new(),
                )
                .expect("valid metric names")
            })
            .collect();
        DynkeyCollector { control, descs }
    }
}

impl Collector for DynkeyCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let c = self.control.counters();
        let st = self.control.state_counters();
        let t = &c.text;
        let f = |i: usize, metrics| family(&FAMILIES[i], metrics);
        let per_method = |values: [u64; 3]| {
            Method::ALL
                .iter()
                .map(|m| counter(values[*m as usize] as f64, &[("method", m.as_str())]))
                .collect()
        };
        vec![
            f(0, vec![counter(t.commits as f64, &[])]),
            f(1, per_method(t.rendezvous)),
            f(
                2,
                SiteKind::ALL
                    .iter()
                    .map(|k| counter(t.sites_patched[*k as usize] as f64, &[("kind", k.as_str())]))
                    .collect(),
            ),
            f(3, vec![counter(t.sites_skipped as f64, &[])]),
            f(
                4,
                SiteKind::ALL
                    .iter()
                    .flat_map(|k| {
                        [(false, "disabled"), (true, "enabled")].map(|(on, state)| {
                            gauge(
                                c.census.count(*k, on) as f64,
                                &[("kind", k.as_str()), ("state", state)],
                            )
                        })
                    })
                    // Rows of tracing callsites: nothing patched, a flag read
                    // by a tracing filter.
                    .chain(
                        [
                            (c.tracing_rows.0, "disabled"),
                            (c.tracing_rows.1, "enabled"),
                        ]
                        .map(|(n, state)| {
                            gauge(
                                n as f64,
                                &[("kind", RowKind::Tracing.as_str()), ("state", state)],
                            )
                        }),
                    )
                    .collect(),
            ),
            f(5, vec![histogram(&t.commit_duration)]),
            f(6, vec![histogram(&t.rendezvous_duration)]),
            f(
                7,
                vec![
                    counter(c.queries_ok as f64, &[("result", "ok")]),
                    counter(c.queries_error as f64, &[("result", "error")]),
                ],
            ),
            f(
                8,
                Method::ALL
                    .iter()
                    .map(|m| gauge((*m == c.method) as u8 as f64, &[("method", m.as_str())]))
                    .collect(),
            ),
            f(9, vec![counter(t.rendezvous_timeouts as f64, &[])]),
            f(10, vec![gauge(st.journal_bytes as f64, &[])]),
            f(
                11,
                vec![histogram_from_buckets(
                    &st.fsync_buckets,
                    &dynkey::bucket_bounds(),
                    st.fsync_seconds,
                )],
            ),
            f(
                12,
                vec![histogram_from_buckets(
                    &st.batch_buckets,
                    &(0..st.batch_buckets.len())
                        .map(|i| (1u64 << i) as f64)
                        .collect::<Vec<_>>(),
                    st.batch_requests as f64,
                )],
            ),
            f(13, vec![counter(st.expired as f64, &[])]),
            f(14, vec![counter(st.revoked as f64, &[])]),
            f(15, vec![gauge(st.local_ops as f64, &[])]),
        ]
    }
}

/// A registry with dynkey's and the process's collectors, for `GET /metrics`.
pub fn registry(control: Control) -> prometheus::Registry {
    let r = prometheus::Registry::new();
    r.register(Box::new(DynkeyCollector::new(control)))
        .expect("dynkey metrics register once");
    // The prometheus crate's own process collector reads /proc/self with
    // the system's clock tick and page size.
    r.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))
    .expect("process metrics register once");
    r
}

/// The text exposition of `registry`.
pub fn encode(registry: &prometheus::Registry) -> String {
    use prometheus::Encoder;
    let mut buf = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding does not fail");
    String::from_utf8(buf).expect("the text format is UTF-8")
}
