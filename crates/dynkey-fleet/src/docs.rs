//! The two documents in the buckets: a scope's script (`dynkey_desired`)
//! and an instance's status (`dynkey_status`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ops::Op;
use crate::scope::Labels;

/// The value of a scope's key in `dynkey_desired`: its operations in
/// order, and who wrote this revision, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// The operations, in the order they apply.
    pub ops: Vec<Op>,
    /// Who wrote this revision (`user@host`).
    pub author: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The operator's comment, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// An error an instance reports in its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusError {
    /// The scope it concerns (command-line spelling), or null for the
    /// instance as a whole (a duplicate id, for example).
    pub scope: Option<String>,
    /// The revision that could not be applied, when it is about one.
    pub revision: Option<u64>,
    /// What went wrong.
    pub message: String,
}

/// The value of `inst.<id>` in `dynkey_status`, written only by that
/// instance: on every apply and every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// The instance's id.
    pub id: String,
    /// Its labels.
    pub labels: Labels,
    /// A random id drawn at start: two processes with one id differ here.
    pub boot_id: String,
    /// The dynkey version of the instance's build.
    pub version: String,
    /// Revision applied per matching scope (command-line spelling); a
    /// cleared scope shows the revision of its clearing.
    pub applied: BTreeMap<String, u64>,
    /// What the instance could not apply, and instance-wide problems.
    pub errors: Vec<StatusError>,
    /// Hash of the effective table (hex): equal across instances of one
    /// build in the same state.
    pub table_hash: String,
    /// Local operations in force on top of the fleet layers.
    pub drift: usize,
    /// The instance's commit counter.
    pub commits: u64,
    /// The instance's rendezvous counter.
    pub rendezvous: u64,
    /// `nats` once the instance has applied the bucket's state, `cache`
    /// while it runs on the layers cached in its journal.
    pub source: String,
    /// The instance's heartbeat, in milliseconds (liveness is three).
    pub heartbeat_ms: u64,
    /// When the document was written (RFC 3339, UTC, milliseconds).
    pub at: String,
}
