//! The operator's side: read, write (compare-and-set), clear, history,
//! rollback and convergence of the desired state.
//!
//! Every write names the revision it was computed from
//! (`Nats-Expected-Last-Subject-Sequence`): if another operator wrote the
//! scope in between, the server refuses it and nothing is written; the
//! caller reads again and retries. So two operators appending to one scope
//! never lose each other's operations silently. Every operation is checked
//! with dynkey's parser before anything is published.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;

use crate::buckets::{self, DESIRED, STATUS};
use crate::docs::{Script, StatusDoc};
use crate::error::FleetError;
use crate::nats::{Conn, NatsArgs, nats_error};
use crate::ops::{Op, validate_all};
use crate::scope::Scope;
use crate::status::{self, Report, Seen};

/// A scope's current entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// Its revision (0: never written).
    pub revision: u64,
    /// Its script (None: never written, or cleared).
    pub script: Option<Script>,
}

/// One scope as `show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    /// The scope (command-line spelling).
    pub scope: String,
    /// The revision of its script.
    pub revision: u64,
    /// The script.
    #[serde(flatten)]
    pub script: Script,
}

/// One revision as `history` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    /// The revision.
    pub revision: u64,
    /// `put` or `clear`.
    pub action: &'static str,
    /// The script of a `put` (nothing for a `clear`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub script: Option<Script>,
    /// When the server stored it.
    pub stored: String,
}

/// How a write changes a scope's script.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Append operations (dynkeyctl apply).
    Append(Vec<Op>),
    /// Replace the script (dynkeyctl set).
    Replace(Vec<Op>),
}

/// Who is writing: `$USER@host`.
pub fn author() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

fn parse_script(scope: &Scope, revision: u64, value: &[u8]) -> Result<Script, FleetError> {
    serde_json::from_slice(value).map_err(|e| {
        FleetError::Nats(format!(
            "revision {revision} of scope {scope} is not a script: {e}"
        ))
    })
}

/// An operator's handle on the fleet.
pub struct Operator {
    conn: Conn,
    desired: kv::Store,
}

impl Operator {
    /// Connects and opens the desired-state bucket.
    pub async fn connect(url: &str, args: &NatsArgs) -> Result<Operator, FleetError> {
        let conn = Conn::connect(url, args, "dynkeyctl").await?;
        let desired = conn.guard(buckets::open(&conn.js, DESIRED)).await?;
        Ok(Operator { conn, desired })
    }

    /// Creates the buckets (see [`buckets::init`]).
    pub async fn init(
        url: &str,
        args: &NatsArgs,
        heartbeat: Duration,
    ) -> Result<buckets::InitReport, FleetError> {
        let conn = Conn::connect(url, args, "dynkeyctl").await?;
        conn.guard(buckets::init(&conn.js, heartbeat)).await
    }

    /// The connection (for tests and tools).
    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    /// Reads a scope's current script and revision.
    pub async fn read(&self, scope: &Scope) -> Result<Current, FleetError> {
        let entry = self
            .conn
            .guard(async {
                self.desired
                    .entry(scope.key())
                    .await
                    .map_err(|e| nats_error(&format!("reading {scope}"), e))
            })
            .await?;
        Ok(match entry {
            None => Current {
                revision: 0,
                script: None,
            },
            Some(e) if e.operation != Operation::Put => Current {
                revision: e.revision,
                script: None,
            },
            Some(e) => Current {
                revision: e.revision,
                script: Some(parse_script(scope, e.revision, &e.value)?),
            },
        })
    }

    /// Appends to or replaces a scope's script; returns the new revision.
    /// The operations are checked first (nothing is published if one is
    /// bad); the write fails with [`FleetError::Conflict`] if the scope
    /// changed since it was read.
    pub async fn write(
        &self,
        scope: &Scope,
        edit: Edit,
        comment: Option<String>,
    ) -> Result<u64, FleetError> {
        let new_ops = match &edit {
            Edit::Append(ops) | Edit::Replace(ops) => ops,
        };
        let errors = validate_all(new_ops);
        if !errors.is_empty() {
            return Err(FleetError::BadOps(errors));
        }
        let current = self.read(scope).await?;
        let ops = match edit {
            Edit::Append(new) => {
                let mut ops = current.script.map(|s| s.ops).unwrap_or_default();
                ops.extend(new);
                ops
            }
            Edit::Replace(new) => new,
        };
        self.put_script(scope, ops, comment, current.revision).await
    }

    /// Writes a whole script if the scope is still at `expected`
    /// (0: never written). No validation: callers validate.
    pub async fn put_script(
        &self,
        scope: &Scope,
        ops: Vec<Op>,
        comment: Option<String>,
        expected: u64,
    ) -> Result<u64, FleetError> {
        let script = Script {
            ops,
            author: author(),
            at: dynkey::format_time(SystemTime::now()),
            comment,
        };
        let value = serde_json::to_vec(&script).map_err(|e| FleetError::Nats(e.to_string()))?;
        self.conn
            .guard(async {
                self.desired
                    .update(scope.key(), Bytes::from(value), expected)
                    .await
                    .map_err(|e| match e.kind() {
                        kv::UpdateErrorKind::WrongLastRevision => FleetError::Conflict {
                            scope: scope.to_string(),
                            expected,
                        },
                        _ => nats_error(&format!("writing {scope}"), e),
                    })
            })
            .await
    }

    /// Clears a scope (a delete marker, kept in its history); returns the
    /// marker's revision. Clearing a scope that has no script writes
    /// nothing and returns its current revision.
    pub async fn clear(&self, scope: &Scope) -> Result<u64, FleetError> {
        let current = self.read(scope).await?;
        if current.script.is_none() {
            return Ok(current.revision);
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("KV-Operation", "DEL");
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            current.revision.to_string().as_str(),
        );
        let subject = format!("$KV.{DESIRED}.{}", scope.key());
        self.conn
            .guard(async {
                let ack = self
                    .conn
                    .js
                    .publish_with_headers(subject, headers, Bytes::new())
                    .await
                    .map_err(|e| nats_error(&format!("clearing {scope}"), e))?;
                ack.await.map(|a| a.sequence).map_err(|e| match e.kind() {
                    PublishErrorKind::WrongLastSequence => FleetError::Conflict {
                        scope: scope.to_string(),
                        expected: current.revision,
                    },
                    _ => nats_error(&format!("clearing {scope}"), e),
                })
            })
            .await
    }

    /// The scripts of one scope, or of every scope that has one.
    pub async fn show(&self, scope: Option<&Scope>) -> Result<Vec<Shown>, FleetError> {
        let scopes = match scope {
            Some(s) => vec![s.clone()],
            None => self.scopes().await?,
        };
        let mut shown = Vec::new();
        for s in scopes {
            let current = self.read(&s).await?;
            if let Some(script) = current.script {
                shown.push(Shown {
                    scope: s.to_string(),
                    revision: current.revision,
                    script,
                });
            }
        }
        Ok(shown)
    }

    /// Every scope with a script, in effective order.
    pub async fn scopes(&self) -> Result<Vec<Scope>, FleetError> {
        let keys: Vec<String> = self
            .conn
            .guard(async {
                let mut keys = self
                    .desired
                    .keys()
                    .await
                    .map_err(|e| nats_error("listing scopes", e))?;
                let mut out = Vec::new();
                while let Some(k) = keys.next().await {
                    out.push(k.map_err(|e| nats_error("listing scopes", e))?);
                }
                Ok(out)
            })
            .await?;
        let mut scopes: Vec<Scope> = keys
            .iter()
            .filter_map(|k| Scope::from_key(k).ok())
            .collect();
        scopes.sort_by(|a, b| a.effective_cmp(b));
        Ok(scopes)
    }

    /// The scope's revisions still kept (oldest first).
    pub async fn history(&self, scope: &Scope) -> Result<Vec<Revision>, FleetError> {
        let entries: Vec<kv::Entry> = self
            .conn
            .guard(async {
                let mut h = self
                    .desired
                    .history(scope.key())
                    .await
                    .map_err(|e| nats_error(&format!("history of {scope}"), e))?;
                let mut out = Vec::new();
                while let Some(e) = h.next().await {
                    out.push(e.map_err(|e| nats_error(&format!("history of {scope}"), e))?);
                }
                Ok(out)
            })
            .await?;
        entries
            .into_iter()
            .map(|e| {
                let stored = dynkey::format_time(e.created.into());
                Ok(match e.operation {
                    Operation::Put => Revision {
                        revision: e.revision,
                        action: "put",
                        script: Some(parse_script(scope, e.revision, &e.value)?),
                        stored,
                    },
                    _ => Revision {
                        revision: e.revision,
                        action: "clear",
                        script: None,
                        stored,
                    },
                })
            })
            .collect()
    }

    /// Makes an earlier revision's script the scope's current one (a new
    /// revision); returns it.
    pub async fn rollback(&self, scope: &Scope, revision: u64) -> Result<u64, FleetError> {
        let old = self
            .conn
            .guard(async {
                self.desired
                    .entry_for_revision(scope.key(), revision)
                    .await
                    .map_err(|e| nats_error(&format!("reading revision {revision}"), e))
            })
            .await;
        let old = match old {
            Ok(Some(e)) if e.operation == Operation::Put => e,
            Ok(Some(_)) => {
                return Err(FleetError::BadInput(format!(
                    "revision {revision} of scope {scope} is a clear; roll back to a revision with a script, or clear the scope"
                )));
            }
            // A sequence that is not this key's, or was removed from the
            // history, answers "not found" (or nothing).
            Ok(None) | Err(FleetError::Nats(_)) => {
                return Err(FleetError::BadInput(format!(
                    "revision {revision} is not a kept revision of scope {scope} (see dynkeyctl history --scope {scope})"
                )));
            }
            Err(e) => return Err(e),
        };
        let script = parse_script(scope, revision, &old.value)?;
        let current = self.read(scope).await?;
        self.put_script(
            scope,
            script.ops,
            Some(format!("rollback to revision {revision}")),
            current.revision,
        )
        .await
    }

    /// The latest revision of every scope (cleared ones included), and the
    /// scopes that have a script.
    async fn desired_state(
        &self,
    ) -> Result<(BTreeMap<String, (Scope, u64)>, Vec<Scope>), FleetError> {
        let scopes = self.scopes().await?;
        let mut latest = BTreeMap::new();
        for s in &scopes {
            let current = self.read(s).await?;
            latest.insert(s.key(), (s.clone(), current.revision));
        }
        Ok((latest, scopes))
    }

    /// Every status document in the status bucket, with its age.
    pub async fn statuses(&self) -> Result<Vec<Seen>, FleetError> {
        let store = self
            .conn
            .guard(buckets::open(&self.conn.js, STATUS))
            .await?;
        self.conn
            .guard(async {
                let mut keys = store
                    .keys()
                    .await
                    .map_err(|e| nats_error("listing status", e))?;
                let mut names = Vec::new();
                while let Some(k) = keys.next().await {
                    names.push(k.map_err(|e| nats_error("listing status", e))?);
                }
                let mut seen = Vec::new();
                for k in names {
                    let Some(entry) = store
                        .entry(k.clone())
                        .await
                        .map_err(|e| nats_error(&format!("status {k}"), e))?
                    else {
                        continue;
                    };
                    if entry.operation != Operation::Put {
                        continue;
                    }
                    let Ok(doc) = serde_json::from_slice::<StatusDoc>(&entry.value) else {
                        continue;
                    };
                    let written = SystemTime::from(entry.created);
                    let age = SystemTime::now()
                        .duration_since(written)
                        .unwrap_or(Duration::ZERO);
                    seen.push(Seen { doc, age });
                }
                Ok(seen)
            })
            .await
    }

    /// Checks convergence once.
    pub async fn status(
        &self,
        scope: Option<&Scope>,
        revision: Option<u64>,
    ) -> Result<Report, FleetError> {
        let (mut latest, live) = self.desired_state().await?;
        if let Some(s) = scope
            && !latest.contains_key(&s.key())
        {
            // A cleared or never-written scope: its latest revision is that
            // of its clearing (0 if never written).
            let current = self.read(s).await?;
            latest.insert(s.key(), (s.clone(), current.revision));
        }
        let seen = self.statuses().await?;
        Ok(status::evaluate(&seen, &latest, &live, scope, revision))
    }

    /// Checks convergence until it holds or `wait` has passed; returns the
    /// last report. The revisions asked for are fixed at the start.
    pub async fn status_wait(
        &self,
        scope: Option<&Scope>,
        revision: Option<u64>,
        wait: Duration,
    ) -> Result<Report, FleetError> {
        let deadline = Instant::now() + wait;
        let (mut latest, live) = self.desired_state().await?;
        if let Some(s) = scope
            && !latest.contains_key(&s.key())
        {
            let current = self.read(s).await?;
            latest.insert(s.key(), (s.clone(), current.revision));
        }
        loop {
            let seen = self.statuses().await?;
            let report = status::evaluate(&seen, &latest, &live, scope, revision);
            if report.converged || Instant::now() >= deadline {
                return Ok(report);
            }
            tokio::time::sleep(Duration::from_millis(50).min(deadline - Instant::now())).await;
        }
    }
}
