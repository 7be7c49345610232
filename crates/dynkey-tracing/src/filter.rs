//! [`DynkeyLayer`]: every tracing callsite of the process as a row of
//! dynkey's listing, and a filter that answers from the rows' flags.
//!
//! tracing registers a callsite (asks every subscriber for its *interest*)
//! the first time it runs, and again whenever the interest cache is
//! rebuilt. This filter answers by registering the callsite with dynkey
//! (once: [`dynkey::Control::register_tracing`]) as a row of kind
//! `tracing` — module = target, no function, class = level, format = a
//! span's name or an event's field names — and reading the row's `p`
//! flag: `always` when on, `never` when off. The callsites of this crate's
//! own macros (and of dynkey's `tracing` output bridge) already have a row,
//! their compiled-in site, which decided before the event existed: they
//! are not listed twice, and always wanted.
//!
//! When a commit turns such rows on or off, dynkey calls
//! [`rebuild`] before the change returns (the hook registered by
//! [`layer`](crate::layer)), which makes tracing ask every callsite again.
//!
//! # Orderings
//!
//! The rows' `p` flags are read with [`dynkey::Callsite::is_enabled`]
//! (Acquire, pairing with the commit's publication). The table from
//! callsite to row is an `arc-swap` snapshot, replaced (under
//! `REGISTER`) when a callsite is added: readers never lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use arc_swap::ArcSwap;
use dynkey::{Callsite, TracingRow, TracingSpec};
use tracing::callsite::Identifier;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter, Layer};

use crate::levels;

/// What answers for one tracing callsite.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A row of kind `tracing`: its `p` flag.
    Row(&'static Callsite),
    /// A callsite of dynkey's own (this crate's macros, the output bridge).
    Own,
    /// dynkey refused the row (no class map covering its target: the build
    /// lost `tracing.level`): ERROR, WARN and INFO pass.
    Unlisted(bool),
}

impl Entry {
    fn enabled(self) -> bool {
        match self {
            Entry::Row(cs) => cs.is_enabled(),
            Entry::Own => true,
            Entry::Unlisted(on) => on,
        }
    }
}

/// Callsite to entry; replaced whole when one is added.
static ROWS: LazyLock<ArcSwap<HashMap<Identifier, Entry>>> = LazyLock::new(ArcSwap::default);
/// Serializes registrations, so each callsite gets one row.
static REGISTER: Mutex<()> = Mutex::new(());
/// Whether a refusal was already reported on standard error.
static REPORTED: AtomicBool = AtomicBool::new(false);

/// What the format column shows for a callsite: a span's name, an event's
/// field names (its message is not known before it runs).
fn format_of(meta: &Metadata<'_>) -> String {
    if meta.is_span() {
        meta.name().to_string()
    } else {
        meta.fields()
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn lookup(id: &Identifier) -> Option<Entry> {
    ROWS.load().get(id).copied()
}

/// The entry of a callsite, registering it on first sight (the bool: it
/// was registered now).
fn entry(meta: &'static Metadata<'static>) -> (Entry, bool) {
    let id = meta.callsite();
    if let Some(e) = lookup(&id) {
        return (e, false);
    }
    let _one_at_a_time = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = lookup(&id) {
        return (e, false);
    }
    let spec = TracingSpec {
        target: meta.target(),
        file: meta.file(),
        line: meta.line(),
        format: format_of(meta),
        class: levels::class(meta.level()),
    };
    let e = match dynkey::control().register_tracing(vec![spec]) {
        Ok(rows) => match rows.first() {
            Some(TracingRow::Row(cs)) => Entry::Row(cs),
            Some(TracingRow::Own(_)) => Entry::Own,
            None => Entry::Unlisted(*meta.level() <= Level::INFO),
        },
        Err(err) => {
            // Relaxed: it only decides who prints the report, once.
            if !REPORTED.swap(true, Ordering::Relaxed) {
                eprintln!("dynkey-tracing: tracing callsites are not listed: {err}");
            }
            Entry::Unlisted(*meta.level() <= Level::INFO)
        }
    };
    let mut map = HashMap::clone(&ROWS.load());
    map.insert(id, e);
    ROWS.store(Arc::new(map));
    (e, true)
}

/// A callsite's interest: its row's flag, cached by tracing until the next
/// change of tracing rows rebuilds the cache.
///
/// Except when tracing registers the callsite and its row is off: then
/// "sometimes" (tracing asks [`enabled`] per event). tracing adds a
/// callsite to the list its rebuild walks only after this answer, so a
/// change that commits meanwhile rebuilds without it, and a cached "never"
/// would keep it silent after a `+p` returned. The first change of tracing
/// rows after that turns it into "never".
fn interest(meta: &'static Metadata<'static>) -> Interest {
    match entry(meta) {
        (e, _) if e.enabled() => Interest::always(),
        (_, true) => Interest::sometimes(),
        (_, false) => Interest::never(),
    }
}

/// For callsites tracing asks about each time (another filter made them
/// "sometimes"): the row's flag. A callsite seen here before its
/// registration finished waits for it.
fn enabled(meta: &Metadata<'_>) -> bool {
    let id = meta.callsite();
    if let Some(e) = lookup(&id) {
        return e.enabled();
    }
    let _registered = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
    match lookup(&id) {
        Some(e) => e.enabled(),
        None => *meta.level() <= Level::INFO,
    }
}

/// Makes tracing ask every callsite for its interest again: dynkey calls
/// it after a change turned tracing rows on or off (see [`layer`](crate::layer)).
pub fn rebuild() {
    tracing::callsite::rebuild_interest_cache();
}

/// dynkey's flags as a tracing filter: see [`layer`](crate::layer).
///
/// Use it as a per-layer filter (`fmt::layer().with_filter(...)`: it
/// decides what that layer records) or as a layer of its own
/// (`registry().with(...)`: it decides for every layer above it).
#[derive(Debug, Clone, Copy, Default)]
pub struct DynkeyLayer {
    _private: (),
}

impl DynkeyLayer {
    pub(crate) fn new() -> DynkeyLayer {
        DynkeyLayer { _private: () }
    }
}

impl<S: Subscriber> Layer<S> for DynkeyLayer {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        interest(meta)
    }

    fn enabled(&self, meta: &Metadata<'_>, _: Context<'_, S>) -> bool {
        enabled(meta)
    }
}

impl<S> Filter<S> for DynkeyLayer {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        enabled(meta)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        interest(meta)
    }
}
