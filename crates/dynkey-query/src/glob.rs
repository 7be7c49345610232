//! The kernel's glob (`match_wildcard` in lib/parser.c).
//!
//! `*` matches any run of characters, `/` included; `?` matches exactly one
//! character; everything else matches itself, case-sensitively; the match is
//! anchored at both ends. The algorithm is the kernel's single-star
//! backtracking matcher, kept with its quirk: once the subject is used up,
//! ONE trailing `*` may remain (`ab*` matches `ab`) but two may not (`ab**`
//! does not match `ab`). A trailing `?` never matches an empty remainder and
//! the empty pattern matches only the empty string.
//!
//! Characters are Unicode scalar values, where the kernel has bytes: for
//! ASCII this is the same, and a `?` never stops inside a UTF-8 sequence.
//!
//! Common shapes skip the loop: a pattern without `*`/`?` is compared whole,
//! `abc*` is a prefix test and `*abc` a suffix test (both equal to the loop
//! for those shapes, which the property tests check).

use std::fmt;

/// A compiled glob pattern.
#[derive(Clone)]
pub struct Glob {
    pattern: String,
    shape: Shape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// No `*` or `?`: equality.
    Literal,
    /// One `*`, at the end, no `?`: prefix test.
    Prefix,
    /// One `*`, at the start, no `?`, not only `*`: suffix test.
    Suffix,
    /// Anything else: the kernel's loop.
    General,
}

impl Glob {
    /// Compiles a pattern. Every string is a valid pattern.
    pub fn new(pattern: &str) -> Glob {
        let stars = pattern.bytes().filter(|&b| b == b'*').count();
        let has_qmark = pattern.contains('?');
        let shape = if stars == 0 && !has_qmark {
            Shape::Literal
        } else if stars == 1 && !has_qmark && pattern.ends_with('*') {
            Shape::Prefix
        } else if stars == 1 && !has_qmark && pattern.starts_with('*') {
            Shape::Suffix
        } else {
            Shape::General
        };
        Glob {
            pattern: pattern.to_owned(),
            shape,
        }
    }

    /// True when the whole of `subject` matches the pattern.
    pub fn matches(&self, subject: &str) -> bool {
        let p = self.pattern.as_str();
        match self.shape {
            Shape::Literal => subject == p,
            Shape::Prefix => subject.starts_with(p.strip_suffix('*').unwrap_or(p)),
            Shape::Suffix => subject.ends_with(p.strip_prefix('*').unwrap_or(p)),
            Shape::General => wildcard(p.as_bytes(), subject.as_bytes()),
        }
    }

    /// The pattern itself when it has no `*` or `?` (so a caller can look it
    /// up in an index instead of scanning).
    pub fn literal(&self) -> Option<&str> {
        (self.shape == Shape::Literal).then_some(self.pattern.as_str())
    }

    /// The fixed text before the first `*` or `?`: every matching subject
    /// starts with it (an index can narrow a scan with it).
    pub fn literal_prefix(&self) -> &str {
        let end = self.pattern.find(['*', '?']).unwrap_or(self.pattern.len());
        self.pattern.get(..end).unwrap_or("")
    }

    /// The pattern text.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

impl std::hash::Hash for Glob {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.pattern.hash(state);
    }
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.pattern)
    }
}

/// Length of the UTF-8 sequence that starts with `lead` (1 for a stray
/// continuation byte, which valid `str`s never give us here).
fn char_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// `match_wildcard` on the bytes of two `str`s, moving by whole characters
/// where the kernel moves by bytes (`?` and the backtracking step). Literal
/// characters compare byte by byte: both sides are UTF-8, so a subject
/// position only ever stops on a character boundary when the pattern is on
/// one.
fn wildcard(pattern: &[u8], subject: &[u8]) -> bool {
    let (mut p, mut s) = (0usize, 0usize);
    // (pattern index just after the last `*`, subject index it started at)
    let mut star: Option<(usize, usize)> = None;
    while let Some(&sc) = subject.get(s) {
        match pattern.get(p) {
            Some(b'?') => {
                s += char_len(sc);
                p += 1;
            }
            Some(b'*') => {
                p += 1;
                if p == pattern.len() {
                    return true;
                }
                star = Some((p, s));
            }
            Some(&pc) if pc == sc => {
                s += 1;
                p += 1;
            }
            _ => match star {
                Some((after_star, start)) => {
                    // Let the star swallow one more character and retry.
                    let next = start + subject.get(start).map_or(1, |&b| char_len(b));
                    star = Some((after_star, next));
                    s = next;
                    p = after_star;
                }
                None => return false,
            },
        }
    }
    if pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p >= pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(pattern: &str, subject: &str) -> bool {
        Glob::new(pattern).matches(subject)
    }

    #[test]
    fn double_trailing_star_does_not_match_used_up_subject() {
        assert!(
            !m("ab**", "ab"),
            "kernel quirk: two trailing stars after the subject is used up"
        );
        assert!(
            m("ab**", "abc"),
            "with a character left the first star takes it"
        );
        assert!(!m("**", ""), "the same quirk on an empty subject");
    }

    #[test]
    fn one_trailing_star_matches_used_up_subject() {
        assert!(m("ab*", "ab"));
        assert!(m("*", ""));
        assert!(m("?*", "a"));
    }

    #[test]
    fn trailing_question_mark_needs_a_character() {
        assert!(!m("ab?", "ab"));
        assert!(m("ab?", "abc"));
        assert!(!m("ab?", "abcd"));
        assert!(!m("*?", ""));
    }

    #[test]
    fn empty_pattern_matches_only_empty() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert_eq!(Glob::new("").literal(), Some(""));
    }

    #[test]
    fn star_crosses_slash() {
        assert!(m(
            "drivers/net/*",
            "drivers/net/ethernet/intel/e1000e/netdev.c"
        ));
        assert!(m(
            "*/netdev.c",
            "drivers/net/ethernet/intel/e1000e/netdev.c"
        ));
        assert!(
            !m("net/virtio_net.c", "drivers/net/virtio_net.c"),
            "anchored: no implicit directory suffix"
        );
    }

    #[test]
    fn backtracking() {
        assert!(m("*ab", "aab"), "star retries after a partial match");
        assert!(m("*a*b", "xaxxb"));
        assert!(m("a*b*c", "abbbc"));
        assert!(m("*aab", "aaab"));
        assert!(!m("*ab", "aba"));
        assert!(m("v*_*", "virtio_net"));
        assert!(!m("v*_*x", "virtio_net"));
        assert!(m("*?b", "ab"));
    }

    #[test]
    fn case_sensitive_and_no_classes() {
        assert!(!m("VIRTIO*", "virtio_net"));
        assert!(m("[ab]", "[ab]"), "brackets are literal");
        assert!(!m("[ab]", "a"));
    }

    #[test]
    fn question_mark_is_one_character_not_one_byte() {
        assert!(m("caf?", "café"));
        assert!(!m("caf??", "café"));
        assert!(m("*é", "café"));
    }

    #[test]
    fn literal_and_prefix_accessors() {
        assert_eq!(Glob::new("virtio_net").literal(), Some("virtio_net"));
        assert_eq!(Glob::new("virtio*").literal(), None);
        assert_eq!(Glob::new("virtio*").literal_prefix(), "virtio");
        assert_eq!(Glob::new("v?rtio").literal_prefix(), "v");
        assert_eq!(Glob::new("*x").as_str(), "*x");
    }

    /// The obvious recursive glob, with the kernel's end rule: when the
    /// subject is used up, what is left of the pattern must be empty or a
    /// single `*`.
    fn reference(p: &[char], s: &[char]) -> bool {
        match (p.split_first(), s.split_first()) {
            (None, _) => s.is_empty(),
            (Some(_), None) => p == ['*'],
            (Some(('*', rest)), Some((_, s_rest))) => reference(rest, s) || reference(p, s_rest),
            (Some(('?', rest)), Some((_, s_rest))) => reference(rest, s_rest),
            (Some((pc, rest)), Some((sc, s_rest))) => pc == sc && reference(rest, s_rest),
        }
    }

    fn small_text(alphabet: &'static [char], max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(alphabet), 0..max)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn glob_agrees_with_reference(
            pattern in small_text(&['a', 'b', '/', 'é', '*', '?'], 8),
            subject in small_text(&['a', 'b', '/', 'é'], 8),
        ) {
            let p: Vec<char> = pattern.chars().collect();
            let s: Vec<char> = subject.chars().collect();
            prop_assert_eq!(
                Glob::new(&pattern).matches(&subject),
                reference(&p, &s),
                "pattern {:?} subject {:?}", pattern, subject
            );
        }

        #[test]
        fn glob_agrees_with_reference_on_star_heavy_patterns(
            pattern in small_text(&['a', '*', '*', '*', '?'], 7),
            subject in small_text(&['a', 'b'], 6),
        ) {
            let p: Vec<char> = pattern.chars().collect();
            let s: Vec<char> = subject.chars().collect();
            prop_assert_eq!(Glob::new(&pattern).matches(&subject), reference(&p, &s),
                "pattern {:?} subject {:?}", pattern, subject);
        }

        #[test]
        fn fast_shapes_agree_with_the_loop(pattern in small_text(&['a', 'b', '*', '?'], 6), subject in small_text(&['a', 'b'], 6)) {
            prop_assert_eq!(Glob::new(&pattern).matches(&subject), wildcard(pattern.as_bytes(), subject.as_bytes()));
        }
    }
}
