//! dynkeyctl: the operator's command for a dynkey fleet on NATS.
//!
//! ```text
//! dynkeyctl --nats nats://127.0.0.1:4222 init
//! dynkeyctl --nats URL apply --scope svc=checkout --ttl 1h --query 'module checkout* +p'
//! dynkeyctl --nats URL status --scope svc=checkout --wait 10s
//! ```
//!
//! Exit codes, for every verb: 0 done, 1 not converged (status), 2 bad
//! input (nothing published), 3 compare-and-set conflict (nothing written:
//! retry), 4 NATS unreachable, permission denied, or buckets missing.
//! Results are one JSON document on stdout; errors one on stderr.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use dynkey::parse_duration;
use dynkey_fleet::buckets::DEFAULT_HEARTBEAT;
use dynkey_fleet::operator::{Edit, Operator, Revision, Shown};
use dynkey_fleet::{FleetError, NatsArgs, Op, Scope};
use serde::Serialize;
use serde_json::json;

/// Fleet control for dynkey: set the desired state once, every matching
/// instance converges and says so.
#[derive(Parser, Debug)]
#[command(
    name = "dynkeyctl",
    version,
    after_help = "\
SCOPE is all, a label selector k=v[,k2=v2...], or instance=ID.
Exit codes: 0 done, 1 not converged (status), 2 bad input (nothing published),
3 compare-and-set conflict (nothing written: retry), 4 NATS unreachable or
permission denied."
)]
struct Cli {
    /// NATS server URL (nats://HOST:PORT).
    #[arg(long, value_name = "URL", global = true)]
    nats: Option<String>,
    #[command(flatten)]
    auth: NatsArgs,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Create the buckets dynkey_desired and dynkey_status (idempotent).
    Init {
        /// The instances' heartbeat: status entries expire after three.
        #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
        heartbeat: Option<Duration>,
    },
    /// Append operations to the scope's script.
    Apply(Write),
    /// Replace the scope's script with these operations.
    Set(Write),
    /// Clear the scope's script (kept in its history).
    Clear {
        /// The scope.
        #[arg(long, value_name = "SCOPE")]
        scope: Scope,
    },
    /// Print the scripts of every scope, or of one.
    Show {
        /// Only this scope.
        #[arg(long, value_name = "SCOPE")]
        scope: Option<Scope>,
    },
    /// Print the scope's kept revisions, oldest first.
    History {
        /// The scope.
        #[arg(long, value_name = "SCOPE")]
        scope: Scope,
    },
    /// Make an earlier revision's script current again (a new revision).
    Rollback {
        /// The scope.
        #[arg(long, value_name = "SCOPE")]
        scope: Scope,
        /// The revision to return to (see history).
        #[arg(long, value_name = "N")]
        revision: u64,
    },
    /// Report which live instances applied what; exit 0 when converged.
    Status {
        /// Only instances matching this scope, which must have applied it.
        #[arg(long, value_name = "SCOPE")]
        scope: Option<Scope>,
        /// The revision they must have applied (default: the latest).
        #[arg(long, value_name = "N", requires = "scope")]
        revision: Option<u64>,
        /// Keep checking until converged or this long has passed.
        #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
        wait: Option<Duration>,
    },
}

#[derive(Args, Debug)]
struct Write {
    /// The scope.
    #[arg(long, value_name = "SCOPE")]
    scope: Scope,
    /// The operations expire after this long (90s, 10m, 1h30m, 1d; whole seconds, at most 30 days).
    #[arg(long, value_name = "DURATION", value_parser = ttl_arg)]
    ttl: Option<Duration>,
    /// Why (kept with the revision).
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// A dyndbg query body.
    #[arg(long, value_name = "Q")]
    query: Vec<String>,
    /// A static key: NAME=on or NAME=off.
    #[arg(long, value_name = "NAME=on|off")]
    key: Vec<String>,
    /// A class param: NAME=VALUE.
    #[arg(long, value_name = "NAME=VALUE")]
    param: Vec<String>,
    /// A static call's target: NAME=TARGET.
    #[arg(long, value_name = "NAME=TARGET")]
    call: Vec<String>,
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.to_string())
}

fn ttl_arg(text: &str) -> Result<Duration, String> {
    dynkey::parse_ttl(text).map_err(|e| e.to_string())
}

fn pair<'a>(option: &str, text: &'a str) -> Result<(&'a str, &'a str), FleetError> {
    text.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .ok_or_else(|| FleetError::BadInput(format!("--{option} {text:?} is not NAME=VALUE")))
}

/// The operations of a write, in command-line order.
fn operations(write: &Write, matches: &ArgMatches) -> Result<Vec<Op>, FleetError> {
    let mut ops: Vec<(usize, Op)> = Vec::new();
    let mut take = |id: &str, values: &[String], make: &dyn Fn(&str) -> Result<Op, FleetError>| {
        let indices: Vec<usize> = matches
            .indices_of(id)
            .map(|i| i.collect())
            .unwrap_or_default();
        for (value, index) in values.iter().zip(indices) {
            ops.push((index, make(value)?));
        }
        Ok::<(), FleetError>(())
    };
    take("query", &write.query, &|q| Ok(Op::query(q)))?;
    take("key", &write.key, &|k| {
        let (name, v) = pair("key", k)?;
        match v {
            "on" => Ok(Op::keys([(name, true)])),
            "off" => Ok(Op::keys([(name, false)])),
            _ => Err(FleetError::BadInput(format!(
                "--key {k:?}: the value is on or off"
            ))),
        }
    })?;
    take("param", &write.param, &|p| {
        let (name, v) = pair("param", p)?;
        Ok(Op::param(name, v))
    })?;
    take("call", &write.call, &|c| {
        let (name, t) = pair("call", c)?;
        Ok(Op::call(name, t))
    })?;
    ops.sort_by_key(|(i, _)| *i);
    let expires_at = write.ttl.map(|ttl| SystemTime::now() + ttl);
    Ok(ops
        .into_iter()
        .map(|(_, op)| match expires_at {
            Some(at) => op.expiring_at(at),
            None => op,
        })
        .collect())
}

/// Prints one JSON document, fields in the order of the types (not
/// sorted), so `{"scope":..., "revision":N}` reads as documented.
fn print(value: &impl Serialize) {
    match serde_json::to_string(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("dynkeyctl: {e}"),
    }
}

#[derive(Serialize)]
struct Written {
    scope: String,
    revision: u64,
}

#[derive(Serialize)]
struct Scripts {
    scopes: Vec<Shown>,
}

#[derive(Serialize)]
struct Revisions {
    scope: String,
    revisions: Vec<Revision>,
}

async fn run(cli: Cli, matches: ArgMatches) -> Result<ExitCode, FleetError> {
    let url = cli
        .nats
        .clone()
        .ok_or_else(|| FleetError::BadInput("--nats URL is required".into()))?;
    if let Verb::Init { heartbeat } = &cli.verb {
        let report =
            Operator::init(&url, &cli.auth, heartbeat.unwrap_or(DEFAULT_HEARTBEAT)).await?;
        let buckets: serde_json::Map<String, serde_json::Value> = report
            .buckets
            .iter()
            .map(|(b, s)| (b.clone(), json!(s)))
            .collect();
        print(&json!({ "buckets": buckets, "status_max_age_s": report.status_max_age_s }));
        return Ok(ExitCode::SUCCESS);
    }
    // Bad operations are refused before connecting: nothing can be published.
    let sub = matches
        .subcommand()
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    let planned = match &cli.verb {
        Verb::Apply(w) | Verb::Set(w) => {
            let ops = operations(w, &sub)?;
            if ops.is_empty() && matches!(cli.verb, Verb::Apply(_)) {
                return Err(FleetError::BadInput(
                    "nothing to apply: give --query, --key, --param or --call".into(),
                ));
            }
            let errors = dynkey_fleet::ops::validate_all(&ops);
            if !errors.is_empty() {
                return Err(FleetError::BadOps(errors));
            }
            Some(ops)
        }
        _ => None,
    };
    let op = Operator::connect(&url, &cli.auth).await?;
    match cli.verb {
        Verb::Init { .. } => unreachable!("handled above"),
        Verb::Apply(w) => {
            let ops = planned.unwrap_or_default();
            let revision = op.write(&w.scope, Edit::Append(ops), w.comment).await?;
            print(&Written {
                scope: w.scope.to_string(),
                revision,
            });
        }
        Verb::Set(w) => {
            let ops = planned.unwrap_or_default();
            let revision = op.write(&w.scope, Edit::Replace(ops), w.comment).await?;
            print(&Written {
                scope: w.scope.to_string(),
                revision,
            });
        }
        Verb::Clear { scope } => {
            let revision = op.clear(&scope).await?;
            print(&Written {
                scope: scope.to_string(),
                revision,
            });
        }
        Verb::Show { scope } => {
            let scopes = op.show(scope.as_ref()).await?;
            print(&Scripts { scopes });
        }
        Verb::History { scope } => {
            let revisions = op.history(&scope).await?;
            print(&Revisions {
                scope: scope.to_string(),
                revisions,
            });
        }
        Verb::Rollback { scope, revision } => {
            let new = op.rollback(&scope, revision).await?;
            print(&Written {
                scope: scope.to_string(),
                revision: new,
            });
        }
        Verb::Status {
            scope,
            revision,
            wait,
        } => {
            let report = match wait {
                Some(w) => op.status_wait(scope.as_ref(), revision, w).await?,
                None => op.status(scope.as_ref(), revision).await?,
            };
            print(&report);
            if !report.converged {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dynkeyctl: tokio: {e}");
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(run(cli, matches)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", e.to_json());
            ExitCode::from(e.exit_code())
        }
    }
}
