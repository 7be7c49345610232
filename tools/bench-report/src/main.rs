//! Writes `BENCHMARKS.md` and `benches/charts/*.svg` from the saved results
//! of `cargo bench -p dynkey-benches` and `seed-table --save`.
//!
//! `cargo run --release -p dynkey-bench-report -- [--note TEXT]`
//! (see `--help` for the paths; they follow `CARGO_TARGET_DIR` and
//! `CRITERION_HOME` as criterion does).

use std::process::ExitCode;

fn main() -> ExitCode {
    let result = dynkey_bench_report::Options::parse(std::env::args().skip(1))
        .and_then(|o| dynkey_bench_report::run(&o));
    match result {
        Ok(done) => {
            eprintln!("bench-report: {done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}
