//! The demo service: about 8,000 debug callsites spread over modules sized
//! like the kernel's (amdgpu 4532, i915 1801, drm 340, drm_display_helper
//! 155, drm_kms_helper 89, i2c_core 25, ttm 2, virtio_* 1133: 8,077 in all),
//! with realistic formats and a `drm.debug`-style class map, exercised by
//! paced worker threads.
//!
//! Workers check a slice of sites, sleep, and go again, so they leave the
//! control plane room on a small machine. Enabled sites print through a sink
//! capped at [`LINES_PER_SECOND`], so `+p` over everything cannot flood the
//! terminal; the number of lines held back is reported once a second.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dynkey::sink::{Record, Sink};
use dynkey::{ClassMapKind, ClassMapSpec, Control, RuntimeSite, SiteSpec};

/// Modules and their number of sites.
pub const MODULES: &[(&str, usize)] = &[
    ("amdgpu", 4532),
    ("i915", 1801),
    ("drm", 340),
    ("drm_display_helper", 155),
    ("drm_kms_helper", 89),
    ("i2c_core", 25),
    ("ttm", 2),
    ("virtio_net", 400),
    ("virtio_blk", 200),
    ("virtio_pci", 150),
    ("virtio_ring", 120),
    ("virtio_console", 100),
    ("virtio_gpu", 100),
    ("virtio_balloon", 63),
];

/// The kernel's DRM debug classes, in bit order (bit i of `drm.debug` is
/// class i): the demo's class map. The workspace's one copy of the list;
/// the class-params bench uses it too.
pub const DRM_CLASSES: &[&str] = &[
    "DRM_UT_CORE",
    "DRM_UT_DRIVER",
    "DRM_UT_KMS",
    "DRM_UT_PRIME",
    "DRM_UT_ATOMIC",
    "DRM_UT_VBL",
    "DRM_UT_STATE",
    "DRM_UT_LEASE",
    "DRM_UT_DP",
    "DRM_UT_DRMRES",
];

/// Lines per second the demo prints at most.
pub const LINES_PER_SECOND: u64 = 20;

fn path_of(module: &str) -> &'static str {
    match module {
        "amdgpu" => "drivers/gpu/drm/amd/amdgpu",
        "i915" => "drivers/gpu/drm/i915",
        "drm" => "drivers/gpu/drm",
        "drm_display_helper" => "drivers/gpu/drm/display",
        "drm_kms_helper" => "drivers/gpu/drm",
        "i2c_core" => "drivers/i2c",
        "ttm" => "drivers/gpu/drm/ttm",
        "virtio_net" => "drivers/net",
        "virtio_blk" => "drivers/block",
        "virtio_console" => "drivers/char",
        "virtio_gpu" => "drivers/gpu/drm/virtio",
        _ => "drivers/virtio",
    }
}

fn parts(
    module: &str,
) -> (
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
) {
    const GPU_PARTS: &[&str] = &[
        "ring", "vm", "gfx", "ih", "psp", "smu", "dc", "irq", "fence", "bo", "gem", "uvd", "vcn",
        "gmc",
    ];
    const GPU_VERBS: &[&str] = &[
        "init", "fini", "resume", "suspend", "submit", "reset", "test", "update", "map", "unmap",
        "wait", "flush",
    ];
    const GPU_FORMATS: &[&str] = &[
        "ring %s timeout, signaled seq=%u, emitted seq=%u\n",
        "VM fault (0x%02x, vmid %d, pasid %u) at page %llu\n",
        "SMU: response 0x%x for msg %s\n",
        "link %d training %s after %d tries\n",
        "%s: reset on ring %s\n",
        "bo %p moved to domain %d, size %lu\n",
        "fence %llu signaled after %u us\n",
        "irq src %d type %d enabled\n",
    ];
    const NET_PARTS: &[&str] = &[
        "rx", "tx", "cvq", "napi", "probe", "features", "queue", "config", "vq",
    ];
    const NET_VERBS: &[&str] = &[
        "poll", "refill", "xmit", "open", "close", "reset", "setup", "notify", "kick",
    ];
    const NET_FORMATS: &[&str] = &[
        "rx: len %d, buf %p\n",
        "tx: queue %d stopped, %u in flight\n",
        "probe: features 0x%llx\n",
        "vq %s: %u buffers added\n",
        "config changed: status 0x%x\n",
        "%s: interrupt, %d used\n",
    ];
    if module.starts_with("virtio") || module == "i2c_core" {
        (NET_PARTS, NET_VERBS, NET_FORMATS)
    } else {
        (GPU_PARTS, GPU_VERBS, GPU_FORMATS)
    }
}

/// The demo's class map and sites (deterministic).
pub fn table() -> (Vec<ClassMapSpec>, Vec<SiteSpec>) {
    let drm_modules: Vec<String> = [
        "amdgpu",
        "i915",
        "drm",
        "drm_display_helper",
        "drm_kms_helper",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let map = ClassMapSpec {
        param: "drm.debug".into(),
        kind: ClassMapKind::DisjointBits,
        base: 0,
        classes: DRM_CLASSES.iter().map(|s| s.to_string()).collect(),
        modules: drm_modules.clone(),
        flags: "p".into(),
    };
    let mut sites = Vec::with_capacity(8077);
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for &(module, count) in MODULES {
        let (names, verbs, formats) = parts(module);
        let class_capable = drm_modules.iter().any(|m| m == module);
        for i in 0..count {
            let part = names[i % names.len()];
            let verb = verbs[(i / names.len()) % verbs.len()];
            let file = format!("{}/{}_{}.c", path_of(module), module, part);
            let r = next();
            // About 60% of the DRM-ish sites are class'd (drm_dbg_* style).
            let class = (class_capable && r % 10 < 6)
                .then(|| DRM_CLASSES[(r >> 8) as usize % DRM_CLASSES.len()].to_string());
            sites.push(SiteSpec {
                module: module.into(),
                file,
                func: format!("{module}_{part}_{verb}"),
                line: 40 + (i as u32 * 37) % 4000,
                format: formats[(r >> 16) as usize % formats.len()].into(),
                class,
            });
        }
    }
    (vec![map], sites)
}

/// A sink that prints at most [`LINES_PER_SECOND`] lines a second to
/// stderr and reports what it held back.
#[derive(Debug, Default)]
pub struct CappedStderr {
    window: Mutex<(Option<Instant>, u64, u64)>,
}

impl Sink for CappedStderr {
    fn emit(&self, r: &Record<'_>) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let fresh =
            w.0.is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1));
        if fresh {
            if w.2 > 0 {
                eprintln!(
                    "dynkeyd demo: {} debug lines held back (at most {LINES_PER_SECOND}/s)",
                    w.2
                );
            }
            *w = (Some(now), 0, 0);
        }
        if w.1 >= LINES_PER_SECOND {
            w.2 += 1;
            return;
        }
        w.1 += 1;
        drop(w);
        dynkey::sink::Stderr.emit(r);
    }
}

/// A running demo.
#[derive(Debug)]
pub struct Demo {
    stop: std::sync::Arc<AtomicBool>,
    /// Site checks performed by all workers.
    pub checks: std::sync::Arc<AtomicU64>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Demo {
    /// Registers the table and starts `workers` paced threads; each chunk of
    /// work also runs `work` (the binary passes a function that uses its
    /// own static key and static call).
    pub fn start(
        control: &Control,
        workers: usize,
        work: fn(&[u8]) -> u32,
    ) -> Result<Demo, dynkey::Error> {
        let (maps, specs) = table();
        let sites: std::sync::Arc<[RuntimeSite]> = control.register(maps, specs)?.into();
        dynkey::sink::set_sink(CappedStderr::default());
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let checks = std::sync::Arc::new(AtomicU64::new(0));
        // Work is handed out through a channel: each message is a slice of
        // sites to run, as requests would arrive in a real service.
        let (tx, rx) = crossbeam_channel::bounded::<std::ops::Range<usize>>(workers * 2);
        let mut handles = Vec::new();
        for _ in 0..workers {
            let (rx, sites, checks) = (rx.clone(), sites.clone(), checks.clone());
            handles.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                for range in rx {
                    let n = range.len() as u64;
                    buf[0] = buf[0].wrapping_add(1);
                    std::hint::black_box(work(&buf));
                    for s in &sites[range] {
                        if s.enabled() {
                            let fmt = s.callsite().format();
                            s.emit(format_args!("{}", fill(fmt)));
                        }
                    }
                    checks.fetch_add(n, Ordering::Relaxed);
                }
            }));
        }
        let (stop2, len) = (stop.clone(), sites.len());
        handles.push(std::thread::spawn(move || {
            // About 200,000 site checks a second in chunks of 500: a busy
            // service's worth of debug sites, at a few percent of one core.
            let mut at = 0;
            while !stop2.load(Ordering::Relaxed) {
                let end = (at + 500).min(len);
                if tx.send(at..end).is_err() {
                    break;
                }
                at = if end == len { 0 } else { end };
                std::thread::sleep(Duration::from_micros(2500));
            }
        }));
        Ok(Demo {
            stop,
            checks,
            workers: handles,
        })
    }

    /// Stops the workers.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.workers {
            let _ = h.join();
        }
    }
}

/// Fills printf-style conversions with sample values, for display.
fn fill(fmt: &str) -> String {
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut it = fmt.trim_end_matches('\n').chars().peekable();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if it.peek() == Some(&'%') {
            it.next();
            out.push('%');
            continue;
        }
        let mut spec = String::new();
        while let Some(&n) = it.peek() {
            it.next();
            if n.is_ascii_alphabetic() && !matches!(n, 'l' | 'h' | 'z') {
                spec.push(n);
                break;
            }
        }
        out.push_str(match spec.as_str() {
            "s" => "gfx",
            "p" => "0xffff8881042a6000",
            "x" => "3f",
            "c" => "A",
            _ => "42",
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_kernel_like_sizes() {
        let (maps, sites) = table();
        assert_eq!(sites.len(), 8077);
        assert_eq!(sites.iter().filter(|s| s.module == "amdgpu").count(), 4532);
        assert_eq!(
            sites
                .iter()
                .filter(|s| s.module.starts_with("virtio"))
                .count(),
            1133
        );
        assert!(
            sites
                .iter()
                .filter(|s| s.class.is_some())
                .all(|s| maps[0].modules.contains(&s.module))
        );
        let unclassed_drm = sites
            .iter()
            .filter(|s| s.module == "drm" && s.class.is_none())
            .count();
        assert!(
            unclassed_drm > 50,
            "plain queries have DRM sites to act on too"
        );
    }

    #[test]
    fn fill_replaces_conversions() {
        assert_eq!(
            fill("ring %s timeout, seq=%u at %llu\n"),
            "ring gfx timeout, seq=42 at 42"
        );
        assert_eq!(fill("100%% sure %p"), "100% sure 0xffff8881042a6000");
    }
}
