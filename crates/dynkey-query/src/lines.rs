//! Line ranges: `line N`, `N-M`, `-M`, `N-`, `-` (decimal, optional leading
//! `+`, bounds inclusive).
//!
//! Kept in the kernel's representation (`parse_linerange` in
//! lib/dynamic_debug.c): two bounds where 0 means "no bound", and an empty or
//! zero upper bound after a `-` stored as `u32::MAX`. The representation
//! matters beyond matching: a second range is refused only when a bound is
//! already non-zero, so `line 0 line 5` is accepted (a kernel quirk kept on
//! purpose) while `line - line 5` is not.

use std::fmt;

/// An inclusive range of source lines; a bound of 0 is no bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LineRange {
    /// Lowest line matched; 0 = no lower bound.
    pub first: u32,
    /// Highest line matched; 0 = no upper bound.
    pub last: u32,
}

/// Why a range was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineError {
    /// A bound was already set (`E_DUP_LINE`).
    Dup,
    /// This part is not a decimal `u32` (`E_BAD_LINENO`).
    BadNumber(String),
    /// last < first (`E_LINE_ORDER`).
    Order { first: u32, last: u32 },
}

impl LineRange {
    /// True when `line` is inside the range.
    pub const fn contains(self, line: u32) -> bool {
        (self.first == 0 || line >= self.first) && (self.last == 0 || line <= self.last)
    }

    /// True when the range restricts nothing (both bounds 0).
    pub const fn is_unbounded(self) -> bool {
        self.first == 0 && self.last == 0
    }

    /// True when a bound is set, i.e. a further range would be a repeat.
    pub(crate) const fn is_set(self) -> bool {
        self.first != 0 || self.last != 0
    }

    /// Parses `text` into `self` the kernel's way: repeat check first, then
    /// only the first `-` splits, an empty side is 0, an empty or 0 upper
    /// bound after a `-` becomes `u32::MAX`, and last < first is refused.
    pub(crate) fn set_from(&mut self, text: &str) -> Result<(), LineError> {
        if self.is_set() {
            return Err(LineError::Dup);
        }
        let (first_text, last_text) = match text.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let first = parse_lineno(first_text)?;
        let range = match last_text {
            None => LineRange { first, last: first },
            Some(t) => {
                let last = match parse_lineno(t)? {
                    0 => u32::MAX,
                    n => n,
                };
                if last < first {
                    return Err(LineError::Order { first, last });
                }
                LineRange { first, last }
            }
        };
        *self = range;
        Ok(())
    }
}

/// `parse_lineno`: empty is 0; otherwise `kstrtouint(s, 10)`: one optional
/// leading `+`, then one or more decimal digits, no overflow past `u32::MAX`.
fn parse_lineno(text: &str) -> Result<u32, LineError> {
    if text.is_empty() {
        return Ok(0);
    }
    let digits = text.strip_prefix('+').unwrap_or(text);
    let bad = || LineError::BadNumber(text.to_owned());
    if digits.is_empty() {
        return Err(bad());
    }
    let mut value: u32 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return Err(bad());
        }
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(b - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(value)
}

impl fmt::Display for LineRange {
    /// `N` when both bounds are equal, else `first-last` with the stored
    /// numbers; either form parses back to the same range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LineRange, LineError> {
        let mut r = LineRange::default();
        r.set_from(text).map(|()| r)
    }

    fn range(first: u32, last: u32) -> LineRange {
        LineRange { first, last }
    }

    #[test]
    fn every_range_form() {
        assert_eq!(parse("145"), Ok(range(145, 145)));
        assert_eq!(parse("100-200"), Ok(range(100, 200)));
        assert_eq!(parse("-100"), Ok(range(0, 100)));
        assert_eq!(parse("100-"), Ok(range(100, u32::MAX)));
        assert_eq!(parse("-"), Ok(range(0, u32::MAX)));
        assert_eq!(parse("+145"), Ok(range(145, 145)));
        assert_eq!(parse("+1-+2"), Ok(range(1, 2)));
        assert_eq!(parse(""), Ok(range(0, 0)));
    }

    #[test]
    fn zero_is_no_bound() {
        assert_eq!(parse("0"), Ok(range(0, 0)));
        assert!(range(0, 0).contains(7) && range(0, 0).is_unbounded());
        assert_eq!(parse("0-10"), parse("-10"));
        assert_eq!(parse("5-0"), parse("5-"));
        assert!(range(5, u32::MAX).contains(u32::MAX));
        assert!(!range(5, 9).contains(4) && range(5, 9).contains(9) && !range(5, 9).contains(10));
    }

    #[test]
    fn bad_numbers() {
        for text in [
            "1-2-3",
            "x",
            "+",
            "++1",
            "1 ",
            "0x10",
            "4294967296",
            "-4294967296",
            "１",
        ] {
            assert!(
                matches!(parse(text), Err(LineError::BadNumber(_))),
                "{text:?} must be E_BAD_LINENO"
            );
        }
        assert_eq!(parse("4294967295"), Ok(range(u32::MAX, u32::MAX)));
    }

    #[test]
    fn order() {
        assert_eq!(
            parse("100-10"),
            Err(LineError::Order {
                first: 100,
                last: 10
            })
        );
        assert_eq!(parse("10-10"), Ok(range(10, 10)));
    }

    #[test]
    fn repeat_is_detected_by_a_non_zero_bound() {
        let mut r = LineRange::default();
        r.set_from("0").unwrap();
        assert_eq!(
            r.set_from("5"),
            Ok(()),
            "line 0 line 5 is accepted (kernel quirk)"
        );
        assert_eq!(r.set_from("6"), Err(LineError::Dup));
        let mut r = LineRange::default();
        r.set_from("-").unwrap();
        assert_eq!(
            r.set_from("5"),
            Err(LineError::Dup),
            "line - sets the upper bound"
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["145", "100-200", "-100", "100-", "-", "0"] {
            let r = parse(text).unwrap();
            assert_eq!(parse(&r.to_string()), Ok(r), "{text}");
        }
    }
}
