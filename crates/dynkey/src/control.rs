//! The control surface: every change, from code or from an operator.
//!
//! Each method turns its request into [`Op`]s and hands them to the engine
//! through the batcher, so concurrent requests share one commit. Changes
//! made in code (`exec`, `set_param`, `set_keys`, `set_call`, and
//! `StaticKey::enable` and friends in `code.rs`) are operations of the local
//! layer with [`Source::Code`]: never journaled, never revocable, never
//! undone by a rebuild. Operators' changes ([`Control::submit`]) are
//! journaled when a state directory is attached, audited, may expire, and
//! can be revoked.

use std::path::Path;
use std::time::SystemTime;

use dynkey_query::Flags;

use crate::Error;
use crate::audit::AuditEntry;
use crate::boot::{State, start};
use crate::engine::{Actor, Applied, Request, StateCounters};
use crate::layers::{LocalOp, Source};
use crate::op::{FleetLayer, Op, OpKind};
use crate::table::prepare;

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

/// What a rebuild did (a revoke, a fleet update, an expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildReport {
    /// Operations revoked (revokes only).
    pub revoked: usize,
    /// Sites whose flags changed.
    pub changed: usize,
    /// Rendezvous it cost (0 or 1).
    pub rendezvous: usize,
}

/// One site that a dry run would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunRow {
    /// The site's id.
    pub id: String,
    /// Its flags now.
    pub flags: Flags,
    /// Its flags after the request.
    pub new_flags: Flags,
}

/// What a request would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DryRun {
    /// Queries in the request.
    pub queries: usize,
    /// Sum over queries of the sites each matched.
    pub matched: usize,
    /// Sites whose flags would change.
    pub changed: usize,
    /// Class'd sites that a classless query left alone (the kernel's class
    /// protection): name their class (`class NAME`) to select them.
    pub protected: usize,
    /// The first sites that would change (at most [`DRY_RUN_ROWS`]).
    pub rows: Vec<DryRunRow>,
    /// The ids of every site that would change.
    pub ids: Vec<String>,
}

/// Rows a dry run lists at most.
pub const DRY_RUN_ROWS: usize = 100;

/// The layers of desired state, for `GET /state`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateView {
    /// The baseline's operations (`DYNKEY_QUERY` and the like).
    pub baseline: Vec<Op>,
    /// The fleet layers, in effective order.
    pub fleet: Vec<FleetLayer>,
    /// The local operations in force, oldest first.
    pub local: Vec<LocalOp>,
}

/// The process's control surface: see [`control`]. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Control {
    pub(crate) state: &'static State,
}

/// The control surface (starting the registry, and applying
/// `DYNKEY_QUERY`, on first use).
pub fn control() -> Control {
    Control { state: start() }
}

/// Starts the registry now (otherwise it starts on first use) and returns
/// the first problem start-up found: an invalid `DYNKEY_*` configuration
/// ([`Error::Config`]: every change is then refused), a class'd callsite no
/// class map covers ([`Error::UnknownClass`]), a bad `DYNKEY_QUERY`
/// ([`Error::BootQuery`]). Each was also printed once on standard error.
pub fn init() -> Result<(), Error> {
    match start().boot_errors.first() {
        Some(e) => Err(e.clone()),
        None => Ok(()),
    }
}

impl Control {
    /// Runs `ops` as one request (all or nothing) through the batcher.
    fn run(&self, ops: Vec<Op>, actor: Actor, source: Source) -> Result<Applied, Error> {
        let queries = ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Query(_)))
            .count();
        let state = self.state;
        let r = state
            .batcher
            .submit(Request { ops, actor, source }, |reqs| {
                let mut engine = state.engine();
                let reg = state.snapshot.load();
                engine.process(&reg, &reqs)
            });
        if queries > 0 {
            self.count(&r, queries);
        }
        r
    }

    pub(crate) fn apply_code(&self, ops: Vec<Op>) -> Result<Applied, Error> {
        self.run(ops, Actor::code(), Source::Code)
    }

    /// Applies an operator's operation: journaled (when a state directory is
    /// attached) before this returns, audited, revocable, and removed at its
    /// `expires_at`. Concurrent calls share one journal write, one commit and
    /// one rendezvous.
    pub fn submit(&self, op: Op, actor: &Actor) -> Result<Applied, Error> {
        self.run(vec![op], actor.clone(), Source::Operator)
    }

    /// Applies several operators' operations as one batch: one journal
    /// write, one commit, one rendezvous; each keeps its own all-or-nothing
    /// result, in order. For servers that gather concurrent requests
    /// themselves (dynkeyd does, on one thread, so that requests waiting
    /// for a batch hold no thread).
    pub fn submit_batch(&self, ops: Vec<(Op, Actor)>) -> Vec<Result<Applied, Error>> {
        let reqs: Vec<Request> = ops
            .into_iter()
            .map(|(op, actor)| Request {
                ops: vec![op],
                actor,
                source: Source::Operator,
            })
            .collect();
        let queries: Vec<bool> = reqs
            .iter()
            .map(|r| matches!(r.ops[0].kind, OpKind::Query(_)))
            .collect();
        let results = {
            let mut engine = self.state.engine();
            let reg = self.state.snapshot.load();
            engine.process(&reg, &reqs)
        };
        for (r, is_query) in results.iter().zip(queries) {
            if is_query {
                self.count(r, 1);
            }
        }
        results
    }

    /// Counts a request's queries for metrics.
    fn count(&self, r: &Result<Applied, Error>, queries: usize) {
        match r {
            Ok(a) => self.state.count_queries(a.queries, 0),
            Err(e) if e.applied() => self.state.count_queries(queries, 0),
            Err(Error::Query(errs)) => self.state.count_queries(0, errs.len()),
            Err(_) => {}
        }
    }

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
        let op = Op::query_bytes(body.as_ref()).inspect_err(|e| {
            if let Error::Query(errors) = e {
                self.state.count_queries(0, errors.len());
            }
        })?;
        let a = self.apply_code(vec![op])?;
        Ok(Report {
            queries: a.queries,
            matched: a.matched,
            changed: a.changed,
            rendezvous: a.rendezvous,
        })
    }

    /// Writes a class param (`0x1ff`, `3`, `017`: `kstrtoul` base 0): only
    /// the param's own flag characters change, only on classes whose bit
    /// changed, all as one commit. The stored value is masked (bits) or
    /// clamped (levels).
    pub fn set_param(&self, name: &str, value: impl AsRef<[u8]>) -> Result<ParamReport, Error> {
        let value = String::from_utf8_lossy(value.as_ref()).into_owned();
        let a = self.apply_code(vec![Op::param(name, value)])?;
        Ok(ParamReport {
            param: name.into(),
            value: a.value.unwrap_or_default(),
            changed: a.changed,
            rendezvous: a.rendezvous,
        })
    }

    /// Sets named keys (bare names, or `module::NAME` when a bare name is
    /// ambiguous) in one commit. An unknown name fails the whole call.
    pub fn set_keys<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a str, bool)>,
    ) -> Result<ChangeReport, Error> {
        let a = self.apply_code(vec![Op::keys(changes)])?;
        Ok(ChangeReport {
            changed: a.changed,
            rendezvous: a.rendezvous,
        })
    }

    /// Switches the static call `name` to its target named `target`.
    pub fn set_call(&self, name: &str, target: &str) -> Result<ChangeReport, Error> {
        let a = self.apply_code(vec![Op::call(name, target)])?;
        Ok(ChangeReport {
            changed: a.changed,
            rendezvous: a.rendezvous,
        })
    }

    /// What `op` would do now, without applying, journaling or auditing
    /// anything.
    pub fn dry_run(&self, op: &Op) -> Result<DryRun, Error> {
        let engine = self.state.engine();
        if let Some(e) = &engine.refuse {
            return Err(e.clone());
        }
        let reg = self.state.snapshot.load();
        let (effect, rows) = engine.dry_run(&reg, std::slice::from_ref(op))?;
        Ok(DryRun {
            queries: effect.queries,
            matched: effect.matched,
            changed: effect.changed,
            protected: effect.protected,
            ids: rows
                .iter()
                .map(|(s, ..)| reg.sites[*s as usize].id.to_string())
                .collect(),
            rows: rows
                .into_iter()
                .take(DRY_RUN_ROWS)
                .map(|(s, flags, new_flags)| DryRunRow {
                    id: reg.sites[s as usize].id.to_string(),
                    flags,
                    new_flags,
                })
                .collect(),
        })
    }

    /// Whether a site has this id.
    pub fn has_site(&self, id: &str) -> bool {
        self.state.snapshot.load().site_by_id(id).is_some()
    }

    /// Checks `op` against this build: a query parses, every name exists,
    /// a param value is a number. Changes nothing.
    pub fn check_op(&self, op: &Op) -> Result<(), Error> {
        let reg = self.state.snapshot.load();
        prepare(&reg, &op.kind).map(drop)
    }

    /// Revokes one operator operation: the state is rebuilt without it.
    pub fn revoke(&self, id: u64, actor: &Actor) -> Result<RebuildReport, Error> {
        self.revoke_some(Some(id), actor)
    }

    /// Revokes every operator operation in force.
    pub fn revoke_all(&self, actor: &Actor) -> Result<RebuildReport, Error> {
        self.revoke_some(None, actor)
    }

    fn revoke_some(&self, id: Option<u64>, actor: &Actor) -> Result<RebuildReport, Error> {
        let mut engine = self.state.engine();
        let reg = self.state.snapshot.load();
        let (revoked, c) = engine.revoke(&reg, id, actor)?;
        Ok(RebuildReport {
            revoked,
            changed: c.sites,
            rendezvous: c.rendezvous,
        })
    }

    /// The layers and the local operations in force.
    pub fn state_view(&self) -> StateView {
        let engine = self.state.engine();
        StateView {
            baseline: engine.layers.baseline.clone(),
            fleet: engine.layers.fleet.clone(),
            local: engine.layers.local.clone(),
        }
    }

    /// Up to `limit` audit entries older than `before`, newest first, and
    /// the id to ask for next.
    pub fn audit(&self, limit: usize, before: Option<u64>) -> (Vec<AuditEntry>, Option<u64>) {
        self.state.engine().audit.page(limit, before)
    }

    /// Keeps the state in `dir` from now on: locks it, replays its journal
    /// (operations that expired meanwhile are dropped) and rebuilds once.
    /// Give it before the first operator change; with `recover`, a journal
    /// corrupted before its tail keeps the records before the corruption
    /// instead of refusing. Returns log lines for the operator.
    pub fn open_state_dir(&self, dir: &Path, recover: bool) -> Result<Vec<String>, Error> {
        let mut engine = self.state.engine();
        let reg = self.state.snapshot.load();
        engine.open_journal(&reg, dir, recover)
    }

    /// Whether a state directory is attached.
    pub fn durable(&self) -> bool {
        self.state.engine().durable()
    }

    /// Drops operations whose expiry has passed (a thread does this on
    /// time; tests with an injected clock call it to be deterministic).
    pub fn expire_due(&self) {
        self.state.expire();
    }

    /// Counters of the state machinery, for metrics.
    pub fn state_counters(&self) -> StateCounters {
        self.state.engine().counters()
    }

    /// Replaces the fleet layers (given in effective order) and rebuilds
    /// with one commit; the layers are cached in the journal. Every
    /// operation is checked first: one this build cannot apply fails the
    /// call ([`Error::Fleet`], naming the scope) and nothing changes.
    pub fn set_fleet_layers(&self, layers: Vec<FleetLayer>) -> Result<RebuildReport, Error> {
        let mut engine = self.state.engine();
        let reg = self.state.snapshot.load();
        let c = engine.set_fleet(&reg, layers)?;
        Ok(RebuildReport {
            revoked: 0,
            changed: c.sites,
            rendezvous: c.rendezvous,
        })
    }

    /// The fleet layers in force (after a restart: those of the journal).
    pub fn fleet_layers(&self) -> Vec<FleetLayer> {
        self.state.engine().layers.fleet.clone()
    }

    /// Operators' local operations in force: how far this instance drifts
    /// from what the fleet says.
    pub fn local_ops_in_force(&self) -> usize {
        self.state.engine().layers.operator_ops().count()
    }

    /// Adds operations to the baseline (below the fleet and the local
    /// layer) and rebuilds: for embedders that derive a default from their
    /// own configuration (e.g. a `RUST_LOG`). Every operation is checked
    /// first.
    pub fn add_baseline(&self, ops: Vec<Op>) -> Result<RebuildReport, Error> {
        let mut engine = self.state.engine();
        let reg = self.state.snapshot.load();
        for op in &ops {
            prepare(&reg, &op.kind)?;
        }
        engine.layers.baseline.extend(ops);
        let c = engine.rebuild(&reg)?;
        Ok(RebuildReport {
            revoked: 0,
            changed: c.sites,
            rendezvous: c.rendezvous,
        })
    }

    /// A hash of the effective table (every site's flags, key, call target
    /// and param value): equal on two instances of one build in one state.
    pub fn table_hash(&self) -> u64 {
        let _engine = self.state.engine();
        let reg = self.state.snapshot.load();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        };
        for s in &reg.sites {
            mix(s.id.as_bytes());
            mix(&[s.cs.flags().bits()]);
        }
        for k in &reg.keys {
            mix(k.path().as_bytes());
            mix(&[k.is_enabled() as u8]);
        }
        for c in &reg.calls {
            mix(c.name.as_bytes());
            mix(&c.raw.target_index().to_le_bytes());
        }
        for m in &reg.classmaps {
            mix(m.param.as_bytes());
            mix(&m
                .value
                .load(std::sync::atomic::Ordering::Relaxed)
                .to_le_bytes());
        }
        h
    }

    /// When the next operation expires, if any does.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.state.engine().layers.next_expiry()
    }
}
