//! The apply engine: requests in, one commit out.
//!
//! The engine owns the layers (`layers.rs`), the journal (`journal.rs`) and
//! the audit log (`audit.rs`), behind one mutex: the *control lock*. Every
//! change of flags, keys, calls, params, layers or registrations happens
//! under it, so two requests never interleave; `dynkey-text`'s text lock is
//! taken inside it, by the commit (lock order: control, then text).
//!
//! Two ways a change is made live:
//!
//! - **on top** ([`Engine::process`]): a batch of new requests is prepared
//!   against the registry (a bad request fails alone, with nothing of it
//!   applied), journaled with one write and one fsync, applied to a table
//!   over the live state, and committed once: one rendezvous for the batch;
//! - **rebuild** ([`Engine::rebuild`]): when something below the top changes
//!   (a fleet update, an expiry, a revoke, new run-time sites), every layer
//!   is replayed on a table over the compiled-in defaults and only the
//!   difference from the live state is committed: one commit, and no
//!   rendezvous when no code changes.

use std::time::Duration;

use crate::audit::{Audit, AuditEntry};
use crate::error::{Error, StateError};
use crate::expiry::{Timer, now};
use crate::journal::{AddRecord, Journal, Record};
use crate::layers::{Layers, LocalOp, PreparedCache, Source, fold};
use crate::op::{FleetLayer, Op, OpKind};
use crate::registry::Registry;
use crate::table::{Base, Committed, Effect, Prepared, SiteChange, Table, prepare};

/// Local operations kept at most (after folding); past it, new operator
/// operations are refused until some are revoked.
pub const LOCAL_LIMIT: usize = 10_000;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A token's name, `anonymous`, or `code`.
    pub who: String,
    /// The client's address, when known.
    pub from: Option<String>,
}

impl Actor {
    /// The program's own code.
    pub fn code() -> Actor {
        Actor {
            who: "code".into(),
            from: None,
        }
    }

    /// Someone with no token.
    pub fn anonymous(from: Option<String>) -> Actor {
        Actor {
            who: "anonymous".into(),
            from,
        }
    }
}

/// What an accepted request did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Applied {
    /// The first local operation's id (None when nothing was recorded, e.g.
    /// an empty query body).
    pub id: Option<u64>,
    /// Queries in the request.
    pub queries: usize,
    /// Sum over queries of the sites each matched.
    pub matched: usize,
    /// Sites, keys or calls whose value changed.
    pub changed: usize,
    /// 1 when the batch it ran in had a rendezvous and this request changed
    /// code, else 0 (more than 1 only in the kernel's queue modes, which
    /// flush several times per commit). Under batching, replies may sum to more than the
    /// rendezvous counter; it is at most their sum.
    pub rendezvous: usize,
    /// A param's stored value after the request (param requests only).
    pub value: Option<String>,
}

/// One request: operations applied all or nothing.
#[derive(Debug)]
pub(crate) struct Request {
    pub ops: Vec<Op>,
    pub actor: Actor,
    pub source: Source,
}

/// Counters of the state machinery, for metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateCounters {
    /// Bytes in the journal file (0 without a state directory).
    pub journal_bytes: u64,
    /// Journal fsyncs, by duration: `[count per bucket]`, bucket `i` up to
    /// `2^i` µs (as `dynkey_text::bucket_bounds`), plus the sum in seconds.
    pub fsync_buckets: Vec<u64>,
    /// Sum of fsync durations, seconds.
    pub fsync_seconds: f64,
    /// Requests per batch: bucket `i` counts batches of up to `2^i` requests.
    pub batch_buckets: Vec<u64>,
    /// Sum of batch sizes.
    pub batch_requests: u64,
    /// Operations that expired.
    pub expired: u64,
    /// Operations revoked.
    pub revoked: u64,
    /// Local operations in force.
    pub local_ops: usize,
}

/// Query bodies whose parse is kept (a map cleared when full).
const PARSED_KEEP: usize = 256;

const FSYNC_BUCKETS: usize = dynkey_text::BUCKETS;
const BATCH_BUCKETS: usize = 12;

/// The engine.
#[derive(Debug)]
pub(crate) struct Engine {
    pub layers: Layers,
    next_id: u64,
    journal: Option<Journal>,
    pub audit: Audit,
    counters: StateCounters,
    /// The error that refuses every change (a bad configuration).
    pub refuse: Option<Error>,
    /// Operations folded away and not yet journaled as such: written
    /// before the next record (a crash before then replays them, and
    /// replay folds them again, since what overwrote them is still there).
    pending_folds: Vec<u64>,
    /// Local operations' prepared forms (see `layers::fold`).
    prepared: PreparedCache,
    /// Recently parsed query bodies (at most [`PARSED_KEEP`]).
    parsed: std::collections::HashMap<String, std::sync::Arc<[dynkey_query::Query]>>,
    timer: &'static Timer,
}

/// The category an error is audited under.
fn category(e: &Error) -> String {
    e.category().to_string()
}

impl Engine {
    pub fn new(baseline: Vec<Op>, timer: &'static Timer) -> Engine {
        Engine {
            layers: Layers {
                baseline,
                ..Layers::default()
            },
            next_id: 1,
            journal: None,
            audit: Audit::default(),
            counters: StateCounters {
                fsync_buckets: vec![0; FSYNC_BUCKETS],
                batch_buckets: vec![0; BATCH_BUCKETS],
                ..StateCounters::default()
            },
            refuse: None,
            pending_folds: Vec::new(),
            prepared: PreparedCache::default(),
            parsed: std::collections::HashMap::new(),
            timer,
        }
    }

    /// Applies a batch of requests on top: one journal append, one commit.
    /// Returns one result per request, in order.
    pub fn process(&mut self, reg: &Registry, reqs: &[Request]) -> Vec<Result<Applied, Error>> {
        let at = now();
        let mut results: Vec<Option<Result<Applied, Error>>> = vec![None; reqs.len()];
        let mut table = Table::new(reg, Base::Live);
        // (request index, its effect, its ops' prepared forms, None for an
        // op not recorded) for the accepted ones. An empty query body is
        // accepted and records nothing.
        let mut accepted: Vec<(usize, Effect, Vec<Option<Prepared>>)> = Vec::new();
        let mut room = LOCAL_LIMIT.saturating_sub(self.layers.local.len());
        for (i, req) in reqs.iter().enumerate() {
            match self.admit(reg, req, &mut room) {
                Ok(prepared) => {
                    self.remember_parsed(req, &prepared);
                    let mut effect = Effect::default();
                    for p in &prepared {
                        let e = table.apply(p);
                        effect.queries += e.queries;
                        effect.matched += e.matched;
                        effect.changed += e.changed;
                        effect.code |= e.code;
                    }
                    let record = prepared
                        .into_iter()
                        .map(|p| (!matches!(&p, Prepared::Query(q) if q.is_empty())).then_some(p))
                        .collect();
                    accepted.push((i, effect, record));
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        self.count_batch(reqs.len());

        // Give the accepted operations their ids and journal them.
        let mut new_local: Vec<(usize, LocalOp)> = Vec::new();
        for (i, _, record) in &mut accepted {
            let i = *i;
            for (op, p) in reqs[i].ops.iter().zip(record.iter_mut()) {
                let Some(p) = p.take() else { continue };
                // Folding needs it; it stays valid (see `layers::fold`).
                self.prepared.insert(self.next_id, p);
                new_local.push((
                    i,
                    LocalOp {
                        id: self.next_id,
                        op: op.clone(),
                        who: reqs[i].actor.who.clone(),
                        from: reqs[i].actor.from.clone(),
                        at,
                        source: reqs[i].source,
                    },
                ));
                self.next_id += 1;
            }
        }
        let records: Vec<Record> = new_local
            .iter()
            .filter(|(_, l)| l.source == Source::Operator)
            .map(|(_, l)| Record::Add(AddRecord::of(l)))
            .collect();
        if let Err(e) = self.journal_append(&records) {
            for (i, ..) in &accepted {
                results[*i] = Some(Err(e.clone()));
            }
            return self.finish(reqs, results);
        }

        let committed = match table.commit() {
            Ok(c) => c,
            Err(e) => {
                // Nothing was written: the journal must not replay them.
                let ids: Vec<u64> = records
                    .iter()
                    .filter_map(|r| match r {
                        Record::Add(a) => Some(a.id),
                        _ => None,
                    })
                    .collect();
                if !ids.is_empty() {
                    let _ = self.journal_append(&[Record::Abort(ids)]);
                }
                for (i, ..) in &accepted {
                    results[*i] = Some(Err(e.clone()));
                }
                return self.finish(reqs, results);
            }
        };

        let lasting = new_local.iter().any(|(_, l)| l.op.expires_at.is_none());
        for (i, effect, _) in &accepted {
            let first = new_local.iter().find(|(j, _)| j == i).map(|(_, l)| l.id);
            let value = reqs[*i].ops.iter().find_map(|o| match &o.kind {
                OpKind::Param { param, .. } => reg.classmap(param).map(|(_, m)| {
                    dynkey_query::format_param_value(
                        m.map.kind,
                        m.value.load(std::sync::atomic::Ordering::Relaxed),
                    )
                }),
                _ => None,
            });
            results[*i] = Some(match &committed.lag {
                Some(e) => Err(e.clone()),
                None => Ok(Applied {
                    id: first,
                    queries: effect.queries,
                    matched: effect.matched,
                    changed: effect.changed,
                    rendezvous: if effect.code { committed.rendezvous } else { 0 },
                    value,
                }),
            });
        }
        self.layers
            .local
            .extend(new_local.into_iter().map(|(_, l)| l));
        if lasting {
            let folded = fold(reg, &mut self.layers.local, &mut self.prepared);
            self.note_folds(&folded);
        }
        self.after_change();
        self.finish(reqs, results)
    }

    /// Checks a request against the registry and the engine's limits.
    fn admit(
        &self,
        reg: &Registry,
        req: &Request,
        room: &mut usize,
    ) -> Result<Vec<Prepared>, Error> {
        if let Some(e) = &self.refuse {
            return Err(e.clone());
        }
        if req.source == Source::Operator {
            if *room < req.ops.len() {
                return Err(Error::StateFull(LOCAL_LIMIT));
            }
            *room -= req.ops.len();
        }
        req.ops
            .iter()
            .map(|o| match &o.kind {
                // The same bodies come back (a UI, a script, a load): parse
                // each once. Prepared queries name no site, so they do not
                // depend on the registry.
                OpKind::Query(body) => match self.parsed.get(body) {
                    Some(q) => Ok(Prepared::Query(q.clone())),
                    None => prepare(reg, &o.kind),
                },
                kind => prepare(reg, kind),
            })
            .collect()
    }

    /// Keeps the parse of a request's query bodies for the next time.
    fn remember_parsed(&mut self, req: &Request, prepared: &[Prepared]) {
        for (op, p) in req.ops.iter().zip(prepared) {
            if let (OpKind::Query(body), Prepared::Query(q)) = (&op.kind, p)
                && !self.parsed.contains_key(body)
            {
                if self.parsed.len() >= PARSED_KEEP {
                    self.parsed.clear();
                }
                self.parsed.insert(body.clone(), q.clone());
            }
        }
    }

    /// Audits the operator requests of a batch and unwraps the results.
    fn finish(
        &mut self,
        reqs: &[Request],
        results: Vec<Option<Result<Applied, Error>>>,
    ) -> Vec<Result<Applied, Error>> {
        let at = now();
        let results: Vec<Result<Applied, Error>> = results
            .into_iter()
            .map(|r| r.expect("every request has a result"))
            .collect();
        for (req, r) in reqs.iter().zip(&results) {
            if req.source != Source::Operator {
                continue;
            }
            let (result, changed, rendezvous, id) = match r {
                Ok(a) => ("ok".to_string(), a.changed, a.rendezvous, a.id),
                Err(e) => (category(e), 0, 0, None),
            };
            for (k, op) in req.ops.iter().enumerate() {
                self.audit.record(AuditEntry {
                    id: 0,
                    at,
                    who: req.actor.who.clone(),
                    from: req.actor.from.clone(),
                    action: "apply",
                    op: Some(op.clone()),
                    op_id: id.map(|i| i + k as u64),
                    result: result.clone(),
                    changed,
                    rendezvous,
                });
            }
        }
        self.audit.flush();
        results
    }

    /// Replays every layer over the compiled-in defaults and commits the
    /// difference from the live state.
    pub fn rebuild(&mut self, reg: &Registry) -> Result<Committed, Error> {
        let mut table = Table::new(reg, Base::Defaults);
        for op in self.layers.ops() {
            // Every operation was valid when it was accepted, against this
            // registry or a smaller one (registries only grow).
            if let Ok(p) = prepare(reg, &op.kind) {
                table.apply(&p);
            }
        }
        table.commit()
    }

    /// What `ops` would change, without applying anything: the effect and
    /// the sites that would change (site, old, new), all of them.
    pub fn dry_run(&self, reg: &Registry, ops: &[Op]) -> Result<(Effect, Vec<SiteChange>), Error> {
        let prepared: Vec<Prepared> = ops
            .iter()
            .map(|o| prepare(reg, &o.kind))
            .collect::<Result<_, _>>()?;
        let mut table = Table::new(reg, Base::Live).explaining();
        let mut effect = Effect::default();
        for p in &prepared {
            let e = table.apply(p);
            effect.queries += e.queries;
            effect.matched += e.matched;
            effect.changed += e.changed;
            effect.code |= e.code;
            effect.protected += e.protected;
        }
        Ok((effect, table.site_changes()))
    }

    /// Revokes local operator operations (all when `ids` is None): the
    /// state is rebuilt without them.
    pub fn revoke(
        &mut self,
        reg: &Registry,
        ids: Option<u64>,
        actor: &Actor,
    ) -> Result<(usize, Committed), Error> {
        let gone: Vec<LocalOp> = match ids {
            Some(id) => match self.layers.local.iter().find(|l| l.id == id) {
                None => return Err(Error::UnknownOperation(id)),
                Some(l) if l.source == Source::Code => return Err(Error::NotRevocable(id)),
                Some(l) => vec![l.clone()],
            },
            None => self.layers.operator_ops().cloned().collect(),
        };
        let gone_ids: Vec<u64> = gone.iter().map(|l| l.id).collect();
        if !gone_ids.is_empty() {
            self.journal_append(&[Record::Revoke(gone_ids.clone())])?;
        }
        self.layers.local.retain(|l| !gone_ids.contains(&l.id));
        let committed = self.rebuild(reg);
        self.counters.revoked += gone.len() as u64;
        let (result, changed, rendezvous) = match &committed {
            Ok(c) => ("ok".into(), c.sites, c.rendezvous),
            Err(e) => (category(e), 0, 0),
        };
        self.audit.record(AuditEntry {
            id: 0,
            at: now(),
            who: actor.who.clone(),
            from: actor.from.clone(),
            action: "revoke",
            op: match ids {
                Some(_) => gone.first().map(|l| l.op.clone()),
                None => None,
            },
            op_id: ids,
            result,
            changed,
            rendezvous,
        });
        self.audit.flush();
        self.after_change();
        Ok((gone.len(), committed?))
    }

    /// Drops what expired by now and rebuilds if anything did.
    pub fn expire(&mut self, reg: &Registry) -> Option<Result<Committed, Error>> {
        let at = now();
        let (gone, fleet) = self.layers.remove_expired(at);
        if gone.is_empty() && fleet == 0 {
            return None;
        }
        let committed = self.rebuild(reg);
        self.counters.expired += (gone.len() + fleet) as u64;
        let (result, changed, rendezvous) = match &committed {
            Ok(c) => ("ok".to_string(), c.sites, c.rendezvous),
            Err(e) => (category(e), 0, 0),
        };
        for l in &gone {
            self.audit.record(AuditEntry {
                id: 0,
                at,
                who: "expiry".into(),
                from: None,
                action: "expire",
                op: Some(l.op.clone()),
                op_id: Some(l.id),
                result: result.clone(),
                changed,
                rendezvous,
            });
        }
        if fleet > 0 {
            self.audit.record(AuditEntry {
                id: 0,
                at,
                who: "expiry".into(),
                from: None,
                action: "expire",
                op: None,
                op_id: None,
                result,
                changed,
                rendezvous,
            });
        }
        self.audit.flush();
        self.after_change();
        Some(committed)
    }

    /// Replaces the fleet layers and rebuilds. Every operation is checked
    /// first; a bad one fails the whole call, naming its scope, and
    /// nothing changes.
    pub fn set_fleet(
        &mut self,
        reg: &Registry,
        layers: Vec<FleetLayer>,
    ) -> Result<Committed, Error> {
        for l in &layers {
            for op in &l.ops {
                if let OpKind::Site { .. } = op.kind {
                    return Err(Error::Fleet {
                        scope: l.scope.clone(),
                        error: Box::new(Error::SiteInFleet),
                    });
                }
                prepare(reg, &op.kind).map_err(|e| Error::Fleet {
                    scope: l.scope.clone(),
                    error: Box::new(e),
                })?;
            }
        }
        let at = now();
        let mut layers = layers;
        for l in &mut layers {
            l.ops.retain(|o| !o.expired(at));
        }
        self.journal_append(&[Record::Fleet(layers.clone())])?;
        self.layers.fleet = layers;
        let c = self.rebuild(reg);
        self.after_change();
        c
    }

    /// Attaches a state directory: replays its journal (its operations come
    /// before any made in code so far) and rebuilds once.
    pub fn open_journal(
        &mut self,
        reg: &Registry,
        dir: &std::path::Path,
        recover: bool,
    ) -> Result<Vec<String>, Error> {
        if let Some(j) = &self.journal {
            return Err(StateError::AlreadyOpen(j.dir().to_path_buf()).into());
        }
        let (mut journal, replayed) = Journal::open(dir, recover)?;
        let mut notes = replayed.notes;
        let at = now();
        let mut local: Vec<LocalOp> = replayed
            .local
            .into_iter()
            .filter(|l| !l.op.expired(at))
            .collect();
        let mut next = self.next_id.max(replayed.next_id);
        let mut carried = Vec::new();
        for mut l in std::mem::take(&mut self.layers.local) {
            l.id = next;
            next += 1;
            if l.source == Source::Operator {
                carried.push(Record::Add(AddRecord::of(&l)));
            }
            local.push(l);
        }
        self.next_id = next;
        if !carried.is_empty() {
            journal
                .append(&carried)
                .map_err(|e| Error::Journal(e.to_string()))?;
        }
        if self.layers.fleet.is_empty() && !replayed.fleet.is_empty() {
            notes.push(format!(
                "fleet layers restored from the journal ({} scopes)",
                replayed.fleet.len()
            ));
            self.layers.fleet = replayed.fleet;
        }
        let folded = fold(reg, &mut local, &mut self.prepared);
        self.layers.local = local;
        if let Err(e) = self.audit.open(dir) {
            notes.push(format!("audit log not kept in {}: {e}", dir.display()));
        }
        self.counters.journal_bytes = journal.bytes;
        self.journal = Some(journal);
        // Folded at replay: journal it with the next append, as live folds.
        self.note_folds(&folded);
        self.rebuild(reg)?;
        self.after_change();
        Ok(notes)
    }

    /// Whether a state directory is attached.
    pub fn durable(&self) -> bool {
        self.journal.is_some()
    }

    /// Remembers folded operations of operators, to journal them.
    fn note_folds(&mut self, ids: &[u64]) {
        if self.journal.is_some() {
            self.pending_folds.extend(ids);
        }
    }

    fn journal_append(&mut self, records: &[Record]) -> Result<(), Error> {
        let Some(j) = &mut self.journal else {
            return Ok(());
        };
        if records.is_empty() {
            return Ok(());
        }
        let mut all = Vec::with_capacity(records.len() + 1);
        if !self.pending_folds.is_empty() {
            all.push(Record::Fold(self.pending_folds.clone()));
        }
        all.extend_from_slice(records);
        let took = j
            .append(&all)
            .map_err(|e| Error::Journal(format!("{}: {e}", j.dir().display())))?;
        self.pending_folds.clear();
        record_duration(
            &mut self.counters.fsync_buckets,
            &mut self.counters.fsync_seconds,
            took,
        );
        self.counters.journal_bytes = j.bytes;
        Ok(())
    }

    fn count_batch(&mut self, n: usize) {
        let i = (usize::BITS - n.saturating_sub(1).leading_zeros()) as usize;
        let i = i.min(BATCH_BUCKETS - 1);
        self.counters.batch_buckets[i] += 1;
        self.counters.batch_requests += n as u64;
    }

    /// Housekeeping after the layers changed: compaction, the expiry timer.
    fn after_change(&mut self) {
        if let Some(j) = &mut self.journal
            && j.wants_compaction()
        {
            match j.compact(&self.layers.fleet, &self.layers.local) {
                Ok(()) => {
                    self.counters.journal_bytes = j.bytes;
                    self.pending_folds.clear();
                }
                Err(e) => eprintln!("dynkey: journal compaction failed: {e}"),
            }
        }
        self.timer.schedule(self.layers.next_expiry());
    }

    /// The counters, with the current number of local operations.
    pub fn counters(&self) -> StateCounters {
        StateCounters {
            local_ops: self.layers.local.len(),
            ..self.counters.clone()
        }
    }
}

fn record_duration(buckets: &mut [u64], sum: &mut f64, d: Duration) {
    let us = d.as_micros().min(u64::MAX as u128) as u64;
    let i = if us <= 1 {
        0
    } else {
        (64 - (us - 1).leading_zeros()) as usize
    };
    if let Some(b) = buckets.get_mut(i) {
        *b += 1;
    }
    *sum += d.as_secs_f64();
}
