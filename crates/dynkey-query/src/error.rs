//! The crate's errors: one per bad query, with where and why.
//!
//! A request body is all-or-nothing, so the caller needs every bad query at
//! once, each with its category (the kernel's error names, for clients that
//! switch on them), the 0-based index among non-skipped queries, the byte
//! offset of the offending word in the body, and a message a person can act
//! on. The kind is a plain `Copy` enum so callers can match on it; the
//! message carries the offending value.
//!
//! The offset of each category is pinned in [`QueryError`]'s docs and by
//! the unit tests in `parse/tests.rs`.

use std::fmt;

/// What went wrong, as a category a program can switch on.
///
/// [`ErrorKind::category`] gives the wire name (`E_UNKNOWN_KEYWORD`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The body is 4096 bytes or longer (`E_TOO_BIG`, HTTP 413).
    TooBig,
    /// The body is not UTF-8 (`E_BAD_ENCODING`).
    BadEncoding,
    /// A word opens a quote that the query never closes (`E_UNCLOSED_QUOTE`).
    UnclosedQuote,
    /// A query has more than [`MAX_WORDS`](crate::MAX_WORDS) words (`E_TOO_MANY_WORDS`).
    TooManyWords,
    /// The flags word does not start with `+`, `-` or `=` (`E_BAD_FLAG_OP`).
    BadFlagOp,
    /// The flags word holds a character outside `p m f l t s _` (`E_UNKNOWN_FLAG`).
    UnknownFlag,
    /// The words before the flags word are not keyword/value pairs (`E_ODD_PAIRS`).
    OddPairs,
    /// A keyword is not one of the six (`E_UNKNOWN_KEYWORD`).
    UnknownKeyword,
    /// A keyword other than `line` is given twice, directly or through a
    /// `file` `:function` tail (`E_DUP_KEYWORD`).
    DupKeyword,
    /// A line range is given twice, directly or through a `file` `:range`
    /// tail (`E_DUP_LINE`).
    DupLine,
    /// A line number is not decimal or does not fit in 32 bits (`E_BAD_LINENO`).
    BadLineno,
    /// A line range ends before it starts (`E_LINE_ORDER`).
    LineOrder,
    /// A `!` where negation is not allowed: on `line` or `class`, doubled,
    /// or on a `file` with a `:` tail (`E_BAD_NEGATION`).
    BadNegation,
    /// The tokeniser rejected a query (`E_TOKENIZE`). The grammar accepts
    /// every string, so this is never produced (the property tests and the
    /// fuzzer check it); it exists so that a grammar bug is an error, not a
    /// panic.
    Tokenize,
}

impl ErrorKind {
    /// The wire name of the category, e.g. `"E_UNKNOWN_KEYWORD"`.
    pub fn category(self) -> &'static str {
        match self {
            ErrorKind::TooBig => "E_TOO_BIG",
            ErrorKind::BadEncoding => "E_BAD_ENCODING",
            ErrorKind::UnclosedQuote => "E_UNCLOSED_QUOTE",
            ErrorKind::TooManyWords => "E_TOO_MANY_WORDS",
            ErrorKind::BadFlagOp => "E_BAD_FLAG_OP",
            ErrorKind::UnknownFlag => "E_UNKNOWN_FLAG",
            ErrorKind::OddPairs => "E_ODD_PAIRS",
            ErrorKind::UnknownKeyword => "E_UNKNOWN_KEYWORD",
            ErrorKind::DupKeyword => "E_DUP_KEYWORD",
            ErrorKind::DupLine => "E_DUP_LINE",
            ErrorKind::BadLineno => "E_BAD_LINENO",
            ErrorKind::LineOrder => "E_LINE_ORDER",
            ErrorKind::BadNegation => "E_BAD_NEGATION",
            ErrorKind::Tokenize => "E_TOKENIZE",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.category())
    }
}

/// One bad query (or a bad body): category, position and message.
///
/// `Display` prints the message, e.g. `unknown keyword "mod" at byte 0;
/// expected one of file, func, module, format, line, class`.
///
/// # Offsets
///
/// Which byte `offset` points at, per category:
///
/// | category | query | offset |
/// |---|---|---|
/// | `E_TOO_BIG` | 0 | 4095 |
/// | `E_BAD_ENCODING` | 0 | the first byte that is not UTF-8 |
/// | `E_UNCLOSED_QUOTE` | its query | the opening quote |
/// | `E_TOO_MANY_WORDS` | its query | the 16th word (its opening quote if quoted) |
/// | `E_BAD_FLAG_OP` | its query | the flags word (the last word) |
/// | `E_UNKNOWN_FLAG` | its query | the flags word, not the bad character (the message names it) |
/// | `E_ODD_PAIRS` | its query | the word left without a value (the one before the flags word) |
/// | `E_UNKNOWN_KEYWORD` | its query | the keyword |
/// | `E_BAD_NEGATION` | its query | the value |
/// | `E_DUP_KEYWORD` | its query | the keyword of the pair that repeats (the second `func`; or `file` when its `:function` tail repeats `func`) |
/// | `E_DUP_LINE` | its query | the keyword of the pair that repeats (the second `line`; or `file` when its `:range` tail repeats a range) |
/// | `E_BAD_LINENO` | its query | the value (of `line`, or of `file` for a tail) |
/// | `E_LINE_ORDER` | its query | the value (of `line`, or of `file` for a tail) |
///
/// A quoted word's offset is that of its opening quote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// 0-based index of the query among the non-skipped queries of the body
    /// (0 for `E_TOO_BIG` and `E_BAD_ENCODING`).
    pub query: usize,
    /// Byte offset in the body of the offending word's first byte (see the
    /// table in the module docs).
    pub offset: usize,
    /// The category.
    pub kind: ErrorKind,
    message: String,
}

impl QueryError {
    pub(crate) fn new(query: usize, offset: usize, kind: ErrorKind, message: String) -> Self {
        QueryError {
            query,
            offset,
            kind,
            message,
        }
    }

    /// The wire name of the category, e.g. `"E_UNKNOWN_KEYWORD"`.
    pub fn category(&self) -> &'static str {
        self.kind.category()
    }

    /// The human message (the same text as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A class param value that is not a number `kstrtoul` would accept
/// (category `E_BAD_PARAM`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad param value {value:?}: {reason}; expected a number: 0x hex, 0 octal or decimal, with at most one trailing newline"
)]
pub struct ParamError {
    value: String,
    reason: &'static str,
}

impl ParamError {
    pub(crate) fn new(raw: &[u8], reason: &'static str) -> Self {
        ParamError {
            value: String::from_utf8_lossy(raw).into_owned(),
            reason,
        }
    }

    /// Always `"E_BAD_PARAM"`.
    pub fn category(&self) -> &'static str {
        "E_BAD_PARAM"
    }

    /// The human message (the same text as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_the_wire_names() {
        let all = [
            (ErrorKind::TooBig, "E_TOO_BIG"),
            (ErrorKind::BadEncoding, "E_BAD_ENCODING"),
            (ErrorKind::UnclosedQuote, "E_UNCLOSED_QUOTE"),
            (ErrorKind::TooManyWords, "E_TOO_MANY_WORDS"),
            (ErrorKind::BadFlagOp, "E_BAD_FLAG_OP"),
            (ErrorKind::UnknownFlag, "E_UNKNOWN_FLAG"),
            (ErrorKind::OddPairs, "E_ODD_PAIRS"),
            (ErrorKind::UnknownKeyword, "E_UNKNOWN_KEYWORD"),
            (ErrorKind::DupKeyword, "E_DUP_KEYWORD"),
            (ErrorKind::DupLine, "E_DUP_LINE"),
            (ErrorKind::BadLineno, "E_BAD_LINENO"),
            (ErrorKind::LineOrder, "E_LINE_ORDER"),
            (ErrorKind::BadNegation, "E_BAD_NEGATION"),
        ];
        for (kind, name) in all {
            assert_eq!(kind.category(), name, "category of {kind:?}");
        }
    }

    #[test]
    fn param_error_names_the_value() {
        let e = ParamError::new(b"abc", "not a number");
        assert_eq!(e.category(), "E_BAD_PARAM");
        assert!(
            e.to_string()
                .starts_with("bad param value \"abc\": not a number;")
        );
    }
}
