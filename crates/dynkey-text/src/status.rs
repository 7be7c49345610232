//! What the runtime is doing: its choices ([`status`]) and its sites by
//! kind and state ([`census`], [`key_site_counts`]), for humans, metrics
//! and tests. Each call starts the runtime if needed.

use crate::code_table::KeyRef;
use crate::config::{Config, QueueMode};
use crate::error::Error;
use crate::key::{RawCall, RawKey};
use crate::lock::TEXT;
use crate::rendezvous::{membarrier, signal};
use crate::startup::setup;
use crate::{Method, SiteKind};

/// What the runtime is doing, for humans, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The kind compiled-in branch sites use: `Inline` when patched, else `Atomic`.
    pub site_kind: SiteKind,
    /// The rendezvous method in use.
    pub method: Method,
    /// Why an `auto` setting did not get its first choice (None: it did).
    pub fallback: Option<String>,
    /// The configuration in effect.
    pub config: Config,
    /// The current queue mode.
    pub queue: QueueMode,
    /// Compiled-in sites or stubs left atomic, and why.
    pub demoted: Vec<String>,
    /// What start-up changed besides sites: breakpoints (uprobes, a
    /// debugger's) dropped from taken-over text, and where.
    pub notes: Vec<String>,
    /// Bytes of text taken over by memfd copies.
    pub taken_over_bytes: usize,
    /// Whether membarrier was registered before `main`
    /// (`DYNKEY_REGISTER_EARLY=1`).
    pub registered_at_start: bool,
    /// The signal of the signal rendezvous, when that is the method.
    pub signal: Option<i32>,
}

/// Starts the runtime if needed and reports what it chose.
pub fn status() -> Result<Status, Error> {
    let setup = setup()?;
    let guard = TEXT.lock();
    let table = guard.as_ref().expect("started");
    Ok(Status {
        site_kind: if setup.patching {
            SiteKind::Inline
        } else {
            SiteKind::Atomic
        },
        method: setup.method,
        fallback: setup.fallback.clone(),
        config: setup.config.clone(),
        queue: table.queue,
        demoted: table.demoted.clone(),
        notes: table.notes.clone(),
        taken_over_bytes: table.taken_over_bytes,
        registered_at_start: membarrier::registered_at_start(),
        signal: (setup.method == Method::Signal)
            .then(signal::signal_number)
            .flatten(),
    })
}

/// Counts of sites by kind and key state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// `[kind][state]`: kind as `SiteKind as usize`, state 0 disabled, 1 enabled.
    pub sites: [[u64; 2]; 3],
}

impl Census {
    /// Sites of `kind` whose key is `enabled`.
    pub fn count(&self, kind: SiteKind, enabled: bool) -> u64 {
        self.sites[kind as usize][enabled as usize]
    }
}

/// Counts every boolean key's sites by kind and state (static-call sites
/// are not counted: they have no enabled/disabled state).
pub fn census() -> Result<Census, Error> {
    setup()?;
    let guard = TEXT.lock();
    let table = guard.as_ref().expect("started");
    let mut c = Census::default();
    for ks in &table.keys {
        let KeyRef::Bool(k) = ks.key else { continue };
        let on = k.is_enabled() as usize;
        c.sites[SiteKind::Inline as usize][on] += ks.inline.len() as u64;
        c.sites[SiteKind::Trampoline as usize][on] += ks.stubs.len() as u64;
        c.sites[SiteKind::Atomic as usize][on] += ks.atomic as u64;
    }
    Ok(c)
}

/// Sites testing one key or call, by kind (`SiteKind as usize`).
fn site_counts(key: KeyRef) -> Result<[u64; 3], Error> {
    setup()?;
    let guard = TEXT.lock();
    let table = guard.as_ref().expect("started");
    Ok(table.sites_of(key).map_or([0; 3], |ks| {
        [
            ks.inline.len() as u64,
            ks.stubs.len() as u64,
            ks.atomic as u64,
        ]
    }))
}

/// Sites testing `key`, by kind (index with `SiteKind as usize`).
pub fn key_site_counts(key: &'static RawKey) -> Result<[u64; 3], Error> {
    site_counts(KeyRef::Bool(key))
}

/// Sites (stubs) calling through `call`, by kind (index with `SiteKind as usize`).
pub fn call_site_counts(call: &'static RawCall) -> Result<[u64; 3], Error> {
    site_counts(KeyRef::Call(call))
}
