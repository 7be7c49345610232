//! `/tmp/perf-PID.map`: names for code that profilers cannot attribute.
//!
//! Text pages taken over by a memfd copy show up in `/proc/PID/maps` as
//! `/memfd:dynkey-text (deleted)`, not as the binary, so `perf` cannot find
//! their symbols. With `DYNKEY_PERF_MAP=1` the runtime writes the function
//! symbols of the binary that lie in those pages (from its `.symtab`) in the
//! perf map format, `START SIZE NAME` in hex, plus one line per stub chunk.
//!
//! `/tmp/perf-PID.map` is a predictable name in a shared directory, so the
//! file is opened with `O_NOFOLLOW` (a symlink planted there is not
//! followed) and used only if it is a regular file owned by this process's
//! user with one link (not a hard link to someone else's file).

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use crate::code_table::CodeTable;

/// Writes the map; failures are reported on stderr and otherwise ignored
/// (a profiling aid must never break the program).
pub(crate) fn write(table: &CodeTable) {
    if let Err(e) = try_write(table) {
        eprintln!("dynkey: could not write the perf map: {e}");
    }
}

/// Opens `path` for appending, refusing anything but our own regular file.
fn open_own(path: &str) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let meta = file.metadata()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() || meta.uid() != me || meta.nlink() != 1 {
        return Err(std::io::Error::other(format!(
            "refusing {path}: not a regular file of uid {me} with one link (uid {}, {} links)",
            meta.uid(),
            meta.nlink()
        )));
    }
    Ok(file)
}

fn try_write(table: &CodeTable) -> std::io::Result<()> {
    let path = format!("/tmp/perf-{}.map", std::process::id());
    let mut out = std::io::BufWriter::new(open_own(&path)?);
    let symbols = elf_functions().unwrap_or_default();
    for r in table.regions.iter() {
        let (lo, hi) = (r.start(), r.start() + r.len());
        let mut named = false;
        for (addr, size, name) in &symbols {
            if *addr < hi && addr + size > lo {
                writeln!(out, "{addr:x} {size:x} {name}")?;
                named = true;
            }
        }
        if !named {
            writeln!(out, "{lo:x} {:x} [dynkey code pages]", r.len())?;
        }
    }
    out.flush()
}

/// Function symbols of the running executable, relocated: (address, size, name).
fn elf_functions() -> Option<Vec<(usize, usize, String)>> {
    let data = std::fs::read("/proc/self/exe").ok()?;
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?) as usize);
    if data.get(..4)? != b"\x7fELF" || *data.get(4)? != 2 {
        return None; // not a 64-bit ELF
    }
    let (phoff, shoff) = (u64_at(0x20)?, u64_at(0x28)?);
    let (phentsize, phnum) = (u16_at(0x36)? as usize, u16_at(0x38)? as usize);
    let (shentsize, shnum) = (u16_at(0x3a)? as usize, u16_at(0x3c)? as usize);
    // Load bias: where the program headers are now, minus where they were linked.
    // SAFETY: getauxval has no preconditions.
    let at_phdr = unsafe { libc::getauxval(libc::AT_PHDR) } as usize;
    let pt_phdr_vaddr = (0..phnum).find_map(|i| {
        let ph = phoff + i * phentsize;
        (u32_at(ph)? == libc::PT_PHDR)
            .then(|| u64_at(ph + 0x10))
            .flatten()
    })?;
    let bias = at_phdr.wrapping_sub(pt_phdr_vaddr);
    let section = |i: usize| shoff + i * shentsize;
    let symtab = (0..shnum).find(|&i| u32_at(section(i) + 4) == Some(2))?; // SHT_SYMTAB
    let strtab = u32_at(section(symtab) + 0x28)? as usize; // sh_link
    let (sym_off, sym_size) = (
        u64_at(section(symtab) + 0x18)?,
        u64_at(section(symtab) + 0x20)?,
    );
    let str_off = u64_at(section(strtab) + 0x18)?;
    let mut out = Vec::new();
    for s in (sym_off..sym_off + sym_size).step_by(24) {
        let info = *data.get(s + 4)?;
        let (value, size) = (u64_at(s + 8)?, u64_at(s + 16)?);
        if info & 0xf != 2 || value == 0 || size == 0 {
            continue; // STT_FUNC with an address and a size only
        }
        let name_at = str_off + u32_at(s)? as usize;
        let len = data.get(name_at..)?.iter().position(|&b| b == 0)?;
        let name = String::from_utf8_lossy(&data[name_at..name_at + len]).into_owned();
        out.push((value.wrapping_add(bias), size, name));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> String {
        let p = format!("/tmp/dynkey-perfmap-test-{}-{name}", std::process::id());
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn a_planted_symlink_is_not_followed() {
        let (link, target) = (scratch("link"), scratch("target"));
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_own(&link).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP), "{err}");
        assert!(
            !std::path::Path::new(&target).exists(),
            "nothing created through the link"
        );
        std::fs::remove_file(&link).unwrap();
    }

    #[test]
    fn a_hard_link_to_another_file_is_refused() {
        let (file, link) = (scratch("file"), scratch("hard"));
        std::fs::write(&file, "theirs\n").unwrap();
        std::fs::hard_link(&file, &link).unwrap();
        let err = open_own(&link).unwrap_err();
        assert!(err.to_string().contains("2 links"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "theirs\n",
            "untouched"
        );
        std::fs::remove_file(&file).unwrap();
        std::fs::remove_file(&link).unwrap();
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: making a file of another user needs root");
            return;
        }
        let file = scratch("other");
        std::fs::write(&file, "").unwrap();
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        let err = open_own(&file).unwrap_err();
        assert!(err.to_string().contains("uid 65534"), "{err}");
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn our_own_file_is_appended_to() {
        let file = scratch("own");
        open_own(&file).unwrap().write_all(b"a\n").unwrap();
        open_own(&file).unwrap().write_all(b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "a\nb\n");
        std::fs::remove_file(&file).unwrap();
    }
}
