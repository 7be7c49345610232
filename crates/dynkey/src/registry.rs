//! The registry: every callsite, static key, static call and class map of
//! the process, compiled-in or registered at run time.
//!
//! Readers (matching, listing, metrics) load an immutable snapshot with
//! `arc-swap`, without locks, while run-time sites are added. Writers (flag
//! changes, registrations) hold the control lock, so two requests never
//! interleave their read-modify-write of flags, and publish a new snapshot
//! when sites are added.
//!
//! Compiled-in items are found in linker sections (`dynkey_callsites_v1`,
//! `dynkey_keys_v1`, `dynkey_calls_v1`, `dynkey_classmaps_v1`); callsites
//! are listed by file and line. Run-time sites follow, in registration order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use dynkey_query::{ClassMap, Flags, Query, SiteInfo, crate_name};
use dynkey_text::{CodePtr, RawCall};

use crate::call::CallDesc;
use crate::callsite::{Callsite, FuncName};
use crate::classes::{ClassMapDesc, covers};
use crate::key::StaticKey;

dynkey_text::linker_section!(fn compiled_callsites() -> [Callsite] in "dynkey_callsites_v1",
    sentinel = Callsite::__new("", "", 0, "", None, FuncName::Static(""), None));
dynkey_text::linker_section!(fn compiled_keys() -> [StaticKey] in "dynkey_keys_v1",
    sentinel = StaticKey::__new(false, "", "", "", 0));
dynkey_text::linker_section!(fn compiled_calls() -> [CallDesc] in "dynkey_calls_v1",
    sentinel = CallDesc::__new("", "", 0, &[], &SENTINEL_CALL));
dynkey_text::linker_section!(fn compiled_classmaps() -> [ClassMapDesc] in "dynkey_classmaps_v1",
    sentinel = ClassMapDesc::__new("", dynkey_query::ClassMapKind::DisjointBits, 0, &[], &[], ""));

fn never_called() {}
static SENTINEL_CALL: RawCall = RawCall::new(&[CodePtr::new(never_called as *const ())]);

/// Stands in for the class of a site whose module knows no such class: no
/// query word can contain a newline, so no `class` query can select it.
const UNRESOLVED_CLASS: &str = "\n(unresolved)";

/// One callsite and what matching needs of it.
#[derive(Debug)]
pub(crate) struct Site {
    pub cs: &'static Callsite,
    pub func: &'static str,
    /// Whether the site's class (if any) is known to its module.
    pub class_known: bool,
    /// Registered at run time (a trampoline), not compiled in.
    pub runtime: bool,
}

impl Site {
    /// The site as queries see it.
    pub fn info(&self) -> SiteInfo<'static> {
        let class = match self.cs.class {
            Some(_) if !self.class_known => Some(UNRESOLVED_CLASS),
            c => c,
        };
        SiteInfo {
            module: self.cs.module,
            file: self.cs.file,
            func: self.func,
            line: self.cs.line,
            format: self.cs.format.as_bytes(),
            class,
        }
    }

    /// The site as the listing shows it (its class name even if unresolved).
    pub fn listing_info(&self) -> SiteInfo<'static> {
        SiteInfo {
            class: self.cs.class,
            ..self.info()
        }
    }
}

/// A class map and its param's last written value.
#[derive(Debug)]
pub(crate) struct ClassMapEntry {
    pub param: String,
    pub map: ClassMap,
    pub modules: Vec<String>,
    pub value: AtomicU64,
}

impl ClassMapEntry {
    fn knows(&self, module: &str, class: &str) -> bool {
        let modules: Vec<&str> = self.modules.iter().map(String::as_str).collect();
        self.map.names.iter().any(|n| n == class) && covers(&modules, module)
    }
}

/// An immutable view of everything registered.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pub sites: Vec<Site>,
    /// Distinct module paths, in first-seen order, with their sites.
    pub modules: Vec<(&'static str, Vec<u32>)>,
    by_path: HashMap<&'static str, u32>,
    by_crate: HashMap<&'static str, Vec<u32>>,
    by_func: HashMap<&'static str, Vec<u32>>,
    by_class: HashMap<&'static str, Vec<u32>>,
    pub keys: Vec<&'static StaticKey>,
    pub calls: Vec<&'static CallDesc>,
    pub classmaps: Vec<Arc<ClassMapEntry>>,
}

impl Registry {
    /// Builds the indexes over `sites` (in order).
    pub fn new(
        cs: Vec<(&'static Callsite, &'static str, bool)>,
        keys: Vec<&'static StaticKey>,
        calls: Vec<&'static CallDesc>,
        classmaps: Vec<Arc<ClassMapEntry>>,
    ) -> Registry {
        let mut r = Registry {
            keys,
            calls,
            classmaps,
            ..Registry::default()
        };
        for (i, (cs, func, runtime)) in cs.into_iter().enumerate() {
            let i = i as u32;
            let class_known = cs
                .class
                .is_none_or(|c| r.classmaps.iter().any(|m| m.knows(cs.module, c)));
            let m = *r.by_path.entry(cs.module).or_insert_with(|| {
                r.modules.push((cs.module, Vec::new()));
                let m = (r.modules.len() - 1) as u32;
                r.by_crate.entry(crate_name(cs.module)).or_default().push(m);
                m
            });
            r.modules[m as usize].1.push(i);
            r.by_func.entry(func).or_default().push(i);
            if let Some(c) = cs.class {
                r.by_class.entry(c).or_default().push(i);
            }
            r.sites.push(Site {
                cs,
                func,
                class_known,
                runtime,
            });
        }
        r
    }

    /// The sites `q` selects, in registration order, using the indexes
    /// where the query allows (a literal module or function name) and
    /// testing each distinct module once otherwise.
    pub fn matching(&self, q: &Query, out: &mut Vec<u32>) {
        let mut candidates: Vec<u32> = Vec::new();
        let module_literal = q
            .module()
            .filter(|m| !m.negated)
            .and_then(|m| m.pattern.literal());
        let func_literal = q
            .func()
            .filter(|f| !f.negated)
            .and_then(|f| f.pattern.literal());
        if let Some(lit) = module_literal {
            let mut mods: Vec<u32> = self.by_path.get(lit).copied().into_iter().collect();
            mods.extend(self.by_crate.get(lit).into_iter().flatten().copied());
            mods.sort_unstable();
            mods.dedup();
            candidates.extend(
                mods.iter()
                    .flat_map(|&m| self.modules[m as usize].1.iter().copied()),
            );
            candidates.sort_unstable();
        } else if let Some(c) = q.class() {
            candidates.extend(self.by_class.get(c).into_iter().flatten().copied());
        } else if let Some(f) = func_literal {
            candidates.extend(self.by_func.get(f).into_iter().flatten().copied());
        } else if q.module().is_some() {
            for (path, sites) in &self.modules {
                if q.matches_module(path) {
                    candidates.extend(sites.iter().copied());
                }
            }
            candidates.sort_unstable();
        } else {
            out.extend(
                (0..self.sites.len() as u32).filter(|&i| q.matches(&self.sites[i as usize].info())),
            );
            return;
        }
        out.extend(
            candidates
                .into_iter()
                .filter(|&i| q.matches(&self.sites[i as usize].info())),
        );
    }

    /// Sites of class `class` known to the modules of `map`.
    pub fn class_sites<'a>(
        &'a self,
        map: &'a ClassMapEntry,
        class: &'a str,
    ) -> impl Iterator<Item = u32> + 'a {
        self.by_class
            .get(class)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&i| {
                let s = &self.sites[i as usize];
                s.class_known && map.knows(s.cs.module, class)
            })
    }

    pub fn classmap(&self, param: &str) -> Option<&Arc<ClassMapEntry>> {
        self.classmaps.iter().find(|m| m.param == param)
    }

    /// The callsites and their function names, for rebuilding.
    pub fn parts(&self) -> Vec<(&'static Callsite, &'static str, bool)> {
        self.sites
            .iter()
            .map(|s| (s.cs, s.func, s.runtime))
            .collect()
    }
}

/// The process-wide state behind [`control`](crate::control).
#[derive(Debug)]
pub(crate) struct State {
    pub snapshot: ArcSwap<Registry>,
    /// Serializes every change of flags, params and registrations.
    pub lock: Mutex<()>,
    pub queries_ok: AtomicU64,
    pub queries_error: AtomicU64,
}

static STATE: OnceLock<State> = OnceLock::new();
static BOOT_QUERY: std::sync::Once = std::sync::Once::new();
static BOOT_ERROR: OnceLock<crate::Error> = OnceLock::new();

/// The state, built on first use; `DYNKEY_QUERY` is applied once, then.
pub(crate) fn start() -> &'static State {
    let state = STATE.get_or_init(build);
    // `_force`: a panic in an earlier attempt must not poison every later
    // call (the constructor catches it and the program goes on).
    BOOT_QUERY.call_once_force(|_| {
        if let Err(e) = crate::control::apply_env_query(state) {
            eprintln!("dynkey: DYNKEY_QUERY not applied: {e}");
            let _ = BOOT_ERROR.set(e);
        }
    });
    state
}

/// What went wrong with `DYNKEY_QUERY` at start-up, if anything.
pub(crate) fn boot_query_error() -> Option<crate::Error> {
    BOOT_ERROR.get().cloned()
}

fn build() -> State {
    let mut maps: Vec<Arc<ClassMapEntry>> = Vec::new();
    for d in compiled_classmaps() {
        if let Some(existing) = maps.iter_mut().find(|m| m.param == d.param) {
            // The same map declared by several crates (the kernel's DRM core
            // and drivers do that): one param, the union of their modules.
            let e = Arc::get_mut(existing).expect("not shared yet");
            e.modules.extend(d.modules.iter().map(|m| m.to_string()));
            continue;
        }
        maps.push(Arc::new(ClassMapEntry {
            param: d.param.to_string(),
            map: ClassMap {
                kind: d.kind,
                base: d.base,
                names: d.classes.iter().map(|c| c.to_string()).collect(),
                flags: d.flags.parse().unwrap_or_else(|_| {
                    eprintln!(
                        "dynkey: class map {}: flags {:?} are not flag characters; using p",
                        d.param, d.flags
                    );
                    Flags::P
                }),
            },
            modules: d.modules.iter().map(|m| m.to_string()).collect(),
            value: AtomicU64::new(0),
        }));
    }
    // Link order depends on how the compiler split the code into units; the
    // listing sorts compiled-in sites by place, so it is stable across builds.
    let mut compiled = compiled_callsites();
    compiled.sort_by_key(|cs| (cs.file, cs.line, cs.module, cs.format));
    let sites = compiled
        .into_iter()
        .map(|cs| (cs, cs.func(), false))
        .collect();
    let reg = Registry::new(sites, compiled_keys(), compiled_calls(), maps);
    // Start the patching runtime now, so its choices are made before any
    // request and its errors surface in `status`.
    let _ = dynkey_text::status();
    State {
        snapshot: ArcSwap::from_pointee(reg),
        lock: Mutex::new(()),
        queries_ok: AtomicU64::new(0),
        queries_error: AtomicU64::new(0),
    }
}

impl State {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn count_queries(&self, ok: usize, err: usize) {
        self.queries_ok.fetch_add(ok as u64, Ordering::Relaxed);
        self.queries_error.fetch_add(err as u64, Ordering::Relaxed);
    }
}

/// `DYNKEY_QUERY` at start-up, like the kernel's `dyndbg=` boot parameter:
/// an ELF constructor starts the registry before `main` when it is set, so
/// even a program that never calls dynkey gets its sites enabled.
#[allow(unsafe_code)] // only the `link_section` attribute of a constructor
#[used]
#[unsafe(link_section = ".init_array")]
static APPLY_DYNKEY_QUERY_AT_START: extern "C" fn() = apply_at_start;

extern "C" fn apply_at_start() {
    if std::env::var_os("DYNKEY_QUERY").is_some() {
        // Never unwind out of a constructor.
        let _ = std::panic::catch_unwind(start);
    }
}
