//! From a body's text to queries' words, through the pest grammar.
//!
//! `dyndbg.pest` cuts the body at every `;` and newline (quotes do not
//! protect them) and each piece into words; this file keeps the words with
//! their byte offsets in the body and drops the pieces with no word (empty,
//! or starting with `#`: the kernel skips those and does not count them as
//! queries). Word-level errors (an unclosed quote, a 16th word) are left to
//! the parser, which checks them in the kernel's order.

use pest::Parser;
use pest::iterators::Pair;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "dyndbg.pest"]
struct Grammar;

/// One word of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word<'a> {
    /// The text with quotes removed (for an unclosed quote: the rest of the
    /// piece, opening quote included).
    pub text: &'a str,
    /// Byte offset of the word's first byte in the body (the opening quote
    /// of a quoted word).
    pub offset: usize,
    /// An opening quote that is never closed.
    pub unclosed: bool,
}

/// The words of one non-skipped piece, comment dropped; at least one.
pub(crate) type Piece<'a> = Vec<Word<'a>>;

/// Splits `text` (a whole body) into its non-skipped pieces. Offsets are
/// relative to `text`. `Err` carries the offset pest stopped at, which the
/// grammar never produces (it accepts every string).
pub(crate) fn split(text: &str) -> Result<Vec<Piece<'_>>, usize> {
    let bodies = Grammar::parse(Rule::body, text).map_err(|e| match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((p, _)) => p,
    })?;
    let mut pieces = Vec::new();
    let children = bodies.flat_map(|body| body.into_inner());
    for pair in children.filter(|p| p.as_rule() == Rule::piece) {
        let words: Piece<'_> = pair.into_inner().filter_map(word).collect();
        if !words.is_empty() {
            pieces.push(words);
        }
    }
    Ok(pieces)
}

/// The word a token stands for; `None` for a comment.
fn word(pair: Pair<'_, Rule>) -> Option<Word<'_>> {
    let offset = pair.as_span().start();
    let whole = pair.as_str();
    let (text, unclosed) = match pair.as_rule() {
        Rule::bare => (whole, false),
        Rule::dquoted | Rule::squoted => {
            // The inner text rule is the only child; an empty quoted word
            // still has it (matching nothing).
            let inner = pair.into_inner().next().map_or("", |p| p.as_str());
            (inner, false)
        }
        Rule::unclosed => (whole, true),
        _ => return None,
    };
    Some(Word {
        text,
        offset,
        unclosed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Vec<(&str, usize, bool)>> {
        split(text)
            .unwrap()
            .into_iter()
            .map(|p| {
                p.into_iter()
                    .map(|w| (w.text, w.offset, w.unclosed))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn splits_at_semicolon_and_newline_even_inside_quotes() {
        assert_eq!(
            words("format \"a;b\" +p"),
            vec![
                vec![("format", 0, false), ("\"a", 7, true)],
                vec![("b\"", 10, false), ("+p", 13, false)]
            ]
        );
        assert_eq!(words("a b\nc d").len(), 2);
    }

    #[test]
    fn skips_empty_and_comment_pieces() {
        assert_eq!(words(" ;\t\n# x\n  #z\n;"), Vec::<Vec<_>>::new());
        assert_eq!(
            words("# x ; y"),
            vec![vec![("y", 6, false)]],
            "a ; ends a comment too"
        );
        assert_eq!(words("module params =p  # enable params").len(), 1);
        assert_eq!(words("module params =p  # enable params")[0].len(), 3);
    }

    #[test]
    fn quotes_only_at_word_start() {
        assert_eq!(
            words(r"ARGS:\040'%s' x"),
            vec![vec![(r"ARGS:\040'%s'", 0, false), ("x", 14, false)]]
        );
        assert_eq!(
            words("\"ab\"cd"),
            vec![vec![("ab", 0, false), ("cd", 4, false)]]
        );
        assert_eq!(
            words("'a \"b' \"\""),
            vec![vec![("a \"b", 0, false), ("", 7, false)]]
        );
    }

    #[test]
    fn hash_only_at_word_start() {
        assert_eq!(words("a#b #c d"), vec![vec![("a#b", 0, false)]]);
        assert_eq!(words("\"ab\"#c"), vec![vec![("ab", 0, false)]]);
    }

    #[test]
    fn whitespace_set_is_ascii_with_vt() {
        assert_eq!(words("a\x0bb\x0cc\rd\te f").len(), 1);
        assert_eq!(words("a\x0bb\x0cc\rd\te f")[0].len(), 6);
        assert_eq!(words("a\u{a0}b")[0].len(), 1, "NBSP is not whitespace");
        assert_eq!(words("a%b,c")[0].len(), 1, "% and , are not separators");
    }

    #[test]
    fn unclosed_quote_runs_to_the_end_of_the_piece() {
        assert_eq!(
            words("x 'abc"),
            vec![vec![("x", 0, false), ("'abc", 2, true)]]
        );
    }
}
