//! From a request body to queries, in the kernel's order of checks.
//!
//! The order decides which error a bad query reports, so it follows
//! lib/dynamic_debug.c step by step:
//!
//! 1. size (`>= 4096` bytes: `E_TOO_BIG`), then UTF-8 (`E_BAD_ENCODING`);
//! 2. split at every `;` and newline, skip empty and `#` pieces (lexer.rs);
//! 3. per word, left to right: an unclosed quote, then the 16th word
//!    (`ddebug_tokenize` checks the quote before the count);
//! 4. the flags word (the last word) first, so its errors hide the rest
//!    (`ddebug_exec_query`);
//! 5. an odd number of words before it (`ddebug_parse_query`);
//! 6. pairs left to right; within a pair: unknown keyword, negation
//!    legality, repeated keyword, value (`ddebug_parse_query`'s order, with
//!    the negation check added before the repeat check).
//!
//! The first bad step ends that query; the other queries are still parsed,
//! so the caller gets one error per bad query and applies nothing.

use crate::error::{ErrorKind, QueryError};
use crate::flags::{FlagOp, flag_word_error};
use crate::glob::Glob;
use crate::lexer::{self, Word};
use crate::lines::{LineError, LineRange};
use crate::query::{FormatPattern, Negatable, Query};
use crate::{MAX_BODY, MAX_WORDS};

/// Parses a request body into its queries, or returns every error.
///
/// All-or-nothing: `Ok` holds every non-skipped query in body order;
/// `Err` holds one error per bad query (or one error for a body that is too
/// big or not UTF-8), ordered by query. An empty body, or one with only
/// blanks and comments, is `Ok(vec![])`. Never panics, whatever the bytes.
///
/// # Examples
///
/// ```
/// let queries = dynkey_query::parse(b"module !virtio* +p; func e1000_open =pmf").unwrap();
/// assert_eq!(queries.len(), 2);
/// assert_eq!(queries[1].offset(), 20);
///
/// let errors = dynkey_query::parse(b"module params +p\nmod bar +p").unwrap_err();
/// assert_eq!((errors[0].query, errors[0].offset), (1, 17));
/// assert_eq!(errors[0].category(), "E_UNKNOWN_KEYWORD");
/// ```
pub fn parse(body: &[u8]) -> Result<Vec<Query>, Vec<QueryError>> {
    if body.len() >= MAX_BODY {
        let message = format!(
            "body of {} bytes is too big at byte {}; expected fewer than {MAX_BODY} bytes",
            body.len(),
            MAX_BODY - 1
        );
        return Err(vec![QueryError::new(
            0,
            MAX_BODY - 1,
            ErrorKind::TooBig,
            message,
        )]);
    }
    let text = std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        let byte = body.get(at).copied().unwrap_or_default();
        let message = format!(
            "byte 0x{byte:02x} at byte {at} is not UTF-8; expected the body to be UTF-8 text"
        );
        vec![QueryError::new(0, at, ErrorKind::BadEncoding, message)]
    })?;
    parse_text(text)
}

/// [`parse`] without the size limit, for text already known to be UTF-8.
pub(crate) fn parse_text(text: &str) -> Result<Vec<Query>, Vec<QueryError>> {
    let pieces = lexer::split(text).map_err(|at| {
        let message = format!(
            "the tokeniser stopped at byte {at}; expected it to accept any text (this is a bug)"
        );
        vec![QueryError::new(0, at, ErrorKind::Tokenize, message)]
    })?;
    let mut queries = Vec::with_capacity(pieces.len());
    let mut errors = Vec::new();
    for (index, words) in pieces.iter().enumerate() {
        match build(index, words) {
            Ok(q) => queries.push(q),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(queries)
    } else {
        Err(errors)
    }
}

/// The six keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Func,
    File,
    Module,
    Format,
    Line,
    Class,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Keyword> {
        Some(match word {
            "func" => Keyword::Func,
            "file" => Keyword::File,
            "module" => Keyword::Module,
            "format" => Keyword::Format,
            "line" => Keyword::Line,
            "class" => Keyword::Class,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Keyword::Func => "func",
            Keyword::File => "file",
            Keyword::Module => "module",
            Keyword::Format => "format",
            Keyword::Line => "line",
            Keyword::Class => "class",
        }
    }
}

/// One query from its words (at least one).
fn build(index: usize, tokens: &[Word<'_>]) -> Result<Query, QueryError> {
    for (i, w) in tokens.iter().enumerate() {
        if w.unclosed {
            let quote = w.text.chars().next().unwrap_or('"');
            let message = format!(
                "unclosed quote {quote:?} at byte {} in {:?}; expected a closing {quote:?} before the end of the query (a ; or newline ends a query, even inside quotes)",
                w.offset, w.text
            );
            return Err(QueryError::new(
                index,
                w.offset,
                ErrorKind::UnclosedQuote,
                message,
            ));
        }
        if i >= MAX_WORDS {
            let message = format!(
                "too many words: word {} {:?} at byte {}; expected at most {MAX_WORDS} words per query",
                i + 1,
                w.text,
                w.offset
            );
            return Err(QueryError::new(
                index,
                w.offset,
                ErrorKind::TooManyWords,
                message,
            ));
        }
    }
    let (Some(first), Some((flags_word, pairs))) = (tokens.first(), tokens.split_last()) else {
        let message = "query with no word; expected at least a flags word".to_owned();
        return Err(QueryError::new(index, 0, ErrorKind::Tokenize, message));
    };
    let op = FlagOp::parse_word(flags_word.text)
        .map_err(|e| flag_word_error(index, flags_word.offset, flags_word.text, e))?;
    if let (true, Some(lonely)) = (pairs.len() % 2 == 1, pairs.last()) {
        let message = format!(
            "word {:?} at byte {} has no value; expected keyword/value pairs before the flags word {:?}",
            lonely.text, lonely.offset, flags_word.text
        );
        return Err(QueryError::new(
            index,
            lonely.offset,
            ErrorKind::OddPairs,
            message,
        ));
    }
    let mut query = Query {
        index,
        offset: first.offset,
        op,
        module: None,
        file: None,
        func: None,
        format: None,
        lines: LineRange::default(),
        class: None,
    };
    for pair in pairs.chunks_exact(2) {
        if let [keyword, value] = pair {
            apply_pair(&mut query, keyword, value)?;
        }
    }
    Ok(query)
}

/// Applies one `keyword value` pair, checking in order: keyword, negation,
/// repeat, value.
fn apply_pair(q: &mut Query, kw: &Word<'_>, value: &Word<'_>) -> Result<(), QueryError> {
    let index = q.index;
    let Some(keyword) = Keyword::from_word(kw.text) else {
        let message = format!(
            "unknown keyword {:?} at byte {}; expected one of file, func, module, format, line, class",
            kw.text, kw.offset
        );
        return Err(QueryError::new(
            index,
            kw.offset,
            ErrorKind::UnknownKeyword,
            message,
        ));
    };
    let (negated, text) = negation(index, keyword, value)?;
    let dup = |previous: &dyn std::fmt::Display| {
        let message = format!(
            "{} given twice: {:?} at byte {} after {previous}; expected each keyword at most once per query",
            keyword.name(),
            value.text,
            kw.offset
        );
        QueryError::new(index, kw.offset, ErrorKind::DupKeyword, message)
    };
    match keyword {
        Keyword::Module => {
            if let Some(prev) = &q.module {
                return Err(dup(&quoted(prev.pattern.as_str())));
            }
            q.module = Some(Negatable {
                negated,
                pattern: Glob::new(text),
            });
        }
        Keyword::Func => {
            if let Some(prev) = &q.func {
                return Err(dup(&quoted(prev.pattern.as_str())));
            }
            q.func = Some(Negatable {
                negated,
                pattern: Glob::new(text),
            });
        }
        Keyword::Format => {
            if q.format.is_some() {
                return Err(dup(&"an earlier format"));
            }
            q.format = Some(Negatable {
                negated,
                pattern: FormatPattern::from_value(text),
            });
        }
        Keyword::Class => {
            if let Some(prev) = &q.class {
                return Err(dup(&quoted(prev)));
            }
            q.class = Some(text.to_owned());
        }
        Keyword::Line => set_lines(q, kw, value, text)?,
        Keyword::File => {
            if let Some(prev) = &q.file {
                return Err(dup(&quoted(prev.pattern.as_str())));
            }
            let (path, tail) = match text.split_once(':') {
                Some((path, tail)) => (path, Some(tail)),
                None => (text, None),
            };
            q.file = Some(Negatable {
                negated,
                pattern: Glob::new(path),
            });
            match tail {
                None => {}
                Some(tail)
                    if tail.starts_with(|c: char| c.is_alphabetic() || c == '*' || c == '?') =>
                {
                    if let Some(prev) = &q.func {
                        let message = format!(
                            "func given twice: by file {:?} at byte {} after func {:?}; expected a function either in func or in a file :tail",
                            value.text,
                            kw.offset,
                            prev.pattern.as_str()
                        );
                        return Err(QueryError::new(
                            index,
                            kw.offset,
                            ErrorKind::DupKeyword,
                            message,
                        ));
                    }
                    q.func = Some(Negatable {
                        negated: false,
                        pattern: Glob::new(tail),
                    });
                }
                Some(tail) => set_lines(q, kw, value, tail)?,
            }
        }
    }
    Ok(())
}

fn quoted(text: &str) -> String {
    format!("{text:?}")
}

/// The `!` rules: only on module, file, func, format; once; not on a file
/// with a `:` tail. Returns whether the value is negated and its pattern.
fn negation<'a>(
    index: usize,
    keyword: Keyword,
    value: &Word<'a>,
) -> Result<(bool, &'a str), QueryError> {
    let Some(rest) = value.text.strip_prefix('!') else {
        return Ok((false, value.text));
    };
    let why = if matches!(keyword, Keyword::Line | Keyword::Class) {
        format!(
            "expected ! only on module, file, func or format, not on {}",
            keyword.name()
        )
    } else if rest.starts_with('!') {
        "expected at most one leading !".to_owned()
    } else if keyword == Keyword::File && rest.contains(':') {
        "expected a negated file without a :function or :lines tail (write the tail as a separate func or line)".to_owned()
    } else {
        return Ok((true, rest));
    };
    let message = format!(
        "bad negation {:?} for {} at byte {}; {why}",
        value.text,
        keyword.name(),
        value.offset
    );
    Err(QueryError::new(
        index,
        value.offset,
        ErrorKind::BadNegation,
        message,
    ))
}

/// Sets the line range from `text` (the value of `line`, or a file tail).
fn set_lines(q: &mut Query, kw: &Word<'_>, value: &Word<'_>, text: &str) -> Result<(), QueryError> {
    let index = q.index;
    let prev = q.lines;
    q.lines.set_from(text).map_err(|e| match e {
        LineError::Dup => {
            let message = format!(
                "line range given twice: {} {:?} at byte {} after line {prev}; expected one line or file :range per query",
                kw.text, value.text, kw.offset
            );
            QueryError::new(index, kw.offset, ErrorKind::DupLine, message)
        }
        LineError::BadNumber(part) => {
            let message = format!(
                "bad line number {part:?} in {:?} at byte {}; expected a decimal number up to 4294967295, or a range N-M, N-, -M or -",
                value.text, value.offset
            );
            QueryError::new(index, value.offset, ErrorKind::BadLineno, message)
        }
        LineError::Order { first, last } => {
            let message = format!(
                "line range {:?} at byte {} ends before it starts ({last} < {first}); expected first <= last",
                value.text, value.offset
            );
            QueryError::new(index, value.offset, ErrorKind::LineOrder, message)
        }
    })
}

#[cfg(test)]
mod tests;
