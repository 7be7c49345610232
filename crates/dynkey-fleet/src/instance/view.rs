//! What an instance shows: `GET /fleet` and the metrics.

use serde::Serialize;

use crate::scope::Labels;

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
