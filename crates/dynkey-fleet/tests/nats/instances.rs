//! Instances for real: dynkeyd processes joined to a real nats-server,
//! driven with dynkeyctl, observed through dynkeyctl status, their HTTP
//! listing, `GET /fleet` and their metrics.
//!
//! These need dynkeyd's `--nats` wiring (dynkey-fleet's `Instance` started
//! from dynkeyd's main with `dynkey::Control` as the target) and
//! `--state-dir`; until both are on this branch they are ignored.

use std::time::{Duration, Instant, SystemTime};

use dynkey_fleet::operator::{Edit, Operator};
use dynkey_fleet::{NatsArgs, Op, Scope};
use serde_json::Value;

use crate::support::{Ctl, Dynkeyd, Nats, Server, TempDir, ctl, init, proxy::Proxy, wait_until};

const HB: &str = "1s";

/// How many fixture sites of `module` have the `p` flag on.
fn p_on(d: &Dynkeyd, module: &str) -> usize {
    let listing = d.get("/control?format=json");
    listing["sites"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["module"] == module && s["flags"].as_str().unwrap().contains('p'))
        .count()
}

fn status(url: &str, args: &[&str]) -> Ctl {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    ctl(url, &all)
}

/// Waits until `status ARGS` reports converged with at least the
/// instances `ids` listed (an instance is listed once its first status
/// arrived); returns that report.
fn converged(url: &str, args: &[&str], ids: &[&str]) -> Value {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(30), || {
        let r = status(url, args);
        let listed = |id: &&str| {
            r.out["instances"]
                .as_array()
                .is_some_and(|i| i.iter().any(|i| i["id"] == *id))
        };
        let done = r.code == 0 && ids.iter().all(listed);
        last = Some(r);
        done
    });
    let last = last.unwrap();
    assert!(ok, "not converged with {ids:?}: {last:?}");
    last.out
}

fn apply(url: &str, args: &[&str]) -> u64 {
    let mut all = vec!["apply"];
    all.extend_from_slice(args);
    let r = ctl(url, &all);
    assert_eq!(r.code, 0, "{r:?}");
    r.out["revision"].as_u64().unwrap()
}

fn instance<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {report}"))
}

struct Member {
    d: Dynkeyd,
    _dir: TempDir,
}

fn member(url: &str, id: &str, labels: &str) -> Member {
    let dir = TempDir::new(id);
    Member {
        d: Dynkeyd::start(url, id, labels, HB, dir.path(), &[]),
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_reaches_every_matching_instance_and_only_those() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, HB);
    let a = member(&url, "a", "svc=checkout,region=eu");
    let b = member(&url, "b", "svc=checkout,region=us");
    let c = member(&url, "c", "svc=search");
    let rev = apply(
        &url,
        &["--scope", "svc=checkout", "--query", "module virtio_net +p"],
    );
    let report = converged(&url, &["--scope", "svc=checkout"], &["a", "b"]);
    let ids: Vec<&str> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b"], "only matching instances are listed");
    for id in ["a", "b"] {
        assert_eq!(instance(&report, id)["applied"]["svc=checkout"], rev);
    }
    assert_eq!(p_on(&a.d, "virtio_net"), 3);
    assert_eq!(p_on(&b.d, "virtio_net"), 3);
    assert_eq!(p_on(&c.d, "virtio_net"), 0, "c does not match");
    // The whole fleet is converged (c has nothing to apply), and a and b,
    // one build in one state, have one table hash; c differs.
    let all = converged(&url, &[], &["a", "b", "c"]);
    assert_eq!(
        instance(&all, "a")["table_hash"],
        instance(&all, "b")["table_hash"]
    );
    assert_ne!(
        instance(&all, "a")["table_hash"],
        instance(&all, "c")["table_hash"]
    );
    // One instance's scope is layered last.
    apply(
        &url,
        &[
            "--scope",
            "instance=c",
            "--query",
            "module virtio_net +p",
            "--key",
            "DEMO_VERIFY=on",
        ],
    );
    converged(&url, &["--scope", "instance=c"], &["c"]);
    assert_eq!(p_on(&c.d, "virtio_net"), 3);
    assert_eq!(c.d.get("/fleet")["scopes"][0]["scope"], "instance=c");
    // A later, more specific scope overrides: b turns it off for region=us.
    apply(
        &url,
        &[
            "--scope",
            "svc=checkout,region=us",
            "--query",
            "module virtio_net -p",
        ],
    );
    converged(&url, &[], &["a", "b", "c"]);
    assert_eq!(p_on(&b.d, "virtio_net"), 0);
    assert_eq!(p_on(&a.d, "virtio_net"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_instance_converges_to_its_peers_table() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, HB);
    let early = member(&url, "early", "svc=api");
    apply(&url, &["--scope", "all", "--query", "module e1000e +p"]);
    apply(
        &url,
        &[
            "--scope",
            "svc=api",
            "--query",
            "module drm +p",
            "--param",
            "drm.debug=0x3",
        ],
    );
    apply(
        &url,
        &[
            "--scope",
            "all",
            "--query",
            "module e1000e -p; module virtio_blk +pf",
        ],
    );
    converged(&url, &[], &["early"]);
    let late = member(&url, "late", "svc=api");
    let report = converged(&url, &[], &["early", "late"]);
    assert_eq!(
        instance(&report, "late")["applied"],
        instance(&report, "early")["applied"]
    );
    assert_eq!(
        instance(&report, "late")["table_hash"],
        instance(&report, "early")["table_hash"]
    );
    assert_eq!(
        late.d.get("/control?format=json"),
        early.d.get("/control?format=json")
    );
}

/// A partition: the instance's link frozen longer than its ping interval.
/// Its status expires and `status` stops counting it live; 100 revisions
/// written meanwhile cost it one commit when the link heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_instance_expires_then_catches_up_in_one_commit() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, HB);
    let proxy = Proxy::start(nats.port).await;
    let dir = TempDir::new("cut");
    let cut = Dynkeyd::start(&proxy.url(), "cut", "svc=x", HB, dir.path(), &[]);
    apply(&url, &["--scope", "all", "--query", "module virtio_net +p"]);
    converged(&url, &["--scope", "all"], &["cut"]);

    proxy.freeze();
    let gone = wait_until(Duration::from_secs(30), || {
        let r = status(&url, &[]);
        r.code == 1 && r.out["instances"].as_array().is_some_and(|i| i.is_empty())
    });
    assert!(
        gone,
        "the cut instance's status expired and it is not counted live"
    );
    // Its pings go unanswered: it notices the cut link.
    assert!(wait_until(
        Duration::from_secs(30),
        || cut.get("/fleet")["connected"] == false
    ));

    let commits = cut.metric("dynkey_commits_total");
    let rendezvous = cut.metric("dynkey_rendezvous_total");
    let op = Operator::connect(&url, &NatsArgs::default()).await.unwrap();
    let mut last = 0;
    for i in 0..100 {
        // Ends on +p: the state after the burst differs from before it
        // (a burst that nets to nothing costs no commit at all).
        let body = if i % 2 == 0 {
            "module e1000e -p"
        } else {
            "module e1000e +p"
        };
        last = op
            .write(&Scope::All, Edit::Append(vec![Op::query(body)]), None)
            .await
            .unwrap();
    }
    proxy.heal();
    let report = converged(
        &url,
        &["--scope", "all", "--revision", &last.to_string()],
        &["cut"],
    );
    assert_eq!(instance(&report, "cut")["applied"]["all"], last);
    assert_eq!(
        cut.metric("dynkey_commits_total") - commits,
        1.0,
        "the burst cost one commit"
    );
    assert!(cut.metric("dynkey_rendezvous_total") - rendezvous <= 1.0);
    assert_eq!(p_on(&cut, "e1000e"), 3, "the script ran to its end");
    assert_eq!(cut.get("/fleet")["connected"], true);
}

/// kill -9 of nats-server and a restart on the same store: instances
/// resume, and a new revision arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_resume_after_nats_server_is_killed() {
    let mut nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, HB);
    let a = member(&url, "a", "");
    let b = member(&url, "b", "");
    apply(&url, &["--scope", "all", "--query", "module virtio_net +p"]);
    converged(&url, &[], &["a", "b"]);
    nats.kill9();
    assert!(wait_until(
        Duration::from_secs(30),
        || a.d.get("/fleet")["connected"] == false
    ));
    nats.restart();
    let rev = apply(&url, &["--scope", "all", "--query", "module e1000e +p"]);
    let report = converged(
        &url,
        &["--scope", "all", "--revision", &rev.to_string()],
        &["a", "b"],
    );
    assert_eq!(report["instances"].as_array().unwrap().len(), 2);
    assert_eq!(p_on(&a.d, "e1000e"), 3);
    assert_eq!(p_on(&b.d, "e1000e"), 3);
}

/// A scope naming a key this build lacks keeps its last good version on
/// the instance, which reports the error; fixing the scope converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_an_instance_cannot_apply_keeps_its_last_good_version() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, HB);
    let m = member(&url, "m", "");
    let good = apply(
        &url,
        &[
            "--scope",
            "all",
            "--key",
            "DEMO_VERIFY=on",
            "--query",
            "module virtio_net +p",
        ],
    );
    converged(&url, &["--scope", "all"], &["m"]);
    let bad = apply(
        &url,
        &[
            "--scope",
            "all",
            "--key",
            "NO_SUCH_KEY=on",
            "--query",
            "module e1000e +p",
        ],
    );
    // Once the instance has seen the bad revision, it reports it and
    // status is not converged.
    let mut r = status(&url, &["--scope", "all"]);
    assert!(wait_until(Duration::from_secs(30), || {
        r = status(&url, &["--scope", "all"]);
        r.out["instances"][0]["errors"][0]["revision"] == bad
    }));
    assert_eq!(r.code, 1, "{r:?}");
    let me = instance(&r.out, "m");
    assert_eq!(me["applied"]["all"], good, "the last good revision stays");
    assert_eq!(me["errors"][0]["scope"], "all");
    assert_eq!(me["errors"][0]["revision"], bad);
    assert!(
        me["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("NO_SUCH_KEY"),
        "{me}"
    );
    assert_eq!(p_on(&m.d, "virtio_net"), 3);
    assert_eq!(
        p_on(&m.d, "e1000e"),
        0,
        "nothing of the bad revision applied"
    );
    let view = m.d.get("/fleet");
    assert_eq!(view["scopes"][0]["revision"], good);
    assert!(
        view["scopes"][0]["error"]
            .as_str()
            .unwrap()
            .contains("NO_SUCH_KEY")
    );
    let fixed = ctl(
        &url,
        &[
            "set",
            "--scope",
            "all",
            "--key",
            "DEMO_VERIFY=on",
            "--query",
            "module e1000e +p",
        ],
    );
    assert_eq!(fixed.code, 0);
    converged(&url, &["--scope", "all"], &["m"]);
    assert_eq!(p_on(&m.d, "e1000e"), 3);
    assert_eq!(p_on(&m.d, "virtio_net"), 0, "set replaced the script");
}

/// A fleet operation with a ttl reverts on every instance at its time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_operation_expires_on_every_instance() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, HB);
    let ms: Vec<Member> = ["x", "y"].iter().map(|id| member(&url, id, "")).collect();
    apply(
        &url,
        &[
            "--scope",
            "all",
            "--ttl",
            "3s",
            "--query",
            "module virtio_net +p",
        ],
    );
    let show = ctl(&url, &["show", "--scope", "all"]);
    let at = show.out["scopes"][0]["ops"][0]["expires_at"]
        .as_str()
        .unwrap()
        .to_string();
    let at = dynkey::parse_time(&at).unwrap();
    converged(&url, &[], &["x", "y"]);
    if SystemTime::now() < at {
        for m in &ms {
            assert_eq!(p_on(&m.d, "virtio_net"), 3, "on before its time");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for m in &ms {
        assert!(wait_until(deadline - Instant::now(), || p_on(
            &m.d,
            "virtio_net"
        ) == 0));
        assert!(SystemTime::now() >= at, "reverted no earlier than its time");
    }
}

/// Two live processes with one id: both report it, and so does status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_live_instances_with_one_id_are_reported() {
    let nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, HB);
    let one = member(&url, "twin", "");
    let two = member(&url, "twin", "");
    for m in [&one, &two] {
        assert!(wait_until(Duration::from_secs(20), || {
            m.d.get("/fleet")["errors"].as_array().is_some_and(|e| {
                e.iter()
                    .any(|e| e.as_str().unwrap().contains("duplicate instance id"))
            })
        }));
    }
    let r = status(&url, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        instance(&r.out, "twin")["errors"]
            .to_string()
            .contains("duplicate instance id")
    );
}

/// An instance that starts while NATS is down comes back with its cached
/// fleet layers, and says so; it converges once NATS is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_started_while_nats_is_down_runs_on_its_cache() {
    let mut nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, HB);
    let dir = TempDir::new("cache");
    let mut d = Dynkeyd::start(&url, "c", "", HB, dir.path(), &[]);
    let rev = apply(&url, &["--scope", "all", "--query", "module virtio_net +p"]);
    converged(&url, &[], &["c"]);
    d.kill9();
    nats.kill9();
    let d = Dynkeyd::start(&url, "c", "", HB, dir.path(), &[]);
    let view = d.get("/fleet");
    assert_eq!(view["connected"], false);
    assert_eq!(view["source"], "cache");
    assert_eq!(view["scopes"][0]["revision"], rev);
    assert_eq!(p_on(&d, "virtio_net"), 3, "the cached layers are in force");
    nats.restart();
    // (The status the first process left may still be in the bucket: judge
    // by the instance's own view.)
    assert!(wait_until(Duration::from_secs(30), || {
        let v = d.get("/fleet");
        v["source"] == "nats" && v["connected"] == true
    }));
    let next = apply(&url, &["--scope", "all", "--query", "module e1000e +p"]);
    let report = converged(
        &url,
        &["--revision", &next.to_string(), "--scope", "all"],
        &["c"],
    );
    assert_eq!(instance(&report, "c")["applied"]["all"], next);
    assert_eq!(p_on(&d, "e1000e"), 3);
}

/// Debian's 2.9.10: one apply reaches an instance and status converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_converge_on_debian_2_9_10() {
    let nats = Nats::start(Server::Debian);
    let url = nats.url();
    init(&url, HB);
    let m = member(&url, "old", "svc=x");
    let rev = apply(
        &url,
        &["--scope", "svc=x", "--query", "module virtio_net +p"],
    );
    let report = converged(&url, &["--scope", "svc=x"], &["old"]);
    assert_eq!(instance(&report, "old")["applied"]["svc=x"], rev);
    assert_eq!(p_on(&m.d, "virtio_net"), 3);
}
