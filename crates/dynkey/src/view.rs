//! What the control surface shows: the listing, keys, calls, params,
//! counters and status. Everything here reads the registry snapshot and the
//! live values without taking the control lock, except where noted.

use std::fmt;
use std::sync::atomic::Ordering;

use dynkey_query::{Flags, LISTING_HEADER, format_param_value, write_row};
use dynkey_text::{CountersSnapshot, Method, SiteKind};

use crate::registry::{Origin, Registry};
use crate::state::State;

/// A named static key, as `GET /keys` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Its name.
    pub name: &'static str,
    /// `module::NAME`.
    pub path: String,
    /// The module that declared it.
    pub module: &'static str,
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

/// A class param, its value and its classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// The param's name.
    pub name: String,
    /// The stored value (hex for bits, decimal for levels).
    pub value: String,
    /// `disjoint_bits` or `level_num`.
    pub kind: &'static str,
    /// Its classes, in bit order.
    pub classes: Vec<String>,
    /// The modules that know the classes (`*`: every module).
    pub modules: Vec<String>,
    /// The flag characters the param toggles.
    pub flags: Flags,
}

/// One callsite, as the JSON listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    /// Stable for a build: what `POST /sites/{id}` and dry-run rows name.
    pub id: String,
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
    /// What tests its `p` flag.
    pub kind: RowKind,
}

/// What tests a row's `p` flag: one of the site kinds, or a tracing filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// An inline site (a patched NOP or `jmp`).
    Inline,
    /// A trampoline stub (run-time sites).
    Trampoline,
    /// A relaxed atomic load.
    Atomic,
    /// A `tracing` callsite: a tracing filter reads the flag as data when
    /// tracing asks for the callsite's interest (no code is patched).
    Tracing,
}

impl RowKind {
    /// Every kind, in label order.
    pub const ALL: [RowKind; 4] = [
        RowKind::Inline,
        RowKind::Trampoline,
        RowKind::Atomic,
        RowKind::Tracing,
    ];

    /// `inline`, `trampoline`, `atomic` or `tracing`: the JSON listing's
    /// and the metrics' label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Inline => "inline",
            RowKind::Trampoline => "trampoline",
            RowKind::Atomic => "atomic",
            RowKind::Tracing => "tracing",
        }
    }
}

impl From<SiteKind> for RowKind {
    fn from(k: SiteKind) -> RowKind {
        match k {
            SiteKind::Inline => RowKind::Inline,
            SiteKind::Trampoline => RowKind::Trampoline,
            SiteKind::Atomic => RowKind::Atomic,
        }
    }
}

impl PartialEq<SiteKind> for RowKind {
    fn eq(&self, other: &SiteKind) -> bool {
        *self == RowKind::from(*other)
    }
}

impl fmt::Display for RowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
    /// Rows of kind `tracing`: (off, on). They are no sites of the census:
    /// nothing is patched for them.
    pub tracing_rows: (u64, u64),
    /// The rendezvous method in use.
    pub method: Method,
}

/// A param's stored value (hex for bits, decimal for levels).
pub(crate) fn param(reg: &Registry, name: &str) -> Option<String> {
    reg.classmap(name)
        .map(|(_, e)| format_param_value(e.map.kind, e.value.load(Ordering::Relaxed)))
}

/// Every param with its value and classes.
pub(crate) fn param_infos(reg: &Registry) -> Vec<ParamInfo> {
    reg.classmaps
        .iter()
        .map(|e| ParamInfo {
            name: e.param.clone(),
            value: format_param_value(e.map.kind, e.value.load(Ordering::Relaxed)),
            kind: e.map.kind.name(),
            classes: e.map.names.clone(),
            modules: e.modules.clone(),
            flags: e.map.flags,
        })
        .collect()
}

/// The named static keys.
pub(crate) fn keys(reg: &Registry) -> Vec<KeyInfo> {
    reg.keys
        .iter()
        .map(|k| {
            let counts = dynkey_text::key_site_counts(k.raw()).unwrap_or([0; 3]);
            let total: u64 = counts.iter().sum();
            let kind = SiteKind::ALL
                .into_iter()
                .max_by_key(|k| counts[*k as usize])
                .filter(|_| total > 0)
                .unwrap_or(SiteKind::Atomic);
            KeyInfo {
                name: k.name(),
                path: k.path(),
                module: k.module(),
                enabled: k.is_enabled(),
                sites: total,
                kind,
                defined_at: k.defined_at(),
            }
        })
        .collect()
}

/// The named static calls.
pub(crate) fn calls(reg: &Registry) -> Vec<CallInfo> {
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

/// Writes the control listing: the header, then one row per callsite in
/// registration order (rows of tracing callsites end with ` kind:tracing`).
pub(crate) fn listing(reg: &Registry, out: &mut impl fmt::Write) -> fmt::Result {
    out.write_str(LISTING_HEADER)?;
    out.write_char('\n')?;
    for s in &reg.sites {
        write_row(out, &s.listing_info(), s.cs.flags())?;
        if s.origin == Origin::Tracing {
            // The kernel's format for every other row.
            out.write_str(" kind:tracing")?;
        }
        out.write_char('\n')?;
    }
    Ok(())
}

/// Every callsite, for the JSON listing.
pub(crate) fn sites(reg: &Registry) -> Vec<SiteRow> {
    let patched = dynkey_text::status()
        .map(|s| s.site_kind != SiteKind::Atomic)
        .unwrap_or(false);
    reg.sites
        .iter()
        .map(|s| SiteRow {
            id: s.id.to_string(),
            module: s.cs.module,
            file: s.cs.file,
            func: s.func,
            line: s.cs.line,
            format: s.cs.format,
            class: s.cs.class,
            flags: s.cs.flags(),
            kind: match (patched, s.origin) {
                (_, Origin::Tracing) => RowKind::Tracing,
                (false, _) => RowKind::Atomic,
                (true, Origin::Runtime) => RowKind::Trampoline,
                (true, Origin::Compiled) => RowKind::Inline,
            },
        })
        .collect()
}

/// Rows of kind `tracing`: (off, on).
pub(crate) fn tracing_rows(reg: &Registry) -> (u64, u64) {
    let mut counts = (0, 0);
    for s in reg.sites.iter().filter(|s| s.origin == Origin::Tracing) {
        if s.cs.is_enabled() {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }
    counts
}

/// The counters, for metrics.
pub(crate) fn counters(state: &State) -> Counters {
    Counters {
        text: dynkey_text::counters(),
        queries_ok: state.queries_ok.load(Ordering::Relaxed),
        queries_error: state.queries_error.load(Ordering::Relaxed),
        census: dynkey_text::census().unwrap_or_default(),
        tracing_rows: tracing_rows(&state.snapshot.load()),
        method: dynkey_text::status()
            .map(|s| s.method)
            .unwrap_or(Method::None),
    }
}

/// A hash of the effective table (every site's flags, key, call target
/// and param value): equal on two instances of one build in one state.
pub(crate) fn table_hash(reg: &Registry) -> u64 {
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
