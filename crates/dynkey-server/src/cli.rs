//! dynkeyd's command line: the options ([`Args`], parsed by clap) and the
//! environment, resolved into one [`Config`] before anything starts.
//!
//! This module belongs to the `dynkeyd` binary (`main.rs` declares it), not
//! to the library: a service that embeds the router reads its own
//! configuration.
//!
//! Two steps, so that each stays simple as options are added:
//!
//! 1. [`Args`] is what the command line says, checked for syntax only (clap
//!    rejects an unknown option, a missing value or a value that does not
//!    parse). Its doc comments are the `--help` text.
//! 2. [`Args::resolve`] reads what the options point to (the token file),
//!    takes the environment into account (`DYNKEY_TOKEN`) and checks the
//!    options against each other (a non-loopback `--listen` needs a token).
//!    It takes the environment as a function, so tests do not touch the
//!    process's own.
//!
//! Every problem is a [`clap::Error`]: printed the way clap prints its own,
//! exit code 2 (0 for `--help` and `--version`).
//!
//! Adding an option: a field on [`Args`] with a doc comment, its resolved
//! form on [`Config`], and a line in [`Args::resolve`]. Adding an environment
//! variable dynkeyd reads (here or in a library it uses): a row in
//! [`ENVIRONMENT`], which `--help` prints.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

/// Every environment variable dynkeyd reads, with a one-line meaning, in
/// the order `--help` lists them.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "DYNKEY_TOKEN",
        "bearer token for the mutating routes, when --token-file is not given",
    ),
    (
        "DYNKEY_QUERY",
        "dyndbg queries applied at start-up (and again to the sites of --sites)",
    ),
    ("DYNKEY_SITES", "site kind: auto (default), patch or atomic"),
    (
        "DYNKEY_RENDEZVOUS",
        "rendezvous after a code change: auto (default), membarrier, signal or none",
    ),
    (
        "DYNKEY_QUEUE",
        "writes per rendezvous: sorted (default), unbatched, queued-unsorted(N), queued-sorted(N)",
    ),
    (
        "DYNKEY_SIGNAL",
        "signal of the signal rendezvous: auto (default), a number, or SIGRTMIN+N",
    ),
    (
        "DYNKEY_SIGNAL_TIMEOUT_MS",
        "how long a signal rendezvous waits for every thread, in ms (default 500)",
    ),
    (
        "DYNKEY_PERF_MAP",
        "1: write /tmp/perf-PID.map so profilers can name the patched code",
    ),
    (
        "DYNKEY_REGISTER_EARLY",
        "1: register for membarrier before main, while it is cheap (no threads yet)",
    ),
];

/// The `Environment:` section of `--help`, from [`ENVIRONMENT`].
fn environment_help() -> String {
    let width = ENVIRONMENT.iter().map(|(name, _)| name.len()).max();
    let mut s = String::from("Environment:\n");
    for (name, meaning) in ENVIRONMENT {
        s += &format!("  {name:width$}  {meaning}\n", width = width.unwrap_or(0));
    }
    s.truncate(s.trim_end().len());
    s
}

/// The command line of dynkeyd, as given (see [`Args::resolve`] for what
/// it means once the environment is read).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "dynkeyd",
    version,
    // The last of a repeated option counts, as before clap.
    args_override_self = true,
    about = "Serves dynkey's HTTP control plane (dyndbg queries, class params, keys, calls, \
             Prometheus metrics) over a demo service or the sites of a JSON table.",
    after_help = environment_help()
)]
pub struct Args {
    /// Address to serve on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,

    /// Register the sites of a JSON site table instead of running the demo.
    #[arg(long, value_name = "FILE")]
    pub sites: Option<PathBuf>,

    /// Require `Authorization: Bearer <token>` on the mutating routes and on
    /// GET /state and /audit. One `NAME:TOKEN` per line (the audit names
    /// the token used); a line without `:` is a token named `default`, so a
    /// bare token that contains `:` needs a name in front. DYNKEY_TOKEN
    /// (one bare token) also works.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Allow a non-loopback --listen without a token.
    #[arg(long)]
    pub insecure: bool,

    /// Demo worker threads (0 counts as 1).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub workers: usize,

    /// Keep the state (operators' changes, the fleet cache, the audit) in
    /// DIR: every change is journaled and fsynced before its reply, and
    /// replayed at the next start, before the server listens.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Start even when the journal is corrupt before its last record,
    /// keeping the records before the corruption (logged).
    #[arg(long, requires = "state_dir")]
    pub state_recover: bool,

    /// Accept this DNS name in `Host` besides localhost (IP addresses are
    /// always accepted); repeatable. Other names get 421 (DNS rebinding).
    #[arg(long, value_name = "NAME")]
    pub allowed_host: Vec<String>,

    /// Accept changes from this browser origin (`http://host:port`) besides
    /// the server's own; repeatable. Other origins get 403.
    #[arg(long, value_name = "ORIGIN")]
    pub allowed_origin: Vec<String>,

    /// Joining a fleet (NATS JetStream KV): `--nats URL --instance ID
    /// --labels k=v,...`, credentials and TLS.
    #[cfg(feature = "fleet")]
    #[command(flatten)]
    pub fleet: dynkey_fleet::instance::InstanceArgs,
}

/// What dynkeyd runs with: the command line and the environment, read and
/// checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// The site table to serve instead of the demo.
    pub sites: Option<PathBuf>,
    /// Named bearer tokens (empty: no authentication).
    pub tokens: Vec<dynkey_server::Token>,
    /// Demo worker threads, at least 1.
    pub workers: usize,
    /// Where the state is kept, if anywhere.
    pub state_dir: Option<PathBuf>,
    /// Recover a journal corrupted before its tail.
    pub state_recover: bool,
    /// Which hosts and origins browsers may use.
    pub browser: dynkey_server::BrowserPolicy,
    /// The fleet to join, if any.
    #[cfg(feature = "fleet")]
    pub fleet: Option<dynkey_fleet::instance::InstanceConfig>,
}

impl Args {
    /// Reads the tokens (`--token-file`, else `DYNKEY_TOKEN` from `env`),
    /// and refuses a non-loopback `--listen` without one unless
    /// `--insecure`: anyone on the network could change flags.
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<Config, clap::Error> {
        let tokens = match &self.token_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    error(
                        ErrorKind::Io,
                        format!("--token-file {}: {e}", path.display()),
                    )
                })?;
                dynkey_server::parse_tokens(&text).map_err(|e| {
                    error(
                        ErrorKind::InvalidValue,
                        format!("--token-file {}: {e}", path.display()),
                    )
                })?
            }
            None => match env("DYNKEY_TOKEN").map(|t| t.trim().to_string()) {
                Some(t) if t.is_empty() => {
                    return Err(error(ErrorKind::InvalidValue, "the token is empty"));
                }
                Some(t) => vec![dynkey_server::Token::new("default", t)],
                None => Vec::new(),
            },
        };
        for host in &self.allowed_host {
            if host.is_empty() || host.contains([':', '/', ' ']) {
                return Err(error(
                    ErrorKind::ValueValidation,
                    format!("--allowed-host {host:?}: expected a DNS name without port"),
                ));
            }
        }
        for origin in &self.allowed_origin {
            let ok = ["http://", "https://"].iter().any(|p| {
                origin
                    .strip_prefix(p)
                    .is_some_and(|r| !r.is_empty() && !r.contains('/'))
            });
            if !ok {
                return Err(error(
                    ErrorKind::ValueValidation,
                    format!(
                        "--allowed-origin {origin:?}: expected http://host[:port] or https://host[:port]"
                    ),
                ));
            }
        }
        let token = tokens.first();
        if !self.listen.ip().is_loopback() && token.is_none() && !self.insecure {
            return Err(error(
                ErrorKind::MissingRequiredArgument,
                format!(
                    "refusing to serve {} without a token: anyone on the network could change \
                     flags; give --token-file (or DYNKEY_TOKEN), or --insecure",
                    self.listen
                ),
            ));
        }
        Ok(Config {
            #[cfg(feature = "fleet")]
            fleet: self.fleet.config(),
            listen: self.listen,
            sites: self.sites,
            tokens,
            workers: self.workers.max(1),
            state_dir: self.state_dir,
            state_recover: self.state_recover,
            browser: dynkey_server::BrowserPolicy {
                disabled: false,
                allowed_hosts: self.allowed_host,
                allowed_origins: self.allowed_origin,
            },
        })
    }
}

/// An error printed like clap's own (with the usage line), exit code 2.
fn error(kind: ErrorKind, message: impl std::fmt::Display) -> clap::Error {
    Args::command().error(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("dynkeyd").chain(args.iter().copied()))
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// A file in a fresh temporary directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> TempFile {
            let dir =
                std::env::temp_dir().join(format!("dynkeyd-cli-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_serve_the_demo_on_loopback_without_a_token() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.listen, "127.0.0.1:7070".parse().unwrap());
        assert_eq!(
            (&a.sites, &a.token_file, a.insecure, a.workers, &a.state_dir),
            (&None, &None, false, 2, &None)
        );
        assert!(a.allowed_host.is_empty() && a.allowed_origin.is_empty());
        #[cfg(feature = "fleet")]
        assert!(a.fleet.config().is_none(), "not in a fleet by default");
        let c = a.resolve(no_env).unwrap();
        assert!(c.tokens.is_empty());
        assert_eq!(c.workers, 2);
    }

    #[test]
    fn every_option_is_read() {
        let a = parse(&[
            "--listen",
            "[::1]:9000",
            "--sites",
            "table.json",
            "--token-file",
            "tok",
            "--insecure",
            "--workers",
            "5",
        ])
        .unwrap();
        assert_eq!(a.listen, "[::1]:9000".parse().unwrap());
        assert_eq!(a.sites, Some(PathBuf::from("table.json")));
        assert_eq!(a.token_file, Some(PathBuf::from("tok")));
        assert!(a.insecure);
        assert_eq!(a.workers, 5);
        // The `--name=value` form works too.
        let a = parse(&["--listen=0.0.0.0:1", "--workers=0"]).unwrap();
        assert_eq!(a.listen, "0.0.0.0:1".parse().unwrap());
        let a = Args {
            insecure: true,
            ..a
        };
        assert_eq!(a.resolve(no_env).unwrap().workers, 1, "0 workers means 1");
        // A repeated option: the last one counts.
        let a = parse(&[
            "--workers",
            "3",
            "--workers",
            "4",
            "--insecure",
            "--insecure",
        ])
        .unwrap();
        assert_eq!((a.workers, a.insecure), (4, true));
    }

    #[test]
    fn bad_arguments_are_errors_with_exit_code_2() {
        for (args, kind, names) in [
            (&["--bogus"][..], ErrorKind::UnknownArgument, "--bogus"),
            (&["stray"][..], ErrorKind::UnknownArgument, "stray"),
            (&["--listen"][..], ErrorKind::InvalidValue, "--listen"),
            (
                &["--listen", "localhost"][..],
                ErrorKind::ValueValidation,
                "localhost",
            ),
            (&["--workers", "-1"][..], ErrorKind::UnknownArgument, "-1"),
            (&["--workers", "two"][..], ErrorKind::ValueValidation, "two"),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.kind(), kind, "{args:?}: {e}");
            assert_eq!(e.exit_code(), 2, "{args:?}");
            assert!(e.to_string().contains(names), "{args:?} named in: {e}");
        }
    }

    #[test]
    fn help_lists_every_option_and_variable_and_version_exits_0() {
        let e = parse(&["--help"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert_eq!(e.exit_code(), 0);
        let help = e.to_string();
        for option in [
            "--listen",
            "--sites",
            "--token-file",
            "--insecure",
            "--workers",
            "--state-dir",
            "--state-recover",
            "--allowed-host",
            "--allowed-origin",
            "--nats",
            "--instance",
            "--labels",
            "--heartbeat",
            "--nats-creds",
            "--nats-ca",
            "--help",
            "--version",
        ] {
            assert!(help.contains(option), "{option} in:\n{help}");
        }
        for (name, meaning) in ENVIRONMENT {
            assert!(help.contains(&format!("{name}  ")), "{name} in:\n{help}");
            assert!(help.contains(meaning), "{name}'s meaning in:\n{help}");
        }
        let e = parse(&["--version"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DisplayVersion);
        assert_eq!(e.exit_code(), 0);
        assert_eq!(
            e.to_string(),
            format!("dynkeyd {}\n", env!("CARGO_PKG_VERSION"))
        );
    }

    fn names(c: &Config) -> Vec<&str> {
        c.tokens.iter().map(|t| t.name.as_str()).collect()
    }

    #[test]
    fn the_tokens_come_from_the_file_before_the_environment() {
        let env = |k: &str| (k == "DYNKEY_TOKEN").then(|| "  from-env \n".to_string());
        let file = TempFile::new("token", "alice: a-secret\n# a comment\n bare \n");
        let path = file.0.to_str().unwrap();
        let with_file = parse(&["--token-file", path]).unwrap();
        assert_eq!(
            names(&with_file.clone().resolve(env).unwrap()),
            ["alice", "default"],
            "the file wins; a bare line is `default`"
        );
        assert_eq!(
            names(&parse(&[]).unwrap().resolve(env).unwrap()),
            ["default"],
            "DYNKEY_TOKEN, trimmed"
        );
        let dup = TempFile::new("dup", "a:x\na:y\n");
        let e = parse(&["--token-file", dup.0.to_str().unwrap()])
            .unwrap()
            .resolve(no_env)
            .unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[cfg(feature = "fleet")]
    #[test]
    fn fleet_options_make_a_fleet_configuration() {
        let c = parse(&[
            "--nats",
            "nats://127.0.0.1:4222",
            "--instance",
            "web-1",
            "--labels",
            "env=prod,region=eu",
        ])
        .unwrap()
        .resolve(no_env)
        .unwrap();
        let f = c.fleet.expect("in a fleet");
        assert_eq!(f.url, "nats://127.0.0.1:4222");
        assert!(
            parse(&["--nats", "nats://x:1"]).is_err(),
            "--nats needs --instance"
        );
        assert!(
            parse(&["--instance", "a b", "--nats", "nats://x:1"]).is_err(),
            "ids are [A-Za-z0-9_-]"
        );
    }

    #[test]
    fn state_and_browser_options_are_read() {
        let a = parse(&[
            "--state-dir",
            "/var/lib/dynkeyd",
            "--state-recover",
            "--allowed-host",
            "dynkey.internal",
            "--allowed-origin",
            "https://ops.example:8443",
            "--allowed-host",
            "other.internal",
        ])
        .unwrap();
        let c = a.resolve(no_env).unwrap();
        assert_eq!(c.state_dir, Some(PathBuf::from("/var/lib/dynkeyd")));
        assert!(c.state_recover);
        assert_eq!(
            c.browser.allowed_hosts,
            ["dynkey.internal", "other.internal"]
        );
        assert_eq!(c.browser.allowed_origins, ["https://ops.example:8443"]);
        assert!(
            parse(&["--state-recover"]).is_err(),
            "recovery needs a directory"
        );
        for (opt, bad) in [
            ("--allowed-host", "evil.example:80"),
            ("--allowed-origin", "evil.example"),
            ("--allowed-origin", "http://x/path"),
        ] {
            let e = parse(&[opt, bad]).unwrap().resolve(no_env).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{opt} {bad}");
        }
    }

    #[test]
    fn an_empty_or_unreadable_token_is_refused() {
        let empty = TempFile::new("empty", "  \n");
        let e = parse(&["--token-file", empty.0.to_str().unwrap()])
            .unwrap()
            .resolve(no_env)
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("no token in the file"), "{e}");
        let e = parse(&[])
            .unwrap()
            .resolve(|_| Some(" ".into()))
            .unwrap_err();
        assert!(e.to_string().contains("the token is empty"), "{e}");
        let e = parse(&["--token-file", "/nonexistent/dynkeyd-token"])
            .unwrap()
            .resolve(no_env)
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("--token-file /nonexistent/dynkeyd-token: "),
            "{e}"
        );
    }

    #[test]
    fn a_non_loopback_listen_needs_a_token_or_insecure() {
        let open = || parse(&["--listen", "0.0.0.0:7070"]).unwrap();
        let e = open().resolve(no_env).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("refusing to serve 0.0.0.0:7070 without a token"),
            "{e}"
        );
        let with_token = open()
            .resolve(|k| (k == "DYNKEY_TOKEN").then(|| "t".into()))
            .unwrap();
        assert_eq!(names(&with_token), ["default"]);
        let insecure = Args {
            insecure: true,
            ..open()
        };
        let insecure = insecure.resolve(no_env).unwrap();
        assert!(insecure.tokens.is_empty());
        for loopback in ["127.0.0.1:1", "127.9.9.9:1", "[::1]:1"] {
            let a = parse(&["--listen", loopback]).unwrap();
            assert!(a.resolve(no_env).is_ok(), "{loopback} is loopback");
        }
    }
}
