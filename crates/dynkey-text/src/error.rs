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
        "site word at {addr:#x} holds {found:#018x}, expected {expected:#018x}; commit aborted, nothing written"
    )]
    Verify {
        /// Address of the aligned word.
        addr: usize,
        /// The word found there.
        found: u64,
        /// The word the plan expected.
        expected: u64,
    },
    /// Threads that never answered a signal rendezvous. The code was written
    /// and the states published; those threads may run old code until they
    /// next enter the kernel.
    #[error(
        "signal rendezvous timed out; threads {unanswered:?} never answered (code written, states published)"
    )]
    RendezvousTimeout {
        /// Thread ids that did not acknowledge.
        unanswered: Vec<i32>,
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

impl Error {
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
