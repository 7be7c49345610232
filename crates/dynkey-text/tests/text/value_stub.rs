//! Issue 10, item 1: a thread stopped inside a link-time value stub while
//! start-up rewrites it must resume on an instruction.
//!
//! The compiled-in stub is `movzx eax, byte [rip + key]; ret`: a thread can
//! be stopped at byte 7, on the `ret`. The old patched form,
//! `mov eax, imm32; ret; int3; int3`, put an `int3` there, and such a
//! thread died by `SIGTRAP` when it resumed. The child parks a worker in a
//! signal handler exactly when its saved RIP is the stub's word + 7, starts
//! the runtime (which rewrites the stub), releases the worker, and must
//! exit normally.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

use dynkey_text::RawKey;

use crate::{child_says_ok, role};

static PARK_KEY: RawKey = RawKey::new(false);
dynkey_text::link_value_stub!(fn parked_value() => PARK_KEY);

/// The address to park at (the stub's word + 7).
static TARGET: AtomicUsize = AtomicUsize::new(0);
static PARKED: AtomicBool = AtomicBool::new(false);
/// Signals handled, parked or not.
static HANDLED: AtomicU32 = AtomicU32::new(0);
/// Futex word: 1 once the worker may leave the handler.
static RELEASE: AtomicU32 = AtomicU32::new(0);

extern "C" fn park(_: libc::c_int, _: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a ucontext_t.
    let rip =
        unsafe { (*(ctx as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] };
    if rip as usize == TARGET.load(Ordering::Relaxed) {
        PARKED.store(true, Ordering::SeqCst);
        HANDLED.fetch_add(1, Ordering::SeqCst);
        while RELEASE.load(Ordering::SeqCst) == 0 {
            // SAFETY: FUTEX_WAIT on a static u32 (async-signal-safe).
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    RELEASE.as_ptr(),
                    libc::FUTEX_WAIT,
                    0,
                    std::ptr::null::<libc::timespec>(),
                )
            };
        }
    } else {
        HANDLED.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_thread_parked_on_the_stubs_ret_survives_start_up() {
    child_says_ok(
        "value_stub::child_parked",
        "parked",
        "the child must exit normally (the old encoding died by SIGTRAP)",
    );
}

/// Child entry point.
#[test]
#[ignore = "run by a_thread_parked_on_the_stubs_ret_survives_start_up in a child process"]
fn child_parked() {
    if role().as_deref() != Some("parked") {
        return;
    }
    // `.balign 8` in the stub: its word is the entry rounded up to 8.
    let word = (parked_value as *const () as usize).next_multiple_of(8);
    TARGET.store(word + 7, Ordering::Relaxed);
    // SAFETY: installs an async-signal-safe handler for SIGUSR2, which
    // nothing else in this child uses.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = park as *const () as usize;
        act.sa_flags = libc::SA_SIGINFO;
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &act, std::ptr::null_mut()),
            0
        );
    }
    let tid = AtomicI32::new(0);
    let stop = AtomicBool::new(false);
    let tries = std::thread::scope(|s| {
        s.spawn(|| {
            tid.store(dynkey_text::os_thread_id(), Ordering::SeqCst);
            while !stop.load(Ordering::Relaxed) {
                assert_eq!(std::hint::black_box(parked_value()), 0);
            }
        });
        while tid.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        // Signal until the worker is caught on the `ret` (bounded; each
        // signal is handled before the next is sent).
        let mut tries = 0;
        while !PARKED.load(Ordering::SeqCst) && tries < 1_000_000 {
            let h = HANDLED.load(Ordering::SeqCst);
            // SAFETY: tgkill takes integers; the thread is ours and alive.
            unsafe {
                libc::syscall(
                    libc::SYS_tgkill,
                    std::process::id(),
                    tid.load(Ordering::SeqCst),
                    libc::SIGUSR2,
                )
            };
            while HANDLED.load(Ordering::SeqCst) == h {
                std::thread::yield_now();
            }
            tries += 1;
        }
        let parked = PARKED.load(Ordering::SeqCst);
        // Start-up rewrites the stub while the worker sits on its `ret`.
        let status = dynkey_text::status();
        RELEASE.store(1, Ordering::SeqCst);
        // SAFETY: FUTEX_WAKE on a static u32.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                RELEASE.as_ptr(),
                libc::FUTEX_WAKE,
                i32::MAX,
            )
        };
        stop.store(true, Ordering::Relaxed);
        assert!(
            parked,
            "the worker was never caught at word + 7 in {tries} signals"
        );
        let status = status.expect("the runtime starts");
        assert_eq!(
            status.site_kind,
            dynkey_text::SiteKind::Inline,
            "the stub was patched"
        );
        tries
    });
    assert_eq!(parked_value(), 0);
    dynkey_text::commit(&[dynkey_text::Change::Key(&PARK_KEY, true)]).unwrap();
    assert_eq!(parked_value(), 1, "the patched stub still follows its key");
    println!("parked: ok after {tries} signals");
}
