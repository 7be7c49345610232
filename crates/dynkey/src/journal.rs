//! The journal: local operations and the fleet cache, durable across
//! restarts and crashes.
//!
//! A state directory holds:
//!
//! - `lock`: held with `flock(LOCK_EX)` for the life of the process (it
//!   names the holder's pid), so two processes never share a directory;
//! - `journal`: an append-only log of records, one per line:
//!   `CRC32 JSON\n` where CRC32 is 8 hex digits of the IEEE CRC-32 of the
//!   JSON bytes. The first record is the header `{"dynkey_journal": 1}`
//!   (the format version); then `{"add": {...}}` (a local operation),
//!   `{"revoke": [ids]}`, `{"abort": [ids]}` (accepted but not applied: a
//!   commit that wrote nothing), `{"fold": [ids]}` (folded away: see
//!   `layers.rs`; written with the next append, since replay folds the same
//!   way until something revokes the operation that overwrote them) and
//!   `{"fleet": [layers]}` (the latest fleet layers, so an instance that
//!   starts while NATS is down has them).
//! - `audit`: the audit log (see `audit.rs`).
//!
//! Every append is one `write` and one `fdatasync`: concurrent requests
//! share it (group commit, `group_commit.rs`). A crash in the middle of an append
//! leaves a *torn tail*: an incomplete or unreadable last record, which
//! [`Journal::open`] truncates with a log line. A bad record followed by
//! good ones is corruption, not a crash: opening refuses, naming the file
//! and byte offset, unless asked to recover (then the records before it are
//! kept and the rest dropped, with a log line).
//!
//! Compaction rewrites the journal as the header, the fleet cache and the
//! operations still in force (`journal.tmp`, fsync, rename, fsync of the
//! directory), whenever the file is past 1 MiB and four times what that
//! would take. Since
//! expiry times are absolute, an operation that expired while the process
//! was down is simply dropped on replay.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::StateError;
use crate::layers::{LocalOp, Source};
use crate::op::{FleetLayer, Op};
use crate::time::{format_time, parse_time};

/// The format version this build writes and reads.
pub const JOURNAL_VERSION: u32 = 1;

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> StateError + 'p {
    move |e| StateError::Io {
        what,
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A local operation as the journal and `GET /state` write it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddRecord {
    pub id: u64,
    pub op: Op,
    pub who: String,
    pub from: Option<String>,
    pub at: String,
}

impl AddRecord {
    pub fn of(l: &LocalOp) -> AddRecord {
        AddRecord {
            id: l.id,
            op: l.op.clone(),
            who: l.who.clone(),
            from: l.from.clone(),
            at: format_time(l.at),
        }
    }

    fn local(self) -> LocalOp {
        LocalOp {
            id: self.id,
            op: self.op,
            who: self.who,
            from: self.from,
            at: parse_time(&self.at).unwrap_or(SystemTime::UNIX_EPOCH),
            source: Source::Operator,
        }
    }
}

/// One journal record.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Record {
    Add(AddRecord),
    Revoke(Vec<u64>),
    Abort(Vec<u64>),
    /// Operations folded away (overwritten by later ones): gone for good,
    /// even if what overwrote them is revoked later.
    Fold(Vec<u64>),
    Fleet(Vec<FleetLayer>),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    dynkey_journal: u32,
}

/// What replaying a journal gave.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    /// Local operations in force (expired ones included; the engine drops them).
    pub local: Vec<LocalOp>,
    /// The fleet cache.
    pub fleet: Vec<FleetLayer>,
    /// One more than the highest id ever written.
    pub next_id: u64,
    /// Log lines for the operator (torn tail, recovery).
    pub notes: Vec<String>,
}

/// An open journal.
#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// Held for the life of the journal: dropping it releases the flock.
    _lock: File,
    /// Bytes in the file.
    pub bytes: u64,
    /// Bytes of the last compaction's output (what the state takes).
    live_bytes: u64,
}

/// The line for one record.
fn encode(json: &str) -> String {
    format!("{:08x} {json}\n", crc32fast::hash(json.as_bytes()))
}

/// Parses one line (without its newline) into its JSON text.
fn decode(line: &str) -> Result<&str, String> {
    let (crc, json) = line
        .split_once(' ')
        .ok_or_else(|| "no checksum".to_string())?;
    let want = u32::from_str_radix(crc, 16).map_err(|_| format!("bad checksum field {crc:?}"))?;
    let got = crc32fast::hash(json.as_bytes());
    if crc.len() != 8 || want != got {
        return Err(format!("checksum {crc} does not match ({got:08x})"));
    }
    Ok(json)
}

impl Journal {
    /// Opens (creating if needed) the state directory `dir`, locks it and
    /// replays its journal.
    pub fn open(dir: &Path, recover: bool) -> Result<(Journal, Replayed), StateError> {
        std::fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        let lock = lock_dir(dir)?;
        let path = dir.join("journal");
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_err("cannot open", &path))?;
        let (replayed, good_len) = read(&path, &mut file, recover)?;
        let len = file.metadata().map_err(io_err("cannot stat", &path))?.len();
        if good_len < len {
            file.set_len(good_len)
                .map_err(io_err("cannot truncate", &path))?;
        }
        let mut j = Journal {
            dir: dir.to_path_buf(),
            path,
            file,
            _lock: lock,
            bytes: good_len,
            live_bytes: good_len,
        };
        if good_len == 0 {
            let header = serde_json::to_string(&Header {
                dynkey_journal: JOURNAL_VERSION,
            })
            .expect("a header serializes");
            j.write_lines(&encode(&header))
                .map_err(io_err("cannot write", &j.path))?;
        }
        Ok((j, replayed))
    }

    /// Appends records durably (one write, one fdatasync); returns the
    /// time the fsync took.
    pub fn append(&mut self, records: &[Record]) -> io::Result<std::time::Duration> {
        let mut text = String::new();
        for r in records {
            text.push_str(&encode(
                &serde_json::to_string(r).map_err(io::Error::other)?,
            ));
        }
        let t = Instant::now();
        self.write_lines(&text)?;
        Ok(t.elapsed())
    }

    fn write_lines(&mut self, text: &str) -> io::Result<()> {
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()?;
        self.bytes += text.len() as u64;
        Ok(())
    }

    /// Whether the file is big enough, next to what the state takes, to be
    /// worth compacting.
    pub fn wants_compaction(&self) -> bool {
        // At least 1 MiB between compactions: a rewrite costs two fsyncs
        // under the engine lock, so under load it must stay rare (about
        // once per 7,000 small operations).
        self.bytes > 1024 * 1024 && self.bytes > 4 * self.live_bytes.max(1)
    }

    /// Rewrites the journal as the state now is: header, fleet cache,
    /// the operator operations in force.
    pub fn compact(&mut self, fleet: &[FleetLayer], local: &[LocalOp]) -> io::Result<()> {
        let mut text = encode(&serde_json::to_string(&Header {
            dynkey_journal: JOURNAL_VERSION,
        })?);
        let mut records = vec![Record::Fleet(fleet.to_vec())];
        records.extend(
            local
                .iter()
                .filter(|l| l.source == Source::Operator)
                .map(|l| Record::Add(AddRecord::of(l))),
        );
        for r in &records {
            text.push_str(&encode(&serde_json::to_string(r)?));
        }
        let tmp = self.dir.join("journal.tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.bytes = text.len() as u64;
        self.live_bytes = self.bytes;
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Takes the directory's lock file, or says who holds it.
fn lock_dir(dir: &Path) -> Result<File, StateError> {
    let path = dir.join("lock");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err("cannot open", &path))?;
    if let Err(e) = f.try_lock() {
        return match e {
            std::fs::TryLockError::WouldBlock => Err(StateError::Locked {
                dir: dir.to_path_buf(),
                holder: std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok()),
            }),
            std::fs::TryLockError::Error(e) => Err(io_err("cannot lock", &path)(e)),
        };
    }
    let _ = f.set_len(0);
    let _ = f.seek(SeekFrom::Start(0));
    let _ = writeln!(f, "{}", std::process::id());
    let _ = f.sync_data();
    Ok(f)
}

/// Reads every record; returns what they hold and the length of the good
/// prefix of the file.
fn read(path: &Path, file: &mut File, recover: bool) -> Result<(Replayed, u64), StateError> {
    file.seek(SeekFrom::Start(0))
        .map_err(io_err("cannot read", path))?;
    let mut reader = BufReader::new(&*file);
    let mut out = Replayed::default();
    let mut offset = 0u64;
    let mut good = 0u64;
    let mut first = true;
    let mut bad: Option<(u64, String)> = None;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(io_err("cannot read", path))?;
        if n == 0 {
            break;
        }
        let complete = buf.last() == Some(&b'\n');
        let parsed = if !complete {
            Err("incomplete record".to_string())
        } else {
            std::str::from_utf8(&buf[..n - 1])
                .map_err(|_| "not UTF-8".to_string())
                .and_then(decode)
                .and_then(|json| {
                    if first {
                        let h: Header =
                            serde_json::from_str(json).map_err(|e| format!("bad header: {e}"))?;
                        if h.dynkey_journal != JOURNAL_VERSION {
                            return Err(format!("version:{}", h.dynkey_journal));
                        }
                        Ok(None)
                    } else {
                        serde_json::from_str::<Record>(json)
                            .map(Some)
                            .map_err(|e| e.to_string())
                    }
                })
        };
        match parsed {
            Ok(rec) => {
                if let Some((at, reason)) = bad.take() {
                    // A good record after a bad one: not a torn tail.
                    if !recover {
                        return Err(StateError::Corrupt {
                            file: path.to_path_buf(),
                            offset: at,
                            reason,
                        });
                    }
                    out.notes.push(format!(
                        "{}: recovered: dropped everything from the corrupt record at byte {at} ({reason})",
                        path.display()
                    ));
                    return Ok((finish(out), at));
                }
                first = false;
                if let Some(rec) = rec {
                    apply(&mut out, rec);
                }
                offset += n as u64;
                good = offset;
            }
            Err(reason) => {
                if let Some(v) = reason.strip_prefix("version:") {
                    return Err(StateError::Version {
                        file: path.to_path_buf(),
                        found: v.parse().unwrap_or(0),
                        expected: JOURNAL_VERSION,
                    });
                }
                if bad.is_none() {
                    bad = Some((offset, reason));
                }
                offset += n as u64;
            }
        }
    }
    if let Some((at, reason)) = bad {
        out.notes.push(format!(
            "{}: torn tail at byte {at} ({reason}): truncated; the last write was interrupted",
            path.display()
        ));
    }
    Ok((finish(out), good))
}

fn apply(out: &mut Replayed, rec: Record) {
    match rec {
        Record::Add(a) => {
            out.next_id = out.next_id.max(a.id + 1);
            out.local.push(a.local());
        }
        Record::Revoke(ids) | Record::Abort(ids) | Record::Fold(ids) => {
            out.local.retain(|l| !ids.contains(&l.id))
        }
        Record::Fleet(layers) => out.fleet = layers,
    }
}

fn finish(mut out: Replayed) -> Replayed {
    if let Some(max) = out.local.iter().map(|l| l.id + 1).max() {
        out.next_id = out.next_id.max(max);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dynkey-journal-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn add(id: u64, q: &str) -> Record {
        Record::Add(AddRecord {
            id,
            op: Op::query(q),
            who: "t".into(),
            from: None,
            at: "2026-01-01T00:00:00Z".into(),
        })
    }

    #[test]
    fn records_survive_a_reopen_and_revokes_apply() {
        let d = tmp("reopen");
        {
            let (mut j, r) = Journal::open(&d, false).unwrap();
            assert!(r.local.is_empty());
            j.append(&[add(1, "+p"), add(2, "-p")]).unwrap();
            j.append(&[Record::Revoke(vec![1])]).unwrap();
        }
        let (_, r) = Journal::open(&d, false).unwrap();
        assert_eq!(r.local.len(), 1);
        assert_eq!(r.local[0].id, 2);
        assert_eq!(r.next_id, 3, "ids are never reused, revoked ones included");
    }

    #[test]
    fn a_second_opener_is_refused() {
        let d = tmp("lock");
        let (_j, _) = Journal::open(&d, false).unwrap();
        let e = Journal::open(&d, false).unwrap_err();
        assert!(
            matches!(e, StateError::Locked { holder: Some(p), .. } if p == std::process::id()),
            "{e}"
        );
    }

    #[test]
    fn a_torn_tail_is_truncated_and_corruption_before_it_refused() {
        let d = tmp("torn");
        {
            let (mut j, _) = Journal::open(&d, false).unwrap();
            j.append(&[add(1, "+p"), add(2, "-p")]).unwrap();
        }
        let path = d.join("journal");
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 5]).unwrap();
        let (_, r) = Journal::open(&d, false).unwrap();
        assert_eq!(r.local.len(), 1, "the torn record is dropped");
        assert!(r.notes[0].contains("torn tail"), "{:?}", r.notes);

        // Flip a byte inside the first add record: a good record follows.
        let mut bytes = full.clone();
        let second_line = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        bytes[second_line + 12] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        match Journal::open(&d, false).unwrap_err() {
            StateError::Corrupt { offset, file, .. } => {
                assert_eq!(offset, second_line as u64);
                assert_eq!(file, path);
            }
            e => panic!("{e}"),
        }
        let (_, r) = Journal::open(&d, true).unwrap();
        assert!(r.local.is_empty(), "recovery keeps what came before");
        assert!(r.notes[0].contains("recovered"));
    }

    #[test]
    fn a_newer_format_is_refused_by_version() {
        let d = tmp("version");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("journal"), encode(r#"{"dynkey_journal":7}"#)).unwrap();
        assert_eq!(
            Journal::open(&d, false).unwrap_err(),
            StateError::Version {
                file: d.join("journal"),
                found: 7,
                expected: JOURNAL_VERSION,
            }
        );
    }

    #[test]
    fn compaction_keeps_the_meaning() {
        let d = tmp("compact");
        let (mut j, _) = Journal::open(&d, false).unwrap();
        for i in 0..10 {
            j.append(&[add(i, "+p")]).unwrap();
        }
        let keep = AddRecord {
            id: 9,
            op: Op::query("+p"),
            who: "t".into(),
            from: None,
            at: "2026-01-01T00:00:00Z".into(),
        }
        .local();
        j.compact(&[], &[keep]).unwrap();
        j.append(&[add(10, "-p")]).unwrap();
        drop(j);
        let (_, r) = Journal::open(&d, false).unwrap();
        assert_eq!(
            r.local.iter().map(|l| l.id).collect::<Vec<_>>(),
            vec![9, 10]
        );
    }
}
