//! Rows of kind `tracing`: callsites of the `tracing` crate in the listing.
//!
//! A tracing callsite (an event or a span, of any crate) exists for dynkey
//! only once tracing registers it, which happens when it first runs. A
//! tracing filter (the `dynkey-tracing` crate) then registers it here with
//! [`Control::register_tracing`](crate::Control::register_tracing): a [`Callsite`] like any other, with the
//! callsite's target as its module, no function name, and its level as its
//! class, so queries, params, dry runs, the layers and the journal treat it
//! as any site, and a row registered late gets the effective state, as a
//! run-time site does.
//!
//! Its `p` flag is a key that no site tests: the filter reads it as data
//! (an atomic load) when tracing asks whether the callsite is wanted, so a
//! commit that changes only such rows writes no code and runs no
//! rendezvous. tracing caches that answer per callsite: after a commit that
//! changed such rows, dynkey calls the hook given to
//! [`Control::on_tracing_change`](crate::Control::on_tracing_change) before the change returns
//! (`tracing_hook.rs`), and the filter makes tracing ask again.
//!
//! A tracing callsite at the place of one of dynkey's own callsites (same
//! target, file and line: the event that `dynkey-tracing`'s macros or the
//! `tracing` output bridge emit once their own site said yes) gets no row:
//! registration answers [`TracingRow::Own`] with that site.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use crate::callsite::{Callsite, FuncName};
use crate::error::Error;
use crate::registry::{Origin, Registry};
use crate::state::State;

/// A tracing callsite, as the filter describes it to dynkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingSpec {
    /// The callsite's target: the row's module. Whitespace becomes `_` (the
    /// listing and queries split words on it); an empty target is `_`.
    pub target: &'static str,
    /// Its file, when tracing knows it (listed as `<unknown>` otherwise).
    pub file: Option<&'static str>,
    /// Its line, when tracing knows it (listed as 0 otherwise).
    pub line: Option<u32>,
    /// What the format column shows (tracing publishes no event message
    /// before the event runs).
    pub format: String,
    /// Its class: the level's name, a class of a class map covering the
    /// target (`dynkey-tracing` declares `tracing.level`, covering `*`).
    pub class: &'static str,
}

/// What registering a tracing callsite gave.
#[derive(Debug, Clone, Copy)]
pub enum TracingRow {
    /// A row of kind `tracing`: its published `p` flag
    /// ([`Callsite::is_enabled`]) says whether the callsite is wanted.
    Row(&'static Callsite),
    /// One of dynkey's own callsites is at that place (same target, file
    /// and line): its event exists only once that site's own `p` flag said
    /// yes, so it is not listed twice, and wanted whenever it runs.
    Own(&'static Callsite),
}

impl TracingRow {
    /// The row's callsite (dynkey's own site, for [`TracingRow::Own`]).
    pub fn callsite(&self) -> &'static Callsite {
        match *self {
            TracingRow::Row(c) | TracingRow::Own(c) => c,
        }
    }
}

/// Strings of registered rows, kept for the life of the process (tracing
/// callsites repeat field lists and targets).
static INTERNED: LazyLock<Mutex<HashMap<String, &'static str>>> = LazyLock::new(Mutex::default);

fn intern(s: &str) -> &'static str {
    let mut m = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = m.get(s) {
        return v;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    m.insert(s.to_owned(), leaked);
    leaked
}

/// The target as a module word: no whitespace, never empty.
fn module_word(target: &'static str) -> &'static str {
    if target.is_empty() {
        "_"
    } else if target.contains(char::is_whitespace) {
        intern(&target.replace(char::is_whitespace, "_"))
    } else {
        target
    }
}

/// One of dynkey's own callsites at this place, if any.
fn own_site(reg: &Registry, module: &str, file: Option<&str>, line: Option<u32>) -> Option<u32> {
    let (file, line) = (file?, line?);
    let (_, sites) = reg.modules.iter().find(|(m, _)| *m == module)?;
    sites.iter().copied().find(|&i| {
        let s = &reg.sites[i as usize];
        s.origin != Origin::Tracing && s.cs.file == file && s.cs.line == line
    })
}

/// Lists tracing callsites as rows of kind `tracing` (see
/// [`Control::register_tracing`](crate::Control::register_tracing)).
pub(crate) fn register(state: &State, specs: Vec<TracingSpec>) -> Result<Vec<TracingRow>, Error> {
    let mut engine = state.engine();
    // The filter calls this from inside tracing, which must not start
    // an interest rebuild: it hands tracing the rows' state itself.
    engine.quiet();
    let old = state.snapshot.load();
    let modules: Vec<&'static str> = specs.iter().map(|s| module_word(s.target)).collect();
    for (i, (s, module)) in specs.iter().zip(&modules).enumerate() {
        if !old.classmaps.iter().any(|m| m.knows(module, s.class)) {
            return Err(Error::Invalid {
                what: "tracing callsite",
                entry: i,
                field: "class",
                reason: format!(
                    "{:?} is not a class of any class map covering module {module:?}",
                    s.class
                ),
            });
        }
    }
    let mut parts = old.parts();
    let mut rows = Vec::with_capacity(specs.len());
    for (s, module) in specs.iter().zip(modules) {
        if let Some(i) = own_site(&old, module, s.file, s.line) {
            rows.push(TracingRow::Own(old.sites[i as usize].cs));
            continue;
        }
        let cs: &'static Callsite = Box::leak(Box::new(Callsite::__new(
            module,
            s.file.unwrap_or("<unknown>"),
            s.line.unwrap_or(0),
            intern(&s.format),
            Some(s.class),
            FuncName::Static(""),
            None,
        )));
        parts.push((cs, "", Origin::Tracing));
        rows.push(TracingRow::Row(cs));
    }
    if parts.len() == old.sites.len() {
        return Ok(rows);
    }
    let reg = Arc::new(Registry::new(
        parts,
        old.keys.clone(),
        old.calls.clone(),
        old.classmaps.clone(),
    ));
    state.snapshot.store(reg.clone());
    // A bad configuration refuses every commit; the rows are listed anyway.
    if engine.refuse.is_none()
        && let Err(e) = engine.rebuild(&reg)
    {
        eprintln!("dynkey: tracing callsites listed without their state: {e}");
    }
    Ok(rows)
}
