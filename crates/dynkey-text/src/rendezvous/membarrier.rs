//! `membarrier(2)` with `PRIVATE_EXPEDITED_SYNC_CORE`.
//!
//! The process must register before the command works (EPERM otherwise),
//! and registering costs microseconds while the process has one thread but
//! an RCU grace period (8-16 ms measured) once it has more. So registration
//! runs from an ELF constructor (`.init_array`), before `main` can spawn a
//! thread. The constructor reads `DYNKEY_RENDEZVOUS` with libc's `getenv`
//! (std is not set up yet), skips registering when another method is forced,
//! and never panics. If it did not register, [`ensure`] registers late.
//!
//! # Orderings
//!
//! `STATE` is written by the constructor (before any other thread exists) or
//! under the text lock, and read under the text lock; `Relaxed` suffices,
//! the lock and thread creation order everything else.

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

const CMD_QUERY: libc::c_int = 0;
const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
const CMD_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 5;
const CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 6;

/// Registration state: `NOT_TRIED`, `REGISTERED`, `SKIPPED`, `UNSUPPORTED`,
/// or a negative errno from a failed call.
static STATE: AtomicI32 = AtomicI32::new(NOT_TRIED);
const NOT_TRIED: i32 = 0;
const REGISTERED: i32 = 1;
const SKIPPED: i32 = 2;
const UNSUPPORTED: i32 = 3;

fn sys(cmd: libc::c_int) -> Result<libc::c_long, i32> {
    // SAFETY: membarrier takes no pointers; flags 0, cpu_id 0.
    let r = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            cmd,
            0 as libc::c_uint,
            0 as libc::c_int,
        )
    };
    if r < 0 {
        Err(crate::error::errno())
    } else {
        Ok(r)
    }
}

/// Queries and registers both commands; returns the new state.
fn register() -> i32 {
    let want = CMD_PRIVATE_EXPEDITED | CMD_PRIVATE_EXPEDITED_SYNC_CORE;
    let state = match sys(CMD_QUERY) {
        Err(e) => -e,
        Ok(mask) if mask as libc::c_int & want != want => UNSUPPORTED,
        Ok(_) => match sys(CMD_REGISTER_PRIVATE_EXPEDITED)
            .and_then(|_| sys(CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE))
        {
            Ok(_) => REGISTERED,
            Err(e) => -e,
        },
    };
    STATE.store(state, Relaxed);
    state
}

/// Runs before `main` (see the module docs).
extern "C" fn register_at_start() {
    // SAFETY: getenv is safe to call before threads exist; the name is a
    // NUL-terminated literal.
    let v = unsafe { libc::getenv(c"DYNKEY_RENDEZVOUS".as_ptr()) };
    if !v.is_null() {
        // SAFETY: getenv returned a NUL-terminated string owned by environ.
        let v = unsafe { std::ffi::CStr::from_ptr(v) }.to_bytes();
        if v == b"signal" || v == b"none" {
            STATE.store(SKIPPED, Relaxed);
            return;
        }
    }
    register();
}

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_AT_START: extern "C" fn() = register_at_start;

/// Makes sure the process is registered; the reason when it cannot be.
pub(crate) fn ensure() -> Result<(), String> {
    let mut state = STATE.load(Relaxed);
    if state != REGISTERED {
        // Not registered before main (skipped, or a constructor that did not
        // run): register now, slower once threads exist.
        state = register();
    }
    match state {
        REGISTERED => Ok(()),
        UNSUPPORTED => Err("membarrier lacks PRIVATE_EXPEDITED_SYNC_CORE on this kernel".into()),
        e => Err(format!("membarrier registration failed (errno {})", -e)),
    }
}

/// Whether the constructor registered before `main`.
pub(crate) fn registered_at_start() -> bool {
    STATE.load(Relaxed) == REGISTERED
}

/// One barrier: SYNC_CORE when code changed, plain expedited otherwise.
pub(crate) fn barrier(sync_core: bool) -> Result<(), i32> {
    let cmd = if sync_core {
        CMD_PRIVATE_EXPEDITED_SYNC_CORE
    } else {
        CMD_PRIVATE_EXPEDITED
    };
    match sys(cmd) {
        Ok(_) => Ok(()),
        // A fork child may not inherit the registration: register and retry.
        Err(libc::EPERM) if register() == REGISTERED => sys(cmd).map(drop),
        Err(e) => Err(e),
    }
}
