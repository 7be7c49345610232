//! Per-thread signalling: the fallback rendezvous.
//!
//! A real-time signal, chosen at run time as the first one from `SIGRTMIN`
//! with a default disposition, is sent to every other thread of the process;
//! its handler serializes the core and acknowledges. The committer blocks on
//! a futex (spinning collapses on 2 cores) with a timeout, so a thread that
//! blocks the signal is reported, never waited for forever.
//!
//! # Protocol
//!
//! Committer, holding the text lock (so rounds never overlap):
//! 1. list `/proc/self/task`, drop itself;
//! 2. write the thread ids, sorted, into the slot table;
//! 3. publish round `r` (`ROUND`, Release);
//! 4. `tgkill` each thread (`ESRCH`: it exited, which counts as answered);
//! 5. wait until every slot's `acked >= r`, woken by `ACKS`, or time out.
//!
//! Handler, in any thread at any time:
//! 1. read `r = ROUND` (Acquire);
//! 2. serialize the core;
//! 3. find its own slot by thread id, `acked = max(acked, r)` (Release);
//! 4. bump `ACKS` and wake the committer.
//!
//! # Orderings
//!
//! The commit's code stores happen before step 3's Release store of `ROUND`.
//! A handler that reads round `r` (Acquire) therefore serializes *after*
//! those stores, and its acknowledgement of `r` is valid, even when it is a
//! late handler from an earlier round. The table for round `r` is complete
//! before `r` is published, so a handler that read `r` searches that table;
//! a handler that read an older round may find a stale slot, but it can
//! only write that older round, which never satisfies step 5 for `r`
//! (`acked` only grows, `fetch_max`). Tables are leaked, never freed, so a
//! late handler never reads freed memory. `ACKS` is only a wake-up counter:
//! the committer re-reads every slot after each wake-up.

use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::error::{Error, errno};

/// The signal in use (0: not installed).
static SIGNO: AtomicI32 = AtomicI32::new(0);
/// The current round.
static ROUND: AtomicU64 = AtomicU64::new(0);
/// Wake-up counter the committer sleeps on.
static ACKS: AtomicU32 = AtomicU32::new(0);
/// The slot table (leaked; replaced only by a bigger one).
static TABLE: AtomicPtr<Table> = AtomicPtr::new(std::ptr::null_mut());

#[derive(Default)]
struct Slot {
    tid: AtomicI32,
    acked: AtomicU64,
}

struct Table {
    len: AtomicUsize,
    slots: Box<[CachePadded<Slot>]>,
}

fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

extern "C" fn on_signal(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Async-signal-safe: atomics and raw system calls only; errno restored.
    // SAFETY: __errno_location returns this thread's errno slot.
    let saved = unsafe { *libc::__errno_location() };
    let round = ROUND.load(Ordering::Acquire); // pairs with the committer's Release (step 3)
    crate::arch::serialize_local();
    let me = gettid();
    let table = TABLE.load(Ordering::Acquire);
    // SAFETY: tables are leaked, so a non-null pointer stays valid forever.
    if let Some(t) = unsafe { table.as_ref() } {
        let len = t.len.load(Ordering::Acquire).min(t.slots.len());
        let slots = &t.slots[..len];
        let i = slots.partition_point(|s| s.tid.load(Ordering::Relaxed) < me);
        if let Some(s) = slots.get(i).filter(|s| s.tid.load(Ordering::Relaxed) == me) {
            s.acked.fetch_max(round, Ordering::Release); // pairs with the committer's Acquire (step 5)
        }
    }
    ACKS.fetch_add(1, Ordering::Release);
    // SAFETY: FUTEX_WAKE on a valid, aligned u32 in static memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            ACKS.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

/// Installs the handler on the first free real-time signal.
pub(crate) fn install() -> Result<i32, String> {
    // The handler serializes: choose how before it can run.
    crate::arch::prepare_serialize();
    let current = SIGNO.load(Ordering::Relaxed);
    if current != 0 {
        return Ok(current);
    }
    for sig in libc::SIGRTMIN()..=libc::SIGRTMAX() {
        // SAFETY: sigaction with a null new action only reads the current one
        // into a zeroed struct we own.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: see above.
        if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0
            || old.sa_sigaction != libc::SIG_DFL
        {
            continue;
        }
        // SAFETY: a zeroed sigaction is a valid starting point; we fill in
        // the handler, an empty mask and the flags.
        let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
        act.sa_sigaction = on_signal as *const () as usize;
        act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
        // SAFETY: act.sa_mask is ours; sigemptyset initializes it.
        unsafe { libc::sigemptyset(&mut act.sa_mask) };
        // SAFETY: installs an async-signal-safe handler on a signal nobody uses.
        if unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) } == 0 {
            SIGNO.store(sig, Ordering::Relaxed);
            return Ok(sig);
        }
    }
    Err("no free real-time signal for the signal rendezvous".into())
}

/// The signal in use, if installed.
pub(crate) fn signal_number() -> Option<i32> {
    Some(SIGNO.load(Ordering::Relaxed)).filter(|&s| s != 0)
}

/// A table with room for `n` threads (the current one, or a new, bigger, leaked one).
fn table_for(n: usize) -> &'static Table {
    // SAFETY: tables are leaked; a non-null pointer is valid forever.
    if let Some(t) = unsafe { TABLE.load(Ordering::Acquire).as_ref() }
        && t.slots.len() >= n
    {
        return t;
    }
    let cap = n.next_power_of_two().max(64);
    let t: &'static Table = Box::leak(Box::new(Table {
        len: AtomicUsize::new(0),
        slots: (0..cap)
            .map(|_| CachePadded::new(Slot::default()))
            .collect(),
    }));
    // Release: handlers that load the pointer see initialized slots.
    TABLE.store(t as *const Table as *mut Table, Ordering::Release);
    t
}

/// Whether a thread can run a signal handler: not a zombie (a main thread
/// that called `pthread_exit` stays listed) and not an io_uring worker
/// (kernel threads of the process that never return to user space).
fn can_answer(tid: i32) -> bool {
    const PF_IO_WORKER: u64 = 0x10;
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return false; // gone
    };
    // Fields after the command name (which may hold spaces): state, ppid,
    // pgrp, session, tty, tpgid, flags.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return true;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    let io_worker = fields
        .get(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|f| f & PF_IO_WORKER != 0);
    !zombie && !io_worker
}

/// The other threads of the process that can answer a signal. An error if
/// `/proc/self/task` cannot be read: without the list there is no way to
/// reach every thread, and "no threads" would be a silent success.
fn other_threads() -> Result<Vec<i32>, Error> {
    let me = gettid();
    let dir = std::fs::read_dir("/proc/self/task").map_err(|e| Error::Rendezvous {
        method: crate::Method::Signal,
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    })?;
    let mut tids = Vec::new();
    for entry in dir {
        let entry = entry.map_err(|e| Error::Rendezvous {
            method: crate::Method::Signal,
            errno: e.raw_os_error().unwrap_or(libc::EIO),
        })?;
        if let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            && tid != me
            && can_answer(tid)
        {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    Ok(tids)
}

/// Whether the thread list is readable (checked when the method is chosen).
pub(crate) fn usable() -> Result<(), String> {
    other_threads()
        .map(drop)
        .map_err(|e| format!("cannot list the process's threads: {e}"))
}

/// One round (see the module docs). Caller holds the text lock.
pub(crate) fn round(timeout: Duration) -> Result<(), Error> {
    let sig = signal_number().ok_or_else(|| Error::Unavailable {
        what: "signal rendezvous".into(),
        reason: "handler not installed".into(),
    })?;
    let tids = other_threads()?;
    if tids.is_empty() {
        return Ok(());
    }
    let table = table_for(tids.len());
    for (slot, &tid) in table.slots.iter().zip(&tids) {
        slot.tid.store(tid, Ordering::Relaxed);
    }
    table.len.store(tids.len(), Ordering::Release);
    let round = ROUND.fetch_add(1, Ordering::Release) + 1; // step 3
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    for (slot, &tid) in table.slots.iter().zip(&tids) {
        // SAFETY: tgkill takes plain integers.
        let r = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) };
        if r != 0 && errno() == libc::ESRCH {
            slot.acked.fetch_max(round, Ordering::Relaxed); // exited: answered
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let seen = ACKS.load(Ordering::Acquire);
        let pending: Vec<i32> = table.slots[..tids.len()]
            .iter()
            .filter(|s| s.acked.load(Ordering::Acquire) < round)
            .map(|s| s.tid.load(Ordering::Relaxed))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Threads that exited while we waited did answer, in a way; if
            // the list cannot be read, every pending thread counts.
            let alive = other_threads().unwrap_or_else(|_| pending.clone());
            let unanswered: Vec<i32> = pending
                .into_iter()
                .filter(|t| alive.binary_search(t).is_ok())
                .collect();
            return if unanswered.is_empty() {
                Ok(())
            } else {
                Err(Error::RendezvousTimeout { unanswered })
            };
        }
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT on a valid aligned u32 with a valid relative
        // timeout; returns at once if ACKS moved since `seen`.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                ACKS.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seen,
                &ts,
            )
        };
    }
}
