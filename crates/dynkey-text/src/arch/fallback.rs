//! Builds without an encoder (other targets, or `--cfg dynkey_atomic_only`):
//! nothing is patched, every site is atomic.
//!
//! The functions exist so the core compiles unchanged; start-up never calls
//! them because [`PATCHING`] is false, so no code page is ever mapped.

use crate::error::EncodeError;

/// This architecture cannot patch code.
pub(crate) const PATCHING: bool = false;
/// Length of a branch site (unused).
pub(crate) const BRANCH_LEN: usize = 5;
/// Unused on this target.
pub(crate) const NOP5: [u8; 5] = [0; 5];
/// Unused on this target.
pub(crate) const FAR_ENTRY_OFFSET: usize = 0;
/// Unused on this target.
pub(crate) const FAR_IMM_OFFSET: usize = 0;
/// Unused on this target.
pub(crate) const FAR_SLOT_LEN: usize = 8;
/// Unused on this target.
pub(crate) const INT3: u8 = 0;

pub(crate) fn jmp5(_site: usize, target: usize) -> Result<[u8; 5], EncodeError> {
    Err(EncodeError::OutOfRange {
        from: 0,
        to: target,
    })
}
pub(crate) fn jmp5_target(_site: usize, _bytes: &[u8]) -> Option<usize> {
    None
}
pub(crate) fn value_word(_value: bool) -> u64 {
    0
}
pub(crate) fn is_compiled_value_word(_word: u64) -> bool {
    false
}
pub(crate) fn is_compiled_call_word(_word: u64) -> bool {
    false
}
pub(crate) fn near_call_word(_word_addr: usize, target: usize) -> Result<u64, EncodeError> {
    Err(EncodeError::OutOfRange {
        from: 0,
        to: target,
    })
}
pub(crate) fn far_call_slot(_target: usize) -> [u8; FAR_SLOT_LEN] {
    [0; FAR_SLOT_LEN]
}
/// Unused on this target (no code page is ever mapped).
///
/// # Safety
///
/// `addr` is 8-aligned and mapped readable.
pub(crate) unsafe fn read_code_word(addr: usize) -> u64 {
    // SAFETY: the caller's contract; never reached (PATCHING is false).
    unsafe { (addr as *const u64).read_volatile() }
}
pub(crate) fn prepare_serialize() -> u8 {
    0
}
pub(crate) fn serialize_local() {
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}
