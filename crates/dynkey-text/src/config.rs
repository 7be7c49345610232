//! Configuration: which site kind, which rendezvous, which queue mode.
//!
//! A [`Config`] is a plain value. Code may set it with
//! [`configure`](crate::configure) before the runtime starts (tests and
//! benches need that); otherwise it comes from the environment:
//!
//! | variable | values | default |
//! |---|---|---|
//! | `DYNKEY_SITES` | `auto`, `patch`, `atomic` | `auto` |
//! | `DYNKEY_RENDEZVOUS` | `auto`, `membarrier`, `signal`, `none` | `auto` |
//! | `DYNKEY_QUEUE` | `sorted`, `unbatched`, `queued-unsorted(N)`, `queued-sorted(N)` | `sorted` |
//! | `DYNKEY_SIGNAL` | `auto`, a number in `SIGRTMIN..=SIGRTMAX`, `SIGRTMIN+N` | `auto` |
//! | `DYNKEY_SIGNAL_TIMEOUT_MS` | milliseconds | `500` |
//! | `DYNKEY_PERF_MAP` | `1` to write `/tmp/perf-PID.map` | off |
//! | `DYNKEY_REGISTER_EARLY` | `1` to register membarrier before `main` | off |
//!
//! `auto` falls back and records why; a forced value the platform cannot
//! honour is an error, never a silent fallback.
//!
//! `DYNKEY_SIGNAL=auto` takes the first real-time signal that no thread
//! blocks and nobody handles or ignores when the signal rendezvous is set
//! up. A program that reads a real-time signal through `signalfd` or
//! `sigwaitinfo` blocks it, so it is skipped; one that installs a handler
//! later should name a signal for dynkey here instead.
//!
//! `DYNKEY_REGISTER_EARLY` is read only by a constructor that runs before
//! `main` (with libc, so it is not part of [`Config`]). Registering for
//! `membarrier` costs microseconds while the process has one thread and an
//! RCU grace period (8-16 ms measured) once it has more; without the
//! variable it happens when the runtime starts, so start it first thing in
//! `main` (`dynkey::init()`, or [`status`](crate::status)) or set
//! `DYNKEY_REGISTER_EARLY=1`. The constructor does nothing when threads
//! already exist (a `dlopen`ed library) or a seccomp filter is installed
//! (it could forbid the call and kill the process before it can say why).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::Error;

/// Which kind of site to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SiteMode {
    /// Patch code when the platform allows it, else atomic (reason recorded).
    #[default]
    Auto,
    /// Patch code; an error if the platform refuses.
    Patch,
    /// Never patch: every site is a relaxed load and branch.
    Atomic,
}

/// Which rendezvous to use after writing code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MethodChoice {
    /// membarrier if registered, else signals (reason recorded).
    #[default]
    Auto,
    /// `membarrier(PRIVATE_EXPEDITED_SYNC_CORE)`; an error if unavailable.
    Membarrier,
    /// Signal every thread and wait for each to acknowledge.
    Signal,
    /// No rendezvous: atomic sites only, visibility is eventual.
    None,
}

/// Which signal the signal rendezvous uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignalChoice {
    /// The first real-time signal that no thread blocks and nobody handles
    /// or ignores when the rendezvous is set up.
    #[default]
    Auto,
    /// This signal (in `SIGRTMIN..=SIGRTMAX`); an error at start if another
    /// handler holds it.
    Number(i32),
}

/// How planned writes are grouped into rendezvous.
///
/// The default is one unbounded sorted batch: one rendezvous per commit. The
/// other modes reproduce the kernel's behaviour for comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueMode {
    /// Sort the whole plan by address, write it, one rendezvous.
    #[default]
    Sorted,
    /// One rendezvous per site (the kernel without batching).
    Unbatched,
    /// Queue in visit order; flush when full or when a lower address arrives
    /// (the kernel's stock batch).
    QueuedUnsorted(usize),
    /// Insertion-sort into the queue; flush when full (the 2026 RFC).
    QueuedSorted(usize),
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Site kind.
    pub sites: SiteMode,
    /// Rendezvous method.
    pub rendezvous: MethodChoice,
    /// Initial queue mode (can be changed later with
    /// [`set_queue_mode`](crate::set_queue_mode)).
    pub queue: QueueMode,
    /// The signal of the signal rendezvous.
    pub signal: SignalChoice,
    /// How long a signal rendezvous waits for every thread.
    pub signal_timeout: Duration,
    /// Write `/tmp/perf-PID.map` entries for taken-over text.
    pub perf_map: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sites: SiteMode::Auto,
            rendezvous: MethodChoice::Auto,
            queue: QueueMode::Sorted,
            signal: SignalChoice::Auto,
            signal_timeout: Duration::from_millis(500),
            perf_map: false,
        }
    }
}

impl Config {
    /// Reads `DYNKEY_*` variables; unset ones take their defaults.
    pub fn from_env() -> Result<Config, Error> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`from_env`](Self::from_env) with any source of variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let mut c = Config::default();
        if let Some(v) = get("DYNKEY_SITES") {
            c.sites = v.parse()?;
        }
        if let Some(v) = get("DYNKEY_RENDEZVOUS") {
            c.rendezvous = v.parse()?;
        }
        if let Some(v) = get("DYNKEY_QUEUE") {
            c.queue = v.parse()?;
        }
        if let Some(v) = get("DYNKEY_SIGNAL") {
            c.signal = v.parse()?;
        }
        if let Some(v) = get("DYNKEY_SIGNAL_TIMEOUT_MS") {
            let ms: u64 = v.trim().parse().map_err(|_| Error::Config {
                var: "DYNKEY_SIGNAL_TIMEOUT_MS",
                value: v.clone(),
                expected: "a number of milliseconds",
            })?;
            c.signal_timeout = Duration::from_millis(ms);
        }
        if let Some(v) = get("DYNKEY_PERF_MAP") {
            c.perf_map = matches!(v.as_str(), "1" | "true" | "yes");
        }
        Ok(c)
    }
}

impl FromStr for SiteMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "auto" | "" => Ok(SiteMode::Auto),
            "patch" | "patched" | "inline" | "trampoline" => Ok(SiteMode::Patch),
            "atomic" => Ok(SiteMode::Atomic),
            _ => Err(Error::Config {
                var: "DYNKEY_SITES",
                value: s.into(),
                expected: "auto, patch or atomic",
            }),
        }
    }
}

impl FromStr for MethodChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "auto" | "" => Ok(MethodChoice::Auto),
            "membarrier" => Ok(MethodChoice::Membarrier),
            "signal" => Ok(MethodChoice::Signal),
            "none" => Ok(MethodChoice::None),
            _ => Err(Error::Config {
                var: "DYNKEY_RENDEZVOUS",
                value: s.into(),
                expected: "auto, membarrier, signal or none",
            }),
        }
    }
}

impl FromStr for SignalChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        let t = s.trim();
        let n = if t == "auto" || t.is_empty() {
            return Ok(SignalChoice::Auto);
        } else if let Some(rest) = t.strip_prefix("SIGRTMIN") {
            match rest.strip_prefix('+') {
                Some(k) => k
                    .trim()
                    .parse::<i32>()
                    .ok()
                    .and_then(|k| min.checked_add(k)),
                None if rest.is_empty() => Some(min),
                None => None,
            }
        } else {
            t.parse::<i32>().ok()
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(SignalChoice::Number(n)),
            _ => Err(Error::Config {
                var: "DYNKEY_SIGNAL",
                value: s.into(),
                expected: "auto, a real-time signal number (SIGRTMIN..=SIGRTMAX) or SIGRTMIN+N",
            }),
        }
    }
}

impl fmt::Display for SignalChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalChoice::Auto => f.write_str("auto"),
            SignalChoice::Number(n) => write!(f, "{n}"),
        }
    }
}

impl FromStr for QueueMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::Config {
            var: "DYNKEY_QUEUE",
            value: s.into(),
            expected: "sorted, unbatched, queued-unsorted(N) or queued-sorted(N) with N >= 1",
        };
        let t = s.trim();
        let cap = |prefix: &str| -> Option<Result<usize, Error>> {
            let inner = t
                .strip_prefix(prefix)?
                .strip_prefix('(')?
                .strip_suffix(')')?;
            Some(
                inner
                    .trim()
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(bad),
            )
        };
        match t {
            "sorted" | "default" | "" => return Ok(QueueMode::Sorted),
            "unbatched" => return Ok(QueueMode::Unbatched),
            _ => {}
        }
        if let Some(n) = cap("queued-unsorted") {
            return n.map(QueueMode::QueuedUnsorted);
        }
        if let Some(n) = cap("queued-sorted") {
            return n.map(QueueMode::QueuedSorted);
        }
        Err(bad())
    }
}

impl QueueMode {
    /// An error for a queue of capacity 0 (the parser never makes one).
    pub(crate) fn check(self) -> Result<(), Error> {
        match self {
            QueueMode::QueuedUnsorted(0) | QueueMode::QueuedSorted(0) => Err(Error::Config {
                var: "queue mode",
                value: self.to_string(),
                expected: "a queue capacity of at least 1",
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for QueueMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueMode::Sorted => f.write_str("sorted"),
            QueueMode::Unbatched => f.write_str("unbatched"),
            QueueMode::QueuedUnsorted(n) => write!(f, "queued-unsorted({n})"),
            QueueMode::QueuedSorted(n) => write!(f, "queued-sorted({n})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_when_unset() {
        assert_eq!(env(&[]).unwrap(), Config::default());
    }

    #[test]
    fn parses_every_value() {
        let c = env(&[
            ("DYNKEY_SITES", "atomic"),
            ("DYNKEY_RENDEZVOUS", "signal"),
            ("DYNKEY_QUEUE", "queued-sorted(256)"),
            ("DYNKEY_SIGNAL_TIMEOUT_MS", "200"),
        ])
        .unwrap();
        assert_eq!(c.sites, SiteMode::Atomic);
        assert_eq!(c.rendezvous, MethodChoice::Signal);
        assert_eq!(c.queue, QueueMode::QueuedSorted(256));
        assert_eq!(c.signal_timeout, Duration::from_millis(200));
        assert_eq!(
            "queued-unsorted(3)".parse::<QueueMode>().unwrap(),
            QueueMode::QueuedUnsorted(3)
        );
        assert_eq!(
            "unbatched".parse::<QueueMode>().unwrap(),
            QueueMode::Unbatched
        );
    }

    #[test]
    fn rejects_unknown_values_naming_them() {
        let e = env(&[("DYNKEY_SITES", "fast")]).unwrap_err();
        assert!(e.to_string().contains("DYNKEY_SITES=\"fast\""), "{e}");
        assert!(env(&[("DYNKEY_RENDEZVOUS", "ipi")]).is_err());
        for q in [
            "queued-sorted(0)",
            "queued-sorted()",
            "queued-sorted(x)",
            "queued-sorted(2",
            "fifo",
        ] {
            assert!(q.parse::<QueueMode>().is_err(), "{q} must be rejected");
        }
    }

    #[test]
    fn signal_choices() {
        let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
        let sig = |v: &str| env(&[("DYNKEY_SIGNAL", v)]).map(|c| c.signal);
        assert_eq!(sig("auto").unwrap(), SignalChoice::Auto);
        assert_eq!(sig("SIGRTMIN").unwrap(), SignalChoice::Number(min));
        assert_eq!(sig("SIGRTMIN+3").unwrap(), SignalChoice::Number(min + 3));
        assert_eq!(sig(&max.to_string()).unwrap(), SignalChoice::Number(max));
        assert_eq!(
            sig(&min.to_string())
                .unwrap()
                .to_string()
                .parse::<SignalChoice>(),
            Ok(SignalChoice::Number(min)),
            "Display round-trips"
        );
        for bad in [
            "10".to_string(),
            (min - 1).to_string(),
            (max + 1).to_string(),
            format!("SIGRTMIN+{}", max - min + 1),
            "SIGRTMIN-1".into(),
            "SIGRTMIN+x".into(),
            "SIGUSR1".into(),
        ] {
            let e = sig(&bad).unwrap_err();
            assert!(
                e.to_string().contains(&format!("DYNKEY_SIGNAL={bad:?}")),
                "{bad} is refused, naming it: {e}"
            );
        }
    }

    #[test]
    fn queue_mode_display_round_trips() {
        for m in [
            QueueMode::Sorted,
            QueueMode::Unbatched,
            QueueMode::QueuedUnsorted(7),
            QueueMode::QueuedSorted(256),
        ] {
            assert_eq!(m.to_string().parse::<QueueMode>().unwrap(), m);
        }
    }
}
