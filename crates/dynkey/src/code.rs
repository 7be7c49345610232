//! Changes made in code: [`StaticKey::enable`] and friends,
//! [`StaticCall::set_target`], [`batch`].
//!
//! Each is an operation of the local layer made by the program itself
//! ([`Source::Code`](crate::Source::Code)): it goes through the same engine
//! as every other change (one commit, at most one rendezvous), is never
//! journaled (the program makes it again when it runs again), cannot be
//! revoked, and is never undone by a rebuild: an expiry, a revoke or a fleet
//! update replays it in its place.

use crate::Error;
use crate::call::StaticCall;
use crate::control::{ChangeReport, control};
use crate::key::StaticKey;
use crate::op::Op;

impl StaticKey {
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
}

impl<F: Copy> StaticCall<F> {
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

/// Changes collected by [`batch`].
#[derive(Debug, Default)]
pub struct Batch {
    keys: Vec<(String, bool)>,
    calls: Vec<Op>,
    bad: Option<Error>,
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
        self.keys.push((key.path(), enabled));
        self
    }
    /// Switches a static call to its `index`-th target.
    pub fn set_call<F: Copy>(&mut self, call: &'static StaticCall<F>, index: usize) -> &mut Self {
        match call.targets().get(index) {
            Some(t) => self.calls.push(Op::call(call.name(), *t)),
            None => {
                self.bad.get_or_insert(Error::UnknownTarget {
                    call: call.name().into(),
                    target: index.to_string(),
                    targets: call.targets().to_vec(),
                });
            }
        }
        self
    }
}

/// Applies every change made in `f` as one commit: one rendezvous, however
/// many keys and sites. All or nothing: a bad change fails the batch.
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
pub fn batch(f: impl FnOnce(&mut Batch)) -> Result<ChangeReport, Error> {
    let mut b = Batch::default();
    f(&mut b);
    if let Some(e) = b.bad {
        return Err(e);
    }
    let mut ops = Vec::new();
    if !b.keys.is_empty() {
        ops.push(Op::keys(b.keys));
    }
    ops.extend(b.calls);
    let a = control().apply_code(ops)?;
    Ok(ChangeReport {
        changed: a.changed,
        rendezvous: a.rendezvous,
    })
}
