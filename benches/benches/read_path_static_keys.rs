//! The read path of the `static-keys` crate, next to dynkey's inline site
//! measured in the same run.
//!
//! A binary of its own: `static-keys` patches by copying a text page,
//! `mprotect`ing the copy and `mremap`ping it over the original, which
//! would detach dynkey's writable alias of that page. So dynkey is started
//! (its sites patched, enabled keys included, since they start enabled)
//! before `static_keys::global_init()`, and nothing here commits afterwards.
//! Enabled static-keys sites use keys that start `true`, so no page is
//! remapped for the read benches either; only `sk_update` toggles a key.
//!
//! Run: `cargo bench -p dynkey-benches --bench read_path_static_keys`.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dynkey_benches::{INNER, evict, hit, tight};
use dynkey_text::{RawKey, branch_unlikely};

#[allow(clippy::all)]
mod generated {
    use dynkey_benches::hit;
    include!(concat!(env!("OUT_DIR"), "/read1000_inline.rs"));
    include!(concat!(env!("OUT_DIR"), "/read1000_static_keys.rs"));
}
use generated::*;

/// Sites per generated function.
const N: u32 = 1000;
/// Toggles counted for the interrupts of an update.
const TOGGLES: u64 = 100;

static K_OFF: RawKey = RawKey::new(false);
static K_ON: RawKey = RawKey::new(true);
static_keys::define_static_key_false!(SK_OFF);
static_keys::define_static_key_true!(SK_ON);
static_keys::define_static_key_false!(SK_TOGGLE);

/// The one site of `SK_TOGGLE`.
#[inline(never)]
fn toggled_site() -> bool {
    static_keys::static_branch_unlikely!(SK_TOGGLE)
}

/// Flips `SK_TOGGLE` on and off: two updates, each remapping a page.
fn toggle_twice() {
    // SAFETY: `enable`/`disable` need `global_init` to have run (done in
    // `setup`, before any bench) and no other thread running code while
    // they remap pages: criterion and this bench run on this thread only.
    unsafe {
        SK_TOGGLE.enable();
        SK_TOGGLE.disable();
    }
}

fn setup() {
    // dynkey first: take the text over and patch every site, then never
    // commit again (static-keys may remap those pages from here on).
    let status = dynkey_text::status().expect("dynkey starts");
    eprintln!(
        "read_path_static_keys: dynkey sites are {}",
        status.site_kind
    );
    static_keys::global_init();
    assert_eq!((inline_off(), inline_on()), (0, N), "dynkey inline sites");
    assert_eq!(
        (static_keys_off(), static_keys_on()),
        (0, N),
        "static-keys sites"
    );
    assert_eq!(tight(|| branch_unlikely!(K_ON)), INNER);
    assert_eq!(tight(|| static_keys::static_branch_unlikely!(SK_ON)), INNER);
    let before = dynkey_benches::interrupts::Interrupts::now();
    let start = std::time::Instant::now();
    for _ in 0..TOGGLES {
        toggle_twice();
    }
    let elapsed = start.elapsed();
    let irq = dynkey_benches::interrupts::Interrupts::now().since(before);
    assert!(!toggled_site(), "SK_TOGGLE ends disabled");
    dynkey_benches::save_counts(
        "static_keys",
        &serde_json::json!({
            "updates": 2 * TOGGLES,
            "update_us_mean": elapsed.as_secs_f64() * 1e6 / (2 * TOGGLES) as f64,
            "ipi_cal": irq.cal,
            "tlb": irq.tlb,
        }),
    );
}

fn benches(c: &mut Criterion) {
    setup();
    let mut g = c.benchmark_group("sk_read_disabled_1");
    g.throughput(Throughput::Elements(INNER.into()));
    g.bench_function("dynkey_inline", |b| {
        b.iter(|| tight(|| branch_unlikely!(K_OFF)))
    });
    g.bench_function("static_keys", |b| {
        b.iter(|| tight(|| static_keys::static_branch_unlikely!(SK_OFF)))
    });
    g.finish();

    let mut g = c.benchmark_group("sk_read_enabled_1");
    g.throughput(Throughput::Elements(INNER.into()));
    g.bench_function("dynkey_inline", |b| {
        b.iter(|| tight(|| branch_unlikely!(K_ON)))
    });
    g.bench_function("static_keys", |b| {
        b.iter(|| tight(|| static_keys::static_branch_unlikely!(SK_ON)))
    });
    g.finish();

    let mut g = c.benchmark_group("sk_read_disabled_1000");
    g.throughput(Throughput::Elements(N.into()));
    g.bench_function("dynkey_inline", |b| b.iter(inline_off));
    g.bench_function("static_keys", |b| b.iter(static_keys_off));
    g.finish();

    let mut g = c.benchmark_group("sk_read_enabled_1000");
    g.throughput(Throughput::Elements(N.into()));
    g.bench_function("dynkey_inline", |b| b.iter(inline_on));
    g.bench_function("static_keys", |b| b.iter(static_keys_on));
    g.finish();

    // Both sites load no data: evicting the key changes nothing for either.
    let one = |taken: bool| if taken { hit(0) } else { 0 };
    let mut g = c.benchmark_group("sk_read_cold_disabled_1");
    g.bench_function("empty", |b| b.iter(|| evict(&K_OFF)));
    g.bench_function("dynkey_inline", |b| {
        b.iter(|| {
            evict(&K_OFF);
            one(branch_unlikely!(K_OFF))
        })
    });
    g.bench_function("static_keys", |b| {
        b.iter(|| {
            evict(&SK_OFF);
            one(static_keys::static_branch_unlikely!(SK_OFF))
        })
    });
    g.finish();

    // An update of a key with one site (two per iteration: on, off).
    let mut g = c.benchmark_group("sk_update");
    g.bench_function("static_keys_toggle_1_site_x2", |b| b.iter(toggle_twice));
    g.finish();
}

criterion_group! {
    name = read_path_static_keys;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(read_path_static_keys);
