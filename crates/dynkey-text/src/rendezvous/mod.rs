//! The rendezvous: after a commit writes code, make every thread of the
//! process execute a serializing instruction before the commit returns.
//!
//! Intel SDM vol. 3, 8.1.3: a core that may run code another core modified
//! must serialize before running it. Code written through an alias is not
//! caught by the prefetch check either (SDM 11.6 keys it by linear address).
//! One rendezvous per commit, after all of its stores, covers every site of
//! the commit at once, which is what makes a commit O(changed sites) stores
//! plus one rendezvous (G5).
//!
//! Methods, in order of preference:
//! 1. [`membarrier`]: `PRIVATE_EXPEDITED_SYNC_CORE`, an IPI to each CPU now
//!    running one of our threads; sleeping threads serialize on their way
//!    back to user space.
//! 2. [`signal`]: signal each thread and wait for each to acknowledge from a
//!    handler that serializes.
//! 3. none: only with the atomic kind, where eventual visibility of a plain
//!    store was accepted by the user.
//!
//! The committing thread itself serializes with a local instruction
//! (`arch::serialize_local`), since neither method targets the caller.
//!
//! [`run`] is what establishes `[SYNC-BEFORE-RETURN]`: `commit.rs` calls it
//! after a batch's stores and before publishing any state.

use std::time::Duration;

use crate::Method;
use crate::error::Error;

pub(crate) mod membarrier;
pub(crate) mod signal;

/// Runs one rendezvous. `sync_core` says whether code changed (else only
/// atomic bytes changed and a memory barrier on every running thread is
/// enough).
pub(crate) fn run(method: Method, sync_core: bool, timeout: Duration) -> Result<(), Error> {
    if sync_core {
        crate::arch::serialize_local();
    }
    match method {
        Method::Membarrier => {
            membarrier::barrier(sync_core).map_err(|errno| Error::Rendezvous { method, errno })
        }
        Method::Signal => signal::round(timeout),
        Method::None => Ok(()),
    }
}
