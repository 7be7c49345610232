//! The process-wide state behind [`control`](crate::control): built once,
//! on first use (start-up), and the control lock that serializes every
//! change ([`ControlGuard`]).
//!
//! Building it reads every compiled-in item from its linker section
//! (`dynkey_callsites_v1`, `dynkey_keys_v1`, `dynkey_calls_v1`,
//! `dynkey_classmaps_v1`), starts the patching runtime (so its choices, and
//! a bad `DYNKEY_*` configuration, are known before any request), checks
//! that every class'd callsite's class is known to its module, and applies
//! the baseline (`DYNKEY_QUERY`) with one commit.
//!
//! Problems found here are printed once, on standard error, and kept:
//! [`init`](crate::init) returns the first, and a bad configuration refuses
//! every change afterwards (`E_CONFIG`) rather than failing each one in a
//! more confusing way.
//!
//! `DYNKEY_QUERY` is the kernel's `dyndbg=` boot parameter: when it is set,
//! an ELF constructor builds the state before `main`, so even a program
//! that never calls dynkey gets its sites enabled. The constructor does
//! nothing when the variable is unset, never panics, and leaves the work to
//! the first use when the process already has other threads (a `dlopen`ed
//! library: building there would register `membarrier` under the loader
//! lock).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use arc_swap::ArcSwap;
use dynkey_query::{ClassMap, Flags};
use dynkey_text::{CodePtr, RawCall};

use crate::callsite::{Callsite, FuncName};
use crate::classes::ClassMapDesc;
use crate::engine::Engine;
use crate::error::Error;
use crate::expiry::Timer;
use crate::group_commit::GroupCommit;
use crate::op::Op;
use crate::records::{CallDesc, KeyRef, NoKey};
use crate::registry::{ClassMapEntry, Origin, Registry};
use crate::table::prepare;
use crate::tracing_hook;

dynkey_text::linker_section!(fn compiled_callsites() -> [Callsite] in "dynkey_callsites_v1",
    sentinel = Callsite::__new("", "", 0, "", None, FuncName::Static(""), None));
dynkey_text::linker_section!(fn compiled_keys() -> [KeyRef] in "dynkey_keyrefs_v1",
    sentinel = KeyRef(&NO_KEY));
dynkey_text::linker_section!(fn compiled_calls() -> [CallDesc] in "dynkey_calls_v1",
    sentinel = CallDesc::__new("", "", 0, &[], &SENTINEL_CALL));
dynkey_text::linker_section!(fn compiled_classmaps() -> [ClassMapDesc] in "dynkey_classmaps_v1",
    sentinel = ClassMapDesc::__new("", dynkey_query::ClassMapKind::DisjointBits, 0, &[], &[], ""));

static NO_KEY: NoKey = NoKey(dynkey_text::RawKey::new(false));
fn never_called() {}
static SENTINEL_CALL: RawCall = RawCall::new(&[CodePtr::new(never_called as *const ())]);

/// The process-wide state behind [`control`](crate::control).
#[derive(Debug)]
pub(crate) struct State {
    pub snapshot: ArcSwap<Registry>,
    /// The control lock: every change goes through it (see `engine.rs`).
    engine: Mutex<Engine>,
    pub group_commit: GroupCommit,
    pub queries_ok: AtomicU64,
    pub queries_error: AtomicU64,
    /// What start-up found wrong, in the order found.
    pub boot_errors: Vec<Error>,
}

static STATE: OnceLock<State> = OnceLock::new();
static TIMER: Timer = Timer::new(expire_tick);

fn expire_tick() {
    if let Some(s) = STATE.get() {
        s.expire();
    }
}

/// The state, built on first use.
pub(crate) fn start() -> &'static State {
    STATE.get_or_init(build)
}

impl State {
    /// Takes the control lock (its guard runs the tracing hook on release).
    pub fn engine(&self) -> ControlGuard<'_, Engine> {
        ControlGuard::new(self.engine.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Counts queries applied and refused, for metrics.
    pub fn count_queries(&self, ok: usize, err: usize) {
        self.queries_ok.fetch_add(ok as u64, Ordering::Relaxed);
        self.queries_error.fetch_add(err as u64, Ordering::Relaxed);
    }

    /// Drops expired operations (rebuilding once if any did).
    pub fn expire(&self) {
        let mut engine = self.engine();
        let reg = self.snapshot.load();
        if let Some(Err(e)) = engine.expire(&reg) {
            eprintln!("dynkey: rebuilding after an expiry failed: {e}");
        }
        TIMER.schedule(engine.layers.next_expiry());
    }
}

fn class_maps() -> Vec<Arc<ClassMapEntry>> {
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
    maps
}

/// Class'd callsites whose module no class map declaring their class covers:
/// no query or param could ever turn them on.
fn unknown_classes(reg: &Registry) -> Vec<Error> {
    reg.sites
        .iter()
        .filter(|s| !s.class_known)
        .map(|s| {
            let class = s.cs.class.unwrap_or_default();
            let declaring: Vec<String> = reg
                .classmaps
                .iter()
                .filter(|m| m.map.names.iter().any(|n| n == class))
                .map(|m| format!("{} (modules {:?})", m.param, m.modules))
                .collect();
            Error::UnknownClass {
                site: format!("{}:{}", s.cs.file, s.cs.line),
                module: s.cs.module.to_string(),
                class: class.to_string(),
                maps: if declaring.is_empty() {
                    "no class map declares it".into()
                } else {
                    format!("declared by {}", declaring.join(", "))
                },
            }
        })
        .collect()
}

fn build() -> State {
    // Link order depends on how the compiler split the code into units; the
    // listing sorts compiled-in sites by place, so it is stable across builds.
    let mut compiled = compiled_callsites();
    compiled.sort_by_key(|cs| (cs.file, cs.line, cs.module, cs.format));
    let sites = compiled
        .into_iter()
        .map(|cs| (cs, cs.func(), Origin::Compiled))
        .collect();
    let keys = compiled_keys().into_iter().map(|r| r.0).collect();
    let reg = Registry::new(sites, keys, compiled_calls(), class_maps());

    let mut errors = Vec::new();
    // Start the patching runtime now, so its choices are made before any
    // request and a bad configuration surfaces here.
    let refuse = dynkey_text::status().err().map(Error::Config);
    errors.extend(refuse.clone());
    errors.extend(unknown_classes(&reg));

    let mut baseline = Vec::new();
    if let Some(q) = std::env::var_os("DYNKEY_QUERY") {
        let op = Op::query(q.to_string_lossy());
        match (&refuse, prepare(&reg, &op.kind)) {
            (Some(_), _) => {}
            (None, Ok(_)) => baseline.push(op),
            (None, Err(e)) => errors.push(Error::BootQuery(Box::new(e))),
        }
    }
    let mut engine = Engine::new(baseline, &TIMER);
    engine.refuse = refuse.clone();
    if refuse.is_none()
        && let Err(e) = engine.rebuild(&reg)
    {
        errors.push(Error::BootQuery(Box::new(e)));
    }
    for e in &errors {
        eprintln!("dynkey: {e}");
    }
    State {
        snapshot: ArcSwap::from_pointee(reg),
        engine: Mutex::new(engine),
        group_commit: GroupCommit::default(),
        queries_ok: AtomicU64::new(0),
        queries_error: AtomicU64::new(0),
        boot_errors: errors,
    }
}

/// `DYNKEY_QUERY` at start-up, like the kernel's `dyndbg=` boot parameter
/// (see the module docs).
#[allow(unsafe_code)] // only the `link_section` attribute of a constructor
#[used]
#[unsafe(link_section = ".init_array")]
static APPLY_DYNKEY_QUERY_AT_START: extern "C" fn() = apply_at_start;

extern "C" fn apply_at_start() {
    if dynkey_text::early::env_is_set(c"DYNKEY_QUERY") && dynkey_text::early::single_threaded() {
        // Never unwind out of a constructor.
        let _ = std::panic::catch_unwind(start);
    }
}

/// The control lock's guard: derefs to what the lock protects, and runs
/// the tracing hook after releasing the lock when commits made under it
/// changed tracing rows (the protocol is in `tracing_hook.rs`).
#[derive(Debug)]
pub(crate) struct ControlGuard<'a, T> {
    guard: Option<MutexGuard<'a, T>>,
    start: u64,
    quiet: bool,
}

impl<'a, T> ControlGuard<'a, T> {
    /// Wraps the guard of the control lock, just taken.
    pub fn new(guard: MutexGuard<'a, T>) -> Self {
        ControlGuard {
            guard: Some(guard),
            start: tracing_hook::changes_under_lock(),
            quiet: false,
        }
    }

    /// Runs no hook on release: for the registration of rows, whose
    /// initial state the filter gives tracing itself (it is calling
    /// dynkey from inside tracing, where a rebuild must not start).
    pub fn quiet(&mut self) {
        self.quiet = true;
    }
}

impl<T> Deref for ControlGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_deref().expect("held until dropped")
    }
}

impl<T> DerefMut for ControlGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_deref_mut().expect("held until dropped")
    }
}

impl<T> Drop for ControlGuard<'_, T> {
    fn drop(&mut self) {
        let end = tracing_hook::changes_under_lock();
        drop(self.guard.take());
        if end != self.start && !self.quiet {
            tracing_hook::run_hook(end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracing_hook::{set_hook, tracing_rows_changed};
    use std::sync::atomic::AtomicUsize;

    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static LOCK: Mutex<()> = Mutex::new(());

    fn count() {
        RUNS.fetch_add(1, Ordering::Relaxed);
    }

    #[test]
    fn the_hook_runs_after_release_only_when_rows_changed_and_not_quietly() {
        let _only_test_of_the_hook = LOCK.lock().unwrap();
        set_hook(Some(count));
        let m = Mutex::new(0u32);
        let before = RUNS.load(Ordering::Relaxed);
        {
            let mut g = ControlGuard::new(m.lock().unwrap());
            *g += 1;
        }
        assert_eq!(RUNS.load(Ordering::Relaxed), before, "nothing changed");
        {
            let _g = ControlGuard::new(m.lock().unwrap());
            tracing_rows_changed();
            assert_eq!(RUNS.load(Ordering::Relaxed), before, "not under the lock");
        }
        assert_eq!(RUNS.load(Ordering::Relaxed), before + 1, "after release");
        assert!(m.try_lock().is_ok(), "the lock was released");
        {
            let mut g = ControlGuard::new(m.lock().unwrap());
            g.quiet();
            tracing_rows_changed();
        }
        assert_eq!(RUNS.load(Ordering::Relaxed), before + 1, "quiet");
        {
            let _g = ControlGuard::new(m.lock().unwrap());
            tracing_rows_changed();
        }
        assert_eq!(
            RUNS.load(Ordering::Relaxed),
            before + 2,
            "the next run covers the quiet change too"
        );
        set_hook(None);
    }
}
