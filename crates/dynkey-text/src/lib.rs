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
//!     (`DYNKEY_SITES=atomic`, or at build time `--cfg dynkey_atomic_only`).
//! - **Commits** ([`commit`]) change any number of keys: plan the words that
//!   change, verify them all, store each with one atomic store, run one
//!   rendezvous, publish the states.
//! - **Rendezvous**: `membarrier(PRIVATE_EXPEDITED_SYNC_CORE)`, or signals
//!   to every thread, or (atomic sites only) none.
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
//! **What G1 rests on.** Each change of code that may be executing is one
//! aligned 8-byte store of a word that holds whole instructions, in which
//! every instruction start of the old bytes is one of the new
//! (`[ONE-STORE]` below), followed before the commit returns by a
//! rendezvous that serializes every core running the process. That is what
//! HotSpot (patching call sites and method entries) and LLVM XRay (patching
//! its sleds) rely on. The Intel SDM does not promise it: it asks the core
//! that executes modified code to serialize first (vol. 3, 8.1.3), says
//! nothing of an aligned store seen by instruction fetch *while* the
//! instruction runs, and lists errata for unsynchronized cross-modifying
//! code; the Linux kernel therefore patches live text with the `int3`
//! sequence of `text_poke_bp`, at the price of a trap handler and three
//! rendezvous per batch. Our evidence is the stress example
//! (`examples/stress.rs`, 8 threads running 8,192 distinct sites while 5,000
//! commits rewrite random batches of them, every execution checked): on this
//! machine (2 vCPUs, AMD EPYC, KVM) four runs made 79.5 billion checked
//! site executions, 36.0 billion on inline sites (each returns its own
//! constant, so a torn jump, which would land elsewhere, cannot go
//! unnoticed) and 43.5
//! billion on run-time value stubs, across 20,000 commits, with no torn
//! result, no crash and no stale state after a commit returned. That is
//! evidence, not proof.
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
//!   8-byte atomic store of a word that contains the whole instruction,
//!   and every instruction start of the word's old bytes is an instruction
//!   start of its new bytes, so a thread stopped inside the word resumes on
//!   an instruction (sites are placed so, the encodings keep it, tested for
//!   every transition in `code_table.rs`; start-up leaves atomic any site
//!   that is not placed so).
//! - `[OLD-VERIFIED]`: every planned word is compared with the bytes it must
//!   hold, in the writable alias and in the executable view, before any
//!   word of the commit is written; a mismatch aborts with
//!   [`Error::Verify`] and changes nothing.
//! - `[SYNC-BEFORE-RETURN]`: a commit that wrote code runs a rendezvous
//!   before publishing states and returning.
//! - `[SITE-RECORDS]`: records in the `dynkey_*_v1` sections are emitted only
//!   by this crate's macros, name `static` keys of the right type, and come
//!   from one copy of this crate (`records.rs`: a second copy fails to link).
//!
//! Writing code is `unsafe` (`Region::store`, `Region::fill_fresh`): the
//! caller holds the text lock and argues `[OLD-VERIFIED]` and
//! `[ONE-STORE]`.
//!
//! # Memory orderings
//!
//! Every atomic and the one it pairs with:
//!
//! | atomic | written | read | ordering |
//! |---|---|---|---|
//! | key `state` ([`RawKey`], [`RawCall`]) | commit's publish, after the rendezvous | [`RawKey::is_enabled`], [`RawCall::target_index`] | Release / Acquire: seeing the new state means the commit's code stores and rendezvous happened before (G4) |
//! | key `code` byte or call pointer | commit's write phase | atomic sites, compiled-in checks | Relaxed / Relaxed: a site needs the value, not ordering; visibility on return comes from the rendezvous (membarrier is a full barrier on every running thread; the signal handler's Acquire of the round) |
//! | key `slot` | code table, under the text lock | code table, under the text lock | Relaxed: the lock orders it |
//! | code words (writable alias) | `Region::store` | `Region::load` in a later commit | Release / Acquire (also ordered by the text lock); instruction fetch is not a memory-model access: `[SYNC-BEFORE-RETURN]` serializes it |
//! | signal `ROUND` | committer, after the code stores | signal handler | Release / Acquire: a handler that saw round `r` serializes after round `r`'s stores |
//! | signal slot `acked` | handler (`fetch_max`) | committer's wait | Release / Acquire |
//! | signal `TABLE`, table `len` | committer, before publishing the round | handler | Release / Acquire: the handler sees the whole table |
//! | signal `ACKS` | handler | committer, before its futex wait | Release / Acquire; only a wake-up count, every slot is re-read |
//! | signal `SIGNO`, membarrier state, serializer choice | start-up (under the text lock) or the constructor before `main` | the same, or handlers | Relaxed: written before any reader can run, or recomputed identically |
//! | counters | committer | scrapers | Relaxed: independent counts, not a cut |
//!
//! # Start-up, membarrier and seccomp
//!
//! The runtime starts on first use (a commit, a run-time site, [`status`]).
//! That is when membarrier is registered, so a binary that links this crate
//! but never uses it never calls `membarrier` (a seccomp policy may kill a
//! process for that). Registering costs microseconds with one thread and
//! milliseconds (an RCU grace period) once threads exist: start the runtime
//! first thing in `main` (`dynkey::init()`, or [`status`]), or set
//! `DYNKEY_REGISTER_EARLY=1` to register from a constructor before `main`
//! (it does nothing in a process that already has threads or a seccomp
//! filter). Under a seccomp filter the first `membarrier` call is made by a
//! throwaway child: if the filter kills it, `auto` uses signals and
//! [`Status::fallback`] says why; a forced `DYNKEY_RENDEZVOUS=membarrier` is
//! an [`Error::Unavailable`].
//!
//! # The signal rendezvous
//!
//! The signal is `DYNKEY_SIGNAL` ([`Config::signal`]), by default the first
//! real-time signal that nobody handles, ignores or blocks when the handler
//! is installed. It interrupts blocking calls: `poll`, `epoll_wait`,
//! `select`, `nanosleep` (even with `SA_RESTART`, which dynkey sets) return
//! `EINTR` once per rendezvous in the threads it reaches. Threads that block
//! the signal are not waited for; each commit reports them
//! ([`Error::SignalBlocked`]). If the application later installs its own
//! handler on that signal, commits report [`Error::SignalTaken`] instead of
//! signalling. Both are "applied, but some thread may lag"
//! ([`Error::applied_but_may_lag`]).
//!
//! # Uprobes and breakpoints
//!
//! Text pages that hold sites are taken over by a memfd copy of their
//! file's bytes. Breakpoints present at that moment (uprobes from `perf
//! probe`, bpftrace or systemtap, or a debugger's `int3`) are dropped: the
//! copy holds the file's instruction, so the probe stops firing in this
//! process and the function keeps working ([`Status::notes`] lists the
//! addresses). Uprobes attached later to those pages never fire in this
//! process, since the kernel keys them by the file's inode and the pages
//! are now a memfd's. Other pages of the binary are unaffected. Text whose
//! memory differs from its file in any other way, or whose file cannot be
//! read, is not taken over: the sites stay atomic (or `DYNKEY_SITES=patch`
//! fails) with the reason in [`Status::fallback`].
//!
//! # fork()
//!
//! A fork child copies the code pages on its first patch (a commit or a
//! run-time site): until then it shares them with its parent, and code its
//! parent patches meanwhile changes in the child too. A child that `exec`s
//! pays nothing. See the `fork` module docs.
//!
//! # Limitations
//!
//! - One copy of this crate per binary: cargo refuses a second one
//!   (`links = "dynkey_text"`), and any other build fails to link with a
//!   duplicate `dynkey_text_is_linked_twice_only_one_copy_per_binary`.
//! - Sites in `dlopen`ed libraries are not found (their sections have their
//!   own start/stop symbols); use run-time sites there.
//! - Run-time stubs are never freed.
//! - A `fork()` while another thread is in the middle of the runtime's
//!   first start-up leaves the child unable to use it (start early, e.g.
//!   with [`status`], in programs that fork from threads).
//! - Before Linux 6.12 the `MAP_FIXED` that takes text over could fail
//!   after unmapping it (memory cgroup `ENOMEM`); the hole is refilled at
//!   once with the same code, but a thread that executes there in between
//!   faults (`pages.rs`).
//! - Taken-over text shows as `/memfd:dynkey-text` in `/proc/PID/maps`;
//!   `DYNKEY_PERF_MAP=1` writes `/tmp/perf-PID.map` for profilers.
//! - Linux only: other systems fail to build (`compile_error!` below);
//!   other architectures build the atomic kind.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("dynkey-text supports Linux only (memfd, membarrier, /proc)");

mod arch;
mod code_table;
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
mod placement;
mod procfs;
mod queue;
mod records;
mod rendezvous;
mod startup;
mod status;
mod stubs;
mod takeover;
#[doc(hidden)]
pub mod testing;

pub use commit::{CommitReport, commit, commit_with};
pub use config::{Config, MethodChoice, QueueMode, SignalChoice, SiteMode};
pub use counters::{BUCKETS, CountersSnapshot, HistogramSnapshot, bucket_bounds, counters};
pub use error::{CodeView, EncodeError, Error, SignalHolder};
pub use key::{Change, CodePtr, FnPtr, KeyStatic, RawCall, RawKey};
pub use macros::LinkCall;
pub use startup::{configure, set_queue_mode};
pub use status::{Census, Status, call_site_counts, census, key_site_counts, status};
pub use stubs::{RuntimeCall, ValueSite};

// Not API: support for this crate's macros, which expand in other crates.
#[doc(hidden)]
pub use macros::{__assert_key_array, __assert_key_static};
#[doc(hidden)]
pub use records::__one_copy_per_binary;

// Not API, for `dynkey` only: its control plane keys maps by site index
// with the same cheap hasher as the commit planner (no unsafe; it lives
// here so the two crates share one).
#[doc(hidden)]
pub use int_map::{IntHasher, IntMap};

/// Whether this build patches code: true on x86-64 Linux, false on other
/// targets and with `RUSTFLAGS="--cfg dynkey_atomic_only"` (then every
/// site is the atomic kind). Tests of other crates that only make sense
/// for patched kinds check it.
pub const PATCHING_COMPILED: bool = cfg!(dynkey_patching);

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

/// The calling thread's OS thread id (`gettid`), as dyndbg's `t` flag shows
/// it. Async-signal-safe (one system call).
///
/// Not API: `dynkey` needs it for the `t` decoration, and the crate rule is
/// that `unsafe` code stays in this crate.
#[doc(hidden)]
pub fn os_thread_id() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}
