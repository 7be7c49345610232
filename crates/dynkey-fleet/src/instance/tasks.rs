//! The instance's three tasks: the watcher, the publisher, the twin
//! detector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use futures_util::StreamExt;

use super::plan::Latest;
use super::shared::Shared;
use super::target::FleetTarget;
use crate::buckets::{DESIRED, STATUS};
use crate::docs::StatusDoc;
use crate::scope::Scope;
use crate::status::LIVE_HEARTBEATS;

/// Whether the bucket's stream holds no message at all (then a new watch
/// delivers nothing, and the empty state must be applied now).
async fn bucket_is_empty(store: &kv::Store) -> Option<bool> {
    let mut stream = store.stream.clone();
    stream.info().await.ok().map(|i| i.state.messages == 0)
}

pub(crate) async fn watch_desired<T: FleetTarget>(shared: Arc<Shared<T>>) {
    let id = shared.config.id.clone();
    let labels = shared.config.labels.clone();
    let mut first = true;
    loop {
        if !first {
            shared.watch_restarts.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        first = false;
        let store = shared.open(DESIRED).await;
        let mut watch = match store.watch_with_history(">").await {
            Ok(w) => w,
            Err(e) => {
                eprintln!("dynkey-fleet: watching {DESIRED}: {e} (retrying)");
                continue;
            }
        };
        let mut latest: BTreeMap<String, (Scope, Latest)> = BTreeMap::new();
        if bucket_is_empty(&store).await == Some(true) {
            shared.apply(latest.clone()).await;
        }
        loop {
            match watch.next().await {
                Some(Ok(entry)) => {
                    if let Ok(scope) = Scope::from_key(&entry.key)
                        && scope.matches(&id, &labels)
                    {
                        let value = (entry.operation == Operation::Put).then_some(entry.value);
                        latest.insert(
                            entry.key,
                            (
                                scope,
                                Latest {
                                    revision: entry.revision,
                                    value,
                                },
                            ),
                        );
                    }
                    if entry.delta == 0 {
                        shared.apply(latest.clone()).await;
                    }
                }
                Some(Err(e)) => {
                    // Transient (a missed heartbeat across a server
                    // restart, a consumer being recreated): keep the watch.
                    shared.watch_restarts.fetch_add(1, Ordering::Relaxed);
                    eprintln!("dynkey-fleet: watch of {DESIRED}: {e} (continuing)");
                }
                None => break,
            }
        }
    }
}

pub(crate) async fn publish_status<T: FleetTarget>(shared: Arc<Shared<T>>) {
    let key = shared.config.id.key();
    let mut store: Option<kv::Store> = None;
    loop {
        let _ = tokio::time::timeout(shared.config.heartbeat, shared.publish.notified()).await;
        if store.is_none() {
            store = tokio::time::timeout(shared.config.heartbeat, shared.open(STATUS))
                .await
                .ok();
        }
        let Some(s) = &store else { continue };
        let Ok(value) = serde_json::to_vec(&shared.doc()) else {
            continue;
        };
        if let Err(e) = s.put(&key, Bytes::from(value)).await {
            eprintln!("dynkey-fleet: writing status {key}: {e}");
        }
    }
}

pub(crate) async fn detect_twins<T: FleetTarget>(shared: Arc<Shared<T>>) {
    let key = shared.config.id.key();
    loop {
        let store = shared.open(STATUS).await;
        // Only documents written from now on: an earlier process of this
        // id (restarted) left one behind that is no twin.
        let Ok(mut watch) = store.watch(&key).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        while let Some(entry) = watch.next().await {
            let Ok(entry) = entry else { continue };
            let Ok(doc) = serde_json::from_slice::<StatusDoc>(&entry.value) else {
                continue;
            };
            if doc.boot_id != shared.boot_id {
                let window = shared.config.heartbeat * LIVE_HEARTBEATS;
                let newly = {
                    let mut state = shared.lock();
                    let newly = state
                        .twin
                        .as_ref()
                        .is_none_or(|(_, seen)| seen.elapsed() > window);
                    state.twin = Some((doc.boot_id, Instant::now()));
                    newly
                };
                if newly {
                    eprintln!(
                        "dynkey-fleet: another live process uses instance id {}",
                        shared.config.id
                    );
                    shared.publish.notify_one();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
