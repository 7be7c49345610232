//! A class'd callsite in a module its class map does not cover: `init()`
//! reports it (the site could never be turned on). Run by the `boot` tests.
//!
//! ```text
//! cargo run -p dynkey --example class_outside_map
//! ```

dynkey::class_map!(static APP = disjoint_bits(param = "app.debug", base = 0, modules = ["class_outside_map::covered"]) {
    APP_VERBOSE
});

mod covered {
    pub fn work() {
        dynkey::pr_debug!(class: super::APP_VERBOSE, "covered");
    }
}

fn uncovered() {
    dynkey::pr_debug!(class: APP_VERBOSE, "not covered: this module is not in the map");
}

fn main() {
    match dynkey::init() {
        Ok(()) => println!("init: ok"),
        Err(e) => println!("init: {} {e}", e.category()),
    }
    covered::work();
    uncovered();
    let r = dynkey::control().exec("class APP_VERBOSE +p").unwrap();
    println!("covered site: matched {}", r.matched);
}
