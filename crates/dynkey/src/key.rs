//! Named static keys, their branches, and batches.

use dynkey_text::{Change, CommitReport, KeyStatic, RawKey, commit};

use crate::Error;
use crate::call::StaticCall;

/// A named boolean flag whose tests are patched code.
///
/// Declare with [`static_key!`](crate::static_key), test with
/// [`static_branch_unlikely!`](crate::static_branch_unlikely) or
/// [`static_branch_likely!`](crate::static_branch_likely), change with
/// [`enable`](Self::enable) / [`disable`](Self::disable) or a [`batch`].
#[repr(C)]
#[derive(Debug)]
pub struct StaticKey {
    raw: RawKey,
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
            name,
            module,
            file,
            line,
        }
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
        crate::registry::start();
        commit(&[Change::Key(&self.raw, enabled)])?;
        Ok(())
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

    /// `module::NAME`.
    pub fn path(&self) -> String {
        format!("{}::{}", self.module, self.name)
    }

    /// Where it was declared, `file:line`.
    pub fn defined_at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    pub(crate) fn raw(&'static self) -> &'static RawKey {
        &self.raw
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
        #[unsafe(link_section = "dynkey_keys_v1")]
        #[used]
        $vis static $name: $crate::StaticKey =
            $crate::StaticKey::__new($default, ::core::stringify!($name), ::core::module_path!(), ::core::file!(), ::core::line!());
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

/// Changes collected by [`batch`].
#[derive(Debug, Default)]
pub struct Batch {
    changes: Vec<Change>,
}

impl Batch {
    /// Turns `key` on.
    pub fn enable(&mut self, key: &'static StaticKey) -> &mut Self {
        self.set(key, true)
    }
    /// Turns `key` off.
    pub fn disable(&mut self, key: &'static StaticKey) -> &mut Self {
        self.set(key, false)
    }
    /// Sets `key`.
    pub fn set(&mut self, key: &'static StaticKey, enabled: bool) -> &mut Self {
        self.changes.push(Change::Key(key.raw(), enabled));
        self
    }
    /// Switches a static call to its `index`-th target.
    pub fn set_call<F: Copy>(&mut self, call: &'static StaticCall<F>, index: usize) -> &mut Self {
        self.changes.push(Change::Call(call.raw(), index));
        self
    }
}

/// Applies every change made in `f` as one commit: one rendezvous, however
/// many keys and sites.
///
/// ```
/// dynkey::static_key!(static A: bool = false);
/// dynkey::static_key!(static B: bool = true);
/// let report = dynkey::batch(|b| {
///     b.enable(&A).disable(&B);
/// }).unwrap();
/// assert!(A.is_enabled() && !B.is_enabled());
/// assert!(report.rendezvous <= 1);
/// ```
pub fn batch(f: impl FnOnce(&mut Batch)) -> Result<CommitReport, Error> {
    let mut b = Batch::default();
    f(&mut b);
    crate::registry::start();
    Ok(commit(&b.changes)?)
}
