//! Connecting to NATS: the credential and TLS options both binaries share,
//! and a connection that notices permission violations.
//!
//! NATS reports a refused publish or subscribe asynchronously (`-ERR
//! 'Permissions Violation ...'`), not as the failure of the request that
//! caused it; a request then only times out. [`Conn::guard`] races each
//! operation against that report, so dynkeyctl says "permission denied" at
//! once instead of "timed out" after seconds.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, Event, ServerError};
use tokio::sync::Notify;

use crate::error::FleetError;

/// The NATS credential and TLS options shared by dynkeyd and dynkeyctl
/// (flatten it into a clap parser: `#[command(flatten)] nats: NatsArgs`).
/// At most one of `--nats-creds`, `--nats-token-file` and `--nats-user`.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsArgs {
    /// NATS credentials file (user JWT and nkey seed).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["nats_token_file", "nats_user"])]
    pub nats_creds: Option<PathBuf>,
    /// File whose first line is the NATS token.
    #[arg(long, value_name = "FILE", conflicts_with = "nats_user")]
    pub nats_token_file: Option<PathBuf>,
    /// NATS user name (with --nats-password-file).
    #[arg(long, value_name = "NAME", requires = "nats_password_file")]
    pub nats_user: Option<String>,
    /// File whose first line is the NATS user's password.
    #[arg(long, value_name = "FILE", requires = "nats_user")]
    pub nats_password_file: Option<PathBuf>,
    /// CA certificate (PEM) to verify the server with; implies TLS.
    #[arg(long, value_name = "FILE")]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS (with --nats-key).
    #[arg(long, value_name = "FILE", requires = "nats_key")]
    pub nats_cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS (with --nats-cert).
    #[arg(long, value_name = "FILE", requires = "nats_cert")]
    pub nats_key: Option<PathBuf>,
}

fn first_line(path: &PathBuf, what: &str) -> Result<String, FleetError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| FleetError::BadInput(format!("{what} {}: {e}", path.display())))?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        return Err(FleetError::BadInput(format!(
            "{what} {} is empty",
            path.display()
        )));
    }
    Ok(line)
}

fn readable(path: &PathBuf, what: &str) -> Result<(), FleetError> {
    std::fs::metadata(path)
        .map(|_| ())
        .map_err(|e| FleetError::BadInput(format!("{what} {}: {e}", path.display())))
}

impl NatsArgs {
    /// Connect options carrying these credentials and TLS settings (files
    /// are read now, so a missing one is a bad-input error, not a failed
    /// connection).
    pub async fn options(&self) -> Result<ConnectOptions, FleetError> {
        let mut opts = match &self.nats_creds {
            Some(path) => ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| {
                    FleetError::BadInput(format!("--nats-creds {}: {e}", path.display()))
                })?,
            None => ConnectOptions::new(),
        };
        if let Some(path) = &self.nats_token_file {
            opts = opts.token(first_line(path, "--nats-token-file")?);
        }
        if let (Some(user), Some(path)) = (&self.nats_user, &self.nats_password_file) {
            opts = opts.user_and_password(user.clone(), first_line(path, "--nats-password-file")?);
        }
        if let Some(ca) = &self.nats_ca {
            readable(ca, "--nats-ca")?;
            opts = opts.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.nats_cert, &self.nats_key) {
            readable(cert, "--nats-cert")?;
            readable(key, "--nats-key")?;
            opts = opts
                .add_client_certificate(cert.clone(), key.clone())
                .require_tls(true);
        }
        Ok(opts)
    }
}

/// The last permission violation the server reported on a connection.
#[derive(Default)]
pub(crate) struct Violations {
    last: Mutex<Option<String>>,
    notify: Notify,
}

impl Violations {
    fn record(&self, message: String) {
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
        self.notify.notify_waiters();
    }

    fn take(&self) -> Option<String> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Whether a server error is a permission or authorization refusal.
pub(crate) fn violation(event: &Event) -> Option<String> {
    match event {
        Event::ServerError(ServerError::AuthorizationViolation) => {
            Some("authorization violation".to_string())
        }
        Event::ServerError(ServerError::Other(msg))
            if msg.to_ascii_lowercase().contains("permissions violation") =>
        {
            Some(msg.clone())
        }
        _ => None,
    }
}

/// A connection for one dynkeyctl command.
pub struct Conn {
    /// The client.
    pub client: async_nats::Client,
    /// Its JetStream context.
    pub js: async_nats::jetstream::Context,
    violations: Arc<Violations>,
}

/// Maps a connect error to unreachable or permission denied.
pub fn connect_error(url: &str, e: &async_nats::ConnectError) -> FleetError {
    match e.kind() {
        ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
            FleetError::PermissionDenied(format!("{url}: {e}"))
        }
        ConnectErrorKind::ServerParse => FleetError::BadInput(format!("--nats {url:?}: {e}")),
        _ => FleetError::Unreachable(format!("{url}: {e}")),
    }
}

impl Conn {
    /// Connects once (no retries: an operator wants to know now), with a
    /// short timeout.
    pub async fn connect(url: &str, args: &NatsArgs, name: &str) -> Result<Conn, FleetError> {
        let violations = Arc::new(Violations::default());
        let seen = violations.clone();
        let client = args
            .options()
            .await?
            .name(name)
            .connection_timeout(Duration::from_secs(3))
            .max_reconnects(3)
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    if let Some(v) = violation(&event) {
                        seen.record(v);
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| connect_error(url, &e))?;
        let mut js = async_nats::jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(5));
        Ok(Conn {
            client,
            js,
            violations,
        })
    }

    /// Runs `op`, failing with [`FleetError::PermissionDenied`] as soon as
    /// the server reports a permission violation, and mapping a failure of
    /// `op` that followed one to it as well.
    pub async fn guard<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, FleetError>>,
    ) -> Result<T, FleetError> {
        let denied = self.violations.notify.notified();
        tokio::pin!(denied);
        denied.as_mut().enable();
        if let Some(v) = self.violations.take() {
            return Err(FleetError::PermissionDenied(v));
        }
        tokio::select! {
            r = op => match r {
                Err(e) => Err(self.violations.take().map_or(e, FleetError::PermissionDenied)),
                ok => ok,
            },
            _ = denied => Err(FleetError::PermissionDenied(
                self.violations.take().unwrap_or_else(|| "permission violation".into()),
            )),
        }
    }

    /// Waits until what was published has reached the server.
    pub async fn flush(&self) -> Result<(), FleetError> {
        self.client
            .flush()
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))
    }
}

/// Maps any NATS error to the fleet's: timeouts and lost connections are
/// "unreachable", the rest is reported as is.
pub fn nats_error(context: &str, e: impl std::fmt::Display) -> FleetError {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    if lower.contains("timed out")
        || lower.contains("timeout")
        || lower.contains("no responders")
        || lower.contains("disconnected")
        || lower.contains("broken pipe")
    {
        FleetError::Unreachable(format!("{context}: {text}"))
    } else if lower.contains("permission") || lower.contains("authorization") {
        FleetError::PermissionDenied(format!("{context}: {text}"))
    } else {
        FleetError::Nats(format!("{context}: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        nats: NatsArgs,
    }

    #[test]
    fn options_combine_as_documented() {
        let ok = Cli::try_parse_from([
            "x",
            "--nats-user",
            "u",
            "--nats-password-file",
            "p",
            "--nats-ca",
            "ca.pem",
            "--nats-cert",
            "c.pem",
            "--nats-key",
            "k.pem",
        ])
        .unwrap();
        assert_eq!(ok.nats.nats_user.as_deref(), Some("u"));
        for bad in [
            &["x", "--nats-user", "u"][..],
            &["x", "--nats-password-file", "p"],
            &["x", "--nats-cert", "c"],
            &["x", "--nats-key", "k"],
            &["x", "--nats-creds", "c", "--nats-token-file", "t"],
            &[
                "x",
                "--nats-token-file",
                "t",
                "--nats-user",
                "u",
                "--nats-password-file",
                "p",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn missing_files_are_bad_input() {
        let args = NatsArgs {
            nats_token_file: Some("/nonexistent/token".into()),
            ..NatsArgs::default()
        };
        let err = args.options().await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        assert!(err.to_string().contains("/nonexistent/token"), "{err}");
        let args = NatsArgs {
            nats_ca: Some("/nonexistent/ca.pem".into()),
            ..NatsArgs::default()
        };
        assert_eq!(args.options().await.unwrap_err().exit_code(), 2);
    }
}
