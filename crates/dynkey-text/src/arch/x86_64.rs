//! x86-64 encodings (Linux).
//!
//! Sources: Intel SDM vol. 2 (NOP `0F 1F /0` and `66 90`, JMP `E9 cd`,
//! JMP `FF /4`, MOV `B8+rd id`, MOV `REX.W B8+rd io`, MOVZX `0F B6 /r`,
//! RET `C3`, INT3 `CC`), vol. 3 section 8.1.3 (cross-modifying code needs a serializing
//! instruction on the executing core).
//!
//! Branch sites are 5 bytes and toggle between the recommended 5-byte NOP and
//! a `jmp rel32`. Stubs are built so the part that changes is one whole
//! aligned word:
//!
//! | stub | compiled-in word | patched word |
//! |---|---|---|
//! | link-time value | `movzx eax, byte [rip+code]; ret` (starts 0, 7) | `mov eax, imm32; xchg ax, ax; ret` (starts 0, 5, 7) |
//! | run-time value | (none) | `mov eax, imm32; xchg ax, ax; ret` |
//! | link-time call | `jmp [rip+code]; int3; int3` (starts 0, 6, 7) | `jmp rel32; int3 x3` (starts 0, 5, 6, 7) |
//! | run-time call, near | (none) | `jmp rel32; int3 x3` |
//! | run-time call, far | (none) | the `imm64` of `movabs r11, imm64; jmp r11` |
//!
//! **Instruction starts survive every rewrite.** A thread may be stopped
//! (preempted, or in a signal handler) between two instructions of a word
//! that is rewritten under it; it resumes at its saved address in the *new*
//! bytes. So every instruction start of a word's old form is an instruction
//! start of its new form: the patched value stub pads with the 2-byte NOP
//! `66 90` (SDM vol. 2, NOP: "xchg ax, ax" is the 2-byte form) so its `ret`
//! stays at byte 7 where the compiled-in `movzx`'s `ret` is, instead of
//! leaving an `int3` there. Branch sites are one instruction in either form
//! (their `0x2e` prefixes never change). A far call's immediate is inside
//! one instruction. `code_table.rs` tests this for every transition the
//! engine performs, with a decoder of exactly these opcodes.
//!
//! The far call form starts 2 bytes before an aligned word so its 8-byte
//! immediate *is* the aligned word: retargeting it is one store, and no
//! displacement is ever truncated.

use crate::error::EncodeError;

/// This architecture can patch code.
pub(crate) const PATCHING: bool = true;

/// Length of a branch site.
pub(crate) const BRANCH_LEN: usize = 5;

/// The 5-byte NOP the SDM recommends: `nop dword ptr [rax + rax*1 + 0]`.
pub(crate) const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

const JMP_REL32: u8 = 0xe9;
/// `int3`: fills stub padding, so a stray jump into it traps at once.
pub(crate) const INT3: u8 = 0xcc;

/// Bytes from the start of a far call stub slot to its entry point.
pub(crate) const FAR_ENTRY_OFFSET: usize = 6;
/// Bytes from the start of a far call stub slot to its aligned immediate.
pub(crate) const FAR_IMM_OFFSET: usize = 8;
/// Size of a far call stub slot.
pub(crate) const FAR_SLOT_LEN: usize = 24;

/// The displacement of a control transfer whose next instruction starts at
/// `next` and which lands on `target`, if it fits in 32 bits.
pub(crate) fn rel32(next: usize, target: usize) -> Result<i32, EncodeError> {
    let delta = (target as i64).wrapping_sub(next as i64);
    i32::try_from(delta).map_err(|_| EncodeError::OutOfRange {
        from: next,
        to: target,
    })
}

/// `jmp rel32` at `site` landing on `target`.
pub(crate) fn jmp5(site: usize, target: usize) -> Result<[u8; 5], EncodeError> {
    let d = rel32(site + 5, target)?.to_le_bytes();
    Ok([JMP_REL32, d[0], d[1], d[2], d[3]])
}

/// Where the `jmp rel32` in `bytes` (at `site`) lands, if it is one.
pub(crate) fn jmp5_target(site: usize, bytes: &[u8]) -> Option<usize> {
    if bytes.len() != 5 || bytes[0] != JMP_REL32 {
        return None;
    }
    let d = i32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Some((site as i64 + 5 + d as i64) as usize)
}

/// Patched value stub: `mov eax, value; xchg ax, ax; ret`. The 2-byte NOP
/// keeps the `ret` at byte 7, where the compiled-in form has its `ret` (see
/// the module docs: a thread stopped there resumes on a `ret`, not an `int3`).
pub(crate) fn value_word(value: bool) -> u64 {
    u64::from_le_bytes([0xb8, value as u8, 0, 0, 0, 0x66, 0x90, 0xc3])
}

/// Whether `word` is the compiled-in link-time value stub,
/// `movzx eax, byte ptr [rip + rel32]; ret`.
pub(crate) fn is_compiled_value_word(word: u64) -> bool {
    let b = word.to_le_bytes();
    b[0..3] == [0x0f, 0xb6, 0x05] && b[7] == 0xc3
}

/// Whether `word` is the compiled-in link-time call stub,
/// `jmp qword ptr [rip + rel32]; int3; int3`.
pub(crate) fn is_compiled_call_word(word: u64) -> bool {
    let b = word.to_le_bytes();
    b[0..2] == [0xff, 0x25] && b[6..8] == [INT3, INT3]
}

/// Patched near call stub at `word_addr`: `jmp target; int3 x3`.
pub(crate) fn near_call_word(word_addr: usize, target: usize) -> Result<u64, EncodeError> {
    let j = jmp5(word_addr, target)?;
    Ok(u64::from_le_bytes([
        j[0], j[1], j[2], j[3], j[4], INT3, INT3, INT3,
    ]))
}

/// The bytes of a far call stub slot (see the module table): int3 padding,
/// `movabs r11, target` ending the first word, `jmp r11` after the immediate.
pub(crate) fn far_call_slot(target: usize) -> [u8; FAR_SLOT_LEN] {
    let mut slot = [INT3; FAR_SLOT_LEN];
    slot[6] = 0x49; // REX.W + REX.B: 64-bit operand, r11
    slot[7] = 0xbb; // B8 + 3: mov r11, imm64
    slot[8..16].copy_from_slice(&(target as u64).to_le_bytes());
    slot[16..19].copy_from_slice(&[0x41, 0xff, 0xe3]); // jmp r11
    slot
}

/// Reads the aligned word at `addr` of an executable view, with one 8-byte
/// load that is outside Rust's memory model (the bytes are code, and may be
/// a mapping Rust never wrote).
///
/// # Safety
///
/// `addr` is 8-aligned and mapped readable for the duration of the call.
pub(crate) unsafe fn read_code_word(addr: usize) -> u64 {
    let word: u64;
    // SAFETY: the caller guarantees an aligned, readable address; an aligned
    // 8-byte `mov` is one single-copy-atomic access (SDM vol. 3, 8.1.1), so
    // a concurrent [ONE-STORE] store through an alias is seen whole or not
    // at all. The asm only reads memory.
    unsafe {
        core::arch::asm!(
            "mov {w}, qword ptr [{a}]",
            a = in(reg) addr,
            w = out(reg) word,
            options(nostack, preserves_flags, readonly),
        )
    };
    word
}

/// How this process serializes its core, chosen once (0: not yet).
static SERIALIZER: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
const BY_SERIALIZE: u8 = 1;
const BY_IRET: u8 = 2;
const BY_CPUID: u8 = 3;

/// Picks the cheapest serializing instruction this process may use.
fn choose_serializer() -> u8 {
    // SERIALIZE where the CPU has it: CPUID.(EAX=7, ECX=0):EDX[14].
    if core::arch::x86_64::__cpuid_count(7, 0).edx & (1 << 14) != 0 {
        return BY_SERIALIZE;
    }
    // IRET to self, unless user shadow stacks (CET) are on: a same-privilege
    // IRET then checks a shadow-stack frame that was never pushed (#CP).
    const ARCH_SHSTK_STATUS: libc::c_int = 0x5005;
    const ARCH_SHSTK_SHSTK: u64 = 1;
    let mut features: u64 = 0;
    // SAFETY: ARCH_SHSTK_STATUS writes one u64 through the pointer given;
    // kernels without it fail with EINVAL and write nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_SHSTK_STATUS,
            &mut features as *mut u64,
        )
    };
    if r == 0 && features & ARCH_SHSTK_SHSTK != 0 {
        BY_CPUID
    } else {
        BY_IRET
    }
}

/// Serializes this core's instruction stream (SDM 8.1.3): after it, this
/// thread fetches the bytes written through the alias, not stale ones.
/// Async-signal-safe once [`prepare_serialize`] ran.
///
/// CPUID serializes everywhere but exits to the hypervisor in a VM (3.8 µs
/// in a KVM guest here, most of a rendezvous), so it is the last resort.
/// SERIALIZE is used where the CPU has it; otherwise IRET to self (SDM
/// vol. 3, 10.3: IRET is serializing), the kernel's `iret_to_self`
/// (arch/x86/include/asm/sync_core.h), unless shadow stacks forbid it.
pub(crate) fn serialize_local() {
    let mut how = SERIALIZER.load(core::sync::atomic::Ordering::Relaxed);
    if how == 0 {
        how = prepare_serialize();
    }
    match how {
        // SAFETY: SERIALIZE (0f 01 e8) only serializes; the CPU has it.
        BY_SERIALIZE => unsafe {
            core::arch::asm!(".byte 0x0f, 0x01, 0xe8", options(nostack, preserves_flags))
        },
        BY_IRET => iret_to_self(),
        _ => {
            let _ = core::arch::x86_64::__cpuid(0);
        }
    }
}

/// Chooses the serializing instruction now (so a signal handler never has to).
pub(crate) fn prepare_serialize() -> u8 {
    let how = choose_serializer();
    // Relaxed: every thread computes the same value.
    SERIALIZER.store(how, core::sync::atomic::Ordering::Relaxed);
    how
}

fn iret_to_self() {
    // The asm pushes a five-word frame (SS, the RSP from before the pushes,
    // RFLAGS, CS, the address of label 2) for IRETQ to pop.
    // SAFETY: IRETQ pops exactly that frame: RSP, segments and RFLAGS end as
    // pushed, execution goes on at label 2. It uses the stack (no `nostack`)
    // and clobbers only `tmp` and the flags (`add` runs before `pushfq`).
    unsafe {
        core::arch::asm!(
            "mov {tmp:e}, ss",
            "push {tmp}",
            "push rsp",
            "add qword ptr [rsp], 8",
            "pushfq",
            "mov {tmp:e}, cs",
            "push {tmp}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "iretq",
            "2:",
            tmp = out(reg) _,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_serializer_returns_to_the_next_instruction() {
        iret_to_self();
        let _ = core::arch::x86_64::__cpuid(0);
        assert!(matches!(
            prepare_serialize(),
            BY_SERIALIZE | BY_IRET | BY_CPUID
        ));
        let mut x = 1u64;
        for _ in 0..1000 {
            serialize_local();
            x = x.wrapping_mul(3);
        }
        assert_eq!(x, 3u64.wrapping_pow(1000), "state survives the IRET frame");
    }

    #[test]
    fn code_words_read_what_was_stored() {
        let w: u64 = 0x1122_3344_5566_7788;
        // SAFETY: a local, 8-aligned and readable.
        assert_eq!(unsafe { read_code_word(&w as *const u64 as usize) }, w);
    }

    #[test]
    fn nop5_is_the_recommended_form() {
        assert_eq!(NOP5, [0x0f, 0x1f, 0x44, 0x00, 0x00]);
    }

    #[test]
    fn jmp5_exact_bytes() {
        assert_eq!(
            jmp5(0x1000, 0x1005).unwrap(),
            [0xe9, 0, 0, 0, 0],
            "jump to the next instruction"
        );
        assert_eq!(
            jmp5(0x1000, 0x1000).unwrap(),
            [0xe9, 0xfb, 0xff, 0xff, 0xff],
            "jump to itself is -5"
        );
        assert_eq!(jmp5(0x1000, 0x1105).unwrap(), [0xe9, 0x00, 0x01, 0, 0]);
        assert_eq!(jmp5_target(0x1000, &[0xe9, 0x00, 0x01, 0, 0]), Some(0x1105));
        assert_eq!(jmp5_target(0x1000, &NOP5), None);
    }

    #[test]
    fn rel32_range_is_checked_not_truncated() {
        let next = 0x7000_0000_0000usize;
        assert!(rel32(next, next + i32::MAX as usize).is_ok());
        assert!(
            rel32(next, next - (i32::MAX as usize) - 1).is_ok(),
            "i32::MIN reaches"
        );
        let err = rel32(next, next + i32::MAX as usize + 1).unwrap_err();
        assert_eq!(
            err,
            EncodeError::OutOfRange {
                from: next,
                to: next + i32::MAX as usize + 1
            }
        );
        assert!(rel32(next, next - (i32::MAX as usize) - 2).is_err());
        assert!(jmp5(0x1000, 0x1000 + (1 << 33)).is_err(), "8 GiB away");
    }

    #[test]
    fn value_words() {
        assert_eq!(
            value_word(true).to_le_bytes(),
            [0xb8, 1, 0, 0, 0, 0x66, 0x90, 0xc3]
        );
        assert_eq!(
            value_word(false).to_le_bytes(),
            [0xb8, 0, 0, 0, 0, 0x66, 0x90, 0xc3]
        );
        let compiled = u64::from_le_bytes([0x0f, 0xb6, 0x05, 1, 2, 3, 4, 0xc3]);
        assert!(is_compiled_value_word(compiled));
        assert!(!is_compiled_value_word(value_word(true)));
    }

    #[test]
    fn call_words() {
        let w = near_call_word(0x2000, 0x1000).unwrap().to_le_bytes();
        assert_eq!(w[0], 0xe9);
        assert_eq!(
            i32::from_le_bytes([w[1], w[2], w[3], w[4]]),
            0x1000 - 0x2005
        );
        assert_eq!(&w[5..], &[0xcc; 3]);
        assert!(is_compiled_call_word(u64::from_le_bytes([
            0xff, 0x25, 9, 9, 9, 9, 0xcc, 0xcc
        ])));
        let far = far_call_slot(0x1122_3344_5566_7788);
        assert_eq!(&far[..6], &[0xcc; 6]);
        assert_eq!(&far[6..8], &[0x49, 0xbb]);
        assert_eq!(
            far[FAR_IMM_OFFSET..16],
            0x1122_3344_5566_7788u64.to_le_bytes()
        );
        assert_eq!(&far[16..19], &[0x41, 0xff, 0xe3]);
        assert_eq!(
            FAR_ENTRY_OFFSET + 2,
            FAR_IMM_OFFSET,
            "the immediate follows the 2 opcode bytes"
        );
    }
}
