//! `dynkeyd --state-dir`: every acknowledged change survives `kill -9`,
//! nothing is ever half applied, and the journal's failure modes are loud.
//!
//! The crash test drives a real dynkeyd (the fixture's site table) with a
//! random sequence of changes (queries, params, keys, calls, with and
//! without ttl, and revokes), kills it with SIGKILL at a random point (some
//! rounds while a request is in flight), restarts it on the same directory
//! and compares everything it serves with a model: the replay of the
//! acknowledged operations, plus possibly the one in flight, never part of
//! it. The seed is printed; `DYNKEY_CRASH_SEED` replays a run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{Daemon, fixtures};

fn fixture_path(name: &str) -> PathBuf {
    let p = fixtures().join(name);
    assert!(p.exists(), "fixture {} is missing", p.display());
    p
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// One change, as the test sends it and as the model replays it.
#[derive(Debug, Clone)]
enum Change {
    /// `module M OP`, or `module M class C OP` when a class is given.
    Query {
        module: &'static str,
        class: Option<&'static str>,
        op: &'static str,
    },
    Param(&'static str, u64),
    Key(bool),
    Call(&'static str),
}

impl Change {
    fn request(&self) -> (&'static str, String, Vec<u8>) {
        match self {
            Change::Query { module, class, op } => {
                let q = match class {
                    Some(c) => format!("module {module} class {c} {op}"),
                    None => format!("module {module} {op}"),
                };
                ("POST", "/control".into(), q.into_bytes())
            }
            Change::Param(p, v) => (
                "PUT",
                format!("/params/{p}"),
                format!("{v:#x}").into_bytes(),
            ),
            Change::Key(on) => (
                "POST",
                "/keys".into(),
                format!("{{\"DEMO_VERIFY\": {on}}}").into_bytes(),
            ),
            Change::Call(t) => ("PUT", "/calls/DEMO_CHECKSUM".into(), t.as_bytes().to_vec()),
        }
    }
}

/// What the fixture declares, and the state a list of changes gives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    /// Per site: (module, class), in listing order.
    sites: Vec<(String, Option<String>)>,
    flags: Vec<u8>,
    drm: u64,
    lvl: u64,
    key: bool,
    call: &'static str,
}

const DRM_CLASSES: [&str; 10] = [
    "DRM_UT_CORE",
    "DRM_UT_DRIVER",
    "DRM_UT_KMS",
    "DRM_UT_PRIME",
    "DRM_UT_ATOMIC",
    "DRM_UT_VBL",
    "DRM_UT_STATE",
    "DRM_UT_LEASE",
    "DRM_UT_DP",
    "DRM_UT_DRMRES",
];
const LVL_CLASSES: [&str; 4] = ["V0", "V1", "V2", "V3"];

impl Model {
    fn new() -> Model {
        let table: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture_path("kernel-like.json")).unwrap(),
        )
        .unwrap();
        let sites: Vec<(String, Option<String>)> = table["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["module"].as_str().unwrap().to_string(),
                    s["class"].as_str().map(str::to_string),
                )
            })
            .collect();
        Model {
            flags: vec![0; sites.len()],
            sites,
            drm: 0,
            lvl: 0,
            key: false,
            call: "fnv32",
        }
    }

    fn flag_op(flags: u8, op: &str) -> u8 {
        let bits = op[1..].chars().fold(0u8, |b, c| {
            b | match c {
                'p' => 1,
                'm' => 2,
                'f' => 4,
                _ => 0,
            }
        });
        match &op[..1] {
            "+" => flags | bits,
            "-" => flags & !bits,
            _ => bits,
        }
    }

    /// Sets the `p` bit of `class`'s sites in `modules`.
    fn set_class(&mut self, modules: &[&str], class: &str, on: bool) {
        for (i, (m, c)) in self.sites.iter().enumerate() {
            if modules.contains(&m.as_str()) && c.as_deref() == Some(class) {
                self.flags[i] = if on {
                    self.flags[i] | 1
                } else {
                    self.flags[i] & !1
                };
            }
        }
    }

    fn apply(&mut self, c: &Change) {
        match c {
            Change::Query { module, class, op } => {
                for (i, (m, cl)) in self.sites.iter().enumerate() {
                    if m == module && cl.as_deref() == *class {
                        self.flags[i] = Model::flag_op(self.flags[i], op);
                    }
                }
            }
            Change::Param("drm.debug", v) => {
                let new = v & 0x3ff;
                for (bit, class) in DRM_CLASSES.iter().enumerate() {
                    let (was, is) = ((self.drm >> bit) & 1, (new >> bit) & 1);
                    if was != is {
                        self.set_class(&["drm", "i915"], class, is == 1);
                    }
                }
                self.drm = new;
            }
            Change::Param(_, v) => {
                let new = (*v).min(4);
                for (level, class) in LVL_CLASSES.iter().enumerate() {
                    let (was, is) = ((level as u64) < self.lvl, (level as u64) < new);
                    if was != is {
                        self.set_class(&["lvlmod"], class, is);
                    }
                }
                self.lvl = new;
            }
            Change::Key(on) => self.key = *on,
            Change::Call(t) => self.call = t,
        }
    }

    /// The state `changes` give, replayed from the defaults.
    fn replay<'a>(&self, changes: impl IntoIterator<Item = &'a Change>) -> Model {
        let mut m = Model::new_like(self);
        for c in changes {
            m.apply(c);
        }
        m
    }

    fn new_like(other: &Model) -> Model {
        Model {
            sites: other.sites.clone(),
            flags: vec![0; other.sites.len()],
            drm: 0,
            lvl: 0,
            key: false,
            call: "fnv32",
        }
    }

    /// What a running dynkeyd serves, in the model's terms.
    fn observe(d: &Daemon, like: &Model) -> Model {
        let listing = d.request("GET", "/control?format=json", b"").json();
        let flags = listing["sites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s["flags"].as_str().unwrap().chars().fold(0u8, |b, c| {
                    b | match c {
                        'p' => 1,
                        'm' => 2,
                        'f' => 4,
                        _ => 0,
                    }
                })
            })
            .collect();
        let param = |p: &str| d.request("GET", &format!("/params/{p}"), b"").text();
        let drm = u64::from_str_radix(param("drm.debug").trim_start_matches("0x"), 16).unwrap();
        let lvl = param("lvlmod.verbose").parse().unwrap();
        let keys = d.request("GET", "/keys", b"").json();
        let key = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["name"] == "DEMO_VERIFY")
            .unwrap()["enabled"]
            .as_bool()
            .unwrap();
        let call = keys["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "DEMO_CHECKSUM")
            .unwrap()["target"]
            .as_str()
            .unwrap();
        Model {
            sites: like.sites.clone(),
            flags,
            drm,
            lvl,
            key,
            call: if call == "adler32" {
                "adler32"
            } else {
                "fnv32"
            },
        }
    }
}

/// Drops from `acked` the operations the server folded away.
fn sync_folds(d: &Daemon, acked: &mut Vec<(String, Change)>) {
    let listed: Vec<String> = d.request("GET", "/state", b"").json()["local"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    let model = |a: &[(String, Change)]| Model::new().replay(a.iter().map(|(_, c)| c));
    let before = model(acked);
    acked.retain(|(id, _)| listed.contains(id));
    assert_eq!(model(acked), before, "folding keeps the meaning");
}

fn random_change(rng: &mut Rng) -> Change {
    match rng.below(10) {
        0..=4 => Change::Query {
            module: rng.pick(&[
                "virtio_net",
                "virtio_blk",
                "e1000e",
                "params",
                "drm",
                "i915",
            ]),
            class: None,
            op: rng.pick(&["+p", "-p", "+mf", "-mf", "=p", "=_"]),
        },
        5 => Change::Query {
            module: rng.pick(&["drm", "i915"]),
            class: Some(rng.pick(&["DRM_UT_KMS", "DRM_UT_CORE", "DRM_UT_DRIVER"])),
            op: rng.pick(&["+p", "-p"]),
        },
        6 => Change::Param("drm.debug", rng.below(0x400)),
        7 => Change::Param("lvlmod.verbose", rng.below(7)),
        8 => Change::Key(rng.below(2) == 1),
        _ => Change::Call(rng.pick(&["fnv32", "adler32"])),
    }
}

fn start(dir: &Path, extra: &[&str]) -> Daemon {
    let sites = fixture_path("kernel-like.json");
    let mut args = vec![
        "--sites",
        sites.to_str().unwrap(),
        "--state-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Daemon::start(&args, &[])
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dynkeyd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn kill9(d: &mut Daemon) {
    let _ = d.child.kill(); // SIGKILL
    let _ = d.child.wait();
}

#[test]
fn every_acknowledged_change_survives_kill_9() {
    let seed = std::env::var("DYNKEY_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("crash test seed: {seed} (DYNKEY_CRASH_SEED replays it)");
    let mut rng = Rng(seed);
    let dir = temp_dir("crash");
    let base = Model::new();
    // Acknowledged operations in force: (id, change).
    let mut acked: Vec<(String, Change)> = Vec::new();
    let mut in_flight_rounds = 0;
    let rounds = 50;
    for round in 0..rounds {
        let mut d = start(&dir, &[]);
        let seen = Model::observe(&d, &base);
        let model = base.replay(acked.iter().map(|(_, c)| c));
        assert_eq!(
            seen,
            model,
            "round {round}: the state after restart is the acknowledged one\nstate {}\nacked {acked:?}",
            d.request("GET", "/state", b"").json()["local"]
        );
        for _ in 0..rng.below(8) {
            if !acked.is_empty() && rng.below(8) == 0 {
                // Folded operations are gone for good: revoking what
                // overwrote them does not bring them back.
                sync_folds(&d, &mut acked);
                if acked.is_empty() {
                    continue;
                }
                let i = rng.below(acked.len() as u64) as usize;
                let (id, _) = acked.remove(i);
                let r = d.request("DELETE", &format!("/state/ops/{id}"), b"");
                assert_eq!(r.status, 200, "revoke {id}: {}", r.text());
                continue;
            }
            let c = random_change(&mut rng);
            let (method, mut path, body) = c.request();
            if rng.below(3) == 0 {
                path.push_str("?ttl=1h");
            }
            let r = d.request(method, &path, &body);
            assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
            acked.push((r.json()["id"].as_str().unwrap().to_string(), c));
        }
        // Folded operations answer 404 on revoke: keep only those still listed.
        let model = base.replay(acked.iter().map(|(_, c)| c));
        sync_folds(&d, &mut acked);
        assert_eq!(
            base.replay(acked.iter().map(|(_, c)| c)),
            model,
            "folding kept the meaning"
        );
        if rng.below(2) == 0 {
            // Kill with a change in flight: it may or may not be applied,
            // never half.
            in_flight_rounds += 1;
            let c = random_change(&mut rng);
            let (method, path, body) = c.request();
            let addr = d.addr;
            let sender = std::thread::spawn(move || {
                std::panic::catch_unwind(|| crate::client::send(addr, method, &path, &[], &body))
                    .ok()
            });
            // A random point in the request's life: before, during, after.
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
            kill9(&mut d);
            let reply = sender.join().unwrap();
            let d2 = start(&dir, &[]);
            let seen = Model::observe(&d2, &base);
            let without = base.replay(acked.iter().map(|(_, c)| c));
            let with = base.replay(acked.iter().map(|(_, c)| c).chain([&c]));
            match reply {
                Some(r) if r.status == 200 => {
                    assert_eq!(seen, with, "round {round}: acknowledged in flight: {c:?}");
                    acked.push((r.json()["id"].as_str().unwrap().to_string(), c));
                }
                _ => {
                    // Unacknowledged: it was journaled or not, whole. The
                    // journal says which: a local operation nobody was told of.
                    let state = d2.request("GET", "/state", b"").json();
                    let known: Vec<&str> = acked.iter().map(|(id, _)| id.as_str()).collect();
                    let new: Vec<String> = state["local"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|l| l["id"].as_str().unwrap().to_string())
                        .filter(|id| !known.contains(&id.as_str()))
                        .collect();
                    match new.as_slice() {
                        [] => assert_eq!(
                            seen, without,
                            "round {round}: {c:?} not applied, none of it"
                        ),
                        [id] => {
                            assert_eq!(seen, with, "round {round}: {c:?} applied, all of it");
                            acked.push((id.clone(), c));
                        }
                        more => panic!(
                            "round {round}: unknown operations {more:?}\nstate {}\nacked {acked:?}\nin flight {c:?}",
                            state["local"]
                        ),
                    }
                }
            }
        } else {
            kill9(&mut d);
        }
    }
    println!("{rounds} rounds, {in_flight_rounds} killed with a request in flight");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The journal file of a state directory.
fn journal(dir: &Path) -> PathBuf {
    dir.join("journal")
}

fn run_to_exit(dir: &Path, extra: &[&str]) -> std::process::Output {
    let sites = fixture_path("kernel-like.json");
    Command::new(env!("CARGO_BIN_EXE_dynkeyd"))
        .args([
            "--sites",
            sites.to_str().unwrap(),
            "--state-dir",
            dir.to_str().unwrap(),
        ])
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("DYNKEY_QUERY")
        .output()
        .unwrap()
}

#[test]
fn torn_tails_recover_corruption_refuses_and_a_directory_has_one_owner() {
    let dir = temp_dir("journal");
    let mut d = start(&dir, &[]);
    for q in [
        "module virtio_net +p",
        "module e1000e +p",
        "module params +mf",
    ] {
        assert_eq!(d.request("POST", "/control", q.as_bytes()).status, 200);
    }
    // A second dynkeyd on the same directory is refused, naming it.
    let second = run_to_exit(&dir, &[]);
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("is in use by another process") && err.contains(dir.to_str().unwrap()),
        "{err}"
    );
    kill9(&mut d);

    // A crash in the middle of the last record: recovered, with a log line.
    let full = std::fs::read(journal(&dir)).unwrap();
    std::fs::write(journal(&dir), &full[..full.len() - 7]).unwrap();
    let d = start(&dir, &[]);
    let listing = d.request("GET", "/control", b"").text();
    assert!(
        listing.contains("[virtio_net]virtnet_probe =p"),
        "{listing}"
    );
    assert!(listing.contains("[e1000e]e1000_open =p"), "{listing}");
    assert!(
        listing.contains("[params]parse_one =_"),
        "the torn one is gone: {listing}"
    );
    drop(d);

    // A flipped byte before the tail: exit 2 naming the file and offset.
    let bytes = std::fs::read(journal(&dir)).unwrap();
    let second_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut bad = bytes.clone();
    bad[second_line + 20] ^= 0x01;
    std::fs::write(journal(&dir), &bad).unwrap();
    let out = run_to_exit(&dir, &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(journal(&dir).to_str().unwrap())
            && err.contains(&format!("byte {second_line}")),
        "{err}"
    );
    // Asked to recover, it keeps what came before the corruption.
    let d = start(&dir, &["--state-recover"]);
    assert_eq!(d.request("GET", "/healthz", b"").status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn expiry_survives_a_restart_and_what_expired_while_down_is_gone() {
    let dir = temp_dir("expiry");
    let mut d = start(&dir, &[]);
    let r = d.request("POST", "/control?ttl=1h", b"module virtio_blk +p");
    assert_eq!(r.status, 200);
    let expires = d.request("GET", "/state", b"").json()["local"][0]["expires_at"].clone();
    kill9(&mut d);
    // An override that expired while the process was down: a journal record
    // (as dynkeyd writes them) whose expiry has passed.
    let json = r#"{"add":{"id":99,"op":{"query":"module e1000e +p","expires_at":"2001-01-01T00:00:00Z"},"who":"t","from":null,"at":"2001-01-01T00:00:00Z"}}"#;
    let line = format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()));
    let mut j = std::fs::OpenOptions::new()
        .append(true)
        .open(journal(&dir))
        .unwrap();
    std::io::Write::write_all(&mut j, line.as_bytes()).unwrap();
    drop(j);
    let d = start(&dir, &[]);
    let state = d.request("GET", "/state", b"").json();
    let local = state["local"].as_array().unwrap();
    assert_eq!(local.len(), 1, "the expired one is gone: {state}");
    assert_eq!(
        local[0]["expires_at"], expires,
        "the expiry time is absolute"
    );
    let listing = d.request("GET", "/control", b"").text();
    assert!(
        listing.contains("[virtio_blk]virtblk_probe =p"),
        "{listing}"
    );
    assert!(listing.contains("[e1000e]e1000_open =_"), "{listing}");
    // A new operation never reuses an id the journal has seen.
    let r = d.request("POST", "/control", b"module params +p");
    assert!(r.json()["id"].as_str().unwrap().parse::<u64>().unwrap() > 99);
    let _ = std::fs::remove_dir_all(&dir);
}
