//! Time for expiry: the clock, and the thread that wakes at the next expiry.
//!
//! Expiry times are absolute (`SystemTime`), so they survive restarts. The
//! clock is `SystemTime::now` unless a test replaces it
//! (`dynkey::testing::set_clock`). One thread, started the first time an
//! operation with an expiry exists, sleeps until the earliest expiry and
//! then calls the engine (through the function it was given), which drops
//! what expired, rebuilds with one commit and schedules the next wake-up.
//!
//! The clock is read once per batch and per expiry check, so a lock
//! around it costs nothing that matters.

use std::sync::{Condvar, Mutex, RwLock};
use std::time::SystemTime;

static CLOCK: RwLock<Option<fn() -> SystemTime>> = RwLock::new(None);

/// The current time, as expiry sees it.
pub(crate) fn now() -> SystemTime {
    match *CLOCK.read().unwrap_or_else(|e| e.into_inner()) {
        Some(f) => f(),
        None => SystemTime::now(),
    }
}

/// Replaces the clock (None: the system clock again).
pub(crate) fn set_clock(clock: Option<fn() -> SystemTime>) {
    *CLOCK.write().unwrap_or_else(|e| e.into_inner()) = clock;
}

/// The expiry timer.
#[derive(Debug)]
pub(crate) struct Timer {
    state: Mutex<TimerState>,
    wake: Condvar,
    tick: fn(),
}

#[derive(Debug)]
struct TimerState {
    next: Option<SystemTime>,
    started: bool,
}

impl Timer {
    /// A timer that calls `tick` when the scheduled time comes.
    pub const fn new(tick: fn()) -> Timer {
        Timer {
            state: Mutex::new(TimerState {
                next: None,
                started: false,
            }),
            wake: Condvar::new(),
            tick,
        }
    }

    /// Sets the next wake-up (None: nothing expires).
    pub fn schedule(&'static self, next: Option<SystemTime>) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.next = next;
        if next.is_some() && !s.started {
            s.started = true;
            let spawned = std::thread::Builder::new()
                .name("dynkey-expiry".into())
                .spawn(move || self.run());
            if let Err(e) = spawned {
                s.started = false;
                eprintln!("dynkey: cannot start the expiry thread: {e}");
            }
        }
        self.wake.notify_all();
    }

    fn run(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match s.next {
                None => s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(t) => match t.duration_since(now()) {
                    Ok(left) if !left.is_zero() => {
                        s = self
                            .wake
                            .wait_timeout(s, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    _ => {
                        // Due. The tick reschedules (under our mutex), so
                        // clear first: a tick that finds nothing due must
                        // not make us spin.
                        s.next = None;
                        drop(s);
                        (self.tick)();
                        s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    }
                },
            }
        }
    }
}
