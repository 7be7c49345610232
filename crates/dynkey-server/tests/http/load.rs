//! Concurrent clients posting queries while the demo's workers run: every
//! reply is right and the final state is right. Concurrent requests are
//! batched (one commit, one rendezvous per batch), so a reply's
//! `rendezvous` is 1 when its batch ran one and the request changed a `p`
//! flag: the counter rises by at most the sum of the replies, and by at
//! least 1 when any reply reports one. Decoration-only changes cost none.

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
                        assert!(
                            rendezvous <= (flips_p && changed > 0) as u64,
                            "{q}: changed {changed}, rendezvous {rendezvous}: only a request \
                             that flips p can report a rendezvous, and at most one"
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
    assert!(used >= 1, "some reply reported a rendezvous");
    let rose = rendezvous_total(&d) - before;
    assert!(
        (1..=used).contains(&rose),
        "the metric rose by {rose}: at least 1, at most the {used} the replies reported"
    );
    // The final state: set it once more, then every row says it.
    let r = d.request(
        "POST",
        "/control",
        b"module virtio_net +p; module i915 -p; module drm =m",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sites = d.request("GET", "/control?format=json", b"").json();
    let sites = sites["sites"].as_array().unwrap();
    let mut seen = [0; 3];
    for s in sites {
        let (module, flags) = (s["module"].as_str().unwrap(), s["flags"].as_str().unwrap());
        match module {
            "virtio_net" => {
                assert_eq!(flags, "p", "{s}");
                seen[0] += 1;
            }
            "i915" if s["class"].is_null() => {
                assert_eq!(flags, "_", "{s}");
                seen[1] += 1;
            }
            "drm" if s["class"].is_null() => {
                assert_eq!(flags, "m", "{s}");
                seen[2] += 1;
            }
            _ => {}
        }
    }
    assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
}
