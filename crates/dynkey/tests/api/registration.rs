//! Items of another crate of the binary register; sites that never ran are
//! listed; the listing order is stable.

use dynkey::control;

#[test]
fn keys_calls_and_callsites_of_another_crate_register() {
    let c = control();
    let keys = c.keys();
    let key = keys
        .iter()
        .find(|k| k.name == "SAMPLE_NEW_PRICING")
        .expect("the sample crate's key is registered");
    assert!(
        key.defined_at
            .starts_with("crates/dynkey-sample/src/lib.rs:"),
        "{}",
        key.defined_at
    );
    assert_eq!(key.path, "dynkey_sample::SAMPLE_NEW_PRICING");
    assert!(key.sites >= 1, "its static branch is a site: {key:?}");
    let calls = c.calls();
    let call = calls
        .iter()
        .find(|c| c.name == "SAMPLE_PRICE")
        .expect("the sample crate's static call is registered");
    assert_eq!(call.targets, vec!["list_price", "discounted"]);
    assert!(
        c.param("sample.debug").is_some(),
        "the sample crate's class map is registered"
    );
    let listing = c.listing_string();
    assert!(
        listing.contains("[dynkey_sample]price =_ \"pricing {} cents\""),
        "{listing}"
    );
    assert!(
        listing.contains("[dynkey_sample]price =_ \"core pricing path\" class:SAMPLE_CORE"),
        "{listing}"
    );
}

#[test]
fn sites_that_never_ran_are_listed() {
    // dynkey_sample::never_called is never called by anyone.
    assert!(
        control()
            .listing_string()
            .contains("[dynkey_sample]never_called =_ \"this callsite never runs\"")
    );
}

#[test]
fn listing_order_is_stable() {
    let a: Vec<_> = control()
        .sites()
        .into_iter()
        .map(|s| (s.file, s.line))
        .collect();
    let b: Vec<_> = control()
        .sites()
        .into_iter()
        .map(|s| (s.file, s.line))
        .collect();
    assert_eq!(a, b);
    let compiled: Vec<_> = a.iter().filter(|(f, _)| f.ends_with(".rs")).collect();
    assert!(
        compiled.windows(2).all(|w| w[0] <= w[1]),
        "compiled-in sites are listed by file and line"
    );
}

#[test]
fn another_crates_key_and_call_switch_from_here() {
    let _g = crate::global();
    assert_eq!(dynkey_sample::price(1000), 1000);
    let r = dynkey::batch(|b| {
        b.enable(&dynkey_sample::SAMPLE_NEW_PRICING)
            .set_call(&dynkey_sample::SAMPLE_PRICE, 1);
    })
    .unwrap();
    assert_eq!(r.rendezvous, 1, "a key and a call, one commit");
    assert_eq!(dynkey_sample::price(1000), 901);
    control().set_keys([("SAMPLE_NEW_PRICING", false)]).unwrap();
    control().set_call("SAMPLE_PRICE", "list_price").unwrap();
    assert_eq!(dynkey_sample::price(1000), 1000);
}

#[test]
fn unknown_names_are_errors_and_change_nothing() {
    // Serialized: another test switches SAMPLE_NEW_PRICING.
    let _g = crate::global();
    let c = control();
    let before = dynkey_sample::SAMPLE_NEW_PRICING.is_enabled();
    let err = c
        .set_keys([("SAMPLE_NEW_PRICING", !before), ("NO_SUCH_KEY", true)])
        .unwrap_err();
    assert_eq!(err, dynkey::Error::UnknownKey("NO_SUCH_KEY".into()));
    assert_eq!(err.category(), "E_UNKNOWN_KEY");
    assert_eq!(
        dynkey_sample::SAMPLE_NEW_PRICING.is_enabled(),
        before,
        "nothing applied"
    );
    assert_eq!(
        c.set_call("NO_SUCH_CALL", "x").unwrap_err().category(),
        "E_NOT_FOUND"
    );
    assert!(matches!(
        c.set_call("SAMPLE_PRICE", "nope").unwrap_err(),
        dynkey::Error::UnknownTarget { .. }
    ));
    assert_eq!(
        c.set_param("no.such", "1").unwrap_err(),
        dynkey::Error::UnknownParam("no.such".into())
    );
    assert!(matches!(
        c.set_param("sample.debug", "abc").unwrap_err(),
        dynkey::Error::BadParam { .. }
    ));
}
