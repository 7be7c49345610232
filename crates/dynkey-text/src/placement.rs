//! Where run-time stub chunks go: addresses within `rel32` reach of the
//! binary's text, so a stub can `jmp rel32` to a Rust function.
//!
//! `mmap(NULL)` puts pages far from the executable, so each chunk is mapped
//! at a hint with `MAP_FIXED_NOREPLACE` (which fails instead of replacing
//! anything). The hints are 64 MiB steps below, then above, the text. A
//! process with many chunks must not retry every taken hint for each new
//! chunk (35 failing `mmap` calls per chunk once the nearby ones are used):
//! [`Placement`] remembers what failed, and after a success tries the
//! address right after that chunk first.

use crate::error::Error;

/// Where run-time stub chunks go: addresses near the binary's text, tried
/// once each. A hint that failed (taken, or refused) is not tried again,
/// and after a success the next chunk first tries the address right after
/// it, so a process with many chunks makes about one `mmap` per chunk
/// instead of one per remembered failure.
#[derive(Debug, Default)]
pub(crate) struct Placement {
    /// Hints (in [`Placement::hints`] order) already used or failed.
    tried: usize,
    /// The address right after the last chunk placed by a hint.
    next: Option<usize>,
}

/// How a placement attempt at one address went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Mapped there.
    Placed,
    /// Taken or refused: try another address.
    Taken,
    /// The kernel ignores placement hints: stop trying.
    Unsupported,
}

impl Placement {
    /// Addresses below (then above) `near`, each within `rel32` reach of it.
    fn hints(near: usize) -> impl Iterator<Item = usize> {
        const STEP: usize = 64 << 20; // 64 MiB
        const TRIES: usize = 24; // up to 1.5 GiB away
        let base = near & !(STEP - 1);
        let below = (1..=TRIES).filter_map(move |i| base.checked_sub(i * STEP));
        let above = (2..=TRIES / 2).filter_map(move |i| base.checked_add(i * STEP));
        below.chain(above).filter(|&h| h >= 1 << 24)
    }

    /// An address for `len` bytes near `near`, trying with `try_at`; None
    /// when no hint worked (the caller maps anywhere).
    pub(crate) fn place(
        &mut self,
        len: usize,
        near: usize,
        mut try_at: impl FnMut(usize) -> Result<Attempt, Error>,
    ) -> Result<Option<usize>, Error> {
        // Within reach: the whole chunk within 1.75 GiB of `near`.
        let in_reach = |a: usize| a.abs_diff(near).max((a + len).abs_diff(near)) < (7 << 28);
        if let Some(next) = self.next.take().filter(|&a| in_reach(a)) {
            match try_at(next)? {
                Attempt::Placed => {
                    self.next = Some(next + len);
                    return Ok(Some(next));
                }
                Attempt::Taken => {}
                Attempt::Unsupported => return Ok(None),
            }
        }
        let hints: Vec<usize> = Self::hints(near).collect();
        while self.tried < hints.len() {
            let hint = hints[self.tried];
            self.tried += 1;
            match try_at(hint)? {
                Attempt::Placed => {
                    self.next = Some(hint + len);
                    return Ok(Some(hint));
                }
                Attempt::Taken => {}
                Attempt::Unsupported => {
                    self.tried = hints.len();
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_tries_each_hint_once_then_follows_its_last_chunk() {
        let near = 0x5555_0000_0000usize;
        let hints: Vec<usize> = Placement::hints(near).collect();
        assert_eq!(hints.len(), 35, "24 below, 11 above");
        // Every hint is taken: the first chunk tries them all, the next
        // ones try none (they map anywhere at once).
        let mut p = Placement::default();
        let mut calls = 0;
        let mut all_taken = |_: usize| {
            calls += 1;
            Ok(Attempt::Taken)
        };
        assert_eq!(p.place(0x10000, near, &mut all_taken).unwrap(), None);
        assert_eq!(p.place(0x10000, near, &mut all_taken).unwrap(), None);
        assert_eq!(p.place(0x10000, near, &mut all_taken).unwrap(), None);
        assert_eq!(calls, 35, "a failed hint is never tried again");

        // The first free hint is the 6th; chunks then follow each other.
        let mut p = Placement::default();
        let mut taken: Vec<usize> = hints[..5].to_vec();
        let mut calls = 0;
        let mut try_at = |a: usize| {
            calls += 1;
            Ok(if taken.contains(&a) {
                Attempt::Taken
            } else {
                taken.push(a);
                Attempt::Placed
            })
        };
        assert_eq!(p.place(0x10000, near, &mut try_at).unwrap(), Some(hints[5]));
        assert_eq!(
            p.place(0x10000, near, &mut try_at).unwrap(),
            Some(hints[5] + 0x10000)
        );
        assert_eq!(
            p.place(0x10000, near, &mut try_at).unwrap(),
            Some(hints[5] + 0x20000)
        );
        assert_eq!(calls, 8, "6 for the first chunk, 1 for each next one");
    }

    #[test]
    fn a_kernel_without_noreplace_stops_the_hints() {
        let mut p = Placement::default();
        let mut calls = 0;
        let mut ignored = |_: usize| {
            calls += 1;
            Ok(Attempt::Unsupported)
        };
        assert_eq!(p.place(4096, 0x5555_0000_0000, &mut ignored).unwrap(), None);
        assert_eq!(p.place(4096, 0x5555_0000_0000, &mut ignored).unwrap(), None);
        assert_eq!(calls, 1);
    }
}
