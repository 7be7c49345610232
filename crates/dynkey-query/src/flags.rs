//! Flags (`p m f l t s`) and the operations of a flags word (`+ - =`).
//!
//! Bits follow the kernel's layout (`_DPRINTK_FLAGS_*` in
//! include/linux/dynamic_debug.h) so a value can be compared with
//! a kernel listing by eye; display order is the kernel's `p m f s l t`,
//! whatever the input order, and `_` is the empty set. Only `p` turns output
//! on (it is the patched key); the others are decorations.

use std::fmt;
use std::str::FromStr;

use crate::error::{ErrorKind, QueryError};

/// A set of dyndbg flags, stored in the kernel's bit layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

/// Display order (p m f s l t) with each flag's character.
const DISPLAY: [(Flags, char); 6] = [
    (Flags::P, 'p'),
    (Flags::M, 'm'),
    (Flags::F, 'f'),
    (Flags::S, 's'),
    (Flags::L, 'l'),
    (Flags::T, 't'),
];

impl Flags {
    /// No flag set (shown as `_`).
    pub const EMPTY: Flags = Flags(0);
    /// `p`: print enabled; the only flag that is a key.
    pub const P: Flags = Flags(0x01);
    /// `m`: prefix the module name.
    pub const M: Flags = Flags(0x02);
    /// `f`: prefix the function name.
    pub const F: Flags = Flags(0x04);
    /// `l`: prefix the line number.
    pub const L: Flags = Flags(0x08);
    /// `t`: prefix the thread id.
    pub const T: Flags = Flags(0x10);
    /// `s`: prefix the source file.
    pub const S: Flags = Flags(0x20);
    /// Every flag.
    pub const ALL: Flags = Flags(0x3f);

    /// The raw bits (kernel layout).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Flags from raw bits; bits outside [`Flags::ALL`] are dropped.
    pub const fn from_bits_truncate(bits: u8) -> Flags {
        Flags(bits & Flags::ALL.0)
    }

    /// True when no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when `self` and `other` share a flag.
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// Flags set in either.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Flags set in both.
    pub const fn intersection(self, other: Flags) -> Flags {
        Flags(self.0 & other.0)
    }

    /// Flags of `self` that are not in `other`.
    pub const fn difference(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// The flag for one input character (`p m f l t s`), `Some(EMPTY)` for
    /// `_`, `None` for anything else (input is case-sensitive).
    pub const fn from_char(c: char) -> Option<Flags> {
        match c {
            'p' => Some(Flags::P),
            'm' => Some(Flags::M),
            'f' => Some(Flags::F),
            'l' => Some(Flags::L),
            't' => Some(Flags::T),
            's' => Some(Flags::S),
            '_' => Some(Flags::EMPTY),
            _ => None,
        }
    }

    /// Parses a set of flag characters such as `pmf` or `_` (repeats and
    /// any order allowed; the empty string is the empty set). On error,
    /// returns the first bad character and its byte index.
    pub(crate) fn parse_chars(text: &str) -> Result<Flags, (usize, char)> {
        let mut flags = Flags::EMPTY;
        for (i, c) in text.char_indices() {
            match Flags::from_char(c) {
                Some(f) => flags = flags.union(f),
                None => return Err((i, c)),
            }
        }
        Ok(flags)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;

    fn bitor(self, other: Flags) -> Flags {
        self.union(other)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, other: Flags) {
        *self = self.union(other);
    }
}

impl fmt::Display for Flags {
    /// Kernel display: `p m f s l t` order, `_` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("_");
        }
        for (flag, c) in DISPLAY {
            if self.contains(flag) {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl FromStr for Flags {
    type Err = QueryError;

    /// Parses a set of flag characters (`pmf`, `_`, `tlp`). The error is an
    /// `E_UNKNOWN_FLAG` whose offset is the bad character's byte index.
    fn from_str(text: &str) -> Result<Flags, QueryError> {
        Flags::parse_chars(text).map_err(|(at, c)| {
            QueryError::new(
                0,
                at,
                ErrorKind::UnknownFlag,
                format!(
                    "unknown flag {c:?} at byte {at}; expected flags from p, m, f, l, t, s and _"
                ),
            )
        })
    }
}

/// What a flags word does: `+F` adds, `-F` removes, `=F` sets exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlagOp {
    /// `+F`: new = old | F.
    Add(Flags),
    /// `-F`: new = old & !F.
    Remove(Flags),
    /// `=F`: new = F.
    Set(Flags),
}

/// Why a flags word was rejected, before it gets a position.
pub(crate) enum FlagWordError {
    /// No `+ - =` first (the word may be empty).
    BadOp,
    /// A bad flag character.
    UnknownFlag(char),
}

impl FlagOp {
    /// The new flags of a site whose flags were `old`.
    pub const fn apply(self, old: Flags) -> Flags {
        match self {
            FlagOp::Add(f) => old.union(f),
            FlagOp::Remove(f) => old.difference(f),
            FlagOp::Set(f) => f,
        }
    }

    /// The flags named by the word.
    pub const fn flags(self) -> Flags {
        match self {
            FlagOp::Add(f) | FlagOp::Remove(f) | FlagOp::Set(f) => f,
        }
    }

    /// The operator character: `+`, `-` or `=`.
    pub const fn op_char(self) -> char {
        match self {
            FlagOp::Add(_) => '+',
            FlagOp::Remove(_) => '-',
            FlagOp::Set(_) => '=',
        }
    }

    /// Parses a flags word the kernel's way (`ddebug_parse_flags`): the
    /// operator first, then zero or more flag characters.
    pub(crate) fn parse_word(word: &str) -> Result<FlagOp, FlagWordError> {
        let mut chars = word.chars();
        let make: fn(Flags) -> FlagOp = match chars.next() {
            Some('+') => FlagOp::Add,
            Some('-') => FlagOp::Remove,
            Some('=') => FlagOp::Set,
            _ => return Err(FlagWordError::BadOp),
        };
        Flags::parse_chars(chars.as_str())
            .map(make)
            .map_err(|(_, c)| FlagWordError::UnknownFlag(c))
    }
}

impl fmt::Display for FlagOp {
    /// `+pmf`, `-_`, `=p`: re-parses to the same operation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.op_char(), self.flags())
    }
}

impl FromStr for FlagOp {
    type Err = QueryError;

    /// Parses a flags word such as `+pmf`; offsets in the error are 0 (the
    /// word's start), as in a query.
    fn from_str(word: &str) -> Result<FlagOp, QueryError> {
        FlagOp::parse_word(word).map_err(|e| flag_word_error(0, 0, word, e))
    }
}

/// The error for a bad flags word, positioned at the word.
pub(crate) fn flag_word_error(
    index: usize,
    offset: usize,
    word: &str,
    e: FlagWordError,
) -> QueryError {
    match e {
        FlagWordError::BadOp => {
            let got = word
                .chars()
                .next()
                .map_or_else(|| "nothing".to_owned(), |c| format!("{c:?}"));
            let message = format!(
                "bad flag operation {got} in flags word {word:?} at byte {offset}; expected the last word of a query to start with +, - or ="
            );
            QueryError::new(index, offset, ErrorKind::BadFlagOp, message)
        }
        FlagWordError::UnknownFlag(c) => {
            let message = format!(
                "unknown flag {c:?} in flags word {word:?} at byte {offset}; expected flags from p, m, f, l, t, s and _"
            );
            QueryError::new(index, offset, ErrorKind::UnknownFlag, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bits_follow_the_kernel_layout() {
        let bits: Vec<u8> = [Flags::P, Flags::M, Flags::F, Flags::L, Flags::T, Flags::S]
            .iter()
            .map(|f| f.bits())
            .collect();
        assert_eq!(bits, [0x01, 0x02, 0x04, 0x08, 0x10, 0x20]);
    }

    #[test]
    fn display_uses_kernel_order() {
        assert_eq!("tlp".parse::<Flags>().unwrap().to_string(), "plt");
        assert_eq!("tlsfmp".parse::<Flags>().unwrap().to_string(), "pmfslt");
        assert_eq!(Flags::EMPTY.to_string(), "_");
        assert_eq!("_".parse::<Flags>().unwrap(), Flags::EMPTY);
        assert_eq!("".parse::<Flags>().unwrap(), Flags::EMPTY);
        assert_eq!("pp_".parse::<Flags>().unwrap(), Flags::P);
    }

    #[test]
    fn flags_are_case_sensitive() {
        let e = "pP".parse::<Flags>().unwrap_err();
        assert_eq!((e.kind, e.offset), (ErrorKind::UnknownFlag, 1));
    }

    #[test]
    fn flag_op_parse_and_display() {
        assert_eq!(
            "+pmf".parse::<FlagOp>().unwrap(),
            FlagOp::Add(Flags::P.union(Flags::M).union(Flags::F))
        );
        assert_eq!("=".parse::<FlagOp>().unwrap(), FlagOp::Set(Flags::EMPTY));
        assert_eq!(
            "-_".parse::<FlagOp>().unwrap(),
            FlagOp::Remove(Flags::EMPTY)
        );
        assert_eq!(FlagOp::Set(Flags::EMPTY).to_string(), "=_");
        assert_eq!(FlagOp::Add(Flags::T.union(Flags::P)).to_string(), "+pt");
        assert_eq!(
            "p".parse::<FlagOp>().unwrap_err().kind,
            ErrorKind::BadFlagOp
        );
        assert_eq!("".parse::<FlagOp>().unwrap_err().kind, ErrorKind::BadFlagOp);
        assert_eq!(
            "+x".parse::<FlagOp>().unwrap_err().kind,
            ErrorKind::UnknownFlag
        );
    }

    fn any_flags() -> impl Strategy<Value = Flags> {
        (0u8..64).prop_map(Flags::from_bits_truncate)
    }

    fn any_op() -> impl Strategy<Value = FlagOp> {
        (0u8..3, any_flags()).prop_map(|(k, f)| match k {
            0 => FlagOp::Add(f),
            1 => FlagOp::Remove(f),
            _ => FlagOp::Set(f),
        })
    }

    proptest! {
        #[test]
        fn flags_display_parse_round_trip(f in any_flags()) {
            prop_assert_eq!(f.to_string().parse::<Flags>().unwrap(), f, "display must re-parse to the same set");
        }

        #[test]
        fn any_permutation_of_chars_parses_to_the_same_set(chars in proptest::collection::vec(
            proptest::sample::select(vec!['p', 'm', 'f', 'l', 't', 's', '_']), 0..12)) {
            let text: String = chars.iter().collect();
            let mut rev = chars.clone();
            rev.reverse();
            let back: String = rev.iter().collect();
            prop_assert_eq!(text.parse::<Flags>().unwrap(), back.parse::<Flags>().unwrap());
        }

        #[test]
        fn flag_op_display_parse_round_trip(op in any_op()) {
            prop_assert_eq!(op.to_string().parse::<FlagOp>().unwrap(), op);
        }

        #[test]
        fn flag_op_laws(op in any_op(), old in any_flags()) {
            let new = op.apply(old);
            match op {
                FlagOp::Add(f) => {
                    prop_assert!(new.contains(f) && new.contains(old), "+F keeps old and sets F");
                    prop_assert_eq!(new, old.union(f));
                }
                FlagOp::Remove(f) => {
                    prop_assert!(!new.intersects(f) && old.contains(new), "-F clears F only");
                    prop_assert_eq!(new.union(old.intersection(f)), old);
                }
                FlagOp::Set(f) => prop_assert_eq!(new, f, "=F ignores old"),
            }
            prop_assert_eq!(op.apply(new), new, "every op is idempotent");
        }
    }
}
