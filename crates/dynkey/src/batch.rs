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

use crate::Error;
use crate::engine::{Applied, Request};

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
pub(crate) struct Batcher {
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batcher")
    }
}

impl Batcher {
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
    use crate::layers::Source;
    use crate::{Actor, Op};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_requests_share_batches_and_each_gets_its_own_result() {
        let b = Batcher::default();
        let batches = AtomicUsize::new(0);
        let n = 64;
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
                        batches.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                        reqs.iter()
                            .map(|r| match &r.ops[0].kind {
                                crate::OpKind::Query(q) => Ok(Applied {
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
        let batches = batches.load(Ordering::Relaxed);
        assert!((1..=n).contains(&batches), "{batches} batches");
    }
}
