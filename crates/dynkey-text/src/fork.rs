//! `fork()`: a child must not keep writing the parent's code.
//!
//! Code pages are `MAP_SHARED` memfds, so after `fork()` parent and child
//! share them: a commit in either would patch both. `pthread_atfork`
//! handlers prevent that:
//! - `prepare` takes the text lock, so no commit spans the fork;
//! - `child` only marks the table as shared with the parent (one store: it
//!   runs in the child of a possibly multi-threaded process, where only
//!   async-signal-safe work is allowed);
//! - `parent` and `child` release the lock.
//!
//! The copy happens lazily, on the child's first patch (a commit or a
//! run-time site registration, [`ensure_own_pages`]): every region is
//! re-taken (a private memfd copy mapped over the executable view, a new
//! alias) and every patched word rewritten from the child's own key
//! states. A child that `exec`s at once, what `Command::pre_exec` and most
//! forks do, pays nothing (the eager copy took 70 ms with a million
//! run-time stubs).
//!
//! **The window**: until its first patch the child shares its parent's code
//! pages, so code the parent patches meanwhile changes in the child too
//! (its sites may then disagree with its own key states, which G2 and G4
//! do not cover there; the child's first commit makes them agree again).
//! Each such change is still one aligned store of a complete form
//! (`[ONE-STORE]`), but the parent's rendezvous does not serialize the
//! child's threads.
//!
//! If the child cannot copy its pages it is *detached*: its commits fail
//! with [`Error::Unavailable`] instead of writing the parent's code. A
//! process made without the handlers (a raw `clone`) is refused the same
//! way: its text lock may have been copied while held.
//!
//! Processes spawned with `posix_spawn` (what `std::process::Command` uses
//! when it can) run no fork handlers and pay nothing.

use std::sync::Once;

use crate::arch;
use crate::code_table::{CodeTable, Ownership, word_for};
use crate::error::Error;
use crate::lock::TEXT;

static INSTALL: Once = Once::new();

/// Registers the handlers (once, when patching starts).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: the three handlers are `extern "C" fn()` living for the
        // process; pthread_atfork only records them.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}

extern "C" fn prepare() {
    TEXT.raw_lock();
}

extern "C" fn parent() {
    // SAFETY: `prepare` took the lock on this thread; no guard exists.
    unsafe { TEXT.raw_unlock() };
}

extern "C" fn child() {
    // SAFETY: `prepare` took the lock on the thread this child was copied
    // from, which is the only thread in the child, and no guard exists.
    if let Some(table) = unsafe { TEXT.state_unguarded() }.as_mut()
        && table.patching
        && !matches!(table.ownership, Ownership::Detached(_))
    {
        // getpid is async-signal-safe; nothing else runs here.
        table.ownership = Ownership::SharedWithParent(std::process::id());
    }
    // SAFETY: as above.
    unsafe { TEXT.raw_unlock() };
}

/// Makes sure this process writes only its own code pages: copies them
/// first in a fork child that still shares its parent's (see the module
/// docs); refuses in a detached child, or in a process made without the
/// fork handlers. Called under the text lock (through `table`) before any
/// write of code.
pub(crate) fn ensure_own_pages(table: &mut CodeTable) -> Result<(), Error> {
    let me = std::process::id();
    let refused = |reason: &str| Error::Unavailable {
        what: "patching after fork".into(),
        reason: reason.into(),
    };
    match table.ownership {
        _ if !table.patching => Ok(()),
        Ownership::Own if table.pid == me => Ok(()),
        Ownership::SharedWithParent(child) if child == me => {
            retake(table);
            match table.ownership {
                Ownership::Detached(reason) => Err(refused(reason)),
                _ => Ok(()),
            }
        }
        Ownership::Detached(reason) => Err(refused(reason)),
        _ => Err(refused(
            "this process was forked without the fork handlers; its code pages are its parent's",
        )),
    }
}

fn retake(table: &mut CodeTable) {
    for region in table.regions.iter_mut() {
        // SAFETY: the text lock is held (through `table`), and every word of
        // every region holds a form the parent may store there, since the
        // parent writes only under its own text lock with `[ONE-STORE]`
        // stores.
        if unsafe { region.retake() }.is_err() {
            table.ownership = Ownership::Detached(
                "this fork child could not copy its code pages; it shares them with its parent",
            );
            return;
        }
    }
    resync(table);
    table.pid = std::process::id();
    table.ownership = Ownership::Own;
    arch::serialize_local();
}

/// Rewrites every patched word that differs from what the key states say.
fn resync(table: &CodeTable) {
    for ks in &table.keys {
        let state = ks.key.code_state();
        for place in table.places(ks) {
            let w = place.word();
            let region = table.region(w);
            let cur = region.load(w);
            if let Ok(want) = word_for(place, cur, state)
                && cur != want
            {
                // `cur` was just read, and only the parent, whose forms are
                // all valid, could have changed it.
                // SAFETY: text lock held (through `table`); [OLD-VERIFIED]
                // `cur` is a form of this place; [ONE-STORE] so is `want`.
                unsafe { region.store(w, want) };
            }
        }
    }
}
