//! Start-up: choose the rendezvous and the site kind, take over the text
//! pages that hold sites, and fill the code table.
//!
//! Start-up is lazy (first commit, first run-time site, or
//! [`status`](crate::status)) and happens once. With patching, every
//! compiled-in site is rewritten from its compiled-in form (a jump to the
//! out-of-line atomic check) to its patched form for the key's current
//! state. Both forms do the same thing, and every instruction start of the
//! compiled-in form stays one (`[ONE-STORE]`), so no rendezvous is needed:
//! a thread still running the compiled-in form is correct, and the next
//! commit's rendezvous serializes every thread after those stores too.
//!
//! This is also where membarrier is registered (unless the opt-in early
//! registration did it before `main`): a binary that links this crate but
//! never starts it never calls `membarrier`.

use std::sync::{Mutex, OnceLock};

use crate::Method;
use crate::arch;
use crate::code_table::{CodeTable, KeyRef, Place, Stub, StubForm, word_for};
use crate::config::{Config, MethodChoice, QueueMode, SiteMode};
use crate::error::Error;
use crate::key::{RawCall, RawKey};
use crate::lock::TEXT;
use crate::pages::{self, Region};
use crate::records::{self, InlineSite, StubKind};
use crate::rendezvous::{membarrier, signal};
use crate::takeover;

/// What start-up decided; immutable afterwards.
#[derive(Debug)]
pub(crate) struct Setup {
    pub patching: bool,
    pub method: Method,
    pub fallback: Option<String>,
    pub config: Config,
}

static SETUP: OnceLock<Result<Setup, Error>> = OnceLock::new();
/// A configuration set in code, and whether start-up has begun.
static PENDING: Mutex<(Option<Config>, bool)> = Mutex::new((None, false));

/// Sets the configuration; only before the runtime starts.
pub fn configure(config: Config) -> Result<(), Error> {
    let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if p.1 {
        return Err(Error::AlreadyInitialized);
    }
    p.0 = Some(config);
    Ok(())
}

/// The runtime's set-up, started on first use.
pub(crate) fn setup() -> Result<&'static Setup, Error> {
    SETUP.get_or_init(start).as_ref().map_err(Clone::clone)
}

/// Sets the queue mode for later commits.
pub fn set_queue_mode(mode: QueueMode) -> Result<(), Error> {
    mode.check()?;
    setup()?;
    let mut guard = TEXT.lock();
    guard.as_mut().expect("started").queue = mode;
    Ok(())
}

fn start() -> Result<Setup, Error> {
    // A used copy of this crate defines the one-copy symbol (`records.rs`).
    records::__one_copy_per_binary();
    let config = {
        let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        p.1 = true;
        match p.0.take() {
            Some(c) => c,
            None => Config::from_env()?,
        }
    };
    arch::prepare_serialize();
    let mut fallback: Vec<String> = Vec::new();
    let mut sites = config.sites;
    if !arch::PATCHING {
        // A build without patching (`--cfg dynkey_atomic_only`, another
        // target) chose the atomic kind: not a fallback, and `patch` cannot
        // be honoured.
        if sites == SiteMode::Patch {
            return Err(Error::Unavailable {
                what: "DYNKEY_SITES=patch".into(),
                reason:
                    "this build compiles every site as the atomic kind (no instruction encoder)"
                        .into(),
            });
        }
        sites = SiteMode::Atomic;
    }
    let method = choose_method(&config, &mut sites, &mut fallback)?;

    let mut guard = TEXT.lock();
    let mut table = CodeTable::new(config.queue);
    let patching = match sites {
        SiteMode::Atomic => false,
        SiteMode::Patch | SiteMode::Auto => match enable_patching(&mut table) {
            Ok(()) => true,
            Err(reason) if sites == SiteMode::Patch => {
                return Err(Error::Unavailable {
                    what: "DYNKEY_SITES=patch".into(),
                    reason,
                });
            }
            Err(reason) => {
                fallback.push(format!("sites are atomic: {reason}"));
                // Forget what the failed attempt registered (keys found
                // their sites through it), so nothing is counted twice.
                table.forget_keys();
                table.demoted.clear();
                table.notes.clear();
                false
            }
        },
    };
    if !patching {
        register_compiled_atomic(&mut table);
    } else {
        crate::fork::install();
        if config.perf_map {
            crate::perfmap::write(&table);
        }
    }
    table.patching = patching;
    *guard = Some(table);
    drop(guard);
    Ok(Setup {
        patching,
        method,
        fallback: (!fallback.is_empty()).then(|| fallback.join("; ")),
        config,
    })
}

fn choose_method(
    config: &Config,
    sites: &mut SiteMode,
    fallback: &mut Vec<String>,
) -> Result<Method, Error> {
    let forced = |what: &str, reason: String| Error::Unavailable {
        what: format!("DYNKEY_RENDEZVOUS={what}"),
        reason,
    };
    let signals = || signal::install(config.signal).and_then(|_| signal::usable());
    match config.rendezvous {
        MethodChoice::Membarrier => membarrier::ensure()
            .map(|()| Method::Membarrier)
            .map_err(|r| forced("membarrier", r)),
        MethodChoice::Signal => signals()
            .map(|_| Method::Signal)
            .map_err(|r| forced("signal", r)),
        MethodChoice::None => match *sites {
            SiteMode::Patch => Err(forced(
                "none",
                "patched sites need a rendezvous to be visible on return (G2); use DYNKEY_SITES=atomic".into(),
            )),
            SiteMode::Auto => {
                fallback.push("sites are atomic: rendezvous none was chosen".into());
                *sites = SiteMode::Atomic;
                Ok(Method::None)
            }
            SiteMode::Atomic => Ok(Method::None),
        },
        MethodChoice::Auto => match membarrier::ensure() {
            Ok(()) => Ok(Method::Membarrier),
            Err(why) => match signals() {
                Ok(_) => {
                    fallback.push(format!("rendezvous by signals: {why}"));
                    Ok(Method::Signal)
                }
                Err(why2) if *sites == SiteMode::Patch => {
                    Err(forced("auto", format!("{why}; {why2}")))
                }
                Err(why2) => {
                    fallback.push(format!(
                        "no rendezvous ({why}; {why2}): sites are atomic, visibility is eventual"
                    ));
                    *sites = SiteMode::Atomic;
                    Ok(Method::None)
                }
            },
        },
    }
}

/// The key a site record names.
fn site_key(s: &InlineSite) -> &'static RawKey {
    // SAFETY: [SITE-RECORDS] a record's key field is the address of a
    // `static` RawKey (the site macros name it with `sym` and check its type).
    unsafe { &*(s.key as *const RawKey) }
}

fn stub_key(kind: StubKind, addr: usize) -> KeyRef {
    match kind {
        // SAFETY: [SITE-RECORDS] value stub records name a static RawKey.
        StubKind::Value => KeyRef::Bool(unsafe { &*(addr as *const RawKey) }),
        // SAFETY: [SITE-RECORDS] call stub records name a static RawCall.
        StubKind::Call => KeyRef::Call(unsafe { &*(addr as *const RawCall) }),
    }
}

/// Counts compiled-in sites as atomic: they keep their compiled-in form
/// (patched sites' check, or the atomic kind a build without patching
/// compiled).
fn register_compiled_atomic(table: &mut CodeTable) {
    for s in records::inline_sites() {
        table.sites_mut(KeyRef::Bool(site_key(&s))).atomic += 1;
    }
    for r in records::link_stubs() {
        table.sites_mut(stub_key(r.kind, r.key)).atomic += 1;
    }
    for r in records::atomic_sites() {
        let key = match r.stub {
            Some(kind) => stub_key(kind, r.key),
            // SAFETY: [SITE-RECORDS] a branch record names a static RawKey
            // (the macros check its type).
            None => KeyRef::Bool(unsafe { &*(r.key as *const RawKey) }),
        };
        table.sites_mut(key).atomic += 1;
    }
}

/// Takes over the pages holding compiled-in sites and rewrites every site
/// to its patched form; the reason when patching cannot work. Caller holds
/// the text lock (through `table`).
fn enable_patching(table: &mut CodeTable) -> Result<(), String> {
    if !arch::PATCHING {
        return Err("no instruction encoder for this build".into());
    }
    // Probe: an executable memfd mapping must work before any MAP_FIXED
    // replaces text (`Region::take_over`'s contract). The probe's pages
    // become the first run-time stub chunk.
    let CodeTable { stubs, regions, .. } = table;
    stubs
        .grow(regions)
        .map_err(|e| format!("executable memfd mappings are refused: {e}"))?;

    let mut inline = Vec::new();
    for s in records::inline_sites() {
        // SAFETY: [SITE-RECORDS] a record's site address points at the 5
        // bytes of a site in this binary's text, mapped for the life of the
        // process.
        let bytes = unsafe { std::slice::from_raw_parts(s.site as *const u8, arch::BRANCH_LEN) };
        let ok = arch::fits_in_word(s.site, arch::BRANCH_LEN)
            && arch::jmp5_target(s.site, bytes).is_some()
            && arch::jmp5(s.site, s.target).is_ok();
        if ok {
            inline.push(s);
        } else {
            table.demoted.push(format!(
                "inline site {:#x} is not patchable (straddles a word or unexpected bytes)",
                s.site
            ));
            table.sites_mut(KeyRef::Bool(site_key(&s))).atomic += 1;
        }
    }
    let mut stubs = Vec::new();
    for r in records::link_stubs() {
        let key = stub_key(r.kind, r.key);
        let aligned = r.word.is_multiple_of(8);
        // SAFETY: [SITE-RECORDS] a stub record's word lies in this binary's
        // readable text; the unaligned case (which the stub macros never
        // produce) reads bytewise.
        let word = unsafe {
            if aligned {
                arch::read_code_word(r.word)
            } else {
                (r.word as *const u64).read_unaligned()
            }
        };
        let ok = aligned
            && match key {
                KeyRef::Bool(_) => arch::is_compiled_value_word(word),
                KeyRef::Call(c) => {
                    arch::is_compiled_call_word(word)
                        && c.targets()
                            .iter()
                            .all(|t| arch::near_call_word(r.word, t.addr()).is_ok())
                }
            };
        if ok {
            let form = match r.kind {
                StubKind::Value => StubForm::Value,
                StubKind::Call => StubForm::NearCall,
            };
            stubs.push((key, Stub { word: r.word, form }));
        } else {
            table
                .demoted
                .push(format!("link-time stub {:#x} is not patchable", r.word));
            table.sites_mut(key).atomic += 1;
        }
    }

    take_over_text(table, &inline, &stubs)?;

    // Rewrite every site from its compiled-in form to its patched form.
    inline.sort_unstable_by_key(|s| (s.key, s.site));
    for s in &inline {
        rewrite(table, Place::Inline(s), site_key(s).check() as usize)?;
    }
    let mut start = 0;
    while start < inline.len() {
        let key = inline[start].key;
        let end = start + inline[start..].partition_point(|s| s.key == key);
        table
            .sites_mut(KeyRef::Bool(site_key(&inline[start])))
            .inline = start..end;
        start = end;
    }
    table.inline = inline;
    for (key, stub) in stubs {
        rewrite(table, Place::Stub(&stub), key.code_state())?;
        table.sites_mut(key).stubs.push(stub);
    }
    arch::serialize_local();
    Ok(())
}

/// Stores the patched form of a place that holds its compiled-in form.
fn rewrite(table: &CodeTable, place: Place, state: usize) -> Result<(), String> {
    let w = place.word();
    let region = table.region(w);
    let cur = region.load(w);
    let want = word_for(place, cur, state).map_err(|e| e.to_string())?;
    // Every instruction start of the compiled-in form is one of the patched
    // form (arch docs; tested in code_table_boundaries.rs).
    // SAFETY: text lock held (through `table`); [OLD-VERIFIED] the word holds
    // the compiled-in form, checked above; [ONE-STORE] `want` keeps its starts.
    unsafe { region.store(w, want) };
    Ok(())
}

/// Takes over every page that holds a patched word, in runs inside r-x
/// mappings, each copied from the mapping's file (`takeover.rs`).
fn take_over_text(
    table: &mut CodeTable,
    inline: &[InlineSite],
    stubs: &[(KeyRef, Stub)],
) -> Result<(), String> {
    let page = pages::page_size();
    let words = inline
        .iter()
        .map(|s| s.site & !7)
        .chain(stubs.iter().map(|(_, s)| s.word));
    let runs = takeover::page_runs(words.map(|w| w & !(page - 1)).collect(), page, 16);
    let maps = takeover::maps();
    // Read and check every run before replacing any.
    let mut copies = Vec::with_capacity(runs.len());
    for &(start, end) in &runs {
        let map = maps
            .iter()
            .find(|m| m.is_text() && m.start <= start && end <= m.end)
            .ok_or_else(|| format!("text {start:#x}..{end:#x} is not inside one r-x mapping"))?;
        copies.push(takeover::file_bytes(map, start, end)?);
    }
    for (&(start, end), copy) in runs.iter().zip(copies) {
        // `copy` differs from memory only by breakpoints on instruction
        // starts (`file_bytes` refuses any other difference); the stub chunk
        // mapped above showed that executable memfd mappings work.
        // SAFETY: the run is page-aligned in one r-x mapping (checked above);
        // text lock held, no region covers it yet; `copy` is its code.
        let region = unsafe { Region::take_over(start, end - start, &copy.bytes) }
            .map_err(|e| e.to_string())?;
        table.taken_over_bytes += region.len();
        table.regions.insert(region);
        table.notes.extend(copy.note);
    }
    Ok(())
}
