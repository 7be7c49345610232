//! The macros' sites: listed before they run; off below INFO by default;
//! switched on by module, func, format and the level param, each emitting
//! exactly the expected events (fields, span, metadata) through the real
//! subscriber of `capture`; off again afterwards; tracing's whole syntax;
//! class protection and the dry run.

use std::sync::atomic::{AtomicU32, Ordering};

use dynkey_tracing::dynkey::{Op, control};
use dynkey_tracing::{debug, error, info, trace, warn};

use crate::capture::{Seen, setup, take};
use crate::global;

/// Arguments evaluated by `load`'s debug site.
static EVALUATED: AtomicU32 = AtomicU32::new(0);

fn counted(v: u32) -> u32 {
    EVALUATED.fetch_add(1, Ordering::Relaxed);
    v
}

const LOAD_LINE: u32 = line!() + 6;

/// One DEBUG site inside a span (a span of tracing's own, INFO).
fn load(rows: u32) {
    let span = tracing::info_span!("request", id = 7);
    let _in = span.enter();
    debug!(rows = counted(rows), "loaded {} rows", rows);
}

const NEVER_LINE: u32 = line!() + 4;

#[allow(dead_code)]
fn never_runs(x: u32) {
    trace!(x, "never run {}", x);
}

/// Events of `load`, checked to be exactly what the site writes.
fn loads() -> Vec<u32> {
    take("api::macros")
        .into_iter()
        .map(|s| {
            assert_eq!(s.level, tracing::Level::DEBUG);
            assert_eq!(s.module.as_deref(), Some("api::macros"));
            assert!(s.file.as_deref().unwrap().ends_with("tests/api/macros.rs"));
            assert_eq!(s.line, Some(LOAD_LINE), "the callsite's own line");
            assert_eq!(s.spans, ["request"], "inside the current span");
            let rows: u32 = s.field("rows").unwrap().parse().unwrap();
            assert_eq!(
                s.field("message"),
                Some(format!("loaded {rows} rows").as_str())
            );
            assert_eq!(s.fields.len(), 2, "{:?}", s.fields);
            rows
        })
        .collect()
}

#[test]
fn sites_are_listed_before_they_run() {
    setup();
    let listing = control().listing_string();
    let file = file!();
    assert!(
        listing.contains(&format!(
            "{file}:{NEVER_LINE} [api::macros]never_runs =_ \"never run {{}}\" class:TRACE\n"
        )),
        "{listing}"
    );
    let row = control()
        .sites()
        .into_iter()
        .find(|r| r.line == NEVER_LINE && r.file == file)
        .expect("listed");
    assert_eq!(row.func, "never_runs");
    assert_ne!(
        row.kind,
        dynkey_tracing::dynkey::RowKind::Tracing,
        "a compiled-in site"
    );
}

#[test]
fn a_site_is_off_until_a_query_names_its_class_and_off_again_after() {
    setup();
    let _g = global();
    let c = control();
    let before = EVALUATED.load(Ordering::Relaxed);
    load(1);
    assert_eq!(loads(), Vec::<u32>::new(), "DEBUG is off by default");
    assert_eq!(
        EVALUATED.load(Ordering::Relaxed),
        before,
        "a site that is off evaluates nothing"
    );

    // Class protection: a classless query selects none of these sites.
    let r = c.exec("module api::macros +p").unwrap();
    assert_eq!((r.matched, r.changed), (0, 0));
    let dry = c.dry_run(&Op::query("module api::macros +p")).unwrap();
    assert!(
        dry.protected >= 3,
        "the dry run says which class'd sites it left alone: {dry:?}"
    );
    load(2);
    assert_eq!(loads(), Vec::<u32>::new());

    for (on, off) in [
        (
            "module api::macros class DEBUG +p",
            "module api::macros class DEBUG -p",
        ),
        ("func load class DEBUG +p", "func load class DEBUG -p"),
        (
            "format \"loaded {} rows\" class DEBUG +p",
            "format loaded class DEBUG -p",
        ),
    ] {
        let r = c.exec(on).unwrap();
        assert_eq!(r.changed, 1, "{on}");
        load(3);
        load(4);
        assert_eq!(loads(), [3, 4], "{on}");
        c.exec(off).unwrap();
        load(5);
        assert_eq!(loads(), Vec::<u32>::new(), "{off}");
    }

    // The level param: the process's RUST_LOG in one write.
    let p = c.set_param("tracing.level", "4").unwrap();
    assert_eq!(p.value, "4");
    load(6);
    assert_eq!(loads(), [6]);
    c.set_param("tracing.level", "3").unwrap();
    load(7);
    assert_eq!(loads(), Vec::<u32>::new());
    assert_eq!(
        EVALUATED.load(Ordering::Relaxed),
        before + 7,
        "arguments are evaluated only when the site is on (3 x 2 + 1 loads)"
    );
}

mod syntax {
    //! Every form of tracing's syntax, under target `api::syntax`.
    use super::*;

    pub struct Point {
        pub x: i32,
    }

    impl std::fmt::Display for Point {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "({})", self.x)
        }
    }

    pub fn forms(parent: &tracing::Span) {
        let (user, p) = ("ann", Point { x: 3 });
        let r#type = 9;
        trace!("plain {} {}", 1, "two");
        debug!(user, ?p.x, %p, "fields first {}", 3);
        info!(a.b = 1, "c.d" = 2, e = ?Some(4), f = %p);
        warn!({ g = 5 }, "braced");
        error!(name: "named", target: "api::syntax::custom", parent: parent, h = 6, "targeted");
        debug!(parent: parent, r#type, "raw ident");
        info!(
            sum = [1, 2].iter().map(|x| x * 10).sum::<i32>(),
            "generic {}", user
        );
    }
}

#[test]
fn tracing_syntax_passes_through() {
    setup();
    let _g = global();
    let c = control();
    let parent = tracing::info_span!("parent");
    let listing = c.listing_string();
    for row in [
        "]forms =_ \"plain {} {}\" class:TRACE",
        "]forms =_ \"fields first {}\" class:DEBUG",
        "]forms =p \"\" class:INFO",
        "]forms =p \"braced\" class:WARN",
        "[api::syntax::custom]forms =p \"targeted\" class:ERROR",
        "]forms =_ \"raw ident\" class:DEBUG",
        "]forms =p \"generic {}\" class:INFO",
    ] {
        assert!(listing.contains(row), "{row} in\n{listing}");
    }
    c.exec("module api::macros::syntax class TRACE +p; module api::macros::syntax class DEBUG +p")
        .unwrap();
    syntax::forms(&parent);
    c.exec("module api::macros::syntax class TRACE -p; module api::macros::syntax class DEBUG -p")
        .unwrap();
    let seen = take("api::");
    let show = |s: &Seen| {
        format!(
            "{} {} {:?} {}",
            s.target,
            s.level,
            s.spans,
            s.fields.join(" ")
        )
    };
    let seen: Vec<String> = seen.iter().map(show).collect();
    assert_eq!(
        seen,
        [
            "api::macros::syntax TRACE [] message=plain 1 two",
            "api::macros::syntax DEBUG [] message=fields first 3 user=ann p.x=3 p=(3)",
            "api::macros::syntax INFO [] a.b=1 c.d=2 e=Some(4) f=(3)",
            "api::macros::syntax WARN [] message=braced g=5",
            "api::syntax::custom ERROR [\"parent\"] message=targeted h=6",
            "api::macros::syntax DEBUG [\"parent\"] message=raw ident type=9",
            "api::macros::syntax INFO [] message=generic ann sum=30",
        ]
    );
}
