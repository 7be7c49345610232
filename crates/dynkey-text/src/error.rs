//! The errors of this crate: one enum, every variant documented, messages
//! that name the offending value.

use crate::Method;

/// A displacement that a site or stub cannot encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A `rel32` from `from` (the next instruction) cannot reach `to`.
    #[error("target {to:#x} is out of rel32 range of {from:#x} (more than 2 GiB away)")]
    OutOfRange {
        /// Address the displacement is relative to.
        from: usize,
        /// The unreachable target.
        to: usize,
    },
}

/// What can go wrong in dynkey-text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value (environment or code) is not one we know.
    #[error("invalid {var}={value:?}; expected {expected}")]
    Config {
        /// The variable, e.g. `DYNKEY_SITES`.
        var: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// [`configure`](crate::configure) was called after the runtime started.
    #[error("configuration must be set before first use; the runtime is already running")]
    AlreadyInitialized,
    /// A forced setting the platform cannot honour (never a silent fallback).
    #[error("{what} was forced but is unavailable: {reason}")]
    Unavailable {
        /// The forced setting, e.g. `DYNKEY_RENDEZVOUS=membarrier`.
        what: String,
        /// Why it cannot be honoured.
        reason: String,
    },
    /// A planned site did not hold the bytes it should; nothing was written.
    #[error(
        "site word at {addr:#x}: the {view} holds {found:#018x}, expected {expected:#018x}; commit aborted, nothing written"
    )]
    Verify {
        /// Address of the aligned word (in the executable view).
        addr: usize,
        /// Which view of the code held the unexpected word.
        view: CodeView,
        /// The word found there.
        found: u64,
        /// The word expected there.
        expected: u64,
    },
    /// Threads that never answered a signal rendezvous. The code was written
    /// and the states published; those threads may run old code until they
    /// next enter the kernel.
    #[error(
        "signal rendezvous timed out; threads {unanswered:?} never answered{} (code written, states published)",
        blocked_note(.blocked)
    )]
    RendezvousTimeout {
        /// Thread ids that did not acknowledge.
        unanswered: Vec<i32>,
        /// Thread ids that block the signal, so were not signalled.
        blocked: Vec<i32>,
    },
    /// Threads that block the rendezvous signal: they were not signalled
    /// (and not waited for); every other thread was serialized. The code was
    /// written and the states published; those threads may run old code
    /// until they next enter the kernel. A thread that answered the round
    /// before counts as inside the handler, not as blocking: if it started
    /// to block the signal since, that one round waits for it and ends in
    /// [`Error::RendezvousTimeout`]; later rounds report it here.
    #[error(
        "threads {threads:?} block signal {signal} of the signal rendezvous; they were not serialized (code written, states published)"
    )]
    SignalBlocked {
        /// The rendezvous signal.
        signal: i32,
        /// Thread ids that block it.
        threads: Vec<i32>,
    },
    /// The rendezvous signal's handler was replaced after start-up (by
    /// `sigaction` or `signal` elsewhere in the process): no thread was
    /// signalled. The code was written and the states published; threads
    /// may run old code until they next enter the kernel. Choose another
    /// signal for dynkey with `DYNKEY_SIGNAL`.
    #[error(
        "signal {signal} of the signal rendezvous is now held by {holder}; no thread was signalled (code written, states published)"
    )]
    SignalTaken {
        /// The rendezvous signal.
        signal: i32,
        /// What holds it now.
        holder: SignalHolder,
    },
    /// The rendezvous system call failed unexpectedly (code written, states published).
    #[error("{method} rendezvous failed with errno {errno} (code written, states published)")]
    Rendezvous {
        /// The method that failed.
        method: Method,
        /// The OS error number.
        errno: i32,
    },
    /// A static call was asked to switch to a target it does not have.
    #[error("static call has {targets} targets; index {index} does not exist")]
    NoSuchTarget {
        /// The requested index.
        index: usize,
        /// How many targets the call has.
        targets: usize,
    },
    /// A stub or site cannot reach its target.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A memory mapping needed for code pages failed.
    #[error("{what} failed with errno {errno}")]
    Map {
        /// The operation, e.g. `memfd_create`.
        what: &'static str,
        /// The OS error number.
        errno: i32,
    },
}

/// A view of code pages (see the crate's `[OLD-VERIFIED]` invariant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeView {
    /// The writable alias the committer writes through.
    Alias,
    /// The executable view threads run: it differs from the alias, so the
    /// range was remapped by someone else and writes would not be executed.
    Executable,
}

impl std::fmt::Display for CodeView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CodeView::Alias => "writable alias",
            CodeView::Executable => "executable view (remapped by someone else?)",
        })
    }
}

/// What holds a signal's disposition instead of dynkey's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalHolder {
    /// `SIG_IGN`.
    Ignored,
    /// `SIG_DFL`.
    Default,
    /// Another handler, at this address.
    Handler(usize),
}

impl std::fmt::Display for SignalHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignalHolder::Ignored => f.write_str("SIG_IGN"),
            SignalHolder::Default => f.write_str("SIG_DFL"),
            SignalHolder::Handler(a) => write!(f, "another handler at {a:#x}"),
        }
    }
}

fn blocked_note(blocked: &[i32]) -> String {
    if blocked.is_empty() {
        String::new()
    } else {
        format!(" and threads {blocked:?} block the signal")
    }
}

impl Error {
    /// Whether the commit was applied although some thread may lag: the
    /// code was written and the key states published, but the rendezvous
    /// could not serialize every thread (a timeout, threads that block the
    /// signal, a signal handler replaced by someone else, a failed
    /// system call). Such threads run the new code at the latest when they
    /// next enter the kernel. Every other error means nothing was applied.
    ///
    /// ```
    /// use dynkey_text::Error;
    /// let lag = Error::SignalBlocked { signal: 34, threads: vec![7] };
    /// assert!(lag.applied_but_may_lag());
    /// assert!(!Error::AlreadyInitialized.applied_but_may_lag());
    /// ```
    pub fn applied_but_may_lag(&self) -> bool {
        matches!(
            self,
            Error::RendezvousTimeout { .. }
                | Error::Rendezvous { .. }
                | Error::SignalBlocked { .. }
                | Error::SignalTaken { .. }
        )
    }

    pub(crate) fn last_os(what: &'static str) -> Error {
        Error::Map {
            what,
            errno: errno(),
        }
    }
}

/// The calling thread's last OS error number.
pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_values() {
        let e = Error::RendezvousTimeout {
            unanswered: vec![5],
            blocked: vec![9],
        };
        assert!(e.to_string().contains("[5]") && e.to_string().contains("[9] block"));
        let e = Error::SignalTaken {
            signal: 34,
            holder: SignalHolder::Handler(0x1000),
        };
        assert!(e.to_string().contains("signal 34") && e.to_string().contains("0x1000"));
        let e = Error::Verify {
            addr: 0x40,
            view: CodeView::Executable,
            found: 1,
            expected: 2,
        };
        assert!(e.to_string().contains("executable view"), "{e}");
        assert!(
            !e.applied_but_may_lag(),
            "a failed verification writes nothing"
        );
    }
}
