//! Which text pages to take over, and the bytes to put in their place.
//!
//! The pages that hold compiled-in sites are replaced by a memfd copy
//! ([`Region::take_over`](crate::pages::Region::take_over)). The copy is
//! made from the **file** that backs the mapping (the executable, or the
//! shared object the sites are in), read at the mapping's offset, not from
//! memory: memory may hold breakpoints. A uprobe (perf probe, bpftrace,
//! systemtap) or a debugger writes `int3` over the first byte of an
//! instruction; uprobes are keyed by the file's inode, so under the memfd
//! the kernel would find no probe for such an `int3` and the next call of
//! that function would die by `SIGTRAP`. So:
//!
//! - bytes that differ from the file only by `int3` breakpoints are
//!   dropped (the file's bytes are copied) and [`Status::notes`] says
//!   where; those probes stop firing in this process, and probes attached
//!   later to these pages never fire (the pages are no longer the file's);
//! - any other difference (text relocations, another code patcher) makes
//!   patching unavailable, with the reason: copying the file would undo it,
//!   copying memory could keep a foreign `int3`;
//! - a mapping whose file cannot be read (deleted, replaced, no
//!   permission) makes patching unavailable too.
//!
//! The file is opened through `/proc/self/map_files/START-END` (the mapping
//! itself; needs `CAP_CHECKPOINT_RESTORE` or `CAP_SYS_ADMIN`), else by the
//! path in `/proc/self/maps`, checked against the device and inode of the
//! maps line so a replaced file is never read.
//!
//! [`Status::notes`]: crate::Status::notes

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};

use crate::arch;

/// One line of `/proc/self/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapsLine {
    pub start: usize,
    pub end: usize,
    pub perms: String,
    /// Offset in the file of `start`.
    pub offset: u64,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub inode: u64,
    /// The path, if any (may end with ` (deleted)`).
    pub path: Option<String>,
}

impl MapsLine {
    fn parse(line: &str) -> Option<MapsLine> {
        let mut it = line.splitn(6, ' ');
        let (range, perms, offset, dev, inode) =
            (it.next()?, it.next()?, it.next()?, it.next()?, it.next()?);
        let path = it.next().map(str::trim).filter(|p| !p.is_empty());
        let (a, b) = range.split_once('-')?;
        let (maj, min) = dev.split_once(':')?;
        Some(MapsLine {
            start: usize::from_str_radix(a, 16).ok()?,
            end: usize::from_str_radix(b, 16).ok()?,
            perms: perms.to_owned(),
            offset: u64::from_str_radix(offset, 16).ok()?,
            dev_major: u32::from_str_radix(maj, 16).ok()?,
            dev_minor: u32::from_str_radix(min, 16).ok()?,
            inode: inode.trim().parse().ok()?,
            path: path.map(str::to_owned),
        })
    }

    /// Readable and executable, not writable.
    pub(crate) fn is_text(&self) -> bool {
        self.perms.starts_with("r-x")
    }
}

/// The mappings of this process (empty if `/proc/self/maps` is unreadable).
pub(crate) fn maps() -> Vec<MapsLine> {
    std::fs::read_to_string("/proc/self/maps")
        .map(|t| t.lines().filter_map(MapsLine::parse).collect())
        .unwrap_or_default()
}

/// Groups page-aligned addresses into runs `[start, end)`, merging runs
/// separated by fewer than `gap` pages (fewer mappings, a little more copying).
pub(crate) fn page_runs(mut pages: Vec<usize>, page: usize, gap: usize) -> Vec<(usize, usize)> {
    pages.sort_unstable();
    pages.dedup();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for p in pages {
        match runs.last_mut() {
            Some((_, end)) if p <= *end + gap * page => *end = p + page,
            _ => runs.push((p, p + page)),
        }
    }
    runs
}

/// The bytes a run must hold, and what was dropped to get them.
#[derive(Debug)]
pub(crate) struct Copy {
    pub bytes: Vec<u8>,
    /// Breakpoints dropped, for [`Status::notes`](crate::Status::notes).
    pub note: Option<String>,
}

/// The file behind `map`, opened and checked against its maps line.
fn open_backing(map: &MapsLine) -> Result<File, String> {
    let same = |f: &File| {
        f.metadata().is_ok_and(|m| {
            m.dev() == libc::makedev(map.dev_major, map.dev_minor) && m.ino() == map.inode
        })
    };
    let mut why = Vec::new();
    let map_files = format!("/proc/self/map_files/{:x}-{:x}", map.start, map.end);
    match File::open(&map_files) {
        Ok(f) if same(&f) => return Ok(f),
        Ok(_) => why.push(format!("{map_files} is another file")),
        Err(e) => why.push(format!("{map_files}: {e}")),
    }
    match map.path.as_deref() {
        Some(p) if p.starts_with('/') && !p.ends_with(" (deleted)") => match File::open(p) {
            Ok(f) if same(&f) => return Ok(f),
            Ok(_) => why.push(format!("{p} was replaced since it was mapped")),
            Err(e) => why.push(format!("{p}: {e}")),
        },
        Some(p) => why.push(format!("the mapping's file is {p}")),
        None => why.push("the mapping has no file".into()),
    }
    Err(why.join("; "))
}

/// The bytes the file behind `map` holds for `[start, end)` (inside `map`).
pub(crate) fn file_text(map: &MapsLine, start: usize, end: usize) -> Result<Vec<u8>, String> {
    let what = || format!("text {start:#x}..{end:#x}");
    let file =
        open_backing(map).map_err(|e| format!("{} has no readable backing file ({e})", what()))?;
    // Bytes past the end of the file read as zeros, as the kernel maps
    // them in the last page of a mapping.
    let mut bytes = vec![0u8; end - start];
    let at = map.offset + (start - map.start) as u64;
    let mut n = 0;
    while n < bytes.len() {
        match file.read_at(&mut bytes[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read {} from its file: {e}", what())),
        }
    }
    Ok(bytes)
}

/// The file's bytes for `[start, end)` (inside `map`), compared with what
/// memory holds; the reason when they cannot be used (see the module docs).
pub(crate) fn file_bytes(map: &MapsLine, start: usize, end: usize) -> Result<Copy, String> {
    debug_assert!(map.start <= start && end <= map.end);
    let what = || format!("text {start:#x}..{end:#x}");
    let bytes = file_text(map, start, end)?;
    let mut breakpoints = Vec::new();
    for (i, chunk) in bytes.chunks_exact(8).enumerate() {
        // SAFETY: the run lies inside `map`, a readable mapping of this
        // process that nothing unmaps while the text lock is held (the
        // caller's), and `start` is page-aligned, so the address is 8-aligned.
        let mem = unsafe { arch::read_code_word(start + 8 * i) }.to_le_bytes();
        for (j, (&m, &f)) in mem.iter().zip(chunk).enumerate() {
            if m != f {
                if m != arch::INT3 {
                    return Err(format!(
                        "{} differs from {} at {:#x} ({m:#04x} in memory, {f:#04x} in the file), and not by a breakpoint: something else patched it",
                        what(),
                        map.path.as_deref().unwrap_or("its file"),
                        start + 8 * i + j
                    ));
                }
                breakpoints.push(start + 8 * i + j);
            }
        }
    }
    let note = (!breakpoints.is_empty()).then(|| {
        let shown: Vec<String> = breakpoints.iter().take(8).map(|a| format!("{a:#x}")).collect();
        format!(
            "{}: dropped {} breakpoint byte(s) (uprobes or a debugger) at {}{}; the pages now hold the bytes of {}, and probes on them no longer fire in this process",
            what(),
            breakpoints.len(),
            shown.join(", "),
            if breakpoints.len() > shown.len() { ", ..." } else { "" },
            map.path.as_deref().unwrap_or("their file"),
        )
    });
    Ok(Copy { bytes, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_small_gaps_only() {
        let pg = 4096;
        let runs = page_runs(vec![0x5000, 0x1000, 0x2000, 0x1000, 0x40000], pg, 2);
        // 0x3000..0x5000 is a 2-page gap: merged; 0x40000 is far: its own run.
        assert_eq!(runs, vec![(0x1000, 0x6000), (0x40000, 0x41000)]);
    }

    #[test]
    fn maps_lines_parse() {
        let l = MapsLine::parse(
            "55d0c0a00000-55d0c0b00000 r-xp 00012000 fd:01 1234567                    /usr/bin/my prog",
        )
        .unwrap();
        assert_eq!((l.start, l.end), (0x55d0c0a00000, 0x55d0c0b00000));
        assert!(l.is_text());
        assert_eq!(l.offset, 0x12000);
        assert_eq!((l.dev_major, l.dev_minor, l.inode), (0xfd, 1, 1234567));
        assert_eq!(l.path.as_deref(), Some("/usr/bin/my prog"), "spaces kept");
        let anon = MapsLine::parse("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(anon.path, None);
        assert!(!anon.is_text());
        assert!(MapsLine::parse("garbage").is_none());
    }

    #[test]
    fn this_binarys_text_comes_from_its_file() {
        let here = this_binarys_text_comes_from_its_file as *const () as usize;
        let page = crate::pages::page_size();
        let start = here & !(page - 1);
        let m = maps()
            .into_iter()
            .find(|m| m.start <= here && here < m.end)
            .expect("mapped");
        assert!(m.is_text());
        let copy = file_bytes(&m, start, start + page).unwrap();
        // SAFETY: this function's own page: mapped, readable, 8-aligned.
        let mem = unsafe { arch::read_code_word(start) };
        if copy.note.is_none() {
            assert_eq!(u64::from_le_bytes(copy.bytes[..8].try_into().unwrap()), mem);
        }
    }

    #[test]
    fn an_anonymous_mapping_has_no_backing_file() {
        let m = MapsLine {
            start: 0x1000,
            end: 0x2000,
            perms: "r-xp".into(),
            offset: 0,
            dev_major: 0,
            dev_minor: 0,
            inode: 0,
            path: None,
        };
        let e = file_bytes(&m, 0x1000, 0x2000).unwrap_err();
        assert!(e.contains("no readable backing file"), "{e}");
    }
}
