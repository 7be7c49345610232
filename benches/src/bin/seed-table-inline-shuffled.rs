//! The seed table over 8,077 compiled-in inline callsites, their functions
//! laid out in the shuffled order (see `build.rs`). Run through
//! `seed-table --sites inline --layout shuffled`, or directly with the
//! same options.

include!(concat!(env!("OUT_DIR"), "/seed_inline_shuffled.rs"));

fn main() -> std::process::ExitCode {
    dynkey_benches::seed_table::inline_main(
        dynkey_benches::seed_table::Layout::Shuffled,
        &LAYOUT,
        &SLOT,
    )
}
