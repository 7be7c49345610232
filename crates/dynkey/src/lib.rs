//! Static keys, static calls and dynamic debug for Rust services.
//!
//! A disabled flag costs about a NOP where it is tested; a flag change costs
//! one cross-thread rendezvous, however many places test it; and every debug
//! callsite compiled into the binary can be listed and switched at run time
//! with the Linux kernel's dynamic-debug queries, plus negation.
//!
//! ```
//! use dynkey::{control, pr_debug, static_branch_unlikely, static_key};
//!
//! static_key!(static FAST_PATH: bool = false);
//!
//! fn handle(n: u32) -> u32 {
//!     pr_debug!("handling {}", n); // prints only when enabled
//!     if static_branch_unlikely!(FAST_PATH) { n * 2 } else { n + 1 }
//! }
//!
//! assert_eq!(handle(2), 3);
//!
//! // Turn the callsite on with a dyndbg query (decorated with m, f and l)...
//! let report = control().exec("func handle +pmfl").unwrap();
//! assert_eq!(report.matched, 1);
//! // ...and the key on by name. Both cost one rendezvous at most.
//! control().set_keys([("FAST_PATH", true)]).unwrap();
//! assert_eq!(handle(2), 4); // and prints "my_crate:handle:6: handling 2"
//!
//! // The listing has a row per callsite: file:line [module]func =flags "format"
//! assert!(control().listing_string().contains("]handle =pmfl \"handling {}\""));
//! ```
//!
//! # The naive way, and this one
//!
//! A flag is usually an `AtomicBool` loaded at every test: about 1 ns when
//! its cache line is hot, a DRAM miss (~200 ns here) when cold, and a
//! change whose visibility in other threads is "soon". With dynkey a test
//! is an instruction in the code: a 5-byte `nop` while off, a `jmp` while
//! on. There is no data to load, so nothing to miss, and [`StaticKey::enable`]
//! returns only once every thread takes the new path.
//!
//! # What you get
//!
//! - [`static_key!`] declares a named boolean; [`static_branch_unlikely!`] and
//!   [`static_branch_likely!`] test it; [`StaticKey::enable`],
//!   [`StaticKey::disable`] and [`batch()`] change keys.
//! - [`static_call!`] declares a patchable function pointer with its
//!   registered targets; callers make a direct call into a stub.
//! - [`pr_debug!`], [`pr_debug_ratelimited!`] and their class'd forms are
//!   dyndbg callsites with flags `p m f l t s` ([`sink`] says where the
//!   output goes: stderr, or `log` / `tracing` behind their features).
//! - [`class_map!`] declares DRM-style classes with a numeric param
//!   (`drm.debug=0x1ff`): one commit for all of its bits.
//! - [`control()`] takes queries ([`Control::exec`]), params, keys and calls
//!   by name, dry runs, operators' changes with expiry ([`Control::submit`]),
//!   revokes, the audit log, and writes the listing; [`Control::register`]
//!   adds sites described by data (trampoline-backed).
//!
//! # Reference
//!
//! - [`docs::query_language`]: the query language (keywords, globs, file
//!   forms, lines, flags, classes and the class-protection rule, negation,
//!   errors, limits).
//! - [`docs::configuration`]: every `DYNKEY_*` variable.
//! - [`docs::state`]: the layers of desired state, which changes are
//!   journaled, expiry, audit.
//!
//! **A query without `class` never touches class'd sites** (the kernel's
//! class protection): `module my_app +p` leaves `pr_debug!(class: ...)`
//! sites alone; `module my_app class DEBUG +p` selects them. A dry run
//! ([`Control::dry_run`]) says how many a query left alone.
//!
//! Configuration mistakes surface at once: [`init`] returns the first
//! problem start-up found (an invalid `DYNKEY_*` value, a class'd callsite
//! no class map covers, a bad `DYNKEY_QUERY`), and each is printed once on
//! standard error. Call it first thing in `main`: it also starts the
//! runtime while the process has one thread, which keeps `membarrier`'s
//! registration cheap.
//!
//! # Guarantees
//!
//! For every change made through this crate (a key, a call, a query, a
//! param):
//!
//! - **G1, no torn code**: a site runs the old or the new instruction, never
//!   a mix. Each is changed by one aligned 8-byte store, made visible by a
//!   core-serializing rendezvous: what HotSpot and LLVM XRay rely on, and
//!   what the `dynkey-text` docs argue and its stress tests check (the
//!   Intel manual does not promise it for an instruction being executed
//!   while it is rewritten; the kernel uses a slower `int3` sequence).
//! - **G2, visibility on return**: once the change returns, every site
//!   execution that starts afterwards, in any thread (sleeping ones
//!   included), takes the new path.
//! - **G3, no cross-site atomicity during a change**: while a change is in
//!   progress, a thread may see some of its sites changed and others not.
//! - **G4, state implies code**: `is_enabled()` returning true means every
//!   site already takes the enabled path.
//! - **G5, cost**: a change costs O(changed sites) stores and at most one
//!   rendezvous; a change that touches no code (say `+mf`) costs none.
//!
//! # Cost model
//!
//! | | disabled test | enabled test | change |
//! |---|---|---|---|
//! | inline site (x86-64 Linux) | a 5-byte NOP | a `jmp` | one 8-byte store per site |
//! | trampoline (run-time sites, static calls) | a call to `mov eax, 0; ret` | same | one store per stub |
//! | atomic (elsewhere, or forced) | a relaxed load + branch | same | one store per key |
//!
//! Plus one rendezvous per change: `membarrier(PRIVATE_EXPEDITED_SYNC_CORE)`
//! (about 1 µs here), or signals to every thread when membarrier is
//! unavailable (tens of µs; milliseconds when threads outnumber cores,
//! since each must be scheduled to answer).
//!
//! # Platforms
//!
//! - x86-64 Linux: inline sites and trampolines, patched through a writable
//!   alias of memfd-backed code pages (never writable and executable at
//!   once), with membarrier or signals.
//! - Everything else, or when the kernel refuses executable memfd mappings,
//!   or with `DYNKEY_SITES=atomic`: the atomic kind, same API and
//!   guarantees. [`Control::status`] says which, and why.
//!
//! Crates that use the macros cannot `forbid(unsafe_code)`: the macros
//! expand to assembly and linker-section attributes (the argument for their
//! soundness is in `dynkey-text`).

#![deny(unsafe_code)]
#![deny(missing_docs)]

// The module map, one floor per group, lowest first (rustfmt sorts each
// group): a file imports from lower floors and its own, never from a higher
// one or through lib.rs's re-exports, so the crate reads top-down.
//
// Leaves: errors, times, operations, output.
mod error;
mod op;
mod ratelimit;
pub mod sink;
mod time;
mod tracing_hook;
// What the macros declare, and the registry of it.
mod callsite;
mod classes;
mod records;
mod registry;
// Desired state: tables over the registry, layers, journal, audit, expiry.
mod audit;
mod engine;
mod expiry;
mod group_commit;
mod journal;
mod layers;
mod table;
// The process-wide state and what reads it.
mod report;
mod runtime_sites;
mod state;
mod tracing_rows;
mod view;
// The control surface, and the handles changed in code through it.
mod batch;
mod call;
mod control;
mod key;
#[doc(hidden)]
pub mod macro_support;
#[doc(hidden)]
pub mod testing;

/// Long-form documentation.
pub mod docs {
    #[doc = include_str!("docs/query_language.md")]
    pub mod query_language {}
    #[doc = include_str!("docs/configuration.md")]
    pub mod configuration {}
    #[doc = include_str!("docs/state.md")]
    pub mod state {}
}

pub use audit::{AUDIT_KEEP, AuditEntry};
pub use batch::{Batch, batch};
pub use call::StaticCall;
pub use callsite::{Callsite, FuncName};
pub use classes::{Class, ClassMapDesc, ClassMapSpec};
pub use control::{Control, control, init};
pub use dynkey_query::{ClassMapKind, FlagOp, Flags, MAX_BODY, QueryError};
/// The patching layer's error, as [`Error::Text`] and [`Error::Config`] carry it.
pub use dynkey_text::Error as TextError;
pub use dynkey_text::{
    BUCKETS, Census, CodeView, CommitReport, Config, CountersSnapshot, HistogramSnapshot, Method,
    MethodChoice, QueueMode, SignalChoice, SignalHolder, SiteKind, SiteMode, Status, bucket_bounds,
};
pub use engine::{Actor, Applied, LOCAL_LIMIT, StateCounters};
pub use error::{Error, StateError};
pub use journal::JOURNAL_VERSION;
pub use key::StaticKey;
pub use layers::{LocalOp, Source};
pub use op::{FleetLayer, Op, OpKind};
pub use ratelimit::{Decision, RateLimit, Window};
pub use records::CallDesc;
pub use report::{
    ChangeReport, DRY_RUN_ROWS, DryRun, DryRunRow, ParamReport, RebuildReport, Report, StateView,
};
pub use runtime_sites::{RuntimeSite, SiteSpec};
pub use time::{
    DurationError, MAX_TTL, TtlError, format_time, format_time_millis, parse_duration, parse_time,
    parse_ttl,
};
pub use tracing_rows::{TracingRow, TracingSpec};
pub use view::{CallInfo, Counters, KeyInfo, ParamInfo, RowKind, SiteRow};

#[doc(hidden)]
pub mod __private {
    pub use crate::callsite::func_name;
    pub use crate::records::KeyRef;
    pub use dynkey_query;
    pub use dynkey_text;
}
