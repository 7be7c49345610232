//! Stress: worker threads run sites while a committer flips random batches.
//!
//! ```text
//! cargo run --release -p dynkey-text --example stress -- \
//!     --threads 8 --sites 8192 --commits 2000 [--kind inline|trampoline|atomic] \
//!     [--rendezvous auto|membarrier|signal|none]
//! ```
//!
//! `inline` runs 8,192 distinct sites compiled into this example (each
//! returns its own constant, so no two functions can be merged; `records`
//! in the output is what the runtime found in the binary, and must be
//! 8,192); `trampoline` runs run-time stubs; `atomic` forces
//! `DYNKEY_SITES=atomic` and runs the compiled-in sites in their atomic
//! form. The whole run is under a seccomp filter that kills the process on
//! any W+X mapping request. Every site execution is checked for a torn
//! result (G1: a value that is not one of the site's two forms). The last
//! line of output is one JSON object; the exit code is 0 only if no stale
//! state and no torn result was seen, every commit used exactly one
//! rendezvous, the sites are as many distinct records as generated, and no
//! W+X mapping exists.
//!
//! The G1 figures in the crate docs come from (release build, 2 vCPUs
//! shared with other builds, load average about 15):
//!
//! ```text
//! for k in inline trampoline; do for r in membarrier signal; do
//!   cargo run --release -p dynkey-text --example stress -- --kind $k --rendezvous $r --commits 5000
//! done; done
//! ```
//!
//! | kind, rendezvous | executions checked | torn | stale | commit p50 / p99 |
//! |---|---|---|---|---|
//! | inline, membarrier | 13,656,604,672 | 0 | 0 | 69 µs / 230 µs |
//! | inline, signal | 22,364,848,128 | 0 | 0 | 20 ms / 75 ms |
//! | trampoline, membarrier | 15,461,646,336 | 0 | 0 | 54 µs / 106 µs |
//! | trampoline, signal | 28,026,650,624 | 0 | 0 | 60 ms / 120 ms |
//!
//! (A signal round waits for 8 busy workers to be scheduled on 2 loaded
//! cores, hence its commit times.)

#[path = "../tests/text/workload.rs"]
mod workload;

use dynkey_text::{Config, MethodChoice, SiteKind, SiteMode};
use workload::{Kind, Params};

fn usage(msg: &str) -> ! {
    eprintln!("stress: {msg}");
    eprintln!(
        "usage: stress [--threads N] [--sites N] [--commits N] [--batch N] \
         [--kind inline|trampoline|atomic] [--rendezvous auto|membarrier|signal|none] [--no-seccomp]"
    );
    std::process::exit(2)
}

fn main() {
    let mut p = Params {
        threads: 8,
        sites: 8192,
        commits: 2000,
        kind: Kind::Inline,
        batch_max: 16,
        seed: 0x5eed,
    };
    let mut kind = "inline".to_string();
    let mut method = "auto".to_string();
    let mut seccomp = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        let num = |v: String| {
            v.parse::<usize>()
                .unwrap_or_else(|_| usage(&format!("not a number: {v}")))
        };
        match a.as_str() {
            "--threads" => p.threads = num(val()),
            "--sites" => p.sites = num(val()),
            "--commits" => p.commits = num(val()),
            "--batch" => p.batch_max = num(val()).max(1),
            "--kind" => kind = val(),
            "--rendezvous" => method = val(),
            "--no-seccomp" => seccomp = false,
            "-h" | "--help" => usage("help"),
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    let mut config = Config::from_env().unwrap_or_else(|e| usage(&e.to_string()));
    config.rendezvous = method
        .parse::<MethodChoice>()
        .unwrap_or_else(|e| usage(&e.to_string()));
    (p.kind, config.sites) = match kind.as_str() {
        "inline" => (Kind::Inline, SiteMode::Auto),
        "trampoline" => (Kind::Trampoline, SiteMode::Auto),
        "atomic" => (Kind::Inline, SiteMode::Atomic),
        other => usage(&format!("unknown kind {other}")),
    };
    if p.kind == Kind::Inline && p.sites > workload::INLINE_SITES {
        usage(&format!(
            "at most {} compiled-in sites",
            workload::INLINE_SITES
        ));
    }
    if seccomp && let Err(e) = dynkey_text::testing::forbid_wx_mappings() {
        eprintln!("stress: seccomp filter refused ({e}); running without it");
    }
    dynkey_text::configure(config).expect("configure before first use");
    let status = match dynkey_text::status() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stress: {e}");
            std::process::exit(1);
        }
    };
    let effective = match (p.kind, status.site_kind) {
        (_, SiteKind::Atomic) => SiteKind::Atomic,
        (Kind::Inline, _) => SiteKind::Inline,
        (Kind::Trampoline, _) => SiteKind::Trampoline,
    };
    let out = workload::run(&p);
    let records = workload::records(p.kind);
    let expected_records = match p.kind {
        Kind::Inline => workload::INLINE_SITES as u64,
        Kind::Trampoline => p.sites as u64,
    };
    let wx = dynkey_text::testing::wx_mappings();
    for line in &wx {
        eprintln!("stress: W+X mapping: {line}");
    }
    if records != expected_records {
        eprintln!(
            "stress: the runtime knows {records} distinct sites for these keys, not {expected_records}: the compiler merged some"
        );
    }
    println!(
        "{} sites ({}; {records} distinct site records), {} threads, {} commits: {} rendezvous ({}), {} stale and {} state-ahead of {} checked, {} torn of {} executions, commit p50 {:.1} us, p99 {:.1} us",
        p.sites,
        effective,
        p.threads,
        p.commits,
        out.rendezvous,
        status.method,
        out.stale,
        out.state_ahead,
        out.checked,
        out.torn,
        out.executions,
        out.percentile(0.5),
        out.percentile(0.99)
    );
    let fallback = status
        .fallback
        .as_deref()
        .map_or("null".to_string(), |f| format!("{f:?}"));
    println!(
        "{{\"kind\":\"{effective}\",\"method\":\"{}\",\"fallback\":{fallback},\"threads\":{},\"sites\":{},\"records\":{records},\"commits\":{},\"rendezvous\":{},\"stale\":{},\"torn\":{},\"executions\":{},\"commit_us_p50\":{:.2},\"commit_us_p99\":{:.2}}}",
        status.method,
        p.threads,
        p.sites,
        p.commits,
        out.rendezvous,
        out.stale,
        out.torn,
        out.executions,
        out.percentile(0.5),
        out.percentile(0.99)
    );
    let ok = out.stale == 0
        && out.state_ahead == 0
        && out.torn == 0
        && records == expected_records
        && out.rendezvous == p.commits
        && out.empty_commits == 0
        && wx.is_empty();
    std::process::exit(if ok { 0 } else { 1 });
}
