//! Patched sites and one-rendezvous commits.
//!
//! This crate is the machinery under `dynkey`: it makes a disabled flag cost
//! about a NOP where it is tested, and a flag change cost one cross-thread
//! rendezvous, however many places test it.
//!
//! - **Sites** test keys. Three kinds, one behaviour:
//!   - *inline* ([`branch_unlikely!`], [`branch_likely!`]): a 5-byte
//!     instruction in the function, `nop` or `jmp`, on x86-64 Linux;
//!   - *trampoline*: a stub in executable memory, either link-time (a text
//!     section of the binary, called directly: [`link_value_stub!`],
//!     [`link_call!`]) or run-time (pages mapped now, called through their
//!     address: [`ValueSite`], [`RuntimeCall`]);
//!   - *atomic*: a relaxed load and branch, on other targets, when the kernel
//!     refuses executable memfd mappings, or when forced
//!     (`DYNKEY_SITES=atomic`).
//! - **Commits** ([`commit`]) change any number of keys: plan the words that
//!   change, verify them all, store each with one atomic store, run one
//!   rendezvous, publish the states.
//! - **Rendezvous**: `membarrier(PRIVATE_EXPEDITED_SYNC_CORE)` registered
//!   before `main`, or signals to every thread, or (atomic sites only) none.
//!
//! ```
//! use dynkey_text::{Change, RawKey, branch_unlikely, commit};
//!
//! static VERBOSE: RawKey = RawKey::new(false);
//!
//! fn work() -> &'static str {
//!     if branch_unlikely!(VERBOSE) { "verbose" } else { "quiet" }
//! }
//!
//! assert_eq!(work(), "quiet");
//! let report = commit(&[Change::Key(&VERBOSE, true)]).unwrap();
//! assert_eq!(work(), "verbose");
//! assert!(VERBOSE.is_enabled());
//! assert!(report.rendezvous <= 1);
//! ```
//!
//! # Guarantees
//!
//! - **G1, no torn code**: a site runs the old or the new instruction, never
//!   a mix.
//! - **G2, visibility on return**: once [`commit`] returns `Ok`, every site
//!   execution that starts afterwards, in any thread (sleeping ones
//!   included), takes the new path.
//! - **G3, no cross-site atomicity during a commit**: a thread running while
//!   a commit is in progress may see some of its sites changed and others
//!   not; all are visible together once it returns (G2).
//! - **G4, state implies code**: [`RawKey::is_enabled`] returning the new
//!   state means every site already takes the new path.
//! - **G5, cost**: a commit costs O(changed sites) stores and at most one
//!   rendezvous (in the default queue mode); a commit that changes no code
//!   costs none.
//!
//! With `DYNKEY_RENDEZVOUS=none` (atomic sites only) G2 weakens to eventual
//! visibility; that is the user's explicit choice.
//!
//! # Safety
//!
//! Every `unsafe` block in this crate rests on a few invariants, named here
//! and cited where they are used:
//!
//! - `[W^X]`: no mapping is ever writable and executable at once. Code is
//!   written through a second, writable mapping of the same memfd
//!   (`pages.rs`).
//! - `[ONE-STORE]`: bytes that may be executing change only by one aligned
//!   8-byte atomic store of a word that contains the whole instruction
//!   (sites are placed so; the runtime refuses, and leaves atomic, any that
//!   are not).
//! - `[OLD-VERIFIED]`: every planned word is compared with the bytes it must
//!   hold before any word of the commit is written; a mismatch aborts with
//!   [`Error::Verify`] and changes nothing.
//! - `[SYNC-BEFORE-RETURN]`: a commit that wrote code runs a rendezvous
//!   before publishing states and returning.
//! - `[SITE-RECORDS]`: records in the `dynkey_*_v1` sections are emitted only
//!   by this crate's macros, and name `static` keys of the right type.
//!
//! # fork()
//!
//! A fork child gets private copies of the code pages before it returns
//! from `fork()` (see the `fork` handlers), so it never patches its parent.
//!
//! # Limitations
//!
//! - One copy of this crate per binary (the sections are shared by name).
//! - Sites in `dlopen`ed libraries are not found (their sections have their
//!   own start/stop symbols); use run-time sites there.
//! - Run-time stubs are never freed.
//! - A `fork()` while another thread is in the middle of the runtime's
//!   first start-up leaves the child unable to use it (start early, e.g.
//!   with [`status`], in programs that fork from threads).
//! - Taken-over text shows as `/memfd:dynkey-text` in `/proc/PID/maps`;
//!   `DYNKEY_PERF_MAP=1` writes `/tmp/perf-PID.map` for profilers.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

mod arch;
mod commit;
mod config;
mod counters;
#[doc(hidden)]
pub mod early;
mod error;
mod fork;
mod int_map;
mod key;
mod lock;
mod macros;
mod pages;
mod perfmap;
mod queue;
mod records;
mod rendezvous;
mod runtime;
mod stubs;
#[doc(hidden)]
pub mod testing;

pub use commit::{CommitReport, commit, commit_with};
pub use config::{Config, MethodChoice, QueueMode, SiteMode};
pub use counters::{BUCKETS, CountersSnapshot, HistogramSnapshot, bucket_bounds, counters};
pub use error::{EncodeError, Error};
#[doc(hidden)]
pub use int_map::{IntHasher, IntMap};
pub use key::{Change, CodePtr, FnPtr, KeyStatic, RawCall, RawKey};
#[doc(hidden)]
pub use macros::__assert_key_static;
pub use macros::LinkCall;
pub use runtime::{
    Census, Status, call_site_counts, census, configure, key_site_counts, set_queue_mode, status,
};
pub use stubs::{RuntimeCall, ValueSite};

use std::fmt;

/// How a commit makes written code visible to every thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Method {
    /// `membarrier(PRIVATE_EXPEDITED_SYNC_CORE)`.
    Membarrier = 0,
    /// A signal to every thread, each acknowledging from a serializing handler.
    Signal = 1,
    /// No rendezvous (atomic sites, eventual visibility).
    None = 2,
}

impl Method {
    /// Every method, in `as usize` order.
    pub const ALL: [Method; 3] = [Method::Membarrier, Method::Signal, Method::None];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Membarrier => "membarrier",
            Method::Signal => "signal",
            Method::None => "none",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum SiteKind {
    /// A patched instruction in a function.
    Inline = 0,
    /// A patched stub, called.
    Trampoline = 1,
    /// A load and a branch.
    Atomic = 2,
}

impl SiteKind {
    /// Every kind, in `as usize` order.
    pub const ALL: [SiteKind; 3] = [SiteKind::Inline, SiteKind::Trampoline, SiteKind::Atomic];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteKind::Inline => "inline",
            SiteKind::Trampoline => "trampoline",
            SiteKind::Atomic => "atomic",
        }
    }
}

impl fmt::Display for SiteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The calling thread's OS thread id (`gettid`), as dyndbg's `t` flag shows it.
pub fn os_thread_id() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}
