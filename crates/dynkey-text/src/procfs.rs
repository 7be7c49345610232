//! What `/proc` says about this process and its threads.
//!
//! - the process: `Threads:` and `Seccomp:` from `/proc/self/status`, read
//!   without allocating (the opt-in early membarrier registration runs
//!   before `main`, where std may not be set up);
//! - each thread: its state and signal masks (`SigBlk`, `SigPnd`, `ShdPnd`)
//!   from `/proc/self/task/TID/status`, and its kernel flags from `.../stat`
//!   (io_uring and vhost workers are threads of the process that never run
//!   user code).

use std::ffi::CStr;

/// Reads the file at `path` into `buf` with raw libc calls (no allocation);
/// the number of bytes read, or None if it cannot be read.
fn read_into(path: &CStr, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: path is NUL-terminated; open takes no other pointer.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut n = 0;
    while n < buf.len() {
        // SAFETY: reads into the unfilled tail of `buf`, which we own.
        let r = unsafe { libc::read(fd, buf[n..].as_mut_ptr().cast(), buf.len() - n) };
        if r < 0 && crate::error::errno() == libc::EINTR {
            continue;
        }
        if r <= 0 {
            break;
        }
        n += r as usize;
    }
    // SAFETY: fd is ours and not used afterwards.
    unsafe { libc::close(fd) };
    Some(n)
}

/// The value of `Name:` in a `status` file's text (spaces and tabs trimmed).
fn field<'a>(text: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    text.split(|&b| b == b'\n').find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(b":")?;
        let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
        let end = rest.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
        Some(&rest[start..end])
    })
}

fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u64)
    })
}

fn hex(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 16 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        (b as char).to_digit(16).map(|d| acc << 4 | d as u64)
    })
}

/// `Threads:` and `Seccomp:` of this process (None where unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessStatus {
    pub threads: Option<u64>,
    /// 0 none, 1 strict, 2 filter.
    pub seccomp: Option<u64>,
}

/// Reads this process's status without allocating.
pub(crate) fn process_status() -> ProcessStatus {
    let mut buf = [0u8; 4096];
    let n = read_into(c"/proc/self/status", &mut buf).unwrap_or(0);
    let text = &buf[..n];
    ProcessStatus {
        threads: field(text, b"Threads").and_then(decimal),
        seccomp: field(text, b"Seccomp").and_then(decimal),
    }
}

/// A signal's bit in the 64-bit masks of a status file (signal 1 is bit 0).
pub(crate) fn sig_bit(sig: i32) -> u64 {
    if (1..=64).contains(&sig) {
        1 << (sig - 1)
    } else {
        0
    }
}

/// What a thread's status file says about signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadStatus {
    /// A zombie (`Z`) or dead (`X`) thread: listed, but runs nothing.
    pub gone: bool,
    /// `SigBlk`: the signals it blocks.
    pub blocked: u64,
    /// `SigPnd`: signals queued to this thread and not yet delivered.
    pub pending: u64,
    /// `ShdPnd`: signals queued to the whole process.
    pub shared_pending: u64,
}

fn parse_thread_status(text: &[u8]) -> Option<ThreadStatus> {
    let state = field(text, b"State")?;
    Some(ThreadStatus {
        gone: matches!(state.first(), Some(b'Z' | b'X')),
        blocked: field(text, b"SigBlk").and_then(hex)?,
        pending: field(text, b"SigPnd").and_then(hex)?,
        shared_pending: field(text, b"ShdPnd").and_then(hex).unwrap_or(0),
    })
}

/// Thread `tid` of this process, or None if it is gone (or unreadable).
pub(crate) fn thread_status(tid: i32) -> Option<ThreadStatus> {
    let text = std::fs::read(format!("/proc/self/task/{tid}/status")).ok()?;
    parse_thread_status(&text)
}

/// `PF_IO_WORKER`: an io_uring worker (include/linux/sched.h).
const PF_IO_WORKER: u64 = 0x10;
/// `PF_USER_WORKER`: a kernel worker of the process, e.g. vhost (6.4+).
const PF_USER_WORKER: u64 = 0x4000;

fn parse_stat_flags(stat: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces or parentheses):
    // state, ppid, pgrp, session, tty, tpgid, flags.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(6)?.parse().ok()
}

/// Whether thread `tid` is a kernel worker of the process (io_uring,
/// vhost): it never returns to user space, blocks every signal, and never
/// runs a site, so a rendezvous neither signals nor waits for it.
pub(crate) fn is_kernel_worker(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|s| parse_stat_flags(&s))
        .is_some_and(|f| f & (PF_IO_WORKER | PF_USER_WORKER) != 0)
}

/// Whether thread `tid` has never been on a CPU: a thread just created,
/// still with the full signal mask glibc holds around `clone`, which it
/// drops before running any of its own code. Read from the third field of
/// `/proc/.../schedstat`, the times the thread was switched in (counted as
/// it happens; the first field, run time, lags until the next tick). False
/// where it cannot be told.
pub(crate) fn has_never_run(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse::<u64>().ok())
        == Some(0)
}

/// The union of the signals blocked by the threads of the process, except
/// threads that block all of `all` (threads that vanish while being read
/// are skipped).
pub(crate) fn blocked_by_any_thread(all: u64) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(thread_status)
        .filter(|s| !s.gone && s.blocked & all != all)
        .fold(0, |acc, s| acc | s.blocked)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"Name:\tworker (x)\nState:\tS (sleeping)\nTgid:\t7\nThreads:\t3\n\
SigQ:\t2/96364\nSigPnd:\t0000000200000000\nShdPnd:\t0000000000000000\n\
SigBlk:\tfffffffe7ffbfeff\nSigIgn:\t0000000000001000\nSeccomp:\t2\n";

    #[test]
    fn status_fields_parse() {
        assert_eq!(field(SAMPLE, b"Threads").and_then(decimal), Some(3));
        assert_eq!(field(SAMPLE, b"Seccomp").and_then(decimal), Some(2));
        assert_eq!(field(SAMPLE, b"Sig"), None, "whole names only");
        let t = parse_thread_status(SAMPLE).unwrap();
        assert!(!t.gone);
        assert_eq!(t.pending, sig_bit(34), "SIGRTMIN (34) is bit 33");
        assert_eq!(t.blocked, 0xfffffffe7ffbfeff);
        let zombie = b"State:\tZ (zombie)\nSigPnd:\t0\nSigBlk:\t0\n";
        assert!(parse_thread_status(zombie).unwrap().gone);
        assert_eq!(parse_thread_status(b"State:\tR\n"), None, "masks missing");
    }

    #[test]
    fn this_thread_has_run() {
        assert!(!has_never_run(crate::os_thread_id()));
    }

    #[test]
    fn numbers_reject_garbage() {
        assert_eq!(decimal(b"12x"), None);
        assert_eq!(decimal(b""), None);
        assert_eq!(hex(b"00000000000000001"), None, "more than 64 bits");
        assert_eq!(hex(b"ff"), Some(255));
        assert_eq!(sig_bit(0), 0);
        assert_eq!(sig_bit(65), 0);
        assert_eq!(sig_bit(1), 1);
    }

    #[test]
    fn stat_flags_after_a_command_with_parentheses() {
        let stat = "42 (a) b) S 1 42 42 0 -1 4210752 0 0";
        assert_eq!(parse_stat_flags(stat), Some(4210752));
        assert_eq!(parse_stat_flags("42 (x"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let s = process_status();
        assert!(s.threads.unwrap() >= 1);
        assert!(s.seccomp.is_some());
        let me = crate::os_thread_id();
        let t = thread_status(me).expect("own status");
        assert!(!t.gone);
        assert!(!is_kernel_worker(me));
    }
}
