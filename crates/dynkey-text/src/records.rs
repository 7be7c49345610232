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

#[repr(C)]
struct RawRecord([i64; 3]);

/// The sentinel records' key; never a real key.
static SENTINEL: RawKey = RawKey::new(false);

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
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
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
unsafe fn section(start: *const RawRecord, stop: *const RawRecord) -> &'static [RawRecord] {
    let n = (stop as usize - start as usize) / size_of::<RawRecord>();
    // SAFETY: the linker concatenates the 8-aligned, 24-byte records
    // contiguously between the two symbols (caller), and the section is
    // mapped for the life of the process.
    unsafe { std::slice::from_raw_parts(start, n) }
}

/// Decodes a field holding `target - &field`.
fn absolute(field: &i64) -> usize {
    (field as *const i64 as usize).wrapping_add(*field as usize)
}

/// Every inline site of the binary, in section order, sentinel removed.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn inline_sites() -> Vec<InlineSite> {
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
    // SAFETY: only site macros and the sentinel above write this section.
    let records = unsafe { section(SITES_START.as_ptr(), SITES_STOP.as_ptr()) };
    records
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
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn link_stubs() -> Vec<StubRecord> {
    // SAFETY: emits only the sentinel data record, as in `inline_sites`.
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
    // SAFETY: only stub macros and the sentinel above write this section.
    let records = unsafe { section(STUBS_START.as_ptr(), STUBS_STOP.as_ptr()) };
    records
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

/// Other targets have no records: every site is atomic.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(crate) fn inline_sites() -> Vec<InlineSite> {
    Vec::new()
}

/// Other targets have no records: every stub is atomic.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(crate) fn link_stubs() -> Vec<StubRecord> {
    Vec::new()
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
