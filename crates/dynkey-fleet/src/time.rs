//! Durations on the command line and RFC 3339 times in documents.
//!
//! Durations are a number of seconds, or a number with `ms`, `s`, `m` or
//! `h` (`--heartbeat`, `--wait`); `--ttl` follows dynkeyd's rule exactly
//! ([`dynkey::parse_ttl`]).

use std::time::{Duration, SystemTime};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "duration {0:?} is not valid: use a number of seconds, or a number with ms, s, m or h (90s, 10m, 2h)"
)]
pub struct DurationError(pub String);

/// Parses `90`, `90s`, `10m`, `2h`, `250ms`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_string());
    let (digits, unit_ms) = if let Some(d) = text.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, 1_000)
    } else if let Some(d) = text.strip_suffix('m') {
        (d, 60_000)
    } else if let Some(d) = text.strip_suffix('h') {
        (d, 3_600_000)
    } else {
        (text, 1_000)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return Err(err());
    }
    let n: u64 = digits.parse().map_err(|_| err())?;
    Ok(Duration::from_millis(
        n.checked_mul(unit_ms).ok_or_else(err)?,
    ))
}

/// A time as RFC 3339, UTC, whole seconds (`2026-11-28T10:00:00Z`).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// A time as RFC 3339 with milliseconds, UTC (for status documents).
pub fn rfc3339_millis(t: SystemTime) -> String {
    let d = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let whole = rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(d.as_secs()));
    format!("{}.{:03}Z", whole.trim_end_matches('Z'), d.subsec_millis())
}

/// Parses an RFC 3339 time.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, time::error::Parse> {
    let t = OffsetDateTime::parse(text, &Rfc3339)?;
    Ok(SystemTime::from(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in [
            "",
            "s",
            "1.5s",
            "-1",
            "1d",
            "1 s",
            "ms",
            "99999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_860_000_123);
        assert_eq!(rfc3339(t), "2026-11-28T10:00:00Z");
        assert_eq!(rfc3339_millis(t), "2026-11-28T10:00:00.123Z");
        assert_eq!(
            parse_rfc3339("2026-11-28T10:00:00Z").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_860_000)
        );
        assert_eq!(parse_rfc3339(&rfc3339_millis(t)).unwrap(), t);
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
