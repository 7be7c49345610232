//! Code pages: memory mapped twice from one memfd.
//!
//! Every page of code that dynkey writes is a page of a memfd mapped twice:
//! an executable view (`PROT_READ | PROT_EXEC`, where threads run) and a
//! writable alias (`PROT_READ | PROT_WRITE`, where the committer stores).
//! No mapping is ever writable and executable at once (`[W^X]`).
//!
//! Two ways to get such a [`Region`]:
//! - [`Region::take_over`]: text pages of the binary that hold sites are
//!   replaced by a memfd copy of their file's bytes (`takeover.rs` reads
//!   them), mapped `MAP_FIXED` over them. The kernel replaces the mapping
//!   under its mmap lock, so a thread running there never sees a gap; it
//!   faults the new page in.
//! - [`Region::alloc`]: fresh pages for run-time stubs ([`StubPages`]),
//!   placed near the binary's text when possible so stubs can reach Rust
//!   functions with a `rel32`.
//!
//! # Safety
//!
//! A region owns both mappings for the life of the process (they are never
//! unmapped, so executable addresses handed out stay valid). Words are
//! written only through [`Region::store`] and [`Region::fill_fresh`], whose
//! contracts carry `[ONE-STORE]`, `[OLD-VERIFIED]` and the text lock. Every
//! Rust access to alias memory is atomic; the executable view is read only
//! with [`arch::read_code_word`](crate::arch::read_code_word), outside
//! Rust's memory model (it is code, and may be a mapping Rust never wrote).
//! Descriptors are `OwnedFd`s and half-made mappings are [`Mapping`] guards,
//! so an error path cannot leak either.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::arch;
use crate::error::{Error, errno};
use crate::placement::{Attempt, Placement};

/// `MFD_EXEC` (Linux 6.3+): ask for an executable memfd explicitly, so a
/// `vm.memfd_noexec=1` default does not seal it non-executable.
const MFD_EXEC: libc::c_uint = 0x0010;

/// Bytes per chunk of run-time stub pages.
const STUB_CHUNK: usize = 64 << 10;

/// Pages mapped twice from one memfd.
#[derive(Debug)]
pub(crate) struct Region {
    /// Start of the executable view.
    rx: usize,
    /// Start of the writable alias.
    rw: usize,
    /// Length of both views, a whole number of pages.
    len: usize,
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// A mapping made here and not yet handed to a [`Region`]: unmapped on
/// drop, so every error path releases it.
struct Mapping {
    addr: usize,
    len: usize,
}

impl Mapping {
    /// Keeps the mapping for good; its address.
    fn keep(self) -> usize {
        let addr = self.addr;
        std::mem::forget(self);
        addr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the guard owns this mapping (made by `map_alias` or
        // `map_exec_near` and never handed out), so nothing refers to it.
        unsafe { libc::munmap(self.addr as *mut libc::c_void, self.len) };
    }
}

/// Creates a memfd of `len` bytes that may be mapped executable.
fn memfd(name: &CStr, len: usize) -> Result<OwnedFd, Error> {
    let create = |flags: libc::c_uint| {
        // SAFETY: name is a valid NUL-terminated string; memfd_create takes
        // no other pointers.
        unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) as libc::c_int }
    };
    let mut fd = create(libc::MFD_CLOEXEC | MFD_EXEC);
    if fd < 0 && errno() == libc::EINVAL {
        // Kernels before 6.3 do not know MFD_EXEC; their memfds are executable.
        fd = create(libc::MFD_CLOEXEC);
    }
    if fd < 0 {
        return Err(Error::last_os("memfd_create"));
    }
    // SAFETY: memfd_create returned a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate on a descriptor we own.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
        return Err(Error::last_os("ftruncate(memfd)"));
    }
    Ok(fd)
}

/// Maps `fd` writable and shared at an address of the kernel's choice.
fn map_alias(fd: &OwnedFd, len: usize) -> Result<Mapping, Error> {
    // SAFETY: a fresh mapping at a kernel-chosen address touches no existing
    // memory; [W^X] it is not executable.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(Error::last_os("mmap(alias)"))
    } else {
        Ok(Mapping {
            addr: p as usize,
            len,
        })
    }
}

/// The aligned atomic word at `addr` of a writable alias.
///
/// # Safety
///
/// `addr` is 8-aligned and inside a live `PROT_READ | PROT_WRITE` alias
/// mapping that outlives `'a`, and every Rust access to that memory is
/// atomic (true of aliases: only this file touches them, through here).
unsafe fn alias_atomic<'a>(addr: usize) -> &'a AtomicU64 {
    // SAFETY: the caller's contract is `from_ptr`'s: aligned, valid for
    // reads and writes, accessed only atomically.
    unsafe { AtomicU64::from_ptr(addr as *mut u64) }
}

impl Region {
    /// Takes over `[start, start + len)`: maps a memfd holding `bytes`
    /// `MAP_FIXED` over it, and keeps a writable alias.
    ///
    /// # Safety
    ///
    /// - `start` and `len` are page-aligned and the range lies inside one
    ///   readable, executable mapping of this process;
    /// - `bytes` (`len` of them) are the range's contents, except that the
    ///   range may hold breakpoints (`int3`) where `bytes` hold the first
    ///   byte of an instruction: every instruction start of the range is
    ///   one of `bytes`, so a thread running there, or stopped there,
    ///   resumes correctly in the copy (the same rule as `[ONE-STORE]`);
    /// - nothing writes the range while this runs (the caller holds the
    ///   text lock and no region covers it yet);
    /// - the caller has checked that an executable memfd mapping works
    ///   ([`Region::alloc`] succeeded), so the `MAP_FIXED` below does not
    ///   fail for lack of permission after replacing the old mapping.
    pub(crate) unsafe fn take_over(
        start: usize,
        len: usize,
        bytes: &[u8],
    ) -> Result<Region, Error> {
        assert_eq!(bytes.len(), len, "the copy covers the range");
        let fd = memfd(c"dynkey-text", len)?;
        let alias = map_alias(&fd, len)?;
        // SAFETY: the alias is a fresh, private-to-us mapping of len bytes
        // that nothing else refers to yet; `bytes` cannot overlap it.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), alias.addr as *mut u8, len) };
        // SAFETY: [W^X] the new view is read+exec only; the memfd holds
        // `bytes`, which may replace the range's contents under running
        // threads (the caller's contract: [ONE-STORE]'s rule on instruction
        // starts, for the whole range at once).
        unsafe { map_exec_fixed(&fd, start, len) }?;
        // The two mappings keep the file alive; `fd` closes here.
        Ok(Region {
            rx: start,
            rw: alias.keep(),
            len,
        })
    }

    /// Maps `len` fresh bytes (whole pages) twice, filled with `fill`, with
    /// the executable view within `rel32` reach of `near` when `placement`
    /// finds a free spot (callers check reach per target anyway).
    pub(crate) fn alloc(
        len: usize,
        near: usize,
        fill: u8,
        placement: &mut Placement,
    ) -> Result<Region, Error> {
        let fd = memfd(c"dynkey-stubs", len)?;
        let alias = map_alias(&fd, len)?;
        // SAFETY: the alias is a fresh mapping of len writable bytes that no
        // thread can execute yet (the executable view does not exist).
        unsafe { std::ptr::write_bytes(alias.addr as *mut u8, fill, len) };
        let rx = map_exec_near(&fd, len, near, placement)?;
        Ok(Region {
            rx: rx.keep(),
            rw: alias.keep(),
            len,
        })
    }

    /// Start of the executable view.
    pub(crate) fn start(&self) -> usize {
        self.rx
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether `[addr, addr + n)` lies in the executable view.
    pub(crate) fn contains(&self, addr: usize, n: usize) -> bool {
        addr >= self.rx && addr + n <= self.rx + self.len
    }

    /// The alias word behind the executable address `word_addr`.
    fn alias_word(&self, word_addr: usize) -> &AtomicU64 {
        assert!(
            word_addr.is_multiple_of(8) && self.contains(word_addr, 8),
            "word {word_addr:#x} outside region"
        );
        // SAFETY: both views are page-aligned, so the alias address is
        // 8-aligned too; it lies inside the alias, which lives as long as
        // the region (the process), and every Rust access to it is atomic
        // (instruction fetch of the same physical page is not a Rust access).
        unsafe { alias_atomic(self.rw + (word_addr - self.rx)) }
    }

    /// Reads the word at `word_addr` (an executable-view address) through
    /// the alias.
    pub(crate) fn load(&self, word_addr: usize) -> u64 {
        // Acquire: pairs with the Release in `store` (an earlier commit's,
        // possibly on another thread; the text lock orders them anyway).
        self.alias_word(word_addr).load(Ordering::Acquire)
    }

    /// Reads the word at `word_addr` as the executable view shows it: the
    /// bytes threads run, which differ from the alias only if someone else
    /// remapped the range (`[OLD-VERIFIED]` checks both).
    pub(crate) fn load_executed(&self, word_addr: usize) -> u64 {
        assert!(
            word_addr.is_multiple_of(8) && self.contains(word_addr, 8),
            "word {word_addr:#x} outside region"
        );
        // SAFETY: the word is 8-aligned and inside the executable view,
        // which this region keeps mapped readable for the life of the
        // process (nothing in this crate unmaps it; if something else did,
        // the sites there would fault as well).
        unsafe { arch::read_code_word(word_addr) }
    }

    /// Writes the word at `word_addr` (an executable-view address) with one
    /// aligned 8-byte atomic store through the alias.
    ///
    /// # Safety
    ///
    /// - The caller holds the text lock: it is the only writer of code.
    /// - `[OLD-VERIFIED]`: the word holds what the caller last checked it
    ///   holds (so the store replaces a known form).
    /// - `[ONE-STORE]`: the old and the new form are each whole
    ///   instructions of this word (plus bytes that never change), and every
    ///   instruction start of the old form is an instruction start of the
    ///   new one (the `arch` encodings keep this, tested in
    ///   `code_table.rs`); or no thread can have reached the word yet.
    pub(crate) unsafe fn store(&self, word_addr: usize, word: u64) {
        // Release: pairs with `load` in a later commit; cross-thread
        // visibility to *instruction fetch* comes from the rendezvous.
        self.alias_word(word_addr).store(word, Ordering::Release);
    }

    /// Copies bytes into a part of the region, in whole words.
    ///
    /// # Safety
    ///
    /// The caller holds the text lock, and no thread can be executing
    /// `[addr, addr + bytes.len())`: a fresh stub slot whose address was
    /// never handed out (`[ONE-STORE]` does not apply: there is no old form
    /// anyone runs).
    pub(crate) unsafe fn fill_fresh(&self, addr: usize, bytes: &[u8]) {
        assert!(
            addr.is_multiple_of(8) && bytes.len().is_multiple_of(8),
            "fresh slots are whole words"
        );
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(chunk.try_into().expect("chunks_exact(8)"));
            // SAFETY: the caller's contract covers every word of the slot:
            // text lock held, and no thread runs these bytes yet, so
            // [OLD-VERIFIED] and [ONE-STORE] have no old form to protect.
            unsafe { self.store(addr + 8 * i, w) };
        }
    }

    /// Gives a fork child its own copy of the pages, so it stops sharing the
    /// parent's: a new memfd, filled word by word through the old alias
    /// (the parent may still be storing into the shared pages, so each word
    /// is read atomically), mapped `MAP_FIXED` over the view.
    ///
    /// The parent may change a word between the copy and the swap; the
    /// caller then rewrites every word from the child's own key states
    /// (`fork.rs`), each with one store.
    ///
    /// # Safety
    ///
    /// The caller holds the text lock, and every word of the region holds a
    /// form that the parent may store there (so replacing a word's bytes by
    /// a copy taken a moment earlier is one more `[ONE-STORE]` transition).
    pub(crate) unsafe fn retake(&mut self) -> Result<(), Error> {
        let fd = memfd(c"dynkey-text", self.len)?;
        let alias = map_alias(&fd, self.len)?;
        for off in (0..self.len).step_by(8) {
            let w = self.alias_word(self.rx + off).load(Ordering::Relaxed);
            // SAFETY: inside the new alias, 8-aligned (page-aligned base),
            // and ours alone until the swap below.
            unsafe { alias_atomic(alias.addr + off) }.store(w, Ordering::Relaxed);
        }
        // SAFETY: [W^X] read+exec; the memfd holds the view's contents word
        // by word as of a moment ago, and every difference since is a
        // transition the parent made with one [ONE-STORE] store (the
        // caller's contract), so the swap is one more such transition.
        unsafe { map_exec_fixed(&fd, self.rx, self.len) }?;
        // The old alias maps the parent's pages: the child must not keep it.
        drop(Mapping {
            addr: self.rw,
            len: self.len,
        });
        self.rw = alias.keep();
        Ok(())
    }
}

/// Maps `fd` read+exec over `[start, start + len)`, replacing what is there.
///
/// Before Linux 6.12, `mmap(MAP_FIXED)` could fail *after* unmapping the old
/// range (an `ENOMEM` from the memory cgroup while allocating the new
/// mapping), leaving a hole where text was. On failure this checks for
/// holes and maps the memfd's pages back into them with
/// `MAP_FIXED_NOREPLACE` (they hold the same code): if that covers the
/// whole range the take-over did succeed; otherwise the original error is
/// returned with the holes filled. A thread that executes in the hole
/// between the kernel's unmap and the re-map still faults (`SIGSEGV`); the
/// window is one failed system call long, and only on those kernels.
///
/// # Safety
///
/// The range is mapped by this process and the memfd holds contents that
/// may replace it under running threads (see [`Region::take_over`]):
/// MAP_FIXED replaces the mapping atomically under the kernel's mmap lock,
/// and a thread running in the range faults the new page in. The new view
/// is read+exec only (`[W^X]`).
unsafe fn map_exec_fixed(fd: &OwnedFd, start: usize, len: usize) -> Result<(), Error> {
    // SAFETY: the function's contract ([W^X]: read+exec only; contents
    // that may replace the range under running threads).
    let p = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p != libc::MAP_FAILED {
        return Ok(());
    }
    let err = Error::last_os("mmap(MAP_FIXED over text)");
    let pages = len / page_size();
    if refill_holes(fd, start, len) == pages {
        Ok(())
    } else {
        Err(err)
    }
}

/// Maps the memfd's pages into every unmapped page of `[start, start +
/// len)` (offset for offset); the number of pages of the range that map
/// the memfd this way now.
fn refill_holes(fd: &OwnedFd, start: usize, len: usize) -> usize {
    let page = page_size();
    let mut refilled = 0;
    for off in (0..len).step_by(page) {
        let at = start + off;
        // msync answers ENOMEM for an unmapped range, and touches nothing.
        // SAFETY: MS_ASYNC on any address range has no effect on memory.
        let mapped = unsafe { libc::msync(at as *mut libc::c_void, page, libc::MS_ASYNC) } == 0
            || errno() != libc::ENOMEM;
        if mapped {
            continue;
        }
        // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping; the page is
        // a hole, and the memfd page holds the code that was there ([W^X]:
        // read+exec only).
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                fd.as_raw_fd(),
                off as libc::off_t,
            )
        };
        if p as usize == at {
            refilled += 1;
        }
    }
    refilled
}

/// Maps `fd` read+exec, near `near` when `placement` finds a spot, else
/// anywhere.
fn map_exec_near(
    fd: &OwnedFd,
    len: usize,
    near: usize,
    placement: &mut Placement,
) -> Result<Mapping, Error> {
    let map = |hint: usize, flags: libc::c_int| {
        // SAFETY: without MAP_FIXED the kernel never replaces an existing
        // mapping (MAP_FIXED_NOREPLACE fails with EEXIST instead; a null
        // hint lets it choose); [W^X] read+exec only.
        let p = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED | flags,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            Err(errno())
        } else {
            Ok(Mapping {
                addr: p as usize,
                len,
            })
        }
    };
    let mut placed = None;
    let at = placement.place(len, near, |hint| {
        match map(hint, libc::MAP_FIXED_NOREPLACE) {
            Ok(m) if m.addr == hint => {
                placed = Some(m);
                Ok(Attempt::Placed)
            }
            // A kernel before 4.17 treats the flag as a hint and may map
            // elsewhere: the guard unmaps it.
            Ok(_) => Ok(Attempt::Unsupported),
            Err(libc::EEXIST | libc::ENOMEM) => Ok(Attempt::Taken),
            Err(e) => Err(Error::Map {
                what: "mmap(executable stub pages)",
                errno: e,
            }),
        }
    })?;
    match (at, placed) {
        (Some(_), Some(m)) => Ok(m),
        _ => map(0, 0).map_err(|e| Error::Map {
            what: "mmap(executable stub pages)",
            errno: e,
        }),
    }
}

/// Regions sorted by executable address, for lookup by address.
#[derive(Debug, Default)]
pub(crate) struct Regions {
    list: Vec<Region>,
}

impl Regions {
    pub(crate) fn insert(&mut self, r: Region) {
        let at = self.list.partition_point(|x| x.rx < r.rx);
        self.list.insert(at, r);
    }

    /// The region holding `[addr, addr + n)`.
    pub(crate) fn find(&self, addr: usize, n: usize) -> Option<&Region> {
        let i = self.list.partition_point(|x| x.rx + x.len <= addr);
        self.list.get(i).filter(|r| r.contains(addr, n))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Region> {
        self.list.iter_mut()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Region> {
        self.list.iter()
    }
}

/// The run-time stub chunk being filled.
#[derive(Debug, Default)]
pub(crate) struct StubPages {
    start: usize,
    used: usize,
    len: usize,
    placement: Placement,
}

impl StubPages {
    /// Maps a new chunk near the binary's text and makes it current.
    pub(crate) fn grow(&mut self, regions: &mut Regions) -> Result<(), Error> {
        let len = STUB_CHUNK.max(page_size());
        let near = near_text as *const () as usize;
        let region = Region::alloc(len, near, arch::INT3, &mut self.placement)?;
        self.start = region.start();
        self.used = 0;
        self.len = len;
        regions.insert(region);
        Ok(())
    }

    /// A fresh slot of `len` bytes (a multiple of 16), 16-aligned.
    pub(crate) fn alloc(&mut self, regions: &mut Regions, len: usize) -> Result<usize, Error> {
        if self.used + len > self.len {
            self.grow(regions)?;
        }
        let at = self.start + self.used;
        self.used += len;
        Ok(at)
    }
}

/// A function of this crate's text, to place stub pages near.
#[inline(never)]
fn near_text() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(len: usize, fill: u8) -> Region {
        let near = region as *const () as usize;
        Region::alloc(len, near, fill, &mut Placement::default()).unwrap()
    }

    #[test]
    fn alloc_gives_two_views_of_one_page() {
        let r = region(page_size(), 0xcc);
        assert_eq!(
            r.load(r.start()),
            u64::from_le_bytes([0xcc; 8]),
            "filled through the alias"
        );
        // SAFETY: nobody runs this fresh page; this test holds the only reference.
        unsafe { r.store(r.start() + 8, 0x1122_3344_5566_7788) };
        assert_eq!(
            r.load_executed(r.start() + 8),
            0x1122_3344_5566_7788,
            "a store through the alias shows in the executable view"
        );
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        assert!(
            !maps.lines().any(|l| l
                .split_whitespace()
                .nth(1)
                .is_some_and(|p| p.contains('w') && p.contains('x'))),
            "no mapping is writable and executable"
        );
    }

    #[test]
    fn stub_pages_land_near_the_binary() {
        let near = region as *const () as usize;
        let r = region(page_size(), 0xcc);
        let d = (r.start() as i64 - near as i64).unsigned_abs();
        assert!(
            d < (1 << 31),
            "stub page {:#x} is {d:#x} bytes from text {near:#x}",
            r.start()
        );
    }

    #[test]
    fn holes_left_by_a_failed_map_fixed_are_refilled() {
        // Simulates the pre-6.12 failure: the range is unmapped, the memfd
        // holds its code; refilling maps it back, page for page.
        let len = 2 * page_size();
        let fd = memfd(c"dynkey-test", len).unwrap();
        let alias = map_alias(&fd, len).unwrap();
        // SAFETY: a fresh alias of len bytes, ours alone.
        unsafe { std::ptr::write_bytes(alias.addr as *mut u8, 0xab, len) };
        let view = map_exec_near(&fd, len, 0, &mut Placement::default()).unwrap();
        let start = view.keep();
        // SAFETY: unmaps the view just made, which nothing else uses.
        assert_eq!(unsafe { libc::munmap(start as *mut libc::c_void, len) }, 0);
        assert_eq!(refill_holes(&fd, start, len), 2, "both pages were holes");
        // SAFETY: the range is mapped again (refilled), readable and aligned.
        let w = unsafe { arch::read_code_word(start + page_size()) };
        assert_eq!(w, 0xabab_abab_abab_abab);
        assert_eq!(refill_holes(&fd, start, len), 0, "no hole left");
        // SAFETY: the refilled view is ours and unused.
        unsafe { libc::munmap(start as *mut libc::c_void, len) };
    }

    #[test]
    fn regions_find_by_address() {
        let a = region(page_size(), 0);
        let start = a.start();
        let mut rs = Regions::default();
        rs.insert(a);
        assert!(rs.find(start, 8).is_some());
        assert!(rs.find(start + page_size() - 8, 8).is_some());
        assert!(
            rs.find(start + page_size() - 4, 8).is_none(),
            "straddles the end"
        );
        assert!(rs.find(start.wrapping_sub(8), 8).is_none());
    }
}
