//! The demo's own static key and static call, compiled into the `dynkeyd`
//! binary (`main.rs` declares this module): the demo workers run
//! [`demo_work`] on every chunk, so `POST /keys` and `PUT /calls` have
//! something of the binary itself to switch, next to the library's sites.

use dynkey::{static_branch_unlikely, static_call, static_key};

static_key!(
    /// Demo workers verify each chunk's checksum twice (a feature flag to flip).
    pub static DEMO_VERIFY: bool = false
);

fn fnv32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ *b as u32).wrapping_mul(0x0100_0193)
    })
}

fn adler32(data: &[u8]) -> u32 {
    let (a, b) = data.iter().fold((1u32, 0u32), |(a, b), &x| {
        ((a + x as u32) % 65521, (b + a + x as u32) % 65521)
    });
    (b << 16) | a
}

static_call!(
    /// The demo's checksum (switch with `PUT /calls/DEMO_CHECKSUM`).
    pub static DEMO_CHECKSUM: fn(data: &[u8]) -> u32 = [fnv32, adler32]
);

/// One chunk of demo work: a checksum through the static call, checked
/// again when [`DEMO_VERIFY`] is on.
pub fn demo_work(chunk: &[u8]) -> u32 {
    let sum = DEMO_CHECKSUM.get()(chunk);
    if static_branch_unlikely!(DEMO_VERIFY) {
        assert_eq!(
            sum,
            DEMO_CHECKSUM.get()(chunk),
            "checksums are deterministic"
        );
    }
    sum
}
