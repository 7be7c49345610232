//! Group commit: concurrent requests share one journal write, one commit
//! and one rendezvous.
//!
//! Each caller queues its request and either waits or leads: the first
//! caller that finds no leader becomes it, takes every queued request,
//! runs them through the engine as one batch, and repeats while requests
//! keep arriving; then it steps down. Under load a batch is whatever
//! arrived while the previous one was being committed, so the cost of the
//! fsync and the rendezvous is shared by more requests exactly when there
//! are more of them. With no concurrency a request is its own batch and
//! pays nothing extra: no thread hop, no timer.
//!
//! Each request keeps its own all-or-nothing result (see
//! [`Engine::process`](crate::engine::Engine::process)).

use std::sync::{Arc, Condvar, Mutex};

use crate::engine::{Applied, Request};
use crate::error::Error;

/// A queued request and, once done, its result. Each waiter sleeps on its
/// own slot, so the end of a batch wakes exactly the requests it answered
/// (a shared condition variable would wake every waiter, most of them to
/// sleep again: a herd of context switches on every batch).
struct Slot {
    request: Mutex<Option<Request>>,
    result: Mutex<Option<Result<Applied, Error>>>,
    done: Condvar,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Arc<Slot>>,
    leading: bool,
}

/// The queue of one process's requests.
#[derive(Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupCommit")
    }
}

impl GroupCommit {
    /// Runs `request` in some batch; `run` processes a batch (it is called
    /// by whichever caller leads, with every request of the batch).
    pub fn submit(
        &self,
        request: Request,
        run: impl Fn(Vec<Request>) -> Vec<Result<Applied, Error>>,
    ) -> Result<Applied, Error> {
        let slot = Arc::new(Slot {
            request: Mutex::new(Some(request)),
            result: Mutex::new(None),
            done: Condvar::new(),
        });
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.waiting.push(slot.clone());
        if q.leading {
            drop(q);
            let mut result = slot.result.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(r) = result.take() {
                    return r;
                }
                result = slot.done.wait(result).unwrap_or_else(|e| e.into_inner());
            }
        }
        q.leading = true;
        loop {
            let batch = std::mem::take(&mut q.waiting);
            drop(q);
            let requests: Vec<Request> = batch
                .iter()
                .map(|s| take(&s.request).expect("a queued request is taken once"))
                .collect();
            let results = run(requests);
            for (s, r) in batch.iter().zip(results) {
                *s.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                s.done.notify_one();
            }
            q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if q.waiting.is_empty() {
                q.leading = false;
                drop(q);
                return take(&slot.result).expect("the leader's request ran in its first batch");
            }
        }
    }
}

fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    m.lock().unwrap_or_else(|e| e.into_inner()).take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Actor;
    use crate::layers::Source;
    use crate::op::{Op, OpKind};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// While a batch runs, every request that arrives joins the next one:
    /// the leader's own batch holds until the other `n - 1` requests are
    /// queued, so exactly two batches answer all `n` (without group commit,
    /// there would be `n`).
    #[test]
    fn requests_that_arrive_during_a_batch_share_the_next_one() {
        let b = GroupCommit::default();
        let batches = AtomicUsize::new(0);
        let n = 16;
        std::thread::scope(|s| {
            for i in 0..n {
                let (b, batches) = (&b, &batches);
                s.spawn(move || {
                    let req = Request {
                        ops: vec![Op::query(format!("line {i} +p"))],
                        actor: Actor::code(),
                        source: Source::Code,
                    };
                    let r = b.submit(req, |reqs| {
                        if batches.fetch_add(1, Ordering::Relaxed) == 0 {
                            assert_eq!(reqs.len(), 1, "the first batch is its leader alone");
                            while b.queue.lock().unwrap().waiting.len() < n - 1 {
                                std::thread::yield_now();
                            }
                        }
                        reqs.iter()
                            .map(|r| match &r.ops[0].kind {
                                OpKind::Query(q) => Ok(Applied {
                                    matched: q.len(),
                                    ..Applied::default()
                                }),
                                _ => unreachable!(),
                            })
                            .collect()
                    });
                    let want = format!("line {i} +p").len();
                    assert_eq!(r.unwrap().matched, want, "each request gets its own result");
                });
            }
        });
        assert_eq!(
            batches.load(Ordering::Relaxed),
            2,
            "{n} requests, two batches"
        );
    }
}
