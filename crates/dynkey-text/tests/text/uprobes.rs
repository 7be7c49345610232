//! Issue 10, item 2: a uprobe attached before the take-over must not kill
//! the process.
//!
//! Uprobes write `int3` into the process's copy of the probed page and are
//! keyed by the file's inode. A take-over that copied the page from memory
//! carried the `int3` into the memfd, where the kernel finds no uprobe for
//! it: the next call of the function died by `SIGTRAP`. The child attaches
//! a uprobe (through tracefs, as `perf probe` does) to a function that lies
//! in a page holding sites, starts the runtime, and calls the function.
//!
//! Needs root and tracefs with uprobe events; skipped, saying why, only
//! where uprobes are truly unavailable.

use std::io::Write;

use dynkey_text::{RawKey, branch_unlikely};

use crate::{child, last_json, mapping_at, role};

const TRACEFS: &str = "/sys/kernel/tracing";
const GROUP: &str = "dynkey_text_test";

static PROBED_KEY: RawKey = RawKey::new(false);

/// The probed function; it holds a site, so its page is taken over.
#[inline(never)]
fn probed(x: u64) -> u64 {
    if branch_unlikely!(PROBED_KEY) {
        x * 3
    } else {
        std::hint::black_box(x) + 1
    }
}

/// Where tracefs is, mounting it if needed; the reason uprobes are absent.
fn tracefs() -> Result<String, String> {
    let events = format!("{TRACEFS}/uprobe_events");
    if std::path::Path::new(&events).exists() {
        return Ok(events);
    }
    // SAFETY: mount with NUL-terminated literals and no data.
    let r = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!(
            "tracefs is not mounted and mounting it failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    if std::path::Path::new(&events).exists() {
        Ok(events)
    } else {
        Err("this kernel has no uprobe events (CONFIG_UPROBE_EVENTS)".into())
    }
}

fn append(path: &str, line: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

/// Removes the event when the test ends, however it ends.
struct Probe {
    events: String,
    name: String,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = std::fs::write(
            format!("{TRACEFS}/events/{GROUP}/{}/enable", self.name),
            "0",
        );
        let _ = append(&self.events, &format!("-:{GROUP}/{}\n", self.name));
    }
}

#[test]
fn a_uprobe_on_taken_over_text_does_not_kill_the_process() {
    let events = match tracefs() {
        Ok(e) => e,
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "uprobes test skipped: {why}");
            return;
        }
    };
    // The child attaches the probe (it knows where its function is); this
    // guard removes it even if the child dies.
    let name = format!("p{}_{}", std::process::id(), line!());
    let _probe = Probe {
        events,
        name: name.clone(),
    };
    let out = child(
        "uprobes::child_probed",
        &[("DYNKEY_CHILD", "probed"), ("DYNKEY_UPROBE_NAME", &name)],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.contains("uprobes unavailable:") {
        let _ = writeln!(std::io::stderr(), "uprobes test skipped: {stdout}");
        return;
    }
    assert!(
        out.status.success(),
        "the child must survive calling its probed function (the old take-over died by SIGTRAP): {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let j = last_json(&out);
    assert_eq!(j["kind"], "inline", "{j}");
    assert_eq!(j["taken_over"], true, "the probed page was taken over: {j}");
    assert_eq!(j["result"], 3, "the function ran: {j}");
    let notes = j["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .contains(&format!("{:#x}", j["probe_addr"].as_u64().unwrap()))),
        "the dropped breakpoint is in the status notes: {j}"
    );
}

/// Child entry point.
#[test]
#[ignore = "run by a_uprobe_on_taken_over_text_does_not_kill_the_process in a child process"]
fn child_probed() {
    if role().as_deref() != Some("probed") {
        return;
    }
    let name = std::env::var("DYNKEY_UPROBE_NAME").unwrap();
    let addr = probed as *const () as usize;
    let line = mapping_at(addr).expect("the function is mapped");
    let start = usize::from_str_radix(line[0].split_once('-').unwrap().0, 16).unwrap();
    let offset = u64::from_str_radix(&line[2], 16).unwrap() + (addr - start) as u64;
    let path = &line[5];
    let events = format!("{TRACEFS}/uprobe_events");
    if let Err(e) = append(&events, &format!("p:{GROUP}/{name} {path}:{offset:#x}\n"))
        .and_then(|()| std::fs::write(format!("{TRACEFS}/events/{GROUP}/{name}/enable"), "1"))
    {
        println!("uprobes unavailable: cannot attach a uprobe: {e}");
        return;
    }
    // The probe is live: the page now holds an int3 the kernel knows.
    // SAFETY: reads the first byte of a function of this binary.
    let byte = unsafe { (addr as *const u8).read_volatile() };
    assert_eq!(byte, 0xcc, "the uprobe wrote its breakpoint");
    assert_eq!(probed(1), 2, "the probed function runs under the probe");

    let status = dynkey_text::status().unwrap();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let taken_over = maps.lines().any(|l| {
        let r = l.split_whitespace().next().unwrap();
        let (a, b) = r.split_once('-').unwrap();
        usize::from_str_radix(a, 16).unwrap() <= addr
            && addr < usize::from_str_radix(b, 16).unwrap()
            && l.contains("memfd:dynkey-text")
    });
    dynkey_text::commit(&[dynkey_text::Change::Key(&PROBED_KEY, true)]).unwrap();
    let result = probed(1); // the old take-over died here (SIGTRAP)
    println!(
        "{}",
        serde_json::json!({
            "kind": status.site_kind.as_str(),
            "taken_over": taken_over,
            "result": result,
            "probe_addr": addr,
            "notes": status.notes,
        })
    );
}
