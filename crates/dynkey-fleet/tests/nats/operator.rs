//! dynkeyctl against real nats-servers: bucket creation on both servers,
//! refusals before publishing, compare-and-set, history and rollback.

use std::time::Duration;

use dynkey_fleet::buckets::{DESIRED, STATUS};
use dynkey_fleet::operator::{Edit, Operator};
use dynkey_fleet::{NatsArgs, Op, Scope};
use serde_json::json;

use crate::support::{Nats, Server, ctl, init, proxy::Proxy};

async fn messages(url: &str, bucket: &str) -> u64 {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(format!("KV_{bucket}")).await.unwrap();
    s.info().await.unwrap().state.messages
}

async fn stream_config(url: &str, bucket: &str) -> async_nats::jetstream::stream::Config {
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(format!("KV_{bucket}")).await.unwrap();
    s.info().await.unwrap().config.clone()
}

/// `init` creates both buckets on Debian's 2.9.10 (where async-nats's own
/// bucket creation fails) and on 2.15, is idempotent, follows the
/// heartbeat, and the buckets then take writes, reads, history and CAS.
async fn init_round(kind: Server) {
    let nats = Nats::start(kind);
    let url = nats.url();
    let r = ctl(&url, &["init", "--heartbeat", "2s"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        r.out,
        json!({"buckets": {DESIRED: "created", STATUS: "created"}, "status_max_age_s": 6.0})
    );
    let again = ctl(&url, &["init", "--heartbeat", "2s"]);
    assert_eq!(
        again.out["buckets"],
        json!({DESIRED: "unchanged", STATUS: "unchanged"}),
        "{again:?}"
    );
    let changed = ctl(&url, &["init"]);
    assert_eq!(changed.out["buckets"][STATUS], "updated", "{changed:?}");
    assert_eq!(changed.out["status_max_age_s"], 15.0);

    let desired = stream_config(&url, DESIRED).await;
    assert_eq!(desired.subjects, vec![format!("$KV.{DESIRED}.>")]);
    assert_eq!(desired.max_messages_per_subject, 64);
    assert!(desired.allow_rollup && desired.deny_delete && desired.allow_direct);
    let status = stream_config(&url, STATUS).await;
    assert_eq!(status.max_age, Duration::from_secs(15));
    assert_eq!(status.max_messages_per_subject, 1);

    let a = ctl(
        &url,
        &["apply", "--scope", "all", "--query", "module virtio* +p"],
    );
    assert_eq!(a.code, 0, "{a:?}");
    let rev = a.out["revision"].as_u64().unwrap();
    assert_eq!(a.out, json!({"scope": "all", "revision": rev}));
    let b = ctl(
        &url,
        &["apply", "--scope", "all", "--key", "DEMO_VERIFY=on"],
    );
    assert_eq!(b.code, 0, "{b:?}");
    let show = ctl(&url, &["show", "--scope", "all"]);
    assert_eq!(
        show.out["scopes"][0]["ops"],
        json!([{"query": "module virtio* +p"}, {"keys": {"DEMO_VERIFY": true}}])
    );
    let history = ctl(&url, &["history", "--scope", "all"]);
    assert_eq!(
        history.out["revisions"].as_array().unwrap().len(),
        2,
        "{history:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_and_round_trip_on_debian_2_9_10() {
    init_round(Server::Debian).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_and_round_trip_on_2_15() {
    init_round(Server::Current).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_before_anything_is_published() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    let cases: &[(&[&str], &str)] = &[
        (
            &["apply", "--scope", "all", "--query", "mod x +p"],
            "E_UNKNOWN_KEYWORD",
        ),
        (
            &[
                "apply",
                "--scope",
                "all",
                "--query",
                "module x +p",
                "--query",
                "module y +q",
            ],
            "E_UNKNOWN_FLAG",
        ),
        (
            &["apply", "--scope", "all", "--param", "drm.debug=lots"],
            "E_BAD_PARAM",
        ),
        (
            &["apply", "--scope", "all", "--key", "K=maybe"],
            "E_BAD_INPUT",
        ),
        (
            &["apply", "--scope", "all", "--call", "nocall"],
            "E_BAD_INPUT",
        ),
        (&["apply", "--scope", "all"], "E_BAD_INPUT"),
        (
            &[
                "set",
                "--scope",
                "all",
                "--query",
                "module x +p; line 9-3 +p",
            ],
            "E_LINE_ORDER",
        ),
    ];
    for (args, category) in cases {
        let r = ctl(&url, args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        let err: serde_json::Value =
            serde_json::from_str(r.err.trim()).unwrap_or_else(|e| panic!("{e}: {r:?}"));
        assert_eq!(err["errors"][0]["category"], *category, "{args:?}: {r:?}");
        assert_eq!(r.out, serde_json::Value::Null, "nothing on stdout");
    }
    // The error names the query's category and byte offset.
    let r = ctl(
        &url,
        &[
            "apply",
            "--scope",
            "all",
            "--query",
            "module x +p",
            "--query",
            "func f flies +p",
        ],
    );
    let err: serde_json::Value = serde_json::from_str(r.err.trim()).unwrap();
    assert_eq!(err["errors"][0]["op"], 1);
    assert_eq!(err["errors"][0]["category"], "E_ODD_PAIRS");
    assert_eq!(err["errors"][0]["offset"], 7, "{err}");
    // Scopes, durations and clap's own usage errors are exit 2 as well.
    for args in [
        &["apply", "--scope", "svc", "--query", "module x +p"][..],
        &[
            "apply",
            "--scope",
            "all",
            "--ttl",
            "31d",
            "--query",
            "module x +p",
        ],
        &[
            "apply",
            "--scope",
            "all",
            "--ttl",
            "0",
            "--query",
            "module x +p",
        ],
        &["status", "--wait", "soon"],
        &["rollback", "--scope", "all"],
        &["frobnicate"],
    ] {
        assert_eq!(ctl(&url, args).code, 2, "{args:?}");
    }
    assert_eq!(
        messages(&url, DESIRED).await,
        0,
        "nothing reached the bucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_keep_command_line_order_and_expiry() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    let before = std::time::SystemTime::now();
    let r = ctl(
        &url,
        &[
            "apply",
            "--scope",
            "svc=checkout,region=eu",
            "--ttl",
            "90s",
            "--comment",
            "incident 42",
            "--key",
            "A=on",
            "--query",
            "module a +p",
            "--param",
            "drm.debug=0x1ff",
            "--key",
            "B=off",
            "--call",
            "C=adler32",
            "--query",
            "module b +p",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    // Printed in the command line's spelling (pairs sorted).
    assert_eq!(r.out["scope"], "region=eu,svc=checkout");
    let show = ctl(&url, &["show", "--scope", "svc=checkout,region=eu"]);
    let script = &show.out["scopes"][0];
    assert_eq!(script["comment"], "incident 42");
    let ops = script["ops"].as_array().unwrap();
    let kinds: Vec<String> = ops
        .iter()
        .map(|o| {
            let mut o = o.clone();
            let at = o
                .as_object_mut()
                .unwrap()
                .remove("expires_at")
                .expect("every op expires");
            let at = dynkey::parse_time(at.as_str().unwrap()).unwrap();
            let ttl = at.duration_since(before).unwrap();
            assert!(
                ttl > Duration::from_secs(85) && ttl <= Duration::from_secs(91),
                "{ttl:?}"
            );
            o.to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            r#"{"keys":{"A":true}}"#,
            r#"{"query":"module a +p"}"#,
            r#"{"param":"drm.debug","value":"0x1ff"}"#,
            r#"{"keys":{"B":false}}"#,
            r#"{"call":"C","target":"adler32"}"#,
            r#"{"query":"module b +p"}"#,
        ]
    );
    // `show` without a scope lists every scope in effective order.
    ctl(
        &url,
        &[
            "apply",
            "--scope",
            "instance=web-1",
            "--query",
            "module c +p",
        ],
    );
    ctl(&url, &["apply", "--scope", "all", "--query", "module d +p"]);
    ctl(
        &url,
        &["apply", "--scope", "tier=web", "--query", "module e +p"],
    );
    let all = ctl(&url, &["show"]);
    let scopes: Vec<&str> = all.out["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scope"].as_str().unwrap())
        .collect();
    assert_eq!(
        scopes,
        [
            "all",
            "tier=web",
            "region=eu,svc=checkout",
            "instance=web-1"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_rollback_and_clear() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    let s = "svc=api";
    let r1 = ctl(&url, &["apply", "--scope", s, "--query", "module a +p"]).out["revision"]
        .as_u64()
        .unwrap();
    let r2 = ctl(&url, &["apply", "--scope", s, "--query", "module b +p"]).out["revision"]
        .as_u64()
        .unwrap();
    let r3 = ctl(
        &url,
        &[
            "set",
            "--scope",
            s,
            "--query",
            "module c +p",
            "--comment",
            "reset",
        ],
    )
    .out["revision"]
        .as_u64()
        .unwrap();
    let cleared = ctl(&url, &["clear", "--scope", s]);
    assert_eq!(cleared.code, 0, "{cleared:?}");
    let r4 = cleared.out["revision"].as_u64().unwrap();
    assert!(r1 < r2 && r2 < r3 && r3 < r4);
    assert_eq!(
        ctl(&url, &["show", "--scope", s]).out,
        json!({"scopes": []})
    );
    // Clearing a cleared scope writes nothing.
    assert_eq!(ctl(&url, &["clear", "--scope", s]).out["revision"], r4);

    let h = ctl(&url, &["history", "--scope", s]);
    let revs = h.out["revisions"].as_array().unwrap();
    let summary: Vec<(u64, &str, usize)> = revs
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["action"].as_str().unwrap(),
                r["ops"].as_array().map_or(0, |o| o.len()),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (r1, "put", 1),
            (r2, "put", 2),
            (r3, "put", 1),
            (r4, "clear", 0)
        ]
    );
    assert_eq!(revs[2]["comment"], "reset");

    // Roll back to r2: a new revision with r2's script.
    let back = ctl(
        &url,
        &["rollback", "--scope", s, "--revision", &r2.to_string()],
    );
    assert_eq!(back.code, 0, "{back:?}");
    let r5 = back.out["revision"].as_u64().unwrap();
    assert!(r5 > r4);
    let shown = ctl(&url, &["show", "--scope", s]);
    assert_eq!(shown.out["scopes"][0]["revision"], r5);
    assert_eq!(
        shown.out["scopes"][0]["ops"],
        json!([{"query": "module a +p"}, {"query": "module b +p"}])
    );
    assert_eq!(
        shown.out["scopes"][0]["comment"],
        format!("rollback to revision {r2}")
    );
    // Not a revision of this scope, a clear, or never existed: exit 2.
    let other = ctl(&url, &["apply", "--scope", "all", "--query", "module z +p"]).out["revision"]
        .as_u64()
        .unwrap();
    for bad in [other, r4, 999_999] {
        let r = ctl(
            &url,
            &["rollback", "--scope", s, "--revision", &bad.to_string()],
        );
        assert_eq!(r.code, 2, "revision {bad}: {r:?}");
    }
    assert_eq!(
        ctl(&url, &["show", "--scope", s]).out["scopes"][0]["revision"],
        r5,
        "nothing written"
    );
}

/// Two operators on one scope: the second write, computed from a revision
/// that is no longer current, is refused (exit 3) and writes nothing; the
/// first one's operation is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_write_is_refused_with_exit_3() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    let base = ctl(
        &url,
        &["apply", "--scope", "all", "--query", "module base +p"],
    )
    .out["revision"]
        .as_u64()
        .unwrap();
    // dynkeyctl talks through a proxy that holds its write (after it read
    // the scope) while another operator writes.
    let proxy = Proxy::start(nats.port).await;
    let (mut held, release) = proxy.hold_when(format!("HPUB $KV.{DESIRED}.all ").as_bytes());
    let purl = proxy.url();
    let slow = tokio::task::spawn_blocking(move || {
        ctl(
            &purl,
            &["apply", "--scope", "all", "--query", "module slow +p"],
        )
    });
    held.recv()
        .await
        .expect("dynkeyctl's write reached the proxy");
    let other = Operator::connect(&url, &NatsArgs::default()).await.unwrap();
    let won = other
        .write(
            &Scope::All,
            Edit::Append(vec![Op::query("module fast +p")]),
            None,
        )
        .await
        .unwrap();
    assert!(won > base);
    release.notify_one();
    let r = slow.await.unwrap();
    assert_eq!(r.code, 3, "{r:?}");
    let err: serde_json::Value = serde_json::from_str(r.err.trim()).unwrap();
    assert_eq!(err["errors"][0]["category"], "E_CONFLICT");
    assert!(
        err["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("retry")
    );
    let show = ctl(&url, &["show", "--scope", "all"]);
    assert_eq!(show.out["scopes"][0]["revision"], won);
    assert_eq!(
        show.out["scopes"][0]["ops"],
        json!([{"query": "module base +p"}, {"query": "module fast +p"}])
    );
    // Retried, it lands on top.
    let retry = ctl(
        &url,
        &["apply", "--scope", "all", "--query", "module slow +p"],
    );
    assert_eq!(retry.code, 0, "{retry:?}");
    assert_eq!(
        ctl(&url, &["show", "--scope", "all"]).out["scopes"][0]["ops"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// Many operators at once: each is told it won (0) or must retry (3), and
/// the script holds exactly the winners' operations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_operators_lose_nothing_silently() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    let children: Vec<_> = (0..8)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                (
                    i,
                    ctl(
                        &url,
                        &[
                            "apply",
                            "--scope",
                            "all",
                            "--query",
                            &format!("module m{i} +p"),
                        ],
                    ),
                )
            })
        })
        .collect();
    let mut won = Vec::new();
    for c in children {
        let (i, r) = c.join().unwrap();
        match r.code {
            0 => won.push((
                r.out["revision"].as_u64().unwrap(),
                format!("module m{i} +p"),
            )),
            3 => {}
            _ => panic!("operator {i}: {r:?}"),
        }
    }
    won.sort();
    assert!(!won.is_empty());
    let show = ctl(&url, &["show", "--scope", "all"]);
    let ops: Vec<&str> = show.out["scopes"][0]["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["query"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = won.iter().map(|(_, q)| q.as_str()).collect();
    assert_eq!(
        ops, expected,
        "the script is the winners' operations, in revision order"
    );
    assert_eq!(show.out["scopes"][0]["revision"], won.last().unwrap().0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_uninitialised_exit_4() {
    let nats = Nats::start(Server::Current);
    // No buckets yet.
    let r = ctl(&nats.url(), &["show"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.err.contains("dynkeyctl --nats URL init"), "{r:?}");
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = ctl(&format!("nats://127.0.0.1:{port}"), &["status"]);
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.err.contains("E_UNREACHABLE"), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_without_live_instances_is_not_converged() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    ctl(&url, &["apply", "--scope", "all", "--query", "module a +p"]);
    for args in [
        &["status"][..],
        &["status", "--scope", "all"],
        &["status", "--scope", "all", "--wait", "300ms"],
    ] {
        let r = ctl(&url, args);
        assert_eq!(r.code, 1, "{args:?}: {r:?}");
        assert_eq!(r.out, json!({"converged": false, "instances": []}));
    }
}

/// One duration parser serves both binaries: a ttl that dynkeyd accepts
/// (`POST /control?ttl=`) dynkeyctl accepts (`apply --ttl`) with the same
/// expiry, and one refused by either is refused by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_means_the_same_to_dynkeyd_and_dynkeyctl() {
    use crate::support::{Dynkeyd, TempDir};
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    let dir = TempDir::new("ttl");
    let d = Dynkeyd::start(&url, "ttl-1", "", "1s", dir.path(), &[]);
    let expiry_of = |op: &serde_json::Value| {
        let at = op["expires_at"].as_str().expect("an expiry");
        dynkey::parse_time(at).unwrap()
    };
    for (ttl, want) in [
        ("90s", Some(90)),
        ("10m", Some(600)),
        ("2h", Some(7200)),
        ("1h30m", Some(5400)),
        ("45", Some(45)),
        ("30d", Some(30 * 86_400)),
        ("0", None),
        ("1.5h", None),
        ("500ms", None),
        ("31d", None),
        ("1w", None),
        ("30m1h", None),
    ] {
        let before = std::time::SystemTime::now();
        let reply: serde_json::Value =
            serde_json::from_str(&d.post(&format!("/control?ttl={ttl}"), "module virtio_net +p"))
                .unwrap();
        let c = ctl(
            &url,
            &[
                "apply",
                "--scope",
                "all",
                "--ttl",
                ttl,
                "--query",
                "module virtio_net +p",
            ],
        );
        let Some(secs) = want else {
            assert_eq!(
                reply["errors"][0]["category"], "E_BAD_TTL",
                "{ttl}: {reply}"
            );
            assert_eq!(c.code, 2, "dynkeyctl --ttl {ttl}: {c:?}");
            continue;
        };
        assert_eq!(c.code, 0, "dynkeyctl --ttl {ttl}: {c:?}");
        let id = reply["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{ttl}: {reply}"));
        let state = d.get("/state");
        let local = state["local"].as_array().unwrap();
        let mine = local.iter().find(|o| o["id"] == id).expect("in force");
        let show = ctl(&url, &["show", "--scope", "all"]);
        let ops = show.out["scopes"][0]["ops"].as_array().unwrap();
        for (who, at) in [
            ("dynkeyd", expiry_of(mine)),
            ("dynkeyctl", expiry_of(ops.last().expect("an operation"))),
        ] {
            let got = at.duration_since(before).unwrap_or_default();
            assert!(
                got + Duration::from_secs(1) >= Duration::from_secs(secs)
                    && got <= Duration::from_secs(secs + 1),
                "{who} --ttl {ttl}: expires in {got:?}, want {secs} s"
            );
        }
    }
}
