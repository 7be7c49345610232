//! What the core may ask of an architecture.
//!
//! The commit pipeline never looks at an instruction byte. It asks this layer
//! for the 8-byte word a site or stub must hold in a given state, and for the
//! word it must hold now (to verify before writing). Every encoding lives in
//! the architecture file chosen below; the `not(...)` default is a file that
//! patches nothing, so other targets (and `--cfg dynkey_atomic_only` builds)
//! compile the same core and use the atomic kind.
//!
//! A *word* is the naturally aligned 8-byte unit that contains a whole patched
//! instruction. Changing a word with one atomic store is what keeps a running
//! thread from ever seeing half an instruction (invariant `[ONE-STORE]` in the
//! crate docs).

// `dynkey_patching` is set by build.rs on x86-64 Linux, unless the build
// asks for the fallback (`--cfg dynkey_atomic_only`).
#[cfg(dynkey_patching)]
#[path = "x86_64.rs"]
mod imp;

#[cfg(not(dynkey_patching))]
#[path = "fallback.rs"]
mod imp;

pub(crate) use imp::*;

/// Address of the aligned word holding `addr`, and `addr`'s offset in it.
pub(crate) const fn word_of(addr: usize) -> (usize, usize) {
    (addr & !7, addr & 7)
}

/// Whether a `len`-byte instruction at `addr` lies inside one aligned word.
pub(crate) const fn fits_in_word(addr: usize, len: usize) -> bool {
    (addr & 7) + len <= 8
}

/// Replaces `bytes.len()` bytes of `word` starting at byte `offset`
/// (little-endian: byte 0 is the lowest address).
pub(crate) fn splice(word: u64, offset: usize, bytes: &[u8]) -> u64 {
    let mut raw = word.to_le_bytes();
    raw[offset..offset + bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_math() {
        assert_eq!(word_of(0x1003), (0x1000, 3));
        assert!(
            fits_in_word(0x1003, 5),
            "offset 3 + 5 bytes ends at the word's end"
        );
        assert!(
            !fits_in_word(0x1004, 5),
            "offset 4 + 5 bytes crosses into the next word"
        );
        let w = splice(0x1111_1111_1111_1111, 2, &[0xaa, 0xbb]);
        assert_eq!(w, 0x1111_1111_bbaa_1111);
    }
}
