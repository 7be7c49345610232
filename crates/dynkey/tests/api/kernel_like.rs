//! The sites of `fixtures/kernel-like.json`, compiled in as real callsites
//! (each tested by an inline site) with the fixture's metadata.

use dynkey::{__pr_debug_described as site, class_map};

class_map!(pub static DRM_DEBUG = disjoint_bits(param = "drm.debug", base = 0, modules = ["drm", "i915"]) {
    DRM_UT_CORE, DRM_UT_DRIVER, DRM_UT_KMS, DRM_UT_PRIME, DRM_UT_ATOMIC,
    DRM_UT_VBL, DRM_UT_STATE, DRM_UT_LEASE, DRM_UT_DP, DRM_UT_DRMRES,
});
class_map!(pub static LVLMOD_VERBOSE = level_num(param = "lvlmod.verbose", base = 10, modules = ["lvlmod"]) {
    V0, V1, V2, V3,
});

/// Runs fixture site `n` (1-based); true if it printed.
pub fn run(n: usize) -> bool {
    match n {
        1 => site!(
            module = "virtio_net",
            file = "drivers/net/virtio_net.c",
            func = "virtnet_probe",
            line = 120,
            class = None,
            "probe start\n"
        ),
        2 => site!(
            module = "virtio_net",
            file = "drivers/net/virtio_net.c",
            func = "virtnet_probe",
            line = 145,
            class = None,
            "features: 0x%llx\n"
        ),
        3 => site!(
            module = "virtio_net",
            file = "drivers/net/virtio_net.c",
            func = "virtnet_poll",
            line = 410,
            class = None,
            "poll budget=%d\n"
        ),
        4 => site!(
            module = "virtio_blk",
            file = "drivers/block/virtio_blk.c",
            func = "virtblk_probe",
            line = 88,
            class = None,
            "virtblk: probe %s\n"
        ),
        5 => site!(
            module = "e1000e",
            file = "drivers/net/ethernet/intel/e1000e/netdev.c",
            func = "e1000_open",
            line = 50,
            class = None,
            "link up: speed %d\n"
        ),
        6 => site!(
            module = "e1000e",
            file = "drivers/net/ethernet/intel/e1000e/netdev.c",
            func = "e1000_close",
            line = 75,
            class = None,
            "link down\n"
        ),
        7 => site!(
            module = "e1000e",
            file = "drivers/net/ethernet/intel/e1000e/ethtool.c",
            func = "e1000_get_stats",
            line = 12,
            class = None,
            "stats: rx %lu tx %lu\n"
        ),
        8 => site!(
            module = "params",
            file = "kernel/params.c",
            func = "parse_one",
            line = 130,
            class = None,
            "handling %s with %p\n"
        ),
        9 => site!(
            module = "params",
            file = "kernel/params.c",
            func = "parse_args",
            line = 160,
            class = None,
            "doing %s, parsing ARGS: '%s'\n"
        ),
        10 => site!(
            module = "drm",
            file = "drivers/gpu/drm/drm_drv.c",
            func = "drm_dev_register",
            line = 1050,
            class = None,
            "registered \"%s\" minor %d\n"
        ),
        11 => site!(
            module = "drm",
            file = "drivers/gpu/drm/drm_print.c",
            func = "drm_core_init",
            line = 200,
            class = Some(DRM_UT_CORE.name()),
            "core: init\n"
        ),
        12 => site!(
            module = "drm",
            file = "drivers/gpu/drm/drm_atomic.c",
            func = "drm_atomic_check_only",
            line = 1400,
            class = Some(DRM_UT_KMS.name()),
            "checking %p\n"
        ),
        13 => site!(
            module = "drm",
            file = "drivers/gpu/drm/drm_atomic.c",
            func = "drm_atomic_commit",
            line = 1500,
            class = Some(DRM_UT_ATOMIC.name()),
            "committing %p\n"
        ),
        14 => site!(
            module = "i915",
            file = "drivers/gpu/drm/i915/i915_driver.c",
            func = "i915_driver_probe",
            line = 700,
            class = Some(DRM_UT_DRIVER.name()),
            "i915 probe: %s\n"
        ),
        15 => site!(
            module = "i915",
            file = "drivers/gpu/drm/i915/display/intel_display.c",
            func = "intel_modeset_init",
            line = 8000,
            class = Some(DRM_UT_KMS.name()),
            "\tmodeset: pipe %c\n"
        ),
        16 => site!(
            module = "lvlmod",
            file = "lib/lvlmod.c",
            func = "do_levels",
            line = 60,
            class = Some(V1.name()),
            "V1 msg\n"
        ),
        17 => site!(
            module = "lvlmod",
            file = "lib/lvlmod.c",
            func = "do_levels",
            line = 62,
            class = Some(V3.name()),
            "V3 msg\n"
        ),
        _ => panic!("no fixture site {n}"),
    }
}

/// Every class of the fixture's class maps, in file order (the ten of
/// `drm.debug`, then `lvlmod.verbose`'s). The fixture is the one list of
/// names; the `class_map!`s above must spell them as identifiers.
pub fn classes() -> Vec<String> {
    crate::fixture_json("kernel-like.json")["classmaps"]
        .as_array()
        .expect("the fixture has class maps")
        .iter()
        .flat_map(|m| m["classes"].as_array().expect("a map has classes"))
        .map(|c| c.as_str().expect("a class is a string").to_string())
        .collect()
}

/// Number of fixture sites.
pub const SITES: usize = 17;

/// The listing position of fixture site `n` among all sites of this binary.
pub fn row_of(rows: &[dynkey::SiteRow], n: usize) -> &dynkey::SiteRow {
    let f = &crate::fixture_json("kernel-like.json")["sites"][n - 1];
    rows.iter()
        .find(|r| {
            r.module == f["module"]
                && r.file == f["file"]
                && r.line as u64 == f["line"].as_u64().unwrap()
        })
        .unwrap_or_else(|| panic!("fixture site {n} is not registered"))
}

#[test]
fn compiled_sites_match_the_fixture() {
    let fixture = crate::fixture_json("kernel-like.json");
    let sites = fixture["sites"].as_array().unwrap();
    assert_eq!(sites.len(), SITES);
    let rows = dynkey::control().sites();
    for (i, f) in sites.iter().enumerate() {
        let r = row_of(&rows, i + 1);
        assert_eq!(r.func, f["func"], "site {}", i + 1);
        assert_eq!(r.format, f["format"], "site {}", i + 1);
        assert_eq!(r.class, f["class"].as_str(), "site {}", i + 1);
    }
    let maps = fixture["classmaps"].as_array().unwrap();
    assert_eq!(
        maps[0]["classes"].as_array().unwrap().len(),
        DRM_DEBUG_CLASSES
    );
    assert_eq!(
        dynkey::control().param("drm.debug").as_deref().map(|_| ()),
        Some(())
    );
    assert_eq!(
        dynkey::control()
            .param("lvlmod.verbose")
            .as_deref()
            .map(|_| ()),
        Some(())
    );
}

const DRM_DEBUG_CLASSES: usize = 10;
