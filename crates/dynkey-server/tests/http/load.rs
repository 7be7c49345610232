//! Concurrent clients posting queries while the demo's workers run: every
//! reply is right, and the rendezvous total rises by exactly the number of
//! requests that changed a key (decoration-only changes cost none).

use crate::Daemon;

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 40;

fn rendezvous_total(d: &Daemon) -> u64 {
    let m = d.request("GET", "/metrics", b"").text();
    m.lines()
        .filter(|l| l.starts_with("dynkey_rendezvous_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

#[test]
fn concurrent_clients_while_workers_run() {
    let d = Daemon::start(&["--workers", "2"], &[]);
    let before = rendezvous_total(&d);
    let queries: [(&str, bool); 6] = [
        ("module virtio_net +p", true),
        ("module virtio_net -p", true),
        ("module i915 func *_ring_* +p", true),
        ("module i915 -p", true),
        ("module drm +mf", false),
        ("module drm -mf", false),
    ];
    let results: Vec<(u64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let d = &d;
                s.spawn(move || {
                    let mut used = 0;
                    let mut changing = 0;
                    for i in 0..PER_CLIENT {
                        let (q, flips_p) = queries[(c + i) % queries.len()];
                        let r = d.request("POST", "/control", q.as_bytes());
                        assert_eq!(r.status, 200, "{q}: {}", r.text());
                        let j = r.json();
                        let (changed, rendezvous) = (
                            j["changed"].as_u64().unwrap(),
                            j["rendezvous"].as_u64().unwrap(),
                        );
                        assert_eq!(j["queries"], 1);
                        assert!(changed <= j["matched"].as_u64().unwrap());
                        let expect = if flips_p && changed > 0 { 1 } else { 0 };
                        assert_eq!(
                            rendezvous, expect,
                            "{q}: changed {changed}: one rendezvous iff p flipped"
                        );
                        used += rendezvous;
                        changing += (flips_p && changed > 0) as u64;
                    }
                    (used, changing)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let used: u64 = results.iter().map(|r| r.0).sum();
    let changing: u64 = results.iter().map(|r| r.1).sum();
    assert!(changing > 0, "some requests changed keys");
    assert_eq!(used, changing);
    assert_eq!(
        rendezvous_total(&d) - before,
        used,
        "the metric rose by the rendezvous the replies reported"
    );
}
