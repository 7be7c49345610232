//! Issue 10, item 7: `[OLD-VERIFIED]` checks the executable view too.
//!
//! If something remaps code pages after the take-over (a second copy of
//! the crate, a hugepage text remapper, a CRIU restore), stores through the
//! writable alias are never executed. The old planner read only the alias
//! and returned `Ok` while the code never changed. The child replaces a
//! run-time stub's executable view with an anonymous copy of the same bytes
//! (mapped writable, filled, made read+exec: never W+X) and commits.

use dynkey_text::{Change, CodeView, Error, RawKey, ValueSite, commit};

use crate::{child_says_ok, role};

#[test]
fn a_remapped_executable_view_fails_verification() {
    child_says_ok(
        "views::child_remapped",
        "remapped",
        "the remapped child failed",
    );
}

/// Child entry point.
#[test]
#[ignore = "run by a_remapped_executable_view_fails_verification in a child process"]
fn child_remapped() {
    if role().as_deref() != Some("remapped") {
        return;
    }
    let key: &'static RawKey = Box::leak(Box::new(RawKey::new(false)));
    let site = ValueSite::new(key).unwrap();
    let stub = site.stub_addr().expect("a patched run-time stub");
    let page_len = 4096;
    let page = stub & !(page_len - 1);
    // SAFETY: maps a fresh anonymous page, copies the stub page into it,
    // makes it read+exec, and moves it over the stub page: the stub page is
    // replaced by identical bytes while nothing runs it. No W+X mapping.
    unsafe {
        let copy = libc::mmap(
            std::ptr::null_mut(),
            page_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(copy, libc::MAP_FAILED);
        std::ptr::copy_nonoverlapping(page as *const u8, copy as *mut u8, page_len);
        assert_eq!(
            libc::mprotect(copy, page_len, libc::PROT_READ | libc::PROT_EXEC),
            0
        );
        let moved = libc::mremap(
            copy,
            page_len,
            page_len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            page as *mut libc::c_void,
        );
        assert_eq!(moved as usize, page);
    }
    assert!(!site.get(), "the copy runs like the original");
    let err = commit(&[Change::Key(key, true)]).unwrap_err();
    assert!(
        matches!(err, Error::Verify { view: CodeView::Executable, addr, .. } if addr == stub),
        "the commit must fail verification on the executable view, not return Ok: {err:?}"
    );
    assert!(!err.applied_but_may_lag());
    assert!(!key.is_enabled(), "nothing was published");
    assert!(!site.get());
    // And again: the alias was restored, so the same error, not a mismatch
    // of the alias against the old state.
    let again = commit(&[Change::Key(key, true)]).unwrap_err();
    assert_eq!(again, err, "the failed probe left nothing behind");
    println!("remapped: ok ({err})");
}
