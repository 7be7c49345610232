//! The instance's side: what dynkeyd runs with `--nats`.
//!
//! Three tasks share one connection:
//!
//! * the **watcher** watches `dynkey_desired` with "latest value per key,
//!   then updates", keeps the latest entry of every scope that matches the
//!   instance, and when a burst is drained (`delta == 0`, or an empty
//!   bucket) plans the layers ([`mod@plan`]) and hands them to dynkey in one
//!   call: one commit per burst, none when nothing changed. A watch's
//!   errors are transient (the ordered consumer recreates itself after a
//!   server restart); only a watch that ends is recreated, from a fresh
//!   snapshot;
//! * the **publisher** writes the status document on every apply and every
//!   heartbeat;
//! * the **twin detector** watches the instance's own status key: a
//!   document written there by another boot id after this process started
//!   means a second live process has the same id; both report it.
//!
//! The connection pings every `min(heartbeat, 5 s)`, so a cut link is
//! noticed within about three heartbeats, and reconnects forever. Until the
//! first apply from NATS the instance runs on the layers its journal
//! cached (`source: "cache"`), so a restart while NATS is down keeps the
//! last fleet state.

mod args;
pub mod plan;
mod shared;
mod target;
mod tasks;
mod view;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use args::{InstanceArgs, InstanceConfig};
use shared::{Shared, State};
pub use target::{FleetTarget, TargetCounters};
use tasks::{detect_twins, publish_status, watch_desired};
pub use view::{FleetMetrics, FleetView, ScopeView, disabled_view};

use crate::docs::StatusDoc;
use crate::error::FleetError;
use crate::nats::connect_error;

/// A running fleet member. Dropping it stops its tasks.
pub struct Instance<T: FleetTarget> {
    shared: Arc<Shared<T>>,
    tasks: Vec<JoinHandle<()>>,
}

impl<T: FleetTarget> Drop for Instance<T> {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| {
            let t = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default();
            format!("{:x}-{:x}", std::process::id(), t.as_nanos())
        })
}

impl<T: FleetTarget> Instance<T> {
    /// Joins the fleet: starts the connection (in the background: NATS may
    /// be down, the instance then runs on its cached layers) and the
    /// tasks. Must be called inside a tokio runtime. Fails only on bad
    /// configuration (an unreadable credential file, a bad URL).
    pub async fn start(config: InstanceConfig, target: T) -> Result<Instance<T>, FleetError> {
        let cached = target.fleet_layers();
        let now = SystemTime::now();
        let state = State {
            applied: cached
                .iter()
                .map(|l| (l.scope.clone(), l.revision))
                .collect(),
            applied_at: cached.iter().map(|l| (l.scope.clone(), now)).collect(),
            layers: cached,
            errors: Vec::new(),
            seen_errors: Default::default(),
            from_nats: false,
            last_apply: None,
            twin: None,
        };
        let id = config.id.clone();
        let client = config
            .auth
            .options()
            .await?
            .name(format!("dynkeyd {id}"))
            .ping_interval(config.ping_interval())
            .connection_timeout(Duration::from_secs(2))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(match attempts {
                    0 | 1 => 0,
                    n => (25u64 << (n - 2).min(6)).min(1000),
                })
            })
            .custom_inbox_prefix(format!("_INBOX_{id}"))
            .connect(config.url.as_str())
            .await
            .map_err(|e| connect_error(&config.url, &e))?;
        let shared = Arc::new(Shared {
            target: Arc::new(target),
            config,
            boot_id: boot_id(),
            client,
            state: Mutex::new(state),
            apply_errors: AtomicU64::new(0),
            watch_restarts: AtomicU64::new(0),
            publish: Notify::new(),
        });
        let tasks = vec![
            tokio::spawn(watch_desired(shared.clone())),
            tokio::spawn(publish_status(shared.clone())),
            tokio::spawn(detect_twins(shared.clone())),
        ];
        Ok(Instance { shared, tasks })
    }

    /// The body of `GET /fleet`.
    pub fn view(&self) -> FleetView {
        let s = &self.shared;
        let drift = s.target.local_ops_in_force();
        let state = s.lock();
        let mut scopes: Vec<ScopeView> = state
            .layers
            .iter()
            .map(|l| ScopeView {
                scope: l.scope.clone(),
                revision: Some(l.revision),
                applied_at: state
                    .applied_at
                    .get(&l.scope)
                    .map(|t| dynkey::format_time(*t)),
                error: None,
            })
            .collect();
        for e in &state.errors {
            let Some(scope) = &e.scope else { continue };
            match scopes.iter_mut().find(|v| &v.scope == scope) {
                Some(v) => v.error = Some(e.message.clone()),
                None => scopes.push(ScopeView {
                    scope: scope.clone(),
                    revision: None,
                    applied_at: None,
                    error: Some(e.message.clone()),
                }),
            }
        }
        FleetView {
            enabled: true,
            connected: s.connected(),
            instance: s.config.id.to_string(),
            labels: s.config.labels.clone(),
            source: if state.from_nats { "nats" } else { "cache" },
            scopes,
            errors: s
                .instance_errors(&state)
                .into_iter()
                .map(|e| e.message)
                .collect(),
            drift,
        }
    }

    /// The body of `GET /fleet` as JSON (for dynkeyd's `AppState::fleet`
    /// hook: `Arc::new(move || instance.view_json())`).
    pub fn view_json(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).unwrap_or_else(|_| disabled_view())
    }

    /// The values of the fleet's metrics.
    pub fn metrics(&self) -> FleetMetrics {
        let s = &self.shared;
        let state = s.lock();
        FleetMetrics {
            connected: s.connected(),
            applied: state
                .layers
                .iter()
                .map(|l| (l.scope.clone(), l.revision))
                .collect(),
            apply_errors_total: s.apply_errors.load(Ordering::Relaxed),
            last_apply_unix_seconds: state.last_apply.map(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64()
            }),
            watch_restarts_total: s.watch_restarts.load(Ordering::Relaxed),
        }
    }

    /// The status document as it would be published now.
    pub fn status_doc(&self) -> StatusDoc {
        self.shared.doc()
    }
}
