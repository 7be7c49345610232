//! `bench-report`: turns the saved results of the benches into
//! `BENCHMARKS.md` and the SVG charts under `benches/charts/`.
//!
//! A tool of the workspace, not a bench: it measures nothing, it reads what
//! `cargo bench -p dynkey-benches` and the seed-table binaries saved and
//! writes the document. Inputs (the benches' [`paths`] say where they
//! live, and this tool follows the same rule):
//! - criterion's `estimates.json` per benchmark (medians and MADs);
//! - the counts the benches checked before timing (`counts-*.json`);
//! - the `seed-table-*.json` files of `seed-table --save`.
//!
//! Every figure in the output comes from those files, and the document
//! lists the commands that wrote them, so it can be regenerated (and is
//! only ever regenerated, never edited by hand).

pub mod charts;
pub mod criterion;
mod markdown;
mod service;
mod targets;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use criterion::Results;
use dynkey_benches::paths;

/// Where to read and write.
#[derive(Debug, Clone)]
pub struct Options {
    /// Criterion's output directory.
    pub criterion: PathBuf,
    /// The directory of `counts-*.json` and `seed-table-*.json`.
    pub results: PathBuf,
    /// The markdown file to write.
    pub out: PathBuf,
    /// The directory of the charts.
    pub charts: PathBuf,
    /// A remark on the run (noise, sharing) for the machine section.
    pub note: Option<String>,
}

/// Usage text.
pub const USAGE: &str = "usage: bench-report [--criterion DIR] [--results DIR] [--out FILE] \
[--charts DIR] [--note TEXT]\n\
defaults: $CRITERION_HOME or <target>/criterion, <target>/dynkey-bench, ./BENCHMARKS.md \
of the workspace, benches/charts (target: $CARGO_TARGET_DIR or this executable's)";

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        // This package sits at `tools/bench-report` of the workspace.
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut o = Options {
            criterion: paths::criterion_dir(),
            results: paths::results_dir(),
            out: workspace.join("BENCHMARKS.md"),
            charts: workspace.join("benches").join("charts"),
            note: None,
        };
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            let mut value = || args.next().ok_or(format!("{a} needs a value"));
            match a.as_str() {
                "--criterion" => o.criterion = value()?.into(),
                "--results" => o.results = value()?.into(),
                "--out" => o.out = value()?.into(),
                "--charts" => o.charts = value()?.into(),
                "--note" => o.note = Some(value()?),
                "-h" | "--help" => return Err(USAGE.into()),
                _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
            }
        }
        Ok(o)
    }
}

/// The machine the figures come from.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    /// `lscpu`'s model name.
    pub cpu: String,
    /// Online CPUs.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
}

fn command(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

impl Machine {
    /// Describes this machine.
    pub fn detect() -> Machine {
        let lscpu = command("lscpu", &[]);
        let cpu = lscpu
            .lines()
            .find_map(|l| l.strip_prefix("Model name:"))
            .map(|m| m.trim().to_string())
            .unwrap_or_default();
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            kernel: command("uname", &["-r"]),
            rustc: command("rustc", &["-V"]),
        }
    }
}

/// Everything the report reads.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Criterion's estimates.
    pub crit: Results,
    /// `counts-<name>.json`, by name.
    pub counts: BTreeMap<String, serde_json::Value>,
    /// `seed-table-<sites>-<layout>.json`, in a fixed order.
    pub seeds: Vec<serde_json::Value>,
    /// The machine.
    pub machine: Machine,
    /// The `--note`.
    pub note: Option<String>,
    /// `load.json` of `benches/load/run.sh --save` (dynkeyd under wrk).
    pub load: Option<serde_json::Value>,
    /// `durable.json` of `benches/load/durable.sh --save` (batching and
    /// `--state-dir` under wrk).
    pub durable: Option<serde_json::Value>,
    /// `fleet.json` of the `dynkey-fleet` converge bench with `--save`.
    pub fleet: Option<serde_json::Value>,
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

impl Inputs {
    /// Loads every input named by `o`.
    pub fn load(o: &Options) -> Inputs {
        let mut counts = BTreeMap::new();
        for name in [
            "commit_scaling",
            "rendezvous",
            "class_params",
            "static_keys",
        ] {
            if let Some(v) = read_json(&o.results.join(format!("counts-{name}.json"))) {
                counts.insert(name.to_string(), v);
            }
        }
        let mut seeds = Vec::new();
        for sites in ["trampoline", "inline"] {
            for layout in ["registration", "shuffled"] {
                let file = o.results.join(format!("seed-table-{sites}-{layout}.json"));
                seeds.extend(read_json(&file));
            }
        }
        Inputs {
            crit: Results(criterion::load(&o.criterion)),
            counts,
            seeds,
            machine: Machine::detect(),
            note: o.note.clone(),
            load: read_json(&o.results.join("load.json")),
            durable: read_json(&o.results.join("durable.json")),
            fleet: read_json(&o.results.join("fleet.json")),
        }
    }
}

/// A duration in ns, with a unit that keeps 3 significant digits or so.
pub fn fmt_ns(ns: f64) -> String {
    if ns.is_nan() {
        "-".into()
    } else if ns < 10.0 {
        format!("{ns:.2} ns")
    } else if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

/// Loads, draws and writes; returns what was written, for the terminal.
pub fn run(o: &Options) -> Result<String, String> {
    let inputs = Inputs::load(o);
    if inputs.crit.0.is_empty() && inputs.seeds.is_empty() {
        return Err(format!(
            "no results under {} or {}: run the benches first\n{USAGE}",
            o.criterion.display(),
            o.results.display()
        ));
    }
    std::fs::create_dir_all(&o.charts).map_err(|e| format!("{}: {e}", o.charts.display()))?;
    markdown::charts(&inputs, &o.charts)?;
    let text = markdown::render(&inputs);
    paths::write(&o.out, &text).map_err(|e| format!("{}: {e}", o.out.display()))?;
    Ok(format!(
        "wrote {} and the charts in {} ({} criterion results, {} seed-table runs)",
        o.out.display(),
        o.charts.display(),
        inputs.crit.0.len(),
        inputs.seeds.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_point_at_the_workspace_document_and_charts() {
        let o = Options::parse(Vec::new()).unwrap();
        assert!(o.out.ends_with("BENCHMARKS.md"), "{}", o.out.display());
        assert!(o.out.is_file(), "{} exists", o.out.display());
        assert!(
            o.charts.join("read_path.svg").is_file(),
            "{} holds the charts",
            o.charts.display()
        );
        let o =
            Options::parse(["--out".into(), "x.md".into(), "--note".into(), "n".into()]).unwrap();
        assert_eq!(
            (o.out.as_path(), o.note.as_deref()),
            (Path::new("x.md"), Some("n"))
        );
        assert!(Options::parse(["--bogus".to_string()]).is_err());
    }
}
