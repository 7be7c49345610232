//! The seed table: the kernel's `echo +p > control; echo -p > control`
//! experiment over 8,077 unclassed callsites, in each queue mode.
//!
//! The kernel series measured 16,154 IPIs unbatched (one sync per site and
//! request), about 6,000 with the stock 256-entry queue (it flushes whenever
//! a lower address arrives, and dyndbg visits sites in an order unrelated
//! to their addresses), and 134 once the queue was insertion-sorted. dynkey
//! reproduces those modes (`QueueMode`) next to its default, one sorted,
//! unbounded batch: one rendezvous per request.
//!
//! Each figure is checked three ways: the rendezvous the requests reported,
//! the process-wide rendezvous counter, and the sites-patched counter (which
//! must grow by 2 x 8,077). The machine's `CAL` and `TLB` interrupts are
//! read around each run: with a worker thread busy on the other CPU, every
//! membarrier rendezvous is one function-call IPI, and patching through a
//! writable alias changes no page table, so `TLB` should not move.
//!
//! The same driver runs the sites as run-time trampolines (this library
//! registers them) or as compiled-in inline sites (the `seed-table-inline*`
//! binaries compile them in, one binary per layout, because every
//! compiled-in site is registered and one `+p` must touch one set).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dynkey_text::QueueMode;

use crate::interrupts::Interrupts;
use crate::seed::{self, TOTAL};
use crate::stats::{median, median_u64};

/// Which kind of site carries the callsites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sites {
    /// Run-time trampolines registered from data.
    Trampoline,
    /// Compiled-in inline sites (a sibling binary).
    Inline,
}

/// How site addresses relate to the order queries visit the sites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Addresses ascend in visit order.
    Registration,
    /// Addresses in a random order unrelated to visits.
    Shuffled,
}

impl Layout {
    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Registration => "registration",
            Layout::Shuffled => "shuffled",
        }
    }
}

impl Sites {
    /// The command-line spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Sites::Trampoline => "trampoline",
            Sites::Inline => "inline",
        }
    }
}

/// Command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Site kind.
    pub sites: Sites,
    /// Address layout.
    pub layout: Layout,
    /// Repetitions per mode (times and interrupts are medians over them).
    pub reps: usize,
    /// Threads running the sites in a loop while the requests run.
    pub workers: usize,
    /// Save the full result as JSON under the results directory.
    pub save: bool,
}

/// Usage text.
pub const USAGE: &str = "usage: seed-table [--sites trampoline|inline] [--layout registration|shuffled] \
[--reps N] [--workers N] [--quick] [--save]\n\
  --quick   one repetition (what the tests run)\n\
  --save    also write <target>/dynkey-bench/seed-table-<sites>-<layout>.json for bench-report";

/// Default repetitions per mode.
const DEFAULT_REPS: usize = 5;

impl Options {
    /// The defaults of a binary whose sites are `sites` in `layout`.
    pub fn defaults(sites: Sites, layout: Layout) -> Options {
        Options {
            sites,
            layout,
            reps: DEFAULT_REPS,
            workers: 1,
            save: false,
        }
    }

    /// Parses the arguments after the program name over `self`.
    pub fn parse(self, args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = self;
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match a.as_str() {
                "--sites" => {
                    o.sites = match value("--sites")?.as_str() {
                        "trampoline" => Sites::Trampoline,
                        "inline" => Sites::Inline,
                        v => return Err(format!("--sites {v:?}: expected trampoline or inline")),
                    }
                }
                "--layout" => {
                    o.layout = match value("--layout")?.as_str() {
                        "registration" => Layout::Registration,
                        "shuffled" => Layout::Shuffled,
                        v => {
                            return Err(format!(
                                "--layout {v:?}: expected registration or shuffled"
                            ));
                        }
                    }
                }
                "--reps" => o.reps = number(&value("--reps")?, "--reps")?.max(1),
                "--workers" => o.workers = number(&value("--workers")?, "--workers")?,
                "--quick" => o.reps = 1,
                "--save" => o.save = true,
                "-h" | "--help" => return Err(USAGE.into()),
                _ => return Err(format!("unknown argument {a:?}\n{USAGE}")),
            }
        }
        Ok(o)
    }
}

fn number(v: &str, name: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("{name} {v:?}: expected a number"))
}

/// The queue modes of the table, with their JSON names and what the kernel
/// series reported for the same experiment.
pub const MODES: [(QueueMode, &str, &str); 4] = [
    (QueueMode::Unbatched, "unbatched", "16,154"),
    (
        QueueMode::QueuedUnsorted(256),
        "queued_unsorted_256",
        "~6,000",
    ),
    (
        QueueMode::QueuedSorted(256),
        "queued_sorted_256",
        "134 (flush causes not modelled here)",
    ),
    (QueueMode::Sorted, "default", "(no such mode)"),
];

/// One mode's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeResult {
    /// JSON name of the mode.
    pub name: &'static str,
    /// Rendezvous of `+p` and `-p` together, as the requests reported.
    pub rendezvous: u64,
    /// The rendezvous counter's growth over the two requests.
    pub counted: u64,
    /// The sites-patched counter's growth over the two requests.
    pub patched: u64,
    /// Median time of `+p` and of `-p`, in µs.
    pub request_us: [f64; 2],
    /// Median function-call IPIs over the two requests (machine-wide).
    pub ipi_cal: u64,
    /// Median TLB shootdowns over the two requests (machine-wide).
    pub tlb: u64,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// What ran.
    pub options: Options,
    /// Visits whose site address is lower than the previous visit's: what
    /// makes the kernel's unsorted queue flush early.
    pub descents: usize,
    /// One entry per mode, in [`MODES`] order.
    pub modes: Vec<ModeResult>,
}

/// Registers the seed table as run-time trampolines, in `layout`.
pub fn register_trampolines(layout: Layout) -> Result<Vec<dynkey::RuntimeSite>, dynkey::Error> {
    let specs: Vec<dynkey::SiteSpec> = seed::sites()
        .into_iter()
        .map(|s| dynkey::SiteSpec {
            module: s.module.into(),
            file: s.file,
            func: s.func,
            line: s.line,
            format: s.format,
            class: None,
        })
        .collect();
    let order = match layout {
        Layout::Registration => None,
        Layout::Shuffled => Some(seed::permutation(specs.len(), seed::SHUFFLE_SEED)),
    };
    dynkey::control().register_in_stub_order(Vec::new(), specs, order.as_deref())
}

/// Visits (in visit order) whose address is below the previous one.
pub fn descents(addrs: &[usize]) -> usize {
    addrs.windows(2).filter(|w| w[1] < w[0]).count()
}

/// Runs the table over `run` (runs site `i`, returns whether it fired),
/// whose sites have the given addresses in visit order.
pub fn run_table(
    options: &Options,
    addrs: &[usize],
    run: &(dyn Fn(usize) -> bool + Sync),
) -> Result<Outcome, String> {
    dynkey::sink::set_sink(crate::NullSink);
    let control = dynkey::control();
    if control.site_count() != TOTAL {
        return Err(format!(
            "{} callsites are registered, expected exactly {TOTAL}: \
             the binary must hold no other callsite",
            control.site_count()
        ));
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..options.workers {
            scope.spawn(|| {
                // Relaxed: a flag to stop looping; nothing is published with it.
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..TOTAL {
                        std::hint::black_box(run(i));
                    }
                }
            });
        }
        // Let the workers get going before the first request.
        std::thread::sleep(Duration::from_millis(20));
        let result = MODES
            .iter()
            .map(|&(mode, name, _)| run_mode(options, mode, name, run))
            .collect::<Result<Vec<_>, _>>();
        stop.store(true, Ordering::Relaxed);
        result.map(|modes| Outcome {
            options: options.clone(),
            descents: descents(addrs),
            modes,
        })
    })
}

fn fired(run: &(dyn Fn(usize) -> bool + Sync)) -> usize {
    (0..TOTAL).filter(|&i| run(i)).count()
}

fn run_mode(
    options: &Options,
    mode: QueueMode,
    name: &'static str,
    run: &(dyn Fn(usize) -> bool + Sync),
) -> Result<ModeResult, String> {
    dynkey_text::set_queue_mode(mode).map_err(|e| format!("set_queue_mode({mode}): {e}"))?;
    let control = dynkey::control();
    let mut times = [Vec::new(), Vec::new()];
    let (mut cal, mut tlb) = (Vec::new(), Vec::new());
    let mut first: Option<(u64, u64, u64)> = None;
    for _ in 0..options.reps {
        let c0 = dynkey_text::counters();
        let i0 = Interrupts::now();
        let mut rendezvous = 0;
        for (k, body) in ["+p", "-p"].into_iter().enumerate() {
            let t = Instant::now();
            let r = control.exec(body).map_err(|e| format!("{body}: {e}"))?;
            times[k].push(t.elapsed().as_secs_f64() * 1e6);
            rendezvous += r.rendezvous as u64;
            if r.changed != TOTAL {
                return Err(format!(
                    "{mode}: {body} changed {} sites, expected {TOTAL}",
                    r.changed
                ));
            }
            // G2: once the request returned, every site takes the new path.
            let want = if body == "+p" { TOTAL } else { 0 };
            let got = fired(run);
            if got != want {
                return Err(format!(
                    "{mode}: after {body}, {got} sites fired, expected {want}"
                ));
            }
        }
        let irq = Interrupts::now().since(i0);
        let c1 = dynkey_text::counters();
        let counted = c1.rendezvous_total() - c0.rendezvous_total();
        let patched: u64 =
            c1.sites_patched.iter().sum::<u64>() - c0.sites_patched.iter().sum::<u64>();
        if counted != rendezvous || patched != 2 * TOTAL as u64 {
            return Err(format!(
                "{mode}: requests reported {rendezvous} rendezvous, the counter grew by {counted}; \
                 sites patched grew by {patched}, expected {}",
                2 * TOTAL
            ));
        }
        if first.is_some_and(|f| f != (rendezvous, counted, patched)) {
            return Err(format!("{mode}: the counts changed between repetitions"));
        }
        first = Some((rendezvous, counted, patched));
        cal.push(irq.cal);
        tlb.push(irq.tlb);
    }
    let (rendezvous, counted, patched) = first.unwrap_or_default();
    Ok(ModeResult {
        name,
        rendezvous,
        counted,
        patched,
        request_us: [median(&times[0]), median(&times[1])],
        ipi_cal: median_u64(&cal),
        tlb: median_u64(&tlb),
    })
}

impl Outcome {
    /// The table, for people.
    pub fn table(&self) -> String {
        let o = &self.options;
        let mut s = format!(
            "seed table: {TOTAL} unclassed callsites, {} sites, {} layout, {} worker(s), \
             median of {} run(s); `+p` then `-p`\n\
             visits below the previous address: {}\n\n",
            o.sites.as_str(),
            o.layout.as_str(),
            o.workers,
            o.reps,
            self.descents
        );
        s += "| mode | rendezvous | counted | sites patched | +p µs | -p µs | CAL IPIs | TLB | kernel |\n";
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---|\n";
        for (m, (_, _, kernel)) in self.modes.iter().zip(MODES) {
            s += &format!(
                "| {} | {} | {} | {} | {:.0} | {:.0} | {} | {} | {} |\n",
                m.name,
                m.rendezvous,
                m.counted,
                m.patched,
                m.request_us[0],
                m.request_us[1],
                m.ipi_cal,
                m.tlb,
                kernel
            );
        }
        s
    }

    /// The one-line JSON summary (the binary's last line), keys in the
    /// documented order.
    pub fn json_line(&self) -> String {
        let modes: Vec<String> = self
            .modes
            .iter()
            .map(|m| {
                format!(
                    "\"{}\":{{\"rendezvous\":{},\"request_us\":[{:.1},{:.1}],\"ipi_cal\":{},\"tlb\":{}}}",
                    m.name, m.rendezvous, m.request_us[0], m.request_us[1], m.ipi_cal, m.tlb
                )
            })
            .collect();
        format!("{{\"sites\":{TOTAL},\"modes\":{{{}}}}}", modes.join(","))
    }

    /// Everything, for `bench-report`.
    pub fn to_json(&self) -> serde_json::Value {
        let o = &self.options;
        serde_json::json!({
            "sites": TOTAL,
            "kind": o.sites.as_str(),
            "layout": o.layout.as_str(),
            "reps": o.reps,
            "workers": o.workers,
            "descents": self.descents,
            "modes": self.modes.iter().map(|m| serde_json::json!({
                "name": m.name,
                "rendezvous": m.rendezvous,
                "counted": m.counted,
                "patched": m.patched,
                "request_us": m.request_us,
                "ipi_cal": m.ipi_cal,
                "tlb": m.tlb,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Prints the outcome (table, then the JSON line last) and saves it when
/// asked; the exit code of a binary.
pub fn finish(result: Result<Outcome, String>) -> std::process::ExitCode {
    match result {
        Ok(outcome) => {
            if outcome.options.save {
                let o = &outcome.options;
                let path = crate::paths::results_dir().join(format!(
                    "seed-table-{}-{}.json",
                    o.sites.as_str(),
                    o.layout.as_str()
                ));
                let text = serde_json::to_string_pretty(&outcome.to_json()).unwrap_or_default();
                if let Err(e) = crate::paths::write(&path, &text) {
                    eprintln!("seed-table: cannot save {}: {e}", path.display());
                    return std::process::ExitCode::FAILURE;
                }
                eprintln!("seed-table: saved {}", path.display());
            }
            print!("{}", outcome.table());
            println!("{}", outcome.json_line());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seed-table: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `main` of the inline binaries: their sites are compiled in with
/// `layout`; `table[slot[i]]` runs the site visited `i`-th.
pub fn inline_main(
    layout: Layout,
    table: &'static [fn() -> bool],
    slot: &'static [u16],
) -> std::process::ExitCode {
    let result = Options::defaults(Sites::Inline, layout)
        .parse(std::env::args().skip(1))
        .and_then(|o| {
            if o.layout != layout || o.sites != Sites::Inline {
                return Err(format!(
                    "this binary holds inline sites in the {} layout (got --sites {} --layout {})",
                    layout.as_str(),
                    o.sites.as_str(),
                    o.layout.as_str()
                ));
            }
            let site = |i: usize| table[usize::from(slot[i])];
            let addrs: Vec<usize> = (0..TOTAL).map(|i| site(i) as usize).collect();
            run_table(&o, &addrs, &|i| site(i)())
        });
    finish(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Options, String> {
        Options::defaults(Sites::Trampoline, Layout::Registration)
            .parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_options() {
        let o = args("--sites inline --layout shuffled --quick --save --workers 2").unwrap();
        assert_eq!(o.sites, Sites::Inline);
        assert_eq!(o.layout, Layout::Shuffled);
        assert_eq!((o.reps, o.workers, o.save), (1, 2, true));
        assert_eq!(args("").unwrap().reps, DEFAULT_REPS);
        assert!(args("--sites jit").is_err());
        assert!(args("--reps").is_err());
    }

    #[test]
    fn counts_descents() {
        assert_eq!(descents(&[1, 2, 3]), 0);
        assert_eq!(descents(&[3, 1, 2, 0]), 2);
    }
}
