//! What the declaring macros leave for start-up to find: the registry's
//! view of compiled-in static keys and static calls.
//!
//! `static_key!` places a [`KeyRef`] in the linker section
//! `dynkey_keyrefs_v1`, `static_call!` a [`CallDesc`] in
//! `dynkey_calls_v1`, and start-up reads both (`state.rs`). The registry,
//! the tables and the listing see a key only as a [`KeyItem`]: they never
//! name [`StaticKey`](crate::StaticKey), whose own file (`key.rs`) holds
//! every method of the type, changing it included, on top of the control
//! plane.

use dynkey_text::RawKey;

/// A static key, as the registry sees it (implemented by `StaticKey`).
pub(crate) trait KeyItem: Sync + std::fmt::Debug {
    /// The key the sites test.
    fn raw(&'static self) -> &'static RawKey;
    /// The published state.
    fn is_enabled(&self) -> bool;
    /// The state it was declared with.
    fn default_state(&self) -> bool;
    /// The name given in `static_key!`.
    fn name(&self) -> &'static str;
    /// The module that declared it.
    fn module(&self) -> &'static str;
    /// `module::NAME`.
    fn path(&self) -> String {
        format!("{}::{}", self.module(), self.name())
    }
    /// Where it was declared, `file:line`.
    fn defined_at(&self) -> String;
}

/// The record `static_key!` leaves in `dynkey_keyrefs_v1`: a reference to
/// the key. Not API.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct KeyRef(pub(crate) &'static dyn KeyItem);

/// A key that is never declared: the section's sentinel.
#[derive(Debug)]
pub(crate) struct NoKey(pub RawKey);

impl KeyItem for NoKey {
    fn raw(&'static self) -> &'static RawKey {
        &self.0
    }
    fn is_enabled(&self) -> bool {
        false
    }
    fn default_state(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        ""
    }
    fn module(&self) -> &'static str {
        ""
    }
    fn defined_at(&self) -> String {
        String::new()
    }
}

/// What `GET /keys` and the registry know about a static call.
#[derive(Debug)]
pub struct CallDesc {
    pub(crate) name: &'static str,
    pub(crate) file: &'static str,
    pub(crate) line: u32,
    pub(crate) targets: &'static [&'static str],
    pub(crate) raw: &'static dynkey_text::RawCall,
}

impl CallDesc {
    #[doc(hidden)]
    pub const fn __new(
        name: &'static str,
        file: &'static str,
        line: u32,
        targets: &'static [&'static str],
        raw: &'static dynkey_text::RawCall,
    ) -> Self {
        CallDesc {
            name,
            file,
            line,
            targets,
            raw,
        }
    }

    /// The index of the target named `target` (its full path as written, or
    /// its last path segment).
    pub(crate) fn target_index(&self, target: &str) -> Option<usize> {
        self.targets
            .iter()
            .position(|t| *t == target || t.rsplit("::").next() == Some(target))
    }

    /// The `i`-th target's name (its last path segment).
    pub(crate) fn target_name(&self, i: usize) -> &'static str {
        let t = self.targets[i];
        t.rsplit("::").next().unwrap_or(t)
    }
}
