//! Backslash escapes of `format` values, both ways.
//!
//! The kernel unescapes a `format` value with `string_unescape_inplace(arg,
//! UNESCAPE_SPACE | UNESCAPE_OCTAL | UNESCAPE_SPECIAL)`: `\n \r \t \v \f`,
//! 1-3 octal digits (stopping once the value reaches 32, so it fits a byte),
//! `\" \\ \a \e`. No `\x`. Any other sequence, and a lone trailing
//! backslash, keeps its backslash. The result is bytes (`\377` is allowed);
//! unlike the kernel's C string, a `\0` byte does not end it.
//!
//! [`escape_format`] is the inverse used to print a query back as text: its
//! output is one bare word (no whitespace, quotes, `#`, `;`, `!`) that
//! unescapes to the same bytes.

/// Unescapes a `format` value (after quote removal and after its leading
/// `!`, if any, was taken off).
pub(crate) fn unescape_format(value: &str) -> Vec<u8> {
    let src = value.as_bytes();
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while let Some(&b) = src.get(i) {
        let next = src.get(i + 1).copied();
        match (b, next) {
            (b'\\', Some(c)) => {
                if let Some(byte) = simple_escape(c) {
                    out.push(byte);
                    i += 2;
                } else if is_odigit(c) {
                    let (byte, used) = octal(src.get(i + 1..).unwrap_or_default());
                    out.push(byte);
                    i += 1 + used;
                } else {
                    // Unknown sequence: keep the backslash; the next byte is
                    // copied as an ordinary one on the next turn.
                    out.push(b'\\');
                    i += 1;
                }
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `\n \r \t \v \f` (UNESCAPE_SPACE) and `\" \\ \a \e` (UNESCAPE_SPECIAL).
fn simple_escape(c: u8) -> Option<u8> {
    Some(match c {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        b'f' => 0x0c,
        b'"' => b'"',
        b'\\' => b'\\',
        b'a' => 0x07,
        b'e' => 0x1b,
        _ => return None,
    })
}

fn is_odigit(c: u8) -> bool {
    (b'0'..=b'7').contains(&c)
}

/// The kernel's `unescape_octal`: up to three digits, stopping early once
/// the value reaches 32. `digits` starts at the first (octal) digit.
/// Returns the byte and the number of digits used.
fn octal(digits: &[u8]) -> (u8, usize) {
    let mut value: u8 = 0;
    let mut used = 0;
    for &d in digits.iter().take(3) {
        if !is_odigit(d) || (used > 0 && value >= 32) {
            break;
        }
        // value < 32 here, so value * 8 + 7 <= 255.
        value = (value << 3) | (d - b'0');
        used += 1;
    }
    (value, used)
}

/// Escapes bytes as one bare word that [`unescape_format`] maps back to them.
/// Printable ASCII stays, except the characters that would end a word, start
/// a quote or comment, split a query, or read as negation.
pub(crate) fn escape_format(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' | b'\'' | b'#' | b';' | b'!' => push_octal(b, out),
            0x21..=0x7e => out.push(char::from(b)),
            _ => push_octal(b, out),
        }
    }
}

/// Three octal digits always: the first is 0-3, so the value stays below 32
/// after two digits and the third digit is always read back.
fn push_octal(b: u8, out: &mut String) {
    out.push('\\');
    for shift in [6u8, 3, 0] {
        out.push(char::from(b'0' + ((b >> shift) & 7)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn kernel_escapes() {
        assert_eq!(unescape_format(r"link\040up"), b"link up");
        assert_eq!(unescape_format(r"\n\r\t\v\f"), b"\n\r\t\x0b\x0c");
        assert_eq!(unescape_format(r#"\"%s\""#), b"\"%s\"");
        assert_eq!(unescape_format(r"\\\a\e"), b"\\\x07\x1b");
        assert_eq!(unescape_format(r"\377"), [0xff]);
        assert_eq!(unescape_format(r"\041"), b"!");
    }

    #[test]
    fn octal_stops_once_the_value_reaches_32() {
        assert_eq!(
            unescape_format(r"\400"),
            b" 0",
            "\\40 is 32: the third digit is not read"
        );
        assert_eq!(unescape_format(r"\0121"), b"\n1", "three digits at most");
        assert_eq!(unescape_format(r"\7"), [7]);
        assert_eq!(unescape_format(r"\18"), [1, b'8'], "8 is not octal");
        assert_eq!(
            unescape_format(r"\000"),
            [0],
            "a NUL byte does not end the value"
        );
    }

    #[test]
    fn unknown_sequences_keep_the_backslash() {
        assert_eq!(unescape_format(r"\x41"), b"\\x41", "no hex escapes");
        assert_eq!(unescape_format(r"\q"), b"\\q");
        assert_eq!(unescape_format("ab\\"), b"ab\\", "lone trailing backslash");
        assert_eq!(
            unescape_format(r"\\n"),
            b"\\n",
            "an escaped backslash then n"
        );
    }

    #[test]
    fn escape_is_one_safe_word() {
        let mut s = String::new();
        escape_format(b"a b\"'#;!\\\n\xff^", &mut s);
        assert_eq!(s, r"a\040b\042\047\043\073\041\\\012\377^");
    }

    proptest! {
        #[test]
        fn escape_then_unescape_is_identity(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut s = String::new();
            escape_format(&bytes, &mut s);
            prop_assert!(!s.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b || b"\"'#;!".contains(&b)));
            prop_assert_eq!(unescape_format(&s), bytes);
        }

        #[test]
        fn unescape_never_grows(text in "\\PC{0,40}") {
            prop_assert!(unescape_format(&text).len() <= text.len());
        }
    }
}
