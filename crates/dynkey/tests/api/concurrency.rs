//! Workers run compiled callsites and a static call from many threads while
//! queries and target switches run: no crash, and after each change returns
//! every worker's next pass sees it (the handshake of dynkey-text's stress
//! test: a pass counts only if no change overlapped it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dynkey::{Flags, control};

use crate::kernel_like::{self, SITES};

const WORKERS: usize = 8;
const ROUNDS: u64 = 60;

#[test]
#[allow(clippy::needless_range_loop)] // sites are numbered from 1, as in the fixture
fn sites_and_calls_follow_queries_under_load() {
    let _g = crate::global();
    struct Quiet;
    impl dynkey::sink::Sink for Quiet {
        fn emit(&self, _: &dynkey::sink::Record<'_>) {}
    }
    dynkey::sink::set_sink(Quiet);
    let queries = [
        "module virtio* +p",
        "module virtio* -p",
        "func e1000_* +p",
        "module !e1000e -p; file kernel/params.c +p",
        "module e1000e -p",
        "format link +pmf",
        "=_",
    ];
    let expected: Vec<AtomicBool> = (0..=SITES).map(|_| AtomicBool::new(false)).collect();
    let price_call = AtomicBool::new(false);
    let epoch = AtomicU64::new(0);
    let seen: Vec<AtomicU64> = (0..WORKERS).map(|_| AtomicU64::new(0)).collect();
    let stop = AtomicBool::new(false);
    let stale = AtomicU64::new(0);
    let refresh = |expected: &[AtomicBool]| {
        let rows = control().sites();
        for n in 1..=SITES {
            expected[n].store(
                kernel_like::row_of(&rows, n).flags.contains(Flags::P),
                Ordering::Relaxed,
            );
        }
    };
    control().exec("=_").unwrap();
    refresh(&expected);
    std::thread::scope(|s| {
        for w in 0..WORKERS {
            let (expected, epoch, seen, stop, stale, price_call) =
                (&expected, &epoch, &seen[w], &stop, &stale, &price_call);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let e1 = epoch.load(Ordering::Acquire);
                    let mut wrong = 0;
                    for n in 1..=SITES {
                        wrong +=
                            (kernel_like::run(n) != expected[n].load(Ordering::Relaxed)) as u64;
                    }
                    let discounted = dynkey_sample::SAMPLE_PRICE.get()(1000) == 900;
                    wrong += (discounted != price_call.load(Ordering::Relaxed)) as u64;
                    if epoch.load(Ordering::Acquire) == e1 && e1 % 2 == 0 {
                        stale.fetch_add(wrong, Ordering::Relaxed);
                        seen.store(e1, Ordering::Release);
                    }
                }
            });
        }
        for round in 0..ROUNDS {
            epoch.store(2 * round + 1, Ordering::Release);
            let q = queries[round as usize % queries.len()];
            control().exec(q).unwrap();
            let discount = round % 3 == 0;
            control()
                .set_call(
                    "SAMPLE_PRICE",
                    if discount { "discounted" } else { "list_price" },
                )
                .unwrap();
            price_call.store(discount, Ordering::Relaxed);
            refresh(&expected);
            epoch.store(2 * round + 2, Ordering::Release);
            while seen
                .iter()
                .any(|s| s.load(Ordering::Acquire) < 2 * round + 2)
            {
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    control().set_call("SAMPLE_PRICE", "list_price").unwrap();
    control().exec("=_").unwrap();
    dynkey::sink::reset_sink();
    assert_eq!(
        stale.load(Ordering::Relaxed),
        0,
        "a worker ran old code after a change returned"
    );
}
