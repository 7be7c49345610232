//! Per-thread signalling: the fallback rendezvous.
//!
//! A real-time signal (`DYNKEY_SIGNAL`, or with `auto` the first one from
//! `SIGRTMIN` that no thread blocks and nobody handles or ignores when the
//! handler is installed) is sent to every other thread of the process; its
//! handler serializes the core and acknowledges. The committer blocks on a
//! futex (spinning collapses on 2 cores) with a timeout.
//!
//! The signal interrupts what a thread is doing: `poll`, `epoll_wait`,
//! `nanosleep`, `select` and other blocking calls that `SA_RESTART` does not
//! restart return `EINTR` (and `nanosleep` the time left), once per
//! rendezvous. Code that retries on `EINTR`, as it must for any signal, is
//! unaffected; membarrier, the default method, interrupts nothing.
//!
//! # Protocol
//!
//! Committer, holding the text lock (so rounds never overlap):
//! 1. check that the signal's handler is still ours; if not, fail at once
//!    with [`Error::SignalTaken`] naming what holds it (no thread is
//!    signalled: another handler would run instead of ours);
//! 2. note which threads acknowledged the previous round; list
//!    `/proc/self/task`, drop itself, write the thread ids, sorted, into the
//!    slot table;
//! 3. publish round `r` (`ROUND`, Release);
//! 4. read each thread's `/proc/self/task/T/status`: a zombie is done; a
//!    kernel worker (io_uring, vhost: they block every signal and never
//!    run user code) is skipped; a thread that blocks the signal but
//!    acknowledged the previous round is still inside our handler (the
//!    kernel blocks the signal while its handler runs; handlers never nest)
//!    and is treated like the unblocked threads below, as is a thread that
//!    has never run (created a moment ago: glibc blocks every signal around
//!    `clone` and the thread unblocks them as it starts); any other thread
//!    that blocks the signal is not waited for, and gets `tgkill` only if
//!    none of ours is pending to it already; a thread that has our signal
//!    pending (from a round it did not answer in time) is not signalled
//!    again but waited for; every other thread gets `tgkill` (`ESRCH`: it
//!    exited, which counts as answered);
//! 5. wait until every waited-for slot's `acked >= r`, woken by `ACKS`, or
//!    time out; then give the threads that block the signal a short grace
//!    (`BLOCKED_GRACE`: a thread may block it for a moment, e.g. in a
//!    handler with a full mask, or started but not yet past glibc's mask
//!    around `clone`); one that unblocked meanwhile is waited for like the
//!    others, those still blocking the signal are named in
//!    [`Error::SignalBlocked`].
//!
//! Handler, in any thread at any time:
//! 1. read `r = ROUND` (Acquire);
//! 2. serialize the core;
//! 3. find its own slot by thread id, `acked = max(acked, r)` (Release);
//! 4. bump `ACKS` and wake the committer.
//!
//! Never queueing a second instance of our signal to a thread is what keeps
//! a thread that blocks it from filling the user's `RLIMIT_SIGPENDING`
//! (shared by every process of that user) one commit at a time: at most
//! one instance per thread is ever queued.
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
//!
//! Step 4 reads a thread's pending signals *after* step 3: a signal seen
//! pending there is dequeued later (the kernel takes the thread's signal
//! lock both to show `SigPnd` and to dequeue), so its handler reads `r` or
//! a later round, and not signalling the thread again loses nothing.

use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::config::SignalChoice;
use crate::error::{Error, SignalHolder, errno};
use crate::procfs;

/// How long threads that block the signal get to unblock and answer after
/// the others did (a thread may block it for a moment: a handler with a
/// full mask, a thread started but not yet past glibc's mask around
/// `clone`); a thread that blocks the signal for good costs each commit
/// this much, not the timeout.
const BLOCKED_GRACE: Duration = Duration::from_millis(2);

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

extern "C" fn on_signal(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Async-signal-safe: atomics and raw system calls only; errno restored.
    // SAFETY: __errno_location returns this thread's errno slot.
    let saved = unsafe { *libc::__errno_location() };
    let round = ROUND.load(Ordering::Acquire); // pairs with the committer's Release (step 3)
    crate::arch::serialize_local();
    let me = crate::os_thread_id();
    let table = TABLE.load(Ordering::Acquire); // pairs with the Release in `table_for`
    // SAFETY: tables are leaked, so a non-null pointer stays valid forever.
    if let Some(t) = unsafe { table.as_ref() } {
        // Acquire: pairs with the Release of the table's length (step 2).
        let len = t.len.load(Ordering::Acquire).min(t.slots.len());
        let slots = &t.slots[..len];
        let i = slots.partition_point(|s| s.tid.load(Ordering::Relaxed) < me);
        if let Some(s) = slots.get(i).filter(|s| s.tid.load(Ordering::Relaxed) == me) {
            s.acked.fetch_max(round, Ordering::Release); // pairs with the committer's Acquire (step 5)
        }
    }
    ACKS.fetch_add(1, Ordering::Release); // pairs with the committer's Acquire before it sleeps
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

/// The disposition of `sig` now, or the errno of `sigaction`.
fn disposition(sig: i32) -> Result<libc::sigaction, i32> {
    // SAFETY: a zeroed sigaction is a valid value to be overwritten.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: sigaction with a null new action only writes the current one
    // into `old`, which we own.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
        return Err(errno());
    }
    Ok(old)
}

/// Whether `act` is our handler.
fn is_ours(act: &libc::sigaction) -> bool {
    act.sa_sigaction == on_signal as *const () as usize
}

/// What holds `act`'s signal instead of us.
fn holder(act: &libc::sigaction) -> SignalHolder {
    match act.sa_sigaction {
        libc::SIG_IGN => SignalHolder::Ignored,
        libc::SIG_DFL => SignalHolder::Default,
        a => SignalHolder::Handler(a),
    }
}

/// Installs the handler on the chosen signal; the signal, or the reason.
pub(crate) fn install(choice: SignalChoice) -> Result<i32, String> {
    // The handler serializes: choose how before it can run.
    crate::arch::prepare_serialize();
    let current = SIGNO.load(Ordering::Relaxed);
    if current != 0 {
        return Ok(current);
    }
    let sig = match choice {
        SignalChoice::Number(sig) => {
            let old =
                disposition(sig).map_err(|e| format!("sigaction({sig}) failed with errno {e}"))?;
            if !is_ours(&old) && old.sa_sigaction != libc::SIG_DFL {
                return Err(format!("DYNKEY_SIGNAL={sig} is held by {}", holder(&old)));
            }
            sig
        }
        SignalChoice::Auto => {
            // Threads that block every real-time signal (kernel workers, a
            // thread being created: glibc blocks all signals around clone)
            // rule out no choice; they are reported per round instead.
            let all_rt =
                (libc::SIGRTMIN()..=libc::SIGRTMAX()).fold(0, |m, s| m | procfs::sig_bit(s));
            let blocked = procfs::blocked_by_any_thread(all_rt);
            (libc::SIGRTMIN()..=libc::SIGRTMAX())
                .find(|&sig| {
                    blocked & procfs::sig_bit(sig) == 0
                        && disposition(sig).is_ok_and(|d| d.sa_sigaction == libc::SIG_DFL)
                })
                .ok_or_else(|| {
                    "no real-time signal is free (unhandled and unblocked) for the signal rendezvous"
                        .to_string()
                })?
        }
    };
    // SAFETY: a zeroed sigaction is a valid starting point; we fill in the
    // handler, an empty mask and the flags.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_signal as *const () as usize;
    // No SA_NODEFER: the kernel blocks the signal while its handler runs, so
    // handlers never nest. With nesting, back-to-back rounds signalled a
    // thread again while it was still in the handler's futex wake, one frame
    // deeper each time, until the alternate signal stack overflowed
    // (SIGSEGV). A thread caught inside our handler therefore shows the
    // signal in `SigBlk`; step 4 tells it from one that blocks the signal
    // by its answer to the previous round.
    act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: act.sa_mask is ours; sigemptyset initializes it.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: installs an async-signal-safe handler on a signal that nobody
    // handles (checked above).
    if unsafe { libc::sigaction(sig, &act, std::ptr::null_mut()) } != 0 {
        return Err(format!("sigaction({sig}) failed with errno {}", errno()));
    }
    SIGNO.store(sig, Ordering::Relaxed);
    Ok(sig)
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

/// The other threads of the process, sorted. An error if `/proc/self/task`
/// cannot be read: without the list there is no way to reach every thread,
/// and "no threads" would be a silent success.
fn other_threads() -> Result<Vec<i32>, Error> {
    let me = crate::os_thread_id();
    let failed = |e: std::io::Error| Error::Rendezvous {
        method: crate::Method::Signal,
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    };
    let mut tids = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").map_err(failed)? {
        if let Some(tid) = entry
            .map_err(failed)?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            && tid != me
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

/// What a round does with one thread (step 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treatment {
    /// Gone, or a kernel worker: nothing to serialize.
    Skip,
    /// Blocks the signal: not waited for, reported unless it answers
    /// anyway while the others are waited for.
    Blocked { pending: bool },
    /// Our signal is already pending to it: wait, do not signal again.
    Wait,
    /// Signal it and wait.
    Signal,
}

/// `answered_last`: the thread acknowledged the previous round, so a
/// blocked signal is our own handler still running (the kernel blocks the
/// signal for its duration), not the application's mask. A thread that has
/// never run blocks every signal only until it starts (glibc's mask around
/// `clone`).
fn treatment(tid: i32, sig: i32, answered_last: bool) -> Treatment {
    let bit = procfs::sig_bit(sig);
    match procfs::thread_status(tid) {
        None => Treatment::Skip, // exited since the listing
        Some(s) if s.gone => Treatment::Skip,
        Some(s) if s.blocked & bit != 0 => {
            if procfs::is_kernel_worker(tid) {
                Treatment::Skip
            } else if answered_last || procfs::has_never_run(tid) {
                // Blocked for a moment only: the signal queued now (once) is
                // delivered when our handler returns or the thread starts;
                // wait for it like any other thread.
                if s.pending & bit != 0 {
                    Treatment::Wait
                } else {
                    Treatment::Signal
                }
            } else {
                Treatment::Blocked {
                    pending: s.pending & bit != 0,
                }
            }
        }
        Some(s) if s.pending & bit != 0 => Treatment::Wait,
        Some(_) => Treatment::Signal,
    }
}

/// One round (see the module docs). Caller holds the text lock.
pub(crate) fn round(timeout: Duration) -> Result<(), Error> {
    let sig = signal_number().ok_or_else(|| Error::Unavailable {
        what: "signal rendezvous".into(),
        reason: "handler not installed".into(),
    })?;
    // Step 1.
    let now = disposition(sig).map_err(|errno| Error::Rendezvous {
        method: crate::Method::Signal,
        errno,
    })?;
    if !is_ours(&now) {
        return Err(Error::SignalTaken {
            signal: sig,
            holder: holder(&now),
        });
    }
    // Step 2.
    let tids = other_threads()?;
    if tids.is_empty() {
        return Ok(());
    }
    let answered_last = answered_previous_round();
    let table = table_for(tids.len());
    for (slot, &tid) in table.slots.iter().zip(&tids) {
        slot.tid.store(tid, Ordering::Relaxed);
    }
    table.len.store(tids.len(), Ordering::Release); // pairs with the handler's Acquire
    // Step 3.
    let round = ROUND.fetch_add(1, Ordering::Release) + 1;
    // Step 4.
    let pid = std::process::id() as libc::pid_t;
    let signal = |tid: i32| -> Result<(), i32> {
        // SAFETY: tgkill takes plain integers.
        match unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) } {
            0 => Ok(()),
            _ => Err(errno()),
        }
    };
    let slots = &table.slots[..tids.len()];
    let mut waited = Vec::with_capacity(tids.len());
    let mut blocking = Vec::new();
    let mut failed = None;
    for (i, &tid) in tids.iter().enumerate() {
        let sent = match treatment(tid, sig, answered_last.binary_search(&tid).is_ok()) {
            Treatment::Skip => None,
            Treatment::Wait => Some(Ok(())),
            Treatment::Signal => Some(signal(tid)),
            Treatment::Blocked { pending } => {
                // Not waited for. Queued once (never while one of ours is
                // pending), so a thread that blocks only for a moment (a
                // thread being created, a handler with a full mask)
                // serializes as soon as it unblocks, and may still answer
                // while the others are waited for.
                if !pending {
                    let _ = signal(tid);
                }
                blocking.push(i);
                None
            }
        };
        match sent {
            Some(Ok(())) => waited.push(i),
            Some(Err(libc::ESRCH)) | None => {} // exited: answered
            // EAGAIN: the user's queue of signals is full; the thread gets
            // nothing, so waiting for it would be in vain.
            Some(Err(e)) => {
                failed.get_or_insert(e);
            }
        }
    }
    // Step 5.
    let deadline = Instant::now() + timeout;
    let mut unanswered = wait(slots, &waited, round, deadline);
    let grace = (Instant::now() + BLOCKED_GRACE).min(deadline);
    // A thread that no longer blocks the signal after the grace has it
    // delivered now (it was queued once): wait for it like the others.
    let (late, blocked): (Vec<usize>, Vec<usize>) = wait(slots, &blocking, round, grace)
        .into_iter()
        .partition(|&i| {
            procfs::thread_status(tids[i]).is_some_and(|s| s.blocked & procfs::sig_bit(sig) == 0)
        });
    unanswered.extend(wait(slots, &late, round, deadline));
    let unanswered: Vec<i32> = unanswered.into_iter().map(|i| tids[i]).collect();
    let blocked: Vec<i32> = blocked.into_iter().map(|i| tids[i]).collect();
    if !unanswered.is_empty() {
        return Err(Error::RendezvousTimeout {
            unanswered,
            blocked,
        });
    }
    if let Some(errno) = failed {
        return Err(Error::Rendezvous {
            method: crate::Method::Signal,
            errno,
        });
    }
    if !blocked.is_empty() {
        return Err(Error::SignalBlocked {
            signal: sig,
            threads: blocked,
        });
    }
    Ok(())
}

/// The threads, sorted, that acknowledged the previous round, read from
/// the table before step 2 rewrites it. Caller holds the text lock (only
/// the committer writes `ROUND` and the table's thread ids).
fn answered_previous_round() -> Vec<i32> {
    let previous = ROUND.load(Ordering::Relaxed);
    // SAFETY: tables are leaked; a non-null pointer is valid forever.
    let Some(t) = (unsafe { TABLE.load(Ordering::Acquire).as_ref() }) else {
        return Vec::new();
    };
    if previous == 0 {
        return Vec::new();
    }
    let len = t.len.load(Ordering::Relaxed).min(t.slots.len());
    t.slots[..len]
        .iter()
        // Acquire: pairs with the handler's Release of `acked`.
        .filter(|s| s.acked.load(Ordering::Acquire) >= previous)
        .map(|s| s.tid.load(Ordering::Relaxed))
        .collect() // sorted: the table is written in thread id order
}

/// Waits until the slots at `waited` acknowledged `round` or `deadline`
/// passed; the indexes of the threads that never answered and still exist.
fn wait(
    slots: &[CachePadded<Slot>],
    waited: &[usize],
    round: u64,
    deadline: Instant,
) -> Vec<usize> {
    loop {
        // Acquire: pairs with the handler's Release increment.
        let seen = ACKS.load(Ordering::Acquire);
        let pending: Vec<usize> = waited
            .iter()
            .copied()
            .filter(|&i| slots[i].acked.load(Ordering::Acquire) < round) // pairs with the handler's Release
            .collect();
        if pending.is_empty() {
            return pending;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Threads that exited while we waited did answer, in a way; if
            // the list cannot be read, every pending thread counts.
            let tid = |i: usize| slots[i].tid.load(Ordering::Relaxed);
            let alive =
                other_threads().unwrap_or_else(|_| pending.iter().map(|&i| tid(i)).collect());
            return pending
                .into_iter()
                .filter(|&i| alive.binary_search(&tid(i)).is_ok())
                .collect();
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
