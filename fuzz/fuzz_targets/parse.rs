//! Query parser: no panic, offsets inside the body, print/parse round trip
//! (the checks are in `dynkey_query::fuzzing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dynkey_query::fuzzing::parse_round_trip(data));
