//! One thread that applies every mutating request, in batches.
//!
//! A change waits for a journal fsync and a rendezvous, so it cannot run on
//! an async worker; running each on a blocking-pool thread costs two thread
//! switches per request, and the threads then queue on the engine's lock
//! anyway. Instead, handlers send their operation to this thread and await
//! the reply: the thread takes whatever has queued (up to [`MAX_BATCH`]),
//! applies it as one batch (one journal write, one commit, one rendezvous:
//! [`dynkey::Control::submit_batch`]) and answers each request with its own
//! result. Under load the thread never sleeps and a batch is whatever
//! arrived during the previous one; idle, a request costs one wake-up.

use std::sync::Arc;

use dynkey::{Actor, Applied, Op};

/// Requests applied together at most.
pub const MAX_BATCH: usize = 256;

type Reply = tokio::sync::oneshot::Sender<Result<Applied, dynkey::Error>>;

/// The sending side; the thread stops when every clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Applier {
    tx: crossbeam_channel::Sender<(Op, Actor, Reply)>,
}

impl Applier {
    /// Starts the thread for `control`.
    pub fn start(control: dynkey::Control) -> Arc<Applier> {
        let (tx, rx) = crossbeam_channel::unbounded::<(Op, Actor, Reply)>();
        std::thread::Builder::new()
            .name("dynkeyd-apply".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    let (ops, replies): (Vec<(Op, Actor)>, Vec<Reply>) =
                        batch.into_iter().map(|(op, a, r)| ((op, a), r)).unzip();
                    for (reply, result) in replies.into_iter().zip(control.submit_batch(ops)) {
                        // The client may have gone (a timeout): nothing to do.
                        let _ = reply.send(result);
                    }
                }
            })
            .expect("the apply thread starts");
        Arc::new(Applier { tx })
    }

    /// Applies `op` for `actor` in the next batch.
    pub async fn submit(&self, op: Op, actor: Actor) -> Result<Applied, crate::ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send((op, actor, reply))
            .map_err(|_| crate::ApiError::internal("the apply thread is gone"))?;
        answer
            .await
            .map_err(|_| crate::ApiError::internal("the apply thread dropped a request"))?
            .map_err(crate::ApiError::from)
    }
}
