//! Issue 10, items 4 and 5: the signal rendezvous and threads or handlers
//! that are not its own. Each case runs in a child with
//! `DYNKEY_RENDEZVOUS=signal`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use dynkey_text::{Change, Error, RawKey, SignalHolder, ValueSite, commit};

use crate::{child, last_json, role};

/// Far above a commit's real cost: only a commit that waits for the
/// timeout can take this long.
const TIMEOUT_MS: u64 = 5000;

fn run(case: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let timeout = TIMEOUT_MS.to_string();
    let mut all = vec![
        ("DYNKEY_CHILD", case),
        ("DYNKEY_RENDEZVOUS", "signal"),
        ("DYNKEY_SIGNAL_TIMEOUT_MS", timeout.as_str()),
    ];
    all.extend_from_slice(env);
    let out = child("signals::child_case", &all);
    assert!(
        out.status.success(),
        "child {case} failed: {:?}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    last_json(&out)
}

#[test]
fn threads_that_block_the_signal_are_named_not_waited_for() {
    let j = run("blocked", &[]);
    let blocked = j["blocked_tid"].as_i64().unwrap();
    assert_eq!(j["commits"], 20);
    assert!(
        j["max_commit_ms"].as_f64().unwrap() < TIMEOUT_MS as f64,
        "no commit waited for the timeout (the old rendezvous waited the full timeout each time): {j}"
    );
    assert_eq!(
        j["errors_naming_it"], 20,
        "each commit reports the blocking thread by id ({blocked}): {j}"
    );
    assert_eq!(
        j["lagging_but_applied"], 20,
        "and says the changes were applied: {j}"
    );
    assert_eq!(
        j["published"], true,
        "states and code follow the commits: {j}"
    );
    assert!(
        j["queued_to_blocked_thread"].as_u64().unwrap() <= 1,
        "at most one signal was ever queued to the blocking thread (the old rendezvous queued one per commit, 20 here, growing SigQ): {j}"
    );
    assert_eq!(
        j["helper_answered"], true,
        "the other threads were still serialized: {j}"
    );
}

/// Rounds back to back while threads spin: each round signals a thread
/// that may still be inside the previous round's handler. Handlers that
/// nested there (SA_NODEFER) grew one frame per round until the alternate
/// signal stack overflowed and the process died by SIGSEGV.
#[test]
fn back_to_back_rounds_never_nest_handlers() {
    let j = run("back_to_back", &[]);
    assert_eq!(j["rounds"], BACK_TO_BACK, "{j}");
    assert_eq!(
        j["errors"],
        serde_json::json!([]),
        "every round succeeded: {j}"
    );
}

/// Rounds right after threads are created, while they still hold the full
/// signal mask glibc sets around `clone`: they are waited for, not named
/// as blocking the signal (the 2 ms grace alone reported them when two
/// CPUs had more runnable threads than that).
#[test]
fn threads_created_a_moment_ago_are_waited_for() {
    let j = run("new_threads", &[]);
    assert_eq!(j["rounds"], NEW_THREAD_ROUNDS, "{j}");
    assert_eq!(
        j["errors"],
        serde_json::json!([]),
        "every round succeeded: {j}"
    );
}

/// Rounds in the new-threads case, each right after creating 8 spinners.
const NEW_THREAD_ROUNDS: u64 = 100;

/// Rounds in the back-to-back case (the nesting crashed within a few
/// hundred).
const BACK_TO_BACK: u64 = 2_000;

#[test]
fn auto_skips_a_signal_read_through_signalfd() {
    let j = run("signalfd", &[]);
    assert_ne!(
        j["signal"], j["sigrtmin"],
        "SIGRTMIN is blocked for signalfd: {j}"
    );
    assert_eq!(j["commit"], "ok", "{j}");
    assert!(j["commit_ms"].as_f64().unwrap() < TIMEOUT_MS as f64, "{j}");
    assert_eq!(
        j["signalfd_read"], 0,
        "the application's signalfd saw nothing of dynkey: {j}"
    );
}

#[test]
fn auto_skips_a_handled_signal_and_a_number_can_be_forced() {
    let j = run("handled", &[]);
    assert_eq!(
        j["signal"].as_i64().unwrap(),
        j["sigrtmin"].as_i64().unwrap() + 1,
        "SIGRTMIN has the application's handler: {j}"
    );
    let j = run("flip", &[("DYNKEY_SIGNAL", "SIGRTMIN+3")]);
    assert_eq!(
        j["signal"].as_i64().unwrap(),
        j["sigrtmin"].as_i64().unwrap() + 3,
        "{j}"
    );
    assert_eq!(j["commit"], "ok", "{j}");
    let j = run("handled", &[("DYNKEY_SIGNAL", "SIGRTMIN")]);
    let e = j["error"].as_str().unwrap();
    assert!(
        e.contains("DYNKEY_RENDEZVOUS=signal") && e.contains("is held by another handler"),
        "a forced signal that another handler holds is refused: {e}"
    );
}

#[test]
fn a_handler_installed_over_ours_is_a_typed_error_at_the_next_commit() {
    let j = run("stolen", &[]);
    assert_eq!(
        j["handler_error"], "taken by the application's handler",
        "{j}"
    );
    assert_eq!(j["ignored_error"], "taken: SIG_IGN", "{j}");
    assert_eq!(j["default_error"], "taken: SIG_DFL", "{j}");
    assert!(
        j["commit_ms"].as_f64().unwrap() < TIMEOUT_MS as f64,
        "no waiting: {j}"
    );
    assert_eq!(
        j["app_handler_calls"], 0,
        "dynkey never signalled the application's handler: {j}"
    );
    assert_eq!(
        j["published"], true,
        "applied, with lagging threads possible: {j}"
    );
}

#[test]
fn io_uring_workers_are_not_reported() {
    let j = run("io_uring", &[]);
    if let Some(why) = j["skipped"].as_str() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "io_uring test skipped: {why}");
        return;
    }
    assert!(
        j["workers"].as_u64().unwrap() >= 1,
        "an SQPOLL thread exists: {j}"
    );
    assert_eq!(
        j["commit"], "ok",
        "kernel workers block every signal but are not reported: {j}"
    );
}

static APP_CALLS: AtomicU32 = AtomicU32::new(0);

extern "C" fn app_handler(_: libc::c_int) {
    APP_CALLS.fetch_add(1, Ordering::SeqCst);
}

fn install(sig: i32, handler: libc::sighandler_t) {
    // SAFETY: installs a handler that only bumps an atomic, or SIG_IGN/SIG_DFL.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        assert_eq!(libc::sigaction(sig, &act, std::ptr::null_mut()), 0);
    }
}

fn sigset(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialize a set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// A thread that waits on a channel, then runs `after` and sends its result.
fn helper<T: Send + 'static>(
    setup: impl FnOnce() + Send + 'static,
    after: impl FnOnce() -> T + Send + 'static,
) -> (mpsc::Sender<()>, mpsc::Receiver<(i32, Option<T>)>) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        setup();
        out_tx.send((dynkey_text::os_thread_id(), None)).unwrap();
        let _ = go_rx.recv();
        out_tx
            .send((dynkey_text::os_thread_id(), Some(after())))
            .unwrap();
    });
    (go_tx, out_rx)
}

/// Threads spinning in user space (holding CPUs) until dropped.
struct Spinners {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spinners {
    fn start(n: usize) -> Spinners {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    // Relaxed: only a stop flag.
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Spinners { stop, threads }
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.drain(..).for_each(|t| t.join().unwrap());
    }
}

/// One signal rendezvous outside any commit; its error, if any, joins the
/// first five in `errors`.
fn signal_round(errors: &mut Vec<String>) {
    let r = dynkey_text::testing::rendezvous(
        dynkey_text::Method::Signal,
        true,
        std::time::Duration::from_millis(TIMEOUT_MS),
    );
    if let Err(e) = r
        && errors.len() < 5
    {
        errors.push(e.to_string());
    }
}

fn elapsed_ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Child entry point (does nothing unless run by a test above).
#[test]
#[ignore = "run by the signals tests in a child process"]
fn child_case() {
    let Some(case) = role() else { return };
    let sigrtmin = libc::SIGRTMIN();
    let mut j = serde_json::json!({ "sigrtmin": sigrtmin });
    match case.as_str() {
        "handled" => install(sigrtmin, app_handler as *const () as usize),
        "signalfd" => {
            // As a signalfd user does: block the signal everywhere (threads
            // inherit the mask), read it from a descriptor.
            let set = sigset(&[sigrtmin]);
            // SAFETY: blocks one signal in this thread; creates a signalfd.
            let fd = unsafe {
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)
            };
            assert!(fd >= 0);
            j["fd"] = fd.into();
        }
        _ => {}
    }
    let status = match dynkey_text::status() {
        Ok(s) => s,
        Err(e) => {
            j["error"] = e.to_string().into();
            println!("{j}");
            return;
        }
    };
    j["signal"] = status.signal.into();
    let key: &'static RawKey = Box::leak(Box::new(RawKey::new(false)));
    let site = ValueSite::new(key).unwrap();
    // One ordinary thread for the rendezvous to serialize.
    let (go, done) = helper(|| {}, || ());
    done.recv().unwrap();
    match case.as_str() {
        "blocked" => {
            let sig = status.signal.unwrap();
            let (go_blocked, blocked_done) = helper(
                || {
                    let all = {
                        // SAFETY: sigfillset initializes a set we own.
                        let mut s: libc::sigset_t = unsafe { std::mem::zeroed() };
                        // SAFETY: as above.
                        unsafe { libc::sigfillset(&mut s) };
                        s
                    };
                    // SAFETY: blocks every signal in this thread only.
                    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut()) };
                },
                move || {
                    // Dequeue, without waiting, every instance of the
                    // rendezvous signal queued to this thread.
                    let set = sigset(&[sig]);
                    let zero = libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    };
                    let mut n = 0;
                    // SAFETY: sigtimedwait on a set we own, no info wanted.
                    while unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) } == sig {
                        n += 1;
                    }
                    n
                },
            );
            let blocked_tid = blocked_done.recv().unwrap().0;
            let (mut max_ms, mut naming, mut lagging, mut published) = (0f64, 0, 0, true);
            for i in 0..20 {
                let on = i % 2 == 0;
                let t = Instant::now();
                let r = commit(&[Change::Key(key, on)]);
                max_ms = max_ms.max(elapsed_ms(t));
                if let Err(e) = &r {
                    lagging += e.applied_but_may_lag() as u32;
                    if matches!(e, Error::SignalBlocked { signal, threads } if *signal == sig && threads == &[blocked_tid])
                    {
                        naming += 1;
                    }
                }
                published &= key.is_enabled() == on && site.get() == on;
            }
            go_blocked.send(()).unwrap();
            let queued = blocked_done.recv().unwrap().1.unwrap();
            j["blocked_tid"] = blocked_tid.into();
            j["commits"] = 20.into();
            j["max_commit_ms"] = max_ms.into();
            j["errors_naming_it"] = naming.into();
            j["lagging_but_applied"] = lagging.into();
            j["published"] = published.into();
            j["queued_to_blocked_thread"] = queued.into();
            // A helper that never answered would have made these timeouts.
            j["helper_answered"] = (naming == 20).into();
        }
        "back_to_back" => {
            let spinners = Spinners::start(2);
            let mut errors = Vec::new();
            for _ in 0..BACK_TO_BACK {
                signal_round(&mut errors);
            }
            drop(spinners);
            j["rounds"] = BACK_TO_BACK.into();
            j["errors"] = errors.into();
        }
        "new_threads" => {
            let mut errors = Vec::new();
            for _ in 0..NEW_THREAD_ROUNDS {
                let spinners = Spinners::start(8);
                signal_round(&mut errors);
                drop(spinners);
            }
            j["rounds"] = NEW_THREAD_ROUNDS.into();
            j["errors"] = errors.into();
        }
        "stolen" => {
            let sig = status.signal.unwrap();
            let attempt = |handler| {
                install(sig, handler);
                let t = Instant::now();
                let r = commit(&[Change::Key(key, !key.is_enabled())]);
                let ms = elapsed_ms(t);
                let text = match r {
                    Err(Error::SignalTaken { signal, holder }) if signal == sig => match holder {
                        SignalHolder::Handler(a) if a == app_handler as *const () as usize => {
                            "taken by the application's handler".to_string()
                        }
                        h => format!("taken: {h}"),
                    },
                    other => format!("{other:?}"),
                };
                (text, ms)
            };
            let (handler_error, ms) = attempt(app_handler as *const () as usize);
            let published = key.is_enabled() && site.get();
            let (ignored_error, _) = attempt(libc::SIG_IGN);
            let (default_error, _) = attempt(libc::SIG_DFL);
            j["handler_error"] = handler_error.into();
            j["ignored_error"] = ignored_error.into();
            j["default_error"] = default_error.into();
            j["commit_ms"] = ms.into();
            j["app_handler_calls"] = APP_CALLS.load(Ordering::SeqCst).into();
            j["published"] = published.into();
        }
        "io_uring" => {
            // An SQPOLL ring: the kernel runs an `iou-sqp` worker thread
            // (PF_IO_WORKER) in this process, blocking every signal.
            let mut params: [u32; 30] = [0; 30];
            params[2] = 1 << 1; // flags = IORING_SETUP_SQPOLL
            // SAFETY: io_uring_setup with a pointer to a buffer as large as
            // struct io_uring_params (120 bytes).
            let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) };
            if fd < 0 {
                j["skipped"] = format!(
                    "io_uring_setup(SQPOLL) failed: {}",
                    std::io::Error::last_os_error()
                )
                .into();
            } else {
                // PF_IO_WORKER (0x10) in the flags field of each thread's stat.
                let workers = std::fs::read_dir("/proc/self/task")
                    .unwrap()
                    .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("stat")).ok())
                    .filter(|stat| {
                        let rest = &stat[stat.rfind(')').unwrap() + 1..];
                        let flags: u64 = rest.split_whitespace().nth(6).unwrap().parse().unwrap();
                        flags & 0x10 != 0
                    })
                    .count();
                j["workers"] = workers.into();
                j["commit"] = match commit(&[Change::Key(key, true)]) {
                    Ok(_) => "ok".into(),
                    Err(e) => e.to_string().into(),
                };
            }
        }
        _ => {
            let t = Instant::now();
            j["commit"] = match commit(&[Change::Key(key, true)]) {
                Ok(_) if site.get() => "ok".into(),
                Ok(_) => "site did not follow".into(),
                Err(e) => e.to_string().into(),
            };
            j["commit_ms"] = elapsed_ms(t).into();
        }
    }
    if let Some(fd) = j.get("fd").and_then(|f| f.as_i64()) {
        let mut buf = [0u8; 128];
        // SAFETY: a non-blocking read into a local buffer.
        let n = unsafe { libc::read(fd as i32, buf.as_mut_ptr().cast(), buf.len()) };
        j["signalfd_read"] = n.max(0).into();
    }
    go.send(()).unwrap();
    let _ = done.recv();
    println!("{j}");
}
