//! Times and durations as people write them, the one parser and printer
//! of each that every dynkey binary uses.
//!
//! - Times are RFC 3339 in UTC (`2026-11-28T10:00:00Z`): the journal, the
//!   audit, `GET /state` and the fleet's documents.
//! - Durations are one or more `NUMBER UNIT` parts, largest unit first,
//!   each unit at most once: `90s`, `10m`, `2h`, `1h30m`, `1d12h`,
//!   `250ms`; a bare number is seconds (`45`). Units: `d`, `h`, `m`, `s`,
//!   `ms`. No signs, spaces or fractions. dynkeyd's `?ttl=`, dynkeyctl's
//!   `--ttl`, `--wait`, `--heartbeat` and the like all read them with
//!   [`parse_duration`]; a ttl is further bounded by [`parse_ttl`].

use std::time::{Duration, SystemTime};

/// RFC 3339 in UTC with whole seconds: `2026-11-28T10:00:00Z`.
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// RFC 3339 in UTC with milliseconds: `2026-11-28T10:00:00.123Z`.
pub fn format_time_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses RFC 3339 in UTC (`Z`), fractions of a second included.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(s).ok()
}

/// `t` rounded down to a whole second since the epoch.
pub(crate) fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// A duration that does not parse, or a ttl out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("duration {value:?}: {reason}")]
pub struct DurationError {
    /// The text given.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Why a ttl was refused (the same error as any duration's).
pub type TtlError = DurationError;

/// Units, largest first, in milliseconds. `ms` is tried before `m`.
const UNITS: &[(&str, u64)] = &[
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("ms", 1),
    ("m", 60_000),
    ("s", 1_000),
];

/// Parses a duration (see the module docs): `90`, `90s`, `10m`, `2h`,
/// `1h30m`, `1d`, `250ms`, `0`.
///
/// ```
/// use std::time::Duration;
/// use dynkey::parse_duration;
/// assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(parse_duration("30m1h").is_err(), "largest unit first");
/// assert!(parse_duration("1.5h").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let bad = |reason| DurationError {
        value: text.into(),
        reason,
    };
    const SYNTAX: &str = "expected a number of seconds, or numbers with units d, h, m, s or ms, \
                          largest first (90s, 10m, 1h30m)";
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = text.parse().map_err(|_| bad("is too large"))?;
        return secs
            .checked_mul(1_000)
            .map(Duration::from_millis)
            .ok_or_else(|| bad("is too large"));
    }
    let mut rest = text;
    let mut total: u64 = 0;
    // Index into UNITS of the last unit used: later parts must be smaller.
    let mut last: Option<usize> = None;
    if rest.is_empty() {
        return Err(bad(SYNTAX));
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad(SYNTAX));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad("is too large"))?;
        rest = &rest[digits..];
        let Some((i, (unit, ms))) = UNITS
            .iter()
            .enumerate()
            .find(|(_, (u, _))| rest.starts_with(u))
        else {
            return Err(bad(SYNTAX));
        };
        // Order by size, not by table position ("ms" sits before "m").
        if last.is_some_and(|l| UNITS[l].1 <= *ms) {
            return Err(bad(SYNTAX));
        }
        last = Some(i);
        rest = &rest[unit.len()..];
        total = n
            .checked_mul(*ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("is too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// The longest ttl accepted: 30 days.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Parses a ttl: a [`parse_duration`] of whole seconds, at least one, at
/// most [`MAX_TTL`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(dynkey::parse_ttl("90s").unwrap(), Duration::from_secs(90));
/// assert_eq!(dynkey::parse_ttl("10m").unwrap(), Duration::from_secs(600));
/// assert_eq!(dynkey::parse_ttl("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(dynkey::parse_ttl("45").unwrap(), Duration::from_secs(45));
/// assert!(dynkey::parse_ttl("0").is_err());
/// assert!(dynkey::parse_ttl("1500ms").is_err(), "whole seconds");
/// assert!(dynkey::parse_ttl("721h").is_err(), "more than 30 days");
/// ```
pub fn parse_ttl(value: &str) -> Result<Duration, DurationError> {
    let d = parse_duration(value)?;
    let bad = |reason| DurationError {
        value: value.into(),
        reason,
    };
    if d.is_zero() {
        return Err(bad("a ttl must be at least one second"));
    }
    if d.subsec_millis() != 0 {
        return Err(bad("a ttl is whole seconds"));
    }
    if d > MAX_TTL {
        return Err(bad("is longer than 30 days"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_the_grammar() {
        let s = Duration::from_secs;
        for (text, want) in [
            ("0", s(0)),
            ("90", s(90)),
            ("90s", s(90)),
            ("10m", s(600)),
            ("2h", s(7200)),
            ("1h30m", s(5400)),
            ("1d12h", s(129_600)),
            ("1m30s", s(90)),
            ("2s500ms", Duration::from_millis(2500)),
            ("250ms", Duration::from_millis(250)),
            ("01m", s(60)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "s",
            "ms",
            "m5",
            "1.5h",
            "-1",
            "+1",
            "1 s",
            "5M",
            "1w",
            "30m1h",
            "1m1m",
            "1s1m",
            "5ms5s",
            "1h 30m",
            "99999999999999999999",
            "9999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn ttls_are_whole_seconds_from_one_to_thirty_days() {
        assert_eq!(parse_ttl("1").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_ttl("720h").unwrap(), MAX_TTL);
        assert_eq!(parse_ttl("30d").unwrap(), MAX_TTL);
        assert_eq!(parse_ttl("2592000").unwrap(), MAX_TTL);
        for bad in ["0", "0s", "500ms", "1s500ms", "2592001", "30d1s", "721h"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn times_are_rfc3339_in_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_999);
        assert_eq!(format_time(t), "2026-09-21T14:13:20Z");
        assert_eq!(format_time_millis(t), "2026-09-21T14:13:20.999Z");
        assert_eq!(parse_time(&format_time_millis(t)), Some(t));
        assert_eq!(
            parse_time(&format_time(t)).map(whole_seconds),
            Some(whole_seconds(t))
        );
        assert!(parse_time("yesterday").is_none());
    }
}
