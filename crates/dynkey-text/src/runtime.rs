//! Start-up: choose the rendezvous and the site kind, take over the text
//! pages that hold sites, and hold the tables the commit pipeline works on.
//!
//! Start-up is lazy (first commit, first run-time site, or [`status`]) and
//! happens once. With patching, every compiled-in site is rewritten from its
//! compiled-in form (a jump to the out-of-line atomic check) to its patched
//! form for the key's current state. Both forms do the same thing, so no
//! rendezvous is needed: a thread still running the compiled-in form is
//! correct, and the next commit's rendezvous serializes every thread after
//! those stores too.

use std::ops::Range;
use std::sync::{Mutex, OnceLock};

use crate::arch;
use crate::config::{Config, MethodChoice, QueueMode, SiteMode};
use crate::error::Error;
use crate::key::{RawCall, RawKey};
use crate::lock::{TEXT, TextGuard};
use crate::pages::{self, Region, Regions};
use crate::records::{self, InlineSite, StubKind};
use crate::rendezvous::{membarrier, signal};
use crate::{Method, SiteKind};

/// What start-up decided; immutable afterwards.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub patching: bool,
    pub method: Method,
    pub fallback: Option<String>,
    pub config: Config,
}

static RUNTIME: OnceLock<Result<Runtime, Error>> = OnceLock::new();
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

/// The runtime, started on first use.
pub(crate) fn runtime() -> Result<&'static Runtime, Error> {
    RUNTIME.get_or_init(start).as_ref().map_err(Clone::clone)
}

/// A key a site tests: a boolean key or a static call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyRef {
    Bool(&'static RawKey),
    Call(&'static RawCall),
}

impl KeyRef {
    fn slot(self) -> &'static std::sync::atomic::AtomicU32 {
        match self {
            KeyRef::Bool(k) => k.slot(),
            KeyRef::Call(c) => c.slot(),
        }
    }
}

/// A trampoline word and what it holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stub {
    pub word: usize,
    pub form: StubForm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StubForm {
    /// `mov eax, state; ret`.
    Value,
    /// `jmp rel32 target`.
    NearCall,
    /// The immediate of `movabs r11, target; jmp r11`.
    FarCall,
}

/// Everything that tests one key.
#[derive(Debug)]
pub(crate) struct KeySites {
    pub key: KeyRef,
    /// Patched inline sites, a run of `Text::inline`.
    pub inline: Range<usize>,
    /// Patched trampolines (link-time and run-time).
    pub stubs: Stubs,
    /// Sites that read the key's code byte (or call pointer).
    pub atomic: u32,
}

impl KeySites {
    fn new(key: KeyRef) -> Self {
        KeySites {
            key,
            inline: 0..0,
            stubs: Stubs::default(),
            atomic: 0,
        }
    }
}

/// A key's stubs: almost always one, kept inline so a commit over many
/// keys reads no second allocation per key.
#[derive(Debug, Default)]
pub(crate) struct Stubs {
    first: Option<Stub>,
    rest: Vec<Stub>,
}

impl Stubs {
    pub(crate) fn push(&mut self, s: Stub) {
        match self.first {
            None => self.first = Some(s),
            Some(_) => self.rest.push(s),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Stub> {
        self.first.iter().chain(&self.rest)
    }

    pub(crate) fn len(&self) -> usize {
        self.first.is_some() as usize + self.rest.len()
    }
}

/// The state behind the text lock.
#[derive(Debug)]
pub(crate) struct Text {
    pub patching: bool,
    /// Patched inline sites, sorted by (key, address).
    pub inline: Vec<InlineSite>,
    /// Every key with sites, at the index its `slot` names (minus one).
    pub keys: Vec<KeySites>,
    pub regions: Regions,
    pub stubs: crate::stubs::StubPages,
    pub queue: QueueMode,
    /// The process that owns the aliases (a fork child re-takes them).
    pub pid: i32,
    /// Set when a fork child could not re-take its pages: it must not write.
    pub detached: Option<&'static str>,
    /// Why some compiled-in sites stay atomic (demoted), if any did.
    pub demoted: Vec<String>,
    pub taken_over_bytes: usize,
}

impl Text {
    pub(crate) fn sites_mut(&mut self, key: KeyRef) -> &mut KeySites {
        // Relaxed: the slot is read and written under the text lock only.
        let slot = key.slot().load(std::sync::atomic::Ordering::Relaxed) as usize;
        if slot == 0 {
            self.keys.push(KeySites::new(key));
            key.slot()
                .store(self.keys.len() as u32, std::sync::atomic::Ordering::Relaxed);
            return self.keys.last_mut().expect("just pushed");
        }
        &mut self.keys[slot - 1]
    }

    /// The sites of `key`, if it has any.
    pub(crate) fn sites_of(&self, key: KeyRef) -> Option<&KeySites> {
        let slot = key.slot().load(std::sync::atomic::Ordering::Relaxed) as usize;
        slot.checked_sub(1).and_then(|i| self.keys.get(i))
    }

    /// The word a trampoline must hold when its key is in `state` (a bool as
    /// 0/1, or a call's target address).
    pub(crate) fn stub_word(stub: &Stub, state: usize) -> Result<u64, Error> {
        Ok(match stub.form {
            StubForm::Value => arch::value_word(state != 0),
            StubForm::NearCall => arch::near_call_word(stub.word, state)?,
            StubForm::FarCall => state as u64,
        })
    }

    /// The 5 bytes an inline site must hold when its key is `enabled`.
    pub(crate) fn inline_bytes(site: &InlineSite, enabled: bool) -> Result<[u8; 5], Error> {
        if site.jumps(enabled) {
            Ok(arch::jmp5(site.site, site.target)?)
        } else {
            Ok(arch::NOP5)
        }
    }

    pub(crate) fn region(&self, word: usize) -> &Region {
        self.regions
            .find(word, 8)
            .expect("every patched word lies in a region (checked at registration)")
    }
}

/// The current state of a key: its code byte or call pointer.
pub(crate) fn code_state(key: KeyRef) -> usize {
    match key {
        KeyRef::Bool(k) => k.check() as usize,
        KeyRef::Call(c) => c.current().addr(),
    }
}

fn start() -> Result<Runtime, Error> {
    let config = {
        let mut p = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        p.1 = true;
        match p.0.take() {
            Some(c) => c,
            None => Config::from_env()?,
        }
    };
    crate::arch::prepare_serialize();
    let mut fallback: Vec<String> = Vec::new();
    let mut sites = config.sites;
    let method = choose_method(&config, &mut sites, &mut fallback)?;

    let mut guard = TEXT.lock();
    let mut text = Text {
        patching: false,
        inline: Vec::new(),
        keys: Vec::new(),
        regions: Regions::default(),
        stubs: crate::stubs::StubPages::default(),
        queue: config.queue,
        // SAFETY: getpid has no preconditions.
        pid: unsafe { libc::getpid() },
        detached: None,
        demoted: Vec::new(),
        taken_over_bytes: 0,
    };
    let patching = match sites {
        SiteMode::Atomic => false,
        SiteMode::Patch | SiteMode::Auto => match enable_patching(&mut text) {
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
                for ks in &text.keys {
                    ks.key.slot().store(0, std::sync::atomic::Ordering::Relaxed);
                }
                text.keys.clear();
                text.inline.clear();
                text.demoted.clear();
                false
            }
        },
    };
    if !patching {
        register_compiled_atomic(&mut text);
    } else {
        crate::fork::install();
        if config.perf_map {
            crate::perfmap::write(&text);
        }
    }
    text.patching = patching;
    *guard = Some(text);
    drop(guard);
    Ok(Runtime {
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
    match config.rendezvous {
        MethodChoice::Membarrier => membarrier::ensure().map(|()| Method::Membarrier).map_err(|r| forced("membarrier", r)),
        MethodChoice::Signal => signal::install()
            .and_then(|_| signal::usable())
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
            Err(why) => match signal::install().and_then(|_| signal::usable()) {
                Ok(_) => {
                    fallback.push(format!("rendezvous by signals: {why}"));
                    Ok(Method::Signal)
                }
                Err(why2) if *sites == SiteMode::Patch => Err(forced("auto", format!("{why}; {why2}"))),
                Err(why2) => {
                    fallback.push(format!("no rendezvous ({why}; {why2}): sites are atomic, visibility is eventual"));
                    *sites = SiteMode::Atomic;
                    Ok(Method::None)
                }
            },
        },
    }
}

/// Counts compiled-in sites as atomic: they keep their compiled-in form.
fn register_compiled_atomic(text: &mut Text) {
    for s in records::inline_sites() {
        // SAFETY: [SITE-RECORDS] a record's key field is the address of a
        // `static` RawKey (the site macros name it with `sym`).
        let key = unsafe { &*(s.key as *const RawKey) };
        text.sites_mut(KeyRef::Bool(key)).atomic += 1;
    }
    for r in records::link_stubs() {
        text.sites_mut(stub_key(r.kind, r.key)).atomic += 1;
    }
}

fn stub_key(kind: StubKind, addr: usize) -> KeyRef {
    match kind {
        // SAFETY: [SITE-RECORDS] value stub records name a static RawKey.
        StubKind::Value => KeyRef::Bool(unsafe { &*(addr as *const RawKey) }),
        // SAFETY: [SITE-RECORDS] call stub records name a static RawCall.
        StubKind::Call => KeyRef::Call(unsafe { &*(addr as *const RawCall) }),
    }
}

/// Takes over the pages holding compiled-in sites and rewrites every site
/// to its patched form; the reason when patching cannot work.
fn enable_patching(text: &mut Text) -> Result<(), String> {
    if !arch::PATCHING {
        return Err("no instruction encoder for this target".into());
    }
    // Probe: an executable memfd mapping must work before any MAP_FIXED
    // replaces text (pages.rs, `take_over` safety). The probe's pages become
    // the first run-time stub chunk.
    text.stubs
        .grow(&mut text.regions)
        .map_err(|e| format!("executable memfd mappings are refused: {e}"))?;

    let page = pages::page_size();
    let mut inline = Vec::new();
    for s in records::inline_sites() {
        // SAFETY: [SITE-RECORDS] records name static RawKeys.
        let key = unsafe { &*(s.key as *const RawKey) };
        // SAFETY: a record's site address points at 5 bytes of our text.
        let bytes = unsafe { std::slice::from_raw_parts(s.site as *const u8, arch::BRANCH_LEN) };
        let ok = arch::fits_in_word(s.site, arch::BRANCH_LEN)
            && arch::jmp5_target(s.site, bytes).is_some()
            && arch::jmp5(s.site, s.target).is_ok();
        if ok {
            inline.push(s);
        } else {
            text.demoted.push(format!(
                "inline site {:#x} is not patchable (straddles a word or unexpected bytes)",
                s.site
            ));
            text.sites_mut(KeyRef::Bool(key)).atomic += 1;
        }
    }
    let mut stubs = Vec::new();
    for r in records::link_stubs() {
        let key = stub_key(r.kind, r.key);
        let aligned = r.word.is_multiple_of(8);
        // SAFETY: a stub record's word lies in our readable text; the
        // unaligned case (which the stub macros never produce) reads bytewise.
        let word = unsafe {
            if aligned {
                (r.word as *const u64).read_volatile()
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
            let form = if r.kind == StubKind::Value {
                StubForm::Value
            } else {
                StubForm::NearCall
            };
            stubs.push((key, Stub { word: r.word, form }));
        } else {
            text.demoted
                .push(format!("link-time stub {:#x} is not patchable", r.word));
            text.sites_mut(key).atomic += 1;
        }
    }

    // Take over every page that holds a patched word, in runs inside r-x mappings.
    let words = inline
        .iter()
        .map(|s| s.site & !7)
        .chain(stubs.iter().map(|(_, s)| s.word));
    let runs = pages::page_runs(words.map(|w| w & !(page - 1)).collect(), page, 16);
    let exec = pages::exec_mappings();
    for &(start, end) in &runs {
        if !exec.iter().any(|&(a, b)| a <= start && end <= b) {
            return Err(format!(
                "text {start:#x}..{end:#x} is not inside one r-x mapping"
            ));
        }
    }
    for (start, end) in runs {
        // SAFETY: the run is page-aligned and inside an r-x mapping (checked
        // above), no region covers it yet, we hold the text lock, and the
        // probe above showed executable memfd mappings work.
        let region = unsafe { Region::take_over(start, end - start) }.map_err(|e| e.to_string())?;
        text.taken_over_bytes += region.len();
        text.regions.insert(region);
    }

    // Rewrite every site from its compiled-in form to its patched form.
    inline.sort_unstable_by_key(|s| (s.key, s.site));
    for s in &inline {
        // SAFETY: [SITE-RECORDS] as above.
        let key = unsafe { &*(s.key as *const RawKey) };
        let (w, off) = arch::word_of(s.site);
        let region = text.region(w);
        let bytes = Text::inline_bytes(s, key.check()).map_err(|e| e.to_string())?;
        region.store(w, arch::splice(region.load(w), off, &bytes));
    }
    let mut start = 0;
    while start < inline.len() {
        let key = inline[start].key;
        let end = start + inline[start..].partition_point(|s| s.key == key);
        // SAFETY: [SITE-RECORDS] as above.
        let k = unsafe { &*(key as *const RawKey) };
        text.sites_mut(KeyRef::Bool(k)).inline = start..end;
        start = end;
    }
    text.inline = inline;
    for (key, stub) in stubs {
        let word = Text::stub_word(&stub, code_state(key)).map_err(|e| e.to_string())?;
        text.region(stub.word).store(stub.word, word);
        text.sites_mut(key).stubs.push(stub);
    }
    arch::serialize_local();
    Ok(())
}

/// What the runtime is doing, for humans, metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The kind compiled-in branch sites use: `Inline` when patched, else `Atomic`.
    pub site_kind: SiteKind,
    /// The rendezvous method in use.
    pub method: Method,
    /// Why an `auto` setting did not get its first choice (None: it did).
    pub fallback: Option<String>,
    /// The configuration in effect.
    pub config: Config,
    /// The current queue mode.
    pub queue: QueueMode,
    /// Compiled-in sites or stubs left atomic, and why.
    pub demoted: Vec<String>,
    /// Bytes of text taken over by memfd copies.
    pub taken_over_bytes: usize,
    /// Whether membarrier was registered by the constructor, before `main`.
    pub registered_at_start: bool,
}

/// Starts the runtime if needed and reports what it chose.
pub fn status() -> Result<Status, Error> {
    let rt = runtime()?;
    let guard = TEXT.lock();
    let text = text_of(&guard);
    Ok(Status {
        site_kind: if rt.patching {
            SiteKind::Inline
        } else {
            SiteKind::Atomic
        },
        method: rt.method,
        fallback: rt.fallback.clone(),
        config: rt.config.clone(),
        queue: text.queue,
        demoted: text.demoted.clone(),
        taken_over_bytes: text.taken_over_bytes,
        registered_at_start: membarrier::registered_at_start(),
    })
}

/// The text state of a started runtime.
pub(crate) fn text_of(guard: &TextGuard) -> &Text {
    guard
        .as_ref()
        .expect("the runtime is started before the text lock is used")
}

/// Sets the queue mode for later commits.
pub fn set_queue_mode(mode: QueueMode) -> Result<(), Error> {
    mode.check()?;
    runtime()?;
    let mut guard = TEXT.lock();
    guard.as_mut().expect("started").queue = mode;
    Ok(())
}

/// Counts of sites by kind and key state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// `[kind][state]`: kind as `SiteKind as usize`, state 0 disabled, 1 enabled.
    pub sites: [[u64; 2]; 3],
}

impl Census {
    /// Sites of `kind` whose key is `enabled`.
    pub fn count(&self, kind: SiteKind, enabled: bool) -> u64 {
        self.sites[kind as usize][enabled as usize]
    }
}

/// Counts every boolean key's sites by kind and state (static-call sites
/// are not counted: they have no enabled/disabled state).
pub fn census() -> Result<Census, Error> {
    runtime()?;
    let guard = TEXT.lock();
    let text = text_of(&guard);
    let mut c = Census::default();
    for ks in &text.keys {
        let KeyRef::Bool(k) = ks.key else { continue };
        let on = k.is_enabled() as usize;
        c.sites[SiteKind::Inline as usize][on] += ks.inline.len() as u64;
        c.sites[SiteKind::Trampoline as usize][on] += ks.stubs.len() as u64;
        c.sites[SiteKind::Atomic as usize][on] += ks.atomic as u64;
    }
    Ok(c)
}

/// Sites testing one key or call, by kind (`SiteKind as usize`).
fn site_counts(key: KeyRef) -> Result<[u64; 3], Error> {
    runtime()?;
    let guard = TEXT.lock();
    Ok(text_of(&guard).sites_of(key).map_or([0; 3], |ks| {
        [
            ks.inline.len() as u64,
            ks.stubs.len() as u64,
            ks.atomic as u64,
        ]
    }))
}

/// Sites testing `key`, by kind (index with `SiteKind as usize`).
pub fn key_site_counts(key: &'static RawKey) -> Result<[u64; 3], Error> {
    site_counts(KeyRef::Bool(key))
}

/// Sites (stubs) calling through `call`, by kind (index with `SiteKind as usize`).
pub fn call_site_counts(call: &'static RawCall) -> Result<[u64; 3], Error> {
    site_counts(KeyRef::Call(call))
}
