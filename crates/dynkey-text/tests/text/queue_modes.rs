//! Rendezvous per commit in each queue mode, on run-time stubs whose
//! addresses ascend in allocation order. The queue mode is given per commit,
//! so these tests do not disturb others in this process.

use dynkey_text::{Change, QueueMode, RawKey, ValueSite, commit_with};

/// `n` keys, each with one run-time site allocated in key order.
fn keyed_sites(n: usize) -> Vec<(&'static RawKey, ValueSite)> {
    (0..n)
        .map(|_| {
            let k: &'static RawKey = Box::leak(Box::new(RawKey::new(false)));
            (k, ValueSite::new(k).unwrap())
        })
        .collect()
}

fn flip(sites: &[(&'static RawKey, ValueSite)], on: bool) -> Vec<Change> {
    sites.iter().map(|(k, _)| Change::Key(k, on)).collect()
}

#[test]
fn unbatched_costs_one_rendezvous_per_site() {
    let sites = keyed_sites(50);
    let r = commit_with(&flip(&sites, true), QueueMode::Unbatched).unwrap();
    assert_eq!(r.rendezvous, 50);
    assert!(sites.iter().all(|(_, s)| s.get()));
}

#[test]
fn sorted_queue_of_256_costs_four_for_1000_sites() {
    let sites = keyed_sites(1000);
    let r = commit_with(&flip(&sites, true), QueueMode::QueuedSorted(256)).unwrap();
    assert_eq!(r.rendezvous, 4);
    assert!(sites.iter().all(|(_, s)| s.get()));
}

#[test]
fn unsorted_queue_flushes_on_every_descending_site() {
    let sites = keyed_sites(300);
    let mut changes = flip(&sites, true);
    if sites[0].1.stub_addr().is_some() {
        // Stubs ascend with allocation order; visiting keys backwards makes
        // every address lower than the last queued one.
        changes.reverse();
        let r = commit_with(&changes, QueueMode::QueuedUnsorted(256)).unwrap();
        assert_eq!(r.rendezvous, 300);
    } else {
        // Atomic sites queue by key address, which Box::leak does not order.
        let r = commit_with(&changes, QueueMode::QueuedUnsorted(256)).unwrap();
        assert!(r.rendezvous >= 2);
    }
    assert!(sites.iter().all(|(_, s)| s.get()));
}

#[test]
fn default_costs_one_rendezvous() {
    let sites = keyed_sites(1000);
    let r = commit_with(&flip(&sites, true), QueueMode::Sorted).unwrap();
    assert_eq!(r.rendezvous, 1);
    let r = commit_with(&flip(&sites, false), QueueMode::Sorted).unwrap();
    assert_eq!(r.rendezvous, 1);
    assert!(sites.iter().all(|(_, s)| !s.get()));
}
