//! Queue modes: how a commit's planned writes are grouped into batches, each
//! written and then published with one rendezvous.
//!
//! The default is the whole plan as one batch, sorted by address (nothing in
//! userspace caps a batch). The other modes reproduce the kernel so its
//! figures can be compared in one process: unbatched (a rendezvous per
//! site), the stock 256-entry queue that flushes early whenever a lower
//! address arrives, and the 2026 RFC's insertion-sorted queue.

use crate::config::QueueMode;

/// Splits `items`, in visit order, into batches for `mode`.
pub(crate) fn batches<T>(
    items: Vec<T>,
    addr: impl Fn(&T) -> usize,
    mode: QueueMode,
) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    match mode {
        QueueMode::Sorted => {
            let mut all = items;
            // Addresses are distinct: no need for a stable (allocating) sort.
            all.sort_unstable_by_key(&addr);
            if !all.is_empty() {
                out.push(all);
            }
        }
        QueueMode::Unbatched => out.extend(items.into_iter().map(|i| vec![i])),
        QueueMode::QueuedUnsorted(cap) => {
            let mut q: Vec<T> = Vec::with_capacity(cap);
            for item in items {
                // The kernel's `text_poke_addr_ordered` check: a lower address
                // than the last queued one flushes the batch first.
                let out_of_order = q.last().is_some_and(|last| addr(&item) < addr(last));
                if q.len() >= cap || out_of_order {
                    out.push(std::mem::replace(&mut q, Vec::with_capacity(cap)));
                }
                q.push(item);
            }
            if !q.is_empty() {
                out.push(q);
            }
        }
        QueueMode::QueuedSorted(cap) => {
            let mut q: Vec<T> = Vec::with_capacity(cap);
            for item in items {
                if q.len() >= cap {
                    out.push(std::mem::replace(&mut q, Vec::with_capacity(cap)));
                }
                let at = q.partition_point(|x| addr(x) <= addr(&item));
                q.insert(at, item);
            }
            if !q.is_empty() {
                out.push(q);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(items: Vec<usize>, mode: QueueMode) -> usize {
        batches(items, |&a| a, mode).len()
    }

    #[test]
    fn default_is_one_sorted_batch() {
        let b = batches(vec![30, 10, 20], |&a| a, QueueMode::Sorted);
        assert_eq!(b, vec![vec![10, 20, 30]]);
        assert_eq!(count((0..100_000).collect(), QueueMode::Sorted), 1);
        assert_eq!(
            count(vec![], QueueMode::Sorted),
            0,
            "an empty plan costs no rendezvous"
        );
    }

    #[test]
    fn unbatched_is_one_per_site() {
        assert_eq!(count((0..1000).collect(), QueueMode::Unbatched), 1000);
    }

    #[test]
    fn sorted_queue_flushes_when_full() {
        assert_eq!(
            count((0..1000).rev().collect(), QueueMode::QueuedSorted(256)),
            4,
            "ceil(1000 / 256)"
        );
        assert_eq!(count((0..8077).collect(), QueueMode::QueuedSorted(256)), 32);
        let b = batches(vec![5, 1, 4, 2, 3], |&a| a, QueueMode::QueuedSorted(3));
        assert_eq!(b, vec![vec![1, 4, 5], vec![2, 3]], "each batch is sorted");
    }

    #[test]
    fn unsorted_queue_flushes_on_lower_address() {
        assert_eq!(
            count((0..1000).rev().collect(), QueueMode::QueuedUnsorted(256)),
            1000,
            "descending: every site"
        );
        assert_eq!(
            count((0..1000).collect(), QueueMode::QueuedUnsorted(256)),
            4,
            "ascending: only when full"
        );
        let b = batches(vec![1, 2, 0, 3], |&a| a, QueueMode::QueuedUnsorted(256));
        assert_eq!(b, vec![vec![1, 2], vec![0, 3]]);
    }
}
