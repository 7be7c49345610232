//! Code pages: memory mapped twice from one memfd.
//!
//! Every page of code that dynkey writes is a page of a memfd mapped twice:
//! an executable view (`PROT_READ | PROT_EXEC`, where threads run) and a
//! writable alias (`PROT_READ | PROT_WRITE`, where the committer stores).
//! No mapping is ever writable and executable at once (`[W^X]`).
//!
//! Two ways to get such a [`Region`]:
//! - [`Region::take_over`]: text pages of the binary that hold sites are
//!   copied into a memfd and the copy is mapped `MAP_FIXED` over them. The
//!   contents are identical at the moment of the swap and the kernel replaces
//!   the mapping under its mmap lock, so a thread running there never sees a
//!   gap; it faults the new page in.
//! - [`Region::alloc`]: fresh pages for run-time stubs, placed near the
//!   binary's text when possible so stubs can reach Rust functions with a
//!   `rel32`.
//!
//! # Safety
//!
//! A region owns both mappings for the life of the process (they are never
//! unmapped, so executable addresses handed out stay valid). Words are
//! written only through [`Region::store`], one aligned 8-byte atomic store
//! each (`[ONE-STORE]`), by the committer holding the text lock.

use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, errno};

/// `MFD_EXEC` (Linux 6.3+): ask for an executable memfd explicitly, so a
/// `vm.memfd_noexec=1` default does not seal it non-executable.
const MFD_EXEC: libc::c_uint = 0x0010;

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

/// Creates a memfd of `len` bytes that may be mapped executable.
/// Raw syscalls only: this also runs in a fork child handler.
fn memfd(name: &CStr, len: usize) -> Result<libc::c_int, Error> {
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
    // SAFETY: fd is a memfd we own.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        let e = Error::last_os("ftruncate(memfd)");
        // SAFETY: fd is ours and not used afterwards.
        unsafe { libc::close(fd) };
        return Err(e);
    }
    Ok(fd)
}

/// Maps `fd` writable and shared at an address of the kernel's choice.
fn map_alias(fd: libc::c_int, len: usize) -> Result<usize, Error> {
    // SAFETY: a fresh mapping at a kernel-chosen address touches no existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(Error::last_os("mmap(alias)"))
    } else {
        Ok(p as usize)
    }
}

impl Region {
    /// Takes over `[start, start + len)` with a memfd copy of itself.
    ///
    /// # Safety
    ///
    /// - `start` and `len` are page-aligned and the range lies inside one
    ///   readable, executable mapping of this process;
    /// - nothing writes the range while this runs (the caller holds the text
    ///   lock and no region covers it yet);
    /// - the caller has checked that an executable memfd mapping works
    ///   ([`Region::alloc`] succeeded), so the `MAP_FIXED` below, which
    ///   replaces the old mapping, does not fail halfway for lack of
    ///   permission.
    pub(crate) unsafe fn take_over(start: usize, len: usize) -> Result<Region, Error> {
        let fd = memfd(c"dynkey-text", len)?;
        let rw = match map_alias(fd, len) {
            Ok(rw) => rw,
            Err(e) => {
                // SAFETY: fd is ours.
                unsafe { libc::close(fd) };
                return Err(e);
            }
        };
        // SAFETY: the source range is readable (caller) and the alias is a
        // fresh mapping of len bytes; they cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(start as *const u8, rw as *mut u8, len) };
        // SAFETY: the range holds, at this moment, exactly the bytes just
        // copied into the memfd (caller: nothing writes it).
        let err = unsafe { map_exec_fixed(fd, start, len) }.err();
        // SAFETY: both mappings keep the file alive; the descriptor is not needed.
        unsafe { libc::close(fd) };
        match err {
            None => Ok(Region { rx: start, rw, len }),
            Some(e) => {
                // SAFETY: the alias is ours and nothing else refers to it.
                unsafe { libc::munmap(rw as *mut libc::c_void, len) };
                Err(e)
            }
        }
    }

    /// Maps `len` fresh bytes (whole pages) twice, filled with `fill`, with
    /// the executable view within `rel32` reach of `near` when a free spot
    /// is found (callers check reach per target anyway).
    pub(crate) fn alloc(len: usize, near: usize, fill: u8) -> Result<Region, Error> {
        let fd = memfd(c"dynkey-stubs", len)?;
        let result = map_alias(fd, len).and_then(|rw| {
            // SAFETY: the alias is a fresh mapping of len writable bytes.
            unsafe { std::ptr::write_bytes(rw as *mut u8, fill, len) };
            match map_exec_near(fd, len, near) {
                Ok(rx) => Ok(Region { rx, rw, len }),
                Err(e) => {
                    // SAFETY: the alias is ours and unused.
                    unsafe { libc::munmap(rw as *mut libc::c_void, len) };
                    Err(e)
                }
            }
        });
        // SAFETY: the mappings keep the file alive.
        unsafe { libc::close(fd) };
        result
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

    fn alias_word(&self, word_addr: usize) -> &AtomicU64 {
        assert!(
            word_addr.is_multiple_of(8) && self.contains(word_addr, 8),
            "word {word_addr:#x} outside region"
        );
        let p = (self.rw + (word_addr - self.rx)) as *mut u64;
        // Both views are page-aligned and the alias lives as long as the process.
        // SAFETY: p is 8-aligned and inside the alias; every Rust access to
        // alias memory after setup is atomic like this one (instruction fetch
        // of the same physical page is not a Rust memory access).
        unsafe { AtomicU64::from_ptr(p) }
    }

    /// Reads the word at `word_addr` (an executable-view address).
    pub(crate) fn load(&self, word_addr: usize) -> u64 {
        // Acquire pairs with the Release in `store` of an earlier commit.
        self.alias_word(word_addr).load(Ordering::Acquire)
    }

    /// Writes the word at `word_addr` with one aligned atomic store
    /// (`[ONE-STORE]`). Caller holds the text lock.
    pub(crate) fn store(&self, word_addr: usize, word: u64) {
        // Release: pairs with `load` in the next commit; cross-thread
        // visibility to *instruction fetch* comes from the rendezvous.
        self.alias_word(word_addr).store(word, Ordering::Release);
    }

    /// Copies bytes into a part of the region no thread can be executing
    /// yet (a fresh stub slot), in whole words.
    pub(crate) fn fill_fresh(&self, addr: usize, bytes: &[u8]) {
        assert!(
            addr.is_multiple_of(8) && bytes.len().is_multiple_of(8),
            "fresh slots are whole words"
        );
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let w = u64::from_le_bytes(chunk.try_into().expect("chunks_exact(8)"));
            self.store(addr + 8 * i, w);
        }
    }

    /// Gives a fork child its own copy of the pages, so it stops sharing the
    /// parent's alias: a new memfd, filled word by word from the executable
    /// view (the parent may still be storing into the shared pages, so each
    /// word is read atomically), mapped `MAP_FIXED` over the view.
    ///
    /// Raw system calls only, no allocation: this runs in the child handler
    /// of `pthread_atfork`, where only the forking thread exists.
    pub(crate) fn retake_in_child(&mut self) -> Result<(), Error> {
        let fd = memfd(c"dynkey-text", self.len)?;
        let rw = match map_alias(fd, self.len) {
            Ok(rw) => rw,
            Err(e) => {
                // SAFETY: fd is ours and unused.
                unsafe { libc::close(fd) };
                return Err(e);
            }
        };
        for off in (0..self.len).step_by(8) {
            // SAFETY: both addresses are 8-aligned and inside mappings of
            // self.len bytes; the view is readable and the parent writes it
            // only with atomic stores.
            let w =
                unsafe { AtomicU64::from_ptr((self.rx + off) as *mut u64) }.load(Ordering::Relaxed);
            // SAFETY: as above; the new alias is ours alone.
            unsafe { AtomicU64::from_ptr((rw + off) as *mut u64) }.store(w, Ordering::Relaxed);
        }
        // SAFETY: the memfd holds the view's current contents, copied word
        // by word; the child is single-threaded here.
        let err = unsafe { map_exec_fixed(fd, self.rx, self.len) }.err();
        // SAFETY: mappings keep the file alive.
        unsafe { libc::close(fd) };
        if let Some(e) = err {
            return Err(e);
        }
        // SAFETY: the old alias maps the parent's pages; the child must not keep it.
        unsafe { libc::munmap(self.rw as *mut libc::c_void, self.len) };
        self.rw = rw;
        Ok(())
    }
}

/// Maps `fd` read+exec over `[start, start + len)`, replacing what is there.
///
/// # Safety
///
/// The range is mapped by this process and the memfd holds exactly its
/// current contents, so code running there sees no change: MAP_FIXED
/// replaces the mapping atomically under the kernel's mmap lock, and a
/// thread running in the range faults the new page in. The new view is
/// read+exec only (`[W^X]`).
unsafe fn map_exec_fixed(fd: libc::c_int, start: usize, len: usize) -> Result<(), Error> {
    // SAFETY: see the function's contract.
    let p = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED | libc::MAP_FIXED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(Error::last_os("mmap(MAP_FIXED over text)"))
    } else {
        Ok(())
    }
}

/// Maps `fd` read+exec, trying addresses below (then above) `near` so that a
/// `rel32` from the pages reaches it; falls back to any address.
fn map_exec_near(fd: libc::c_int, len: usize, near: usize) -> Result<usize, Error> {
    const STEP: usize = 64 << 20; // 64 MiB
    const TRIES: usize = 24; // up to 1.5 GiB away: every hit is within rel32 of `near`
    let base = near & !(STEP - 1);
    let below = (1..=TRIES).filter_map(|i| base.checked_sub(i * STEP));
    let above = (2..=TRIES / 2).filter_map(|i| base.checked_add(i * STEP));
    for hint in below.chain(above).filter(|&h| h >= 1 << 24) {
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; it
        // fails with EEXIST instead.
        let p = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            match errno() {
                libc::EEXIST | libc::ENOMEM => continue,
                _ => return Err(Error::last_os("mmap(executable stub pages)")),
            }
        }
        if p as usize == hint {
            return Ok(hint);
        }
        // A kernel before 4.17 treats the flag as a hint and may map
        // elsewhere: undo and fall through to the unconstrained mapping.
        // SAFETY: p is the mapping just made, unused.
        unsafe { libc::munmap(p, len) };
        break;
    }
    // SAFETY: a kernel-chosen address touches no existing mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(Error::last_os("mmap(executable stub pages)"))
    } else {
        Ok(p as usize)
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

/// The executable mappings of this process, from `/proc/self/maps`.
pub(crate) fn exec_mappings() -> Vec<(usize, usize)> {
    let Ok(text) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let range = it.next()?;
            let perms = it.next()?;
            if !perms.starts_with("r-x") {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
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
    fn alloc_gives_two_views_of_one_page() {
        let r = Region::alloc(
            page_size(),
            alloc_gives_two_views_of_one_page as *const () as usize,
            0xcc,
        )
        .unwrap();
        assert_eq!(
            r.load(r.start()),
            u64::from_le_bytes([0xcc; 8]),
            "filled through the alias"
        );
        r.store(r.start() + 8, 0x1122_3344_5566_7788);
        // SAFETY: the executable view is readable and 8-aligned.
        let via_exec = unsafe { ((r.start() + 8) as *const u64).read_volatile() };
        assert_eq!(
            via_exec, 0x1122_3344_5566_7788,
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
        let near = stub_pages_land_near_the_binary as *const () as usize;
        let r = Region::alloc(page_size(), near, 0xcc).unwrap();
        let d = (r.start() as i64 - near as i64).unsigned_abs();
        assert!(
            d < (1 << 31),
            "stub page {:#x} is {d:#x} bytes from text {near:#x}",
            r.start()
        );
    }

    #[test]
    fn regions_find_by_address() {
        let a = Region::alloc(page_size(), 0, 0).unwrap();
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
