//! Class params: a written number becomes per-class flag changes, as in the
//! kernel's `param_set_dyndbg_classes` (lib/dynamic_debug.c).
//!
//! The kernel turns `echo 0x14 > drm.debug` into one `class NAME +p` or
//! `class NAME -p` query per bit that differs from the stored value. Here
//! [`ClassMap::apply`] returns those changes as data, and the caller applies
//! them all in ONE commit (one rendezvous for the whole write, where the
//! kernel paid one per bit). Only the map's own flag characters are
//! toggled, so decorations added by hand (`+mf`) survive param writes.
//!
//! * `disjoint_bits`: bit *i* is class *i*; bits at or above the number of
//!   classes are masked off; read back in hex (`0x14`, `0x0`).
//! * `level_num`: level N turns on classes 0..N-1 and off the rest; levels
//!   above the number of classes are clamped; read back in decimal.

use crate::error::ParamError;
use crate::flags::{FlagOp, Flags};

/// How a class param's number maps to classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClassMapKind {
    /// One bit per class (`disjoint_bits`, the drm.debug style).
    DisjointBits,
    /// A verbosity level: N enables the first N classes (`level_num`).
    LevelNum,
}

impl ClassMapKind {
    /// From the site-table name: `disjoint_bits` or `level_num`.
    pub fn from_name(name: &str) -> Option<ClassMapKind> {
        match name {
            "disjoint_bits" => Some(ClassMapKind::DisjointBits),
            "level_num" => Some(ClassMapKind::LevelNum),
            _ => None,
        }
    }

    /// The site-table name.
    pub fn name(self) -> &'static str {
        match self {
            ClassMapKind::DisjointBits => "disjoint_bits",
            ClassMapKind::LevelNum => "level_num",
        }
    }
}

/// A class map with its param: names (name *i* has class id `base + i` and
/// is bit *i* of the param) and the flags the param toggles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassMap {
    /// Bits or levels.
    pub kind: ClassMapKind,
    /// Class id of the first name.
    pub base: u8,
    /// Class names, in id order.
    pub names: Vec<String>,
    /// Flag characters the param turns on and off (usually `p`).
    pub flags: Flags,
}

/// What one param write does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamChange<'a> {
    /// The value to store and read back (masked bits or clamped level).
    pub stored: u64,
    /// One change per class whose bit differs from the old value, in class
    /// order: `FlagOp::Add(flags)` to turn on, `FlagOp::Remove(flags)` to
    /// turn off. Empty when nothing differs.
    pub changes: Vec<(&'a str, FlagOp)>,
}

impl ClassMap {
    /// Number of classes that can have a bit (at most 64).
    fn width(&self) -> u32 {
        u32::try_from(self.names.len())
            .unwrap_or(u32::MAX)
            .min(u64::BITS)
    }

    /// The bits a `disjoint_bits` value may hold.
    pub fn mask(&self) -> u64 {
        low_bits(self.width())
    }

    /// The value that writing `requested` stores: masked bits, or the level
    /// clamped to the number of classes.
    pub fn clamp(&self, requested: u64) -> u64 {
        match self.kind {
            ClassMapKind::DisjointBits => requested & self.mask(),
            ClassMapKind::LevelNum => requested.min(self.names.len() as u64),
        }
    }

    /// The per-class bits a stored value stands for (levels: `(1 << L) - 1`).
    pub fn bits_of(&self, stored: u64) -> u64 {
        match self.kind {
            ClassMapKind::DisjointBits => stored & self.mask(),
            ClassMapKind::LevelNum => {
                let level = u32::try_from(self.clamp(stored)).unwrap_or(u32::MAX);
                low_bits(level.min(self.width()))
            }
        }
    }

    /// The class id of `name` in this map (`base + index`).
    pub fn class_id(&self, name: &str) -> Option<u32> {
        let i = self.names.iter().position(|n| n == name)?;
        u32::try_from(i).ok().map(|i| u32::from(self.base) + i)
    }

    /// Turns a write of `requested` over the stored `old_stored` into the
    /// value to store and the per-class changes (only for bits that differ).
    ///
    /// # Examples
    ///
    /// ```
    /// use dynkey_query::{ClassMap, ClassMapKind, FlagOp, Flags};
    /// let map = ClassMap {
    ///     kind: ClassMapKind::LevelNum, base: 10, flags: Flags::P,
    ///     names: vec!["V0".into(), "V1".into(), "V2".into(), "V3".into()],
    /// };
    /// let change = map.apply(3, 9);
    /// assert_eq!(change.stored, 4, "levels are clamped");
    /// assert_eq!(change.changes, vec![("V3", FlagOp::Add(Flags::P))]);
    /// ```
    pub fn apply(&self, old_stored: u64, requested: u64) -> ParamChange<'_> {
        let stored = self.clamp(requested);
        let old = self.bits_of(old_stored);
        let new = self.bits_of(stored);
        let changes = self
            .names
            .iter()
            .zip(0..self.width())
            .filter(|&(_, bit)| ((old ^ new) >> bit) & 1 == 1)
            .map(|(name, bit)| {
                let op = if (new >> bit) & 1 == 1 {
                    FlagOp::Add(self.flags)
                } else {
                    FlagOp::Remove(self.flags)
                };
                (name.as_str(), op)
            })
            .collect();
        ParamChange { stored, changes }
    }
}

/// `n` low bits set, for n up to 64.
fn low_bits(n: u32) -> u64 {
    1u64.checked_shl(n).map_or(u64::MAX, |b| b - 1)
}

/// Parses a written param value like the kernel's `kstrtoul(text, 0)`: an
/// optional `+`, then `0x`/`0X` and hex digits, or `0` and octal digits, or
/// decimal digits; one trailing newline allowed. Anything else, an empty
/// value, or a number past `u64::MAX` is an `E_BAD_PARAM` error.
///
/// # Examples
///
/// ```
/// use dynkey_query::parse_param_value;
/// assert_eq!(parse_param_value(b"0x1ff\n").unwrap(), 0x1ff);
/// assert_eq!(parse_param_value(b"017").unwrap(), 15);
/// assert!(parse_param_value(b"abc").is_err());
/// ```
pub fn parse_param_value(text: &[u8]) -> Result<u64, ParamError> {
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    let unsigned = body.strip_prefix(b"+").unwrap_or(body);
    // _parse_integer_fixup_radix: "0x" counts only when a hex digit follows.
    let (radix, digits) = match unsigned {
        [b'0', x, d, ..] if (x | 0x20) == b'x' && d.is_ascii_hexdigit() => {
            (16, unsigned.get(2..).unwrap_or_default())
        }
        [b'0', ..] => (8, unsigned),
        _ => (10, unsigned),
    };
    if digits.is_empty() {
        return Err(ParamError::new(text, "empty value"));
    }
    let mut value: u64 = 0;
    for &b in digits {
        let d = char::from(b)
            .to_digit(radix)
            .ok_or_else(|| ParamError::new(text, "not a number"))?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or_else(|| ParamError::new(text, "number too large"))?;
    }
    Ok(value)
}

/// How a stored value reads back: hex for bits (`0x14`, `0x0`), decimal for
/// levels.
pub fn format_param_value(kind: ClassMapKind, value: u64) -> String {
    match kind {
        ClassMapKind::DisjointBits => format!("{value:#x}"),
        ClassMapKind::LevelNum => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drm() -> ClassMap {
        ClassMap {
            kind: ClassMapKind::DisjointBits,
            base: 0,
            names: ["CORE", "DRIVER", "KMS", "PRIME", "ATOMIC"]
                .map(String::from)
                .to_vec(),
            flags: Flags::P,
        }
    }

    #[test]
    fn kstrtoul_base_0() {
        let ok = |t: &[u8]| parse_param_value(t).unwrap();
        assert_eq!(ok(b"0x14"), 0x14);
        assert_eq!(ok(b"0X1F"), 0x1f);
        assert_eq!(ok(b"20"), 20);
        assert_eq!(ok(b"024"), 0o24);
        assert_eq!(ok(b"0"), 0);
        assert_eq!(ok(b"+7\n"), 7);
        assert_eq!(ok(b"18446744073709551615"), u64::MAX);
        for bad in [
            &b""[..],
            b"\n",
            b"abc",
            b"0x",
            b"08",
            b"1\n\n",
            b" 1",
            b"1 ",
            b"-1",
            b"0xg",
            b"+",
            b"18446744073709551616",
            b"1\0",
        ] {
            assert!(
                parse_param_value(bad).is_err(),
                "{:?} must be E_BAD_PARAM",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bits_are_masked_and_only_differences_change() {
        let map = drm();
        let c = map.apply(0, 0x14);
        assert_eq!(c.stored, 0x14);
        assert_eq!(
            c.changes,
            vec![
                ("KMS", FlagOp::Add(Flags::P)),
                ("ATOMIC", FlagOp::Add(Flags::P))
            ]
        );
        let c = map.apply(0x14, 0x4);
        assert_eq!(c.changes, vec![("ATOMIC", FlagOp::Remove(Flags::P))]);
        let c = map.apply(0, 0xff);
        assert_eq!(
            c.stored, 0x1f,
            "bits at or above the class count are masked off"
        );
        assert_eq!(map.apply(0x1f, 0x1f).changes, vec![]);
    }

    #[test]
    fn levels_are_clamped() {
        let map = ClassMap {
            kind: ClassMapKind::LevelNum,
            ..drm()
        };
        let c = map.apply(0, 2);
        assert_eq!(c.stored, 2);
        assert_eq!(
            c.changes,
            vec![
                ("CORE", FlagOp::Add(Flags::P)),
                ("DRIVER", FlagOp::Add(Flags::P))
            ]
        );
        let c = map.apply(2, 99);
        assert_eq!(c.stored, 5);
        assert_eq!(c.changes.len(), 3);
        let c = map.apply(5, 0);
        assert_eq!(c.changes.len(), 5);
        assert!(
            c.changes
                .iter()
                .all(|(_, op)| *op == FlagOp::Remove(Flags::P))
        );
    }

    #[test]
    fn wide_maps_do_not_overflow() {
        let names: Vec<String> = (0..70).map(|i| format!("C{i}")).collect();
        let map = ClassMap { names, ..drm() };
        assert_eq!(map.mask(), u64::MAX);
        assert_eq!(map.apply(0, u64::MAX).changes.len(), 64);
        let lvl = ClassMap {
            kind: ClassMapKind::LevelNum,
            ..map
        };
        assert_eq!(lvl.apply(0, 70).changes.len(), 64);
    }

    #[test]
    fn read_back() {
        assert_eq!(format_param_value(ClassMapKind::DisjointBits, 0x14), "0x14");
        assert_eq!(format_param_value(ClassMapKind::DisjointBits, 0), "0x0");
        assert_eq!(format_param_value(ClassMapKind::LevelNum, 4), "4");
        assert_eq!(drm().class_id("KMS"), Some(2));
        assert_eq!(
            ClassMapKind::from_name("level_num"),
            Some(ClassMapKind::LevelNum)
        );
    }
}
