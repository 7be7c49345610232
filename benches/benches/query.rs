//! dyndbg query costs: parsing a typical body, and matching
//! `module !virtio* +p` against 100,000 sites (target: under 5 ms).
//!
//! Run: `cargo bench -p dynkey-benches --bench query`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use dynkey_query::{SiteInfo, parse};

/// A body like the ones people type: several queries, negation, a quoted
/// format, a file tail, a class and a comment.
const TYPICAL: &[u8] = b"module !virtio* +p; func e1000_open =pmf\n\
file drivers/net/*:100-200 +mf # decorate the net drivers\n\
class DRM_UT_KMS format \"^checking %p\" -p";

/// Module paths shaped like the demo's kernel-sized modules, as Rust paths.
const MODULES: [&str; 12] = [
    "amdgpu::display::dc",
    "amdgpu::gfx",
    "i915::gt::uc",
    "i915::display",
    "drm::atomic",
    "drm_display_helper::dp",
    "drm_kms_helper::probe",
    "i2c_core::smbus",
    "ttm::bo",
    "virtio_net::rx",
    "virtio_blk",
    "virtio_pci::modern",
];

struct OwnedSite {
    module: &'static str,
    file: String,
    func: String,
    line: u32,
    format: String,
}

fn sites(n: usize) -> Vec<OwnedSite> {
    (0..n)
        .map(|i| {
            let module = MODULES[i % MODULES.len()];
            let krate = module.split("::").next().unwrap_or(module);
            OwnedSite {
                module,
                file: format!("drivers/{krate}/file_{}.rs", i % 97),
                func: format!("{krate}_fn_{}", i % 1013),
                line: u32::try_from(i % 5000).unwrap_or(0) + 1,
                format: format!("event {i}: %d\n"),
            }
        })
        .collect()
}

fn info(s: &OwnedSite) -> SiteInfo<'_> {
    SiteInfo {
        module: s.module,
        file: &s.file,
        func: &s.func,
        line: s.line,
        format: s.format.as_bytes(),
        class: None,
    }
}

fn bench_parse(c: &mut Criterion) {
    c.bench_function("parse typical body (4 queries)", |b| {
        b.iter(|| parse(black_box(TYPICAL)).map(|q| q.len()))
    });
    c.bench_function("parse one short query", |b| {
        b.iter(|| parse(black_box(b"module !virtio* +p")).map(|q| q.len()))
    });
}

fn bench_match(c: &mut Criterion) {
    let owned = sites(100_000);
    let infos: Vec<SiteInfo<'_>> = owned.iter().map(info).collect();
    let query = parse(b"module !virtio* +p").expect("valid").remove(0);
    let expected = infos
        .iter()
        .filter(|s| !s.module.starts_with("virtio"))
        .count();
    assert_eq!(infos.iter().filter(|s| query.matches(s)).count(), expected);
    c.bench_function("match module !virtio* +p over 100k sites", |b| {
        b.iter(|| {
            black_box(&infos)
                .iter()
                .filter(|s| query.matches(s))
                .count()
        })
    });
    let func_query = parse(b"func *_fn_1?? format ^event +p")
        .expect("valid")
        .remove(0);
    c.bench_function("match func *_fn_1?? format ^event over 100k sites", |b| {
        b.iter(|| {
            black_box(&infos)
                .iter()
                .filter(|s| func_query.matches(s))
                .count()
        })
    });
}

criterion_group!(benches, bench_parse, bench_match);
criterion_main!(benches);
