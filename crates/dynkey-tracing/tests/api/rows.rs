//! Every other tracing callsite (here: tracing's own macros, standing for
//! another crate's) as a row of kind `tracing`: listed once tracing
//! registered it, class'd by level, switched by queries with no
//! rendezvous; and dynkey's own callsites (this crate's macros, the
//! `pr_debug!` bridge) listed once.

use dynkey_tracing::dynkey::{Op, RowKind, control, pr_debug, sink};

use crate::capture::{setup, take};
use crate::global;

const QUERY_LINE: u32 = line!() + 3;

fn thirdparty_query(rows: u32) {
    tracing::debug!(target: "thirdparty::db", rows, "query ran");
}

fn thirdparty_span() {
    let span = tracing::debug_span!(target: "thirdparty::span", "work", job = 1);
    let _in = span.enter();
    tracing::info!(target: "thirdparty::span", "inside");
}

fn rows_of(module: &str) -> Vec<String> {
    control()
        .listing_string()
        .lines()
        .filter(|l| l.contains(&format!("[{module}]")))
        .map(str::to_string)
        .collect()
}

fn queries() -> Vec<String> {
    take("thirdparty::db")
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s.field("message").unwrap(),
                s.field("rows").unwrap()
            )
        })
        .collect()
}

#[test]
fn rows_appear_once_registered_and_switch_with_queries() {
    setup();
    let _g = global();
    let c = control();
    assert_eq!(
        rows_of("thirdparty::db"),
        Vec::<String>::new(),
        "tracing has not registered it yet"
    );
    thirdparty_query(1);
    assert_eq!(queries(), Vec::<String>::new(), "DEBUG is off");
    assert_eq!(
        rows_of("thirdparty::db"),
        [format!(
            "{}:{QUERY_LINE} [thirdparty::db] =_ \"message rows\" class:DEBUG kind:tracing",
            file!()
        )]
    );
    let row = c
        .sites()
        .into_iter()
        .find(|r| r.module == "thirdparty::db")
        .unwrap();
    assert_eq!(
        (row.kind, row.func, row.class),
        (RowKind::Tracing, "", Some("DEBUG"))
    );
    assert_eq!(row.kind.as_str(), "tracing");

    // Class protection, and the dry run saying why.
    let r = c.exec("module thirdparty* +p").unwrap();
    assert_eq!((r.matched, r.changed), (0, 0), "rows are class'd");
    let dry = c.dry_run(&Op::query("module thirdparty* +p")).unwrap();
    assert!(dry.protected >= 1, "{dry:?}");

    let (off_before, on_before) = c.tracing_rows();
    let r = c.exec("module thirdparty::db class DEBUG +p").unwrap();
    assert_eq!(
        (r.matched, r.changed, r.rendezvous),
        (1, 1, 0),
        "a row is data: no code changes"
    );
    assert_eq!(c.tracing_rows(), (off_before - 1, on_before + 1));
    thirdparty_query(2);
    thirdparty_query(3);
    assert_eq!(queries(), ["query ran 2", "query ran 3"]);
    assert!(rows_of("thirdparty::db")[0].contains(" =p \"message rows\""));

    c.exec("module thirdparty::db class DEBUG -p").unwrap();
    thirdparty_query(4);
    assert_eq!(queries(), Vec::<String>::new(), "off again");

    // The level param reaches rows too.
    c.set_param("tracing.level", "4").unwrap();
    thirdparty_query(5);
    c.set_param("tracing.level", "3").unwrap();
    thirdparty_query(6);
    assert_eq!(queries(), ["query ran 5"]);
}

#[test]
fn spans_are_rows_and_events_inside_them_carry_them() {
    setup();
    let _g = global();
    let c = control();
    thirdparty_span();
    let spans = |v: Vec<crate::capture::Seen>| -> Vec<Vec<String>> {
        v.into_iter().map(|s| s.spans).collect()
    };
    assert_eq!(
        spans(take("thirdparty::span")),
        [Vec::<String>::new()],
        "the INFO event passes, the DEBUG span does not"
    );
    assert!(
        rows_of("thirdparty::span")
            .iter()
            .any(|r| r.ends_with(" =_ \"work\" class:DEBUG kind:tracing")),
        "a span's row shows its name: {:?}",
        rows_of("thirdparty::span")
    );
    c.exec("module thirdparty::span class DEBUG +p").unwrap();
    thirdparty_span();
    c.exec("module thirdparty::span class DEBUG -p").unwrap();
    assert_eq!(spans(take("thirdparty::span")), [["work"]]);
}

const OURS_LINE: u32 = line!() + 3;

fn ours(n: u32) {
    dynkey_tracing::info!(n, "ours");
}

const BRIDGED_LINE: u32 = line!() + 3;

fn bridged(n: u32) {
    pr_debug!("bridged {}", n);
}

fn rows_at(line: u32) -> Vec<String> {
    let at = format!("{}:{line} ", file!());
    control()
        .listing_string()
        .lines()
        .filter(|l| l.starts_with(&at))
        .map(str::to_string)
        .collect()
}

#[test]
fn own_callsites_are_listed_once() {
    setup();
    let _g = global();
    ours(1);
    let seen = take("api::rows");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].field("message"), Some("ours"));
    assert_eq!(
        rows_at(OURS_LINE),
        [format!(
            "{}:{OURS_LINE} [api::rows]ours =p \"ours\" class:INFO",
            file!()
        )],
        "the compiled-in site only, though tracing registered its event's callsite"
    );

    sink::set_sink(sink::TracingSink);
    control().exec("func bridged +p").unwrap();
    bridged(2);
    control().exec("func bridged -p").unwrap();
    sink::reset_sink();
    let seen = take("api::rows");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].field("message"), Some("bridged 2"));
    assert_eq!(seen[0].line, Some(BRIDGED_LINE));
    assert_eq!(
        rows_at(BRIDGED_LINE).len(),
        1,
        "{:?}",
        rows_at(BRIDGED_LINE)
    );
}
