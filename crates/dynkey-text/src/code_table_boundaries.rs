//! Instruction starts survive every rewrite the engine performs.
//!
//! A thread stopped between two instructions of a word (preempted, or in a
//! signal handler) resumes at its saved address in whatever the word holds
//! by then. So for every transition the engine can make, each instruction
//! that a thread can be stopped at in the old bytes (each instruction on
//! the path executed from the entry) must be an instruction on the executed
//! path of the new bytes too: a start that the new form never executes,
//! such as `int3` padding, is not enough (issue 10: the old patched value
//! stub, `mov eax, imm32; ret; int3; int3`, had an `int3` where the
//! compiled-in form's `ret` was, and a thread parked there died by
//! `SIGTRAP`).
//!
//! The decoder below knows exactly the opcodes the engine emits or expects
//! (and refuses anything else, so a new encoding cannot slip past it). The
//! compiled-in forms are read from this test binary's *file* (the bytes as
//! linked, whatever start-up did to memory since); the patched forms come
//! from [`word_for`], the one function every writer uses.

use super::*;
use crate::records;
use crate::takeover;

/// Length of the instruction at the start of `b`, for the engine's opcodes
/// only (Intel SDM vol. 2); None for anything else.
fn insn_len(b: &[u8]) -> Option<usize> {
    // Prefixes the engine uses: CS override (site padding), operand size
    // (the 2-byte NOP `66 90`).
    let p = b.iter().take_while(|&&x| x == 0x2e || x == 0x66).count();
    let op = &b[p..];
    let len = match *op.first()? {
        0x90 => 1,        // nop (`66 90`: xchg ax, ax)
        0xc3 | 0xcc => 1, // ret, int3
        0xe9 | 0xb8 => 5, // jmp rel32, mov eax, imm32
        0x0f => match (*op.get(1)?, *op.get(2)?) {
            (0x1f, 0x44) => 5, // nop dword [rax + rax*1 + disp8]
            (0xb6, 0x05) => 7, // movzx eax, byte [rip + disp32]
            _ => return None,
        },
        0xff if *op.get(1)? == 0x25 => 6, // jmp qword [rip + disp32]
        0x41 if op.get(1..3)? == [0xff, 0xe3] => 3, // jmp r11
        0x49 if *op.get(1)? == 0xbb => 10, // movabs r11, imm64
        _ => return None,
    };
    let n = p + len;
    (n <= b.len()).then_some(n)
}

/// The instructions executed from `entry`, in order: decoding follows the
/// fall-through until an unconditional transfer (`ret`, `jmp`) or a trap
/// (`int3`, which no executed path may reach), or the end of `bytes`.
fn executed(bytes: &[u8], entry: usize) -> Vec<usize> {
    let mut at = entry;
    let mut out = Vec::new();
    while at < bytes.len() {
        let op = &bytes[at..];
        let len = insn_len(op).unwrap_or_else(|| panic!("undecodable bytes {:02x?} at {at}", op));
        assert_ne!(
            op[0], 0xcc,
            "the executed path of {bytes:02x?} reaches int3 at {at}"
        );
        out.push(at);
        let ends = matches!(op[0], 0xc3 | 0xe9 | 0xff | 0x41);
        if ends {
            break;
        }
        at += len;
    }
    out
}

/// Every instruction start of `bytes`, decoding from offset 0 to the end.
fn starts(bytes: &[u8]) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        out.push(at);
        at += insn_len(&bytes[at..])
            .unwrap_or_else(|| panic!("undecodable bytes {:02x?} at {at}", &bytes[at..]));
    }
    out
}

/// A rewrite from `old` to `new` of bytes entered at `entry`.
fn check_at(what: &str, old: &[u8], new: &[u8], entry: usize) {
    let (o, n) = (executed(old, entry), executed(new, entry));
    assert!(
        o.iter().all(|s| n.contains(s)),
        "{what}: a thread stopped at one of {o:?} in {old:02x?} would not resume on an executed instruction of {new:02x?} ({n:?})"
    );
    // Every byte of both forms decodes (no stray opcode hides behind a ret).
    let _ = (starts(old), starts(new));
}

fn check(what: &str, old: &[u8], new: &[u8]) {
    check_at(what, old, new, 0)
}

/// The bytes of `[addr, addr + len)` as the file of this binary has them.
fn linked_bytes(addr: usize, len: usize) -> Vec<u8> {
    let page = crate::pages::page_size();
    let start = addr & !(page - 1);
    let map = takeover::maps()
        .into_iter()
        .find(|m| m.start <= addr && addr + len <= m.end)
        .expect("mapped from this binary");
    let text = takeover::file_text(&map, start, start + page).expect("readable file");
    text[addr - start..addr - start + len].to_vec()
}

static VALUE_KEY: RawKey = RawKey::new(false);
crate::link_value_stub!(fn boundary_value() => VALUE_KEY);

fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}
crate::link_call!(static BOUNDARY_CALL: fn() -> u32 = [one, two]);

static UNLIKELY_KEY: RawKey = RawKey::new(false);
static LIKELY_KEY: RawKey = RawKey::new(true);

#[inline(never)]
fn unlikely_site() -> bool {
    crate::branch_unlikely!(UNLIKELY_KEY)
}

#[inline(never)]
fn likely_site() -> bool {
    crate::branch_likely!(LIKELY_KEY)
}

fn bytes(w: u64) -> [u8; 8] {
    w.to_le_bytes()
}

#[test]
fn the_decoder_knows_every_form() {
    assert_eq!(starts(&[0x0f, 0xb6, 0x05, 1, 2, 3, 4, 0xc3]), [0, 7]);
    assert_eq!(starts(&bytes(arch::value_word(true))), [0, 5, 7]);
    assert_eq!(starts(&[0xff, 0x25, 1, 2, 3, 4, 0xcc, 0xcc]), [0, 6, 7]);
    assert_eq!(starts(&[0x2e, 0x2e, 0x0f, 0x1f, 0x44, 0, 0]), [0]);
    assert_eq!(
        starts(&arch::far_call_slot(0x1234))[..8],
        [0, 1, 2, 3, 4, 5, 6, 16]
    );
    assert_eq!(insn_len(&[0x0f, 0x0b]), None, "ud2 is not the engine's");
    assert_eq!(insn_len(&[0xb8, 0, 0]), None, "truncated");
    assert_eq!(executed(&[0x0f, 0xb6, 0x05, 1, 2, 3, 4, 0xc3], 0), [0, 7]);
    assert_eq!(executed(&bytes(arch::value_word(false)), 0), [0, 5, 7]);
    assert_eq!(
        executed(&arch::far_call_slot(0x1234), arch::FAR_ENTRY_OFFSET),
        [6, 16]
    );
    assert_eq!(
        executed(&[0x0f, 0x1f, 0x44, 0, 0], 0),
        [0],
        "falls out of the window"
    );
}

#[test]
fn the_old_value_stub_fails_the_check() {
    // Issue 10: `mov eax, imm32; ret; int3; int3` over the compiled-in
    // `movzx eax, byte [rip + d32]; ret`: a thread stopped at the `ret`
    // (byte 7) would resume on `int3`.
    let compiled = [0x0f, 0xb6, 0x05, 1, 2, 3, 4, 0xc3];
    let old_patched = [0xb8, 1, 0, 0, 0, 0xc3, 0xcc, 0xcc];
    let r = std::panic::catch_unwind(|| check("old value stub", &compiled, &old_patched));
    assert!(r.is_err(), "the check rejects the encoding that crashed");
}

#[test]
fn instruction_starts_survive_every_transition() {
    // Link-time value stub: compiled in, then patched both ways.
    let value_stub = records::link_stubs()
        .into_iter()
        .find(|r| r.key == VALUE_KEY.addr())
        .expect("the value stub's record");
    let compiled = linked_bytes(value_stub.word, 8);
    assert!(arch::is_compiled_value_word(u64::from_le_bytes(
        compiled[..].try_into().unwrap()
    )));
    let stub = Stub {
        word: value_stub.word,
        form: StubForm::Value,
    };
    let value = |s| bytes(word_for(Place::Stub(&stub), 0, s).unwrap());
    for s in [0, 1] {
        check(
            "link-time value stub, compiled -> patched",
            &compiled,
            &value(s),
        );
        for t in [0, 1] {
            check("value stub, patched -> patched", &value(s), &value(t));
        }
    }
    assert_eq!(boundary_value(), 0, "the stub runs");

    // Link-time call stub: compiled in, then any target, then any other.
    let call_stub = records::link_stubs()
        .into_iter()
        .find(|r| r.key == BOUNDARY_CALL.raw().addr())
        .expect("the call stub's record");
    let compiled = linked_bytes(call_stub.word, 8);
    assert!(arch::is_compiled_call_word(u64::from_le_bytes(
        compiled[..].try_into().unwrap()
    )));
    let near = Stub {
        word: call_stub.word,
        form: StubForm::NearCall,
    };
    // The real targets, and targets whose displacements spell opcodes.
    let w = call_stub.word;
    let mut targets: Vec<usize> = BOUNDARY_CALL
        .raw()
        .targets()
        .iter()
        .map(|t| t.addr())
        .collect();
    targets.extend([w + 5, w + 5 + 0xc3c3c3, w + 5 + 0x66_90c3, w - 0x2e2e2e]);
    let call = |t| bytes(word_for(Place::Stub(&near), 0, t).unwrap());
    for &t in &targets {
        check("link-time call stub, compiled -> near", &compiled, &call(t));
        for &u in &targets {
            check("near call stub, target -> target", &call(t), &call(u));
        }
    }
    assert_eq!(BOUNDARY_CALL.get()(), 1, "the stub runs");

    // Far call stub: only the aligned immediate changes.
    for &t in &targets {
        for &u in &[0usize, usize::MAX, 0xcc, 0xe9c3_6690] {
            let far = Stub {
                word: arch::FAR_IMM_OFFSET,
                form: StubForm::FarCall,
            };
            let mut old = arch::far_call_slot(t);
            let mut new = old;
            old[8..16].copy_from_slice(&bytes(word_for(Place::Stub(&far), 0, t).unwrap()));
            new[8..16].copy_from_slice(&bytes(word_for(Place::Stub(&far), 0, u).unwrap()));
            check_at(
                "far call stub, target -> target",
                &old,
                &new,
                arch::FAR_ENTRY_OFFSET,
            );
        }
    }

    // Inline sites, both polarities: compiled in (a jmp to the out-of-line
    // check), then nop or jmp, then the other. Only the 5 site bytes of the
    // word change; the prefixes and neighbouring instructions stay.
    for key in [&UNLIKELY_KEY, &LIKELY_KEY] {
        let site = records::inline_sites()
            .into_iter()
            .find(|s| s.key == key.addr())
            .expect("the site's record");
        let (word, off) = arch::word_of(site.site);
        let compiled = u64::from_le_bytes(linked_bytes(word, 8)[..].try_into().unwrap());
        let patched = |cur, s| word_for(Place::Inline(&site), cur, s).unwrap();
        let window = |w: u64| bytes(w)[off..off + arch::BRANCH_LEN].to_vec();
        for s in [0, 1] {
            let new = patched(compiled, s);
            let outside = |w: u64| {
                let mut b = bytes(w);
                b[off..off + 5].fill(0);
                b
            };
            assert_eq!(
                outside(compiled),
                outside(new),
                "only the site's bytes change"
            );
            check(
                "inline site, compiled -> patched",
                &window(compiled),
                &window(new),
            );
            for t in [0, 1] {
                check(
                    "inline site, patched -> patched",
                    &window(new),
                    &window(patched(new, t)),
                );
            }
        }
    }
    assert!(!unlikely_site() && likely_site(), "the sites run");
}
