//! The text of `BENCHMARKS.md` and the data of its charts.

use std::fmt::Write as _;
use std::path::Path;

use super::criterion::Results;
use super::{Inputs, charts, fmt_ns, service, targets};

/// The read-path competitors: criterion id and what it is.
const READ_ROWS: [(&str, &str); 11] = [
    ("dynkey_inline", "dynkey inline site (`branch_unlikely!`)"),
    (
        "dynkey_link_stub",
        "dynkey link-time value stub (`link_value_stub!`)",
    ),
    (
        "dynkey_value_site",
        "dynkey run-time value site (`ValueSite`)",
    ),
    ("dynkey_atomic", "dynkey atomic kind (`RawKey::check`)"),
    ("atomic_bool", "`AtomicBool`, relaxed (1,000: packed)"),
    (
        "atomic_bool_per_line",
        "`AtomicBool`, relaxed, one per cache line",
    ),
    ("arc_swap", "`arc-swap` `load`"),
    ("rwlock", "`RwLock<bool>` read"),
    ("tracing", "`tracing::debug!`, max level INFO"),
    (
        "tracing_callsite_never",
        "`tracing::debug!`, callsite cached never",
    ),
    ("log", "`log::debug!`, max level INFO"),
];

const COMMANDS: &str = "```sh
export CARGO_TARGET_DIR=/work/target-bench   # any directory; every tool below follows it
cargo bench -p dynkey-benches                # all criterion benches (read path, commits, rendezvous, params, queries, tracing)
cargo build --release -p dynkey-benches --bins
for sites in trampoline inline; do for layout in registration shuffled; do
  cargo run --release -p dynkey-benches --bin seed-table -- --sites $sites --layout $layout --save
done; done
bash benches/load/run.sh --save                # dynkeyd under wrk (apt-get install wrk)
bash benches/load/durable.sh --save 10         # batching and --state-dir under wrk
bash .ci/nats.sh && cargo build --release --bin dynkeyd --bin dynkeyctl
cargo bench -p dynkey-fleet --bench converge -- --instances 1,10,50 --applies 100 --save
cargo run --release -p dynkey-bench-report -- --note \"...\"   # this file and benches/charts/
```";

/// What the figures depend on, for whoever reads a miss in the table above.
const READING: &str = "### Reading the figures\n\n\
- A disabled inline site is one instruction: the 5-byte NOP, preceded by up to four `0x2e` \
  prefix bytes where the site needed aligning (so its 5 patched bytes sit in one aligned 8-byte \
  word, the unit of an atomic patch). In a function that is nothing but 1,000 sites, the NOP \
  stream is the whole cost, and dynkey and `static-keys` (which patches by remapping pages, \
  single-threaded only) are equal.\n\
- Hot, a relaxed load of a flag in L1 costs about as much as a NOP on this CPU; a per-site flag \
  costs more once the flags are spread over cache lines (one per callsite descriptor), and much \
  more once the line is cold (the `cold` column, about 200 ns here), which patched code never \
  pays.\n\
- A link-time stub is a direct call plus one `jmp`: it costs what a call through a function \
  pointer costs when the pointer is hot, and nothing more when it is cold.\n\
- Every rendezvous serializes the committing core with IRET to self (no hypervisor exit, unlike \
  CPUID); with no busy thread, membarrier then costs about 0.5 µs, paid once per batch (16,154 \
  times unbatched).\n\
- Commit cost per site grows once the commit's working set (keys, stub words, the plan) outgrows \
  the caches: the work is O(N), the constant is not.\n\n";

/// `median ±MAD` per element, and the ratio to `base` in the same group.
fn cell(c: &Results, group: &str, id: &str, base: &str) -> String {
    match (c.get(group, id), c.ns(group, base)) {
        (Some(e), Some(b)) => format!(
            "{} ±{} ({:.2}x)",
            fmt_ns(e.per_element()),
            fmt_ns(e.mad_per_element()),
            e.per_element() / b
        ),
        (Some(e), None) => format!(
            "{} ±{}",
            fmt_ns(e.per_element()),
            fmt_ns(e.mad_per_element())
        ),
        _ => "-".into(),
    }
}

/// Cold cell: the raw time, and the time above the eviction alone.
fn cold_cell(c: &Results, group: &str, id: &str) -> String {
    match (c.get(group, id), c.ns(group, "empty")) {
        (Some(e), Some(empty)) => format!(
            "{} ±{} (+{})",
            fmt_ns(e.median),
            fmt_ns(e.mad),
            fmt_ns((e.median - empty).max(0.0))
        ),
        _ => "-".into(),
    }
}

fn machine(i: &Inputs, s: &mut String) {
    let m = &i.machine;
    let _ = writeln!(
        s,
        "## Machine\n\n- CPU: {} ({} vCPUs, KVM guest)\n- kernel: {}\n- compiler: {}\n- \
         criterion 0.8: 1 s warm-up, 3 s measurement, 100 samples (30 flat samples for commits, \
         20 for signal rendezvous); figures are medians with the median absolute deviation (±).\n\
         - seed table: median of the repetitions given in each table's heading.",
        m.cpu, m.cpus, m.kernel, m.rustc
    );
    if let Some(note) = &i.note {
        let _ = writeln!(s, "- note: {note}");
    }
    s.push('\n');
}

fn read_path(c: &Results, s: &mut String) {
    s.push_str(
        "## Read path\n\n`cargo bench -p dynkey-benches --bench read_path`. Per check (1 site: a \
         tight loop of 100 checks per iteration) or per site (1,000 distinct sites on 1,000 \
         flags in one generated function), median ±MAD, and in brackets the ratio to dynkey's \
         inline site in the same run. Every taken arm is the same opaque cold call, so no \
         variant can be compiled branch-free. Cold: one check right after `clflush` + `mfence` \
         of the line an update writes as data (the key, flag or lock; two lines for arc-swap: \
         the pointer slot and the value); `+` is the time above the eviction alone (`empty`). \
         tracing and log keep their state private, so they have no cold figure.\n\n\
         | competitor | disabled, 1 site | enabled, 1 site | disabled, 1,000 sites | enabled, 1,000 sites | cold, disabled |\n\
         |---|---|---|---|---|---|\n",
    );
    for (id, name) in READ_ROWS {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} |",
            cell(c, "read_disabled_1", id, "dynkey_inline"),
            cell(c, "read_enabled_1", id, "dynkey_inline"),
            cell(c, "read_disabled_1000", id, "dynkey_inline"),
            cell(c, "read_enabled_1000", id, "dynkey_inline"),
            cold_cell(c, "read_cold_disabled_1", id),
        );
    }
    let _ = writeln!(
        s,
        "| eviction alone (`empty`) | | | | | {} |\n\n![read path](benches/charts/read_path.svg)\n",
        c.get("read_cold_disabled_1", "empty")
            .map(|e| format!("{} ±{}", fmt_ns(e.median), fmt_ns(e.mad)))
            .unwrap_or_else(|| "-".into())
    );

    s.push_str(
        "### The `static-keys` crate\n\n`cargo bench -p dynkey-benches --bench read_path_static_keys` \
         (its own binary: static-keys remaps text pages; dynkey is patched before \
         `static_keys::global_init()` and never committed after). Ratio to dynkey's inline site \
         in that run.\n\n\
         | competitor | disabled, 1 site | enabled, 1 site | disabled, 1,000 sites | enabled, 1,000 sites | cold, disabled |\n\
         |---|---|---|---|---|---|\n",
    );
    for (id, name) in [
        ("dynkey_inline", "dynkey inline site"),
        ("static_keys", "`static-keys` `static_branch_unlikely!`"),
    ] {
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} |",
            cell(c, "sk_read_disabled_1", id, "dynkey_inline"),
            cell(c, "sk_read_enabled_1", id, "dynkey_inline"),
            cell(c, "sk_read_disabled_1000", id, "dynkey_inline"),
            cell(c, "sk_read_enabled_1000", id, "dynkey_inline"),
            cold_cell(c, "sk_read_cold_disabled_1", id),
        );
    }
    s.push('\n');

    s.push_str(
        "### Static calls\n\n`cargo bench -p dynkey-benches --bench read_path` (groups `call_hot`, \
         `call_cold`). Hot: a chain of 100 dependent calls per iteration, per call. Cold: one call \
         after evicting the line an update writes (the fn pointer's slot; the `RawCall` for \
         dynkey, which its stubs do not read; an unrelated line before the direct call), \
         eviction included. Ratios to the direct call, and to the fn pointer.\n\n\
         | call | hot | hot vs fn pointer | cold | cold vs fn pointer |\n|---|---|---|---|---|\n",
    );
    for (id, name) in [
        ("direct", "direct call"),
        ("dynkey_link_call", "dynkey link-time stub (`link_call!`)"),
        ("fn_pointer", "call through a fn pointer"),
        (
            "dynkey_runtime_call",
            "dynkey run-time trampoline (`RuntimeCall`)",
        ),
    ] {
        let ratio = |g: &str| {
            c.ratio(g, id, "fn_pointer")
                .map(|r| format!("{r:.2}x"))
                .unwrap_or_else(|| "-".into())
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} |",
            cell(c, "call_hot", id, "direct"),
            ratio("call_hot"),
            cell(c, "call_cold", id, "direct"),
            ratio("call_cold"),
        );
    }
    s.push('\n');
}

fn commits(i: &Inputs, s: &mut String) {
    let c = &i.crit;
    s.push_str(
        "## Commit scaling\n\n`cargo bench -p dynkey-benches --bench commit_scaling`. One commit \
         flipping N keys, each tested by one site (run-time trampolines; inline sites up to the \
         8,192 that binary compiles in), against the floor: N relaxed 8-byte stores 16 bytes \
         apart into a plain buffer. Rendezvous and sites patched per commit were checked before \
         timing (`counts-commit_scaling.json`).\n\n\
         | N | trampolines: commit | per site | rendezvous | inline: commit | per site | rendezvous | floor | trampoline / floor | inline / floor |\n\
         |---:|---|---|---:|---|---|---:|---|---:|---:|\n",
    );
    let counts = i
        .counts
        .get("commit_scaling")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    let rv = |kind: &str, n: &str| {
        counts
            .iter()
            .find(|r| r["kind"] == kind && r["n"].as_u64() == n.parse().ok())
            .and_then(|r| r["rendezvous_per_commit"].as_f64())
            .map(|r| format!("{r}"))
            .unwrap_or_else(|| "-".into())
    };
    for n in ["1", "10", "100", "1000", "8077", "100000"] {
        let t = c.get("commit_trampoline", n);
        let inl = c.get("commit_inline", n);
        let floor = c.get("commit_floor", n);
        let whole = |e: Option<&super::criterion::Estimate>| {
            e.map(|e| format!("{} ±{}", fmt_ns(e.median), fmt_ns(e.mad)))
                .unwrap_or_else(|| "-".into())
        };
        let per = |e: Option<&super::criterion::Estimate>| {
            e.map(|e| fmt_ns(e.per_element()))
                .unwrap_or_else(|| "-".into())
        };
        let over = |e: Option<&super::criterion::Estimate>| match (e, floor) {
            (Some(e), Some(f)) => format!("{:.0}x", e.median / f.median),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            whole(t),
            per(t),
            rv("trampoline", n),
            whole(inl),
            per(inl),
            rv("inline", n),
            whole(floor),
            over(t),
            over(inl)
        );
    }
    s.push_str("\n![commit scaling](benches/charts/commit_scaling.svg)\n\n");
}

fn rendezvous(i: &Inputs, s: &mut String) {
    let c = &i.crit;
    s.push_str(
        "## Rendezvous cost\n\n`cargo bench -p dynkey-benches --bench rendezvous`. One rendezvous \
         (`dynkey_text::testing::rendezvous`, core-serializing) with 0, 1 and 8 threads spinning \
         in user space. `CAL`: function-call IPIs the machine counted over 200 rendezvous, per \
         rendezvous (machine-wide, so other work adds to it).\n\n\
         | method | busy threads | median ±MAD | mean of 200 | CAL IPIs per rendezvous |\n|---|---:|---|---|---:|\n",
    );
    let counts = i
        .counts
        .get("rendezvous")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for method in ["membarrier", "signal"] {
        for busy in ["0", "1", "8"] {
            let row = counts
                .iter()
                .find(|r| r["method"] == method && r["busy"].as_u64() == busy.parse().ok());
            let _ = writeln!(
                s,
                "| {method} | {busy} | {} | {} | {} |",
                c.get(&format!("rendezvous_{method}"), busy)
                    .map(|e| format!("{} ±{}", fmt_ns(e.median), fmt_ns(e.mad)))
                    .unwrap_or_else(|| "-".into()),
                row.and_then(|r| r["mean_us"].as_f64())
                    .map(|u| fmt_ns(u * 1e3))
                    .unwrap_or_else(|| "-".into()),
                row.and_then(|r| r["ipi_cal_per_rendezvous"].as_f64())
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "-".into()),
            );
        }
    }
    s.push('\n');
}

fn seed_tables(i: &Inputs, s: &mut String) {
    s.push_str(
        "## The seed table (`+p`, `-p` over 8,077 callsites)\n\n\
         `cargo run --release -p dynkey-benches --bin seed-table -- --sites S --layout L --save`. \
         8,077 unclassed callsites over amdgpu 4,532, i915 1,801, drm 340, drm_display_helper 155, \
         drm_kms_helper 89, i2c_core 25, ttm 2 and 8 virtio_* modules (1,133); `+p` and `-p` as \
         two requests through `dynkey::control().exec()` per queue mode, one worker thread running \
         every site meanwhile (so each membarrier reaches one running CPU). *rendezvous* is what \
         the requests reported, *counted* the growth of the rendezvous counter, *patched* the \
         growth of `sites_patched` (2 x 8,077 each time). CAL and TLB: machine-wide interrupts \
         over the two requests. Inline sites are compiled in, one binary per layout (every \
         compiled-in callsite is registered, so one `+p` must meet one set); the shuffled inline \
         binary defines the generated functions in a random order relative to their lines. The \
         kernel column is the 2026 series' figure; its 134 comes from flush causes (non-queued \
         updates, other key users) this model does not have, so the model gives 64 = 2 x \
         ceil(8,077 / 256).\n\n",
    );
    let kernel = ["16,154", "~6,000", "134", "-"];
    for seed in &i.seeds {
        let _ = writeln!(
            s,
            "### {} sites, {} layout\n\n{} repetitions, {} worker; visits whose address is below the previous one: {}\n\n\
             | mode | rendezvous | counted | patched | +p | -p | CAL | TLB | kernel |\n|---|---:|---:|---:|---:|---:|---:|---:|---|",
            seed["kind"].as_str().unwrap_or("?"),
            seed["layout"].as_str().unwrap_or("?"),
            seed["reps"],
            seed["workers"],
            seed["descents"]
        );
        for (m, k) in seed["modes"].as_array().into_iter().flatten().zip(kernel) {
            let us = |j: usize| {
                m["request_us"][j]
                    .as_f64()
                    .map(|u| fmt_ns(u * 1e3))
                    .unwrap_or_default()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {k} |",
                m["name"].as_str().unwrap_or("?"),
                m["rendezvous"],
                m["counted"],
                m["patched"],
                us(0),
                us(1),
                m["ipi_cal"],
                m["tlb"]
            );
        }
        s.push('\n');
    }
    s.push_str("![rendezvous per queue mode](benches/charts/seed_table.svg)\n\n");
}

fn class_params(i: &Inputs, s: &mut String) {
    let c = &i.crit;
    let counts = i.counts.get("class_params");
    let per = |id: &str| {
        c.get("class_params", id)
            .map(|e| format!("{} ±{}", fmt_ns(e.median / 2.0), fmt_ns(e.mad / 2.0)))
            .unwrap_or_else(|| "-".into())
    };
    let rv = |k: &str| {
        counts
            .and_then(|v| v[k].as_f64())
            .map(|x| format!("{x}"))
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        s,
        "## Class params\n\n`cargo bench -p dynkey-benches --bench class_params`. 9 DRM classes \
         with 100 callsites each: `drm.debug=0x1ff` then `0x0` as param writes, against the \
         kernel's way, one `class NAME +p` (then `-p`) request per bit. Per write (half an \
         iteration).\n\n| way | rendezvous per write | time per write |\n|---|---:|---|\n\
         | `set_param(\"drm.debug\", \"0x1ff\")` | {} | {} |\n| 9 x `class NAME +p` | {} | {} |\n",
        rv("param_rendezvous_per_write"),
        per("param_write_x2"),
        rv("kernel_rendezvous_per_write"),
        per("kernel_9_queries_x2")
    );
    if let Some(sk) = i.counts.get("static_keys") {
        let _ = writeln!(
            s,
            "For comparison, the `static-keys` crate updates a key with one site by remapping its \
             page: {} per update in criterion (`sk_update`, two updates per iteration), {:.1} µs \
             mean over {} updates in a one-thread process, during which the machine counted {} \
             CAL and {} TLB interrupts.\n",
            c.get("sk_update", "static_keys_toggle_1_site_x2")
                .map(|e| format!("{} ±{}", fmt_ns(e.median / 2.0), fmt_ns(e.mad / 2.0)))
                .unwrap_or_else(|| "-".into()),
            sk["update_us_mean"].as_f64().unwrap_or(f64::NAN),
            sk["updates"],
            sk["ipi_cal"],
            sk["tlb"]
        );
    }
}

fn load(i: &Inputs, s: &mut String) {
    let Some(l) = &i.load else { return };
    let _ = writeln!(
        s,
        "## dynkeyd under load\n\n`bash benches/load/run.sh --save` (wrk from Debian, 2 threads, on the \
         same 2 vCPUs as the server): small queries to `POST /control` against the demo while its \
         workers keep running their 8,077 sites; two thirds of the bodies flip `p` on one \
         function's sites (a commit and a rendezvous), one third only change decorations (no \
         rendezvous). {} s per row.\n\n| connections | queries/s | p50 | p99 |\n|---:|---:|---:|---:|",
        l["seconds"]
    );
    for r in l["rows"].as_array().into_iter().flatten() {
        let us = |k: &str| r[k].as_f64().map_or("-".into(), |v| fmt_ns(v * 1e3));
        let _ = writeln!(
            s,
            "| {} | {:.0} | {} | {} |",
            r["connections"],
            r["rps"].as_f64().unwrap_or(0.0),
            us("p50_us"),
            us("p99_us")
        );
    }
    let _ = writeln!(
        s,
        "\nThe server counted {} commits and {} membarrier rendezvous over the runs.\n",
        l["commits"], l["rendezvous"]
    );
}

/// The whole document.
pub(super) fn render(i: &Inputs) -> String {
    let mut s = String::from(
        "# Benchmarks\n\nGenerated by `bench-report` from the results of the commands below; do \
         not edit by hand. Everything is compared within one run and quoted as a ratio where it \
         can be (the machines are shared and noisy).\n\n## Commands\n\n",
    );
    s.push_str(COMMANDS);
    s.push_str("\n\n");
    machine(i, &mut s);
    s.push_str("## Performance targets\n\n| target | measured | verdict |\n|---|---|---|\n");
    for t in targets::evaluate(i) {
        let _ = writeln!(s, "| {} | {} | {} |", t.target, t.measured, t.cell());
    }
    s.push('\n');
    s.push_str(READING);
    read_path(&i.crit, &mut s);
    commits(i, &mut s);
    rendezvous(i, &mut s);
    seed_tables(i, &mut s);
    class_params(i, &mut s);
    tracing(&i.crit, &mut s);
    load(i, &mut s);
    service::durable(i, &mut s);
    service::fleet(i, &mut s);
    s
}

/// The tracing bench's cases: criterion id and what it is.
const TRACING_DISABLED: [(&str, &str); 7] = [
    ("dynkey_tracing", "`dynkey_tracing::debug!`, off"),
    ("pr_debug", "dynkey's `pr_debug!`, off (the same NOP)"),
    (
        "tracing_max_level_info",
        "`tracing::debug!`, global max level INFO (`LevelFilter::INFO`)",
    ),
    (
        "tracing_env_filter_info",
        "`tracing::debug!`, `EnvFilter` at `info`",
    ),
    (
        "tracing_reload_env_filter_info",
        "`tracing::debug!`, `reload` layer over `EnvFilter` at `info`",
    ),
    (
        "tracing_callsite_never",
        "`tracing::debug!`, `EnvFilter` `info,elsewhere=debug` (interest cached never)",
    ),
    (
        "tracing_reload_span_directive",
        "`tracing::debug!`, `reload` over `EnvFilter` `info,[elsewhere]=debug` (asked every call)",
    ),
];

/// A target's verdict line: the ratio measured and whether it is met.
fn verdict(what: &str, ratio: Option<f64>, limit: f64) -> String {
    match ratio {
        Some(r) if r <= limit => format!("- {what}: {r:.2}x, **met** (target {limit}x)\n"),
        Some(r) => format!(
            "- {what}: {r:.2}x, **not met** (target {limit}x; over by {:.2}x)\n",
            r / limit
        ),
        None => format!("- {what}: not measured here (target {limit}x)\n"),
    }
}

fn tracing(c: &Results, s: &mut String) {
    if c.get("tracing_disabled_1000", "dynkey_tracing").is_none() {
        return;
    }
    s.push_str(
        "## tracing\n\n`cargo bench -p dynkey-benches --bench tracing`. 1,000 distinct sites in one \
         generated function per macro, per site, median ±MAD; in brackets the ratio to \
         `dynkey_tracing::debug!` in the same run (disabled: how many times its cost each \
         alternative is). Each case runs under its own dispatcher, alone. Disabled: \
         `dynkey_tracing::debug!` and `pr_debug!` are inline sites (one NOP) and need no \
         subscriber; tracing's `debug!` under the filters services use. The last two tracing rows \
         are what other filters cost: with another target at DEBUG, tracing's level check passes \
         and each callsite answers from its interest cache (a third-party callsite under \
         `dynkey_tracing::layer()`, which gives tracing no level hint, costs this); with a span \
         directive, `EnvFilter` is asked on every call, through the `reload` layer's lock. \
         Enabled: every site emits to a subscriber whose `enabled` is true and whose `event` does \
         nothing; across 1,000 sites, and from one site in a loop of 100 events (per event). An \
         enabled `dynkey_tracing::debug!` jumps from its site to its arm (tracing's macro, laid \
         out after the function's straight line) and back: one taken branch more than tracing's \
         own callsite, about free while the sites' branches fit the branch predictor (one site), \
         not across 1,000 distinct sites.\n\n\
         | case | disabled, 1,000 sites | enabled, 1,000 sites | enabled, 1 site |\n|---|---|---|---|\n",
    );
    for (id, name) in TRACING_DISABLED {
        let _ = writeln!(
            s,
            "| {name} | {} | - | - |",
            cell(c, "tracing_disabled_1000", id, "dynkey_tracing"),
        );
    }
    for (id, name) in [
        (
            "dynkey_tracing",
            "`dynkey_tracing::debug!`, on, to a no-op subscriber",
        ),
        ("tracing", "`tracing::debug!`, to the same subscriber"),
    ] {
        let _ = writeln!(
            s,
            "| {name} | - | {} | {} |",
            cell(c, "tracing_enabled_1000", id, "dynkey_tracing"),
            cell(c, "tracing_enabled_1", id, "dynkey_tracing"),
        );
    }
    s.push_str("\nTargets (issue 15):\n\n");
    s.push_str(&verdict(
        "disabled `dynkey_tracing::debug!` within 1.1x of dynkey's disabled `pr_debug!`",
        c.ratio("tracing_disabled_1000", "dynkey_tracing", "pr_debug"),
        1.1,
    ));
    s.push_str(&verdict(
        "enabled `dynkey_tracing::debug!` within 1.2x of `tracing::debug!` to the same no-op subscriber, 1,000 sites",
        c.ratio("tracing_enabled_1000", "dynkey_tracing", "tracing"),
        1.2,
    ));
    s.push_str(&verdict(
        "the same, one site",
        c.ratio("tracing_enabled_1", "dynkey_tracing", "tracing"),
        1.2,
    ));
    for (id, name) in &TRACING_DISABLED[2..] {
        if let Some(r) = c.ratio("tracing_disabled_1000", id, "dynkey_tracing") {
            let _ = writeln!(
                s,
                "- disabled: {name} costs {r:.1}x `dynkey_tracing::debug!`"
            );
        }
    }
    s.push('\n');
}

/// Draws the three charts into `dir`.
pub(super) fn charts(i: &Inputs, dir: &Path) -> Result<(), String> {
    let c = &i.crit;
    let rows: Vec<(String, f64)> = READ_ROWS
        .iter()
        .filter_map(|(id, _)| Some((id.to_string(), c.ns("read_disabled_1000", id)?)))
        .chain(
            c.ns("sk_read_disabled_1000", "static_keys")
                .map(|v| ("static_keys (own run)".to_string(), v)),
        )
        .collect();
    charts::bars(
        &dir.join("read_path.svg"),
        "Disabled check, 1,000 distinct sites: cost per site",
        "ns per site (log scale)",
        &rows,
    )?;
    let line = |group: &str| -> Vec<(f64, f64)> {
        ["1", "10", "100", "1000", "8077", "100000"]
            .iter()
            .filter_map(|n| Some((n.parse().ok()?, c.get(group, n)?.median / 1e3)))
            .collect()
    };
    charts::lines(
        &dir.join("commit_scaling.svg"),
        "One commit of N changed sites (one rendezvous each)",
        ("sites changed (N)", "µs per commit"),
        &[
            ("run-time trampolines".into(), line("commit_trampoline")),
            ("inline sites".into(), line("commit_inline")),
            ("floor: N 8-byte stores".into(), line("commit_floor")),
        ],
    )?;
    let modes = [
        "unbatched",
        "queued_unsorted_256",
        "queued_sorted_256",
        "default",
    ];
    let mut series: Vec<(String, Vec<f64>)> = i
        .seeds
        .iter()
        .map(|seed| {
            let values = modes
                .iter()
                .map(|m| {
                    seed["modes"]
                        .as_array()
                        .and_then(|a| a.iter().find(|x| x["name"] == *m))
                        .and_then(|x| x["rendezvous"].as_f64())
                        .unwrap_or(0.0)
                })
                .collect();
            (
                format!(
                    "{}, {}",
                    seed["kind"].as_str().unwrap_or("?"),
                    seed["layout"].as_str().unwrap_or("?")
                ),
                values,
            )
        })
        .collect();
    series.push((
        "kernel (2026 series)".into(),
        vec![16154.0, 6000.0, 134.0, 0.0],
    ));
    charts::grouped(
        &dir.join("seed_table.svg"),
        "+p then -p over 8,077 callsites: rendezvous per queue mode",
        "rendezvous (log scale)",
        &[
            "unbatched",
            "queued-unsorted(256)",
            "queued-sorted(256)",
            "default",
        ],
        &series,
    )
}
