//! A small library that embeds dynkey, as a dependency of a service would.
//!
//! dynkey's tests link it to prove that the keys, static calls, class maps
//! and callsites of another crate of the binary are registered too.

use dynkey::{class_map, pr_debug, static_branch_unlikely, static_call, static_key};

static_key!(
    /// Routes orders through the new pricing engine.
    pub static SAMPLE_NEW_PRICING: bool = false
);

class_map!(
    /// The sample's own debug classes, controlled by `sample.debug`.
    pub static SAMPLE_DEBUG = disjoint_bits(param = "sample.debug", base = 0, modules = ["dynkey_sample"]) {
        SAMPLE_CORE, SAMPLE_IO,
    }
);

fn list_price(cents: u64) -> u64 {
    cents
}

fn discounted(cents: u64) -> u64 {
    cents * 9 / 10
}

static_call!(
    /// How a price is computed.
    pub static SAMPLE_PRICE: fn(cents: u64) -> u64 = [list_price, discounted]
);

/// Prices an order; its callsites exist whether or not it ever runs.
pub fn price(cents: u64) -> u64 {
    pr_debug!("pricing {} cents", cents);
    pr_debug!(class: SAMPLE_CORE, "core pricing path");
    if static_branch_unlikely!(SAMPLE_NEW_PRICING) {
        pr_debug!(class: SAMPLE_IO, "new engine");
        return SAMPLE_PRICE.get()(cents) + 1;
    }
    SAMPLE_PRICE.get()(cents)
}

/// Never called by anyone: its callsite must still be listed.
pub fn never_called() {
    pr_debug!("this callsite never runs");
}
