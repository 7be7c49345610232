//! The layers of desired state, lowest first:
//!
//! 1. **baseline**: the compiled-in defaults, then `DYNKEY_QUERY` (and
//!    whatever an embedder adds at start, such as a `RUST_LOG` baseline);
//! 2. **fleet**: one layer per fleet scope, in effective order (`all`,
//!    selectors by number of labels, the instance's own scope);
//! 3. **local**: operations accepted by this process, HTTP and code alike,
//!    in the order they were accepted.
//!
//! The effective state is the baseline with every layer's operations
//! applied in order. A dyndbg query is, per site, the map
//! `x -> (x & m) | s`: idempotent and closed under composition, so
//! replaying the layers in order always gives the same state; reordering
//! does not. That is why a change below the top (a fleet update, an expiry,
//! a revoke) rebuilds from the baseline (`engine.rs`).
//!
//! # Folding
//!
//! A local operation whose every effect is overwritten by later ones that
//! do not expire is *folded* away, so the layer, and every rebuild, stay
//! small under a load of requests. Folding is sound: removing a folded
//! operation changes no replay, whatever the lower layers hold. What counts
//! as "every effect overwritten" ([`fold`]):
//!
//! - keys: every key it sets is set again later; calls: the call is set
//!   again later;
//! - a query body: for each of its queries, the later queries that select at
//!   least its sites (the same class term, and a subset of its other terms,
//!   each written the same way) force every flag it forces; that holds for
//!   sites registered later too, since it is a statement about the queries;
//! - a site toggle: later toggles of that site and later queries that select
//!   it force every flag it forces;
//! - a param write: the next local operation writes the same param to the
//!   same value. (A write to another value does not overwrite it: a param
//!   changes only the class bits that differ from its stored value, so the
//!   history between two writes matters.)

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use dynkey_query::{FlagOp, Flags, Query};

use crate::op::{FleetLayer, Op};
use crate::registry::Registry;
use crate::table::{Prepared, key_id, prepare};

/// Who made a local operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// An operator, over HTTP or [`Control::submit`](crate::Control::submit):
    /// journaled, revocable, audited.
    Operator,
    /// The program's own code (`StaticKey::enable`, `StaticCall::set_target`,
    /// `batch`, `Control::exec` and the other `Control` setters): neither
    /// journaled (the program makes it again when it runs again) nor
    /// revocable, and never undone by a rebuild.
    Code,
}

impl Source {
    /// `http`-style label used by `GET /state`: `operator` or `code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Operator => "operator",
            Source::Code => "code",
        }
    }
}

/// One operation of the local layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOp {
    /// Decimal, never reused (also across restarts with a journal).
    pub id: u64,
    /// The operation, with its expiry.
    pub op: Op,
    /// Who asked: a token's name, `anonymous`, or `code`.
    pub who: String,
    /// The client's address, when known.
    pub from: Option<String>,
    /// When it was accepted.
    pub at: SystemTime,
    /// Operator or code.
    pub source: Source,
}

/// All layers.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    pub baseline: Vec<Op>,
    pub fleet: Vec<FleetLayer>,
    pub local: Vec<LocalOp>,
}

impl Layers {
    /// Every operation in replay order (expired ones included: callers
    /// drop those first, see [`Layers::remove_expired`]).
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.baseline
            .iter()
            .chain(self.fleet.iter().flat_map(|l| l.ops.iter()))
            .chain(self.local.iter().map(|l| &l.op))
    }

    /// The earliest expiry of any layer's operation.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.ops().filter_map(|o| o.expires_at).min()
    }

    /// Drops the operations expired at `now`; returns the local ones and
    /// the number of fleet operations dropped.
    pub fn remove_expired(&mut self, now: SystemTime) -> (Vec<LocalOp>, usize) {
        let mut fleet = 0;
        for layer in &mut self.fleet {
            let before = layer.ops.len();
            layer.ops.retain(|o| !o.expired(now));
            fleet += before - layer.ops.len();
        }
        let (gone, kept) = std::mem::take(&mut self.local)
            .into_iter()
            .partition(|l| l.op.expired(now));
        self.local = kept;
        (gone, fleet)
    }

    /// Local operations of operators (revocable), in order.
    pub fn operator_ops(&self) -> impl Iterator<Item = &LocalOp> {
        self.local.iter().filter(|l| l.source == Source::Operator)
    }
}

/// What a later operation overwrites, accumulated newest to oldest.
#[derive(Default)]
struct Cover {
    keys: HashSet<usize>,
    calls: HashSet<usize>,
    /// Selection terms of later queries (flags word removed), with the
    /// flags they force.
    queries: Vec<(Query, Flags)>,
    sites: HashMap<u32, Flags>,
}

/// The flags a flag operation forces whatever the old flags were.
fn forced(op: FlagOp) -> Flags {
    match op {
        FlagOp::Add(f) | FlagOp::Remove(f) => f,
        FlagOp::Set(_) => Flags::ALL,
    }
}

/// Whether `later` selects at least the sites `q` selects: the same class
/// term, and every other term of `later` is one of `q`'s, written the same.
fn selects_superset(later: &Query, q: &Query) -> bool {
    later.class() == q.class()
        && later.module().is_none_or(|m| q.module() == Some(m))
        && later.file().is_none_or(|f| q.file() == Some(f))
        && later.func().is_none_or(|f| q.func() == Some(f))
        && later.format().is_none_or(|f| q.format() == Some(f))
        && later.lines().is_none_or(|l| q.lines() == Some(l))
}

impl Cover {
    fn covers(&self, reg: &Registry, op: &Prepared, next: Option<&Prepared>) -> bool {
        match op {
            Prepared::Keys(keys) => keys.iter().all(|(k, _)| self.keys.contains(&key_id(*k))),
            Prepared::Call(c, _) => self.calls.contains(&(*c as *const _ as usize)),
            Prepared::Query(queries) => queries.iter().all(|q| {
                let mut f = Flags::EMPTY;
                for (later, forces) in &self.queries {
                    if selects_superset(later, q) {
                        f |= *forces;
                    }
                }
                f.contains(forced(q.op()))
            }),
            Prepared::Site(site, op) => {
                let info = reg.sites[*site as usize].info();
                let mut f = self.sites.get(site).copied().unwrap_or(Flags::EMPTY);
                for (later, forces) in &self.queries {
                    if later.matches(&info) {
                        f |= *forces;
                    }
                }
                f.contains(forced(*op))
            }
            Prepared::Param(i, v) => {
                matches!(next, Some(Prepared::Param(j, w)) if i == j && v == w)
            }
        }
    }

    fn add(&mut self, op: &Prepared) {
        match op {
            Prepared::Keys(keys) => self.keys.extend(keys.iter().map(|(k, _)| key_id(*k))),
            Prepared::Call(c, _) => {
                self.calls.insert(*c as *const _ as usize);
            }
            Prepared::Query(queries) => {
                for q in queries.iter() {
                    let f = forced(q.op());
                    match self
                        .queries
                        .iter_mut()
                        .find(|(l, _)| selects_superset(l, q) && selects_superset(q, l))
                    {
                        Some((_, forces)) => *forces |= f,
                        None => self.queries.push((q.clone(), f)),
                    }
                }
            }
            Prepared::Site(site, op) => {
                *self.sites.entry(*site).or_insert(Flags::EMPTY) |= forced(*op);
            }
            Prepared::Param(..) => {}
        }
    }
}

/// Prepared forms of local operations, by id, so folding does not parse
/// every operation again for every batch. A prepared operation stays valid
/// as the registry grows (sites are only ever appended).
pub(crate) type PreparedCache = dynkey_text::IntMap<u64, Prepared>;

/// Folds away the local operations whose effects later operations without
/// expiry overwrite (see the module docs); returns their ids.
pub(crate) fn fold(
    reg: &Registry,
    local: &mut Vec<LocalOp>,
    cache: &mut PreparedCache,
) -> Vec<u64> {
    for l in local.iter() {
        if !cache.contains_key(&l.id)
            && let Ok(p) = prepare(reg, &l.op.kind)
        {
            cache.insert(l.id, p);
        }
    }
    let prepared: Vec<Option<&Prepared>> = local.iter().map(|l| cache.get(&l.id)).collect();
    let mut cover = Cover::default();
    let mut drop = vec![false; local.len()];
    for i in (0..local.len()).rev() {
        let Some(p) = prepared[i] else { continue };
        let next = prepared.get(i + 1).copied().flatten();
        let next_lasts = local.get(i + 1).is_some_and(|n| n.op.expires_at.is_none());
        if cover.covers(reg, p, next.filter(|_| next_lasts)) {
            drop[i] = true;
        }
        if local[i].op.expires_at.is_none() {
            cover.add(p);
        }
    }
    let mut folded = Vec::new();
    let mut i = 0;
    let live: std::collections::HashSet<u64> = local.iter().map(|l| l.id).collect();
    cache.retain(|id, _| live.contains(id));
    local.retain(|l| {
        let d = drop[i];
        i += 1;
        if d {
            folded.push(l.id);
            cache.remove(&l.id);
        }
        !d
    });
    folded
}
