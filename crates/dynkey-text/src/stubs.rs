//! Run-time trampolines: stubs in pages mapped at run time.
//!
//! Sites declared by data (plugins, a site file, a demo) cannot have
//! compiled-in code, so each gets a stub in a code page: a value stub
//! (`mov eax, state; ret`) that callers call through its address, or a call
//! stub that jumps to the static call's current target. Either way a change
//! rewrites one aligned word per *stub*, whatever the number of callers.
//!
//! Pages come in chunks, mapped near the binary's text so a `jmp rel32`
//! reaches its Rust targets; a call whose targets are out of reach (say, in
//! a shared library far away) gets the far form, whose 8-byte absolute
//! target is itself the aligned word that changes. No displacement is ever
//! truncated.
//!
//! Slots are never freed: a stub's address stays valid for the life of the
//! process, which is what lets handles be `Copy`-cheap and lock-free.
//!
//! A fresh slot is written (through the alias) before its address is handed
//! out. No thread has run those bytes, so no stale instruction can exist for
//! them; the handle reaches other threads through ordinary synchronization.

use crate::SiteKind;
use crate::arch;
use crate::code_table::{CodeTable, KeyRef, Place, Stub, StubForm, word_for};
use crate::error::Error;
use crate::key::{CodePtr, FnPtr, RawCall, RawKey};
use crate::lock::TEXT;
use crate::startup::setup;

/// Slot alignment (a cache-friendly fetch block).
const SLOT_ALIGN: usize = 16;

/// A run-time value site: `get()` is the key's state, read by calling a stub
/// (patched kind) or loading the key's code byte (atomic kind).
#[derive(Debug, Clone, Copy)]
pub struct ValueSite {
    repr: ValueRepr,
}

#[derive(Debug, Clone, Copy)]
enum ValueRepr {
    Stub(extern "C" fn() -> u32),
    Atomic(&'static RawKey),
}

impl ValueSite {
    /// A new site testing `key`.
    pub fn new(key: &'static RawKey) -> Result<ValueSite, Error> {
        let Some(slot) = register(KeyRef::Bool(key))? else {
            return Ok(ValueSite {
                repr: ValueRepr::Atomic(key),
            });
        };
        // SAFETY: the slot holds `mov eax, imm32; nop2; ret`, a complete
        // function with the C ABI's `() -> u32` contract, and stays mapped
        // forever (`pages.rs`: regions are never unmapped); later stores
        // keep it so ([ONE-STORE]: only other value words).
        let f = unsafe { std::mem::transmute::<usize, extern "C" fn() -> u32>(slot) };
        Ok(ValueSite {
            repr: ValueRepr::Stub(f),
        })
    }

    /// The key's state as this site sees it.
    #[inline]
    pub fn get(&self) -> bool {
        match self.repr {
            ValueRepr::Stub(f) => f() != 0,
            ValueRepr::Atomic(k) => k.check(),
        }
    }

    /// The kind of this site.
    pub fn kind(&self) -> SiteKind {
        match self.repr {
            ValueRepr::Stub(_) => SiteKind::Trampoline,
            ValueRepr::Atomic(_) => SiteKind::Atomic,
        }
    }

    /// The stub's entry address (None for the atomic kind).
    pub fn stub_addr(&self) -> Option<usize> {
        match self.repr {
            ValueRepr::Stub(f) => Some(f as usize),
            ValueRepr::Atomic(_) => None,
        }
    }
}

/// A run-time static call: a typed, patchable function pointer.
///
/// ```
/// fn inc(x: u32) -> u32 { x + 1 }
/// fn dec(x: u32) -> u32 { x - 1 }
/// let call = dynkey_text::RuntimeCall::new(&[inc as fn(u32) -> u32, dec]).unwrap();
/// assert_eq!(call.get()(10), 11);
/// dynkey_text::commit(&[dynkey_text::Change::Call(call.raw(), 1)]).unwrap();
/// assert_eq!(call.get()(10), 9);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RuntimeCall<F: FnPtr> {
    raw: &'static RawCall,
    stub: Option<F>,
}

impl<F: FnPtr> RuntimeCall<F> {
    /// A call over `targets` (the first is current), with its own stub.
    /// The call's storage lives for the rest of the process.
    pub fn new(targets: &[F]) -> Result<RuntimeCall<F>, Error> {
        let codes: &'static [CodePtr] = targets.iter().map(|f| f.code()).collect::<Vec<_>>().leak();
        if codes.is_empty() {
            return Err(Error::NoSuchTarget {
                index: 0,
                targets: 0,
            });
        }
        let raw: &'static RawCall = Box::leak(Box::new(RawCall::new(codes)));
        // SAFETY: every target of `raw` is one of `targets`, all of type F.
        unsafe { Self::over(raw) }
    }

    /// Another stub over an existing call.
    ///
    /// # Safety
    ///
    /// Every target of `raw` must be a function of type `F`.
    pub unsafe fn over(raw: &'static RawCall) -> Result<RuntimeCall<F>, Error> {
        let Some(entry) = register(KeyRef::Call(raw))? else {
            return Ok(RuntimeCall { raw, stub: None });
        };
        // SAFETY: the stub jumps to raw's current target, of type F (caller),
        // touching no argument register or stack slot; it stays mapped forever.
        let stub = unsafe { F::from_code(CodePtr::new(entry as *const ())) };
        Ok(RuntimeCall {
            raw,
            stub: Some(stub),
        })
    }

    /// The function to call: the stub (patched kind) or the current target
    /// loaded from the call (atomic kind).
    #[inline]
    pub fn get(&self) -> F {
        match self.stub {
            Some(f) => f,
            // SAFETY: the call's targets are all of type F (constructor).
            None => unsafe { F::from_code(self.raw.current()) },
        }
    }

    /// The call's storage, for [`Change::Call`](crate::Change::Call).
    pub fn raw(&self) -> &'static RawCall {
        self.raw
    }

    /// The kind of this site.
    pub fn kind(&self) -> SiteKind {
        if self.stub.is_some() {
            SiteKind::Trampoline
        } else {
            SiteKind::Atomic
        }
    }
}

/// Registers a run-time site of `key`: a new stub (its entry address) when
/// patching, else one more atomic site (`None`).
fn register(key: KeyRef) -> Result<Option<usize>, Error> {
    let setup = setup()?;
    let mut guard = TEXT.lock();
    let table = guard.as_mut().expect("started");
    if !setup.patching {
        table.sites_mut(key).atomic += 1;
        return Ok(None);
    }
    // A fork child copies its pages first; a detached one must not fill
    // slots of its parent's pages.
    crate::fork::ensure_own_pages(table)?;
    new_stub(table, key).map(Some)
}

/// Allocates, fills and registers a stub for `key`; returns its entry.
/// A call stub is near (`jmp rel32`) when every target is in reach of its
/// slot, else far. The caller holds the text lock (through `table`).
fn new_stub(table: &mut CodeTable, key: KeyRef) -> Result<usize, Error> {
    let CodeTable { stubs, regions, .. } = table;
    let len = match key {
        KeyRef::Bool(_) => 8,
        KeyRef::Call(_) => arch::FAR_SLOT_LEN,
    }
    .next_multiple_of(SLOT_ALIGN);
    let slot = stubs.alloc(regions, len)?;
    let state = key.code_state();
    let near = |c: &RawCall| {
        c.targets()
            .iter()
            .all(|t| arch::near_call_word(slot, t.addr()).is_ok())
    };
    let (entry, stub) = match key {
        KeyRef::Bool(_) => (
            slot,
            Stub {
                word: slot,
                form: StubForm::Value,
            },
        ),
        KeyRef::Call(c) if near(c) => (
            slot,
            Stub {
                word: slot,
                form: StubForm::NearCall,
            },
        ),
        KeyRef::Call(_) => (
            slot + arch::FAR_ENTRY_OFFSET,
            Stub {
                word: slot + arch::FAR_IMM_OFFSET,
                form: StubForm::FarCall,
            },
        ),
    };
    // The slot: int3 padding around the stub's fixed bytes (far calls), and
    // the word for the key's current state where it belongs.
    let mut bytes = vec![arch::INT3; len];
    if stub.form == StubForm::FarCall {
        bytes[..arch::FAR_SLOT_LEN].copy_from_slice(&arch::far_call_slot(state));
    }
    let at = stub.word - slot;
    let word = word_for(Place::Stub(&stub), 0, state)?;
    bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
    // The caller publishes the address only after this, through ordinary
    // synchronization (the text lock's release, a handle sent to a thread).
    // SAFETY: text lock held (through `table`); the slot was just allocated
    // and never handed out, so no thread executes it (no old form to keep).
    unsafe { table.region(slot).fill_fresh(slot, &bytes) };
    table.sites_mut(key).stubs.push(stub);
    Ok(entry)
}
