//! After `fork()`, parent and child patch only their own code, and the
//! child copies the code pages lazily, on its first patch (issue 10: the
//! eager copy in the atfork child handler cost every `pre_exec` fork).

use dynkey_text::{Change, RawKey, branch_unlikely, commit};

use crate::{child_says_ok, mapping_at, role};

static FORKED: RawKey = RawKey::new(false);

#[inline(never)]
fn forked_site() -> bool {
    branch_unlikely!(FORKED)
}

/// The inode of the file mapped at `addr` (the memfd, for taken-over text).
fn inode_at(addr: usize) -> Option<u64> {
    mapping_at(addr)?[4].parse().ok()
}

#[test]
fn parent_and_child_do_not_share_code_pages() {
    child_says_ok("fork::child_fork", "fork", "the fork child failed");
}

/// Child entry point: forks again and checks both directions.
#[test]
#[ignore = "run by parent_and_child_do_not_share_code_pages in a child process"]
fn child_fork() {
    if role().as_deref() != Some("fork") {
        return;
    }
    let status = dynkey_text::status().unwrap();
    commit(&[Change::Key(&FORKED, true)]).unwrap();
    assert!(forked_site());
    let site_addr = forked_site as *const () as usize;
    let parent_inode = inode_at(site_addr);
    let mut to_child = [0i32; 2];
    // SAFETY: pipe fills the two-element array.
    assert_eq!(unsafe { libc::pipe(to_child.as_mut_ptr()) }, 0);
    // SAFETY: the child only runs the code below and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // Child: until its first patch it shares the parent's pages...
        let mut ok = forked_site();
        let shared_at_first = inode_at(site_addr) == parent_inode;
        // ...its own commit copies them, and must not reach the parent...
        ok &= commit(&[Change::Key(&FORKED, false)]).is_ok();
        ok &= !forked_site();
        let own_after = inode_at(site_addr) != parent_inode;
        // (The atomic kind has no code pages to share or copy.)
        let patched = status.site_kind == dynkey_text::SiteKind::Inline;
        if patched && !(shared_at_first && own_after) {
            // Report which half failed: 2 = copied eagerly, 3 = never copied.
            // SAFETY: _exit ends the child without running the parent's atexit state.
            unsafe { libc::_exit(if shared_at_first { 3 } else { 2 }) };
        }
        // ...and, after the parent commits (it writes a byte when done),
        // the child's site must still show the child's state.
        let mut b = [0u8; 1];
        // SAFETY: reads one byte into a local buffer.
        unsafe { libc::read(to_child[0], b.as_mut_ptr().cast(), 1) };
        ok &= !forked_site();
        // SAFETY: _exit ends the child without running the parent's atexit state.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    // Parent: wait a moment for the child to flip its copy; our site must
    // not move. Then flip ours and let the child check its own.
    let parent_sees_own_state = (0..1000).all(|_| forked_site());
    commit(&[Change::Key(&FORKED, false)]).unwrap();
    commit(&[Change::Key(&FORKED, true)]).unwrap();
    // SAFETY: writes one byte from a local buffer.
    unsafe { libc::write(to_child[1], b"x".as_ptr().cast(), 1) };
    let mut wstatus = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut wstatus, 0) };
    let child_ok = libc::WIFEXITED(wstatus) && libc::WEXITSTATUS(wstatus) == 0;
    assert!(
        parent_sees_own_state && forked_site(),
        "the parent's code followed only the parent"
    );
    assert!(
        !(libc::WIFEXITED(wstatus) && libc::WEXITSTATUS(wstatus) == 2),
        "the child copied its pages before its first patch (eagerly, in the fork handler)"
    );
    assert!(
        !(libc::WIFEXITED(wstatus) && libc::WEXITSTATUS(wstatus) == 3),
        "the child's first commit did not give it its own pages"
    );
    assert!(
        child_ok,
        "the child's code followed only the child (status {wstatus}), kind {:?}",
        status.site_kind
    );
    // A child made by the raw system call runs no fork handlers: it still
    // maps its parent's code pages, so it must refuse to patch them.
    // SAFETY: the child only commits (which fails before writing) and exits
    // with _exit.
    let raw = unsafe { libc::syscall(libc::SYS_fork) };
    assert!(raw >= 0, "raw fork failed");
    if raw == 0 {
        // (Only patched code pages are shared: the atomic kind's keys are
        // plain memory, private to the child.)
        let refused = matches!(
            commit(&[Change::Key(&FORKED, false)]),
            Err(dynkey_text::Error::Unavailable { .. })
        ) || status.site_kind != dynkey_text::SiteKind::Inline;
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(if refused { 0 } else { 1 }) };
    }
    let mut raw_status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(raw as libc::pid_t, &mut raw_status, 0) };
    assert!(
        libc::WIFEXITED(raw_status) && libc::WEXITSTATUS(raw_status) == 0,
        "a child without fork handlers refused to patch (status {raw_status})"
    );
    assert!(forked_site(), "and the parent's code is untouched");
    println!("fork: ok");
}
