//! The desired state over HTTP, through a real client: browser safety, ttl
//! and expiry, dry runs, revoking, the audit with named tokens, site
//! toggles by id.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dynkey_server::{AppState, BrowserPolicy, Limits, Token};
use serde_json::{Value, json};

use crate::{Server, client, http_sites, sites_lock};

fn server(tokens: Vec<Token>, policy: BrowserPolicy) -> Server {
    let mut state = AppState::with_tokens(tokens);
    state.browser = Arc::new(policy);
    Server::with_state(state, Limits::default())
}

/// The flags of the unclassed `http site` row.
fn http_site_flags(s: &Server) -> String {
    let l = s.get("/control?format=json").json();
    l["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["format"] == "http site")
        .map(|r| r["flags"].as_str().unwrap().to_string())
        .expect("the http site is listed")
}

fn http_site_id(s: &Server) -> String {
    let l = s.get("/control?format=json").json();
    l["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["format"] == "http site")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn foreign_hosts_get_421_and_foreign_origins_403() {
    let _g = sites_lock();
    http_sites();
    let s = server(
        vec![],
        BrowserPolicy {
            allowed_hosts: vec!["dynkey.test".into()],
            allowed_origins: vec!["http://ui.test:9000".into()],
            ..BrowserPolicy::default()
        },
    );
    let body = b"func http_sites -p";
    // DNS rebinding: a foreign name, on reads and changes alike.
    for (method, path) in [("GET", "/control"), ("POST", "/control"), ("GET", "/ui/")] {
        let r = s.request(method, path, &[("Host", "evil.example:7070")], body);
        assert_eq!(
            (r.status, r.categories()),
            (421, vec!["E_HOST".to_string()]),
            "{method} {path}"
        );
    }
    // Addresses (any port), localhost, an allowed name, or no Host at all.
    for host in [
        "127.0.0.1:1",
        "[::1]:7070",
        "localhost:7070",
        "dynkey.test",
        "",
    ] {
        let r = s.request("GET", "/healthz", &[("Host", host)], b"");
        assert_eq!(r.status, 200, "Host {host:?}: {}", r.text());
    }
    // A simple cross-origin POST from a web page changes nothing.
    s.post("/control", body);
    for origin in ["http://evil.example", "null", "http://127.0.0.1:1"] {
        let r = s.request(
            "POST",
            "/control",
            &[("Origin", origin), ("Content-Type", "text/plain")],
            b"func http_sites +p",
        );
        assert_eq!(
            (r.status, r.categories()),
            (403, vec!["E_ORIGIN".to_string()]),
            "Origin {origin}"
        );
    }
    assert_eq!(http_site_flags(&s), "_", "nothing was applied");
    // A read from another origin is not a change.
    let r = s.request("GET", "/keys", &[("Origin", "http://evil.example")], b"");
    assert_eq!(r.status, 200);
    // Same origin, an allowed origin, and no Origin at all are changes.
    let own = format!("http://{}", s.addr);
    for origin in [Some(own.as_str()), Some("http://ui.test:9000"), None] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        let r = s.request("POST", "/control", &headers, b"func http_sites +p");
        assert_eq!(r.status, 200, "Origin {origin:?}: {}", r.text());
        s.post("/control", body);
    }
}

#[test]
fn ttls_are_checked_and_operations_expire_at_their_time() {
    let _g = sites_lock();
    http_sites();
    let s = Server::start(None);
    for bad in ["0", "1w", "31d", "10M", "-5", "1.5h", "721h", "500ms", "x"] {
        let r = s.post(&format!("/control?ttl={bad}"), b"func http_sites +p");
        assert_eq!(
            (r.status, r.categories()),
            (400, vec!["E_BAD_TTL".to_string()]),
            "ttl={bad}"
        );
    }
    assert_eq!(http_site_flags(&s), "_", "a bad ttl applies nothing");
    let r = s.request("DELETE", "/state/ops?ttl=10m", &[], b"");
    assert_eq!(
        (r.status, r.categories()),
        (400, vec!["E_BAD_TTL".to_string()])
    );

    let r = s.post("/control?ttl=10m", b"func http_sites +p");
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(http_site_flags(&s), "p");
    let state = s.get("/state").json();
    let op = state["local"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["id"] == id.as_str())
        .expect("the operation is in the local layer")
        .clone();
    let expires = dynkey::parse_time(op["expires_at"].as_str().unwrap()).unwrap();
    let left = expires.duration_since(SystemTime::now()).unwrap();
    assert!(
        left <= Duration::from_secs(600) && left > Duration::from_secs(590),
        "{left:?}"
    );
    assert_eq!(op["op"]["query"], "func http_sites +p");

    // Eleven minutes later (an injected clock): it has expired, with one
    // rebuild, and the audit says so.
    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(660)
    }
    let c = dynkey::control();
    let commits = c.counters().text.commits;
    dynkey::testing::set_expiry_clock(Some(later));
    c.expire_due();
    dynkey::testing::set_expiry_clock(None);
    assert_eq!(http_site_flags(&s), "_", "reverted at expiry");
    assert!(
        c.counters().text.commits - commits <= 2,
        "one rebuild (the thread may also have run one)"
    );
    assert_eq!(
        s.request("DELETE", &format!("/state/ops/{id}"), &[], b"")
            .status,
        404,
        "an expired operation is gone"
    );
    let audit = s.get("/audit?limit=5").json();
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["op_id"] == id.as_str() && e["action"] == "expire")
        .expect("the expiry is audited");
    assert_eq!(entry["who"], "expiry");
}

#[test]
fn a_dry_run_applies_journals_and_audits_nothing() {
    let _g = sites_lock();
    http_sites();
    let s = Server::start(None);
    let audit_before = s.get("/audit?limit=1").json();
    let r = s.post("/control?dry_run=1&ttl=10m", b"module http +p");
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    assert_eq!(d["dry_run"], true);
    assert_eq!(d["rendezvous"], 0);
    assert_eq!(
        (d["matched"].as_u64(), d["changed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(d["protected"], 2, "the two class'd sites of module http");
    let row = &d["rows"][0];
    assert_eq!(
        (row["flags"].as_str(), row["new_flags"].as_str()),
        (Some("_"), Some("p"))
    );
    assert_eq!(d["ids"], json!([row["id"]]));
    assert_eq!(http_site_flags(&s), "_", "nothing applied");
    assert_eq!(
        s.get("/audit?limit=1").json(),
        audit_before,
        "nothing audited"
    );
    let r = s.post("/control?dry_run=1", b"mod x +p");
    assert_eq!(
        (r.status, r.categories()),
        (400, vec!["E_UNKNOWN_KEYWORD".to_string()])
    );
}

#[test]
fn revoking_rebuilds_without_the_operation() {
    let _g = sites_lock();
    http_sites();
    let s = Server::start(None);
    let a = s.post("/control", b"func http_sites +p").json();
    let b = s.post("/control", b"func http_sites +m").json();
    assert_eq!(http_site_flags(&s), "pm");
    let r = s.request(
        "DELETE",
        &format!("/state/ops/{}", a["id"].as_str().unwrap()),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({"revoked": 1, "changed": 1, "rendezvous": 1})
    );
    assert_eq!(http_site_flags(&s), "m", "the later operation stays");
    for gone in [a["id"].as_str().unwrap(), "999999", "x"] {
        let r = s.request("DELETE", &format!("/state/ops/{gone}"), &[], b"");
        assert_eq!(
            (r.status, r.categories()),
            (404, vec!["E_NOT_FOUND".to_string()]),
            "{gone}"
        );
    }
    let r = s.request("DELETE", "/state/ops", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["revoked"].as_u64().unwrap() >= 1);
    assert_eq!(http_site_flags(&s), "_", "every operator operation revoked");
    assert!(
        !s.get("/state").json()["local"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == b["id"] || l["origin"] == "operator"),
        "no operator operation left"
    );
}

#[test]
fn the_audit_names_tokens_and_state_needs_one() {
    let _g = sites_lock();
    http_sites();
    let s = server(
        vec![
            Token::new("alice", "a-secret"),
            Token::new("bob", "b-secret"),
        ],
        BrowserPolicy::default(),
    );
    for path in ["/state", "/audit"] {
        assert_eq!(s.get(path).status, 401, "{path} names tokens and addresses");
    }
    let bob = [("Authorization", "Bearer b-secret")];
    let r = s.request("POST", "/control", &bob, b"func http_sites +p");
    assert_eq!(r.status, 200);
    let r = s.request("POST", "/control", &bob, b"func http_sites bogus");
    assert_eq!(r.status, 400);
    let audit = s.request("GET", "/audit?limit=2", &bob, b"").json();
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(
        entries[0]["result"], "E_BAD_FLAG_OP",
        "refusals are audited too"
    );
    assert_eq!(entries[1]["result"], "ok");
    for e in entries {
        assert_eq!(e["who"], "bob");
        assert!(
            e["from"]
                .as_str()
                .is_some_and(|f| f.starts_with("127.0.0.1:")),
            "{e}"
        );
    }
    assert!(audit["next"].is_string(), "there are older entries");
    let next = audit["next"].as_str().unwrap();
    let older = s
        .request("GET", &format!("/audit?limit=1&before={next}"), &bob, b"")
        .json();
    assert!(
        older["entries"][0]["id"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            < next.parse().unwrap()
    );
    for bad in ["limit=0", "limit=1001", "limit=x", "before=x"] {
        let r = s.request("GET", &format!("/audit?{bad}"), &bob, b"");
        assert_eq!(r.status, 400, "{bad}");
    }
    s.request(
        "DELETE",
        "/state/ops",
        &[("Authorization", "Bearer a-secret")],
        b"",
    );
    let last = s.request("GET", "/audit?limit=1", &bob, b"").json();
    assert_eq!(
        (
            last["entries"][0]["who"].as_str(),
            last["entries"][0]["action"].as_str()
        ),
        (Some("alice"), Some("revoke"))
    );
}

#[test]
fn a_site_switches_by_its_id() {
    let _g = sites_lock();
    http_sites();
    let s = Server::start(None);
    let id = http_site_id(&s);
    let r = s.post(&format!("/sites/{id}"), b"+p");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (
            r.json()["changed"].as_u64(),
            r.json()["rendezvous"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(http_site_flags(&s), "p");
    let r = s.post(&format!("/sites/{id}"), b"p");
    assert_eq!(r.status, 400, "a flag operation needs + - or =");
    assert_eq!(s.post("/sites/nope", b"+p").status, 404);
    s.post(&format!("/sites/{id}"), b"-p");
    assert_eq!(http_site_flags(&s), "_");
}

#[test]
fn an_empty_body_is_a_noop_with_no_operation() {
    let _g = sites_lock();
    let s = Server::start(None);
    for body in [&b""[..], b"# only a comment\n", b" ; ;\n"] {
        let r = s.post("/control", body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json(),
            json!({"queries": 0, "matched": 0, "changed": 0, "rendezvous": 0, "id": Value::Null})
        );
    }
}

#[test]
fn params_are_listed_with_their_classes() {
    let s = Server::start(None);
    let p = s.get("/params").json();
    let http = p["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "http.debug")
        .unwrap()
        .clone();
    assert_eq!(http["classes"], json!(["HTTP_A", "HTTP_B", "HTTP_C"]));
    assert_eq!(http["kind"], "disjoint_bits");
    assert_eq!(http["modules"], json!(["http"]));
}

#[test]
fn mounted_under_a_prefix_every_miss_is_json() {
    let state = AppState::new(None);
    let s = Server::mounted(state, Limits::default(), Some("/debug"));
    for path in ["/debug/", "/debug/nope", "/debug/healthz/x"] {
        let r = client::send(s.addr, "GET", path, &[], b"");
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.categories(), vec!["E_NOT_FOUND".to_string()], "{path}");
    }
    let r = client::send(s.addr, "GET", "/debug/healthz", &[], b"");
    assert_eq!(r.status, 200);
}
