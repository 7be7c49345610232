//! The axum example as a subprocess, over loopback, through a plain HTTP
//! client: it lists the handler's sites before any request; a request
//! prints no debug lines; after `module tower_http* class DEBUG +p` the
//! next request prints tower-http's request and response lines on stderr;
//! after `-p` it is quiet again.
//!
//! Everything a request writes is on stderr before its response arrives
//! (the subscriber writes synchronously, and tower-http's response event
//! runs before the response is sent), so reading stderr up to the next
//! request's own INFO line collects exactly one request's lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// The example, built by `cargo test` beside this test binary.
fn example() -> std::path::PathBuf {
    // target/debug/deps/api-HASH -> target/debug/examples/axum_service
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("axum_service")
}

/// One HTTP/1.1 request; the status and the body.
fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP reply: {reply:?}"));
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// Kills the example when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stderr lines up to and including the one holding `until`.
fn lines_until(stderr: &Receiver<String>, until: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let line = stderr
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no line with {until:?} on stderr; got {out:#?}"));
        let done = line.contains(until);
        out.push(line);
        if done {
            return out;
        }
    }
}

#[test]
fn the_example_switches_tower_http_events_over_http() {
    let bin = example();
    assert!(bin.exists(), "{} is built by `cargo test`", bin.display());
    let mut child = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("DYNKEY_QUERY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    // The handler's own sites, before any request.
    let (status, listing) = request(&addr, "GET", "/debug/control", "");
    assert_eq!(status, 200);
    assert!(
        listing.contains("]index =_ \"rendering the index\" class:DEBUG\n"),
        "{listing}"
    );
    assert!(listing.contains("]index =p \"served the index\" class:INFO\n"));
    assert!(
        !listing.contains("kind:tracing"),
        "no tracing callsite ran yet"
    );

    // Request n's lines end with its own INFO line; the lines of request n's
    // response come before request n+1's INFO line.
    let (status, body) = request(&addr, "GET", "/", "");
    assert_eq!((status, body.as_str()), (200, "hello from axum_service\n"));
    let quiet = lines_until(&lines, "request=1");
    assert!(quiet.iter().all(|l| !l.contains("DEBUG")), "{quiet:#?}");

    let (status, reply) = request(
        &addr,
        "POST",
        "/debug/control",
        "module tower_http* class DEBUG +p",
    );
    assert_eq!(status, 200, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert!(reply["changed"].as_u64().unwrap() >= 2, "{reply}");
    assert_eq!(reply["rendezvous"], 0, "rows only: no code patched");
    assert_eq!(request(&addr, "GET", "/", "").0, 200);
    let mut loud = lines_until(&lines, "request=2");
    assert_eq!(request(&addr, "GET", "/debug/control", "").0, 200);
    request(
        &addr,
        "POST",
        "/debug/control",
        "module tower_http* class DEBUG -p",
    );
    assert_eq!(request(&addr, "GET", "/", "").0, 200);
    loud.extend(lines_until(&lines, "request=3"));
    let text = loud.join("\n");
    assert!(
        text.contains("DEBUG request{method=GET uri=/ version=HTTP/1.1}: tower_http::trace::on_request: started processing request"),
        "{text}"
    );
    assert!(
        text.contains("tower_http::trace::on_response: finished processing request"),
        "{text}"
    );
    assert!(text.contains("status=200"), "{text}");

    // Quiet again: request 4's lines hold nothing of tower-http.
    assert_eq!(request(&addr, "GET", "/", "").0, 200);
    let after = lines_until(&lines, "request=4");
    assert_eq!(request(&addr, "GET", "/", "").0, 200);
    let mut after2 = lines_until(&lines, "request=5");
    after2.extend(after);
    assert!(
        after2.iter().all(|l| !l.contains("tower_http")),
        "{after2:#?}"
    );

    let (_, listing) = request(&addr, "GET", "/debug/control", "");
    assert!(
        listing
            .lines()
            .any(|l| l.contains("[tower_http::trace::on_response] =_")
                && l.ends_with(" class:DEBUG kind:tracing")),
        "{listing}"
    );
}
