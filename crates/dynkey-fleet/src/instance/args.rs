//! dynkeyd's fleet options, and the configuration they make.

use std::time::Duration;

use crate::buckets;
use crate::nats::NatsArgs;
use crate::scope::{InstanceId, Labels};
use dynkey::parse_duration;

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
