//! The watch semantics the instance's apply rule rests on, checked against
//! the real servers: "latest value per key, then updates", a burst ending
//! at `delta == 0`, and a watch that was not polled across a `kill -9` and
//! restart of the server still delivering what was written after it
//! (errors from it being transient).

use std::time::Duration;

use async_nats::jetstream::kv::Store;
use futures_util::StreamExt;

use crate::support::{Nats, Server, init};

async fn desired(url: &str) -> Store {
    let client = async_nats::ConnectOptions::new()
        .ping_interval(Duration::from_secs(1))
        .connect(url)
        .await
        .unwrap();
    async_nats::jetstream::new(client)
        .get_key_value("dynkey_desired")
        .await
        .unwrap()
}

async fn latest_then_burst(kind: Server) {
    let nats = Nats::start(kind);
    let url = nats.url();
    init(&url, "5s");
    let kv = desired(&url).await;
    for (k, v) in [
        ("all", "1"),
        ("sel.a=b", "2"),
        ("all", "3"),
        ("inst.x", "4"),
    ] {
        kv.put(k, v.into()).await.unwrap();
    }
    let mut w = kv.watch_with_history(">").await.unwrap();
    let mut got = Vec::new();
    loop {
        let e = w.next().await.unwrap().unwrap();
        got.push((
            e.key.clone(),
            String::from_utf8_lossy(&e.value).to_string(),
            e.delta,
        ));
        if e.delta == 0 {
            break;
        }
    }
    // Only the latest value of `all`, then the rest; the last has delta 0.
    assert_eq!(
        got,
        [
            ("sel.a=b".into(), "2".into(), 2),
            ("all".into(), "3".into(), 1),
            ("inst.x".into(), "4".into(), 0)
        ]
    );
    for i in 0..10 {
        kv.put("all", i.to_string().into()).await.unwrap();
    }
    let mut last = None;
    for _ in 0..10 {
        let e = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        last = Some((String::from_utf8_lossy(&e.value).to_string(), e.delta));
    }
    assert_eq!(last, Some(("9".to_string(), 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_per_key_then_updates_on_2_15() {
    latest_then_burst(Server::Current).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_per_key_then_updates_on_2_9_10() {
    latest_then_burst(Server::Debian).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpolled_watch_survives_kill_9_of_the_server() {
    let mut nats = Nats::start(Server::Current);
    let url = nats.url();
    init(&url, "5s");
    let kv = desired(&url).await;
    kv.put("all", "before".into()).await.unwrap();
    let mut w = kv.watch_with_history(">").await.unwrap();
    let first = w.next().await.unwrap().unwrap();
    assert_eq!(&first.value[..], b"before");
    // Not polled from here on while the server dies and comes back.
    nats.kill9();
    nats.restart();
    let writer = desired(&url).await;
    let rev = writer.put("all", "after".into()).await.unwrap();
    let mut errors = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let item = tokio::time::timeout_at(deadline, w.next())
            .await
            .expect("the watch delivered the post-restart revision")
            .expect("the watch never ends");
        match item {
            Ok(e) if e.revision == rev => {
                assert_eq!(&e.value[..], b"after");
                break;
            }
            Ok(_) => {}
            Err(_) => errors += 1,
        }
    }
    assert!(errors < 10, "{errors} transient errors");
}
