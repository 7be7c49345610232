//! The errors of this crate: one enum, every variant documented, messages
//! that name the offending value, and a stable category (`E_*`) per
//! variant for the HTTP error shape.

use std::path::PathBuf;

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
    /// No site has this id (ids are those of the JSON listing).
    #[error("no site with id {0:?}")]
    UnknownSite(String),
    /// A site toggle's flags are not a flag operation such as `+p`.
    #[error("flags {flags:?}: {error}")]
    BadFlags {
        /// The flags given.
        flags: String,
        /// What is wrong with them.
        error: QueryError,
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
    /// The `DYNKEY_*` configuration is invalid or cannot be honoured: every
    /// change is refused until the process restarts with a valid one.
    #[error("configuration: {0}")]
    Config(dynkey_text::Error),
    /// A class'd callsite whose class no class map covering its module
    /// declares: nothing could ever turn it on.
    #[error(
        "callsite {site} (module {module}) uses class {class}, which no class map covering that module declares ({maps})"
    )]
    UnknownClass {
        /// `file:line` of the callsite.
        site: String,
        /// Its module path.
        module: String,
        /// The class it names.
        class: String,
        /// Which maps declare the class, and their modules.
        maps: String,
    },
    /// `DYNKEY_QUERY` could not be applied at start-up.
    #[error("DYNKEY_QUERY not applied: {0}")]
    BootQuery(Box<Error>),
    /// The local layer is full; revoke operations to make room.
    #[error(
        "the local layer holds {0} operations, the most it keeps; revoke some (DELETE /state/ops)"
    )]
    StateFull(usize),
    /// Writing the journal failed; nothing was applied.
    #[error("journal: {0}; nothing was applied")]
    Journal(String),
    /// The state directory cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// No local operation has this id (it may have been folded away, revoked
    /// or expired).
    #[error("no local operation {0}")]
    UnknownOperation(u64),
    /// The operation was made in code; only operators' operations can be
    /// revoked.
    #[error("operation {0} was made in code; it cannot be revoked")]
    NotRevocable(u64),
    /// A fleet scope's script cannot be applied by this build.
    #[error("fleet scope {scope}: {error}")]
    Fleet {
        /// The scope's bucket key.
        scope: String,
        /// Why.
        error: Box<Error>,
    },
    /// Site toggles name ids of one build; they cannot be fleet operations.
    #[error("site toggles are local operations; a fleet script cannot hold them")]
    SiteInFleet,
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
            Error::UnknownParam(_)
            | Error::UnknownCall(_)
            | Error::UnknownSite(_)
            | Error::UnknownOperation(_) => "E_NOT_FOUND",
            Error::UnknownKey(_) | Error::AmbiguousKey { .. } | Error::UnknownTarget { .. } => {
                "E_UNKNOWN_KEY"
            }
            Error::BadFlags { error, .. } => error.category(),
            Error::Invalid { .. } => "E_INVALID",
            Error::Config(_) => "E_CONFIG",
            Error::UnknownClass { .. } => "E_UNKNOWN_CLASS",
            Error::BootQuery(e) | Error::Fleet { error: e, .. } => e.category(),
            Error::StateFull(_) => "E_STATE_FULL",
            Error::Journal(_) => "E_JOURNAL",
            Error::State(_) => "E_STATE",
            Error::NotRevocable(_) => "E_NOT_REVOCABLE",
            Error::SiteInFleet => "E_SITE_IN_FLEET",
            Error::Text(_) if self.applied() => "E_RENDEZVOUS",
            Error::Text(_) => "E_INTERNAL",
        }
    }

    /// Whether the change was applied anyway: the code was written and the
    /// states published, but some thread may run old code until it next
    /// enters the kernel. Clients should not retry such a change.
    pub fn applied(&self) -> bool {
        matches!(self, Error::Text(e) if e.applied_but_may_lag())
    }
}

/// What can go wrong with a state directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Another process holds the directory.
    #[error("state directory {dir} is in use by another process{}", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// The pid written in its lock file, if readable.
        holder: Option<u32>,
    },
    /// A record before the last one is unreadable.
    #[error(
        "{file}: corrupt record at byte {offset}: {reason}; start with recovery to keep the records before it"
    )]
    Corrupt {
        /// The journal file.
        file: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The journal was written by a format this build does not read.
    #[error("{file}: journal format version {found}; this build reads version {expected}")]
    Version {
        /// The journal file.
        file: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// An I/O error.
    #[error("{what} {path}: {reason}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The directory was given after the state started changing through it.
    #[error("a state directory is already open ({0})")]
    AlreadyOpen(PathBuf),
}
