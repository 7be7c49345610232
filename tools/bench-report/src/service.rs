//! The service-level sections: dynkeyd batching concurrent changes (with
//! and without a durable state directory) and fleet convergence over NATS.
//! Both come from scripts that drive real processes, not from criterion,
//! so they have sections (and targets) of their own.

use std::fmt::Write as _;

use super::{Inputs, fmt_ns};

fn num(v: &serde_json::Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

/// `benches/load/durable.sh --save`.
pub(super) fn durable(i: &Inputs, s: &mut String) {
    let Some(d) = &i.durable else { return };
    let _ = writeln!(
        s,
        "## Batching and durable state under load\n\n`bash benches/load/durable.sh --save {secs}` \
         (wrk from Debian, 2 threads, {conns} connections, {secs} s per row, on the same 2 vCPUs \
         as the server), against the demo while its workers keep running their sites: the \
         server's ceiling (`GET /healthz`), then the load bench's small queries to `POST \
         /control`, then the same with `--state-dir` (every reply durable: journaled and \
         fsynced before it is sent). Concurrent changes are gathered into one batch: one \
         journal write and fsync, one commit, one rendezvous. Rendezvous and commits per \
         request come from the server's own counters.\n\n\
         | row | requests/s | p50 | p99 | rendezvous per request | commits per request | mean batch | non-2xx |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
        secs = d["seconds"],
        conns = d["connections"],
    );
    for r in d["rows"].as_array().into_iter().flatten() {
        let us = |k: &str| fmt_ns(num(r, k) * 1e3);
        let _ = writeln!(
            s,
            "| `{}` | {:.0} | {} | {} | {:.3} | {:.3} | {:.1} | {} |",
            r["row"].as_str().unwrap_or("?"),
            num(r, "rps"),
            us("p50_us"),
            us("p99_us"),
            num(r, "rendezvous_per_request"),
            num(r, "commits_per_request"),
            num(r, "mean_batch"),
            r["non_2xx"],
        );
    }
    s.push('\n');
}

/// The `dynkey-fleet` converge bench with `--save`.
pub(super) fn fleet(i: &Inputs, s: &mut String) {
    let Some(f) = &i.fleet else { return };
    s.push_str(
        "## Fleet convergence (NATS JetStream KV)\n\n`cargo bench -p dynkey-fleet --bench converge \
         -- --instances 1,10,50 --applies 100 --save`. Each row: one nats-server 2.15 (file \
         store), N dynkeyd processes (release, the kernel-like site table, no demo workers, \
         `--state-dir`, each its own process), every apply a real `dynkeyctl apply --scope all \
         --query 'module virtio_net ±p'` process (alternating, so each apply changes code on \
         every instance), timed from its spawn until a watch on `dynkey_status` has seen every \
         instance report the new revision. \"dynkeyctl alone\" is that process's own time \
         (start, connect, read, compare-and-set write). Commits per instance per apply come from \
         the instances' own commit counters in their status documents. Everything runs on the \
         same 2 vCPUs: each apply wakes every process, and each plans its layers, rebuilds its \
         table with one commit and one rendezvous and writes its status, so the CPU, not the \
         fan-out, bounds the larger rows.\n\n\
         | instances | applies | p50 | p99 | max | dynkeyctl alone (p50) | commits per instance per apply |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in f["rounds"].as_array().into_iter().flatten() {
        let ms = |k: &str| fmt_ns(num(r, k) * 1e6);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.2} |",
            r["instances"],
            r["applies"],
            ms("p50_ms"),
            ms("p99_ms"),
            ms("max_ms"),
            ms("apply_process_p50_ms"),
            num(r, "commits_per_instance_per_apply"),
        );
    }
    s.push('\n');
}
