//! Named static calls: patchable function pointers, and switching them.
//!
//! Switching a call from code is an operation of the local layer, like a
//! key change (see `key.rs`): one commit, never journaled, never undone by
//! a rebuild.

use dynkey_text::LinkCall;

use crate::control::control;
use crate::error::Error;
use crate::op::Op;
use crate::records::CallDesc;

/// A static call: callers go through a link-time stub (a direct `call`)
/// that jumps to the current target; switching targets rewrites the stub.
///
/// Declare with [`static_call!`](crate::static_call).
#[derive(Debug)]
pub struct StaticCall<F: 'static> {
    link: &'static LinkCall<F>,
    desc: &'static CallDesc,
}

impl<F: Copy> StaticCall<F> {
    #[doc(hidden)]
    pub const fn __new(link: &'static LinkCall<F>, desc: &'static CallDesc) -> Self {
        StaticCall { link, desc }
    }

    /// The function to call (the stub).
    #[inline(always)]
    pub fn get(&self) -> F {
        self.link.get()
    }

    /// The current target's index.
    pub fn target(&self) -> usize {
        self.desc.raw.target_index()
    }

    /// The current target's name.
    pub fn target_name(&self) -> &'static str {
        self.desc.target_name(self.target())
    }

    /// The call's name.
    pub fn name(&self) -> &'static str {
        self.desc.name
    }

    /// The registered targets, as written.
    pub fn targets(&self) -> &'static [&'static str] {
        self.desc.targets
    }

    /// Switches to the `index`-th registered target: one commit.
    pub fn set_target(&self, index: usize) -> Result<(), Error> {
        let target = self
            .targets()
            .get(index)
            .ok_or_else(|| Error::UnknownTarget {
                call: self.name().into(),
                target: index.to_string(),
                targets: self.targets().to_vec(),
            })?;
        self.set_target_by_name(target)
    }

    /// Switches to the target named `target` (as written, or its last path
    /// segment).
    pub fn set_target_by_name(&self, target: &str) -> Result<(), Error> {
        control()
            .apply_code(vec![Op::call(self.name(), target)])
            .map(drop)
    }
}

/// Declares a named static call with its registered targets (at module
/// level; parameters must be named). The first target is current.
///
/// A target of another signature is an error at the target, naming the
/// signature the call expects:
///
/// ```compile_fail,E0308
/// fn narrow(x: u32) -> u64 { x as u64 }
/// dynkey::static_call!(static BAD: fn(x: u64) -> u64 = [narrow]);
/// # fn main() {}
/// ```
///
/// (its twin, which compiles:)
///
/// ```
/// fn wide(x: u64) -> u64 { x }
/// dynkey::static_call!(static GOOD: fn(x: u64) -> u64 = [wide]);
/// # fn main() { assert_eq!(GOOD.get()(3), 3); }
/// ```
///
/// Unnamed parameters are an error that says to name them:
///
/// ```compile_fail
/// fn wide(x: u64) -> u64 { x }
/// dynkey::static_call!(static UNNAMED: fn(u64) -> u64 = [wide]);
/// # fn main() {}
/// ```
///
/// ```
/// fn fnv(data: &[u8]) -> u64 { data.iter().fold(0xcbf29ce484222325, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3)) }
/// fn zero(_: &[u8]) -> u64 { 0 }
///
/// dynkey::static_call!(pub static HASH: fn(data: &[u8]) -> u64 = [fnv, zero]);
///
/// fn main() {
///     assert_ne!(HASH.get()(b"abc"), 0);
///     HASH.set_target_by_name("zero").unwrap();
///     assert_eq!(HASH.get()(b"abc"), 0);
///     assert_eq!(HASH.target_name(), "zero");
/// }
/// ```
#[macro_export]
macro_rules! static_call {
    ($(#[$m:meta])* $vis:vis static $name:ident : fn($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? = [$($target:path),+ $(,)?] $(;)?) => {
        $(#[$m])*
        $vis static $name: $crate::StaticCall<fn($($ty),*) $(-> $ret)?> = $crate::StaticCall::__new(&$name::LINK, &$name::DESC);

        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports)]
        $vis mod $name {
            use super::*;
            $crate::__private::dynkey_text::link_call!(pub static LINK: fn($($arg: $ty),*) $(-> $ret)? = [$($target),+]);
            #[unsafe(link_section = "dynkey_calls_v1")]
            #[used]
            pub static DESC: $crate::CallDesc = $crate::CallDesc::__new(
                ::core::stringify!($name),
                ::core::file!(),
                ::core::line!(),
                &[$(::core::stringify!($target)),+],
                &LINK::RAW,
            );
        }
    };
    ($(#[$m:meta])* $vis:vis static $name:ident : fn($($ty:ty),* $(,)?) $(-> $ret:ty)? = [$($target:path),+ $(,)?] $(;)?) => {
        ::core::compile_error!(::core::concat!(
            "static_call! `", ::core::stringify!($name),
            "`: name the parameters, e.g. `fn(x: u64) -> u64` (the stub is declared with them)"
        ));
    };
}
