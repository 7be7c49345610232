//! Parser tests: the position of every error category, the kernel's order
//! of checks, the decided quirks, and the property tests (no panic, offsets
//! inside the body, print/parse round trip).

use super::*;
use crate::Flags;
use proptest::prelude::*;

/// The only error of a body, as (query, offset, kind).
fn err(body: &str) -> (usize, usize, ErrorKind) {
    err_bytes(body.as_bytes())
}

fn err_bytes(body: &[u8]) -> (usize, usize, ErrorKind) {
    let errors = parse(body).expect_err("body must be rejected");
    assert_eq!(errors.len(), 1, "one error expected: {errors:?}");
    let e = &errors[0];
    (e.query, e.offset, e.kind)
}

fn ok(body: &str) -> Vec<Query> {
    parse(body.as_bytes()).unwrap_or_else(|e| panic!("{body:?} must parse: {e:?}"))
}

fn one(body: &str) -> Query {
    let mut v = ok(body);
    assert_eq!(v.len(), 1, "{body:?} is one query");
    v.remove(0)
}

use ErrorKind::*;

// ---- offsets, one category at a time ---------------------------------

#[test]
fn offset_too_big_is_query_0_byte_4095() {
    let body = vec![b' '; MAX_BODY];
    assert_eq!(err_bytes(&body), (0, 4095, TooBig));
    let mut big = b"+p\n".repeat(2000);
    big.push(0xff);
    assert_eq!(
        err_bytes(&big),
        (0, 4095, TooBig),
        "size is checked before encoding"
    );
    let just_fits = vec![b'#'; MAX_BODY - 1];
    assert_eq!(parse(&just_fits), Ok(vec![]), "4095 bytes are accepted");
}

#[test]
fn offset_bad_encoding_is_the_first_invalid_byte() {
    assert_eq!(err_bytes(b"module \xff +p"), (0, 7, BadEncoding));
    assert_eq!(
        err_bytes(b"+p; module a\xc3 +p"),
        (0, 12, BadEncoding),
        "query is 0: checked before splitting"
    );
    assert_eq!(
        err_bytes(b"+p # \xa0"),
        (0, 5, BadEncoding),
        "even inside a comment"
    );
}

#[test]
fn offset_unclosed_quote_is_the_opening_quote() {
    assert_eq!(err("module foo format \"parse +p"), (0, 18, UnclosedQuote));
    assert_eq!(err("+p\nformat 'x +p"), (1, 10, UnclosedQuote));
    let e = &parse(b"format 'x +p").unwrap_err()[0];
    assert!(
        e.message()
            .starts_with("unclosed quote '\\'' at byte 7 in \"'x +p\""),
        "{e}"
    );
}

#[test]
fn offset_too_many_words_is_the_16th_word() {
    assert_eq!(
        err("a b c d e f g h i j k l m n o p +p"),
        (0, 30, TooManyWords)
    );
    assert_eq!(
        err("a b c d e f g h i j k l m n o \"p q\" +p"),
        (0, 30, TooManyWords),
        "quoted: its quote"
    );
    let fifteen = "module a file b func c format d line 1 class e module f +p";
    assert_eq!(err(fifteen).2, DupKeyword, "15 words pass the limit");
}

#[test]
fn offset_bad_flag_op_is_the_flags_word() {
    assert_eq!(err("module foo %pm"), (0, 11, BadFlagOp));
    assert_eq!(err("module virtio_net"), (0, 7, BadFlagOp));
    assert_eq!(
        err("module params #+p"),
        (0, 7, BadFlagOp),
        "the comment swallows the flags"
    );
    assert_eq!(
        err("+p;module a \"\""),
        (1, 12, BadFlagOp),
        "an empty flags word"
    );
}

#[test]
fn offset_unknown_flag_is_the_flags_word_not_the_character() {
    assert_eq!(err("mod bar +foo"), (0, 8, UnknownFlag));
    assert_eq!(err("+P"), (0, 0, UnknownFlag));
    assert_eq!(err("module x '+px'"), (0, 9, UnknownFlag));
    let e = &parse(b"mod bar +foo").unwrap_err()[0];
    assert!(
        e.message().contains("'o'") && e.message().contains("\"+foo\""),
        "{e}"
    );
}

#[test]
fn offset_odd_pairs_is_the_word_without_a_value() {
    assert_eq!(err("module foo line =_"), (0, 11, OddPairs));
    assert_eq!(err("\"\" +p"), (0, 0, OddPairs));
    assert_eq!(
        err("mod a b +p"),
        (0, 6, OddPairs),
        "odd pairs is checked before keywords"
    );
}

#[test]
fn offset_unknown_keyword_is_the_keyword() {
    assert_eq!(err("mod bar +p"), (0, 0, UnknownKeyword));
    assert_eq!(err("file svcsock.c wtf 1 +p"), (0, 15, UnknownKeyword));
    assert_eq!(err("line 1 - 30 +p"), (0, 7, UnknownKeyword));
    assert_eq!(err("function x +p"), (0, 0, UnknownKeyword));
    assert_eq!(
        err("module virtio_net +p % module e1000e +p"),
        (0, 18, UnknownKeyword)
    );
    let e = &parse(b"mod bar +p").unwrap_err()[0];
    assert_eq!(
        e.to_string(),
        "unknown keyword \"mod\" at byte 0; expected one of file, func, module, format, line, class"
    );
}

#[test]
fn offset_dup_keyword_is_the_repeating_keyword() {
    assert_eq!(err("func foo func bar =_"), (0, 9, DupKeyword));
    assert_eq!(err("class D2_CORE class D2_KMS +p"), (0, 14, DupKeyword));
    assert_eq!(
        err("file x.c:fn func bar +p"),
        (0, 12, DupKeyword),
        "func set by a file tail"
    );
    assert_eq!(
        err("func bar file x.c:fn +p"),
        (0, 9, DupKeyword),
        "a file tail after func"
    );
    assert_eq!(err("file a file b +p"), (0, 7, DupKeyword));
    assert_eq!(
        err("module \"\" module x +p"),
        (0, 10, DupKeyword),
        "an empty value still counts"
    );
    assert_eq!(err("format a format b +p"), (0, 9, DupKeyword));
    assert_eq!(
        err("module !a module !b +p"),
        (0, 10, DupKeyword),
        "negation does not lift the rule"
    );
}

#[test]
fn offset_dup_line_is_the_repeating_keyword() {
    assert_eq!(err("line 10 line 20 +l"), (0, 8, DupLine));
    assert_eq!(err("file virtio_net.c:120 line 145 +p"), (0, 22, DupLine));
    assert_eq!(err("line 5 file x.c:7 +p"), (0, 7, DupLine));
    assert_eq!(err("line - line 5 +p"), (0, 7, DupLine));
    assert_eq!(
        err("line 5 file x.c: +p"),
        (0, 7, DupLine),
        "kernel: an empty tail is still a range"
    );
}

#[test]
fn offset_bad_lineno_is_the_value() {
    assert_eq!(err("line 1x +p"), (0, 5, BadLineno));
    assert_eq!(err("line 4294967296 +p"), (0, 5, BadLineno));
    assert_eq!(err("line 1-2-3 +p"), (0, 5, BadLineno));
    assert_eq!(err("file x.c:1x +p"), (0, 5, BadLineno));
    assert_eq!(
        err("file x.c:_helper +p"),
        (0, 5, BadLineno),
        "a tail starting with _ is a range"
    );
}

#[test]
fn offset_line_order_is_the_value() {
    assert_eq!(err("line 100-10 +pf"), (0, 5, LineOrder));
    assert_eq!(err("file x.c:9-8 +p"), (0, 5, LineOrder));
}

#[test]
fn offset_bad_negation_is_the_value() {
    assert_eq!(err("line !100-200 +p"), (0, 5, BadNegation));
    assert_eq!(err("class !DRM_UT_KMS +p"), (0, 6, BadNegation));
    assert_eq!(err("module !!virtio* +p"), (0, 7, BadNegation));
    assert_eq!(err("format !!x +p"), (0, 7, BadNegation));
    assert_eq!(
        err("file !virtio_net.c:virtnet_poll +p"),
        (0, 5, BadNegation)
    );
    assert_eq!(
        err("file !x.c: +p"),
        (0, 5, BadNegation),
        "even an empty tail"
    );
    assert_eq!(
        err("file \"!x.c:10\" +p"),
        (0, 5, BadNegation),
        "quoted: its quote; ! seen after quote removal"
    );
    assert_eq!(
        err("module a module !!b +p"),
        (0, 16, BadNegation),
        "negation is checked before repeats"
    );
    assert_eq!(
        err("lin !x +p"),
        (0, 0, UnknownKeyword),
        "keyword is checked before negation"
    );
}

// ---- several errors, indexes, skipping ---------------------------------

#[test]
fn one_error_per_bad_query_with_its_index() {
    let errors = parse(b"format \"a;b\" +p").unwrap_err();
    let got: Vec<_> = errors.iter().map(|e| (e.query, e.offset, e.kind)).collect();
    assert_eq!(got, vec![(0, 7, UnclosedQuote), (1, 10, OddPairs)]);
    let errors = parse(b"mod a +p\n# skipped\n\n+p;  ;mod b +x").unwrap_err();
    let got: Vec<_> = errors.iter().map(|e| (e.query, e.offset, e.kind)).collect();
    assert_eq!(
        got,
        vec![(0, 0, UnknownKeyword), (2, 32, UnknownFlag)],
        "skipped pieces are not counted"
    );
}

#[test]
fn queries_carry_index_and_first_word_offset() {
    let qs = ok("  # c\n\t module params +p ;'module' y =_");
    assert_eq!(
        qs.iter()
            .map(|q| (q.index(), q.offset()))
            .collect::<Vec<_>>(),
        vec![(0, 8), (1, 26)]
    );
    assert_eq!(ok(""), vec![]);
    assert_eq!(ok(" \n;# only a comment"), vec![]);
}

#[test]
fn comments_and_skipped_words_do_not_count_toward_the_limit() {
    one("line 0 module a file b func c format d class e line 1 +p # more words here");
    assert_eq!(
        err("a b c d e f g h i j k l m n o 'p +p").2,
        UnclosedQuote,
        "quote checked before count"
    );
}

// ---- values ------------------------------------------------------------

#[test]
fn values_are_never_keywords_or_flags() {
    assert_eq!(
        one("func module +p").func().map(|f| f.pattern.as_str()),
        Some("module")
    );
    assert_eq!(
        one("func +p +p").func().map(|f| f.pattern.as_str()),
        Some("+p")
    );
}

#[test]
fn file_tail_forms() {
    let q = one("file x.c:fn* +p");
    assert_eq!(q.file().map(|f| f.pattern.as_str()), Some("x.c"));
    assert_eq!(q.func().map(|f| f.pattern.as_str()), Some("fn*"));
    let q = one("file x.c:10-20 +p");
    assert_eq!(
        q.lines(),
        Some(LineRange {
            first: 10,
            last: 20
        })
    );
    assert_eq!(one("file x.c: +p").lines(), None);
    assert_eq!(
        one("file x.c:?x +p").func().map(|f| f.pattern.as_str()),
        Some("?x")
    );
    assert_eq!(
        one("file x.c:é +p").func().map(|f| f.pattern.as_str()),
        Some("é"),
        "Latin-1 letters are letters"
    );
    assert_eq!(
        one("file a:b:c +p").func().map(|f| f.pattern.as_str()),
        Some("b:c"),
        "split at the first :"
    );
    assert_eq!(
        one("file x.c: line 5 +p").lines(),
        Some(LineRange { first: 5, last: 5 })
    );
}

#[test]
fn line_quirks() {
    assert_eq!(
        one("line 0 line 5 +p").lines(),
        Some(LineRange { first: 5, last: 5 })
    );
    assert_eq!(
        one("line +145 +p").lines(),
        Some(LineRange {
            first: 145,
            last: 145
        })
    );
    assert_eq!(one("line 0 +p").lines(), None);
}

#[test]
fn negation_is_seen_after_quotes_and_before_unescaping() {
    let q = one("module \"!virtio*\" format \\041 +p");
    assert!(
        q.module()
            .is_some_and(|m| m.negated && m.pattern.as_str() == "virtio*")
    );
    assert!(
        q.format()
            .is_some_and(|f| !f.negated && f.pattern.needle() == b"!")
    );
    let q = one("module ! format !^x +p");
    assert!(
        q.module()
            .is_some_and(|m| m.negated && m.pattern.as_str().is_empty())
    );
    assert!(
        q.format()
            .is_some_and(|f| f.negated && f.pattern.is_anchored())
    );
    let q = one("format !\\041x +p");
    assert!(
        q.format()
            .is_some_and(|f| f.negated && f.pattern.needle() == b"!x")
    );
}

#[test]
fn flags_words() {
    assert_eq!(one("=").op(), FlagOp::Set(Flags::EMPTY));
    assert_eq!(one("+pp").op(), FlagOp::Add(Flags::P));
    assert_eq!(one("-_").op(), FlagOp::Remove(Flags::EMPTY));
    assert_eq!(one("\tmodule\tparams\t+p\t").op(), FlagOp::Add(Flags::P));
    assert_eq!(
        one("module params +p\r").op(),
        FlagOp::Add(Flags::P),
        "CR is whitespace"
    );
}

#[test]
fn canonical_text() {
    let q = one("file 'a b.c:fn' line 3- format '^x\ty' class C module !m* =pmf");
    assert_eq!(
        q.to_string(),
        "module !m* file \"a b.c\" func fn format ^x\\011y line 3-4294967295 class C =pmf"
    );
    assert_eq!(one("+").to_string(), "+_");
    assert_eq!(
        one("module \"\" format '' +p").to_string(),
        "module \"\" format \"\" +p"
    );
}

// ---- properties --------------------------------------------------------

/// Words that exercise every branch: keywords, specials, negation, tails,
/// ranges, escapes, quotes.
fn word() -> impl Strategy<Value = String> {
    let pool = proptest::sample::select(vec![
        "module",
        "file",
        "func",
        "format",
        "line",
        "class",
        "mod",
        "+p",
        "-mf",
        "=_",
        "=",
        "+x",
        "!",
        "!!a",
        "!v*",
        "a",
        "virtio*",
        "x.c:fn",
        "x.c:10-20",
        "x.c:",
        "!x.c",
        "!x.c:1",
        "10",
        "-5",
        "5-",
        "-",
        "0",
        "1-2-3",
        "4294967296",
        "^pre",
        "\\041",
        "\\n",
        "\\377",
        "a\\",
        "#c",
        "é?",
        "*",
        "**",
        "\"q\"",
        "'s'",
        "\"un",
        "'un",
        "%",
        ",",
        "\u{a0}",
    ]);
    prop_oneof![
        pool.prop_map(str::to_owned),
        "[a-z!*?^:\\\\0-9\"'#-]{0,6}",
        "[ -~]{0,5}".prop_map(|s| format!("\"{}\"", s.replace(['"', ';', '\n'], ""))),
    ]
}

fn body_from_words() -> impl Strategy<Value = String> {
    let query = proptest::collection::vec(word(), 1..17).prop_map(|ws| ws.join(" "));
    let sep = proptest::sample::select(vec![";", "\n", " ; ", "\r\n", "\n# comment\n"]);
    proptest::collection::vec((query, sep), 1..4)
        .prop_map(|qs| qs.into_iter().map(|(q, s)| q + s).collect::<String>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn arbitrary_bytes_never_panic_and_keep_offsets_inside(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        crate::fuzzing::parse_round_trip(&body);
    }

    #[test]
    fn arbitrary_text_never_panics(body in "\\PC{0,200}") {
        crate::fuzzing::parse_round_trip(body.as_bytes());
    }

    #[test]
    fn query_like_bodies_round_trip(body in body_from_words()) {
        crate::fuzzing::parse_round_trip(body.as_bytes());
    }

    #[test]
    fn valid_queries_round_trip(
        module in proptest::option::of("!?[a-z_:*?]{0,8}"),
        file in proptest::option::of("[a-z/._*]{0,8}(:[a-z*?][a-z_*]{0,4}|:[0-9]{0,3}(-[0-9]{0,3})?)?"),
        format in proptest::option::of("!?\\^?[ -~]{0,8}"),
        class in proptest::option::of("[A-Z_ ]{0,6}"),
        flags in "[+=-][pmflts_]{0,4}",
    ) {
        let mut body = String::new();
        if let Some(m) = module { body += &format!("module '{m}' "); }
        if let Some(f) = file { body += &format!("file {f} "); }
        if let Some(f) = format {
            body += &format!("format '{}' ", f.replace(['\'', ';'], ""));
        }
        if let Some(c) = class { body += &format!("class '{c}' "); }
        body += &flags;
        if let Ok(qs) = parse(body.as_bytes()) {
            prop_assert_eq!(qs.len(), 1);
            let printed = qs[0].to_string();
            prop_assert_eq!(&parse(printed.as_bytes()).unwrap()[0], &qs[0], "{:?} printed {:?}", body, printed);
        }
        crate::fuzzing::parse_round_trip(body.as_bytes());
    }
}
