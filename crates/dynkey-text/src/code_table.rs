//! The code table: every patched word, grouped by the key it follows, and
//! the one rule that says what a word must hold for a key's state.
//!
//! The table lives behind the text lock (`lock.rs`). Start-up fills it with
//! the compiled-in sites (`startup.rs`), run-time sites add stubs
//! (`stubs.rs`), commits read it to plan (`commit.rs`), and a fork child
//! rewrites every word from it (`fork.rs`). All of them ask
//! [`word_for`] which word a place must hold: there is no other encoder
//! call outside `arch`.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::arch;
use crate::config::QueueMode;
use crate::error::Error;
use crate::key::{RawCall, RawKey};
use crate::pages::{Region, Regions, StubPages};
use crate::records::InlineSite;

/// A key a site tests: a boolean key or a static call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyRef {
    Bool(&'static RawKey),
    Call(&'static RawCall),
}

impl KeyRef {
    fn slot(self) -> &'static AtomicU32 {
        match self {
            KeyRef::Bool(k) => k.slot(),
            KeyRef::Call(c) => c.slot(),
        }
    }

    /// The key's current state as code must show it: its code byte (0/1)
    /// or its call's current target address.
    pub(crate) fn code_state(self) -> usize {
        match self {
            KeyRef::Bool(k) => k.check() as usize,
            KeyRef::Call(c) => c.current().addr(),
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
    /// `mov eax, state; nop2; ret`.
    Value,
    /// `jmp rel32 target`.
    NearCall,
    /// The immediate of `movabs r11, target; jmp r11`.
    FarCall,
}

/// A patched place: an inline site or a stub.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Place<'a> {
    Inline(&'a InlineSite),
    Stub(&'a Stub),
}

impl Place<'_> {
    /// The aligned word that holds it (an executable-view address).
    pub(crate) fn word(&self) -> usize {
        match self {
            Place::Inline(s) => arch::word_of(s.site).0,
            Place::Stub(s) => s.word,
        }
    }
}

/// The word `place` must hold when its key is in `state` (a bool as 0/1,
/// or a call's target address), given the word's `current` contents (an
/// inline site shares its word with bytes of neighbouring instructions,
/// which never change).
///
/// | place | state | word |
/// |---|---|---|
/// | inline site | jumps for this state (`records.rs` truth table) | `current` with `jmp rel32 target` spliced in |
/// | inline site | falls through | `current` with the 5-byte NOP spliced in |
/// | value stub | 0 or 1 | `mov eax, state; nop2; ret` |
/// | near call stub | target | `jmp rel32 target; int3 x3` |
/// | far call stub | target | the target itself (the `movabs` immediate) |
pub(crate) fn word_for(place: Place, current: u64, state: usize) -> Result<u64, Error> {
    Ok(match place {
        Place::Inline(s) => {
            let bytes = if s.jumps(state != 0) {
                arch::jmp5(s.site, s.target)?
            } else {
                arch::NOP5
            };
            arch::splice(current, arch::word_of(s.site).1, &bytes)
        }
        Place::Stub(stub) => match stub.form {
            StubForm::Value => arch::value_word(state != 0),
            StubForm::NearCall => arch::near_call_word(stub.word, state)?,
            StubForm::FarCall => state as u64,
        },
    })
}

/// Everything that tests one key.
#[derive(Debug)]
pub(crate) struct KeySites {
    pub key: KeyRef,
    /// Patched inline sites, a run of `CodeTable::inline`.
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

/// Why this process may not write its code pages (after a fork).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// The pages are this process's own.
    Own,
    /// A fork child (pid given) that still shares its parent's pages: it
    /// copies them on its first patch (`fork.rs`).
    SharedWithParent(u32),
    /// A fork child that could not copy its pages: it must not write.
    Detached(&'static str),
}

/// The state behind the text lock.
#[derive(Debug)]
pub(crate) struct CodeTable {
    pub patching: bool,
    /// Patched inline sites, sorted by (key, address).
    pub inline: Vec<InlineSite>,
    /// Every key with sites, at the index its `slot` names (minus one).
    pub keys: Vec<KeySites>,
    pub regions: Regions,
    pub stubs: StubPages,
    pub queue: QueueMode,
    /// The process that owns the aliases.
    pub pid: u32,
    pub ownership: Ownership,
    /// Why some compiled-in sites stay atomic (demoted), if any did.
    pub demoted: Vec<String>,
    /// What start-up changed besides sites (breakpoints dropped).
    pub notes: Vec<String>,
    pub taken_over_bytes: usize,
}

impl CodeTable {
    pub(crate) fn new(queue: QueueMode) -> CodeTable {
        CodeTable {
            patching: false,
            inline: Vec::new(),
            keys: Vec::new(),
            regions: Regions::default(),
            stubs: StubPages::default(),
            queue,
            pid: std::process::id(),
            ownership: Ownership::Own,
            demoted: Vec::new(),
            notes: Vec::new(),
            taken_over_bytes: 0,
        }
    }

    pub(crate) fn sites_mut(&mut self, key: KeyRef) -> &mut KeySites {
        // Relaxed: the slot is read and written under the text lock only.
        let slot = key.slot().load(Ordering::Relaxed) as usize;
        if slot == 0 {
            self.keys.push(KeySites::new(key));
            key.slot().store(self.keys.len() as u32, Ordering::Relaxed);
            return self.keys.last_mut().expect("just pushed");
        }
        &mut self.keys[slot - 1]
    }

    /// The sites of `key`, if it has any.
    pub(crate) fn sites_of(&self, key: KeyRef) -> Option<&KeySites> {
        // Relaxed: under the text lock, like every access to the slot.
        let slot = key.slot().load(Ordering::Relaxed) as usize;
        slot.checked_sub(1).and_then(|i| self.keys.get(i))
    }

    /// Forgets every key's sites (a start-up that fell back to atomic).
    pub(crate) fn forget_keys(&mut self) {
        for ks in &self.keys {
            // Relaxed: under the text lock.
            ks.key.slot().store(0, Ordering::Relaxed);
        }
        self.keys.clear();
        self.inline.clear();
    }

    /// Every patched place of a key.
    pub(crate) fn places<'a>(&'a self, ks: &'a KeySites) -> impl Iterator<Item = Place<'a>> {
        let inline = match ks.key {
            KeyRef::Bool(_) => &self.inline[ks.inline.clone()],
            KeyRef::Call(_) => &[][..],
        };
        inline
            .iter()
            .map(Place::Inline)
            .chain(ks.stubs.iter().map(Place::Stub))
    }

    pub(crate) fn region(&self, word: usize) -> &Region {
        self.regions
            .find(word, 8)
            .expect("every patched word lies in a region (checked at registration)")
    }
}

#[cfg(all(test, dynkey_patching))]
#[path = "code_table_boundaries.rs"]
mod boundaries;
