//! The text lock: one writer of code and keys at a time.
//!
//! A `pthread_mutex_t` rather than `std::sync::Mutex`, because `fork()`
//! handlers must lock it in `prepare` and unlock it in `parent` and `child`
//! without a guard object crossing the call (see `fork.rs`). Functions that
//! need the lock take the guard (or a `&CodeTable` reached through it), the
//! typed form of the kernel's `_cpuslocked` naming.
//!
//! Lock order: a caller's own locks (dynkey's control lock) before this
//! one; this crate takes no other lock while holding it.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

use crate::code_table::CodeTable;

pub(crate) struct TextLock {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    text: UnsafeCell<Option<CodeTable>>,
}

// SAFETY: `text` is only reached through a `TextGuard`, which exists only
// while `mutex` is held, so at most one thread touches it at a time.
unsafe impl Sync for TextLock {}

pub(crate) static TEXT: TextLock = TextLock {
    mutex: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    text: UnsafeCell::new(None),
};

/// Proof that the text lock is held; derefs to the (maybe not yet built) text state.
pub(crate) struct TextGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl TextLock {
    pub(crate) fn lock(&'static self) -> TextGuard {
        self.raw_lock();
        TextGuard {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Locks without a guard (fork `prepare` handler).
    pub(crate) fn raw_lock(&self) {
        // SAFETY: the mutex is a valid, statically initialized pthread mutex
        // that never moves.
        let r = unsafe { libc::pthread_mutex_lock(self.mutex.get()) };
        assert_eq!(r, 0, "pthread_mutex_lock failed");
    }

    /// Unlocks a lock taken by `raw_lock` or a forgotten guard.
    ///
    /// # Safety
    ///
    /// The calling thread (or, in a fork child, the thread it was copied
    /// from) holds the lock and no `TextGuard` is alive.
    pub(crate) unsafe fn raw_unlock(&self) {
        // SAFETY: the mutex is valid and never moves, and the calling
        // thread holds it (the caller's contract).
        unsafe { libc::pthread_mutex_unlock(self.mutex.get()) };
    }

    /// The state, for a fork handler that holds the lock without a guard.
    ///
    /// # Safety
    ///
    /// The lock is held by the caller and no `TextGuard` is alive.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn state_unguarded(&self) -> &mut Option<CodeTable> {
        // SAFETY: exclusive by the caller's contract.
        unsafe { &mut *self.text.get() }
    }
}

impl Deref for TextGuard {
    type Target = Option<CodeTable>;
    fn deref(&self) -> &Option<CodeTable> {
        // SAFETY: the guard proves the lock is held.
        unsafe { &*TEXT.text.get() }
    }
}

impl DerefMut for TextGuard {
    fn deref_mut(&mut self) -> &mut Option<CodeTable> {
        // SAFETY: the guard proves the lock is held, and &mut self makes this
        // the only reference derived from it.
        unsafe { &mut *TEXT.text.get() }
    }
}

impl Drop for TextGuard {
    fn drop(&mut self) {
        // SAFETY: the guard was created by `lock` on this thread (it is not Send).
        unsafe { TEXT.raw_unlock() };
    }
}
