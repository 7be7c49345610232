//! What a change did, or would do: the replies of [`Control`](crate::Control)'s
//! methods (and of dynkeyd's routes), and the layers `GET /state` shows.

use dynkey_query::Flags;

use crate::layers::LocalOp;
use crate::op::{FleetLayer, Op};

/// What `exec` did (`POST /control`'s reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Queries in the body (empty and comment pieces not counted).
    pub queries: usize,
    /// Sum over queries of the sites each matched.
    pub matched: usize,
    /// Distinct sites whose flags differ after the body from before.
    pub changed: usize,
    /// Rendezvous this request caused (0 or 1).
    pub rendezvous: usize,
}

/// What a param write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamReport {
    /// The param.
    pub param: String,
    /// The value stored (masked or clamped), as `param` reads it back.
    pub value: String,
    /// Sites whose flags changed.
    pub changed: usize,
    /// Rendezvous used (0 or 1).
    pub rendezvous: usize,
}

/// What a key or call change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeReport {
    /// Keys or calls whose state changed.
    pub changed: usize,
    /// Rendezvous used (0 or 1).
    pub rendezvous: usize,
}

/// What a rebuild did (a revoke, a fleet update, an expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildReport {
    /// Operations revoked (revokes only).
    pub revoked: usize,
    /// Sites whose flags changed.
    pub changed: usize,
    /// Rendezvous it cost (0 or 1).
    pub rendezvous: usize,
}

/// One site that a dry run would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunRow {
    /// The site's id.
    pub id: String,
    /// Its flags now.
    pub flags: Flags,
    /// Its flags after the request.
    pub new_flags: Flags,
}

/// What a request would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DryRun {
    /// Queries in the request.
    pub queries: usize,
    /// Sum over queries of the sites each matched.
    pub matched: usize,
    /// Sites whose flags would change.
    pub changed: usize,
    /// Class'd sites that a classless query left alone (the kernel's class
    /// protection): name their class (`class NAME`) to select them.
    pub protected: usize,
    /// The first sites that would change (at most [`DRY_RUN_ROWS`]).
    pub rows: Vec<DryRunRow>,
    /// The ids of every site that would change.
    pub ids: Vec<String>,
}

/// Rows a dry run lists at most.
pub const DRY_RUN_ROWS: usize = 100;

/// The layers of desired state, for `GET /state`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateView {
    /// The baseline's operations (`DYNKEY_QUERY` and the like).
    pub baseline: Vec<Op>,
    /// The fleet layers, in effective order.
    pub fleet: Vec<FleetLayer>,
    /// The local operations in force, oldest first.
    pub local: Vec<LocalOp>,
}
