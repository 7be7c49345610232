//! The control surface: [`Control`] and every one of its methods, in one
//! place. What a method does at length lives with its subject (the engine,
//! the views, run-time registration, tracing rows); here it is one call.
//!
//! Each change turns its request into [`Op`]s and hands them to the engine
//! through group commit, so concurrent requests share one commit. Changes
//! made in code (`exec`, `set_param`, `set_keys`, `set_call`, and
//! `StaticKey::enable`, `StaticCall::set_target`, `batch`) are operations of
//! the local layer with [`Source::Code`]: never journaled, never revocable,
//! never undone by a rebuild. Operators' changes ([`Control::submit`]) are
//! journaled when a state directory is attached, audited, may expire, and
//! can be revoked.

use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use crate::audit::AuditEntry;
use crate::classes::ClassMapSpec;
use crate::engine::{Actor, Applied, Request, StateCounters};
use crate::error::Error;
use crate::layers::Source;
use crate::op::{FleetLayer, Op, OpKind};
use crate::report::{
    ChangeReport, DRY_RUN_ROWS, DryRun, DryRunRow, ParamReport, RebuildReport, Report, StateView,
};
use crate::runtime_sites::{RuntimeSite, SiteSpec};
use crate::state::{State, start};
use crate::table::prepare;
use crate::tracing_rows::{TracingRow, TracingSpec};
use crate::view::{CallInfo, Counters, KeyInfo, ParamInfo, SiteRow};
use crate::{runtime_sites, tracing_hook, tracing_rows, view};

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
    /// Runs `ops` as one request (all or nothing) through group commit.
    fn run(&self, ops: Vec<Op>, actor: Actor, source: Source) -> Result<Applied, Error> {
        let queries = ops
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Query(_)))
            .count();
        let state = self.state;
        let r = state
            .group_commit
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
        let _consistent = self.state.engine();
        view::table_hash(&self.state.snapshot.load())
    }

    /// When the next operation expires, if any does.
    pub fn next_expiry(&self) -> Option<SystemTime> {
        self.state.engine().layers.next_expiry()
    }

    // Registration of sites described by data.

    /// Registers class maps and sites described by data, all or nothing,
    /// and returns one handle per site (in order).
    pub fn register(
        &self,
        classmaps: Vec<ClassMapSpec>,
        sites: Vec<SiteSpec>,
    ) -> Result<Vec<RuntimeSite>, Error> {
        runtime_sites::register(self.state, classmaps, sites, None)
    }

    /// Like [`register`](Self::register), allocating the sites' stubs in the
    /// order `stub_order` gives (a permutation of site indexes) rather than
    /// in registration order. Benchmarks use it to make stub addresses
    /// unrelated to the order queries visit sites, as in a real address
    /// space, which is what the kernel's unsorted queue reacts to.
    pub fn register_in_stub_order(
        &self,
        classmaps: Vec<ClassMapSpec>,
        sites: Vec<SiteSpec>,
        stub_order: Option<&[usize]>,
    ) -> Result<Vec<RuntimeSite>, Error> {
        runtime_sites::register(self.state, classmaps, sites, stub_order)
    }

    /// Lists tracing callsites as rows of kind `tracing` (all or none), and
    /// gives each the effective state of every layer (one commit, with no
    /// rendezvous: no code tests these rows). A callsite at the place of one
    /// of dynkey's own callsites is not listed (see [`TracingRow::Own`]).
    ///
    /// Fails, registering nothing, when a class is not known to the target
    /// ([`Error::Invalid`]). Each call lists new rows: callers register each
    /// tracing callsite once. If the rows cannot get their state (the
    /// commit failed), they stay listed, off, and the error goes to
    /// standard error.
    pub fn register_tracing(&self, specs: Vec<TracingSpec>) -> Result<Vec<TracingRow>, Error> {
        tracing_rows::register(self.state, specs)
    }

    /// Calls `hook` after every change that turned a `tracing` row on or
    /// off, before that change returns, outside dynkey's locks (a tracing
    /// filter rebuilds tracing's interest cache there). Replaces any
    /// earlier hook.
    pub fn on_tracing_change(&self, hook: fn()) {
        tracing_hook::set_hook(Some(hook));
    }

    // Reads: the registry snapshot and live values, no control lock.

    /// Rows of kind `tracing`: (off, on).
    pub fn tracing_rows(&self) -> (u64, u64) {
        view::tracing_rows(&self.state.snapshot.load())
    }

    /// A param's stored value (hex for bits, decimal for levels).
    pub fn param(&self, name: &str) -> Option<String> {
        view::param(&self.state.snapshot.load(), name)
    }

    /// Every param and its value.
    pub fn params(&self) -> Vec<(String, String)> {
        self.param_infos()
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect()
    }

    /// Every param with its value and classes.
    pub fn param_infos(&self) -> Vec<ParamInfo> {
        view::param_infos(&self.state.snapshot.load())
    }

    /// The named static keys.
    pub fn keys(&self) -> Vec<KeyInfo> {
        view::keys(&self.state.snapshot.load())
    }

    /// The named static calls.
    pub fn calls(&self) -> Vec<CallInfo> {
        view::calls(&self.state.snapshot.load())
    }

    /// Writes the control listing: the header, then one row per callsite in
    /// registration order (rows of tracing callsites end with
    /// ` kind:tracing`).
    pub fn listing(&self, out: &mut impl fmt::Write) -> fmt::Result {
        view::listing(&self.state.snapshot.load(), out)
    }

    /// The listing as a string.
    pub fn listing_string(&self) -> String {
        let mut s = String::new();
        let _ = self.listing(&mut s);
        s
    }

    /// Every callsite, for the JSON listing.
    pub fn sites(&self) -> Vec<SiteRow> {
        view::sites(&self.state.snapshot.load())
    }

    /// Number of registered callsites.
    pub fn site_count(&self) -> usize {
        self.state.snapshot.load().sites.len()
    }

    /// The counters, for metrics.
    pub fn counters(&self) -> Counters {
        view::counters(self.state)
    }

    /// What the patching layer chose.
    pub fn status(&self) -> Result<dynkey_text::Status, Error> {
        dynkey_text::status().map_err(Error::Config)
    }

    /// The configuration error that refuses every change, if there is one
    /// (an invalid or impossible `DYNKEY_*` setting).
    pub fn config_error(&self) -> Option<Error> {
        self.state
            .boot_errors
            .iter()
            .find(|e| matches!(e, Error::Config(_)))
            .cloned()
    }
}
