//! A small multi-threaded service embedding dynkey.
//!
//! ```text
//! cargo run -p dynkey --example embed
//! DYNKEY_QUERY='module !*::noisy +pmf' cargo run -p dynkey --example embed
//! ```
//!
//! It prints its listing (every callsite, including ones that never run),
//! then three workers process orders, each also logging heartbeats from a
//! noisy module. With the query above, debug lines from `embed::orders`
//! (and the crate root) appear on stderr, decorated with module and
//! function; the noisy module stays quiet. Halfway, the service switches a
//! feature key and a static call, each with one commit.

use dynkey::{control, pr_debug, static_call, static_key};

static_key!(
    /// Ship orders express (off by default).
    static EXPRESS_SHIPPING: bool = false
);

fn flat_tax(cents: u64) -> u64 {
    cents / 10
}

fn no_tax(_cents: u64) -> u64 {
    0
}

static_call!(
    /// How tax is computed.
    static TAX: fn(cents: u64) -> u64 = [flat_tax, no_tax]
);

mod orders {
    use super::{EXPRESS_SHIPPING, TAX};
    use dynkey::{pr_debug, static_branch_unlikely};

    /// Prices one order.
    pub fn process(id: u64) -> u64 {
        pr_debug!("processing order {}", id);
        let mut total = 1000 + id;
        total += TAX.get()(total);
        if static_branch_unlikely!(EXPRESS_SHIPPING) {
            pr_debug!("express shipping for order {}", id);
            total += 500;
        }
        total
    }
}

mod noisy {
    use dynkey::pr_debug;

    /// Chatter nobody wants to see by default.
    pub fn heartbeat(worker: usize, n: u64) {
        pr_debug!("worker {} heartbeat {}", worker, n);
    }
}

fn run_workers(round: u64) -> u64 {
    let handles: Vec<_> = (0..3)
        .map(|w| {
            std::thread::spawn(move || {
                (0..3u64)
                    .map(|i| {
                        noisy::heartbeat(w, i);
                        orders::process(round * 100 + w as u64 * 10 + i)
                    })
                    .sum::<u64>()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("worker")).sum()
}

fn main() {
    // A bad DYNKEY_QUERY was reported on stderr; the service goes on.
    let _ = dynkey::init();
    println!("{}", control().listing_string());
    pr_debug!("service starting");

    let first = run_workers(1);
    // A feature key and a static call, switched from code: one commit each.
    EXPRESS_SHIPPING.enable().expect("enable");
    TAX.set_target_by_name("no_tax").expect("switch tax");
    let second = run_workers(2);

    let status = control().status().expect("status");
    println!(
        "totals: {first} then {second} (express {}, tax {})",
        EXPRESS_SHIPPING.is_enabled(),
        TAX.target_name()
    );
    println!(
        "sites: {}, rendezvous: {} ({})",
        status.site_kind,
        dynkey_text_rendezvous(),
        status.method
    );
}

fn dynkey_text_rendezvous() -> u64 {
    control().counters().text.rendezvous_total()
}
