//! Test support shared by this workspace's tests (not a stable API).
//!
//! - [`forbid_wx_mappings`]: a seccomp filter that kills the process on any
//!   `mmap`/`mprotect`/`pkey_mprotect` asking for write and execute together,
//!   so even a brief W+X window cannot go unnoticed (sampling
//!   `/proc/self/maps` would miss it).
//! - [`wx_mappings`]: the W+X lines of `/proc/self/maps` right now.
//! - [`kill_on_syscall`]: a seccomp filter that kills the process on one
//!   system call (for `pre_exec`, so it holds from the first instruction
//!   of the new program, constructors included).
//! - [`run_child_test`]: runs one test of the current test binary in a child
//!   process (for process-wide state: configuration, counters);
//!   [`child_role`] tells the child what to do, [`child_report`] reads what
//!   it printed.
//! - [`fixtures_dir`] and [`vector_files`]: the repository's site table and
//!   query vectors, plus an outside set named by `DYNKEY_FIXTURES`.

/// Installs the W^X seccomp filter on every thread of the process (it
/// cannot be removed). Returns the OS error if the kernel refuses.
#[cfg(target_arch = "x86_64")]
pub fn forbid_wx_mappings() -> std::io::Result<()> {
    // Classic BPF over `struct seccomp_data { int nr; u32 arch; u64 ip; u64 args[6]; }`.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    const FLAG_TSYNC: libc::c_uint = 1;
    let wx = (libc::PROT_WRITE | libc::PROT_EXEC) as u32;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let prog = [
        op(LD_W_ABS, 0, 0, 4),                           // arch
        op(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),              // x86-64: go on
        op(RET_K, 0, 0, RET_KILL_PROCESS),               // another ABI: refuse
        op(LD_W_ABS, 0, 0, 0),                           // nr
        op(JEQ_K, 3, 0, libc::SYS_mmap as u32),          // -> check prot
        op(JEQ_K, 2, 0, libc::SYS_mprotect as u32),      // -> check prot
        op(JEQ_K, 1, 0, libc::SYS_pkey_mprotect as u32), // -> check prot
        op(RET_K, 0, 0, RET_ALLOW),
        op(LD_W_ABS, 0, 0, 32), // args[2] (prot), low word
        op(AND_K, 0, 0, wx),
        op(JEQ_K, 0, 1, wx),
        op(RET_K, 0, 0, RET_KILL_PROCESS), // write and execute: kill
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    install_filter(&prog, FLAG_TSYNC)
}

/// Installs a seccomp filter on the calling thread that kills the process
/// when it makes system call `nr` (what systemd's `SystemCallFilter=` does
/// by default). Async-signal-safe (two system calls, no allocation), so it
/// can run in `Command::pre_exec`: the filter survives `execve`.
#[cfg(target_arch = "x86_64")]
pub fn kill_on_syscall(nr: libc::c_long) -> std::io::Result<()> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let prog = [
        op(LD_W_ABS, 0, 0, 4),              // arch
        op(JEQ_K, 1, 0, AUDIT_ARCH_X86_64), // x86-64: go on
        op(RET_K, 0, 0, RET_KILL_PROCESS),  // another ABI: refuse
        op(LD_W_ABS, 0, 0, 0),              // nr
        op(JEQ_K, 0, 1, nr as u32),
        op(RET_K, 0, 0, RET_KILL_PROCESS),
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    install_filter(&prog, 0)
}

/// Installs a classic-BPF seccomp program (`flags`: e.g. `FLAG_TSYNC` for
/// every thread). Two system calls and no allocation: async-signal-safe.
#[cfg(target_arch = "x86_64")]
fn install_filter(prog: &[libc::sock_filter], flags: libc::c_uint) -> std::io::Result<()> {
    const SET_MODE_FILTER: libc::c_uint = 1;
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fprog points at `prog`, which outlives the call; the kernel
    // copies the program.
    if unsafe { libc::syscall(libc::SYS_seccomp, SET_MODE_FILTER, flags, &fprog) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Lines of `/proc/self/maps` that are both writable and executable.
pub fn wx_mappings() -> Vec<String> {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(1)
                .is_some_and(|p| p.contains('w') && p.contains('x'))
        })
        .map(str::to_owned)
        .collect()
}

/// Runs one rendezvous with `method` outside any commit, for benchmarks
/// that compare methods in one process. `sync_core` asks for core
/// serialization (what a commit that wrote code needs). Prepares the method
/// first if needed (membarrier registration, the signal handler).
pub fn rendezvous(
    method: crate::Method,
    sync_core: bool,
    timeout: std::time::Duration,
) -> Result<(), crate::Error> {
    match method {
        crate::Method::Membarrier => {
            crate::rendezvous::membarrier::ensure().map_err(|reason| crate::Error::Unavailable {
                what: "membarrier".into(),
                reason,
            })?
        }
        crate::Method::Signal => {
            crate::rendezvous::signal::install(crate::SignalChoice::Auto).map_err(|reason| {
                crate::Error::Unavailable {
                    what: "signal".into(),
                    reason,
                }
            })?;
        }
        crate::Method::None => {}
    }
    let _guard = crate::lock::TEXT.lock();
    crate::rendezvous::run(method, sync_core, timeout)
}

/// Runs the test `name` of the current test binary (usually an `#[ignore]`d
/// entry point) in a child process, with the `DYNKEY_*` configuration
/// variables cleared and `env` set. The child's stdout holds its report.
pub fn run_child_test(name: &str, env: &[(&str, &str)]) -> std::process::Output {
    child_test_command(name, env)
        .output()
        .expect("spawn the child test")
}

/// The command [`run_child_test`] runs, for callers that add to it (a
/// `pre_exec` hook) before spawning.
pub fn child_test_command(name: &str, env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args([
        "--exact",
        name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for var in [
        "DYNKEY_SITES",
        "DYNKEY_RENDEZVOUS",
        "DYNKEY_QUEUE",
        "DYNKEY_QUERY",
        "DYNKEY_PERF_MAP",
        "DYNKEY_SIGNAL",
        "DYNKEY_SIGNAL_TIMEOUT_MS",
        "DYNKEY_REGISTER_EARLY",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// The variable a parent test sets (in [`run_child_test`]'s `env`) to tell
/// the child what to do.
pub const CHILD_ROLE_VAR: &str = "DYNKEY_CHILD";

/// The role given by the parent test ([`CHILD_ROLE_VAR`]), or None in the
/// parent itself.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ROLE_VAR).ok()
}

/// The child's report: the last line of its stdout whose text from its
/// first `{` on is accepted by `parse` (libtest may print the test's name
/// before it on the same line). Panics with the child's status, stdout and
/// stderr when no line is.
pub fn child_report<T>(out: &std::process::Output, parse: impl Fn(&str) -> Option<T>) -> T {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| parse(&l[l.find('{')?..]))
        .unwrap_or_else(|| {
            panic!(
                "no report from child; status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// The repository's fixtures (`fixtures/` at the workspace root): the
/// site table `kernel-like.json` and the query vectors `vectors.json`.
pub fn fixtures_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The vector files to replay: the repository's `fixtures/vectors.json`,
/// then every `vectors*.json` in the directory `DYNKEY_FIXTURES` names, if
/// set (an extra, outside set, by name). Outside vectors run against the
/// repository's site table, so a `kernel-like.json` beside them must be
/// the same table: this panics when it differs, and when a file is missing.
pub fn vector_files() -> Vec<std::path::PathBuf> {
    let ours = fixtures_dir();
    let mut files = vec![ours.join("vectors.json")];
    if let Some(dir) = std::env::var_os("DYNKEY_FIXTURES") {
        let dir = std::path::PathBuf::from(dir);
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("DYNKEY_FIXTURES={}: {e}", dir.display()));
        let mut extra: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("vectors") && n.ends_with(".json"))
            })
            .collect();
        extra.sort();
        let table = dir.join("kernel-like.json");
        if let Ok(theirs) = std::fs::read(&table) {
            let mine =
                std::fs::read(ours.join("kernel-like.json")).expect("fixtures/kernel-like.json");
            let squeeze = |b: &[u8]| -> Vec<u8> {
                b.iter()
                    .copied()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect()
            };
            assert!(
                squeeze(&theirs) == squeeze(&mine),
                "{} differs from fixtures/kernel-like.json: outside vectors run against the repository's table",
                table.display()
            );
        }
        files.extend(extra);
    }
    for f in &files {
        assert!(f.is_file(), "vector file {} is missing", f.display());
    }
    files
}
