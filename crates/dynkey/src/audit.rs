//! The audit log: who changed what, when, from where, with what result and
//! at what cost.
//!
//! Every operator request that reaches the engine gets one entry, refused
//! ones included (their `result` is the error category), as does every
//! revoke and every expiry (`who` is `expiry`). Changes made in code are
//! not audited: they are the program's own behaviour, not a person's.
//! Dry runs are not audited either: they change nothing.
//!
//! Entries are kept in memory, newest last, at most [`AUDIT_KEEP`]. With a
//! state directory they are also appended to its `audit` file, one JSON
//! object per line; when it holds [`AUDIT_KEEP`] entries it becomes
//! `audit.1` (replacing the previous one) and a new file starts, so the
//! two files are bounded and always hold the newest entries, which are
//! read back at start. A batch's entries are
//! written with one `write` before its replies leave (they survive a crash
//! of the process) but not fsynced: the journal, not the audit, is what
//! must survive the machine.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::op::Op;
use crate::time::{format_time, parse_time};

/// Entries kept in memory (and read back from the file).
pub const AUDIT_KEEP: usize = 10_000;

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Increasing, never reused.
    pub id: u64,
    /// When it happened.
    pub at: SystemTime,
    /// A token's name, `anonymous`, or `expiry`.
    pub who: String,
    /// The client's address, when known.
    pub from: Option<String>,
    /// `apply`, `revoke` or `expire`.
    pub action: &'static str,
    /// The operation applied, revoked or expired (None for "revoke all").
    pub op: Option<Op>,
    /// The local operation's id, when there is one.
    pub op_id: Option<u64>,
    /// `ok`, or the error's category (`E_UNKNOWN_KEY`...).
    pub result: String,
    /// Sites (or keys, calls) whose value changed.
    pub changed: usize,
    /// Rendezvous it cost (0 or 1).
    pub rendezvous: usize,
}

#[derive(Serialize, Deserialize)]
struct Line {
    id: u64,
    at: String,
    who: String,
    from: Option<String>,
    action: String,
    op: Option<Op>,
    op_id: Option<u64>,
    result: String,
    changed: usize,
    rendezvous: usize,
}

fn action(s: &str) -> &'static str {
    match s {
        "revoke" => "revoke",
        "expire" => "expire",
        _ => "apply",
    }
}

impl AuditEntry {
    fn line(&self) -> Line {
        Line {
            id: self.id,
            at: format_time(self.at),
            who: self.who.clone(),
            from: self.from.clone(),
            action: self.action.into(),
            op: self.op.clone(),
            op_id: self.op_id,
            result: self.result.clone(),
            changed: self.changed,
            rendezvous: self.rendezvous,
        }
    }

    fn from_line(l: Line) -> AuditEntry {
        AuditEntry {
            id: l.id,
            at: parse_time(&l.at).unwrap_or(SystemTime::UNIX_EPOCH),
            who: l.who,
            from: l.from,
            action: action(&l.action),
            op: l.op,
            op_id: l.op_id,
            result: l.result,
            changed: l.changed,
            rendezvous: l.rendezvous,
        }
    }

    /// The entry as `GET /audit` shows it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self.line()).expect("an entry serializes");
        v["id"] = self.id.to_string().into();
        v["op_id"] = self.op_id.map(|i| i.to_string()).into();
        v
    }
}

/// The log.
#[derive(Debug, Default)]
pub(crate) struct Audit {
    entries: VecDeque<AuditEntry>,
    next_id: u64,
    file: Option<(PathBuf, BufWriter<File>, usize)>,
}

impl Audit {
    /// Appends an entry (its id is assigned here).
    pub fn record(&mut self, mut e: AuditEntry) {
        e.id = self.next_id;
        self.next_id += 1;
        if let Some((path, file, lines)) = &mut self.file {
            let mut text = serde_json::to_string(&e.line()).expect("an entry serializes");
            text.push('\n');
            if let Err(err) = file.write_all(text.as_bytes()) {
                eprintln!("dynkey: cannot append to {}: {err}", path.display());
            }
            *lines += 1;
        }
        if self.entries.len() == AUDIT_KEEP {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
        if self.file.as_ref().is_some_and(|f| f.2 >= AUDIT_KEEP) {
            self.rotate();
        }
    }

    /// Writes what [`record`](Self::record) buffered (once per batch: one
    /// `write` however many entries; the file survives a crash of the
    /// process from then on).
    pub fn flush(&mut self) {
        if let Some((path, file, _)) = &mut self.file
            && let Err(e) = file.flush()
        {
            eprintln!("dynkey: cannot append to {}: {e}", path.display());
        }
    }

    /// Up to `limit` entries older than `before` (all when None), newest
    /// first, and the id to ask for next (None at the end).
    pub fn page(&self, limit: usize, before: Option<u64>) -> (Vec<AuditEntry>, Option<u64>) {
        let mut out: Vec<AuditEntry> = self
            .entries
            .iter()
            .rev()
            .filter(|e| before.is_none_or(|b| e.id < b))
            .take(limit + 1)
            .cloned()
            .collect();
        let next = (out.len() > limit).then(|| {
            out.pop();
            out.last().map(|e| e.id)
        });
        (out, next.flatten())
    }

    /// Keeps the log in `dir/audit` from now on, reading back what it has.
    pub fn open(&mut self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join("audit");
        let mut lines = 0;
        let mut old: VecDeque<AuditEntry> = VecDeque::new();
        let mut found = false;
        for (file, current) in [(path.with_extension("1"), false), (path.clone(), true)] {
            let Ok(f) = File::open(&file) else { continue };
            found = true;
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                // A torn last line (a crash mid-write) is skipped.
                if let Ok(l) = serde_json::from_str::<Line>(&line) {
                    if old.len() == AUDIT_KEEP {
                        old.pop_front();
                    }
                    old.push_back(AuditEntry::from_line(l));
                    lines += current as usize;
                }
            }
        }
        if found {
            // Entries recorded before the directory was opened follow.
            let next = old.back().map_or(0, |e| e.id + 1);
            for mut e in std::mem::take(&mut self.entries) {
                e.id += next;
                old.push_back(e);
            }
            while old.len() > AUDIT_KEEP {
                old.pop_front();
            }
            self.next_id = old.back().map_or(0, |e| e.id + 1);
            self.entries = old;
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.file = Some((path, BufWriter::new(file), lines));
        Ok(())
    }

    /// Starts a new file, keeping the full one as `audit.1` (replacing the
    /// one before): O(1) under the engine lock, and the two files hold at
    /// least the newest [`AUDIT_KEEP`] entries.
    fn rotate(&mut self) {
        self.flush();
        let Some((path, _, _)) = &self.file else {
            return;
        };
        let path = path.clone();
        let result = std::fs::rename(&path, path.with_extension("1"))
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path));
        match result {
            Ok(f) => self.file = Some((path, BufWriter::new(f), 0)),
            Err(e) => eprintln!("dynkey: cannot rotate {}: {e}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(who: &str) -> AuditEntry {
        AuditEntry {
            id: 0,
            at: SystemTime::UNIX_EPOCH,
            who: who.into(),
            from: None,
            action: "apply",
            op: Some(Op::query("+p")),
            op_id: Some(1),
            result: "ok".into(),
            changed: 1,
            rendezvous: 1,
        }
    }

    #[test]
    fn pages_go_newest_first() {
        let mut a = Audit::default();
        for i in 0..5 {
            a.record(entry(&format!("u{i}")));
        }
        let (page, next) = a.page(2, None);
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![4, 3]);
        assert_eq!(next, Some(3));
        let (page, next) = a.page(2, next);
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![2, 1]);
        let (page, next) = a.page(2, next);
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), vec![0]);
        assert_eq!(next, None, "the end");
    }

    #[test]
    fn the_file_is_read_back() {
        let d = std::env::temp_dir().join(format!("dynkey-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let mut a = Audit::default();
        a.open(&d).unwrap();
        a.record(entry("a"));
        a.record(entry("b"));
        a.flush();
        let mut b = Audit::default();
        b.record(entry("before-open"));
        b.open(&d).unwrap();
        let (page, _) = b.page(10, None);
        assert_eq!(
            page.iter()
                .map(|e| (e.id, e.who.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "before-open"), (1, "b"), (0, "a")]
        );
    }

    #[test]
    fn a_full_file_rotates_and_the_newest_entries_come_back() {
        let d = std::env::temp_dir().join(format!("dynkey-audit-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let mut a = Audit::default();
        a.open(&d).unwrap();
        for i in 0..AUDIT_KEEP + 5 {
            a.record(entry(&format!("u{i}")));
        }
        a.flush();
        assert!(d.join("audit.1").exists(), "the full file rotated");
        let mut b = Audit::default();
        b.open(&d).unwrap();
        let (page, _) = b.page(2, None);
        let newest = (AUDIT_KEEP + 4) as u64;
        assert_eq!(
            page.iter()
                .map(|e| (e.id, e.who.clone()))
                .collect::<Vec<_>>(),
            vec![
                (newest, format!("u{newest}")),
                (newest - 1, format!("u{}", newest - 1))
            ]
        );
        assert_eq!(b.page(usize::MAX - 1, None).0.len(), AUDIT_KEEP, "bounded");
        let _ = std::fs::remove_dir_all(&d);
    }
}
