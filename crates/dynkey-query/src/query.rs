//! The parsed form of one query, and its canonical text.
//!
//! A [`Query`] holds one optional predicate per keyword plus the flag
//! operation. A `file` value's `:tail` is folded into `func` or the line
//! range at parse time, as the kernel does, so a query has one function
//! pattern and one line range whichever way they were written.
//!
//! `Display` prints a canonical text (keywords in a fixed order, quotes only
//! where needed, `format` bytes re-escaped) that parses back to an equal
//! query; the property tests and the fuzzer check that round trip.

use std::fmt::{self, Write as _};

use crate::escape::{escape_format, unescape_format};
use crate::flags::FlagOp;
use crate::glob::Glob;
use crate::lines::LineRange;

/// A keyword's pattern, possibly negated with a leading `!`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Negatable<T> {
    /// True when the value started with `!`: the keyword's test is inverted.
    pub negated: bool,
    /// The pattern, without the `!`.
    pub pattern: T,
}

impl<T> Negatable<T> {
    /// Applies the negation to the pattern's own verdict.
    pub fn verdict(&self, pattern_matches: bool) -> bool {
        pattern_matches != self.negated
    }
}

/// A `format` pattern: unescaped bytes, found anywhere in the format, or at
/// its start when the unescaped value began with `^`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FormatPattern {
    anchored: bool,
    needle: Vec<u8>,
}

impl FormatPattern {
    /// From an unescaped value: a leading `^` (written or escaped, as in the
    /// kernel, which looks after unescaping) asks for a prefix match.
    pub fn new(unescaped: &[u8]) -> FormatPattern {
        match unescaped.split_first() {
            Some((b'^', rest)) => FormatPattern {
                anchored: true,
                needle: rest.to_vec(),
            },
            _ => FormatPattern {
                anchored: false,
                needle: unescaped.to_vec(),
            },
        }
    }

    /// From a value as written in a query (after quote removal and `!`),
    /// unescaping it first as the kernel's `string_unescape_inplace` does
    /// (`\n \r \t \v \f`, 1-3 octal digits, `\" \\ \a \e`).
    pub fn from_value(value: &str) -> FormatPattern {
        FormatPattern::new(&unescape_format(value))
    }

    /// True for a `^` (prefix) pattern.
    pub fn is_anchored(&self) -> bool {
        self.anchored
    }

    /// The bytes searched for (without the `^`).
    pub fn needle(&self) -> &[u8] {
        &self.needle
    }

    /// True when `format` starts with (anchored) or contains the needle.
    /// An empty needle matches every format.
    pub fn matches(&self, format: &[u8]) -> bool {
        let needle = self.needle.as_slice();
        if self.anchored {
            format.starts_with(needle)
        } else {
            match needle.split_first() {
                None => true,
                Some((&first, rest)) => format
                    .iter()
                    .enumerate()
                    .filter(|&(_, &b)| b == first)
                    .any(|(i, _)| {
                        format
                            .get(i + 1..)
                            .is_some_and(|tail| tail.starts_with(rest))
                    }),
            }
        }
    }
}

/// One parsed query: where it was, what it selects, what it does.
///
/// Equality compares what the query selects and does, not where it was
/// written ([`Query::index`] and [`Query::offset`] are ignored), like
/// spans in a syntax tree.
#[derive(Debug, Clone)]
pub struct Query {
    pub(crate) index: usize,
    pub(crate) offset: usize,
    pub(crate) op: FlagOp,
    pub(crate) module: Option<Negatable<Glob>>,
    pub(crate) file: Option<Negatable<Glob>>,
    pub(crate) func: Option<Negatable<Glob>>,
    pub(crate) format: Option<Negatable<FormatPattern>>,
    pub(crate) lines: LineRange,
    pub(crate) class: Option<String>,
}

impl PartialEq for Query {
    fn eq(&self, other: &Query) -> bool {
        self.op == other.op
            && self.module == other.module
            && self.file == other.file
            && self.func == other.func
            && self.format == other.format
            && self.lines == other.lines
            && self.class == other.class
    }
}

impl Eq for Query {}

impl Query {
    /// 0-based index of the query among the body's non-skipped queries.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Byte offset in the body of the query's first word.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The flag operation (the flags word).
    pub fn op(&self) -> FlagOp {
        self.op
    }

    /// The `module` pattern, if given.
    pub fn module(&self) -> Option<&Negatable<Glob>> {
        self.module.as_ref()
    }

    /// The `file` path pattern (without its `:tail`), if given.
    pub fn file(&self) -> Option<&Negatable<Glob>> {
        self.file.as_ref()
    }

    /// The function pattern, from `func` or a `file` `:function` tail.
    pub fn func(&self) -> Option<&Negatable<Glob>> {
        self.func.as_ref()
    }

    /// The `format` pattern, if given.
    pub fn format(&self) -> Option<&Negatable<FormatPattern>> {
        self.format.as_ref()
    }

    /// The line range, from `line` or a `file` `:range` tail; `None` when it
    /// restricts nothing.
    pub fn lines(&self) -> Option<LineRange> {
        (!self.lines.is_unbounded()).then_some(self.lines)
    }

    /// The `class` name, if given. Without one, only unclassed sites match.
    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }
}

/// Appends `text` as one word that the tokeniser reads back as `text`:
/// bare when possible, else quoted with a quote character it does not hold.
pub(crate) fn push_word(out: &mut String, text: &str) {
    let needs_quotes = text.is_empty()
        || text.starts_with(['"', '\'', '#'])
        || text.contains([' ', '\t', '\u{0b}', '\u{0c}', '\r', '\n']);
    if !needs_quotes {
        out.push_str(text);
    } else {
        let quote = if text.contains('"') { '\'' } else { '"' };
        out.push(quote);
        out.push_str(text);
        out.push(quote);
    }
}

fn push_glob(out: &mut String, keyword: &str, value: &Negatable<Glob>) {
    out.push_str(keyword);
    out.push(' ');
    if value.negated {
        let mut word = String::with_capacity(value.pattern.as_str().len() + 1);
        word.push('!');
        word.push_str(value.pattern.as_str());
        push_word(out, &word);
    } else {
        push_word(out, value.pattern.as_str());
    }
    out.push(' ');
}

impl fmt::Display for Query {
    /// Canonical text: `module M file F func X format Y line R class C OP`,
    /// absent keywords left out. It parses back to an equal [`Query`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        if let Some(m) = &self.module {
            push_glob(&mut out, "module", m);
        }
        if let Some(file) = &self.file {
            push_glob(&mut out, "file", file);
        }
        if let Some(func) = &self.func {
            push_glob(&mut out, "func", func);
        }
        if let Some(format) = &self.format {
            out.push_str("format ");
            let mut word = String::new();
            if format.negated {
                word.push('!');
            }
            if format.pattern.anchored {
                word.push('^');
            }
            escape_format(&format.pattern.needle, &mut word);
            push_word(&mut out, &word);
            out.push(' ');
        }
        if self.lines.is_set() {
            let _ = write!(out, "line {} ", self.lines);
        }
        if let Some(class) = &self.class {
            out.push_str("class ");
            push_word(&mut out, class);
            out.push(' ');
        }
        out.push_str(&self.op.to_string());
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_substring_and_prefix() {
        let p = FormatPattern::new(b"link");
        assert!(p.matches(b"link up") && p.matches(b"a link") && !p.matches(b"lin"));
        let p = FormatPattern::new(b"^link");
        assert!(p.matches(b"link up") && !p.matches(b"a link"));
        assert!(FormatPattern::new(b"").matches(b""), "empty matches all");
        assert!(
            FormatPattern::new(b"^").matches(b"x"),
            "empty prefix matches all"
        );
        assert!(FormatPattern::new(b"aab").matches(b"aaab"));
        assert!(
            FormatPattern::new(b"\xff").matches(b"a\xffb"),
            "bytes, not text"
        );
        assert!(
            FormatPattern::from_value(r"\136x").is_anchored(),
            "^ is seen after unescaping"
        );
    }

    #[test]
    fn push_word_quotes_only_when_needed() {
        let word = |t: &str| {
            let mut s = String::new();
            push_word(&mut s, t);
            s
        };
        assert_eq!(word("abc"), "abc");
        assert_eq!(word(""), "\"\"");
        assert_eq!(word("a b"), "\"a b\"");
        assert_eq!(word("a\"b c"), "'a\"b c'");
        assert_eq!(word("\"x"), "'\"x'");
        assert_eq!(word("#x"), "\"#x\"");
        assert_eq!(word("a#'\"b"), "a#'\"b");
    }

    #[test]
    fn negation_verdict() {
        let n = Negatable {
            negated: true,
            pattern: (),
        };
        assert!(!n.verdict(true) && n.verdict(false));
    }
}
