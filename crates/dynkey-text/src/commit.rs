//! The commit pipeline. It reads top to bottom:
//!
//! ```text
//! lock the text (one writer at a time; readers never lock)
//! plan    only the sites whose bytes must change, in visit order
//! verify  every planned word holds its expected old bytes (before any write)
//! write   batch by batch (queue mode), one aligned atomic store per word
//! sync    exactly one rendezvous per batch (one per commit by default)
//! publish key states with Release stores: state says X => code says X (G4)
//! count
//! ```

use std::time::Instant;

use crate::code_table::{CodeTable, KeyRef, KeySites, Place, word_for};
use crate::config::QueueMode;
use crate::counters::COUNTERS;
use crate::error::{CodeView, Error};
use crate::int_map::IntMap;
use crate::key::{Change, CodePtr, RawCall, RawKey};
use crate::lock::TEXT;
use crate::pages::Region;
use crate::queue;
use crate::rendezvous;
use crate::startup::setup;
use crate::{Method, SiteKind};

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// Keys whose state changed.
    pub keys_changed: usize,
    /// Sites rewritten, by kind (`SiteKind as usize`).
    pub sites_patched: [u64; 3],
    /// Sites of requested keys that already held the wanted bytes.
    pub sites_skipped: u64,
    /// Rendezvous performed (0 or 1 in the default queue mode).
    pub rendezvous: usize,
    /// The method they used.
    pub method: Method,
}

impl CommitReport {
    /// Sites rewritten, all kinds.
    pub fn sites_patched_total(&self) -> u64 {
        self.sites_patched.iter().sum()
    }
}

/// Applies `changes` as one commit in the current queue mode.
///
/// On return every thread sees the new states (G2), unless the error says
/// otherwise: an error for which [`Error::applied_but_may_lag`] is true
/// (a rendezvous that timed out, threads that block the signal, ...) means
/// the code was written and the states published, but some threads may
/// lag; any other error ([`Error::Verify`], ...) means nothing was written.
pub fn commit(changes: &[Change]) -> Result<CommitReport, Error> {
    commit_inner(changes, None)
}

/// Like [`commit`], in a given queue mode.
pub fn commit_with(changes: &[Change], mode: QueueMode) -> Result<CommitReport, Error> {
    mode.check()?;
    commit_inner(changes, Some(mode))
}

/// One planned store.
struct Write<'t> {
    /// Sort key: the site's address (or the key's, for atomic bytes).
    addr: usize,
    kind: SiteKind,
    /// Sites this store changes (an atomic byte serves all of a key's sites).
    sites: u64,
    op: Op<'t>,
}

enum Op<'t> {
    Word {
        region: &'t Region,
        word: usize,
        new: u64,
    },
    KeyCode(&'static RawKey, bool),
    CallCode(&'static RawCall, CodePtr),
}

impl Op<'_> {
    /// Writes this planned store. Only `commit_inner` calls it, under the
    /// text lock it took before planning.
    fn apply(&self) {
        match *self {
            // The guard lives in `commit_inner`; `plan` compared this word
            // in both views and nothing has written it since.
            // SAFETY: text lock held; [OLD-VERIFIED] by `plan`; [ONE-STORE]
            // `new` is another form of the same place (`word_for`).
            Op::Word { region, word, new } => unsafe { region.store(word, new) },
            // Relaxed: sites load it relaxed; the rendezvous makes it visible
            // before the commit returns and publishes.
            Op::KeyCode(k, on) => k
                .code()
                .store(on as u8, std::sync::atomic::Ordering::Relaxed),
            Op::CallCode(c, p) => c
                .code()
                .store(p.as_ptr() as *mut (), std::sync::atomic::Ordering::Relaxed),
        }
    }
}

#[derive(Default)]
struct Plan<'t> {
    writes: Vec<Write<'t>>,
    /// Code bytes no site reads as its only path (kept in step anyway).
    mirrors: Vec<Op<'t>>,
    skipped: u64,
}

fn commit_inner(changes: &[Change], mode: Option<QueueMode>) -> Result<CommitReport, Error> {
    let rt = setup()?;
    let started = Instant::now();
    let mut guard = TEXT.lock();
    let table = guard.as_mut().expect("started");
    let mut changes = dedup(changes)?;
    crate::fork::ensure_own_pages(table)?;
    let mode = mode.unwrap_or(table.queue);
    let text: &CodeTable = table;
    if mode == QueueMode::Sorted {
        // The plan is sorted by address anyway: visiting keys in the order
        // of their sites makes the planner's reads of code words sequential
        // (pages and cache lines in order) instead of scattered. The
        // kernel's queue modes keep the request's order: it is what they
        // model.
        changes.sort_by_cached_key(|c| first_site(text, *c));
    }

    let plan = plan(text, &changes)?;

    let mut report = CommitReport {
        keys_changed: 0,
        sites_patched: [0; 3],
        sites_skipped: plan.skipped,
        rendezvous: 0,
        method: rt.method,
    };
    probe_views(&plan.writes)?;
    for m in &plan.mirrors {
        m.apply();
    }
    let mut failure = None;
    for batch in queue::batches(plan.writes, |w| w.addr, mode) {
        for w in &batch {
            w.op.apply();
            report.sites_patched[w.kind as usize] += w.sites;
        }
        let code_changed = batch.iter().any(|w| matches!(w.op, Op::Word { .. }));
        let t = Instant::now();
        if let Err(e) = rendezvous::run(rt.method, code_changed, rt.config.signal_timeout) {
            if matches!(e, Error::RendezvousTimeout { .. }) {
                COUNTERS.timeout();
            }
            failure.get_or_insert(e);
        }
        COUNTERS.rendezvous(rt.method, t.elapsed());
        report.rendezvous += 1;
    }

    for c in &changes {
        report.keys_changed += match *c {
            Change::Key(k, on) => (k.is_enabled() != on) as usize,
            Change::Call(c, i) => (c.target_index() != i) as usize,
        };
        match *c {
            Change::Key(k, on) => k.publish(on),
            Change::Call(c, i) => c.publish(i),
        }
    }
    for kind in SiteKind::ALL {
        COUNTERS.patched(kind, report.sites_patched[kind as usize]);
    }
    COUNTERS.skipped(report.sites_skipped);
    COUNTERS.commit(started.elapsed());
    drop(guard);
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// `[OLD-VERIFIED]`, the executable view's half. The planner compared every
/// word in both views, but a view that someone else replaced by a copy of
/// the same bytes (a second copy of this crate, a hugepage text remapper, a
/// CRIU restore) looks the same until a store goes missing. So for each
/// region the plan writes, its first planned word is stored now and read
/// back through the executable view: if the store does not show there, the
/// view is no longer ours, and the word is put back (no thread could see
/// it: the view they run is not the alias) and the commit fails with
/// nothing changed. One store and one read per region written.
fn probe_views(writes: &[Write<'_>]) -> Result<(), Error> {
    let mut probed: IntMap<usize, ()> = IntMap::default();
    for w in writes {
        let Op::Word { region, word, new } = w.op else {
            continue;
        };
        if probed.insert(region.start(), ()).is_some() {
            continue;
        }
        let old = region.load(word);
        // SAFETY: this is the planned store of this word, made early: the
        // text lock is held and every word of the plan was verified
        // ([OLD-VERIFIED]); `new` is another form of the same place
        // ([ONE-STORE]).
        unsafe { region.store(word, new) };
        let executed = region.load_executed(word);
        if executed != new {
            // SAFETY: as above, back to the verified old form.
            unsafe { region.store(word, old) };
            return Err(Error::Verify {
                addr: word,
                view: CodeView::Executable,
                found: executed,
                expected: new,
            });
        }
    }
    Ok(())
}

/// Where the first site of a change's key is (its key's address if none).
fn first_site(text: &CodeTable, c: Change) -> usize {
    let (key, addr) = match c {
        Change::Key(k, _) => (KeyRef::Bool(k), k.addr()),
        Change::Call(call, _) => (KeyRef::Call(call), call.addr()),
    };
    match text.sites_of(key) {
        Some(ks) if !ks.inline.is_empty() => text.inline[ks.inline.start].site,
        Some(ks) => ks.stubs.iter().next().map_or(addr, |s| s.word),
        None => addr,
    }
}

/// One change per key, the last one winning, in first-seen order; call
/// targets checked.
fn dedup(changes: &[Change]) -> Result<Vec<Change>, Error> {
    let mut seen: IntMap<usize, usize> =
        IntMap::with_capacity_and_hasher(changes.len(), Default::default());
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    for c in changes {
        let addr = match *c {
            Change::Key(k, _) => k.addr(),
            Change::Call(call, i) => {
                if i >= call.targets().len() {
                    return Err(Error::NoSuchTarget {
                        index: i,
                        targets: call.targets().len(),
                    });
                }
                call.addr()
            }
        };
        match seen.get(&addr) {
            Some(&i) => out[i] = *c,
            None => {
                seen.insert(addr, out.len());
                out.push(*c);
            }
        }
    }
    Ok(out)
}

/// Plans and verifies: every word is read and compared before anything is
/// written (`[OLD-VERIFIED]`).
fn plan<'t>(text: &'t CodeTable, changes: &[Change]) -> Result<Plan<'t>, Error> {
    let mut plan = Plan::default();
    for c in changes {
        let (addr, old, new) = match *c {
            Change::Key(k, on) => (k.addr(), k.check() as usize, on as usize),
            Change::Call(call, i) => (call.addr(), call.current().addr(), call.targets()[i].addr()),
        };
        let sites = text.sites_of(match *c {
            Change::Key(k, _) => KeyRef::Bool(k),
            Change::Call(call, _) => KeyRef::Call(call),
        });
        if old == new {
            plan.skipped += sites.map_or(0, |s| {
                (s.inline.len() + s.stubs.len()) as u64 + s.atomic as u64
            });
            continue;
        }
        if let Some(ks) = sites {
            plan_key_sites(text, ks, old, new, &mut plan)?;
        }
        let op = match *c {
            Change::Key(k, on) => Op::KeyCode(k, on),
            Change::Call(call, i) => Op::CallCode(call, call.targets()[i]),
        };
        match sites {
            Some(ks) if ks.atomic > 0 => plan.writes.push(Write {
                addr,
                kind: SiteKind::Atomic,
                sites: ks.atomic as u64,
                op,
            }),
            _ => plan.mirrors.push(op),
        }
    }
    Ok(plan)
}

/// Plans the words of one key's patched sites. Each word is checked in
/// both views: the alias must hold the old state's form, and the executable
/// view must hold what the alias holds (if something remapped the range,
/// stores through the alias would never be executed).
fn plan_key_sites<'t>(
    text: &'t CodeTable,
    ks: &KeySites,
    old: usize,
    new: usize,
    plan: &mut Plan<'t>,
) -> Result<(), Error> {
    for place in text.places(ks) {
        let word = place.word();
        let region = text.region(word);
        let found = region.load(word);
        let expected = word_for(place, found, old)?;
        if found != expected {
            return Err(Error::Verify {
                addr: word,
                view: CodeView::Alias,
                found,
                expected,
            });
        }
        let executed = region.load_executed(word);
        if executed != found {
            return Err(Error::Verify {
                addr: word,
                view: CodeView::Executable,
                found: executed,
                expected: found,
            });
        }
        let (addr, kind) = match place {
            Place::Inline(s) => (s.site, SiteKind::Inline),
            Place::Stub(s) => (s.word, SiteKind::Trampoline),
        };
        plan.writes.push(Write {
            addr,
            kind,
            sites: 1,
            op: Op::Word {
                region,
                word,
                new: word_for(place, found, new)?,
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValueSite;

    fn leaked_key() -> &'static RawKey {
        Box::leak(Box::new(RawKey::new(false)))
    }

    /// `[OLD-VERIFIED]`: a site that does not hold what the plan expects
    /// aborts the whole commit before any word is written.
    #[test]
    fn a_mismatched_word_aborts_the_commit_and_changes_nothing() {
        let (k1, k2) = (leaked_key(), leaked_key());
        let (s1, s2) = (ValueSite::new(k1).unwrap(), ValueSite::new(k2).unwrap());
        let Some(word) = s2.stub_addr() else {
            // Only the atomic kind has no stub; a patching runtime without
            // one would be the bug this test is for.
            assert_eq!(
                crate::status().map(|s| s.site_kind),
                Ok(SiteKind::Atomic),
                "a stub without an address while patching"
            );
            eprintln!("skipped: the atomic kind has no code to corrupt");
            return;
        };
        let good = {
            let guard = TEXT.lock();
            let text = guard.as_ref().unwrap();
            let good = text.region(word).load(word);
            // SAFETY: the text lock is held; the stub is fresh and no thread
            // calls it while this test corrupts its immediate (bytes 1-4 stay
            // inside `mov eax, imm32`, so instruction starts are unchanged).
            unsafe { text.region(word).store(word, good ^ 0xff00) };
            good
        };
        let err = commit(&[Change::Key(k1, true), Change::Key(k2, true)]).unwrap_err();
        assert!(
            matches!(err, Error::Verify { addr, view: CodeView::Alias, .. } if addr == word),
            "{err:?}"
        );
        assert!(
            !k1.is_enabled() && !k1.check() && !s1.get(),
            "k1 was planned before k2, yet nothing of it was written"
        );
        assert!(!k2.is_enabled());
        {
            let guard = TEXT.lock();
            // SAFETY: as above; this restores the verified form.
            unsafe { guard.as_ref().unwrap().region(word).store(word, good) };
        }
        commit(&[Change::Key(k1, true), Change::Key(k2, true)]).unwrap();
        assert!(s1.get() && s2.get());
    }

    #[test]
    fn unknown_call_target_is_refused_before_anything() {
        fn f() {}
        let call: &'static RawCall =
            Box::leak(Box::new(RawCall::new(Box::leak(Box::new([CodePtr::new(
                f as *const (),
            )])))));
        let k = leaked_key();
        let err = commit(&[Change::Key(k, true), Change::Call(call, 1)]).unwrap_err();
        assert_eq!(
            err,
            Error::NoSuchTarget {
                index: 1,
                targets: 1
            }
        );
        assert!(
            !k.is_enabled(),
            "the valid change in the same commit is not applied"
        );
    }
}
