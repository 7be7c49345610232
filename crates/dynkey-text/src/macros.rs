//! The compiled-in sites: inline branches and link-time stubs.
//!
//! On x86-64 Linux each macro emits assembly in three places:
//! - the site itself, in the function: `.p2align 3, 0x2e, 4` then a 5-byte
//!   `jmp rel32` spelled as bytes (so the assembler cannot shrink it),
//!   kept inside one aligned 8-byte word: with up to 4 bytes of padding, an
//!   instruction starting at offset 0-3 of a word ends by offset 8. The
//!   padding bytes are `0x2e` (a CS segment override, ignored in 64-bit
//!   mode) rather than a NOP, so they become prefixes of the site: a
//!   disabled site is one instruction (`2e.. 0f 1f 44 00 00`), an enabled
//!   one `2e.. e9 rel32`. The prefixes never change; the patched 5 bytes
//!   are all in one word. (GNU as pads long NOPs with the same prefix.)
//! - a record in the `dynkey_sites_v1` / `dynkey_stubs_v1` section (see
//!   `records.rs`);
//! - for branches, an out-of-line check in `.text.dynkey_check` that loads
//!   the key's code byte and jumps to the right arm.
//!
//! The compiled-in jump goes to that check, so a site is correct before
//! init, and forever if patching turns out to be unavailable at run time.
//! Init rewrites it to a `nop` or a `jmp` to the arm once patching works.
//! Each site names its key with a `sym` operand, so two functions whose only
//! difference is the key can never be merged into one. Each record also
//! carries a relocation (`R_X86_64_NONE`, no bytes) to this crate's
//! `__one_copy_per_binary`, so a binary that uses two copies of the crate
//! fails to link (`records.rs`).
//!
//! Without `cfg(dynkey_patching)` (other targets, `--cfg
//! dynkey_atomic_only`) the macros expand to the atomic kind: a relaxed
//! load and branch.

/// True when the key is enabled; the disabled path is the fall-through.
///
/// `$key` is a path to a `static` implementing [`KeyStatic`](crate::KeyStatic).
/// On x86-64 Linux this is a 5-byte NOP when the key is disabled (after
/// init), else a relaxed load and branch.
#[macro_export]
macro_rules! branch_unlikely {
    ($key:path) => {
        '__dynkey_site: {
            $crate::__site!($key, "1", "jne", break '__dynkey_site true);
            false
        }
    };
}

/// True when the key is enabled; the enabled path is the fall-through.
///
/// Like [`branch_unlikely!`], for keys that are usually on.
#[macro_export]
macro_rules! branch_likely {
    ($key:path) => {
        '__dynkey_site: {
            $crate::__site!($key, "0", "je", break '__dynkey_site false);
            true
        }
    };
}

/// Like [`branch_unlikely!`] for element `$index` (a constant expression)
/// of a `static` array of [`RawKey`](crate::RawKey)s: lets generated code
/// (tests, benches) put thousands of distinct sites on distinct keys.
///
/// `$keys` must name the array itself (`static KEYS: [RawKey; N]`). The
/// site refers to the static by symbol and finds key `$index` at
/// `symbol + $index * size_of::<RawKey>()`, which only an array satisfies:
/// behind a slice reference (`static KEYS: &[RawKey] = &ARR;`) that address
/// holds the reference's own bytes, so such a static is refused at compile
/// time.
///
/// ```compile_fail,E0308
/// use dynkey_text::{RawKey, branch_unlikely_at};
/// static ARR: [RawKey; 2] = [RawKey::new(false), RawKey::new(false)];
/// static KEYS: &[RawKey] = &ARR;
/// fn off() -> bool { branch_unlikely_at!(KEYS, 1) }
/// ```
///
/// Its twin, naming the array, compiles and reads key 1:
///
/// ```
/// use dynkey_text::{RawKey, branch_unlikely_at};
/// static ARR: [RawKey; 2] = [RawKey::new(false), RawKey::new(false)];
/// fn off() -> bool { branch_unlikely_at!(ARR, 1) }
/// assert!(!off());
/// ```
#[macro_export]
macro_rules! branch_unlikely_at {
    ($keys:path, $index:expr) => {
        '__dynkey_site: {
            $crate::__site_at!($keys, $index, "1", "jne", break '__dynkey_site true);
            false
        }
    };
}

#[cfg(dynkey_patching)]
#[doc(hidden)]
#[macro_export]
macro_rules! __site_at {
    ($keys:path, $index:expr, $polarity:literal, $jcc:literal, $on_jump:expr) => {
        $crate::__assert_key_array(&$keys);
        $crate::__site_asm!(
            $keys,
            {
                assert!($index < $keys.len(), "key index out of bounds");
                $index * ::core::mem::size_of::<$crate::RawKey>()
            },
            $polarity,
            $jcc,
            $on_jump
        );
    };
}

#[cfg(not(dynkey_patching))]
#[doc(hidden)]
#[macro_export]
macro_rules! __site_at {
    ($keys:path, $index:expr, "1", $jcc:literal, $on_jump:expr) => {
        $crate::__assert_key_array(&$keys);
        $crate::__atomic_record!(
            asm,
            $keys,
            {
                assert!($index < $keys.len(), "key index out of bounds");
                $index * ::core::mem::size_of::<$crate::RawKey>()
            },
            "0"
        );
        if $keys[$index].check() {
            $on_jump
        }
    };
}

/// The record of an atomic-kind site or stub (builds without patching):
/// the key at `$key + $off` and the kind (`records.rs`), plus a reference
/// to this crate's one-copy marker. Data only: no instruction is emitted.
#[cfg(not(dynkey_patching))]
#[doc(hidden)]
#[macro_export]
macro_rules! __atomic_record {
    (asm, $key:path, $off:expr, $kind:literal) => {
        // SAFETY: the asm emits only a data record into a section of its own
        // ([SITE-RECORDS]: it names a static of the right type, checked by
        // the caller); no instruction runs and nothing is touched.
        unsafe {
            ::core::arch::asm!(
                ".pushsection dynkey_atomic_v1, \"aR\"",
                ".balign 8",
                ".quad {key} + {off} - .",
                concat!(".quad ", $kind),
                ".quad {one_copy} - .",
                ".popsection",
                key = sym $key,
                off = const $off,
                one_copy = sym $crate::__one_copy_per_binary,
                options(nomem, nostack, preserves_flags),
            )
        }
    };
    (global, $key:path, $kind:literal) => {
        ::core::arch::global_asm!(
            ".pushsection dynkey_atomic_v1, \"aR\"",
            ".balign 8",
            ".quad {key} - .",
            concat!(".quad ", $kind),
            ".quad {one_copy} - .",
            ".popsection",
            key = sym $key,
            one_copy = sym $crate::__one_copy_per_binary,
        );
    };
}

#[cfg(dynkey_patching)]
#[doc(hidden)]
#[macro_export]
macro_rules! __site {
    ($key:path, $polarity:literal, $jcc:literal, $on_jump:expr) => {
        $crate::__assert_key_static(&$key);
        $crate::__site_asm!($key, 0, $polarity, $jcc, $on_jump);
    };
}

/// The branch site itself: the key's code byte is at `$key + $off`.
#[cfg(dynkey_patching)]
#[doc(hidden)]
#[macro_export]
macro_rules! __site_asm {
    ($key:path, $off:expr, $polarity:literal, $jcc:literal, $on_jump:expr) => {
        // `$key + $off` is a RawKey (callers check the type and the bounds).
        // SAFETY: the asm reads that key's code byte (out of line) and falls
        // through or jumps to the label, touching nothing the compiler owns but
        // the flags; `[ONE-STORE]` rewrites keep those the only two outcomes.
        // Its record names that key (`[SITE-RECORDS]`) and is data only.
        unsafe {
            ::core::arch::asm!(
                ".p2align 3, 0x2e, 4",
                "2:",
                ".byte 0xe9",
                ".long 3f - 4f",
                "4:",
                ".pushsection dynkey_sites_v1, \"aR\"",
                ".balign 8",
                ".reloc ., R_X86_64_NONE, {one_copy}",
                ".quad 2b - .",
                ".quad {target} - .",
                concat!(".quad {key} + {off} - . + ", $polarity),
                ".popsection",
                ".pushsection .text.dynkey_check, \"ax\"",
                "3:",
                "cmp byte ptr [rip + {key} + {off}], 0",
                concat!($jcc, " {target}"),
                "jmp 4b",
                ".popsection",
                key = sym $key,
                off = const $off,
                one_copy = sym $crate::__one_copy_per_binary,
                target = label { $on_jump },
                options(readonly, nostack),
            )
        }
    };
}

#[cfg(not(dynkey_patching))]
#[doc(hidden)]
#[macro_export]
macro_rules! __site {
    ($key:path, "1", $jcc:literal, $on_jump:expr) => {
        $crate::__assert_key_static(&$key);
        $crate::__atomic_record!(asm, $key, 0, "0");
        if $crate::KeyStatic::raw_key(&$key).check() {
            $on_jump
        }
    };
    ($key:path, "0", $jcc:literal, $on_jump:expr) => {
        $crate::__assert_key_static(&$key);
        $crate::__atomic_record!(asm, $key, 0, "0");
        if !$crate::KeyStatic::raw_key(&$key).check() {
            $on_jump
        }
    };
}

/// Compile-time check that a site names a [`KeyStatic`](crate::KeyStatic).
#[doc(hidden)]
#[inline(always)]
pub const fn __assert_key_static<K: crate::KeyStatic>(_: &K) {}

/// Compile-time check that an indexed site names a `static` *array* of
/// keys (see [`branch_unlikely_at!`]).
#[doc(hidden)]
#[inline(always)]
pub const fn __assert_key_array<const N: usize>(_: &'static [crate::RawKey; N]) {}

/// Defines a link-time value stub: `fn() -> u32` returning `$key`'s state
/// (1 or 0), called directly.
///
/// On x86-64 Linux the stub is one aligned word in the binary's text:
/// compiled in as `movzx eax, byte [rip + key]; ret` and patched at init to
/// `mov eax, imm32; nop2; ret` (the `ret` stays at byte 7, so a thread
/// stopped there resumes correctly), so a patched call reads no data at all.
///
/// ```
/// static FLAG: dynkey_text::RawKey = dynkey_text::RawKey::new(false);
/// dynkey_text::link_value_stub!(fn flag_value() => FLAG);
/// assert_eq!(flag_value(), 0);
/// dynkey_text::commit(&[dynkey_text::Change::Key(&FLAG, true)]).unwrap();
/// assert_eq!(flag_value(), 1);
/// ```
#[cfg(dynkey_patching)]
#[macro_export]
macro_rules! link_value_stub {
    ($(#[$m:meta])* $vis:vis fn $name:ident() => $key:path) => {
        $(#[$m])*
        #[unsafe(naked)]
        $vis extern "C" fn $name() -> u32 {
            // The leading `.balign 8` pads with NOPs that run harmlessly when
            // the function does not start on a word boundary.
            ::core::arch::naked_asm!(
                ".balign 8",
                "2:",
                "movzx eax, byte ptr [rip + {key}]",
                "ret",
                ".pushsection dynkey_stubs_v1, \"aR\"",
                ".balign 8",
                ".reloc ., R_X86_64_NONE, {one_copy}",
                ".quad 2b - .",
                ".quad {key} - .",
                ".quad 1",
                ".popsection",
                key = sym $key,
                one_copy = sym $crate::__one_copy_per_binary,
            )
        }
    };
}

/// Defines a link-time value stub (atomic kind in this build).
#[cfg(not(dynkey_patching))]
#[macro_export]
macro_rules! link_value_stub {
    ($(#[$m:meta])* $vis:vis fn $name:ident() => $key:path) => {
        $crate::__atomic_record!(global, $key, "1");
        $(#[$m])*
        $vis extern "C" fn $name() -> u32 {
            $crate::KeyStatic::raw_key(&$key).check() as u32
        }
    };
}

/// A static call reached through a link-time stub: see [`link_call!`](crate::link_call).
#[derive(Debug)]
pub struct LinkCall<F: 'static> {
    stub: F,
    raw: &'static crate::RawCall,
    targets: &'static [F],
}

impl<F: Copy> LinkCall<F> {
    #[doc(hidden)]
    /// # Safety
    ///
    /// `stub` must jump to `raw`'s current target, and every entry of
    /// `raw.targets()` must be the matching entry of `targets`.
    pub const unsafe fn __new(
        stub: F,
        raw: &'static crate::RawCall,
        targets: &'static [F],
    ) -> Self {
        LinkCall { stub, raw, targets }
    }

    /// The function to call: the stub, which jumps to the current target.
    #[inline(always)]
    pub fn get(&self) -> F {
        self.stub
    }

    /// The call's storage, for [`Change::Call`](crate::Change::Call).
    pub fn raw(&self) -> &'static crate::RawCall {
        self.raw
    }

    /// The registered targets, in order.
    pub fn targets(&self) -> &'static [F] {
        self.targets
    }
}

/// Declares a static call: a patchable function pointer with a fixed list of
/// targets, called through a link-time stub (a direct `call`).
///
/// Use it at module level. Parameters must be named (`fn(x: u64) -> u64`).
/// The first target is current at start. Switching is a commit of
/// [`Change::Call`](crate::Change::Call). Besides the static, the macro
/// defines a hidden module of the same name (modules and statics live in
/// different namespaces) holding the call's storage and stub; target paths
/// are resolved from inside it with `use super::*`, so name targets by
/// plain or `crate::` paths.
///
/// ```
/// fn double(x: u64) -> u64 { x * 2 }
/// fn square(x: u64) -> u64 { x * x }
/// dynkey_text::link_call!(static OP: fn(x: u64) -> u64 = [double, square]);
///
/// fn main() {
///     assert_eq!(OP.get()(5), 10);
///     dynkey_text::commit(&[dynkey_text::Change::Call(OP.raw(), 1)]).unwrap();
///     assert_eq!(OP.get()(5), 25);
/// }
/// ```
#[macro_export]
macro_rules! link_call {
    ($(#[$m:meta])* $vis:vis static $name:ident : fn($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? = [$($target:path),+ $(,)?] $(;)?) => {
        $(#[$m])*
        $vis static $name: $crate::LinkCall<fn($($ty),*) $(-> $ret)?> =
            // SAFETY: `stub` jumps (touching no register or stack slot)
            // through RAW, which always holds one of CODES, i.e. one of
            // TARGETS, all of type Sig; calling it as a Sig calls a Sig.
            unsafe { $crate::LinkCall::__new($name::STUB, &$name::RAW, $name::TARGETS) };

        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports)]
        $vis mod $name {
            use super::*;
            pub type Sig = fn($($ty),*) $(-> $ret)?;
            // A typed binding, not an `as` cast: a target of another
            // signature is a "mismatched types" error at the target's own
            // name, saying which signature was expected.
            pub static TARGETS: &[Sig] = &[$({
                let target: Sig = $target;
                target
            }),+];
            static CODES: &[$crate::CodePtr] = &[$($crate::CodePtr::new({
                let target: Sig = $target;
                target
            } as *const ())),+];
            pub static RAW: $crate::RawCall = $crate::RawCall::new(CODES);
            $crate::__link_call_stub!(RAW, $name, ($($arg: $ty),*) $(-> $ret)?);
        }
    };
    ($(#[$m:meta])* $vis:vis static $name:ident : fn($($ty:ty),* $(,)?) $(-> $ret:ty)? = [$($target:path),+ $(,)?] $(;)?) => {
        ::core::compile_error!(::core::concat!(
            "link_call!/static_call! `", ::core::stringify!($name),
            "`: name the parameters, e.g. `fn(x: u64) -> u64` (the stub is declared with them)"
        ));
    };
}

#[cfg(dynkey_patching)]
#[doc(hidden)]
#[macro_export]
macro_rules! __link_call_stub {
    ($raw:ident, $name:ident, ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?) => {
        ::core::arch::global_asm!(
            ".pushsection .text.dynkey_stubs, \"ax\"",
            ".balign 8, 0xcc",
            concat!(".globl \"", $crate::__stub_symbol!($name), "\""),
            concat!(".hidden \"", $crate::__stub_symbol!($name), "\""),
            concat!(".type \"", $crate::__stub_symbol!($name), "\", @function"),
            concat!("\"", $crate::__stub_symbol!($name), "\":"),
            "jmp qword ptr [rip + {raw}]",
            "int3",
            "int3",
            ".pushsection dynkey_stubs_v1, \"aR\"",
            ".balign 8",
            ".reloc ., R_X86_64_NONE, {one_copy}",
            concat!(".quad \"", $crate::__stub_symbol!($name), "\" - ."),
            ".quad {raw} - .",
            ".quad 2",
            ".popsection",
            ".popsection",
            raw = sym $raw,
            one_copy = sym $crate::__one_copy_per_binary,
        );
        unsafe extern "Rust" {
            #[link_name = $crate::__stub_symbol!($name)]
            fn stub($($arg: $ty),*) $(-> $ret)?;
        }
        // SAFETY: see the static's initializer in `link_call!`; transmuting
        // between fn pointer types that differ only in `unsafe`.
        pub const STUB: Sig = unsafe { ::core::mem::transmute::<unsafe fn($($ty),*) $(-> $ret)?, Sig>(stub) };
    };
}

#[cfg(not(dynkey_patching))]
#[doc(hidden)]
#[macro_export]
macro_rules! __link_call_stub {
    ($raw:ident, $name:ident, ($($arg:ident : $ty:ty),*) $(-> $ret:ty)?) => {
        $crate::__atomic_record!(global, $raw, "2");
        fn stub($($arg: $ty),*) $(-> $ret)? {
            // The published target (Acquire: a commit publishes it before it
            // returns, so G2 holds), an index into TARGETS, which are typed:
            // no pointer cast, so any signature works (borrowed arguments
            // included).
            (TARGETS[$raw.target_index()])($($arg),*)
        }
        pub const STUB: Sig = stub;
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stub_symbol {
    ($name:ident) => {
        concat!(
            "__dynkey_call$",
            module_path!(),
            "::",
            stringify!($name),
            "$",
            env!("CARGO_PKG_VERSION")
        )
    };
}

/// Defines `fn $fname() -> Vec<&'static $ty>`: every `static` of type `$ty`
/// that any crate of the binary placed in the linker section `$sec` (a C
/// identifier), in link order. The macro adds a sentinel of its own so the
/// section, and its `__start_`/`__stop_` symbols, always exist; it is left
/// out of the result.
///
/// Not API: `dynkey` collects its callsites, keys, calls and class maps
/// with it. It lives here, hidden, because it reads memory between
/// linker-defined symbols (`unsafe`), and the workspace keeps `unsafe` code
/// in this crate.
#[doc(hidden)]
#[macro_export]
macro_rules! linker_section {
    ($vis:vis fn $fname:ident() -> [$ty:ty] in $sec:literal, sentinel = $sentinel:expr $(,)?) => {
        $vis fn $fname() -> ::std::vec::Vec<&'static $ty> {
            #[unsafe(link_section = $sec)]
            #[used]
            static SENTINEL: $ty = $sentinel;
            unsafe extern "C" {
                #[link_name = concat!("__start_", $sec)]
                static START: [$ty; 0];
                #[link_name = concat!("__stop_", $sec)]
                static STOP: [$ty; 0];
            }
            let start = &raw const START as *const $ty;
            let stop = &raw const STOP as *const $ty;
            let n = (stop as usize - start as usize) / ::core::mem::size_of::<$ty>();
            // Only `static`s of type $ty are placed in $sec (by the macros
            // that name it, and the sentinel above).
            // SAFETY: the linker lays them out contiguously between the two
            // symbols (one type: one alignment, sizes a multiple of it), and
            // the section is mapped for the life of the process.
            let all: &'static [$ty] = unsafe { ::core::slice::from_raw_parts(start, n) };
            all.iter().filter(|x| !::core::ptr::eq(*x, &SENTINEL)).collect()
        }
    };
}
