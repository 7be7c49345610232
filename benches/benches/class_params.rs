//! Class params: `drm.debug=0x1ff` turns 9 DRM debug classes on in one
//! commit, one rendezvous; the kernel pays one per class bit, which is what
//! the same change costs as 9 `class NAME +p` queries, one request each.
//!
//! Each iteration turns the 9 classes on and then off again (2 param
//! writes, against 18 queries), so every write changes sites; reports
//! halve it. The counts are checked and saved before timing.
//!
//! Run: `cargo bench -p dynkey-benches --bench class_params`.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dynkey::{ClassMapKind, ClassMapSpec, SiteSpec, control};

/// The kernel's DRM debug classes, in bit order (the demo's list).
const CLASSES: &[&str] = dynkey_server::demo::DRM_CLASSES;
/// Bits written: the first 9 classes.
const BITS: usize = 9;
/// Callsites per class.
const PER_CLASS: usize = 100;
const MODULES: [&str; 3] = ["drm", "i915", "amdgpu"];

fn register() {
    let map = ClassMapSpec {
        param: "drm.debug".into(),
        kind: ClassMapKind::DisjointBits,
        base: 0,
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        modules: MODULES.iter().map(|m| m.to_string()).collect(),
        flags: "p".into(),
    };
    let sites = (0..CLASSES.len() * PER_CLASS)
        .map(|i| SiteSpec {
            module: MODULES[i % MODULES.len()].into(),
            file: format!("drivers/gpu/drm/drm_{:02}.c", i / PER_CLASS),
            func: format!("drm_fn_{}", i / 10),
            line: 10 + i as u32,
            format: format!("class'd event {i}\n"),
            class: Some(CLASSES[i / PER_CLASS].into()),
        })
        .collect();
    control()
        .register(vec![map], sites)
        .expect("register class'd sites");
}

/// One param write per direction: returns the rendezvous used.
fn param_cycle() -> usize {
    let c = control();
    let on = c.set_param("drm.debug", "0x1ff").expect("param on");
    let off = c.set_param("drm.debug", "0x0").expect("param off");
    assert_eq!(
        (on.changed, off.changed),
        (BITS * PER_CLASS, BITS * PER_CLASS)
    );
    on.rendezvous + off.rendezvous
}

/// One `class NAME ±p` request per bit and direction.
fn kernel_cycle() -> usize {
    let c = control();
    let mut rendezvous = 0;
    for op in ["+p", "-p"] {
        for class in &CLASSES[..BITS] {
            let r = c.exec(format!("class {class} {op}")).expect("class query");
            assert_eq!(r.changed, PER_CLASS);
            rendezvous += r.rendezvous;
        }
    }
    rendezvous
}

fn benches(c: &mut Criterion) {
    dynkey::sink::set_sink(dynkey_benches::NullSink);
    register();
    let counted = |f: fn() -> usize| {
        let before = dynkey_text::counters().rendezvous_total();
        let reported = f();
        let counted = dynkey_text::counters().rendezvous_total() - before;
        assert_eq!(
            reported as u64, counted,
            "reported and counted rendezvous agree"
        );
        counted as f64 / 2.0
    };
    let param = counted(param_cycle);
    let kernel = counted(kernel_cycle);
    assert_eq!(
        (param, kernel),
        (1.0, BITS as f64),
        "1 rendezvous per write against 9"
    );
    dynkey_benches::save_counts(
        "class_params",
        &serde_json::json!({
            "bits": BITS,
            "sites_per_class": PER_CLASS,
            "param_rendezvous_per_write": param,
            "kernel_rendezvous_per_write": kernel,
        }),
    );
    let mut g = c.benchmark_group("class_params");
    g.bench_function("param_write_x2", |b| b.iter(param_cycle));
    g.bench_function("kernel_9_queries_x2", |b| b.iter(kernel_cycle));
    g.finish();
}

criterion_group! {
    name = class_params;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(class_params);
