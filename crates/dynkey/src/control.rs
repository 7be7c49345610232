//! The control surface: queries, params, keys, calls, the listing.
//!
//! Every change goes through one function per kind of request, which reads
//! flags, computes the new ones for every matched site, and applies the
//! whole request as **one** commit: one rendezvous for the body, however
//! many queries and sites; none when only decoration flags change.

use std::fmt;
use std::sync::atomic::Ordering;

use dynkey_query::{
    Flags, LISTING_HEADER, format_param_value, parse, parse_param_value, write_row,
};
use dynkey_text::{Change, CountersSnapshot, Method, SiteKind, commit};

use crate::Error;
use crate::callsite::Callsite;
use crate::registry::{Registry, State, start};

/// What `exec` did (`POST /control`'s reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Queries in the body (empty and comment pieces not counted).
    pub queries: usize,
    /// Sum over queries of the sites each matched.
    pub matched: usize,
    /// Distinct sites whose flags differ after the body from before.
    pub changed: usize,
    /// Rendezvous this request caused (0 or 1).
    pub rendezvous: usize,
}

/// What a param write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamReport {
    /// The param.
    pub param: String,
    /// The value stored (masked or clamped), as `param` reads it back.
    pub value: String,
    /// Sites whose flags changed.
    pub changed: usize,
    /// Rendezvous used (0 or 1).
    pub rendezvous: usize,
}

/// What a key or call change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeReport {
    /// Keys or calls whose state changed.
    pub changed: usize,
    /// Rendezvous used (0 or 1).
    pub rendezvous: usize,
}

/// A named static key, as `GET /keys` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its name.
    pub name: &'static str,
    /// `module::NAME`.
    pub path: String,
    /// The published state.
    pub enabled: bool,
    /// Sites testing it.
    pub sites: u64,
    /// The kind of most of its sites.
    pub kind: SiteKind,
    /// `file:line`.
    pub defined_at: String,
}

/// A named static call, as `GET /keys` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// Its name.
    pub name: &'static str,
    /// The current target's name.
    pub target: &'static str,
    /// Every registered target.
    pub targets: Vec<&'static str>,
    /// `file:line`.
    pub defined_at: String,
}

/// One callsite, as the JSON listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    /// Module path.
    pub module: &'static str,
    /// File.
    pub file: &'static str,
    /// Enclosing function.
    pub func: &'static str,
    /// Line.
    pub line: u32,
    /// Format string.
    pub format: &'static str,
    /// Class name, if class'd.
    pub class: Option<&'static str>,
    /// Flags, display form (`p`, `pmf`, `_`).
    pub flags: Flags,
    /// The kind of the site that tests its `p` flag.
    pub kind: SiteKind,
}

/// Everything the metrics need, read at one moment (each value independently).
#[derive(Debug, Clone)]
pub struct Counters {
    /// The patching layer's counters.
    pub text: CountersSnapshot,
    /// Queries applied.
    pub queries_ok: u64,
    /// Queries rejected.
    pub queries_error: u64,
    /// Sites by kind and state (static keys and callsites).
    pub census: dynkey_text::Census,
    /// The rendezvous method in use.
    pub method: Method,
}

/// The process's control surface: see [`control`]. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    state: &'static State,
}

/// The control surface (starting the registry, and applying
/// `DYNKEY_QUERY`, on first use).
pub fn control() -> Control {
    Control { state: start() }
}

/// Starts the registry now (otherwise it starts on first use) and returns
/// the error of `DYNKEY_QUERY`, if it had one (it was also reported on
/// stderr, and nothing of it was applied).
pub fn init() -> Result<(), Error> {
    start();
    match crate::registry::boot_query_error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Per-site new flags, in the order the request first visited each site
/// (the visit order is what the kernel's unsorted queue mode reacts to).
#[derive(Default)]
struct Pending {
    order: Vec<(u32, Flags)>,
    index: dynkey_text::IntMap<u32, usize>,
}

impl Pending {
    fn reserve(&mut self, more: usize) {
        self.order.reserve(more);
        self.index.reserve(more);
    }

    fn update(&mut self, reg: &Registry, site: u32, f: impl FnOnce(Flags) -> Flags) {
        match self.index.get(&site) {
            Some(&i) => self.order[i].1 = f(self.order[i].1),
            None => {
                self.index.insert(site, self.order.len());
                self.order
                    .push((site, f(reg.sites[site as usize].cs.flags())));
            }
        }
    }
}

/// Whether an error came after the changes were applied: the code was
/// written and the states published, but some thread may lag.
fn applied(e: &Error) -> bool {
    matches!(
        e,
        Error::Text(
            dynkey_text::Error::RendezvousTimeout { .. } | dynkey_text::Error::Rendezvous { .. }
        )
    )
}

/// Applies new flags as one commit; returns (sites changed, rendezvous).
/// Caller holds the control lock.
fn apply(reg: &Registry, pending: Pending) -> Result<(usize, usize), Error> {
    let mut changed: Vec<(&'static Callsite, Flags)> = Vec::new();
    let mut keys = Vec::new();
    for (site, new) in pending.order {
        let cs = reg.sites[site as usize].cs;
        let old = cs.flags();
        if new != old {
            changed.push((cs, new));
            if new.contains(Flags::P) != old.contains(Flags::P) {
                keys.push(Change::Key(cs.key(), new.contains(Flags::P)));
            }
        }
    }
    let result = if keys.is_empty() {
        Ok(0)
    } else {
        commit(&keys).map(|r| r.rendezvous)
    };
    match result {
        // Nothing was written: leave the flags as they were.
        Err(e @ (dynkey_text::Error::Verify { .. } | dynkey_text::Error::NoSuchTarget { .. })) => {
            Err(e.into())
        }
        Err(e)
            if !matches!(
                e,
                dynkey_text::Error::RendezvousTimeout { .. }
                    | dynkey_text::Error::Rendezvous { .. }
            ) =>
        {
            Err(e.into())
        }
        // Written and published (possibly with lagging threads): record it.
        r => {
            for (cs, f) in &changed {
                cs.store_flags(*f);
            }
            r.map(|rv| (changed.len(), rv)).map_err(Error::from)
        }
    }
}

fn exec_in(state: &State, body: &[u8]) -> Result<Report, Error> {
    let queries = match parse(body) {
        Ok(q) => q,
        Err(errors) => {
            state.count_queries(0, errors.len());
            return Err(Error::Query(errors));
        }
    };
    let _guard = state.lock();
    let reg = state.snapshot.load();
    let mut pending = Pending::default();
    let mut matched = 0;
    let mut ids = Vec::new();
    for q in &queries {
        ids.clear();
        reg.matching(q, &mut ids);
        matched += ids.len();
        pending.reserve(ids.len());
        for &id in &ids {
            pending.update(&reg, id, |f| q.op().apply(f));
        }
    }
    let result = apply(&reg, pending);
    if result.as_ref().is_ok() || result.as_ref().is_err_and(applied) {
        state.count_queries(queries.len(), 0);
    }
    let (changed, rendezvous) = result?;
    Ok(Report {
        queries: queries.len(),
        matched,
        changed,
        rendezvous,
    })
}

/// Applies `DYNKEY_QUERY`, if set.
pub(crate) fn apply_env_query(state: &State) -> Result<(), Error> {
    match std::env::var_os("DYNKEY_QUERY") {
        Some(q) => exec_in(state, q.as_encoded_bytes()).map(drop),
        None => Ok(()),
    }
}

impl Control {
    /// Runs a body of dyndbg queries: all of them or none. Every query is
    /// parsed first; any error means nothing is applied and every bad query
    /// is reported ([`Error::Query`]). Then all of them run as one commit.
    ///
    /// ```
    /// let c = dynkey::control();
    /// let r = c.exec("module !virtio* +p; module nobody -p").unwrap();
    /// assert_eq!(r.queries, 2);
    /// let err = c.exec("mod x +p").unwrap_err();
    /// assert_eq!(err.category(), "E_UNKNOWN_KEYWORD");
    /// ```
    pub fn exec(&self, body: impl AsRef<[u8]>) -> Result<Report, Error> {
        exec_in(self.state, body.as_ref())
    }

    /// Applies `DYNKEY_QUERY` again (e.g. after registering run-time sites).
    pub fn apply_env_query(&self) -> Result<(), Error> {
        apply_env_query(self.state)
    }

    /// Writes a class param (`0x1ff`, `3`, `017`: `kstrtoul` base 0): only
    /// the param's own flag characters change, only on classes whose bit
    /// changed, all as one commit. The stored value is masked (bits) or
    /// clamped (levels).
    pub fn set_param(&self, name: &str, value: impl AsRef<[u8]>) -> Result<ParamReport, Error> {
        let reg = self.state.snapshot.load();
        let entry = reg
            .classmap(name)
            .ok_or_else(|| Error::UnknownParam(name.into()))?
            .clone();
        let requested = parse_param_value(value.as_ref()).map_err(|error| Error::BadParam {
            param: name.into(),
            error,
        })?;
        let _guard = self.state.lock();
        let reg = self.state.snapshot.load();
        let old = entry.value.load(Ordering::Relaxed);
        let change = entry.map.apply(old, requested);
        let mut pending = Pending::default();
        for (class, op) in &change.changes {
            for site in reg.class_sites(&entry, class) {
                pending.update(&reg, site, |f| op.apply(f));
            }
        }
        let result = apply(&reg, pending);
        if result.is_ok() || result.as_ref().is_err_and(applied) {
            // Relaxed: read and written under the control lock only.
            entry.value.store(change.stored, Ordering::Relaxed);
        }
        let (changed, rendezvous) = result?;

        Ok(ParamReport {
            param: name.into(),
            value: format_param_value(entry.map.kind, change.stored),
            changed,
            rendezvous,
        })
    }

    /// A param's last written value (hex for bits, decimal for levels).
    pub fn param(&self, name: &str) -> Option<String> {
        let reg = self.state.snapshot.load();
        reg.classmap(name)
            .map(|e| format_param_value(e.map.kind, e.value.load(Ordering::Relaxed)))
    }

    /// Every param and its value.
    pub fn params(&self) -> Vec<(String, String)> {
        let reg = self.state.snapshot.load();
        reg.classmaps
            .iter()
            .map(|e| {
                (
                    e.param.clone(),
                    format_param_value(e.map.kind, e.value.load(Ordering::Relaxed)),
                )
            })
            .collect()
    }

    /// The named static keys.
    pub fn keys(&self) -> Vec<KeyInfo> {
        let reg = self.state.snapshot.load();
        reg.keys
            .iter()
            .map(|k| {
                let counts = dynkey_text::key_site_counts(k.raw()).unwrap_or([0; 3]);
                let kind = SiteKind::ALL
                    .into_iter()
                    .max_by_key(|k| counts[*k as usize])
                    .unwrap_or(SiteKind::Atomic);
                KeyInfo {
                    name: k.name(),
                    path: k.path(),
                    enabled: k.is_enabled(),
                    sites: counts.iter().sum(),
                    kind: if counts.iter().sum::<u64>() == 0 {
                        SiteKind::Atomic
                    } else {
                        kind
                    },
                    defined_at: k.defined_at(),
                }
            })
            .collect()
    }

    /// The named static calls.
    pub fn calls(&self) -> Vec<CallInfo> {
        let reg = self.state.snapshot.load();
        reg.calls
            .iter()
            .map(|c| CallInfo {
                name: c.name,
                target: c.target_name(c.raw.target_index()),
                targets: (0..c.targets.len()).map(|i| c.target_name(i)).collect(),
                defined_at: format!("{}:{}", c.file, c.line),
            })
            .collect()
    }

    /// Sets named keys (bare names, or `module::NAME` when a bare name is
    /// ambiguous) in one commit. An unknown name fails the whole call.
    pub fn set_keys<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> Result<ChangeReport, Error> {
        let reg = self.state.snapshot.load();
        let mut resolved = Vec::new();
        for (name, on) in changes {
            let exact: Vec<_> = reg.keys.iter().filter(|k| k.path() == name).collect();
            let bare: Vec<_> = reg.keys.iter().filter(|k| k.name() == name).collect();
            let key = match (exact.as_slice(), bare.as_slice()) {
                ([k], _) | ([], [k]) => **k,
                ([], []) => return Err(Error::UnknownKey(name.into())),
                (_, many) => {
                    return Err(Error::AmbiguousKey {
                        name: name.into(),
                        candidates: many.iter().map(|k| k.path()).collect(),
                    });
                }
            };
            resolved.push((key, on));
        }
        let _guard = self.state.lock();
        let changed = resolved
            .iter()
            .filter(|(k, on)| k.is_enabled() != *on)
            .count();
        let changes: Vec<Change> = resolved
            .iter()
            .map(|(k, on)| Change::Key(k.raw(), *on))
            .collect();
        let report = commit(&changes)?;
        Ok(ChangeReport {
            changed,
            rendezvous: report.rendezvous,
        })
    }

    /// Switches the static call `name` to its target named `target`.
    pub fn set_call(&self, name: &str, target: &str) -> Result<ChangeReport, Error> {
        let reg = self.state.snapshot.load();
        let call = reg
            .calls
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| Error::UnknownCall(name.into()))?;
        let index = call
            .target_index(target)
            .ok_or_else(|| Error::UnknownTarget {
                call: name.into(),
                target: target.into(),
                targets: call.targets.to_vec(),
            })?;
        let _guard = self.state.lock();
        let changed = (call.raw.target_index() != index) as usize;
        let report = call.set(index)?;
        Ok(ChangeReport {
            changed,
            rendezvous: report.rendezvous,
        })
    }

    /// Writes the control listing: the header, then one row per callsite in
    /// registration order.
    pub fn listing(&self, out: &mut impl fmt::Write) -> fmt::Result {
        let reg = self.state.snapshot.load();
        out.write_str(LISTING_HEADER)?;
        out.write_char('\n')?;
        for s in &reg.sites {
            write_row(out, &s.listing_info(), s.cs.flags())?;
            out.write_char('\n')?;
        }
        Ok(())
    }

    /// The listing as a string.
    pub fn listing_string(&self) -> String {
        let mut s = String::new();
        let _ = self.listing(&mut s);
        s
    }

    /// Every callsite, for the JSON listing.
    pub fn sites(&self) -> Vec<SiteRow> {
        let reg = self.state.snapshot.load();
        let patched = dynkey_text::status()
            .map(|s| s.site_kind != SiteKind::Atomic)
            .unwrap_or(false);
        reg.sites
            .iter()
            .map(|s| SiteRow {
                module: s.cs.module,
                file: s.cs.file,
                func: s.func,
                line: s.cs.line,
                format: s.cs.format,
                class: s.cs.class,
                flags: s.cs.flags(),
                kind: match (patched, s.runtime) {
                    (false, _) => SiteKind::Atomic,
                    (true, true) => SiteKind::Trampoline,
                    (true, false) => SiteKind::Inline,
                },
            })
            .collect()
    }

    /// Number of registered callsites.
    pub fn site_count(&self) -> usize {
        self.state.snapshot.load().sites.len()
    }

    /// The counters, for metrics.
    pub fn counters(&self) -> Counters {
        Counters {
            text: dynkey_text::counters(),
            queries_ok: self.state.queries_ok.load(Ordering::Relaxed),
            queries_error: self.state.queries_error.load(Ordering::Relaxed),
            census: dynkey_text::census().unwrap_or_default(),
            method: dynkey_text::status()
                .map(|s| s.method)
                .unwrap_or(Method::None),
        }
    }

    /// What the patching layer chose.
    pub fn status(&self) -> Result<dynkey_text::Status, Error> {
        Ok(dynkey_text::status()?)
    }

    pub(crate) fn state(&self) -> &'static State {
        self.state
    }
}
