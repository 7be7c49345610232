//! Named static keys: the type, its tests (branches) and its changes.
//!
//! A change made in code (`enable`, `disable`, `set`) is an operation of
//! the local layer made by the program itself: it goes through the same
//! engine as every other change (one commit, at most one rendezvous), is
//! never journaled (the program makes it again when it runs again), cannot
//! be revoked, and is never undone by a rebuild: an expiry, a revoke or a
//! fleet update replays it in its place.

use dynkey_text::{KeyStatic, RawKey};

use crate::control::control;
use crate::error::Error;
use crate::op::Op;
use crate::records::{KeyItem, KeyRef};

/// A named boolean flag whose tests are patched code.
///
/// Declare with [`static_key!`](crate::static_key), test with
/// [`static_branch_unlikely!`](crate::static_branch_unlikely) or
/// [`static_branch_likely!`](crate::static_branch_likely), change with
/// [`enable`](Self::enable) / [`disable`](Self::disable) or a
/// [`batch`](crate::batch()).
#[repr(C)]
#[derive(Debug)]
pub struct StaticKey {
    raw: RawKey,
    /// The declared state: what a rebuild starts from.
    default: bool,
    name: &'static str,
    module: &'static str,
    file: &'static str,
    line: u32,
}

#[allow(unsafe_code)] // the contract of KeyStatic, which inline sites rely on
// SAFETY: StaticKey is repr(C) with its RawKey as the first field.
unsafe impl KeyStatic for StaticKey {
    fn raw_key(&self) -> &RawKey {
        &self.raw
    }
}

impl StaticKey {
    #[doc(hidden)]
    pub const fn __new(
        enabled: bool,
        name: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        StaticKey {
            raw: RawKey::new(enabled),
            default: enabled,
            name,
            module,
            file,
            line,
        }
    }

    /// The published state: true means every site already takes the
    /// enabled path.
    pub fn is_enabled(&self) -> bool {
        self.raw.is_enabled()
    }

    /// The name given in `static_key!`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The state it was declared with.
    pub fn default_state(&self) -> bool {
        self.default
    }

    /// The module that declared it.
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// `module::NAME`.
    pub fn path(&self) -> String {
        format!("{}::{}", self.module, self.name)
    }

    /// Where it was declared, `file:line`.
    pub fn defined_at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// Turns the key on: one commit, at most one rendezvous. On return every
    /// thread takes the enabled path.
    pub fn enable(&'static self) -> Result<(), Error> {
        self.set(true)
    }

    /// Turns the key off.
    pub fn disable(&'static self) -> Result<(), Error> {
        self.set(false)
    }

    /// Sets the key.
    pub fn set(&'static self, enabled: bool) -> Result<(), Error> {
        control()
            .apply_code(vec![Op::keys([(self.path(), enabled)])])
            .map(drop)
    }

    /// The record `static_key!` leaves for start-up. Not API.
    #[doc(hidden)]
    pub const fn __key_ref(&'static self) -> KeyRef {
        KeyRef(self)
    }
}

impl KeyItem for StaticKey {
    fn raw(&'static self) -> &'static RawKey {
        &self.raw
    }
    fn is_enabled(&self) -> bool {
        StaticKey::is_enabled(self)
    }
    fn default_state(&self) -> bool {
        self.default
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn module(&self) -> &'static str {
        self.module
    }
    fn defined_at(&self) -> String {
        StaticKey::defined_at(self)
    }
}

/// Declares a named static key, registered with where it was defined.
///
/// ```
/// dynkey::static_key!(pub static NEW_CHECKOUT: bool = false);
///
/// fn checkout() -> &'static str {
///     if dynkey::static_branch_unlikely!(NEW_CHECKOUT) { "new" } else { "old" }
/// }
///
/// assert_eq!(checkout(), "old");
/// NEW_CHECKOUT.enable().unwrap();
/// assert_eq!(checkout(), "new");
/// ```
#[macro_export]
macro_rules! static_key {
    ($(#[$m:meta])* $vis:vis static $name:ident : bool = $default:expr $(;)?) => {
        $(#[$m])*
        $vis static $name: $crate::StaticKey =
            $crate::StaticKey::__new($default, ::core::stringify!($name), ::core::module_path!(), ::core::file!(), ::core::line!());
        const _: () = {
            #[unsafe(link_section = "dynkey_keyrefs_v1")]
            #[used]
            static KEY_REF: $crate::__private::KeyRef = $crate::StaticKey::__key_ref(&$name);
        };
    };
}

/// True when the key is on. The off path falls through a 5-byte NOP on
/// x86-64 Linux (once patching started), a relaxed load elsewhere.
#[macro_export]
macro_rules! static_branch_unlikely {
    ($key:path) => {
        $crate::__private::dynkey_text::branch_unlikely!($key)
    };
}

/// True when the key is on. The on path falls through: for keys that are
/// usually on.
#[macro_export]
macro_rules! static_branch_likely {
    ($key:path) => {
        $crate::__private::dynkey_text::branch_likely!($key)
    };
}
