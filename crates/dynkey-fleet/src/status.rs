//! Convergence: which live instances match a scope, and whether each has
//! applied what the operator asked for.
//!
//! Pure functions over what dynkeyctl read from the two buckets, so the
//! rules are tested without a server:
//!
//! * an instance is live while its status is younger than three of its
//!   heartbeats (the bucket's `max_age` removes older ones as well);
//! * with a scope, every live matching instance must have applied at least
//!   the revision asked for (default: the scope's latest) and report no
//!   error about that scope or about itself as a whole;
//! * without one, every scope that matches an instance must be at its
//!   latest revision there, and the instance must report no error;
//! * no live matching instance is not converged: nobody has applied it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::docs::{StatusDoc, StatusError};
use crate::scope::{InstanceId, Labels, Scope};

/// How many heartbeats a status stays live.
pub const LIVE_HEARTBEATS: u32 = 3;

/// One instance as `dynkeyctl status` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceReport {
    /// The id.
    pub id: String,
    /// Its labels.
    pub labels: Labels,
    /// Revision applied per scope.
    pub applied: BTreeMap<String, u64>,
    /// The errors it reports.
    pub errors: Vec<StatusError>,
    /// Local operations in force on it.
    pub drift: usize,
    /// Seconds since it wrote its status.
    pub age_s: f64,
    /// Hash of its effective table.
    pub table_hash: String,
    /// Its dynkey version.
    pub version: String,
}

/// What `dynkeyctl status` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Whether every live matching instance has converged.
    pub converged: bool,
    /// The live matching instances.
    pub instances: Vec<InstanceReport>,
}

/// One status document as read, with its age.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The document.
    pub doc: StatusDoc,
    /// Time since it was written (by the server's clock).
    pub age: Duration,
}

impl Seen {
    /// Whether the instance is live: its status is younger than three of
    /// its heartbeats.
    pub fn live(&self) -> bool {
        self.age <= Duration::from_millis(self.doc.heartbeat_ms) * LIVE_HEARTBEATS
    }
}

/// Evaluates convergence. `latest` holds the latest revision of every
/// scope in `dynkey_desired` (cleared ones included, at the revision of
/// their clearing); `live_scopes` the scopes whose script exists.
pub fn evaluate(
    seen: &[Seen],
    latest: &BTreeMap<String, (Scope, u64)>,
    live_scopes: &[Scope],
    scope: Option<&Scope>,
    revision: Option<u64>,
) -> Report {
    let mut instances = Vec::new();
    let mut converged = true;
    for s in seen.iter().filter(|s| s.live()) {
        let Ok(id) = InstanceId::new(&s.doc.id) else {
            continue;
        };
        let labels = &s.doc.labels;
        let ok = match scope {
            Some(scope) => {
                if !scope.matches(&id, labels) {
                    continue;
                }
                let name = scope.to_string();
                let want = revision
                    .or_else(|| latest.get(&scope.key()).map(|(_, r)| *r))
                    .unwrap_or(0);
                let applied = s.doc.applied.get(&name).copied();
                let has = applied.is_some_and(|r| r >= want) || (want == 0 && applied.is_none());
                let errors = s
                    .doc
                    .errors
                    .iter()
                    .any(|e| e.scope.is_none() || e.scope.as_deref() == Some(name.as_str()));
                has && !errors
            }
            None => {
                let all_latest =
                    live_scopes
                        .iter()
                        .filter(|sc| sc.matches(&id, labels))
                        .all(|sc| {
                            let want = latest.get(&sc.key()).map_or(0, |(_, r)| *r);
                            s.doc
                                .applied
                                .get(&sc.to_string())
                                .is_some_and(|r| *r >= want)
                        });
                all_latest && s.doc.errors.is_empty()
            }
        };
        converged &= ok;
        instances.push(InstanceReport {
            id: s.doc.id.clone(),
            labels: labels.clone(),
            applied: s.doc.applied.clone(),
            errors: s.doc.errors.clone(),
            drift: s.doc.drift,
            age_s: (s.age.as_secs_f64() * 1000.0).round() / 1000.0,
            table_hash: s.doc.table_hash.clone(),
            version: s.doc.version.clone(),
        });
    }
    instances.sort_by(|a, b| a.id.cmp(&b.id));
    Report {
        converged: converged && !instances.is_empty(),
        instances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, labels: &str, applied: &[(&str, u64)]) -> StatusDoc {
        StatusDoc {
            id: id.into(),
            labels: Labels::parse(labels).unwrap(),
            boot_id: "b".into(),
            version: "0.1.0".into(),
            applied: applied.iter().map(|(s, r)| (s.to_string(), *r)).collect(),
            errors: vec![],
            table_hash: "0".into(),
            drift: 0,
            commits: 0,
            rendezvous: 0,
            source: "nats".into(),
            heartbeat_ms: 1000,
            at: String::new(),
        }
    }

    fn seen(doc: StatusDoc, age_ms: u64) -> Seen {
        Seen {
            doc,
            age: Duration::from_millis(age_ms),
        }
    }

    fn latest(entries: &[(&str, u64)]) -> (BTreeMap<String, (Scope, u64)>, Vec<Scope>) {
        let map: BTreeMap<_, _> = entries
            .iter()
            .map(|(s, r)| {
                let sc = Scope::parse(s).unwrap();
                (sc.key(), (sc, *r))
            })
            .collect();
        let live = map.values().map(|(s, _)| s.clone()).collect();
        (map, live)
    }

    #[test]
    fn scope_revision_and_liveness() {
        let (lat, live) = latest(&[("all", 5), ("svc=a", 7)]);
        let svc = Scope::parse("svc=a").unwrap();
        let docs = vec![
            seen(doc("i1", "svc=a", &[("all", 5), ("svc=a", 7)]), 100),
            seen(doc("i2", "svc=b", &[("all", 5)]), 100),
            // Dead: older than three heartbeats; its lag does not count.
            seen(doc("i3", "svc=a", &[("all", 1)]), 3001),
        ];
        let r = evaluate(&docs, &lat, &live, Some(&svc), None);
        assert!(r.converged);
        assert_eq!(r.instances.len(), 1, "only live matching instances");
        assert_eq!(r.instances[0].id, "i1");
        // Asking for a later revision than applied.
        assert!(!evaluate(&docs, &lat, &live, Some(&svc), Some(8)).converged);
        // Without a scope: i2 has no svc=a to apply, and is at all=5.
        assert!(evaluate(&docs, &lat, &live, None, None).converged);
        let lagging = vec![seen(doc("i1", "svc=a", &[("all", 5), ("svc=a", 6)]), 10)];
        assert!(!evaluate(&lagging, &lat, &live, None, None).converged);
        assert!(!evaluate(&lagging, &lat, &live, Some(&svc), None).converged);
        assert!(evaluate(&lagging, &lat, &live, Some(&Scope::All), None).converged);
    }

    #[test]
    fn nobody_live_is_not_converged() {
        let (lat, live) = latest(&[("all", 5)]);
        assert!(!evaluate(&[], &lat, &live, Some(&Scope::All), None).converged);
        let dead = vec![seen(doc("i1", "", &[("all", 5)]), 5000)];
        let r = evaluate(&dead, &lat, &live, None, None);
        assert!(!r.converged);
        assert!(r.instances.is_empty());
        let other = Scope::parse("instance=i2").unwrap();
        let one = vec![seen(doc("i1", "", &[("all", 5)]), 1)];
        assert!(!evaluate(&one, &lat, &live, Some(&other), None).converged);
    }

    #[test]
    fn errors_block_convergence() {
        let (lat, live) = latest(&[("all", 5), ("svc=a", 7)]);
        let mut d = doc("i1", "svc=a", &[("all", 5), ("svc=a", 7)]);
        d.errors.push(StatusError {
            scope: Some("svc=a".into()),
            revision: Some(8),
            message: "no static key named \"X\"".into(),
        });
        let docs = vec![seen(d.clone(), 1)];
        assert!(
            !evaluate(
                &docs,
                &lat,
                &live,
                Some(&Scope::parse("svc=a").unwrap()),
                None
            )
            .converged
        );
        // An error about another scope does not block this one...
        assert!(evaluate(&docs, &lat, &live, Some(&Scope::All), None).converged);
        // ... but does block the whole fleet's convergence.
        assert!(!evaluate(&docs, &lat, &live, None, None).converged);
        // An instance-wide error (a duplicate id) blocks every scope.
        d.errors[0].scope = None;
        let docs = vec![seen(d, 1)];
        assert!(!evaluate(&docs, &lat, &live, Some(&Scope::All), None).converged);
    }
}
