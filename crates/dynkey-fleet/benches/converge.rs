//! Convergence time of a fleet: from `dynkeyctl apply` to every instance's
//! status reporting the new revision, for 1, 10 and 50 dynkeyd processes
//! serving `fixtures/kernel-like.json` (no demo workers), and the
//! commits each instance made per apply.
//!
//! ```text
//! bash .ci/nats.sh && cargo build --release --bin dynkeyd
//! cargo bench -p dynkey-fleet --bench converge -- --instances 1,10,50 --applies 30 [--save]
//! ```
//!
//! `--save` also writes `$CARGO_TARGET_DIR/dynkey-bench/fleet.json` (next
//! to the other benches' saved results).
//!
//! Each apply runs the real dynkeyctl binary (process start, connect,
//! read, compare-and-set write) and is timed from its spawn until a watch
//! on `dynkey_status`, opened before, has seen every instance report the
//! revision: what `dynkeyctl status --wait` would see, without its polling.
//! Applies alternate `module virtio_net +p` / `-p` on scope `all`, so every
//! apply changes code on every instance.
//!
//! Under `cargo test --benches` it runs one small round (1 instance, 2
//! applies) when dynkeyd is built, so the harness itself stays working.

#[path = "../tests/nats/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dynkey_fleet::docs::StatusDoc;
use futures_util::StreamExt;
use support::{Dynkeyd, Nats, Server, TempDir, ctl, init};

struct Round {
    instances: usize,
    latencies: Vec<Duration>,
    apply_process: Vec<Duration>,
    commits_per_instance: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn round(n: usize, applies: usize) -> Round {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    let dirs: Vec<TempDir> = (0..n).map(|i| TempDir::new(&format!("bench{i}"))).collect();
    let members: Vec<Dynkeyd> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Dynkeyd::start(
                &url,
                &format!("bench-{i}"),
                "svc=bench",
                "5s",
                d.path(),
                &[],
            )
        })
        .collect();
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let status = async_nats::jetstream::new(client)
        .get_key_value("dynkey_status")
        .await
        .unwrap();
    let mut watch = status.watch_with_history(">").await.unwrap();
    let mut docs: BTreeMap<String, StatusDoc> = BTreeMap::new();
    // Every instance has reported once.
    while docs.len() < n {
        let e = watch.next().await.unwrap().unwrap();
        if let Ok(d) = serde_json::from_slice::<StatusDoc>(&e.value) {
            docs.insert(d.id.clone(), d);
        }
    }
    let mut latencies = Vec::new();
    let mut apply_process = Vec::new();
    let mut commits = 0u64;
    for i in 0..applies {
        let before: u64 = docs.values().map(|d| d.commits).sum();
        let body = if i % 2 == 0 {
            "module virtio_net +p"
        } else {
            "module virtio_net -p"
        };
        let t0 = Instant::now();
        let r = ctl(&url, &["apply", "--scope", "all", "--query", body]);
        apply_process.push(t0.elapsed());
        assert_eq!(r.code, 0, "{r:?}");
        let rev = r.out["revision"].as_u64().unwrap();
        let done = |docs: &BTreeMap<String, StatusDoc>| {
            docs.len() == n
                && docs
                    .values()
                    .all(|d| d.applied.get("all").is_some_and(|r| *r >= rev))
        };
        while !done(&docs) {
            let e = tokio::time::timeout(Duration::from_secs(30), watch.next())
                .await
                .expect("converged within 30 s")
                .unwrap()
                .unwrap();
            if let Ok(d) = serde_json::from_slice::<StatusDoc>(&e.value) {
                docs.insert(d.id.clone(), d);
            }
        }
        latencies.push(t0.elapsed());
        commits += docs.values().map(|d| d.commits).sum::<u64>() - before;
    }
    drop(members);
    latencies.sort();
    Round {
        instances: n,
        latencies,
        apply_process,
        commits_per_instance: commits as f64 / (n * applies) as f64,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let (sizes, applies): (Vec<usize>, usize) = if bench {
        (
            get("--instances")
                .unwrap_or_else(|| "1,10,50".into())
                .split(',')
                .map(|s| s.parse().expect("--instances N,N,..."))
                .collect(),
            get("--applies").map_or(30, |s| s.parse().expect("--applies N")),
        )
    } else {
        // Test mode: a smoke round if dynkeyd is there.
        let exe = std::env::current_exe().unwrap();
        if !exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("dynkeyd")
            .exists()
        {
            println!("converge: dynkeyd not built; skipped (run with cargo bench)");
            return;
        }
        (vec![1], 2)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| instances | applies | p50 | p99 | max | dynkeyctl apply alone (p50) | commits per instance per apply |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let mut saved = Vec::new();
    for n in sizes {
        let r = rt.block_on(round(n, applies));
        let mut proc_times = r.apply_process.clone();
        proc_times.sort();
        saved.push(serde_json::json!({
            "instances": r.instances,
            "applies": r.latencies.len(),
            "p50_ms": ms(percentile(&r.latencies, 0.5)),
            "p99_ms": ms(percentile(&r.latencies, 0.99)),
            "max_ms": ms(*r.latencies.last().unwrap()),
            "apply_process_p50_ms": ms(percentile(&proc_times, 0.5)),
            "commits_per_instance_per_apply": r.commits_per_instance,
        }));
        println!(
            "| {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} |",
            r.instances,
            r.latencies.len(),
            percentile(&r.latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&r.latencies, 0.99).as_secs_f64() * 1e3,
            r.latencies.last().unwrap().as_secs_f64() * 1e3,
            percentile(&proc_times, 0.5).as_secs_f64() * 1e3,
            r.commits_per_instance,
        );
    }
    if args.iter().any(|a| a == "--save") {
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target")
            })
            .join("dynkey-bench");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("fleet.json");
        std::fs::write(&file, serde_json::json!({ "rounds": saved }).to_string()).unwrap();
        eprintln!("converge: saved {}", file.display());
    }
}
