//! `membarrier(2)` with `PRIVATE_EXPEDITED_SYNC_CORE`.
//!
//! The process must register before the command works (EPERM otherwise).
//! Registration happens when the runtime starts ([`ensure`]): a binary that
//! links this crate but never uses it never calls `membarrier`, because a
//! seccomp policy may kill a process for that (systemd's
//! `SystemCallFilter=` with its default action, minijail) before it could
//! say why.
//!
//! Under a seccomp filter (`Seccomp: 2` in `/proc/self/status`) the first
//! call is made by a probe: a child made with a raw `clone` (no `atfork`
//! handlers, no exit signal) that only calls `membarrier(QUERY)` and exits.
//! A child killed by a signal means the filter forbids the call: `auto`
//! falls back to signals with that reason, a forced membarrier is an error.
//!
//! **Cost**: registering takes microseconds while the process has one
//! thread, and an RCU grace period (8-16 ms measured) once it has more. So
//! start the runtime first thing in `main` (`dynkey::init()`, or
//! [`status`](crate::status)), or set `DYNKEY_REGISTER_EARLY=1`: then an
//! ELF constructor registers before `main`, but only while the process has
//! one thread (not in a `dlopen`ed library loaded later) and no seccomp
//! filter, and only if `DYNKEY_RENDEZVOUS` does not force another method.
//! The constructor reads the environment and `/proc` with libc (std is not
//! set up yet), allocates nothing, and never panics.
//!
//! # Orderings
//!
//! `STATE` is written by the constructor (before any other thread exists) or
//! under the text lock, and read under the text lock; `Relaxed` suffices,
//! the lock and thread creation order everything else.

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

use crate::procfs;

const CMD_QUERY: libc::c_int = 0;
const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;
const CMD_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 5;
const CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: libc::c_int = 1 << 6;

/// Registration state: `NOT_TRIED`, `REGISTERED`, `UNSUPPORTED`,
/// `FORBIDDEN` (by seccomp, with the killing signal in `FORBIDDEN_BY`), or
/// a negative errno from a failed call.
static STATE: AtomicI32 = AtomicI32::new(NOT_TRIED);
const NOT_TRIED: i32 = 0;
const REGISTERED: i32 = 1;
const UNSUPPORTED: i32 = 3;
const FORBIDDEN: i32 = 4;
/// The signal that killed the probe child.
static FORBIDDEN_BY: AtomicI32 = AtomicI32::new(0);
/// Whether the early constructor registered.
static EARLY: AtomicI32 = AtomicI32::new(0);

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

/// Whether a seccomp filter lets this process call `membarrier`: asks a
/// throwaway child (see the module docs). `Err` with the killing signal.
fn probe_in_child() -> Result<(), i32> {
    // Raw clone without CLONE_VM: a copy of the process that runs no atfork
    // handler and sends no exit signal (so the application's SIGCHLD
    // handling, and its `waitpid(-1)` calls, never see it).
    // SAFETY: the child only makes two system calls and never returns from
    // this function; the parent only waits for it.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            0 as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // Child: the call the filter may forbid, then exit_group.
        // SAFETY: raw system calls taking integers only.
        unsafe {
            libc::syscall(libc::SYS_membarrier, CMD_QUERY, 0, 0);
            libc::syscall(libc::SYS_exit_group, 0);
        }
        #[allow(clippy::empty_loop)]
        loop {} // exit_group does not return
    }
    if pid < 0 {
        // Cannot fork a probe: do not risk the call.
        return Err(0);
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child (a clone child: __WALL).
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::__WALL) };
        if r == pid as libc::pid_t {
            break;
        }
        if r < 0 && crate::error::errno() != libc::EINTR {
            return Err(0);
        }
    }
    if libc::WIFSIGNALED(status) {
        Err(libc::WTERMSIG(status))
    } else {
        Ok(())
    }
}

/// Runs before `main` and does nothing unless asked (see the module docs).
extern "C" fn register_early() {
    // SAFETY: getenv reads the environment, which no other thread can be
    // changing before main; the name is a NUL-terminated literal.
    let early = unsafe { libc::getenv(c"DYNKEY_REGISTER_EARLY".as_ptr()) };
    // SAFETY: a non-null getenv result is a NUL-terminated string owned by
    // the environment.
    if early.is_null() || unsafe { std::ffi::CStr::from_ptr(early) }.to_bytes() != b"1" {
        return;
    }
    // SAFETY: as above.
    let v = unsafe { libc::getenv(c"DYNKEY_RENDEZVOUS".as_ptr()) };
    // SAFETY: as above.
    let forced = (!v.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(v) }.to_bytes());
    if matches!(forced, Some(b"signal" | b"none")) {
        return;
    }
    let status = procfs::process_status();
    if status.threads == Some(1) && status.seccomp == Some(0) && register() == REGISTERED {
        EARLY.store(1, Relaxed);
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static REGISTER_EARLY: extern "C" fn() = register_early;

/// Makes sure the process is registered; the reason when it cannot be.
pub(crate) fn ensure() -> Result<(), String> {
    let mut state = STATE.load(Relaxed);
    if state == NOT_TRIED
        && procfs::process_status().seccomp != Some(0)
        && let Err(sig) = probe_in_child()
    {
        FORBIDDEN_BY.store(sig, Relaxed);
        STATE.store(FORBIDDEN, Relaxed);
        state = FORBIDDEN;
    }
    if state != REGISTERED && state != FORBIDDEN && state != UNSUPPORTED {
        state = register();
    }
    match state {
        REGISTERED => Ok(()),
        UNSUPPORTED => Err("membarrier lacks PRIVATE_EXPEDITED_SYNC_CORE on this kernel".into()),
        FORBIDDEN => Err(match FORBIDDEN_BY.load(Relaxed) {
            0 => "a seccomp filter is installed and no probe child could tell whether it allows membarrier".into(),
            sig => format!(
                "the seccomp filter forbids membarrier (a probe child calling it was killed by signal {sig})"
            ),
        }),
        e => Err(format!("membarrier registration failed (errno {})", -e)),
    }
}

/// Whether the opt-in constructor registered before `main`.
pub(crate) fn registered_at_start() -> bool {
    EARLY.load(Relaxed) == 1
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
