//! Every route, success and error, through a real client.

use serde_json::json;

use crate::{HTTP_CALL, HTTP_KEY, HTTP_OTHER_KEY, Server, http_sites};

/// Serializes tests that change the shared sites of this binary.
fn lock() -> std::sync::MutexGuard<'static, ()> {
    crate::sites_lock()
}

#[test]
fn post_control_applies_a_body_in_one_commit() {
    let _g = lock();
    http_sites();
    let s = Server::start(None);
    let r = s.post("/control", b"func http_sites +p");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json_change(),
        json!({"queries": 1, "matched": 1, "changed": 1, "rendezvous": 1}),
        "the class'd sites are protected"
    );
    let r = s.post("/control", b"func http_sites +p");
    assert_eq!(
        r.json_change(),
        json!({"queries": 1, "matched": 1, "changed": 0, "rendezvous": 0}),
        "no change, no rendezvous"
    );
    let r = s.post(
        "/control",
        b"func http_sites +mf\n# a comment\nfunc http_sites -p; func http_sites +p",
    );
    assert_eq!(
        r.json_change(),
        json!({"queries": 3, "matched": 3, "changed": 1, "rendezvous": 0}),
        "decorations cost no rendezvous"
    );
    assert_eq!(
        s.post("/control", b"func http_sites =_").json()["rendezvous"],
        1
    );
}

#[test]
fn bodies_are_raw_whatever_the_content_type() {
    let _g = lock();
    let s = Server::start(None);
    // curl -d sends this header; URL-decoding would turn +p into " p".
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = s.request("POST", "/control", &form, b"func http_sites +p");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        s.get("/control")
            .text()
            .contains("]http_sites =p \"http site\"")
    );
    s.request("POST", "/control", &form, b"func http_sites -p");
}

#[test]
fn bad_queries_are_400_with_every_error_and_change_nothing() {
    let _g = lock();
    let s = Server::start(None);
    let before = s.get("/control").text();
    let r = s.post("/control", b"func http_sites +p; mod x +p\nfunc y +z");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json()["errors"],
        json!([
            {"query": 1, "category": "E_UNKNOWN_KEYWORD", "offset": 20, "message": "unknown keyword \"mod\" at byte 20; expected one of file, func, module, format, line, class"},
            {"query": 2, "category": "E_UNKNOWN_FLAG", "offset": 36, "message": r.json()["errors"][1]["message"]},
        ])
    );
    assert_eq!(s.get("/control").text(), before, "nothing applied");
}

#[test]
fn body_size_limits_answer_413_as_json() {
    let _g = lock();
    let s = Server::start(None);
    let mut ok = b"func http_sites -p\n".to_vec();
    ok.resize(4095, b'#');
    assert_eq!(
        s.post("/control", &ok).status,
        200,
        "4095 bytes are accepted"
    );
    let mut big = ok.clone();
    big.push(b'#');
    let r = s.post("/control", &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["errors"][0]["category"], "E_TOO_BIG");
    assert_eq!(r.json()["errors"][0]["offset"], 4095);
    let huge = vec![b'#'; 200 * 1024];
    let r = s.post("/control", &huge);
    assert_eq!(
        (r.status, r.categories()),
        (413, vec!["E_TOO_BIG".to_string()]),
        "beyond the framework's limit too"
    );
    let r = s.put("/params/http.debug", &big);
    assert_eq!(r.status, 413);
}

#[test]
fn non_utf8_bodies_are_400() {
    let s = Server::start(None);
    let r = s.post("/control", b"func \xff +p");
    assert_eq!(
        (r.status, r.categories()),
        (400, vec!["E_BAD_ENCODING".to_string()])
    );
    assert_eq!(r.json()["errors"][0]["offset"], 5);
    let r = s.put("/params/http.debug", b"\xfe");
    assert_eq!(
        (r.status, r.categories()),
        (400, vec!["E_BAD_ENCODING".to_string()])
    );
}

#[test]
fn listing_as_text_and_json() {
    http_sites();
    let s = Server::start(None);
    let text = s.get("/control");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert!(
        text.text()
            .starts_with("# filename:lineno [module]function flags format\n")
    );
    assert!(
        text.text()
            .contains("[http]http_sites =_ \"class a\" class:HTTP_A")
            || text.text().contains(" class:HTTP_A")
    );
    let j = s.get("/control?format=json").json();
    assert!(["membarrier", "signal", "none"].contains(&j["rendezvous_method"].as_str().unwrap()));
    let site = j["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["format"] == "class c")
        .unwrap();
    assert_eq!(site["class"], "HTTP_C");
    assert_eq!(site["func"], "http_sites");
    assert_eq!(site["module"], "http");
    let r = s.get("/control?format=xml");
    assert_eq!(
        (r.status, r.categories()),
        (400, vec!["E_BAD_FORMAT".to_string()])
    );
}

#[test]
fn params_write_all_bits_in_one_commit_and_read_back() {
    let _g = lock();
    http_sites();
    let s = Server::start(None);
    let r = s.put("/params/http.debug", b"5\n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json_change(),
        json!({"param": "http.debug", "value": "0x5", "changed": 2, "rendezvous": 1})
    );
    assert_eq!(
        s.get("/params/http.debug").text(),
        "0x5",
        "hex, even when written in decimal"
    );
    assert_eq!(
        s.put("/params/http.debug", b"0xff").json()["value"],
        "0x7",
        "masked to the map's 3 bits"
    );
    let r = s.put("/params/http.debug", b"abc");
    assert_eq!(
        (r.status, r.categories()),
        (400, vec!["E_BAD_PARAM".to_string()])
    );
    assert_eq!(
        s.get("/params/http.debug").text(),
        "0x7",
        "a rejected write changes nothing"
    );
    let r = s.put("/params/no.such", b"1");
    assert_eq!(
        (r.status, r.categories()),
        (404, vec!["E_NOT_FOUND".to_string()])
    );
    assert_eq!(s.get("/params/no.such").status, 404);
    s.put("/params/http.debug", b"0");
}

#[test]
fn keys_are_listed_and_set_by_name_all_or_nothing() {
    let _g = lock();
    let s = Server::start(None);
    let j = s.get("/keys").json();
    let key = j["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "HTTP_KEY")
        .unwrap()
        .clone();
    assert_eq!(key["enabled"], false);
    assert!(
        key["defined_at"]
            .as_str()
            .unwrap()
            .starts_with("crates/dynkey-server/tests/http/main.rs:")
    );
    let call = j["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "HTTP_CALL")
        .unwrap()
        .clone();
    assert_eq!(call["targets"], json!(["first", "second"]));

    let r = s.post("/keys", br#"{"HTTP_KEY": true, "NO_SUCH_KEY": true}"#);
    assert_eq!(
        (r.status, r.categories()),
        (400, vec!["E_UNKNOWN_KEY".to_string()])
    );
    assert!(!HTTP_KEY.is_enabled(), "nothing applied");
    let r = s.post("/keys", br#"{"HTTP_KEY": true, "HTTP_OTHER_KEY": true}"#);
    assert_eq!(
        r.json_change(),
        json!({"changed": 2, "rendezvous": 1}),
        "two keys, one commit"
    );
    assert!(HTTP_KEY.is_enabled() && HTTP_OTHER_KEY.is_enabled() && http_sites().0);
    for bad in [&b"{not json"[..], br#"{"HTTP_KEY": 1}"#, b"[true]"] {
        let r = s.post("/keys", bad);
        assert_eq!(
            (r.status, r.categories()),
            (400, vec!["E_BAD_JSON".to_string()]),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    s.post("/keys", br#"{"HTTP_KEY": false, "HTTP_OTHER_KEY": false}"#);
}

#[test]
fn calls_switch_by_target_name() {
    let _g = lock();
    let s = Server::start(None);
    let r = s.put("/calls/HTTP_CALL", b"second\n");
    assert_eq!(
        r.json_change(),
        json!({"call": "HTTP_CALL", "target": "second", "changed": 1, "rendezvous": 1})
    );
    assert_eq!(HTTP_CALL.get()(1), 3);
    let r = s.put("/calls/HTTP_CALL", b"third");
    assert_eq!(
        (r.status, r.categories()),
        (400, vec!["E_UNKNOWN_KEY".to_string()])
    );
    let r = s.put("/calls/NO_SUCH_CALL", b"first");
    assert_eq!(
        (r.status, r.categories()),
        (404, vec!["E_NOT_FOUND".to_string()])
    );
    s.put("/calls/HTTP_CALL", b"first");
    assert_eq!(HTTP_CALL.get()(1), 2);
}

#[test]
fn metrics_health_and_unknown_routes() {
    let s = Server::start(None);
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    let text = m.text();
    for family in [
        "dynkey_commits_total",
        "dynkey_rendezvous_total{method=\"membarrier\"}",
        "dynkey_sites_patched_total{kind=\"inline\"}",
        "dynkey_sites_skipped_total",
        "dynkey_sites{kind=\"inline\",state=\"disabled\"}",
        "dynkey_commit_duration_seconds_bucket{le=",
        "dynkey_rendezvous_duration_seconds_count",
        "dynkey_queries_total{result=\"ok\"}",
        "dynkey_rendezvous_method{method=",
        "dynkey_rendezvous_timeouts_total",
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(family), "{family} missing from\n{text}");
    }
    assert_eq!(s.get("/healthz").json(), json!({"status": "ok"}));
    let r = s.get("/nope");
    assert_eq!(
        (r.status, r.categories()),
        (404, vec!["E_NOT_FOUND".to_string()])
    );
    let r = s.request("DELETE", "/keys", &[], b"");
    assert_eq!(
        (r.status, r.categories()),
        (405, vec!["E_METHOD".to_string()])
    );
}
