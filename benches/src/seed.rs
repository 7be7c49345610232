//! The seed table: 8,077 unclassed debug callsites spread over modules
//! sized like the kernel's DRM stack (amdgpu 4532, i915 1801, drm 340, ...), the set the
//! kernel's 2026 queued static-key series measured (`echo +p` / `echo -p`
//! over ~8,000 callsites: 16,154 IPIs unbatched, 134 queued and sorted).
//!
//! This file is shared by the build script (which compiles the sites in as
//! inline callsites) and the library (which registers them as run-time
//! trampoline sites), so both kinds describe exactly the same sites. It
//! depends on nothing but `std` for that reason.
//!
//! Sites are listed in the order the registry visits them: compiled-in
//! sites are listed by (file, line), so [`sites`] returns that order, and
//! the run-time registration uses it too.

/// A module of the table: name, source directory, number of callsites.
#[derive(Debug, Clone, Copy)]
pub struct SeedModule {
    /// Module name, as a `module` query names it.
    pub name: &'static str,
    /// Directory of its files.
    pub dir: &'static str,
    /// Callsites in it.
    pub sites: usize,
}

/// The modules: the kernel's DRM sizes, plus `virtio_*` modules bringing the
/// total to [`TOTAL`].
pub const MODULES: [SeedModule; 15] = [
    m("amdgpu", "drivers/gpu/drm/amd/amdgpu", 4532),
    m("i915", "drivers/gpu/drm/i915", 1801),
    m("drm", "drivers/gpu/drm", 340),
    m("drm_display_helper", "drivers/gpu/drm/display", 155),
    m("drm_kms_helper", "drivers/gpu/drm/kms", 89),
    m("i2c_core", "drivers/i2c", 25),
    m("ttm", "drivers/gpu/drm/ttm", 2),
    m("virtio_net", "drivers/net/virtio", 412),
    m("virtio_blk", "drivers/block/virtio", 187),
    m("virtio_pci", "drivers/virtio/pci", 143),
    m("virtio_ring", "drivers/virtio/ring", 121),
    m("virtio_gpu", "drivers/gpu/drm/virtio", 96),
    m("virtio_scsi", "drivers/scsi/virtio", 74),
    m("virtio_console", "drivers/char/virtio", 58),
    m("virtio_balloon", "drivers/virtio/balloon", 42),
];

const fn m(name: &'static str, dir: &'static str, sites: usize) -> SeedModule {
    SeedModule { name, dir, sites }
}

/// Callsites in the table.
pub const TOTAL: usize = 8077;

/// Callsites per generated source file.
const SITES_PER_FILE: usize = 48;
/// Callsites per generated function.
const SITES_PER_FUNC: usize = 4;
/// Line distance between two callsites of a file.
const LINE_STEP: u32 = 20;

/// One callsite of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSite {
    /// Module name.
    pub module: &'static str,
    /// Source file (zero-padded numbers, so text order is numeric order).
    pub file: String,
    /// Enclosing function.
    pub func: String,
    /// Line.
    pub line: u32,
    /// Format string (no `{}`: it is a Rust format literal too).
    pub format: String,
}

/// Every callsite, sorted by (file, line): the registry's visit order.
pub fn sites() -> Vec<SeedSite> {
    let mut out = Vec::with_capacity(TOTAL);
    for module in MODULES {
        for i in 0..module.sites {
            let file = i / SITES_PER_FILE;
            let in_file = i % SITES_PER_FILE;
            out.push(SeedSite {
                module: module.name,
                file: format!("{}/{}_{:03}.c", module.dir, module.name, file),
                func: format!(
                    "{}_{:03}_fn{:02}",
                    module.name,
                    file,
                    in_file / SITES_PER_FUNC
                ),
                line: 100 + LINE_STEP * in_file as u32,
                format: format!("{}: event %d at site {}\n", module.name, i),
            });
        }
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    out
}

/// A permutation of `0..n`, the same for the same `seed` (splitmix64 and
/// Fisher-Yates): the order in which shuffled sites get their addresses.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut next = move || {
        // splitmix64 (Steele, Lea, Flood 2014), the usual seeding generator.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// The seed of the shuffled layout (any fixed value; fixed so runs compare).
pub const SHUFFLE_SEED: u64 = 0x6479_6e6b_6579;
