//! Sites and class maps declared by data.

use dynkey::{ClassMapKind, ClassMapSpec, Error, SiteSpec, control};

fn spec(module: &str, func: &str, line: u32, class: Option<&str>) -> SiteSpec {
    SiteSpec {
        module: module.into(),
        file: format!("plugins/{module}.c"),
        func: func.into(),
        line,
        format: format!("{func} says %d\n"),
        class: class.map(Into::into),
    }
}

#[test]
fn registered_sites_are_listed_matched_and_tested_by_stubs() {
    let _g = crate::global();
    let c = control();
    let map = ClassMapSpec {
        param: "plugin_rt.verbose".into(),
        kind: ClassMapKind::LevelNum,
        base: 0,
        classes: vec!["PV0".into(), "PV1".into(), "PV2".into()],
        modules: vec!["plugin_rt".into()],
        flags: "p".into(),
    };
    let sites = c
        .register(
            vec![map],
            vec![
                spec("plugin_rt", "rt_alpha", 10, None),
                spec("plugin_rt", "rt_beta", 20, Some("PV1")),
            ],
        )
        .unwrap();
    assert!(!sites[0].enabled() && !sites[1].enabled());
    let listing = c.listing_string();
    assert!(
        listing.contains("plugins/plugin_rt.c:10 [plugin_rt]rt_alpha =_ \"rt_alpha says %d\\n\""),
        "{listing}"
    );
    assert!(
        listing.contains(
            "plugins/plugin_rt.c:20 [plugin_rt]rt_beta =_ \"rt_beta says %d\\n\" class:PV1"
        ),
        "{listing}"
    );
    let r = c.exec("module plugin_rt +p").unwrap();
    assert_eq!(
        (r.matched, r.changed, r.rendezvous),
        (1, 1, 1),
        "the class'd one is protected"
    );
    assert!(sites[0].enabled() && !sites[1].enabled());
    let p = c.set_param("plugin_rt.verbose", "9").unwrap();
    assert_eq!(p.value, "3", "clamped to the map's 3 levels");
    assert!(sites[1].enabled(), "level 3 turns on PV1");
    assert_eq!(c.param("plugin_rt.verbose").as_deref(), Some("3"));
    let rows: Vec<_> = c
        .sites()
        .into_iter()
        .filter(|s| s.module == "plugin_rt")
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].kind,
        if sites[0].stub_addr().is_some() {
            dynkey::SiteKind::Trampoline
        } else {
            dynkey::SiteKind::Atomic
        }
    );
}

#[test]
fn bad_entries_are_named_and_nothing_is_registered() {
    // Serialized: site_count must not move because of another test.
    let _g = crate::global();
    let c = control();
    let before = c.site_count();
    let err = c
        .register(
            vec![],
            vec![
                spec("plugin_bad", "ok_fn", 1, None),
                spec("plugin_bad", "bad_fn", 2, Some("NO_SUCH_CLASS")),
            ],
        )
        .unwrap_err();
    match &err {
        Error::Invalid {
            what, entry, field, ..
        } => assert_eq!((*what, *entry, *field), ("site", 1, "class")),
        e => panic!("{e:?}"),
    }
    assert!(err.to_string().contains("NO_SUCH_CLASS"), "{err}");
    let err = c
        .register(vec![], vec![spec("", "f", 1, None)])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                field: "module",
                entry: 0,
                ..
            }
        ),
        "{err:?}"
    );
    let dup = ClassMapSpec {
        param: "drm.debug".into(),
        kind: ClassMapKind::DisjointBits,
        base: 0,
        classes: vec!["X".into()],
        modules: vec!["x".into()],
        flags: "p".into(),
    };
    assert!(matches!(
        c.register(vec![dup], vec![]).unwrap_err(),
        Error::Invalid { field: "param", .. }
    ));
    assert_eq!(
        c.site_count(),
        before,
        "a failed registration registers nothing"
    );
}

/// Registering the same sites again (a plugin reloaded, a table read twice)
/// returns the handles of the first registration: no new rows, no new
/// stubs, nothing leaked per call.
#[test]
fn registering_the_same_site_again_returns_the_existing_one() {
    let _g = crate::global();
    let c = control();
    let specs = || {
        vec![
            spec("plugin_again", "again_a", 1, None),
            spec("plugin_again", "again_b", 2, None),
        ]
    };
    let first = c.register(vec![], specs()).unwrap();
    let rows = |c: &dynkey::Control| {
        c.sites()
            .into_iter()
            .filter(|s| s.module == "plugin_again")
            .count()
    };
    for _ in 0..1_000 {
        let again = c.register(vec![], specs()).unwrap();
        assert_eq!(again.len(), first.len());
        for (a, b) in again.iter().zip(&first) {
            assert_eq!(a.stub_addr(), b.stub_addr(), "the same stub, not a new one");
        }
    }
    assert_eq!(rows(&c), 2, "listed once, however often registered");
    c.exec("module plugin_again +p").unwrap();
    assert!(
        first.iter().all(|s| s.enabled()),
        "the first handles follow changes"
    );
    c.exec("module plugin_again -p").unwrap();
}
