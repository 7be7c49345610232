//! Hooks for tests (not a stable API): clocks that tests can drive.

use std::time::{Duration, SystemTime};

/// Replaces the rate limiter's clock (a monotonic time since any fixed
/// point); `None` restores the real one.
pub fn set_ratelimit_clock(clock: Option<fn() -> Duration>) {
    crate::ratelimit::set_clock(clock);
}

/// Replaces the clock that expiry reads (`None`: the system clock). Then
/// call [`Control::expire_due`](crate::Control::expire_due) to act on the
/// new time deterministically.
pub fn set_expiry_clock(clock: Option<fn() -> SystemTime>) {
    crate::expiry::set_clock(clock);
}
