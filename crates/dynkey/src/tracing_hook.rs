//! The hook a tracing filter registers to hear that a commit changed the
//! `p` flag of a `tracing` row (see `tracing_rows.rs`), and when the
//! control lock's guard (`state.rs`) runs it.
//!
//! tracing caches each callsite's interest ("never", "always"): after a
//! commit turned a tracing row on or off, the filter must make tracing ask
//! again (`tracing::callsite::rebuild_interest_cache`) **before the change
//! returns**, or a callsite cached "never" would stay silent after a `+p`
//! returned (G2). But not under the control lock: rebuilding the cache
//! calls the filter for every callsite, and the filter takes the control
//! lock to register a callsite it has not seen yet. So the guard of the
//! control lock (`ControlGuard`, in `state.rs`) notes whether commits made under it
//! changed tracing rows, releases the lock, and only then runs the hook.
//!
//! # Protocol
//!
//! 1. `Table::commit` calls [`tracing_rows_changed`] after it published the
//!    new flags of the rows (the keys' Release stores come first): the
//!    counter `CHANGED` moves, under the control lock.
//! 2. `ControlGuard` reads `CHANGED` when the lock is taken and again just
//!    before it is released (both under the lock, so they see exactly the
//!    bumps made in between: only commits under the lock bump it). If it
//!    moved, the guard runs the hook after releasing the lock.
//! 3. Hook runs are serialized by `DONE` (the value of `CHANGED` the last
//!    completed run covered). A run reads `CHANGED` before calling the hook,
//!    so it covers every commit counted by then; a guard whose bumps are
//!    already covered by a completed run returns at once, and otherwise runs
//!    the hook itself. Either way, when the guard is gone, a hook run that
//!    started after its commits has completed: the change is visible to
//!    tracing before the request that made it returns.
//!
//! Registering rows (`ControlGuard::quiet`) commits their initial state
//! but needs no hook: the filter hands tracing that state directly.
//!
//! # Orderings
//!
//! `CHANGED` is loaded Relaxed under the lock (the mutex orders it with the
//! bumps of earlier holders) and Acquire by a hook run, pairing with the
//! Release of the bump: the run's hook then reads every row's published
//! state (the keys' own Acquire loads) at least as new as the commits it
//! covers.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Commits that changed a tracing row's `p` flag (bumped under the lock).
static CHANGED: AtomicU64 = AtomicU64::new(0);
/// The value of `CHANGED` the last completed hook run covered; its mutex
/// serializes the runs.
static DONE: Mutex<u64> = Mutex::new(0);
/// The hook, if a tracing filter registered one.
static HOOK: Mutex<Option<fn()>> = Mutex::new(None);

/// Notes that the commit being made changed a tracing row's `p` flag.
/// Called under the control lock, after the flags were published.
pub(crate) fn tracing_rows_changed() {
    // Release: pairs with the Acquire of a hook run (see the module docs).
    CHANGED.fetch_add(1, Ordering::Release);
}

/// Replaces the hook (None removes it).
pub(crate) fn set_hook(hook: Option<fn()>) {
    *HOOK.lock().unwrap_or_else(|e| e.into_inner()) = hook;
}

/// The count of commits that changed tracing rows, read under the control
/// lock (when it is taken, and just before it is released).
pub(crate) fn changes_under_lock() -> u64 {
    // Relaxed: under the lock (see the module docs).
    CHANGED.load(Ordering::Relaxed)
}

/// Runs the hook unless a completed run already covered `target`. Called
/// after the control lock was released.
pub(crate) fn run_hook(target: u64) {
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if *done >= target {
        return;
    }
    // Acquire: pairs with the Release of `tracing_rows_changed`.
    let covered = CHANGED.load(Ordering::Acquire);
    let hook = *HOOK.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hook) = hook {
        hook();
    }
    *done = covered;
}
