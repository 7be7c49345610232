//! Joining a fleet (feature `fleet`): dynkeyd's wiring of a
//! [`dynkey_fleet::instance::Instance`] into the server, its `GET /fleet`
//! view and its `dynkey_fleet_*` metrics.
//!
//! A service that only mounts the router builds without this module, and
//! without the NATS client it needs.

use std::collections::HashMap;
use std::sync::Arc;

use dynkey_fleet::instance::{Instance, InstanceConfig};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{Metric, MetricFamily, MetricType};

use crate::AppState;
use crate::metrics::{counter, gauge};

/// Joins the fleet `config` describes: starts the instance from the layers
/// the journal cached (so an instance that starts while NATS is down
/// serves its last fleet state, and says so in `GET /fleet`), connects in
/// the background, and adds its view and metrics to `state`. Keep the
/// returned instance alive as long as the server runs.
pub async fn join(
    state: &mut AppState,
    config: InstanceConfig,
) -> Result<Arc<Instance<dynkey::Control>>, dynkey_fleet::FleetError> {
    let instance = Arc::new(Instance::start(config, state.control).await?);
    let view = instance.clone();
    state.fleet = Some(Arc::new(move || view.view_json()));
    let metrics = instance.clone();
    register_metrics(&state.metrics, move || metrics.metrics());
    Ok(instance)
}

/// The fleet's metrics (`dynkey_fleet_*`), read at scrape time from the
/// instance.
pub struct FleetCollector {
    read: Box<dyn Fn() -> dynkey_fleet::instance::FleetMetrics + Send + Sync>,
    descs: Vec<Desc>,
}

const FLEET: &[(&str, &str, MetricType, &[&str])] = &[
    (
        "dynkey_fleet_connected",
        "1 while the NATS connection is up.",
        MetricType::GAUGE,
        &[],
    ),
    (
        "dynkey_fleet_applied_revision",
        "The revision of each fleet scope in force.",
        MetricType::GAUGE,
        &["scope"],
    ),
    (
        "dynkey_fleet_apply_errors_total",
        "Scope revisions that could not be applied, and rebuilds that failed.",
        MetricType::COUNTER,
        &[],
    ),
    (
        "dynkey_fleet_last_apply_timestamp_seconds",
        "Unix time of the last fleet apply.",
        MetricType::GAUGE,
        &[],
    ),
    (
        "dynkey_fleet_watch_restarts_total",
        "Watch errors survived and watches recreated.",
        MetricType::COUNTER,
        &[],
    ),
];

impl std::fmt::Debug for FleetCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetCollector")
    }
}

impl Collector for FleetCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let m = (self.read)();
        let values: [Vec<Metric>; 5] = [
            vec![gauge(m.connected as u8 as f64, &[])],
            m.applied
                .iter()
                .map(|(scope, rev)| gauge(*rev as f64, &[("scope", scope)]))
                .collect(),
            vec![counter(m.apply_errors_total as f64, &[])],
            m.last_apply_unix_seconds
                .map(|t| gauge(t, &[]))
                .into_iter()
                .collect(),
            vec![counter(m.watch_restarts_total as f64, &[])],
        ];
        FLEET
            .iter()
            .zip(values)
            .filter(|(_, v)| !v.is_empty())
            .map(|((name, help, kind, _), v)| {
                let mut mf = MetricFamily::default();
                mf.set_name(name.to_string());
                mf.set_help(help.to_string());
                mf.set_field_type(*kind);
                mf.set_metric(v);
                mf
            })
            .collect()
    }
}

/// Adds the fleet's metrics to `registry`.
pub fn register_metrics(
    registry: &prometheus::Registry,
    read: impl Fn() -> dynkey_fleet::instance::FleetMetrics + Send + Sync + 'static,
) {
    let descs = FLEET
        .iter()
        .map(|(n, h, _, l)| {
            Desc::new(
                n.to_string(),
                h.to_string(),
                l.iter().map(|s| s.to_string()).collect(),
                HashMap::new(),
            )
            .expect("valid names")
        })
        .collect();
    registry
        .register(Box::new(FleetCollector {
            read: Box::new(read),
            descs,
        }))
        .expect("fleet metrics register once");
}
