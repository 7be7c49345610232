//! The state as a table, and operations applied to it.
//!
//! An [`Op`](crate::Op) names things (modules, keys, params); [`prepare`]
//! resolves those names against one [`Registry`] into a [`Prepared`] op, or
//! says precisely what is wrong, before anything changes. A [`Table`] is a
//! set of pending values (site flags, key states, call targets, param
//! values) over a base: the live state (a new operation applied on top), or
//! the compiled-in defaults (a rebuild that replays every layer). Applying a
//! prepared op to a table cannot fail; [`Table::commit`] then makes the
//! whole table live as **one** commit of `dynkey-text`: one rendezvous
//! however many operations and sites, none when only decoration flags
//! changed.
//!
//! The compiled-in defaults are: every site `=_`, every key its declared
//! value, every call its first target, every param 0.

use std::sync::atomic::Ordering;

use dynkey_query::{FlagOp, Flags, Query, parse, parse_param_value};
use dynkey_text::{Change, IntMap};

use crate::error::Error;
use crate::op::OpKind;
use crate::records::{CallDesc, KeyItem};
use crate::registry::{Origin, Registry};
use crate::tracing_hook::tracing_rows_changed;

/// An operation resolved against a registry.
#[derive(Debug, Clone)]
pub(crate) enum Prepared {
    /// Parsed queries (shared: a parse is kept for bodies that come back).
    Query(std::sync::Arc<[Query]>),
    /// Keys and their new states (later entries win).
    Keys(Vec<(&'static dyn KeyItem, bool)>),
    /// A call and its new target's index.
    Call(&'static CallDesc, usize),
    /// A class map (by index) and the value requested.
    Param(usize, u64),
    /// One site (by index) and a flag operation.
    Site(u32, FlagOp),
}

/// Resolves `kind` against `reg`: every name must exist, every query parse.
pub(crate) fn prepare(reg: &Registry, kind: &OpKind) -> Result<Prepared, Error> {
    Ok(match kind {
        OpKind::Query(body) => {
            Prepared::Query(parse(body.as_bytes()).map_err(Error::Query)?.into())
        }
        OpKind::Keys(keys) => {
            let mut out = Vec::with_capacity(keys.len());
            for (name, on) in keys {
                let found = reg.keys_named(name);
                match found.as_slice() {
                    [k] => out.push((*k, *on)),
                    [] => return Err(Error::UnknownKey(name.clone())),
                    many => {
                        return Err(Error::AmbiguousKey {
                            name: name.clone(),
                            candidates: many.iter().map(|k| k.path()).collect(),
                        });
                    }
                }
            }
            Prepared::Keys(out)
        }
        OpKind::Call { call, target } => {
            let desc = reg
                .call_named(call)
                .ok_or_else(|| Error::UnknownCall(call.clone()))?;
            let index = desc
                .target_index(target)
                .ok_or_else(|| Error::UnknownTarget {
                    call: call.clone(),
                    target: target.clone(),
                    targets: desc.targets.to_vec(),
                })?;
            Prepared::Call(desc, index)
        }
        OpKind::Param { param, value } => {
            let (i, _) = reg
                .classmap(param)
                .ok_or_else(|| Error::UnknownParam(param.clone()))?;
            let requested =
                parse_param_value(value.as_bytes()).map_err(|error| Error::BadParam {
                    param: param.clone(),
                    error,
                })?;
            Prepared::Param(i, requested)
        }
        OpKind::Site { site, flags } => {
            let i = reg
                .site_by_id(site)
                .ok_or_else(|| Error::UnknownSite(site.clone()))?;
            let op: FlagOp = flags.trim().parse().map_err(|e| Error::BadFlags {
                flags: flags.clone(),
                error: e,
            })?;
            Prepared::Site(i, op)
        }
    })
}

/// A site whose flags change: (site, live flags, new flags).
pub(crate) type SiteChange = (u32, Flags, Flags);

/// What applying one operation to a table did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Effect {
    /// Queries in the operation (query bodies only).
    pub queries: usize,
    /// Sum over queries of the sites each matched (a site or param op: the
    /// sites it addressed).
    pub matched: usize,
    /// Sites (or keys, or calls) whose value differs after the op from before.
    pub changed: usize,
    /// Whether a `p` flag, a key or a call changed: code must be patched.
    pub code: bool,
    /// Class'd sites a classless query skipped (class protection).
    pub protected: usize,
}

/// Where untouched entries of a table come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    /// The live state: a new operation applied on top of everything.
    Live,
    /// The compiled-in defaults: a rebuild from the lowest layer.
    Defaults,
}

/// Pending values over a base.
pub(crate) struct Table<'r> {
    reg: &'r Registry,
    base: Base,
    flags: IntMap<u32, Flags>,
    /// Sites in first-touched order (the kernel's queue modes react to it).
    order: Vec<u32>,
    keys: IntMap<usize, (&'static dyn KeyItem, bool)>,
    key_order: Vec<usize>,
    calls: IntMap<usize, (&'static CallDesc, usize)>,
    call_order: Vec<usize>,
    params: Vec<Option<u64>>,
    /// Count class'd sites that class protection skipped (dry runs only:
    /// it costs a pass over every class'd site per query).
    explain: bool,
}

impl<'r> Table<'r> {
    /// An empty table over `base`.
    pub fn new(reg: &'r Registry, base: Base) -> Table<'r> {
        Table {
            reg,
            base,
            flags: IntMap::default(),
            order: Vec::new(),
            keys: IntMap::default(),
            key_order: Vec::new(),
            calls: IntMap::default(),
            call_order: Vec::new(),
            params: vec![None; reg.classmaps.len()],
            explain: false,
        }
    }

    /// Also count what class protection skipped (see [`Effect::protected`]).
    pub fn explaining(mut self) -> Self {
        self.explain = true;
        self
    }

    /// A site's flags in this table.
    pub fn flags(&self, site: u32) -> Flags {
        match self.flags.get(&site) {
            Some(f) => *f,
            None => base_flags(self.reg, self.base, site),
        }
    }

    fn set_flags(&mut self, site: u32, f: Flags) {
        if self.flags.insert(site, f).is_none() {
            self.order.push(site);
        }
    }

    fn key(&self, k: &'static dyn KeyItem) -> bool {
        match self.keys.get(&key_id(k)) {
            Some((_, on)) => *on,
            None => base_key(self.base, k),
        }
    }

    fn call(&self, c: &'static CallDesc) -> usize {
        match self.calls.get(&call_id(c)) {
            Some((_, i)) => *i,
            None => base_call(self.base, c),
        }
    }

    fn param(&self, i: usize) -> u64 {
        self.params[i].unwrap_or_else(|| base_param(self.reg, self.base, i))
    }

    /// Applies a prepared operation.
    pub fn apply(&mut self, op: &Prepared) -> Effect {
        let mut effect = Effect::default();
        match op {
            Prepared::Query(queries) => {
                let queries: &[Query] = queries;
                effect.queries = queries.len();
                let mut before: IntMap<u32, Flags> = IntMap::default();
                let mut ids = Vec::new();
                for q in queries {
                    ids.clear();
                    self.reg.matching(q, &mut ids);
                    effect.matched += ids.len();
                    if self.explain {
                        effect.protected += self.reg.protected(q);
                    }
                    // Room for every match at once: growing three tables
                    // one rehash at a time cost as much as the commit.
                    before.reserve(ids.len());
                    self.flags.reserve(ids.len());
                    self.order.reserve(ids.len());
                    for &site in &ids {
                        let old = self.flags(site);
                        before.entry(site).or_insert(old);
                        self.set_flags(site, q.op().apply(old));
                    }
                }
                self.count_sites(&before, &mut effect);
            }
            Prepared::Site(site, op) => {
                effect.matched = 1;
                let old = self.flags(*site);
                let before = IntMap::from_iter([(*site, old)]);
                self.set_flags(*site, op.apply(old));
                self.count_sites(&before, &mut effect);
            }
            Prepared::Param(i, requested) => {
                let entry = &self.reg.classmaps[*i];
                let change = entry.map.apply(self.param(*i), *requested);
                let mut before: IntMap<u32, Flags> = IntMap::default();
                for (class, op) in &change.changes {
                    for site in self.reg.class_sites(entry, class) {
                        let old = self.flags(site);
                        before.entry(site).or_insert(old);
                        self.set_flags(site, op.apply(old));
                        effect.matched += 1;
                    }
                }
                self.params[*i] = Some(change.stored);
                self.count_sites(&before, &mut effect);
            }
            Prepared::Keys(keys) => {
                let mut before: IntMap<usize, bool> = IntMap::default();
                for &(k, on) in keys {
                    before.entry(key_id(k)).or_insert(self.key(k));
                    if self.keys.insert(key_id(k), (k, on)).is_none() {
                        self.key_order.push(key_id(k));
                    }
                }
                effect.changed = before
                    .iter()
                    .filter(|(id, old)| self.keys[id].1 != **old)
                    .count();
                effect.code = effect.changed > 0;
            }
            Prepared::Call(c, index) => {
                let old = self.call(c);
                if self.calls.insert(call_id(c), (c, *index)).is_none() {
                    self.call_order.push(call_id(c));
                }
                effect.changed = (old != *index) as usize;
                effect.code = old != *index;
            }
        }
        effect
    }

    fn count_sites(&self, before: &IntMap<u32, Flags>, effect: &mut Effect) {
        for (&site, &old) in before {
            let new = self.flags(site);
            if new != old {
                effect.changed += 1;
                effect.code |= new.contains(Flags::P) != old.contains(Flags::P);
            }
        }
    }

    /// The sites whose flags in this table differ from the live ones, with
    /// (live, new) flags, in touched order (then registration order for a
    /// rebuild's untouched sites).
    pub fn site_changes(&self) -> Vec<SiteChange> {
        let live = |s: u32| self.reg.sites[s as usize].cs.flags();
        let mut out: Vec<SiteChange> = self
            .order
            .iter()
            .map(|&s| (s, live(s), self.flags[&s]))
            .filter(|(_, old, new)| old != new)
            .collect();
        if self.base == Base::Defaults {
            for s in 0..self.reg.sites.len() as u32 {
                if !self.flags.contains_key(&s) && !live(s).is_empty() {
                    out.push((s, live(s), Flags::EMPTY));
                }
            }
        }
        out
    }

    /// Makes the table live as one commit. Returns the rendezvous it cost
    /// and, when the change was applied but some thread may lag, that error.
    /// Caller holds the engine lock (the control lock, taken before
    /// `dynkey-text`'s text lock: that is the lock order).
    pub fn commit(self) -> Result<Committed, Error> {
        let sites = self.site_changes();
        let mut changes: Vec<Change> = Vec::new();
        for &(s, old, new) in &sites {
            if old.contains(Flags::P) != new.contains(Flags::P) {
                changes.push(Change::Key(
                    self.reg.sites[s as usize].cs.key(),
                    new.contains(Flags::P),
                ));
            }
        }
        let keys: Vec<(&'static dyn KeyItem, bool)> = match self.base {
            Base::Live => self.key_order.iter().map(|id| self.keys[id]).collect(),
            Base::Defaults => self.reg.keys.iter().map(|&k| (k, self.key(k))).collect(),
        };
        for &(k, on) in &keys {
            if k.is_enabled() != on {
                changes.push(Change::Key(k.raw(), on));
            }
        }
        let calls: Vec<(&'static CallDesc, usize)> = match self.base {
            Base::Live => self.call_order.iter().map(|id| self.calls[id]).collect(),
            Base::Defaults => self.reg.calls.iter().map(|&c| (c, self.call(c))).collect(),
        };
        for &(c, i) in &calls {
            if c.raw.target_index() != i {
                changes.push(Change::Call(c.raw, i));
            }
        }
        let params: Vec<(usize, u64)> = (0..self.params.len())
            .filter_map(|i| match (self.base, self.params[i]) {
                (_, Some(v)) => Some((i, v)),
                (Base::Defaults, None) => Some((i, 0)),
                (Base::Live, None) => None,
            })
            .collect();
        let (rendezvous, lag) = if changes.is_empty() {
            (0, None)
        } else {
            match dynkey_text::commit(&changes) {
                Ok(r) => (r.rendezvous, None),
                // Written and published, but some thread may lag: record it.
                Err(e) if e.applied_but_may_lag() => (1, Some(Error::Text(e))),
                // Nothing was written: leave everything as it was.
                Err(e) => return Err(e.into()),
            }
        };
        let mut tracing = false;
        for &(s, old, new) in &sites {
            let site = &self.reg.sites[s as usize];
            site.cs.store_flags(new);
            tracing |=
                site.origin == Origin::Tracing && old.contains(Flags::P) != new.contains(Flags::P);
        }
        if tracing {
            tracing_rows_changed();
        }
        for (i, v) in params {
            // Relaxed: written under the engine lock, read as a plain value.
            self.reg.classmaps[i].value.store(v, Ordering::Relaxed);
        }
        Ok(Committed {
            sites: sites.len(),
            rendezvous,
            lag,
        })
    }
}

/// What a commit of a table did.
#[derive(Debug)]
pub(crate) struct Committed {
    /// Sites whose flags changed.
    pub sites: usize,
    /// Rendezvous it cost (0 or 1).
    pub rendezvous: usize,
    /// Applied, but some thread may lag (the code was written and published).
    pub lag: Option<Error>,
}

/// A key's identity (its raw key's address), for maps keyed by key.
pub(crate) fn key_id(k: &'static dyn KeyItem) -> usize {
    k.raw() as *const dynkey_text::RawKey as usize
}

fn call_id(c: &'static CallDesc) -> usize {
    c as *const CallDesc as usize
}

fn base_flags(reg: &Registry, base: Base, site: u32) -> Flags {
    match base {
        Base::Live => reg.sites[site as usize].cs.flags(),
        Base::Defaults => Flags::EMPTY,
    }
}

fn base_key(base: Base, k: &'static dyn KeyItem) -> bool {
    match base {
        Base::Live => k.is_enabled(),
        Base::Defaults => k.default_state(),
    }
}

fn base_call(base: Base, c: &'static CallDesc) -> usize {
    match base {
        Base::Live => c.raw.target_index(),
        Base::Defaults => 0,
    }
}

fn base_param(reg: &Registry, base: Base, i: usize) -> u64 {
    match base {
        // Relaxed: written under the engine lock, which the caller holds.
        Base::Live => reg.classmaps[i].value.load(Ordering::Relaxed),
        Base::Defaults => 0,
    }
}
