//! Authentication, limits and lifecycle.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use dynkey_server::Limits;

use crate::{Daemon, Server, fixtures};

#[test]
fn mutating_routes_need_the_bearer_token() {
    let s = Server::start(Some("s3cret"));
    let r = s.post("/control", b"func nobody +p");
    assert_eq!(
        (r.status, r.categories()),
        (401, vec!["E_UNAUTHORIZED".to_string()])
    );
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = s.request(
        "POST",
        "/control",
        &[("Authorization", "Bearer wrong")],
        b"func nobody +p",
    );
    assert_eq!(r.status, 401);
    let r = s.request("PUT", "/params/http.debug", &[], b"1");
    assert_eq!(r.status, 401, "every mutating route");
    let r = s.request(
        "POST",
        "/control",
        &[("Authorization", "Bearer s3cret")],
        b"func nobody +p",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let lower = [("Authorization", "bearer s3cret")];
    let r = s.request("POST", "/control", &lower, b"func nobody +p");
    assert_eq!(r.status, 200, "the scheme is case-insensitive (RFC 9110)");
    assert_eq!(s.get("/control").status, 200, "reading needs no token");
    assert_eq!(s.get("/metrics").status, 200);
}

#[test]
fn a_slow_client_cannot_hold_a_connection() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let s = Server::with(None, limits, Duration::from_secs(10));
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap(); // never finishes its headers
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf); // returns when the server closes
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "closed by the header-read timeout, not by the client's guard"
    );
    assert!(
        !String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        "no answer to half a request"
    );
}

#[test]
fn a_slow_body_times_out_with_408() {
    let s = Server::with(None, Limits::default(), Duration::from_millis(300));
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(
        b"POST /control HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 100\r\n\r\n+p",
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let reply = crate::client::parse(&buf);
    assert_eq!(
        (reply.status, reply.categories()),
        (408, vec!["E_TIMEOUT".to_string()])
    );
}

#[test]
fn oversized_headers_are_refused() {
    let s = Server::start(None);
    let big = "x".repeat(40 * 1024);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ =
        c.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes());
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let head = String::from_utf8_lossy(&buf);
    assert!(
        head.is_empty() || head.starts_with("HTTP/1.1 431"),
        "refused: {head}"
    );
}

#[test]
fn open_listen_address_needs_a_token_or_insecure() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dynkeyd"))
        .args([
            "--listen",
            "0.0.0.0:0",
            "--sites",
            fixtures().join("kernel-like.json").to_str().unwrap(),
        ])
        .env_remove("DYNKEY_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("refusing to serve 0.0.0.0:0 without a token")
    );
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut d = Daemon::start(
        &[
            "--sites",
            fixtures().join("kernel-like.json").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(d.request("GET", "/healthz", b"").status, 200);
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
    let mut rest = String::new();
    let _ = d.stderr.read_to_string(&mut rest);
    assert!(rest.contains("shut down"), "{rest}");
}

#[test]
fn a_bad_site_table_is_exit_code_2_naming_entry_and_field() {
    let dir = std::env::temp_dir().join(format!("dynkeyd-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.json");
    std::fs::write(
        &path,
        r#"{"sites":[{"module":"m","file":"f.c","func":"g","line":1,"format":"x","class":null},
                     {"module":"m","file":"f.c","func":"g","line":2,"format":"y","class":"NOPE"}]}"#,
    )
    .unwrap();
    let refused = |path: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_dynkeyd"))
            .args(["--listen", "127.0.0.1:0", "--sites", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "a bad table is exit code 2");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let stderr = refused(&path);
    assert!(stderr.contains("sites[1].class"), "{stderr}");
    std::fs::write(
        &path,
        r#"{"sites":[{"module":"m","file":"f.c","func":"g","line":-1,"format":"x"}]}"#,
    )
    .unwrap();
    let stderr = refused(&path);
    assert!(stderr.contains("sites[0].line"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
