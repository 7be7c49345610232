//! What an instance needs from dynkey, and dynkey's
//! [`Control`](dynkey::Control) providing it.

use crate::ops::{FleetLayer, Op};

/// What an instance needs from dynkey (implemented for `dynkey::Control`).
/// Calls may block (a commit waits for its rendezvous): the instance makes
/// them on tokio's blocking pool.
pub trait FleetTarget: Send + Sync + 'static {
    /// The error of a check or a rebuild.
    type Error: std::fmt::Display + Send + 'static;
    /// Whether this build can apply the operation (the query parses, the
    /// names exist, the param value parses).
    fn check_op(&self, op: &Op) -> Result<(), Self::Error>;
    /// Replaces the fleet layers (in effective order) and rebuilds the
    /// state from the baseline in one commit; the journal caches them.
    fn set_fleet_layers(&self, layers: Vec<FleetLayer>) -> Result<(), Self::Error>;
    /// The fleet layers in force (cached in the journal, so available at
    /// start with NATS down).
    fn fleet_layers(&self) -> Vec<FleetLayer>;
    /// Local operations in force on top of the fleet layers (drift).
    fn local_ops_in_force(&self) -> usize;
    /// A hash of the effective table, equal across instances of one build
    /// in the same state.
    fn table_hash(&self) -> u64;
    /// The commit and rendezvous counters.
    fn counters(&self) -> TargetCounters;
}

/// Counters an instance reports in its status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetCounters {
    /// Commits so far.
    pub commits: u64,
    /// Rendezvous so far.
    pub rendezvous: u64,
}
impl FleetTarget for dynkey::Control {
    type Error = dynkey::Error;

    fn check_op(&self, op: &Op) -> Result<(), dynkey::Error> {
        dynkey::Control::check_op(self, op)
    }

    fn set_fleet_layers(&self, layers: Vec<FleetLayer>) -> Result<(), dynkey::Error> {
        dynkey::Control::set_fleet_layers(self, layers).map(drop)
    }

    fn fleet_layers(&self) -> Vec<FleetLayer> {
        dynkey::Control::fleet_layers(self)
    }

    fn local_ops_in_force(&self) -> usize {
        dynkey::Control::local_ops_in_force(self)
    }

    fn table_hash(&self) -> u64 {
        dynkey::Control::table_hash(self)
    }

    fn counters(&self) -> TargetCounters {
        let c = dynkey::Control::counters(self);
        TargetCounters {
            commits: c.text.commits,
            rendezvous: c.text.rendezvous_total(),
        }
    }
}
