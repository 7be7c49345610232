//! deploy/nats's server config and generated users, on both servers: an
//! instance reads desired state and writes only its own status key; an
//! operator writes desired state.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use async_nats::ConnectOptions;
use futures_util::StreamExt;
use serde_json::json;

use crate::support::{Nats, Server, TempDir, ctl};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/nats")
}

/// Generates users for `ids` with deploy/nats/gen-users.sh and returns the
/// account part of deploy/nats/nats-server.conf pointing at them.
fn accounts(dir: &Path, ids: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(deploy().join("gen-users.sh"))
        .arg(dir)
        .args(ids)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = std::fs::read_to_string(deploy().join("nats-server.conf")).unwrap();
    let start = conf
        .find("accounts {")
        .expect("the shipped config has accounts");
    conf[start..].replace(
        "include \"users.conf\"",
        // Includes are relative to the config file, which lives in a
        // sibling temporary directory.
        &format!(
            "include \"../{}/users.conf\"",
            dir.file_name().unwrap().to_str().unwrap()
        ),
    )
}

fn password(dir: &Path, user: &str) -> String {
    dir.join("secrets")
        .join(format!("{user}.password"))
        .display()
        .to_string()
}

async fn as_instance(url: &str, dir: &Path, id: &str) -> async_nats::Client {
    let pass = std::fs::read_to_string(password(dir, &format!("inst-{id}"))).unwrap();
    ConnectOptions::new()
        .user_and_password(format!("inst-{id}"), pass.trim().to_string())
        .custom_inbox_prefix(format!("_INBOX_{id}"))
        .connect(url)
        .await
        .unwrap()
}

async fn round(kind: Server) {
    let secrets = TempDir::new("users");
    let nats = Nats::start_with(kind, &accounts(secrets.path(), &["web-1", "web-2"]));
    let url = nats.url();
    let op = password(secrets.path(), "operator");
    let as_op = |args: &[&str]| {
        let mut all = vec![
            "--nats-user",
            "operator",
            "--nats-password-file",
            op.as_str(),
        ];
        all.extend_from_slice(args);
        ctl(&url, &all)
    };
    assert_eq!(as_op(&["init", "--heartbeat", "60s"]).code, 0);
    let applied = as_op(&["apply", "--scope", "all", "--query", "module a +p"]);
    assert_eq!(applied.code, 0, "{applied:?}");

    // Without credentials, or with a wrong password: refused, exit 4.
    let anon = ctl(&url, &["show"]);
    assert_eq!(anon.code, 4, "{anon:?}");
    let wrong = secrets.path().join("wrong.password");
    std::fs::write(&wrong, "nope\n").unwrap();
    let bad = ctl(
        &url,
        &[
            "--nats-user",
            "operator",
            "--nats-password-file",
            wrong.to_str().unwrap(),
            "show",
        ],
    );
    assert_eq!(bad.code, 4, "{bad:?}");
    assert!(bad.err.contains("E_PERMISSION"), "{bad:?}");

    // An instance's credential cannot write desired state.
    let inst = password(secrets.path(), "inst-web-1");
    let denied = ctl(
        &url,
        &[
            "--nats-user",
            "inst-web-1",
            "--nats-password-file",
            &inst,
            "apply",
            "--scope",
            "all",
            "--query",
            "module evil +p",
        ],
    );
    assert_eq!(denied.code, 4, "{denied:?}");
    assert!(denied.err.contains("E_PERMISSION"), "{denied:?}");
    let show = as_op(&["show", "--scope", "all"]);
    assert_eq!(
        show.out["scopes"][0]["ops"],
        json!([{"query": "module a +p"}]),
        "unchanged"
    );

    // What an instance does is allowed: watch desired state, write its own
    // status, watch its own status key.
    let client = as_instance(&url, secrets.path(), "web-1").await;
    let mut js = async_nats::jetstream::new(client.clone());
    // A refused publish is never acknowledged: do not wait long for it.
    js.set_timeout(Duration::from_secs(2));
    let desired = js.get_key_value("dynkey_desired").await.unwrap();
    let mut watch = desired.watch_with_history(">").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.key, "all");
    let status = js.get_key_value("dynkey_status").await.unwrap();
    let mut own = status.watch("inst.web-1").await.unwrap();
    status.put("inst.web-1", "{}".into()).await.unwrap();
    let echoed = tokio::time::timeout(Duration::from_secs(10), own.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.key, "inst.web-1");
    // ... and nothing else: another instance's status, desired state.
    for (bucket, key) in [(&status, "inst.web-2"), (&desired, "all")] {
        let r = tokio::time::timeout(Duration::from_secs(10), bucket.put(key, "{}".into())).await;
        assert!(!matches!(r, Ok(Ok(_))), "{key} was written");
    }
    let mut keys = status.keys().await.unwrap();
    let mut found = Vec::new();
    while let Some(k) = keys.next().await {
        found.push(k.unwrap());
    }
    assert_eq!(found, ["inst.web-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_read_desired_and_write_only_their_status_on_2_15() {
    round(Server::Current).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_read_desired_and_write_only_their_status_on_2_9_10() {
    round(Server::Debian).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_file_authenticates() {
    let nats = Nats::start_with(Server::Current, "authorization { token: \"s3cret-token\" }");
    let url = nats.url();
    let dir = TempDir::new("token");
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, "s3cret-token\n").unwrap();
    std::fs::write(&bad, "guess\n").unwrap();
    let r = ctl(&url, &["--nats-token-file", good.to_str().unwrap(), "init"]);
    assert_eq!(r.code, 0, "{r:?}");
    for args in [
        &["--nats-token-file", bad.to_str().unwrap(), "show"][..],
        &["show"],
    ] {
        let r = ctl(&url, args);
        assert_eq!(r.code, 4, "{args:?}: {r:?}");
        assert!(r.err.contains("E_PERMISSION"), "{r:?}");
    }
}
