//! Keys: what sites test.
//!
//! A [`RawKey`] is a boolean with two bytes:
//! - `code`: what the atomic kind of site reads (and what the compiled-in
//!   form of an inline site checks before init patches it). Written in a
//!   commit's write phase, like instruction bytes.
//! - `state`: the published value, stored after the rendezvous. Reading it
//!   as enabled implies every site's code already says enabled (G4).
//!
//! A [`RawCall`] is a static call's current target: `code` holds the target
//! address (what compiled-in call stubs jump through), `state` the published
//! index into the call's targets.
//!
//! # Orderings
//!
//! `state` is stored `Release` after the rendezvous and loaded `Acquire` by
//! [`RawKey::is_enabled`]: whoever sees the new state also sees everything
//! the commit did before publishing. `code` is loaded `Relaxed` by sites: a
//! site needs the value, not ordering, and visibility on return (G2) comes
//! from the rendezvous.

use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicUsize, Ordering};

/// A boolean key's storage. Put it in a `static` (or leak it) and point
/// sites at it.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct RawKey {
    /// Offset 0: compiled-in checks address it as `[rip + key]`.
    code: AtomicU8,
    state: AtomicU8,
    /// 1 + the index of the key's sites in the runtime's table (0: none
    /// yet), so a commit finds them without a lookup (the kernel's
    /// `key->entries`). Read and written under the text lock only.
    slot: AtomicU32,
}

impl RawKey {
    /// A key starting in `enabled`.
    pub const fn new(enabled: bool) -> RawKey {
        RawKey {
            code: AtomicU8::new(enabled as u8),
            state: AtomicU8::new(enabled as u8),
            slot: AtomicU32::new(0),
        }
    }

    /// The published state (G4: true implies every site is already patched).
    #[inline]
    pub fn is_enabled(&self) -> bool {
        // Acquire: pairs with the Release in the commit's publish step.
        self.state.load(Ordering::Acquire) != 0
    }

    /// The atomic kind of site: a relaxed load of the code byte.
    #[inline(always)]
    pub fn check(&self) -> bool {
        // Relaxed: see the module's Orderings section.
        self.code.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn code(&self) -> &AtomicU8 {
        &self.code
    }

    pub(crate) fn publish(&self, enabled: bool) {
        // Release: pairs with the Acquire in `is_enabled`.
        self.state.store(enabled as u8, Ordering::Release);
    }

    pub(crate) fn addr(&self) -> usize {
        self as *const RawKey as usize
    }

    pub(crate) fn slot(&self) -> &AtomicU32 {
        &self.slot
    }
}

/// Statics that sites may name: a [`RawKey`] sits at offset 0, so a site's
/// assembly can address the key through the static's own symbol.
///
/// # Safety
///
/// Implementors must be `#[repr(C)]` (or `#[repr(transparent)]`) with a
/// [`RawKey`] as their first field, and `raw_key` must return that field.
pub unsafe trait KeyStatic: Sync + 'static {
    /// The key at offset 0.
    fn raw_key(&self) -> &RawKey;
}

// SAFETY: a RawKey is trivially at offset 0 of itself.
unsafe impl KeyStatic for RawKey {
    fn raw_key(&self) -> &RawKey {
        self
    }
}

/// The address of a function, storable in statics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct CodePtr(*const ());

// SAFETY: a code address is immutable data; sharing it shares nothing mutable.
unsafe impl Sync for CodePtr {}
// SAFETY: as above.
unsafe impl Send for CodePtr {}

impl CodePtr {
    /// Wraps a function's address (`f as *const ()`).
    pub const fn new(p: *const ()) -> CodePtr {
        CodePtr(p)
    }
    /// The address.
    pub fn addr(self) -> usize {
        self.0 as usize
    }
    /// The raw pointer.
    pub const fn as_ptr(self) -> *const () {
        self.0
    }
}

/// A static call's storage: its targets and which one is current.
#[repr(C, align(8))]
#[derive(Debug)]
pub struct RawCall {
    /// Offset 0: compiled-in call stubs jump through it (`jmp [rip + call]`).
    code: AtomicPtr<()>,
    state: AtomicUsize,
    targets: &'static [CodePtr],
    /// As [`RawKey`]'s: where the runtime keeps the call's stubs.
    slot: AtomicU32,
}

impl RawCall {
    /// A call whose current target is `targets[0]`.
    ///
    /// # Panics
    ///
    /// At compile time (in a `static`) if `targets` is empty.
    pub const fn new(targets: &'static [CodePtr]) -> RawCall {
        assert!(
            !targets.is_empty(),
            "a static call needs at least one target"
        );
        RawCall {
            code: AtomicPtr::new(targets[0].0 as *mut ()),
            state: AtomicUsize::new(0),
            targets,
            slot: AtomicU32::new(0),
        }
    }

    /// The published target index.
    pub fn target_index(&self) -> usize {
        // Acquire: pairs with the Release in the commit's publish step.
        self.state.load(Ordering::Acquire)
    }

    /// Every registered target.
    pub fn targets(&self) -> &'static [CodePtr] {
        self.targets
    }

    /// The atomic kind of call site: the current target, loaded relaxed.
    #[inline(always)]
    pub fn current(&self) -> CodePtr {
        CodePtr(self.code.load(Ordering::Relaxed))
    }

    pub(crate) fn code(&self) -> &AtomicPtr<()> {
        &self.code
    }

    pub(crate) fn publish(&self, index: usize) {
        // Release: pairs with the Acquire in `target_index`.
        self.state.store(index, Ordering::Release);
    }

    pub(crate) fn addr(&self) -> usize {
        self as *const RawCall as usize
    }

    pub(crate) fn slot(&self) -> &AtomicU32 {
        &self.slot
    }
}

/// One change in a commit.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// Set a boolean key.
    Key(&'static RawKey, bool),
    /// Switch a static call to `targets[index]`.
    Call(&'static RawCall, usize),
}

/// Function pointer types, so run-time call stubs can be typed.
///
/// # Safety
///
/// Implementors must be function pointer types (one pointer wide, any ABI).
pub unsafe trait FnPtr: Copy + Send + Sync + 'static {
    /// The function's address.
    fn code(self) -> CodePtr;
    /// A function pointer of this type at `c`.
    ///
    /// # Safety
    ///
    /// `c` must be the address of a function (or a stub that jumps to one)
    /// with exactly this type's signature and ABI.
    unsafe fn from_code(c: CodePtr) -> Self;
}

macro_rules! impl_fn_ptr {
    ($($arg:ident),*) => {
        impl_fn_ptr!(@one fn($($arg),*) -> R; $($arg),*);
        impl_fn_ptr!(@one extern "C" fn($($arg),*) -> R; $($arg),*);
        impl_fn_ptr!(@one unsafe fn($($arg),*) -> R; $($arg),*);
        impl_fn_ptr!(@one unsafe extern "C" fn($($arg),*) -> R; $($arg),*);
    };
    (@one $ty:ty; $($arg:ident),*) => {
        // SAFETY: $ty is a function pointer type.
        unsafe impl<R: 'static, $($arg: 'static),*> FnPtr for $ty {
            fn code(self) -> CodePtr {
                CodePtr(self as *const ())
            }
            unsafe fn from_code(c: CodePtr) -> Self {
                // SAFETY: function pointers are one pointer wide; the caller
                // guarantees the signature.
                unsafe { core::mem::transmute::<*const (), Self>(c.0) }
            }
        }
    };
}

impl_fn_ptr!();
impl_fn_ptr!(A);
impl_fn_ptr!(A, B);
impl_fn_ptr!(A, B, C);
impl_fn_ptr!(A, B, C, D);
impl_fn_ptr!(A, B, C, D, E);
impl_fn_ptr!(A, B, C, D, E, F);

#[cfg(test)]
mod tests {
    use super::*;

    fn one() -> u32 {
        1
    }
    fn two() -> u32 {
        2
    }
    static TARGETS: [CodePtr; 2] = [
        CodePtr::new(one as *const ()),
        CodePtr::new(two as *const ()),
    ];
    static CALL: RawCall = RawCall::new(&TARGETS);

    #[test]
    fn key_starts_in_its_initial_state() {
        let k = RawKey::new(true);
        assert!(k.is_enabled() && k.check());
        let k = RawKey::new(false);
        assert!(!k.is_enabled() && !k.check());
        assert_eq!(
            core::mem::offset_of!(RawKey, code),
            0,
            "compiled-in checks address the code byte as the key"
        );
    }

    #[test]
    fn call_starts_at_its_first_target() {
        assert_eq!(CALL.target_index(), 0);
        assert_eq!(CALL.current().addr(), one as *const () as usize);
        // SAFETY: TARGETS[1] is `two`, a fn() -> u32.
        let f: fn() -> u32 = unsafe { FnPtr::from_code(TARGETS[1]) };
        assert_eq!(f(), 2);
        assert_eq!(FnPtr::code(two as fn() -> u32), TARGETS[1]);
    }
}
