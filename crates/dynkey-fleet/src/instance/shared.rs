//! The state an instance's tasks share, and the apply step.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::kv;
use tokio::sync::Notify;

use super::args::InstanceConfig;
use super::plan::{Latest, plan};
use super::target::FleetTarget;
use crate::buckets;
use crate::docs::{StatusDoc, StatusError};
use crate::ops::FleetLayer;
use crate::scope::Scope;
use crate::status::LIVE_HEARTBEATS;

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) layers: Vec<FleetLayer>,
    pub(crate) applied: BTreeMap<String, u64>,
    pub(crate) applied_at: BTreeMap<String, SystemTime>,
    pub(crate) errors: Vec<StatusError>,
    pub(crate) seen_errors: std::collections::BTreeSet<(String, u64)>,
    pub(crate) from_nats: bool,
    pub(crate) last_apply: Option<SystemTime>,
    pub(crate) twin: Option<(String, Instant)>,
}

pub(crate) struct Shared<T> {
    pub(crate) target: Arc<T>,
    pub(crate) config: InstanceConfig,
    pub(crate) boot_id: String,
    pub(crate) client: async_nats::Client,
    pub(crate) state: Mutex<State>,
    pub(crate) apply_errors: AtomicU64,
    pub(crate) watch_restarts: AtomicU64,
    pub(crate) publish: Notify,
}

impl<T: FleetTarget> Shared<T> {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    pub(crate) fn instance_errors(&self, state: &State) -> Vec<StatusError> {
        let window = self.config.heartbeat * LIVE_HEARTBEATS;
        match &state.twin {
            Some((boot, seen)) if seen.elapsed() <= window => vec![StatusError {
                scope: None,
                revision: None,
                message: format!(
                    "duplicate instance id {}: another live process (boot id {boot}) writes this instance's status (this one is boot id {})",
                    self.config.id, self.boot_id
                ),
            }],
            _ => Vec::new(),
        }
    }

    pub(crate) fn doc(&self) -> StatusDoc {
        let counters = self.target.counters();
        let drift = self.target.local_ops_in_force();
        let hash = self.target.table_hash();
        let state = self.lock();
        let mut errors = self.instance_errors(&state);
        errors.extend(state.errors.iter().cloned());
        StatusDoc {
            id: self.config.id.to_string(),
            labels: self.config.labels.clone(),
            boot_id: self.boot_id.clone(),
            version: crate::VERSION.to_string(),
            applied: state.applied.clone(),
            errors,
            table_hash: format!("{hash:016x}"),
            drift,
            commits: counters.commits,
            rendezvous: counters.rendezvous,
            source: if state.from_nats { "nats" } else { "cache" }.to_string(),
            heartbeat_ms: self.config.heartbeat.as_millis() as u64,
            at: dynkey::format_time_millis(SystemTime::now()),
        }
    }

    pub(crate) fn js(&self) -> async_nats::jetstream::Context {
        let mut js = async_nats::jetstream::new(self.client.clone());
        js.set_timeout(Duration::from_secs(5));
        js
    }

    /// Opens a bucket, retrying until it exists and NATS answers.
    pub(crate) async fn open(&self, bucket: &'static str) -> kv::Store {
        let mut delay = Duration::from_millis(50);
        let mut warned = false;
        loop {
            match buckets::open(&self.js(), bucket).await {
                Ok(store) => return store,
                Err(e) => {
                    if !warned {
                        eprintln!("dynkey-fleet: {e} (retrying)");
                        warned = true;
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
    }

    /// Plans and applies the layers for the scopes' latest entries.
    pub(crate) async fn apply(self: &Arc<Self>, latest: BTreeMap<String, (Scope, Latest)>) {
        let shared = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let previous = shared.lock().layers.clone();
            let target = shared.target.clone();
            let p = plan(&latest, &previous, |op| {
                target.check_op(op).map_err(|e| e.to_string())
            });
            let outcome = if p.layers == previous {
                Ok(false)
            } else {
                target
                    .set_fleet_layers(p.layers.clone())
                    .map(|_| true)
                    .map_err(|e| e.to_string())
            };
            (p, previous, outcome)
        })
        .await;
        let Ok((p, previous, outcome)) = result else {
            return;
        };
        let now = SystemTime::now();
        let mut state = self.lock();
        match outcome {
            Ok(_) => {
                for l in &p.layers {
                    if previous.iter().all(|old| old != l) {
                        state.applied_at.insert(l.scope.clone(), now);
                    }
                }
                state
                    .applied_at
                    .retain(|s, _| p.layers.iter().any(|l| &l.scope == s));
                state.layers = p.layers;
                state.applied = p.applied;
                state.errors = p.errors;
            }
            Err(message) => {
                // The rebuild failed as a whole: the previous layers stay;
                // every scope that would have changed reports it.
                state.errors = p.errors;
                for l in p.layers.iter().filter(|l| !previous.contains(l)) {
                    state.errors.push(StatusError {
                        scope: Some(l.scope.clone()),
                        revision: Some(l.revision),
                        message: message.clone(),
                    });
                }
            }
        }
        let mut new_errors = 0;
        for e in &state.errors {
            if let (Some(s), Some(r)) = (&e.scope, e.revision)
                && !state.seen_errors.contains(&(s.clone(), r))
            {
                new_errors += 1;
            }
        }
        let seen: Vec<(String, u64)> = state
            .errors
            .iter()
            .filter_map(|e| Some((e.scope.clone()?, e.revision?)))
            .collect();
        state.seen_errors.extend(seen);
        self.apply_errors.fetch_add(new_errors, Ordering::Relaxed);
        state.from_nats = true;
        state.last_apply = Some(now);
        drop(state);
        self.publish.notify_one();
    }
}
