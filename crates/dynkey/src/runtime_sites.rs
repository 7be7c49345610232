//! Sites and class maps declared by data at run time: plugins, site files
//! (`dynkeyd --sites`), the demo.
//!
//! A run-time site is a [`Callsite`] like a compiled-in one (leaked, so it
//! lives as long as the process) whose `p` flag is tested through a
//! trampoline stub ([`ValueSite`]): callers hold a [`RuntimeSite`] and call
//! [`RuntimeSite::enabled`]. Registration is all-or-nothing: every entry is
//! validated before anything becomes visible, and the new sites appear in
//! one registry snapshot.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock, Mutex};

use dynkey_query::{ClassMap, Flags};
use dynkey_text::ValueSite;

use crate::callsite::{Callsite, FuncName};
use crate::classes::{ClassMapSpec, covers};
use crate::error::Error;
use crate::registry::{ClassMapEntry, Origin, Registry};
use crate::state::State;

/// A site described by data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SiteSpec {
    /// Module (a Rust module path, or a kernel-style module name).
    pub module: String,
    /// Source file.
    pub file: String,
    /// Enclosing function.
    pub func: String,
    /// Line.
    pub line: u32,
    /// Format string.
    pub format: String,
    /// Class name (must belong to a class map that lists the module).
    pub class: Option<String>,
}

/// A registered run-time site.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeSite {
    callsite: &'static Callsite,
    site: ValueSite,
}

impl RuntimeSite {
    /// Whether the site prints: a call to its stub (or an atomic load).
    #[inline]
    pub fn enabled(&self) -> bool {
        self.site.get()
    }

    /// Prints a message (decorated by the site's flags); call it only when
    /// [`enabled`](Self::enabled).
    pub fn emit(&self, args: fmt::Arguments<'_>) {
        self.callsite.__emit(args);
    }

    /// The site's descriptor.
    pub fn callsite(&self) -> &'static Callsite {
        self.callsite
    }

    /// The stub's address (None for the atomic kind), e.g. to see how
    /// stubs are laid out.
    pub fn stub_addr(&self) -> Option<usize> {
        self.site.stub_addr()
    }
}

fn invalid(
    what: &'static str,
    entry: usize,
    field: &'static str,
    reason: impl Into<String>,
) -> Error {
    Error::Invalid {
        what,
        entry,
        field,
        reason: reason.into(),
    }
}

/// What registration keeps for the life of the process: strings (site
/// tables repeat them) and one handle per distinct site, so registering
/// the same site again returns the same handle instead of leaking another.
#[derive(Default)]
struct Interned {
    strings: HashMap<String, &'static str>,
    sites: HashMap<SiteSpec, RuntimeSite>,
}

impl Interned {
    fn get(&mut self, s: &str) -> &'static str {
        if let Some(v) = self.strings.get(s) {
            return v;
        }
        let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
        self.strings.insert(s.to_owned(), leaked);
        leaked
    }
}

static INTERNED: LazyLock<Mutex<Interned>> = LazyLock::new(Mutex::default);

/// Whether a class map given as data is the one already registered.
fn same_map(e: &ClassMapEntry, m: &ClassMapSpec) -> bool {
    e.map.kind == m.kind
        && e.map.base == m.base
        && e.map.names == m.classes
        && e.modules == m.modules
        && m.flags.parse::<Flags>().ok() == Some(e.map.flags)
}

fn check_classmaps(
    existing: &[Arc<ClassMapEntry>],
    maps: &[ClassMapSpec],
) -> Result<Vec<ClassMapEntry>, Error> {
    let mut out: Vec<ClassMapEntry> = Vec::new();
    for (i, m) in maps.iter().enumerate() {
        let bad = |field, reason: String| invalid("class map", i, field, reason);
        if m.param.trim().is_empty() {
            return Err(bad("param", "is empty".into()));
        }
        if let Some(e) = existing.iter().find(|e| e.param == m.param) {
            if same_map(e, m) {
                continue; // registered before: the same map again is no change
            }
            return Err(bad(
                "param",
                format!(
                    "{:?} is already registered with other classes, modules or flags",
                    m.param
                ),
            ));
        }
        if out.iter().any(|e| e.param == m.param) {
            return Err(bad("param", format!("{:?} is given twice", m.param)));
        }
        if m.classes.is_empty() {
            return Err(bad("classes", "is empty".into()));
        }
        if m.base as usize + m.classes.len() > 63 {
            return Err(bad(
                "base",
                format!(
                    "{} + {} classes exceeds the 63 class ids",
                    m.base,
                    m.classes.len()
                ),
            ));
        }
        if let Some(c) = m
            .classes
            .iter()
            .find(|c| c.is_empty() || c.chars().any(|ch| ch.is_whitespace()))
        {
            return Err(bad(
                "classes",
                format!("{c:?} is not a class name (empty or with whitespace)"),
            ));
        }
        if m.modules.is_empty() {
            return Err(bad("modules", "is empty".into()));
        }
        let flags: Flags = m.flags.parse().map_err(|_| {
            bad(
                "flags",
                format!(
                    "{:?} is not a set of flag characters (p m f l t s)",
                    m.flags
                ),
            )
        })?;
        out.push(ClassMapEntry {
            param: m.param.clone(),
            map: ClassMap {
                kind: m.kind,
                base: m.base,
                names: m.classes.clone(),
                flags,
            },
            modules: m.modules.clone(),
            value: AtomicU64::new(0),
        });
    }
    Ok(out)
}

fn check_site(i: usize, s: &SiteSpec, maps: &[&ClassMapEntry]) -> Result<(), Error> {
    let bad = |field, reason: String| invalid("site", i, field, reason);
    for (field, v) in [("module", &s.module), ("file", &s.file), ("func", &s.func)] {
        if v.is_empty() {
            return Err(bad(field, "is empty".into()));
        }
        if v.chars().any(char::is_whitespace) {
            return Err(bad(field, format!("{v:?} contains whitespace")));
        }
    }
    if let Some(c) = &s.class {
        let known = maps.iter().any(|m| {
            let modules: Vec<&str> = m.modules.iter().map(String::as_str).collect();
            m.map.names.contains(c) && covers(&modules, &s.module)
        });
        if !known {
            return Err(bad(
                "class",
                format!(
                    "{c:?} is not a class of any class map listing module {:?}",
                    s.module
                ),
            ));
        }
    }
    Ok(())
}

/// Registers class maps and sites described by data, all or nothing (see
/// [`Control::register_in_stub_order`](crate::Control::register_in_stub_order)).
pub(crate) fn register(
    state: &State,
    classmaps: Vec<ClassMapSpec>,
    sites: Vec<SiteSpec>,
    stub_order: Option<&[usize]>,
) -> Result<Vec<RuntimeSite>, Error> {
    if let Some(order) = stub_order {
        let mut seen = vec![false; sites.len()];
        let permutation = order.len() == sites.len()
            && order
                .iter()
                .all(|&i| i < seen.len() && !std::mem::replace(&mut seen[i], true));
        if !permutation {
            return Err(invalid(
                "stub order",
                0,
                "stub_order",
                "is not a permutation of the site indexes",
            ));
        }
    }
    let mut engine = state.engine();
    let old = state.snapshot.load();
    let new_maps = check_classmaps(&old.classmaps, &classmaps)?;
    {
        let all: Vec<&ClassMapEntry> = old
            .classmaps
            .iter()
            .map(|a| a.as_ref())
            .chain(new_maps.iter())
            .collect();
        for (i, s) in sites.iter().enumerate() {
            check_site(i, s, &all)?;
        }
    }
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    // Sites registered before (by an earlier call, or earlier in this
    // one) keep their handle; only new ones get a callsite and a stub.
    let mut fresh: Vec<usize> = Vec::new();
    let mut first_of: HashMap<&SiteSpec, usize> = HashMap::new();
    for (i, s) in sites.iter().enumerate() {
        if !interned.sites.contains_key(s) && *first_of.entry(s).or_insert(i) == i {
            fresh.push(i);
        }
    }
    let mut callsites: HashMap<usize, &'static Callsite> = HashMap::new();
    for &i in &fresh {
        let s = &sites[i];
        let cs: &'static Callsite = Box::leak(Box::new(Callsite::__new(
            interned.get(&s.module),
            interned.get(&s.file),
            s.line,
            interned.get(&s.format),
            s.class.as_deref().map(|c| interned.get(c)),
            FuncName::Static(interned.get(&s.func)),
            None,
        )));
        callsites.insert(i, cs);
    }
    let in_order: Vec<usize> = (0..sites.len()).collect();
    let mut stubs: HashMap<usize, ValueSite> = HashMap::new();
    for &i in stub_order.unwrap_or(&in_order) {
        if let Some(cs) = callsites.get(&i) {
            stubs.insert(i, ValueSite::new(cs.key())?);
        }
    }
    let mut parts = old.parts();
    for &i in &fresh {
        let cs = callsites[&i];
        let handle = RuntimeSite {
            callsite: cs,
            site: stubs.remove(&i).expect("every new site got a stub"),
        };
        interned.sites.insert(sites[i].clone(), handle);
        parts.push((cs, cs.func(), Origin::Runtime));
    }
    let handles: Vec<RuntimeSite> = sites.iter().map(|s| interned.sites[s]).collect();
    drop(interned);
    if fresh.is_empty() && new_maps.is_empty() {
        return Ok(handles);
    }
    let mut maps = old.classmaps.clone();
    maps.extend(new_maps.into_iter().map(Arc::new));
    let reg = Arc::new(Registry::new(
        parts,
        old.keys.clone(),
        old.calls.clone(),
        maps,
    ));
    state.snapshot.store(reg.clone());
    // The new sites get the effective state (the baseline's
    // DYNKEY_QUERY, fleet layers, local operations): one commit.
    engine.rebuild(&reg)?;
    Ok(handles)
}
