//! Per-callsite rate limiting for `pr_debug_ratelimited!`.
//!
//! The kernel's defaults and order (`___ratelimit`): the callsite's enable
//! check comes first, so a disabled site spends no budget; up to
//! [`BURST`] messages pass per fixed [`INTERVAL`] window, which starts at the
//! first consulted call; once the interval has elapsed, the next call opens
//! a new window and reports how many were suppressed in the old one.
//!
//! Time comes from a clock that tests can replace
//! (`dynkey::testing::set_ratelimit_clock`).

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Messages allowed per window.
pub const BURST: u32 = 10;
/// Length of a window.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Print it; `suppressed` messages of the previous window were dropped
    /// (report them first when non-zero).
    Pass {
        /// Messages dropped in the window that just closed.
        suppressed: u32,
    },
    /// Drop it.
    Suppress,
}

/// The state of one callsite's windows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Window {
    start: Option<Duration>,
    passed: u32,
    suppressed: u32,
}

impl Window {
    /// Decides for a message at time `now` (a monotonic timestamp).
    pub fn check(&mut self, now: Duration, burst: u32, interval: Duration) -> Decision {
        match self.start {
            Some(start) if now.saturating_sub(start) < interval => {
                if self.passed < burst {
                    self.passed += 1;
                    Decision::Pass { suppressed: 0 }
                } else {
                    self.suppressed += 1;
                    Decision::Suppress
                }
            }
            _ => {
                let suppressed = std::mem::take(&mut self.suppressed);
                self.start = Some(now);
                self.passed = 1;
                Decision::Pass { suppressed }
            }
        }
    }
}

/// A callsite's limiter (shared by every thread calling that site).
#[derive(Debug)]
pub struct RateLimit {
    window: Mutex<Window>,
}

impl RateLimit {
    /// A limiter with no window open yet.
    pub const fn new() -> RateLimit {
        RateLimit {
            window: Mutex::new(Window {
                start: None,
                passed: 0,
                suppressed: 0,
            }),
        }
    }

    /// Decides for a message now, with the defaults.
    pub fn check(&self) -> Decision {
        let now = now();
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(now, BURST, INTERVAL)
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new()
    }
}

static CLOCK: RwLock<Option<fn() -> Duration>> = RwLock::new(None);
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn now() -> Duration {
    match *CLOCK.read().unwrap_or_else(|e| e.into_inner()) {
        Some(clock) => clock(),
        None => EPOCH.get_or_init(Instant::now).elapsed(),
    }
}

/// Replaces the rate limiter's clock (a monotonic time since any fixed
/// point); `None` restores the real one. For tests: see `dynkey::testing`.
pub(crate) fn set_clock(clock: Option<fn() -> Duration>) {
    *CLOCK.write().unwrap_or_else(|e| e.into_inner()) = clock;
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn burst_then_suppress_then_report_in_next_window() {
        let mut w = Window::default();
        for i in 0..BURST {
            assert_eq!(
                w.check(S(100), BURST, INTERVAL),
                Decision::Pass { suppressed: 0 },
                "message {i} of the burst"
            );
        }
        for _ in 0..7 {
            assert_eq!(w.check(S(104), BURST, INTERVAL), Decision::Suppress);
        }
        assert_eq!(
            w.check(S(105), BURST, INTERVAL),
            Decision::Pass { suppressed: 7 },
            "new window reports 7"
        );
        assert_eq!(
            w.check(S(105), BURST, INTERVAL),
            Decision::Pass { suppressed: 0 }
        );
    }

    #[test]
    fn window_starts_at_first_call_not_at_zero() {
        let mut w = Window::default();
        assert_eq!(w.check(S(3), 1, INTERVAL), Decision::Pass { suppressed: 0 });
        assert_eq!(
            w.check(S(7), 1, INTERVAL),
            Decision::Suppress,
            "4 s after the first call: same window"
        );
        assert_eq!(
            w.check(S(8), 1, INTERVAL),
            Decision::Pass { suppressed: 1 },
            "5 s after: new window"
        );
    }

    #[test]
    fn quiet_windows_report_nothing() {
        let mut w = Window::default();
        w.check(S(0), BURST, INTERVAL);
        assert_eq!(
            w.check(S(60), BURST, INTERVAL),
            Decision::Pass { suppressed: 0 }
        );
    }
}
