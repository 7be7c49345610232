//! The errors of the fleet, and the exit code dynkeyctl gives each.

use crate::ops::OpError;

/// What can go wrong talking to the fleet.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// Input that cannot be published (a bad query, scope, duration, a
    /// revision that is not the scope's); nothing was written.
    #[error("{0}")]
    BadInput(String),
    /// Operations that dynkey's parser refuses; nothing was written.
    #[error("{} bad operation{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    BadOps(Vec<OpError>),
    /// The scope changed since it was read (compare-and-set on its
    /// revision failed); nothing was written: read again and retry.
    #[error("scope {scope} changed since revision {expected} was read; nothing was written: retry")]
    Conflict {
        /// The scope (command-line spelling).
        scope: String,
        /// The revision the write expected.
        expected: u64,
    },
    /// The server cannot be reached, or did not answer in time.
    #[error("NATS unreachable: {0}")]
    Unreachable(String),
    /// The server refused the credentials or the subject.
    #[error("NATS permission denied: {0}")]
    PermissionDenied(String),
    /// The buckets do not exist yet.
    #[error("bucket {0} does not exist: run `dynkeyctl --nats URL init` first")]
    NoBucket(&'static str),
    /// Another NATS or JetStream error.
    #[error("NATS: {0}")]
    Nats(String),
}

impl FleetError {
    /// dynkeyctl's exit code: 2 bad input, 3 conflict, 4 NATS unreachable,
    /// permission denied or not set up.
    pub fn exit_code(&self) -> u8 {
        match self {
            FleetError::BadInput(_) | FleetError::BadOps(_) => 2,
            FleetError::Conflict { .. } => 3,
            FleetError::Unreachable(_)
            | FleetError::PermissionDenied(_)
            | FleetError::NoBucket(_)
            | FleetError::Nats(_) => 4,
        }
    }

    /// The JSON dynkeyctl prints on stderr: the operations' errors in the
    /// HTTP API's shape, or one error with its category.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            FleetError::BadOps(errors) => serde_json::json!({ "errors": errors }),
            other => serde_json::json!({
                "errors": [{ "category": other.category(), "message": other.to_string() }]
            }),
        }
    }

    /// A category name for the error (`E_*`).
    pub fn category(&self) -> &'static str {
        match self {
            FleetError::BadInput(_) => "E_BAD_INPUT",
            FleetError::BadOps(_) => "E_BAD_OP",
            FleetError::Conflict { .. } => "E_CONFLICT",
            FleetError::Unreachable(_) => "E_UNREACHABLE",
            FleetError::PermissionDenied(_) => "E_PERMISSION",
            FleetError::NoBucket(_) => "E_NO_BUCKET",
            FleetError::Nats(_) => "E_NATS",
        }
    }
}
