//! tracing's macros as dyndbg callsites, and every other tracing callsite
//! of the process in the same listing, switched by the same queries.
//!
//! ```
//! use dynkey_tracing::{debug, info};
//! use tracing_subscriber::prelude::*;
//!
//! // The subscriber the service already has, with dynkey as the filter of
//! // its output (this also applies the RUST_LOG baseline: here unset, so
//! // ERROR, WARN and INFO are on).
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer().with_filter(dynkey_tracing::layer()))
//!     .init();
//!
//! fn charge(order: u32) {
//!     info!(order, "charging");
//!     debug!(order, "card accepted"); // a NOP until turned on
//! }
//!
//! // Both callsites are listed before they ever run, class = level.
//! let c = dynkey_tracing::dynkey::control();
//! let listing = c.listing_string();
//! assert!(listing.contains("]charge =p \"charging\" class:INFO"));
//! assert!(listing.contains("]charge =_ \"card accepted\" class:DEBUG"));
//!
//! charge(1); // prints "charging" only
//! // Levels are classes: name one to select class'd sites.
//! let r = c.exec("func charge class DEBUG +p").unwrap();
//! assert_eq!(r.changed, 1);
//! charge(2); // prints both lines
//! ```
//!
//! # Switching a file
//!
//! Replace `use tracing::{debug, info};` with
//! `use dynkey_tracing::{debug, info};`. The macros take tracing's syntax
//! (a message with format arguments; fields `a = x`, `?x`, `%x`, `a.b`,
//! `"a" = x`; `target:`, `parent:`, `name:`) and, when on, expand to
//! tracing's own macro with your tokens, so the event goes through the
//! current dispatcher with the callsite's metadata: same fields, same
//! span, same subscribers (fmt, JSON, OpenTelemetry). While off, a site is
//! a NOP: its arguments are not even evaluated.
//!
//! Each is a dyndbg callsite compiled into the binary: listed (`GET
//! /control` of `dynkey-server`, [`dynkey::Control::listing`]) before it
//! runs, with its module (the `target:` when given, else the module path),
//! file, line, enclosing function and message format, and its level as
//! class.
//!
//! # Start-up: the `RUST_LOG` baseline
//!
//! Sites start off, like every dynkey site. [`init`] (or [`layer`], which
//! calls it) reads `RUST_LOG` once, with the directives `EnvFilter` users
//! already write, and makes it the *baseline* layer of dynkey's state:
//! with `RUST_LOG` unset, ERROR, WARN and INFO are on everywhere;
//! `RUST_LOG=warn,my_app::db=debug` turns on ERROR and WARN everywhere and
//! DEBUG below `my_app::db` (see [`rust_log`] for the exact rules and what
//! differs from `EnvFilter`). Operators' changes go on top of it and a
//! revoke falls back to it. **Call [`init`] (or install [`layer`]) at the
//! start of `main`**: until then every site is off, errors included.
//!
//! # Levels are classes: the protection rule
//!
//! Each site's class is its level's name in the class map `tracing.level`
//! (`level_num`, covering every module; class 0 is `ERROR`, then `WARN`,
//! `INFO`, `DEBUG`, `TRACE`). Two consequences:
//!
//! - **One param is the process's level**: `PUT /params/tracing.level 4`
//!   ([`dynkey::Control::set_param`]`("tracing.level", "4")`) turns DEBUG
//!   on everywhere, as `RUST_LOG=debug` would, in one commit.
//! - **A query without `class` changes none of these sites.** The kernel's
//!   class protection: a classless `+p` must not switch on a whole class
//!   of debug output by accident. So name the level:
//!
//! | query | what it does |
//! |---|---|
//! | `module hyper* +p` | **nothing**: every row of hyper is class'd |
//! | `module hyper* class DEBUG +p` | hyper's DEBUG events and spans on |
//! | `module my_service::db class DEBUG +p` | one module's debug events on |
//! | `func charge class TRACE +p` | one function's trace events on |
//! | `class DEBUG -p` | every DEBUG site and row off |
//!
//! The dry run (`POST /control?dry_run=1`, [`dynkey::Control::dry_run`])
//! says why a classless query matched nothing: its `protected` count is the
//! class'd sites and rows it would have selected, had it named their class;
//! the listing shows each row's class (`class:DEBUG`).
//!
//! # Every other tracing callsite: [`layer`]
//!
//! Your dependencies log with tracing's own macros (hyper, h2, tower-http,
//! sqlx...). [`layer`] returns a filter that lists each of those callsites
//! as a row of the same listing as soon as tracing registers it (the
//! first time it runs: tracing has no list of callsites before that), and
//! decides tracing's interest in it from the row's `p` flag. A row has
//! kind `tracing` (` kind:tracing` at the end of its text row, `"kind":
//! "tracing"` in JSON, `kind="tracing"` in the `dynkey_sites` metric), its
//! target as module, no function, its level as class, and as format a
//! span's name or an event's field names. When a query turns such rows on
//! or off, the filter rebuilds tracing's interest cache before the query
//! returns, so `module tower_http* class DEBUG +p` over HTTP makes the
//! next request print tower-http's events, and `-p` silences them. This
//! crate's own callsites are not listed twice.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! use tracing_subscriber::{EnvFilter, fmt};
//!
//! // dynkey decides what fmt prints:
//! let a = tracing_subscriber::registry().with(fmt::layer().with_filter(dynkey_tracing::layer()));
//! // or, for every layer above it:
//! let b = tracing_subscriber::registry().with(dynkey_tracing::layer()).with(fmt::layer());
//! // or dynkey for stdout, an EnvFilter for another output (a file, JSON):
//! let c = tracing_subscriber::registry()
//!     .with(fmt::layer().with_filter(dynkey_tracing::layer()))
//!     .with(fmt::layer().with_writer(std::io::stderr).with_filter(EnvFilter::new("info")));
//! # let _ = (a, b, c);
//! ```
//!
//! # With an `EnvFilter` (or any other filter) the service keeps
//!
//! tracing delivers an event to a layer only if every filter on its way
//! says yes: the filters of the subscriber as a whole (a filter added with
//! `.with(filter)`), then the layer's own (`.with_filter(filter)`), and,
//! for this crate's macros, the site's `p` flag before all of them. So:
//!
//! - **dynkey as the filter** (a layer's filter, or a global one, with no
//!   other global filter): the dyndbg flags decide. A `+p` shows what was
//!   off, a `-p` hides what was on.
//! - **dynkey beside a global `EnvFilter`**
//!   (`registry().with(EnvFilter::from_default_env()).with(fmt.with_filter(layer()))`):
//!   both must say yes. `-p` can silence anything; `+p` shows nothing that
//!   the `EnvFilter` drops (an `EnvFilter` at `info` also caps tracing's
//!   global max level at INFO, so a `debug!` site turned on is dropped by
//!   tracing before any filter runs).
//! - **the macros without [`layer`]**, under any filter: the site's flag,
//!   then the filter. `+p` on a DEBUG site prints only if the filter lets
//!   DEBUG events of that target through (`RUST_LOG=info,my_app=debug`).
//!   The same holds for `pr_debug!` output sent to tracing by dynkey's
//!   `TracingSink`.
//! - **`EnvFilter` as another layer's filter**: that layer follows the
//!   `EnvFilter`, the one filtered by [`layer`] follows dyndbg.
//!
//! A dyndbg `+p` wins over a more restrictive filter only when the service
//! made dynkey its filter.
//!
//! # Costs
//!
//! | | off | on |
//! |---|---|---|
//! | a macro of this crate | one NOP (dynkey's inline site) | the site's jump, then tracing's macro |
//! | another tracing callsite, filtered by [`layer`] | tracing's check of its cached interest (`never`) | tracing's cost |
//! | a change turning sites on or off | one commit, one rendezvous if a macro site changed | plus one interest rebuild if a row changed (about 20 µs per 1,000 callsites) |
//!
//! Measured (BENCHMARKS.md, section "tracing"; the ranges are two hosts),
//! across 1,000 distinct sites: a disabled site costs what dynkey's
//! `pr_debug!` costs, 8x to 14x less than tracing's `debug!` under a global
//! INFO level and 160x to 300x less than one asked on every call (a span
//! directive behind the `reload` layer); an enabled site costs 1.3x to 1.7x
//! tracing's own event (its jump to the out-of-line arm and back), 0.7x to
//! 1.1x for a site in a hot loop.
//!
//! [`layer`] gives tracing no max-level hint, so with dynkey as the only
//! filter a disabled third-party callsite costs tracing's cached-interest
//! check (about 1.3x its global level compare) rather than that compare.
//!
//! # Guarantees
//!
//! dynkey's hold for both kinds: once a change returns, every event that
//! starts afterwards, in any thread, follows it (G2), with at most one
//! rendezvous per change (G5; none when only rows of kind `tracing`
//! changed, since no code is patched for them).
//!
//! Make changes outside tracing's own callbacks (not from a layer's
//! `on_event`, say): a change of rows rebuilds tracing's interest cache
//! before it returns, and tracing cannot reach its dispatcher from inside
//! one of its callbacks.

#![deny(missing_docs)]

mod error;
pub mod filter;
pub mod levels;
mod macros;
pub mod rust_log;

use std::sync::OnceLock;

pub use error::Error;
pub use filter::DynkeyLayer;
pub use rust_log::DirectiveError;

/// dynkey itself: [`dynkey::control`] changes flags from code.
pub use dynkey;
#[doc(hidden)]
pub use dynkey as __dynkey;
#[doc(hidden)]
pub use tracing as __tracing;

static INIT: OnceLock<Result<(), Error>> = OnceLock::new();

/// Applies the `RUST_LOG` baseline (see the [crate docs](crate)), once:
/// later calls, and [`layer`], return the first call's result and change
/// nothing. A directive it cannot use is skipped, printed on standard
/// error and returned in [`Error::Directives`]; the others apply.
pub fn init() -> Result<(), Error> {
    let spec = std::env::var_os("RUST_LOG").map(|v| v.to_string_lossy().into_owned());
    init_with(spec.as_deref())
}

/// Like [`init`], with the directives given (None: as if `RUST_LOG` were
/// unset), for services that read them from their own configuration.
/// Only the first of [`init`], [`init_with`] and [`layer`] applies.
pub fn init_with(directives: Option<&str>) -> Result<(), Error> {
    INIT.get_or_init(|| {
        let b = rust_log::baseline(directives);
        for e in &b.errors {
            eprintln!("dynkey-tracing: RUST_LOG: {e}");
        }
        dynkey::control()
            .add_baseline(b.ops)
            .map_err(Error::Baseline)?;
        match b.errors.is_empty() {
            true => Ok(()),
            false => Err(Error::Directives(b.errors)),
        }
    })
    .clone()
}

/// A `tracing_subscriber` filter that lists every tracing callsite as a row
/// of dynkey's listing and lets through what the rows' `p` flags say (see
/// the [crate docs](crate)). Usable as a per-layer filter
/// (`layer.with_filter(dynkey_tracing::layer())`) or as a layer
/// (`registry().with(dynkey_tracing::layer())`).
///
/// Makes dynkey rebuild tracing's interest cache after every change of
/// such rows, and applies the `RUST_LOG` baseline with [`init`] if that has
/// not run yet (its errors are printed on standard error; call [`init`]
/// first to handle them).
pub fn layer() -> DynkeyLayer {
    dynkey::control().on_tracing_change(filter::rebuild);
    let _ = init();
    DynkeyLayer::new()
}
