//! `fork()`: a child must not keep writing the parent's code.
//!
//! Code pages are `MAP_SHARED` memfds, so after `fork()` parent and child
//! share them: a commit in either would patch both. `pthread_atfork`
//! handlers prevent that:
//! - `prepare` takes the text lock, so no commit spans the fork;
//! - `child` re-takes every region (a private memfd copy mapped over the
//!   executable view, a new alias) and rewrites every site from the child's
//!   own key states, in case the parent changed the shared bytes between
//!   the fork and the copy; raw system calls only, no allocation, since the
//!   child of a multi-threaded process may only do async-signal-safe work;
//! - `parent` and `child` release the lock.
//!
//! If the child cannot re-take its pages it is *detached*: its commits fail
//! with [`Error::Unavailable`] instead of writing the parent's code.
//!
//! Processes spawned with `posix_spawn` (what `std::process::Command` uses
//! when it can) run no fork handlers and pay nothing.

use std::sync::Once;

use crate::arch;
use crate::error::Error;
use crate::lock::TEXT;
use crate::runtime::{KeyRef, Text, code_state};

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
    // from, which is the only thread in the child.
    if let Some(text) = unsafe { TEXT.state_unguarded() }.as_mut()
        && text.patching
    {
        retake(text);
    }
    // SAFETY: as above.
    unsafe { TEXT.raw_unlock() };
}

fn retake(text: &mut Text) {
    for region in text.regions.iter_mut() {
        if region.retake_in_child().is_err() {
            text.detached = Some(
                "this fork child could not copy its code pages; it shares them with its parent",
            );
            return;
        }
    }
    resync(text);
    // SAFETY: getpid has no preconditions.
    text.pid = unsafe { libc::getpid() };
    arch::serialize_local();
}

/// Rewrites every patched word from the key states (no allocation).
fn resync(text: &Text) {
    for ks in &text.keys {
        let state = code_state(ks.key);
        if let KeyRef::Bool(_) = ks.key {
            for s in &text.inline[ks.inline.clone()] {
                let (w, off) = arch::word_of(s.site);
                if let Ok(bytes) = Text::inline_bytes(s, state != 0) {
                    let r = text.region(w);
                    let cur = r.load(w);
                    let want = arch::splice(cur, off, &bytes);
                    if cur != want {
                        r.store(w, want);
                    }
                }
            }
        }
        for stub in ks.stubs.iter() {
            if let Ok(want) = Text::stub_word(stub, state) {
                let r = text.region(stub.word);
                if r.load(stub.word) != want {
                    r.store(stub.word, want);
                }
            }
        }
    }
}

/// Refuses to write code in a detached fork child, or in a process made
/// without the fork handlers (a raw `clone`): its pages are the parent's.
pub(crate) fn check(text: &Text) -> Result<(), Error> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let reason = match text.detached {
        Some(reason) => reason,
        None if text.patching && text.pid != pid => {
            "this process was forked without the fork handlers; its code pages are its parent's"
        }
        None => return Ok(()),
    };
    Err(Error::Unavailable {
        what: "patching after fork".into(),
        reason: reason.into(),
    })
}
