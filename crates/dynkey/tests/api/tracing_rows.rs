//! Rows of kind `tracing` (registered by a tracing filter at run time), in
//! a child process, so no other test sees them: listed with their kind,
//! class'd, switched by queries with no rendezvous, the hook called after
//! a change and not after a registration, dynkey's own callsites never
//! listed twice, and nothing registered on a bad class.

use std::sync::atomic::{AtomicUsize, Ordering};

use dynkey::{
    ClassMapKind, ClassMapSpec, Error, Op, RowKind, TracingRow, TracingSpec, control, pr_debug,
};
use serde_json::json;

use crate::{child, last_json, role};

const OWN_LINE: u32 = line!() + 4;

#[allow(dead_code)]
fn own_site() {
    pr_debug!("own site");
}

static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

fn hook() {
    HOOK_CALLS.fetch_add(1, Ordering::Relaxed);
}

fn spec(target: &'static str, line: u32, class: &'static str) -> TracingSpec {
    TracingSpec {
        target,
        file: Some("src/x.rs"),
        line: Some(line),
        format: "message rows".into(),
        class,
    }
}

#[test]
#[ignore]
fn child_rows() {
    if role().as_deref() != Some("tracing_rows") {
        return;
    }
    let c = control();
    c.register(
        vec![ClassMapSpec {
            param: "trows.level".into(),
            kind: ClassMapKind::LevelNum,
            base: 0,
            classes: vec!["TR_ERROR".into(), "TR_DEBUG".into()],
            modules: vec!["*".into()],
            flags: "p".into(),
        }],
        vec![],
    )
    .unwrap();
    c.on_tracing_change(hook);
    let sites = c.site_count();

    // A class no map knows: an error naming it, and nothing registered.
    let err = c
        .register_tracing(vec![spec("x::y", 1, "TR_DEBUG"), spec("x::y", 2, "NOPE")])
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { entry: 1, field: "class", reason, .. } if reason.contains("NOPE")),
        "{err:?}"
    );
    assert_eq!(c.site_count(), sites);

    let rows = c
        .register_tracing(vec![
            spec("x::y", 3, "TR_DEBUG"),
            TracingSpec {
                target: "api::tracing_rows",
                file: Some(file!()),
                line: Some(OWN_LINE),
                format: "message".into(),
                class: "TR_DEBUG",
            },
            spec("with space", 4, "TR_ERROR"),
        ])
        .unwrap();
    assert!(matches!(rows[0], TracingRow::Row(_)));
    assert!(
        matches!(rows[1], TracingRow::Own(cs) if cs.line() == OWN_LINE && cs.format() == "own site"),
        "the pr_debug! site at that place: {:?}",
        rows[1]
    );
    assert_eq!(
        c.site_count(),
        sites + 2,
        "two rows, the own site not again"
    );
    assert_eq!(
        HOOK_CALLS.load(Ordering::Relaxed),
        0,
        "registering runs no hook"
    );

    let listing = c.listing_string();
    assert!(
        listing.contains("\nsrc/x.rs:3 [x::y] =_ \"message rows\" class:TR_DEBUG kind:tracing\n"),
        "{listing}"
    );
    assert!(
        listing.contains("[with_space] =_"),
        "whitespace becomes _: {listing}"
    );
    let row = c.sites().into_iter().find(|r| r.module == "x::y").unwrap();
    assert_eq!((row.kind, row.func), (RowKind::Tracing, ""));
    assert_eq!(c.tracing_rows(), (2, 0));

    // Class protection, and the dry run counting the rows it left alone.
    assert_eq!(c.exec("module x::* +p").unwrap().matched, 0);
    let dry = c.dry_run(&Op::query("module x::* +p")).unwrap();
    assert_eq!((dry.matched, dry.protected), (0, 1));

    let r = c.exec("module x::* class TR_DEBUG +p").unwrap();
    assert_eq!((r.changed, r.rendezvous), (1, 0), "a row is data");
    let cs = rows[0].callsite();
    assert!(cs.is_enabled());
    assert_eq!(
        HOOK_CALLS.load(Ordering::Relaxed),
        1,
        "called before exec returned"
    );
    assert_eq!(c.tracing_rows(), (1, 1));
    let r = c.exec("module x::* class TR_DEBUG +p").unwrap();
    assert_eq!(r.changed, 0);
    assert_eq!(
        HOOK_CALLS.load(Ordering::Relaxed),
        1,
        "nothing changed: no call"
    );

    // A row registered late gets the effective state, quietly.
    let late = c
        .register_tracing(vec![spec("x::z", 5, "TR_DEBUG")])
        .unwrap();
    assert!(late[0].callsite().is_enabled(), "the query above covers it");
    assert_eq!(HOOK_CALLS.load(Ordering::Relaxed), 1);

    let p = c.set_param("trows.level", "0").unwrap();
    assert_eq!(p.rendezvous, 0);
    c.exec("class TR_DEBUG -p").unwrap();
    assert!(!cs.is_enabled() && !late[0].callsite().is_enabled());
    assert_eq!(HOOK_CALLS.load(Ordering::Relaxed), 2);
    println!("{}", json!({"ok": true}));
}

#[test]
fn tracing_rows_are_listed_switched_and_announced() {
    let out = child(
        "tracing_rows::child_rows",
        &[("DYNKEY_CHILD", "tracing_rows")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(last_json(&out), json!({"ok": true}));
}
