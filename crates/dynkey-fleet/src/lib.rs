//! Fleet control for dynkey on NATS JetStream KV: set the desired state
//! once, and every matching instance converges and says so.
//!
//! # Why this shape
//!
//! A service runs as many instances; an operator wants `module checkout*
//! +p` (or a key on) on all of them, or on a labelled subset, and wants to
//! know which instances applied it, including those that were down,
//! partitioned or started later. Mature flag systems ship *state*, not
//! commands (reference/fleet.md): a late or partitioned instance only needs
//! the latest value. So the desired state is one *script* (an ordered list
//! of operations) per scope, kept in a JetStream KV bucket
//! ([`buckets::DESIRED`]) whose watch gives "the latest value of every key,
//! then updates", with a revision per write for compare-and-set and a kept
//! history for rollback. The engine is NATS, not a protocol of ours.
//!
//! * **Scopes** ([`Scope`]): `all`, a selector on labels
//!   (`svc=checkout,region=eu`: an instance matches when its labels contain
//!   every pair), or one instance (`instance=web-1`). An instance's layers
//!   apply in effective order: `all`, selectors by number of pairs, equal
//!   ones in the byte order of their keys, then its own.
//! * **Instances** ([`instance::Instance`], run by dynkeyd) watch the
//!   bucket, keep the latest script of every scope that matches their
//!   labels, and once a burst of updates is drained (`delta == 0`) hand the
//!   whole set of layers to dynkey, which rebuilds the state from its
//!   baseline in one commit: a catch-up burst of any length costs one
//!   commit. A scope an instance cannot apply (a name its build lacks)
//!   keeps its last good version there and is reported. Each instance
//!   writes a status document ([`docs::StatusDoc`]) to
//!   [`buckets::STATUS`] on every apply and every heartbeat.
//! * **Operators** ([`operator::Operator`], the `dynkeyctl` command) check
//!   every operation with dynkey's own parser before publishing, write with
//!   compare-and-set on the scope's revision, and read convergence from the
//!   status bucket ([`status`]).
//!
//! # Servers
//!
//! Debian's nats-server 2.9.10 and current servers (2.15) both work: the
//! buckets' streams are created by hand ([`buckets`]), nothing needs 2.10's
//! multi-filter consumers, and a watch's errors are treated as transient
//! (an ordered consumer recreates itself after a server restart).
//!
//! # In dynkeyd
//!
//! ```ignore
//! #[derive(clap::Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     fleet: dynkey_fleet::instance::InstanceArgs, // --nats --instance --labels --heartbeat + NatsArgs
//!     // ...
//! }
//! // after the sites are registered and --state-dir is open, inside the runtime:
//! let fleet = match args.fleet.config() {
//!     Some(config) => Some(Arc::new(Instance::start(config, control).await?)), // exit 2 on Err
//!     None => None,
//! };
//! // GET /fleet: fleet.view() (serialize it), or instance::disabled_view()
//! // metrics: fleet.metrics() at scrape time
//! ```
#![forbid(unsafe_code)]

pub mod buckets;
pub mod docs;
pub mod error;
pub mod instance;
pub mod nats;
pub mod operator;
pub mod ops;
pub mod scope;
pub mod status;

pub use error::FleetError;
pub use nats::NatsArgs;
pub use ops::{FleetLayer, Op};
pub use scope::{InstanceId, Labels, Scope};

/// This crate's version, reported in status documents.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
