//! Targets without an encoder: nothing is patched, every site is atomic.
//!
//! The functions exist so the core compiles unchanged; the runtime never calls
//! them because [`PATCHING`] is false.

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
pub(crate) fn prepare_serialize() -> u8 {
    0
}
pub(crate) fn serialize_local() {
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}
