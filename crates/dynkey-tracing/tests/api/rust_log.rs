//! Property tests of the `RUST_LOG` reader: it never panics, accounts for
//! every directive, produces operations dynkey accepts, and gives each
//! module the level of the most specific directive covering it (on `::`
//! boundaries), else the global one, as checked by replaying its
//! operations with dynkey's own query matcher on a model of the sites.

use dynkey_query::{Flags, SiteInfo};
use dynkey_tracing::dynkey::{OpKind, control};
use dynkey_tracing::levels::CLASSES;
use dynkey_tracing::rust_log::baseline;
use proptest::prelude::*;

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Module paths over a small alphabet, so targets and modules overlap.
fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "ab"]), 1..4)
        .prop_map(|segs| segs.join("::"))
}

/// A valid directive: (target or None, level 0-5), and how it is written.
fn directive() -> impl Strategy<Value = (Option<String>, u8, String)> {
    (prop::option::of(path()), 0u8..6, any::<bool>()).prop_map(|(t, l, numeric)| {
        let level = if numeric {
            l.to_string()
        } else {
            LEVELS[l as usize].to_uppercase()
        };
        let text = match &t {
            Some(t) => format!("{t}={level}"),
            None => level,
        };
        (t, l, text)
    })
}

/// The level the directives give `module` (EnvFilter's rule, on `::`
/// boundaries): the longest covering target, the later on ties, else the
/// last bare level, else off.
fn expected(dirs: &[(Option<String>, u8, String)], module: &str) -> u8 {
    let covering = dirs.iter().filter_map(|(t, l, _)| {
        let t = t.as_deref()?;
        (module == t || module.starts_with(&format!("{t}::"))).then_some((t.len(), *l))
    });
    let mut best: Option<(usize, u8)> = None;
    for (len, l) in covering {
        if best.is_none_or(|(b, _)| len >= b) {
            best = Some((len, l));
        }
    }
    match best {
        Some((_, l)) => l,
        None => dirs
            .iter()
            .rev()
            .find(|(t, ..)| t.is_none())
            .map_or(0, |(_, l, _)| *l),
    }
}

/// The level the operations give `module`: replays them on its five
/// class'd sites (the param turns on the first N classes).
fn replayed(ops: &[dynkey_tracing::dynkey::Op], module: &str) -> u8 {
    let mut on = [false; 5];
    for op in ops {
        match &op.kind {
            OpKind::Param { value, .. } => {
                let n: usize = value.parse().unwrap();
                for (i, o) in on.iter_mut().enumerate() {
                    *o = i < n;
                }
            }
            OpKind::Query(body) => {
                for q in dynkey_query::parse(body.as_bytes()).unwrap() {
                    for (i, class) in CLASSES.iter().enumerate() {
                        let site = SiteInfo {
                            module,
                            file: "f.rs",
                            func: "",
                            line: 1,
                            format: b"",
                            class: Some(class),
                        };
                        if q.matches(&site) {
                            let old = if on[i] { Flags::P } else { Flags::EMPTY };
                            on[i] = q.op().apply(old).contains(Flags::P);
                        }
                    }
                }
            }
            other => panic!("unexpected operation {other:?}"),
        }
    }
    assert!(
        on.windows(2).all(|w| w[0] || !w[1]),
        "levels turn on a prefix of the classes: {on:?}"
    );
    on.iter().filter(|o| **o).count() as u8
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_read_without_panicking_and_every_piece_is_accounted_for(s in "[a-z:=,\\[\\]/ 0-9A-Z]{0,40}") {
        let b = baseline(Some(&s));
        let pieces = s.split(',').filter(|p| !p.trim().is_empty()).count();
        prop_assert_eq!(b.directives.len() + b.errors.len(), pieces);
        prop_assert_eq!(b.ops.len(), 1 + b.directives.iter().filter(|d| d.target.is_some()).count());
        for op in &b.ops {
            prop_assert!(control().check_op(op).is_ok(), "dynkey refuses {}", op);
        }
    }

    #[test]
    fn each_module_gets_the_most_specific_level(
        dirs in prop::collection::vec(directive(), 1..6),
        modules in prop::collection::vec(path(), 1..6),
    ) {
        let spec = dirs.iter().map(|d| d.2.as_str()).collect::<Vec<_>>().join(",");
        let b = baseline(Some(&spec));
        prop_assert!(b.errors.is_empty(), "{:?}", b.errors);
        for m in &modules {
            prop_assert_eq!(replayed(&b.ops, m), expected(&dirs, m), "module {} under {}", m, spec);
        }
    }
}
