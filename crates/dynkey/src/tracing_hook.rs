//! The hook a tracing filter registers to hear that a commit changed the
//! `p` flag of a `tracing` row (see `tracing_rows.rs`), and the guard of the
//! control lock that calls it.
//!
//! tracing caches each callsite's interest ("never", "always"): after a
//! commit turned a tracing row on or off, the filter must make tracing ask
//! again (`tracing::callsite::rebuild_interest_cache`) **before the change
//! returns**, or a callsite cached "never" would stay silent after a `+p`
//! returned (G2). But not under the control lock: rebuilding the cache
//! calls the filter for every callsite, and the filter takes the control
//! lock to register a callsite it has not seen yet. So the guard of the
//! control lock ([`ControlGuard`]) notes whether commits made under it
//! changed tracing rows, releases the lock, and only then runs the hook.
//!
//! # Protocol
//!
//! 1. `Table::commit` calls [`tracing_rows_changed`] after it published the
//!    new flags of the rows (the keys' Release stores come first): the
//!    counter `CHANGED` moves, under the control lock.
//! 2. [`ControlGuard`] reads `CHANGED` when the lock is taken and again just
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
//! Registering rows ([`ControlGuard::quiet`]) commits their initial state
//! but needs no hook: the filter hands tracing that state directly.
//!
//! # Orderings
//!
//! `CHANGED` is loaded Relaxed under the lock (the mutex orders it with the
//! bumps of earlier holders) and Acquire by a hook run, pairing with the
//! Release of the bump: the run's hook then reads every row's published
//! state (the keys' own Acquire loads) at least as new as the commits it
//! covers.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

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

/// Runs the hook unless a completed run already covered `target`.
fn run_hook(target: u64) {
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

/// The control lock's guard: derefs to what the lock protects, and runs
/// the tracing hook after releasing the lock when commits made under it
/// changed tracing rows (see the module docs).
#[derive(Debug)]
pub(crate) struct ControlGuard<'a, T> {
    guard: Option<MutexGuard<'a, T>>,
    start: u64,
    quiet: bool,
}

impl<'a, T> ControlGuard<'a, T> {
    /// Wraps the guard of the control lock, just taken.
    pub fn new(guard: MutexGuard<'a, T>) -> Self {
        // Relaxed: under the lock (see the module docs).
        let start = CHANGED.load(Ordering::Relaxed);
        ControlGuard {
            guard: Some(guard),
            start,
            quiet: false,
        }
    }

    /// Runs no hook on release: for the registration of rows, whose
    /// initial state the filter gives tracing itself (it is calling
    /// dynkey from inside tracing, where a rebuild must not start).
    pub fn quiet(&mut self) {
        self.quiet = true;
    }
}

impl<T> Deref for ControlGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl<T> DerefMut for ControlGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl<T> Drop for ControlGuard<'_, T> {
    fn drop(&mut self) {
        // Relaxed: still under the lock.
        let end = CHANGED.load(Ordering::Relaxed);
        drop(self.guard.take());
        if end != self.start && !self.quiet {
            run_hook(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static LOCK: Mutex<()> = Mutex::new(());

    fn count() {
        RUNS.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn the_hook_runs_after_release_only_when_rows_changed_and_not_quietly() {
        let _only_test_of_the_hook = LOCK.lock().unwrap();
        set_hook(Some(count));
        let m = Mutex::new(0u32);
        let before = RUNS.load(Ordering::Relaxed);
        {
            let mut g = ControlGuard::new(m.lock().unwrap());
            *g += 1;
        }
        assert_eq!(RUNS.load(Ordering::Relaxed), before, "nothing changed");
        {
            let _g = ControlGuard::new(m.lock().unwrap());
            tracing_rows_changed();
            assert_eq!(RUNS.load(Ordering::Relaxed), before, "not under the lock");
        }
        assert_eq!(RUNS.load(Ordering::Relaxed), before + 1, "after release");
        assert!(m.try_lock().is_ok(), "the lock was released");
        {
            let mut g = ControlGuard::new(m.lock().unwrap());
            g.quiet();
            tracing_rows_changed();
        }
        assert_eq!(RUNS.load(Ordering::Relaxed), before + 1, "quiet");
        {
            let _g = ControlGuard::new(m.lock().unwrap());
            tracing_rows_changed();
        }
        assert_eq!(
            RUNS.load(Ordering::Relaxed),
            before + 2,
            "the next run covers the quiet change too"
        );
        set_hook(None);
    }
}
