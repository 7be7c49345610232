//! One rendezvous per request, read from the process-wide counters in a
//! child process (so no other test can disturb them), and the kernel's
//! class-protection rule.

use dynkey::{control, pr_debug, static_branch_likely, static_branch_unlikely, static_key};
use serde_json::json;

use crate::kernel_like;
use crate::{child, last_json, role};

static_key!(static COUNT_A: bool = false);
static_key!(static COUNT_B: bool = false);

/// Sites for the two keys (a key with no site changes no code).
fn key_sites() -> (bool, bool) {
    (
        static_branch_unlikely!(COUNT_A),
        static_branch_likely!(COUNT_B),
    )
}

/// More class'd sites of module `drm`, so each of the 9 classes of
/// `drm.debug=0x1ff` has at least one site (the fixture covers 4 of them).
fn more_drm_sites() -> usize {
    use crate::kernel_like::{DRM_UT_DP, DRM_UT_LEASE, DRM_UT_PRIME, DRM_UT_STATE, DRM_UT_VBL};
    use dynkey::__pr_debug_described as site;
    [
        site!(
            module = "drm",
            file = "drivers/gpu/drm/drm_prime.c",
            func = "drm_prime_fd",
            line = 10,
            class = Some(DRM_UT_PRIME.name()),
            "prime\n"
        ),
        site!(
            module = "drm",
            file = "drivers/gpu/drm/drm_vblank.c",
            func = "drm_vblank_on",
            line = 20,
            class = Some(DRM_UT_VBL.name()),
            "vbl\n"
        ),
        site!(
            module = "drm",
            file = "drivers/gpu/drm/drm_atomic_state.c",
            func = "drm_state_dump",
            line = 30,
            class = Some(DRM_UT_STATE.name()),
            "state\n"
        ),
        site!(
            module = "drm",
            file = "drivers/gpu/drm/drm_lease.c",
            func = "drm_lease_create",
            line = 40,
            class = Some(DRM_UT_LEASE.name()),
            "lease\n"
        ),
        site!(
            module = "drm",
            file = "drivers/gpu/drm/display/drm_dp_helper.c",
            func = "drm_dp_aux",
            line = 50,
            class = Some(DRM_UT_DP.name()),
            "dp\n"
        ),
    ]
    .iter()
    .filter(|on| **on)
    .count()
}

fn counted_site() {
    pr_debug!("counted");
}

#[test]
fn one_rendezvous_per_exec_batch_and_param_write() {
    let out = child("counts::child_counts", &[("DYNKEY_CHILD", "counts")]);
    let j = last_json(&out);
    assert_eq!(
        j["enable_p"],
        json!([1, 1]),
        "a query that flips p: 1 rendezvous (report, counters)"
    );
    assert_eq!(j["decorations"], json!([0, 0]), "+mf changes no code: 0");
    assert_eq!(j["p_then_unp"], json!([0, 0]), "+p; -p in one body: 0");
    assert_eq!(
        j["many_queries"],
        json!([1, 1]),
        "a body of several queries over many sites: 1"
    );
    assert_eq!(j["batch"], json!([1, 1]), "a batch of two keys: 1");
    assert_eq!(j["param_bits"], 9, "0x1ff turns on 9 classes");
    assert_eq!(
        j["param"],
        json!([1, 1]),
        "a param write touching 9 classes: 1"
    );
    assert_eq!(j["kernel_way"], 9, "one query per bit, the kernel's way: 9");
    assert_eq!(
        j["protected"], true,
        "a classless -p leaves class'd sites alone"
    );
    assert_eq!(
        j["total_matches_reports"], true,
        "the counter equals the sum of reported rendezvous"
    );
}

/// Child: runs the requests and prints (report, counter delta) pairs.
#[test]
#[ignore = "run by one_rendezvous_per_exec_batch_and_param_write in a child process"]
fn child_counts() {
    if role().as_deref() != Some("counts") {
        return;
    }
    struct Quiet;
    impl dynkey::sink::Sink for Quiet {
        fn emit(&self, _: &dynkey::sink::Record<'_>) {}
    }
    dynkey::sink::set_sink(Quiet);
    counted_site();
    let c = control();
    let total = || c.counters().text.rendezvous_total();
    let start = total();
    let mut reported = 0;
    let mut measure = |f: &mut dyn FnMut() -> usize| {
        let before = total();
        let r = f();
        reported += r;
        json!([r, total() - before])
    };
    let enable_p = measure(&mut || c.exec("func counted_site +p").unwrap().rendezvous);
    let decorations = measure(&mut || c.exec("func counted_site +mf").unwrap().rendezvous);
    let p_then_unp = measure(&mut || {
        let r = c
            .exec("func counted_site -p; func counted_site +p")
            .unwrap();
        assert_eq!(r.changed, 0);
        r.rendezvous
    });
    let many_queries = measure(&mut || {
        c.exec("module virtio* +p\nmodule e1000e +p; module params +pmf")
            .unwrap()
            .rendezvous
    });
    let batch = measure(&mut || {
        let r = dynkey::batch(|b| {
            b.enable(&COUNT_A).enable(&COUNT_B);
        })
        .unwrap();
        assert_eq!(key_sites(), (true, true));
        r.rendezvous
    });
    let mut bits = 0;
    let param = measure(&mut || {
        let r = c.set_param("drm.debug", "0x1ff").unwrap();
        bits = r
            .value
            .trim_start_matches("0x")
            .chars()
            .map(|d| d.to_digit(16).unwrap().count_ones())
            .sum::<u32>();
        r.rendezvous
    });
    reported += c.set_param("drm.debug", "0").unwrap().rendezvous;
    // The kernel's way: one query per class bit.
    let before = total();
    for class in &kernel_like::classes()[..9] {
        let r = c.exec(format!("class {class} +p")).unwrap();
        reported += r.rendezvous;
    }
    let kernel_way = total() - before;
    assert_eq!(more_drm_sites(), 5, "the extra class'd sites are on");
    // Protection: a classless -p must not clear class'd sites (11-15 are class'd).
    reported += c.exec("-p").unwrap().rendezvous;
    let protected = kernel_like::run(12) && kernel_like::run(15) && !kernel_like::run(1);
    println!(
        "{}",
        json!({
            "enable_p": enable_p, "decorations": decorations, "p_then_unp": p_then_unp,
            "many_queries": many_queries, "batch": batch, "param_bits": bits, "param": param,
            "kernel_way": kernel_way, "protected": protected,
            "total_matches_reports": total() - start == reported as u64,
            "rendezvous_total": total(),
        })
    );
}
