//! [`batch`]: several keys and calls changed in code as one commit.
//!
//! Like a single `StaticKey::enable`, the batch is an operation of the
//! local layer made by the program itself ([`Source::Code`](crate::Source::Code)):
//! never journaled, never revocable, never undone by a rebuild. (Not to be
//! confused with group commit, `group_commit.rs`, which shares one journal
//! write and one commit among concurrent requests.)

use crate::call::StaticCall;
use crate::control::control;
use crate::error::Error;
use crate::key::StaticKey;
use crate::op::Op;
use crate::report::ChangeReport;

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
