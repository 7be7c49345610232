//! Site records: what the linker collected from every site's assembly.
//!
//! Each inline site and each link-time stub emits one 24-byte record into a
//! retained (`R`), versioned section whose name is a C identifier, so the
//! linker defines `__start_<name>` and `__stop_<name>` around all of them:
//!
//! | section | field 0 | field 1 | field 2 |
//! |---|---|---|---|
//! | `dynkey_sites_v1` | site - . | jump target - . | key - . + polarity |
//! | `dynkey_stubs_v1` | stub word - . | key or call - . | kind (1 value, 2 call) |
//! | `dynkey_atomic_v1` | key or call - . | kind (0 branch, 1 value, 2 call) | `__one_copy_per_binary` - . |
//!
//! Builds with patching (`cfg(dynkey_patching)`) emit the first two; builds
//! without it (`--cfg dynkey_atomic_only`, other targets) compile every
//! site as the atomic kind and emit only `dynkey_atomic_v1`, so the runtime
//! still knows every site of every key: a commit counts them and runs the
//! rendezvous that makes their new state visible on return (G2).
//!
//! Fields are relative to their own address so the section needs no dynamic
//! relocations (it stays read-only in a PIE). The records are never moved or
//! written: [`inline_sites`] decodes them into a heap vector of absolute
//! addresses, which the runtime sorts by (key, address).
//!
//! Polarity (bit 0 of the key field) is the key state in which the site
//! takes its jump: 1 for `branch_unlikely!` (jump to the enabled arm when
//! enabled), 0 for `branch_likely!` (jump to the disabled arm when
//! disabled). Truth table, the kernel's `jump_label_type` in our terms:
//!
//! | key enabled | polarity | site holds |
//! |---|---|---|
//! | 0 | 0 | jmp |
//! | 0 | 1 | nop |
//! | 1 | 0 | nop |
//! | 1 | 1 | jmp |
//!
//! so the site jumps iff `enabled == polarity`.
//!
//! dynkey-text emits one sentinel record into each section (keyed on a
//! private static) so the sections, and their start/stop symbols, always
//! exist; decoding drops it.
//!
//! # One copy per binary
//!
//! The section names are shared by every copy of this crate in a binary,
//! so two copies (two semver-incompatible versions pulled by two
//! dependencies) would each decode the other's records and take its keys
//! for their own. Two defenses make such a binary fail to build, naming
//! dynkey:
//! - cargo: `links = "dynkey_text"` in Cargo.toml, so the resolver refuses
//!   a second package linking the same name;
//! - any other build: [`__one_copy_per_binary`] defines the global symbol
//!   `dynkey_text_is_linked_twice_only_one_copy_per_binary`, and every
//!   site and stub macro (through its record: an `R_X86_64_NONE`
//!   relocation, or the third field of an atomic record) and the runtime's
//!   start refer to that function,
//!   so each copy that is used pulls in the definition, and two used
//!   copies fail to link with "multiple definition" of that name. A copy
//!   that is linked but never used defines nothing and harms nothing.

use crate::key::RawKey;

/// A decoded inline site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InlineSite {
    /// Address of the 5-byte instruction.
    pub site: usize,
    /// Where its jump goes (the arm out of line).
    pub target: usize,
    /// The key it tests.
    pub key: usize,
    /// The key state in which the site jumps.
    pub jump_on: bool,
}

impl InlineSite {
    /// Whether the site must jump when its key is `enabled`.
    pub(crate) fn jumps(&self, enabled: bool) -> bool {
        enabled == self.jump_on
    }
}

/// What a link-time stub does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StubKind {
    /// Returns a key's state.
    Value,
    /// Jumps to a static call's target.
    Call,
}

/// A decoded link-time stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StubRecord {
    /// The aligned word that changes.
    pub word: usize,
    /// The key (value stubs) or call (call stubs).
    pub key: usize,
    pub kind: StubKind,
}

/// A decoded record of an atomic-kind site (builds without patching).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtomicRecord {
    /// The key (branches, value stubs) or call (call stubs).
    pub key: usize,
    /// None for a branch site.
    pub stub: Option<StubKind>,
}

#[repr(C)]
struct RawRecord([i64; 3]);

/// Defines `dynkey_text_is_linked_twice_only_one_copy_per_binary` (see the
/// module docs). Not API: the site macros name it with `sym`.
#[doc(hidden)]
#[inline(never)]
#[allow(named_asm_labels)] // emitted once (not inlined, not generic), on purpose global
pub fn __one_copy_per_binary() {
    // SAFETY: the asm only defines a one-byte symbol in a data section; it
    // executes no instruction and touches no register or memory.
    unsafe {
        core::arch::asm!(
            ".pushsection .rodata.dynkey_one_copy, \"a\"",
            ".globl dynkey_text_is_linked_twice_only_one_copy_per_binary",
            ".hidden dynkey_text_is_linked_twice_only_one_copy_per_binary",
            "dynkey_text_is_linked_twice_only_one_copy_per_binary:",
            ".byte 0",
            ".popsection",
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// The sentinel records' key; never a real key.
static SENTINEL: RawKey = RawKey::new(false);

#[cfg(dynkey_patching)]
unsafe extern "C" {
    #[link_name = "__start_dynkey_sites_v1"]
    static SITES_START: [RawRecord; 0];
    #[link_name = "__stop_dynkey_sites_v1"]
    static SITES_STOP: [RawRecord; 0];
    #[link_name = "__start_dynkey_stubs_v1"]
    static STUBS_START: [RawRecord; 0];
    #[link_name = "__stop_dynkey_stubs_v1"]
    static STUBS_STOP: [RawRecord; 0];
}

/// The records between two linker symbols.
///
/// # Safety
///
/// `start..stop` must delimit a section made only of `RawRecord`s.
#[cfg(dynkey_patching)]
unsafe fn section(start: *const RawRecord, stop: *const RawRecord) -> &'static [RawRecord] {
    let n = (stop as usize - start as usize) / size_of::<RawRecord>();
    // SAFETY: the linker concatenates the 8-aligned, 24-byte records
    // contiguously between the two symbols (caller), and the section is
    // mapped for the life of the process.
    unsafe { std::slice::from_raw_parts(start, n) }
}

/// The raw records of `dynkey_sites_v1`, sentinel included.
#[cfg(dynkey_patching)]
fn site_records() -> &'static [RawRecord] {
    // SAFETY: emits only a data record (no instructions run): the sentinel
    // that guarantees the section exists.
    unsafe {
        core::arch::asm!(
            ".pushsection dynkey_sites_v1, \"aR\"",
            ".balign 8",
            ".quad 0",
            ".quad 0",
            ".quad {k} - .",
            ".popsection",
            k = sym SENTINEL,
            options(nomem, nostack, preserves_flags)
        )
    };
    // SAFETY: [SITE-RECORDS] only this crate's site macros and the sentinel
    // above write this section.
    unsafe { section(SITES_START.as_ptr(), SITES_STOP.as_ptr()) }
}

/// The raw records of `dynkey_stubs_v1`, sentinel included.
#[cfg(dynkey_patching)]
fn stub_records() -> &'static [RawRecord] {
    // SAFETY: emits only the sentinel data record, as in `site_records`.
    unsafe {
        core::arch::asm!(
            ".pushsection dynkey_stubs_v1, \"aR\"",
            ".balign 8",
            ".quad 0",
            ".quad {k} - .",
            ".quad 0",
            ".popsection",
            k = sym SENTINEL,
            options(nomem, nostack, preserves_flags)
        )
    };
    // SAFETY: [SITE-RECORDS] only this crate's stub macros and the sentinel
    // above write this section.
    unsafe { section(STUBS_START.as_ptr(), STUBS_STOP.as_ptr()) }
}

/// Without patching the macros emit no patched sites.
#[cfg(not(dynkey_patching))]
fn site_records() -> &'static [RawRecord] {
    &[]
}

/// Without patching the macros emit no patched stubs.
#[cfg(not(dynkey_patching))]
fn stub_records() -> &'static [RawRecord] {
    &[]
}

unsafe extern "C" {
    #[link_name = "__start_dynkey_atomic_v1"]
    static ATOMIC_START: [RawRecord; 0];
    #[link_name = "__stop_dynkey_atomic_v1"]
    static ATOMIC_STOP: [RawRecord; 0];
}

/// The raw records of `dynkey_atomic_v1`, sentinel included.
fn atomic_records() -> &'static [RawRecord] {
    // SAFETY: emits only the sentinel data record (no instructions run),
    // which guarantees the section exists.
    unsafe {
        core::arch::asm!(
            ".pushsection dynkey_atomic_v1, \"aR\"",
            ".balign 8",
            ".quad {k} - .",
            ".quad 0",
            ".quad 0",
            ".popsection",
            k = sym SENTINEL,
            options(nomem, nostack, preserves_flags)
        )
    };
    let (start, stop) = (&raw const ATOMIC_START, &raw const ATOMIC_STOP);
    let n = (stop as usize - start as usize) / size_of::<RawRecord>();
    // SAFETY: [SITE-RECORDS] only this crate's macros and the sentinel above
    // write this section, 24-byte 8-aligned records the linker lays out
    // contiguously between the two symbols; it is mapped for the life of
    // the process.
    unsafe { std::slice::from_raw_parts(start as *const RawRecord, n) }
}

/// Every atomic-kind site and stub of the binary, sentinel removed (empty
/// in builds with patching, whose macros emit patched sites instead).
pub(crate) fn atomic_sites() -> Vec<AtomicRecord> {
    atomic_records()
        .iter()
        .map(|r| AtomicRecord {
            key: absolute(&r.0[0]),
            stub: match r.0[1] {
                1 => Some(StubKind::Value),
                2 => Some(StubKind::Call),
                _ => None,
            },
        })
        .filter(|r| r.key != SENTINEL.addr())
        .collect()
}

/// Decodes a field holding `target - &field`.
fn absolute(field: &i64) -> usize {
    (field as *const i64 as usize).wrapping_add(*field as usize)
}

/// Every inline site of the binary, in section order, sentinel removed.
pub(crate) fn inline_sites() -> Vec<InlineSite> {
    site_records()
        .iter()
        .map(|r| {
            let key = absolute(&r.0[2]);
            InlineSite {
                site: absolute(&r.0[0]),
                target: absolute(&r.0[1]),
                key: key & !1,
                jump_on: key & 1 == 1,
            }
        })
        .filter(|s| s.key != SENTINEL.addr())
        .collect()
}

/// Every link-time stub of the binary, sentinel removed.
pub(crate) fn link_stubs() -> Vec<StubRecord> {
    stub_records()
        .iter()
        .filter_map(|r| {
            let kind = match r.0[2] {
                1 => StubKind::Value,
                2 => StubKind::Call,
                _ => return None, // the sentinel (kind 0)
            };
            Some(StubRecord {
                word: absolute(&r.0[0]),
                key: absolute(&r.0[1]),
                kind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polarity_truth_table() {
        let s = |jump_on| InlineSite {
            site: 0,
            target: 0,
            key: 0,
            jump_on,
        };
        assert!(
            s(false).jumps(false),
            "likely site, key disabled: jump to the cold arm"
        );
        assert!(!s(false).jumps(true));
        assert!(!s(true).jumps(false), "unlikely site, key disabled: nop");
        assert!(s(true).jumps(true));
    }

    #[test]
    fn relative_fields_decode_to_absolute() {
        let field: i64 = 40;
        assert_eq!(absolute(&field), &field as *const i64 as usize + 40);
        let back: i64 = -8;
        assert_eq!(absolute(&back), &back as *const i64 as usize - 8);
    }
}
