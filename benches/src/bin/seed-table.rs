//! The kernel's seed-table experiment: `+p` then `-p` over 8,077 unclassed
//! callsites in each queue mode; prints a table and, last, one JSON line.
//!
//! `cargo run --release -p dynkey-benches --bin seed-table -- [--sites
//! trampoline|inline] [--layout registration|shuffled] [--quick] [--save]`
//!
//! Trampoline sites are registered here from data; `--sites inline` runs
//! the sibling binary whose callsites are compiled in with that layout
//! (`seed-table-inline` or `seed-table-inline-shuffled`; build them with
//! `cargo build --release -p dynkey-benches --bins`).

use std::process::ExitCode;

use dynkey_benches::seed_table::{self, Layout, Options, Sites};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options =
        match Options::defaults(Sites::Trampoline, Layout::Registration).parse(args.clone()) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("seed-table: {e}");
                return ExitCode::from(2);
            }
        };
    match options.sites {
        Sites::Inline => run_sibling(options.layout, &args),
        Sites::Trampoline => seed_table::finish(trampolines(&options)),
    }
}

fn trampolines(options: &Options) -> Result<seed_table::Outcome, String> {
    let sites = seed_table::register_trampolines(options.layout).map_err(|e| e.to_string())?;
    let addrs: Vec<usize> = sites.iter().map(|s| s.stub_addr().unwrap_or(0)).collect();
    seed_table::run_table(options, &addrs, &|i| sites[i].enabled())
}

/// Runs the inline binary of `layout`, next to this one, with the same
/// arguments; its output is this run's output.
fn run_sibling(layout: Layout, args: &[String]) -> ExitCode {
    let name = match layout {
        Layout::Registration => "seed-table-inline",
        Layout::Shuffled => "seed-table-inline-shuffled",
    };
    let path = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(name),
        Err(e) => {
            eprintln!("seed-table: cannot locate this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    match std::process::Command::new(&path).args(args).status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("seed-table: {} exited with {status}", path.display());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!(
                "seed-table: cannot run {}: {e} (build it with `cargo build --release -p dynkey-benches --bins`)",
                path.display()
            );
            ExitCode::FAILURE
        }
    }
}
