//! The cost of one rendezvous, by method, with 0, 1 and 8 busy threads
//! (threads spinning in user space, so they hold CPUs).
//!
//! - membarrier (`PRIVATE_EXPEDITED_SYNC_CORE`) sends one IPI to each CPU
//!   running one of our threads: on 2 vCPUs at most one, whatever the
//!   thread count;
//! - signals must be answered by every thread, so each busy thread must be
//!   scheduled: 8 spinners on 2 CPUs make the committer wait for the
//!   scheduler (the reason it blocks on a futex rather than spinning).
//!
//! Each run is one rendezvous outside any commit
//! (`dynkey_text::testing::rendezvous`). Before timing, the `CAL` IPIs of
//! a few hundred rendezvous are counted and saved for the report.
//!
//! Run: `cargo bench -p dynkey-benches --bench rendezvous`.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use dynkey_benches::interrupts::Interrupts;
use dynkey_text::Method;

/// Busy threads per configuration.
const BUSY: [usize; 3] = [0, 1, 8];
/// How long a signal rendezvous may wait.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Rendezvous counted for their interrupts.
const COUNTED: u64 = 200;

fn once(method: Method) {
    dynkey_text::testing::rendezvous(method, true, TIMEOUT).expect("rendezvous");
}

fn benches(c: &mut Criterion) {
    let mut counts = Vec::new();
    for method in [Method::Membarrier, Method::Signal] {
        let mut g = c.benchmark_group(format!("rendezvous_{method}"));
        if method == Method::Signal {
            // Milliseconds per call once threads outnumber CPUs.
            g.sampling_mode(SamplingMode::Flat).sample_size(20);
        }
        for busy in BUSY {
            let stop = AtomicBool::new(false);
            std::thread::scope(|s| {
                for _ in 0..busy {
                    // Relaxed: only a stop flag.
                    s.spawn(|| {
                        while !stop.load(Relaxed) {
                            std::hint::spin_loop();
                        }
                    });
                }
                once(method);
                let before = Interrupts::now();
                let start = std::time::Instant::now();
                for _ in 0..COUNTED {
                    once(method);
                }
                let mean_us = start.elapsed().as_secs_f64() * 1e6 / COUNTED as f64;
                let irq = Interrupts::now().since(before);
                counts.push(serde_json::json!({
                    "method": method.as_str(),
                    "busy": busy,
                    "rendezvous": COUNTED,
                    "mean_us": mean_us,
                    "ipi_cal_per_rendezvous": irq.cal as f64 / COUNTED as f64,
                }));
                g.bench_function(BenchmarkId::from_parameter(busy), |b| {
                    b.iter(|| once(method))
                });
                stop.store(true, Relaxed);
            });
        }
        g.finish();
    }
    dynkey_benches::save_counts("rendezvous", &serde_json::Value::Array(counts));
}

criterion_group! {
    name = rendezvous;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(rendezvous);
