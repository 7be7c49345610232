//! The instance's side: what dynkeyd runs with `--nats`.
//!
//! Three tasks share one connection:
//!
//! * the **watcher** watches `dynkey_desired` with "latest value per key,
//!   then updates", keeps the latest entry of every scope that matches the
//!   instance, and when a burst is drained (`delta == 0`, or an empty
//!   bucket) plans the layers ([`plan`]) and hands them to dynkey in one
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

pub mod plan;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::buckets::{self, DESIRED, STATUS};
use crate::docs::{StatusDoc, StatusError};
use crate::error::FleetError;
use crate::nats::{NatsArgs, connect_error};
use crate::ops::{FleetLayer, Op};
use crate::scope::{InstanceId, Labels, Scope};
use crate::status::LIVE_HEARTBEATS;
use crate::time::{parse_duration, rfc3339, rfc3339_millis};
use plan::{Latest, plan};

/// What an instance needs from dynkey (implemented for `dynkey::Control`).
/// Calls may block (a commit waits for its rendezvous): the instance makes
/// them on tokio's blocking pool.
pub trait FleetTarget: Send + Sync + 'static {
    /// The error of a check or a rebuild.
    type Error: std::fmt::Display + Send + 'static;
    /// Whether this build can apply the operation (the query parses, the
    /// names exist, the param value parses).
    fn check_op(&self, op: &Op) -> Result<(), Self::Error>;
    /// Replaces the fleet layers (in effective order) and rebuilds the
    /// state from the baseline in one commit; the journal caches them.
    fn set_fleet_layers(&self, layers: Vec<FleetLayer>) -> Result<(), Self::Error>;
    /// The fleet layers in force (cached in the journal, so available at
    /// start with NATS down).
    fn fleet_layers(&self) -> Vec<FleetLayer>;
    /// Local operations in force on top of the fleet layers (drift).
    fn local_ops_in_force(&self) -> usize;
    /// A hash of the effective table, equal across instances of one build
    /// in the same state.
    fn table_hash(&self) -> u64;
    /// The commit and rendezvous counters.
    fn counters(&self) -> TargetCounters;
}

/// Counters an instance reports in its status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetCounters {
    /// Commits so far.
    pub commits: u64,
    /// Rendezvous so far.
    pub rendezvous: u64,
}

/// dynkeyd's fleet options (flatten into its clap parser). Without
/// `--nats` the instance is not in a fleet.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InstanceArgs {
    /// NATS server to join the fleet through (nats://HOST:PORT).
    #[arg(long, value_name = "URL", requires = "instance")]
    pub nats: Option<String>,
    /// This instance's id in the fleet ([A-Za-z0-9_-]).
    #[arg(long, value_name = "ID", requires = "nats")]
    pub instance: Option<InstanceId>,
    /// This instance's labels: k=v,k2=v2 ([A-Za-z0-9_-]).
    #[arg(long, value_name = "K=V,...", requires = "nats")]
    pub labels: Option<Labels>,
    /// How often the status is written (liveness is three heartbeats).
    #[arg(long, value_name = "DURATION", value_parser = heartbeat_arg, requires = "nats")]
    pub heartbeat: Option<Duration>,
    /// Credentials and TLS.
    #[command(flatten)]
    pub auth: NatsArgs,
}

fn heartbeat_arg(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text).map_err(|e| e.to_string())?;
    if d < Duration::from_millis(100) {
        return Err(format!("heartbeat {text} is below 100ms"));
    }
    Ok(d)
}

impl InstanceArgs {
    /// The instance's configuration, or None without `--nats`.
    pub fn config(&self) -> Option<InstanceConfig> {
        let (url, id) = (self.nats.clone()?, self.instance.clone()?);
        Some(InstanceConfig {
            url,
            id,
            labels: self.labels.clone().unwrap_or_default(),
            heartbeat: self.heartbeat.unwrap_or(buckets::DEFAULT_HEARTBEAT),
            auth: self.auth.clone(),
        })
    }
}

/// How an instance joins the fleet.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    /// The NATS URL.
    pub url: String,
    /// The instance's id.
    pub id: InstanceId,
    /// Its labels.
    pub labels: Labels,
    /// Its heartbeat.
    pub heartbeat: Duration,
    /// Credentials and TLS.
    pub auth: NatsArgs,
}

impl InstanceConfig {
    /// The interval of the connection's pings: a cut link is noticed after
    /// about three of them.
    pub fn ping_interval(&self) -> Duration {
        self.heartbeat.min(Duration::from_secs(5))
    }
}

/// One scope in `GET /fleet`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeView {
    /// The scope (command-line spelling).
    pub scope: String,
    /// The revision in force (null when no version could be applied).
    pub revision: Option<u64>,
    /// When it was applied here.
    pub applied_at: Option<String>,
    /// Why the latest revision could not be applied, if it could not.
    pub error: Option<String>,
}

/// The body of `GET /fleet` when the instance is in a fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetView {
    /// Always true here (`{"enabled": false}` otherwise: [`disabled_view`]).
    pub enabled: bool,
    /// Whether the NATS connection is up.
    pub connected: bool,
    /// The instance's id.
    pub instance: String,
    /// Its labels.
    pub labels: Labels,
    /// `nats` once the bucket's state was applied, `cache` while running on
    /// the journal's cached layers.
    pub source: &'static str,
    /// The matching scopes: revision in force, when, and errors.
    pub scopes: Vec<ScopeView>,
    /// Instance-wide errors (a duplicate id).
    pub errors: Vec<String>,
    /// Local operations in force on top of the fleet layers.
    pub drift: usize,
}

/// `GET /fleet` of an instance that is not in a fleet.
pub fn disabled_view() -> serde_json::Value {
    serde_json::json!({ "enabled": false })
}

/// The fleet's metrics (`dynkey_fleet_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct FleetMetrics {
    /// `dynkey_fleet_connected`: 1 while the NATS connection is up.
    pub connected: bool,
    /// `dynkey_fleet_applied_revision{scope}`: revision in force per scope.
    pub applied: Vec<(String, u64)>,
    /// `dynkey_fleet_apply_errors_total`: scope revisions that could not be
    /// applied, and rebuilds that failed.
    pub apply_errors_total: u64,
    /// `dynkey_fleet_last_apply_timestamp_seconds`: Unix time of the last
    /// apply (None before the first).
    pub last_apply_unix_seconds: Option<f64>,
    /// `dynkey_fleet_watch_restarts_total`: watch errors survived and
    /// watches recreated.
    pub watch_restarts_total: u64,
}

#[derive(Debug)]
struct State {
    layers: Vec<FleetLayer>,
    applied: BTreeMap<String, u64>,
    applied_at: BTreeMap<String, SystemTime>,
    errors: Vec<StatusError>,
    seen_errors: std::collections::BTreeSet<(String, u64)>,
    from_nats: bool,
    last_apply: Option<SystemTime>,
    twin: Option<(String, Instant)>,
}

struct Shared<T> {
    target: Arc<T>,
    config: InstanceConfig,
    boot_id: String,
    client: async_nats::Client,
    state: Mutex<State>,
    apply_errors: AtomicU64,
    watch_restarts: AtomicU64,
    publish: Notify,
}

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
                applied_at: state.applied_at.get(&l.scope).map(|t| rfc3339(*t)),
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

impl<T: FleetTarget> Shared<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    fn instance_errors(&self, state: &State) -> Vec<StatusError> {
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

    fn doc(&self) -> StatusDoc {
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
            at: rfc3339_millis(SystemTime::now()),
        }
    }

    fn js(&self) -> async_nats::jetstream::Context {
        let mut js = async_nats::jetstream::new(self.client.clone());
        js.set_timeout(Duration::from_secs(5));
        js
    }

    /// Opens a bucket, retrying until it exists and NATS answers.
    async fn open(&self, bucket: &'static str) -> kv::Store {
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
    async fn apply(self: &Arc<Self>, latest: BTreeMap<String, (Scope, Latest)>) {
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

/// Whether the bucket's stream holds no message at all (then a new watch
/// delivers nothing, and the empty state must be applied now).
async fn bucket_is_empty(store: &kv::Store) -> Option<bool> {
    let mut stream = store.stream.clone();
    stream.info().await.ok().map(|i| i.state.messages == 0)
}

async fn watch_desired<T: FleetTarget>(shared: Arc<Shared<T>>) {
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

async fn publish_status<T: FleetTarget>(shared: Arc<Shared<T>>) {
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

async fn detect_twins<T: FleetTarget>(shared: Arc<Shared<T>>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Dynkeyd {
        #[command(flatten)]
        fleet: InstanceArgs,
        /// dynkeyd's own option of a similar name must not clash.
        #[arg(long)]
        token_file: Option<String>,
    }

    #[test]
    fn dynkeyd_options() {
        let d = Dynkeyd::try_parse_from([
            "dynkeyd",
            "--nats",
            "nats://127.0.0.1:4222",
            "--instance",
            "web-1",
            "--labels",
            "svc=checkout,region=eu",
            "--heartbeat",
            "2s",
            "--nats-token-file",
            "t",
            "--token-file",
            "u",
        ])
        .unwrap();
        let c = d.fleet.config().unwrap();
        assert_eq!(c.id.as_str(), "web-1");
        assert_eq!(c.labels.to_string(), "region=eu,svc=checkout");
        assert_eq!(c.heartbeat, Duration::from_secs(2));
        assert_eq!(c.ping_interval(), Duration::from_secs(2));
        assert_eq!(d.token_file.as_deref(), Some("u"));
        let none = Dynkeyd::try_parse_from(["dynkeyd"]).unwrap();
        assert!(none.fleet.config().is_none());
        let default =
            Dynkeyd::try_parse_from(["dynkeyd", "--nats", "n", "--instance", "a"]).unwrap();
        let c = default.fleet.config().unwrap();
        assert_eq!(c.heartbeat, Duration::from_secs(5));
        assert!(c.labels.is_empty());
        assert_eq!(
            Dynkeyd::try_parse_from([
                "dynkeyd",
                "--nats",
                "n",
                "--instance",
                "a",
                "--heartbeat",
                "30s"
            ])
            .unwrap()
            .fleet
            .config()
            .unwrap()
            .ping_interval(),
            Duration::from_secs(5)
        );
        for bad in [
            &["dynkeyd", "--nats", "n"][..],
            &["dynkeyd", "--instance", "a"],
            &["dynkeyd", "--nats", "n", "--instance", "a.b"],
            &[
                "dynkeyd",
                "--nats",
                "n",
                "--instance",
                "a",
                "--labels",
                "instance=x",
            ],
            &[
                "dynkeyd",
                "--nats",
                "n",
                "--instance",
                "a",
                "--heartbeat",
                "10ms",
            ],
            &["dynkeyd", "--labels", "a=b"],
        ] {
            assert!(Dynkeyd::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
