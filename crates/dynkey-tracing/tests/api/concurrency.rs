//! Many threads emitting while queries run (in a child process, whose
//! counters nothing else moves): once a change returns, every event that
//! starts afterwards follows it (G2), for a macro site and for a row alike:
//! the subscriber receives each such event exactly once when on, never
//! when off. Each query costs one rendezvous when it switches a macro site,
//! none when it switches rows only.
//!
//! The handshake of dynkey's own stress test: the epoch is odd while a
//! change runs; an emission counts only if the epoch was the same even
//! value before and after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dynkey_tracing::dynkey::control;
use serde_json::json;

use crate::capture::{setup, take};
use crate::{child, last_json, role};

const WORKERS: usize = 4;
const CHANGES: u64 = 40;
/// Counted emissions per worker and epoch before it waits for the next.
const PASSES: u64 = 200;

const ON: &str = "module api::concurrency class DEBUG +p; module thirdparty::hot class DEBUG +p";
const OFF: &str = "module api::concurrency class DEBUG -p; module thirdparty::hot class DEBUG -p";

fn ours(w: usize, seq: u64) {
    dynkey_tracing::debug!(w, seq, "hot");
}

fn theirs(w: usize, seq: u64) {
    tracing::debug!(target: "thirdparty::hot", w, seq);
}

/// Sum of the rendezvous counters over methods.
fn rendezvous_total() -> u64 {
    control().counters().text.rendezvous.iter().sum()
}

#[test]
#[ignore]
fn child_stress() {
    if role().as_deref() != Some("stress") {
        return;
    }
    setup();
    let c = control();
    let epoch = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let seen: Vec<AtomicU64> = (0..WORKERS).map(|_| AtomicU64::new(0)).collect();
    let ran: Vec<AtomicBool> = (0..WORKERS).map(|_| AtomicBool::new(false)).collect();
    let mut replies = Vec::new();
    let before = rendezvous_total();
    // Per worker: (seq, counted, on) for each emission.
    let logs: Vec<Vec<(u64, bool, bool)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (epoch, stop, seen, ran) = (&epoch, &stop, &seen[w], &ran[w]);
                s.spawn(move || {
                    let mut log = Vec::new();
                    let mut seq = 0;
                    // Counted passes in the current epoch: past PASSES, a
                    // worker waits for the next change (keeping the log
                    // short and the committer scheduled on 2 cores), and
                    // runs freely again while it is in progress.
                    let (mut current, mut passes) = (u64::MAX, 0);
                    while !stop.load(Ordering::Relaxed) {
                        let e1 = epoch.load(Ordering::Acquire);
                        if e1 != current {
                            (current, passes) = (e1, 0);
                        } else if e1 % 2 == 0 && passes >= PASSES {
                            std::thread::yield_now();
                            continue;
                        }
                        ours(w, seq);
                        theirs(w, seq);
                        ran.store(true, Ordering::Release);
                        let counted = epoch.load(Ordering::Acquire) == e1 && e1 % 2 == 0;
                        // Changes alternate +p, -p: on after an odd count.
                        log.push((seq, counted, (e1 / 2) % 2 == 1));
                        seq += 1;
                        if counted {
                            passes += 1;
                            seen.store(e1, Ordering::Release);
                        }
                    }
                    log
                })
            })
            .collect();
        // Every worker has run both sites once (so tracing registered the
        // row) before the first change.
        while ran.iter().any(|r| !r.load(Ordering::Acquire)) {
            std::thread::yield_now();
        }
        for round in 0..CHANGES {
            epoch.store(2 * round + 1, Ordering::Release);
            let r = c.exec(if round % 2 == 0 { ON } else { OFF }).unwrap();
            replies.push((r.changed, r.rendezvous));
            epoch.store(2 * round + 2, Ordering::Release);
            while seen
                .iter()
                .any(|s| s.load(Ordering::Acquire) < 2 * round + 2)
            {
                std::thread::yield_now();
            }
        }
        stop.store(true, Ordering::Relaxed);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let per_query = rendezvous_total() - before;

    // A query switching rows only patches nothing.
    let before = rendezvous_total();
    let rows_only = c.exec("module thirdparty::hot class DEBUG +p").unwrap();
    let rows_only_counted = rendezvous_total() - before;
    c.exec("module thirdparty::hot class DEBUG -p").unwrap();

    // Events received, by (kind, worker, seq).
    let mut got: HashMap<(&str, usize, u64), u32> = HashMap::new();
    for (kind, prefix) in [("ours", "api::concurrency"), ("theirs", "thirdparty::hot")] {
        for s in take(prefix) {
            let w: usize = s.field("w").unwrap().parse().unwrap();
            let seq: u64 = s.field("seq").unwrap().parse().unwrap();
            *got.entry((kind, w, seq)).or_default() += 1;
        }
    }
    let (mut lost, mut extra, mut duplicated, mut on, mut off) = (0, 0, 0, 0, 0);
    let mut lost_by: HashMap<(&str, u64), u64> = HashMap::new();
    for (w, log) in logs.iter().enumerate() {
        for &(seq, counted, want) in log {
            for kind in ["ours", "theirs"] {
                let n = got.get(&(kind, w, seq)).copied().unwrap_or(0);
                duplicated += (n > 1) as u64;
                if counted {
                    if want && n == 0 {
                        *lost_by.entry((kind, seq / PASSES)).or_default() += 1;
                    }
                    lost += (want && n == 0) as u64;
                    extra += (!want && n > 0) as u64;
                }
            }
            if counted {
                on += want as u64;
                off += !want as u64;
            }
        }
    }
    println!(
        "{}",
        json!({
            "lost": lost, "extra": extra, "duplicated": duplicated,
            "lost_by": lost_by.iter().map(|((k, b), n)| format!("{k}@{b}:{n}")).collect::<Vec<_>>(),
            "counted_on": on, "counted_off": off,
            "replies": replies, "rendezvous_counted": per_query,
            "rows_only": [rows_only.changed, rows_only.rendezvous, rows_only_counted],
        })
    );
}

#[test]
fn events_follow_every_change_with_one_rendezvous_per_query() {
    let out = child("concurrency::child_stress", &[("DYNKEY_CHILD", "stress")]);
    assert!(out.status.success(), "{out:?}");
    let r = last_json(&out);
    assert_eq!(
        r["lost"], 0,
        "an event that started after +p returned was lost: {r}"
    );
    assert_eq!(
        r["extra"], 0,
        "an event that started after -p returned passed: {r}"
    );
    assert_eq!(r["duplicated"], 0, "{r}");
    assert!(
        r["counted_on"].as_u64().unwrap() >= WORKERS as u64 * CHANGES / 2,
        "every worker ran after every +p: {r}"
    );
    assert!(
        r["counted_off"].as_u64().unwrap() >= WORKERS as u64 * CHANGES / 2,
        "{r}"
    );
    for reply in r["replies"].as_array().unwrap() {
        assert_eq!(
            reply,
            &json!([2, 1]),
            "one site and one row, one rendezvous: {r}"
        );
    }
    assert_eq!(r["rendezvous_counted"], CHANGES, "the counters agree: {r}");
    assert_eq!(
        r["rows_only"],
        json!([1, 0, 0]),
        "rows only: no rendezvous: {r}"
    );
}
