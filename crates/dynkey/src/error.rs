//! The errors of this crate.

use dynkey_query::{ParamError, QueryError};

/// What can go wrong in dynkey.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body had bad queries; nothing was applied. One entry per bad
    /// query, with its index, category and byte offset.
    #[error("{} bad quer{}: {}", .0.len(), if .0.len() == 1 { "y" } else { "ies" }, .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Query(Vec<QueryError>),
    /// A param value is not a number; nothing was applied.
    #[error("param {param}: {error}")]
    BadParam {
        /// The param.
        param: String,
        /// What is wrong with the value.
        error: ParamError,
    },
    /// No class map has this param.
    #[error("no param named {0:?}")]
    UnknownParam(String),
    /// No static key has this name.
    #[error("no static key named {0:?}")]
    UnknownKey(String),
    /// Several static keys have this bare name.
    #[error("static key name {name:?} is ambiguous; use one of {candidates:?}")]
    AmbiguousKey {
        /// The bare name given.
        name: String,
        /// Full paths that would be unambiguous.
        candidates: Vec<String>,
    },
    /// No static call has this name.
    #[error("no static call named {0:?}")]
    UnknownCall(String),
    /// The static call has no such target.
    #[error("static call {call} has no target {target:?}; its targets are {targets:?}")]
    UnknownTarget {
        /// The call.
        call: String,
        /// The target asked for.
        target: String,
        /// The targets it has.
        targets: Vec<&'static str>,
    },
    /// A site or class map given as data is invalid; nothing was registered.
    #[error("{what} {entry}: field {field:?} {reason}")]
    Invalid {
        /// `site` or `class map`.
        what: &'static str,
        /// Its index in the list given.
        entry: usize,
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The patching layer failed (see [`dynkey_text::Error`]).
    #[error(transparent)]
    Text(#[from] dynkey_text::Error),
}

impl Error {
    /// The error category used in JSON error bodies (`E_*`).
    pub fn category(&self) -> &'static str {
        match self {
            Error::Query(e) => e.first().map_or("E_QUERY", |e| e.category()),
            Error::BadParam { .. } => "E_BAD_PARAM",
            Error::UnknownParam(_) | Error::UnknownCall(_) => "E_NOT_FOUND",
            Error::UnknownKey(_) | Error::AmbiguousKey { .. } | Error::UnknownTarget { .. } => {
                "E_UNKNOWN_KEY"
            }
            Error::Invalid { .. } => "E_INVALID",
            Error::Text(_) => "E_INTERNAL",
        }
    }
}
