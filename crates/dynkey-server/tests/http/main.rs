//! dynkeyd's HTTP API through a real client over loopback, one binary.
//!
//! - `cli`: `dynkeyd --help` and bad arguments, as a user runs them.
//! - `client`: a small HTTP/1.1 client over `TcpStream` (raw bytes in and
//!   out: non-UTF-8 bodies, partial requests, huge headers).
//! - `openapi`: checks every response of the in-process server against
//!   `proto/openapi.yaml` (status declared, body schema).
//! - `routes`: every route, success and error.
//! - `security`: token, limits, timeouts, refusing to listen openly, SIGTERM.
//! - `state`: browser safety, ttl and expiry, dry run, revoke, audit with
//!   named tokens, site toggles.
//! - `vectors`: the public vectors over HTTP against `dynkeyd --sites`.
//! - `load`: concurrent clients while demo workers run.
//! - `durable`: `--state-dir` across `kill -9`, torn tails, corruption,
//!   two owners, expiry across restarts.

#![allow(missing_docs)] // test helpers, not an API

mod cli;
mod client;
mod durable;
mod load;
mod openapi;
mod routes;
mod security;
mod state;
mod vectors;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dynkey::{class_map, pr_debug, static_branch_unlikely, static_call, static_key};
use dynkey_server::{AppState, Limits, router, serve};

pub use client::Reply;

static_key!(
    /// A key for the keys routes.
    pub static HTTP_KEY: bool = false
);
static_key!(
    /// A second key.
    pub static HTTP_OTHER_KEY: bool = false
);

fn first(x: u32) -> u32 {
    x + 1
}
fn second(x: u32) -> u32 {
    x + 2
}
static_call!(
    /// A call for the calls route.
    pub static HTTP_CALL: fn(x: u32) -> u32 = [first, second]
);

class_map!(
    /// A class map for the params routes.
    pub static HTTP_DEBUG = disjoint_bits(param = "http.debug", base = 0, modules = ["http"]) { HTTP_A, HTTP_B, HTTP_C }
);

/// Sites the tests switch (named so queries reach only them).
pub fn http_sites() -> (bool, u32) {
    pr_debug!("http site");
    pr_debug!(class: HTTP_A, "class a");
    pr_debug!(class: HTTP_C, "class c");
    (
        static_branch_unlikely!(HTTP_KEY) || static_branch_unlikely!(HTTP_OTHER_KEY),
        HTTP_CALL.get()(1),
    )
}

/// Serializes the in-process tests that change this process's sites, keys
/// and state (they share one dynkey).
pub fn sites_lock() -> std::sync::MutexGuard<'static, ()> {
    static SITES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SITES.lock().unwrap_or_else(|e| e.into_inner())
}

/// An in-process server on a loopback port, stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    spec: openapi::Spec,
}

impl Server {
    pub fn start(token: Option<&str>) -> Server {
        Server::with(token, Limits::default(), Duration::from_secs(10))
    }

    pub fn with(token: Option<&str>, limits: Limits, request_timeout: Duration) -> Server {
        let mut state = AppState::new(token.map(str::to_owned));
        state.request_timeout = request_timeout;
        Server::with_state(state, limits)
    }

    /// A server for `state`, mounted at the root or (`at`) under a prefix.
    pub fn with_state(state: AppState, limits: Limits) -> Server {
        Server::mounted(state, limits, None)
    }

    pub fn mounted(state: AppState, limits: Limits, at: Option<&'static str>) -> Server {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let app = match at {
                    Some(prefix) => dynkey_server::mount(axum::Router::new(), prefix, state),
                    None => router(state),
                };
                serve(listener, app, limits, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        Server {
            addr,
            stop: Some(tx),
            thread: Some(thread),
            spec: openapi::Spec::load(),
        }
    }

    /// Sends a request, checks the reply against the OpenAPI contract.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let reply = client::send(self.addr, method, path, headers, body);
        if let Err(e) = self.spec.check(method, path, &reply) {
            panic!(
                "{method} {path} -> {}: breaks proto/openapi.yaml: {e}\nbody: {}",
                reply.status,
                reply.text()
            );
        }
        reply
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], b"")
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Reply {
        self.request("POST", path, &[], body)
    }

    pub fn put(&self, path: &str, body: &[u8]) -> Reply {
        self.request("PUT", path, &[], body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The repository's fixtures directory (`fixtures/`), and the vector
/// files to replay.
pub use dynkey::__private::dynkey_text::testing::{fixtures_dir as fixtures, vector_files};

/// A `dynkeyd` process, killed on drop.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: std::io::BufReader<std::process::ChildStderr>,
}

impl Daemon {
    /// Starts dynkeyd with `args` (plus `--listen 127.0.0.1:0`) and waits
    /// until it says where it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        use std::io::BufRead;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dynkeyd"));
        cmd.args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for v in [
            "DYNKEY_QUERY",
            "DYNKEY_TOKEN",
            "DYNKEY_SITES",
            "DYNKEY_RENDEZVOUS",
            "DYNKEY_QUEUE",
        ] {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().copied());
        #[allow(clippy::zombie_processes)] // Daemon's Drop kills and waits
        let mut child = cmd.spawn().expect("start dynkeyd");
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if stderr.read_line(&mut line).unwrap() == 0 {
                panic!("dynkeyd exited before listening: {:?}", child.wait());
            }
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                return Daemon {
                    child,
                    addr,
                    stderr,
                };
            }
        }
    }

    pub fn request(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        client::send(self.addr, method, path, &[], body)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
