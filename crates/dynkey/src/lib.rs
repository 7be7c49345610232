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
//!   [`StaticKey::disable`] and [`batch`] change keys.
//! - [`static_call!`] declares a patchable function pointer with its
//!   registered targets; callers make a direct call into a stub.
//! - [`pr_debug!`], [`pr_debug_ratelimited!`] and their class'd forms are
//!   dyndbg callsites with flags `p m f l t s` ([`sink`] says where the
//!   output goes: stderr, or `log` / `tracing` behind their features).
//! - [`class_map!`] declares DRM-style classes with a numeric param
//!   (`drm.debug=0x1ff`): one commit for all of its bits.
//! - [`control()`] takes queries ([`Control::exec`]), params, keys and calls
//!   by name, and writes the listing; [`Control::register`] adds sites
//!   described by data (trampoline-backed).
//! - `DYNKEY_QUERY` in the environment is applied at start-up, before
//!   `main`, like the kernel's `dyndbg=` boot parameter; a bad value is
//!   reported on stderr and the program goes on. (When it is set, the
//!   patching runtime starts before `main` too, with the configuration of
//!   the environment: `dynkey_text::configure` in `main` is then too late.)
//!
//! # Guarantees
//!
//! For every change made through this crate (a key, a call, a query, a
//! param):
//!
//! - **G1, no torn code**: a site runs the old or the new instruction, never
//!   a mix (each is changed by one aligned 8-byte store).
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

mod call;
mod callsite;
mod classes;
mod control;
mod error;
mod key;
mod op;
mod ratelimit;
mod registry;
mod runtime_sites;
pub mod sink;

pub use call::{CallDesc, StaticCall};
pub use callsite::{Callsite, FuncName};
pub use classes::{Class, ClassMapDesc, ClassMapSpec};
pub use control::{
    CallInfo, ChangeReport, Control, Counters, KeyInfo, ParamReport, Report, SiteRow, control, init,
};
pub use dynkey_query::{ClassMapKind, FlagOp, Flags, QueryError};
pub use dynkey_text::{CommitReport, Method, SiteKind};
pub use error::Error;
pub use key::{Batch, StaticKey, batch};
pub use op::{FleetLayer, MAX_TTL, Op, OpKind, TtlError, format_time, parse_time, parse_ttl};
pub use ratelimit::{Decision, RateLimit, Window, set_clock};
pub use runtime_sites::{RuntimeSite, SiteSpec};

#[doc(hidden)]
pub mod __private {
    pub use crate::callsite::func_name;
    pub use dynkey_query;
    pub use dynkey_text;
}
