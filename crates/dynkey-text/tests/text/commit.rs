//! What a commit does to each kind of site, in this process (whatever the
//! environment chose: these assertions hold for patched and atomic kinds).

use dynkey_text::{
    Change, RawKey, RuntimeCall, SiteKind, ValueSite, branch_likely, branch_unlikely, commit,
};

static UNLIKELY: RawKey = RawKey::new(false);
static LIKELY: RawKey = RawKey::new(true);
static SKIPPED: RawKey = RawKey::new(false);
static TWICE: RawKey = RawKey::new(false);
static STUBBED: RawKey = RawKey::new(false);

#[inline(never)]
fn unlikely_site() -> bool {
    branch_unlikely!(UNLIKELY)
}

#[inline(never)]
fn likely_site() -> bool {
    branch_likely!(LIKELY)
}

#[inline(never)]
fn skipped_site() -> bool {
    branch_unlikely!(SKIPPED)
}

#[inline(never)]
fn twice_site() -> bool {
    branch_unlikely!(TWICE)
}

dynkey_text::link_value_stub!(fn stubbed_value() => STUBBED);

#[test]
fn inline_sites_follow_their_key_both_ways() {
    assert!(
        !unlikely_site() && likely_site(),
        "initial states come from the statics"
    );
    let r = commit(&[Change::Key(&UNLIKELY, true), Change::Key(&LIKELY, false)]).unwrap();
    assert!(
        unlikely_site(),
        "unlikely site takes its enabled arm once the commit returned"
    );
    assert!(
        !likely_site(),
        "likely site takes its disabled arm once the commit returned"
    );
    assert!(
        UNLIKELY.is_enabled() && !LIKELY.is_enabled(),
        "states are published"
    );
    assert_eq!(r.keys_changed, 2);
    assert_eq!(r.rendezvous, 1, "two keys, one rendezvous");
    commit(&[Change::Key(&UNLIKELY, false), Change::Key(&LIKELY, true)]).unwrap();
    assert!(!unlikely_site() && likely_site(), "and back");
}

#[test]
fn unchanged_keys_cost_nothing() {
    skipped_site();
    let r = commit(&[Change::Key(&SKIPPED, false)]).unwrap();
    assert_eq!(
        r.rendezvous, 0,
        "a commit that changes no code runs no rendezvous"
    );
    assert_eq!(r.sites_patched_total(), 0);
    assert!(r.sites_skipped >= 1, "the key's site is counted as skipped");
    assert_eq!(
        commit(&[]).unwrap().rendezvous,
        0,
        "an empty commit is free"
    );
}

#[test]
fn last_change_of_a_key_wins() {
    let r = commit(&[
        Change::Key(&TWICE, true),
        Change::Key(&TWICE, false),
        Change::Key(&TWICE, true),
    ])
    .unwrap();
    assert!(twice_site() && TWICE.is_enabled());
    assert_eq!(r.sites_patched_total(), 1, "one site written once");
}

#[test]
fn link_value_stub_returns_the_state() {
    assert_eq!(stubbed_value(), 0);
    commit(&[Change::Key(&STUBBED, true)]).unwrap();
    assert_eq!(stubbed_value(), 1);
    commit(&[Change::Key(&STUBBED, false)]).unwrap();
    assert_eq!(stubbed_value(), 0);
}

fn add(a: u64, b: u64) -> u64 {
    a + b
}
fn mul(a: u64, b: u64) -> u64 {
    a * b
}
dynkey_text::link_call!(static ARITH: fn(a: u64, b: u64) -> u64 = [add, mul]);

#[test]
fn link_call_switches_target() {
    assert_eq!(ARITH.get()(6, 7), 13);
    assert_eq!(ARITH.raw().target_index(), 0);
    let r = commit(&[Change::Call(ARITH.raw(), 1)]).unwrap();
    assert_eq!(ARITH.get()(6, 7), 42);
    assert_eq!(ARITH.raw().target_index(), 1);
    assert_eq!(r.rendezvous, 1);
    let err = commit(&[Change::Call(ARITH.raw(), 2)]).unwrap_err();
    assert_eq!(
        err,
        dynkey_text::Error::NoSuchTarget {
            index: 2,
            targets: 2
        },
        "out-of-range target is a typed error"
    );
    assert_eq!(ARITH.get()(6, 7), 42, "a refused commit changes nothing");
    commit(&[Change::Call(ARITH.raw(), 0)]).unwrap();
    assert_eq!(ARITH.get()(6, 7), 13);
}

#[test]
fn runtime_value_sites_follow_their_key() {
    let key: &'static RawKey = Box::leak(Box::new(RawKey::new(false)));
    let sites: Vec<ValueSite> = (0..100).map(|_| ValueSite::new(key).unwrap()).collect();
    assert!(sites.iter().all(|s| !s.get()));
    let r = commit(&[Change::Key(key, true)]).unwrap();
    assert!(
        sites.iter().all(|s| s.get()),
        "every stub returns the new state"
    );
    assert_eq!(r.rendezvous, 1, "100 stubs, one rendezvous");
    match sites[0].kind() {
        SiteKind::Trampoline => assert_eq!(
            r.sites_patched[SiteKind::Trampoline as usize],
            100,
            "one word per stub"
        ),
        kind => assert_eq!(kind, SiteKind::Atomic),
    }
}

fn three() -> i32 {
    3
}
fn four() -> i32 {
    4
}

#[test]
fn runtime_calls_near_and_far() {
    let near = RuntimeCall::new(&[three as fn() -> i32, four]).unwrap();
    assert_eq!(near.get()(), 3);
    commit(&[Change::Call(near.raw(), 1)]).unwrap();
    assert_eq!(near.get()(), 4);

    // libc's getpid lives in a shared library, normally far more than 2 GiB
    // from stub pages placed near this binary: the stub must use the far
    // (absolute) form rather than truncate a displacement.
    extern "C" fn zero() -> libc::pid_t {
        0
    }
    type Pid = unsafe extern "C" fn() -> libc::pid_t;
    let far = RuntimeCall::new(&[zero as Pid, libc::getpid as Pid]).unwrap();
    // SAFETY: both targets take nothing and have no preconditions.
    assert_eq!(unsafe { far.get()() }, 0);
    commit(&[Change::Call(far.raw(), 1)]).unwrap();
    // SAFETY: as above.
    let called = unsafe { far.get()() };
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    assert_eq!(called, pid, "the far target is called");
}

#[test]
fn no_mapping_is_writable_and_executable() {
    dynkey_text::status().unwrap();
    let _ = ValueSite::new(Box::leak(Box::new(RawKey::new(false)))).unwrap();
    assert_eq!(dynkey_text::testing::wx_mappings(), Vec::<String>::new());
}

#[test]
fn every_compiled_site_fits_in_one_word() {
    // This binary holds thousands of generated sites (workload.rs) besides
    // the ones above: none had to be left atomic for straddling a word.
    let _ = crate::workload::inline_sites();
    let status = dynkey_text::status().unwrap();
    assert_eq!(status.demoted, Vec::<String>::new());
    if status.site_kind == SiteKind::Inline {
        assert!(
            status.taken_over_bytes > 0,
            "the pages holding sites were taken over"
        );
    }
}
