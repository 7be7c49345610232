//! From the latest script of every matching scope to the layers handed to
//! dynkey: pure, so its rules are tested without a server.
//!
//! * layers go in effective order ([`Scope::effective_cmp`]);
//! * a scope whose script does not parse, holds a site toggle, or names
//!   something this build lacks keeps its last good version (the layer
//!   applied before), and the error is reported with the revision that
//!   failed; with no good version it has no layer;
//! * a cleared scope has no layer and counts as applied at the revision of
//!   its clearing, so `dynkeyctl status` sees that the clear arrived.

use std::collections::BTreeMap;

use crate::docs::{Script, StatusError};
use crate::ops::{FleetLayer, Op, is_site_op, site_refused};
use crate::scope::Scope;

/// The latest entry of one matching scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// The entry's revision.
    pub revision: u64,
    /// Its value: `None` for a clear (delete or purge marker).
    pub value: Option<bytes::Bytes>,
}

/// What to apply, and what to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The layers, in effective order.
    pub layers: Vec<FleetLayer>,
    /// Revision applied per scope (command-line spelling).
    pub applied: BTreeMap<String, u64>,
    /// Scopes that cannot be applied, with why.
    pub errors: Vec<StatusError>,
}

/// Plans the layers. `previous` are the layers in force; `check` is the
/// instance's own check of one operation (dynkey's `check_op`).
pub fn plan(
    latest: &BTreeMap<String, (Scope, Latest)>,
    previous: &[FleetLayer],
    check: impl Fn(&Op) -> Result<(), String>,
) -> Plan {
    let mut scoped: Vec<(Scope, FleetLayer)> = Vec::new();
    let mut applied = BTreeMap::new();
    let mut errors = Vec::new();
    for (scope, entry) in latest.values() {
        let name = scope.to_string();
        let Some(value) = &entry.value else {
            applied.insert(name, entry.revision);
            continue;
        };
        let checked = serde_json::from_slice::<Script>(value)
            .map_err(|e| format!("revision {} is not a script: {e}", entry.revision))
            .and_then(|script| {
                for (i, op) in script.ops.iter().enumerate() {
                    if let Some(site) = is_site_op(op) {
                        return Err(site_refused(i, site).to_string());
                    }
                    check(op).map_err(|e| format!("operation {i}: {e}"))?;
                }
                Ok(script.ops)
            });
        match checked {
            Ok(ops) => {
                applied.insert(name.clone(), entry.revision);
                scoped.push((
                    scope.clone(),
                    FleetLayer {
                        scope: name,
                        revision: entry.revision,
                        ops,
                    },
                ));
            }
            Err(message) => {
                errors.push(StatusError {
                    scope: Some(name.clone()),
                    revision: Some(entry.revision),
                    message,
                });
                if let Some(good) = previous.iter().find(|l| l.scope == name) {
                    applied.insert(name, good.revision);
                    scoped.push((scope.clone(), good.clone()));
                }
            }
        }
    }
    scoped.sort_by(|a, b| a.0.effective_cmp(&b.0));
    Plan {
        layers: scoped.into_iter().map(|(_, l)| l).collect(),
        applied,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(ops: &[Op]) -> Latest {
        script_at(1, ops)
    }

    fn script_at(revision: u64, ops: &[Op]) -> Latest {
        let s = Script {
            ops: ops.to_vec(),
            author: "a@b".into(),
            at: "2026-11-28T10:00:00Z".into(),
            comment: None,
        };
        Latest {
            revision,
            value: Some(serde_json::to_vec(&s).unwrap().into()),
        }
    }

    fn latest(entries: Vec<(&str, Latest)>) -> BTreeMap<String, (Scope, Latest)> {
        entries
            .into_iter()
            .map(|(s, l)| {
                let scope = Scope::parse(s).unwrap();
                (scope.key(), (scope, l))
            })
            .collect()
    }

    /// The build of this test has one key, `K`.
    fn check(op: &Op) -> Result<(), String> {
        match &op.kind {
            crate::ops::OpKind::Keys(keys) if keys.iter().any(|(k, _)| k != "K") => {
                Err("no static key named".into())
            }
            _ => Ok(()),
        }
    }

    #[test]
    fn effective_order_and_clears() {
        let l = latest(vec![
            ("instance=a", script_at(9, &[Op::query("module z +p")])),
            ("svc=x,tier=web", script_at(8, &[Op::query("module y +p")])),
            ("svc=x", script_at(7, &[Op::query("module x +p")])),
            ("all", script_at(3, &[Op::query("module w +p")])),
            (
                "region=eu",
                Latest {
                    revision: 12,
                    value: None,
                },
            ),
        ]);
        let p = plan(&l, &[], check);
        let order: Vec<&str> = p.layers.iter().map(|l| l.scope.as_str()).collect();
        assert_eq!(order, ["all", "svc=x", "svc=x,tier=web", "instance=a"]);
        assert_eq!(
            p.applied["region=eu"], 12,
            "a clear is applied at its revision"
        );
        assert_eq!(p.applied["instance=a"], 9);
        assert!(p.errors.is_empty());
    }

    #[test]
    fn a_bad_scope_keeps_its_last_good_version() {
        let good = plan(
            &latest(vec![("all", script_at(3, &[Op::keys([("K", true)])]))]),
            &[],
            check,
        );
        assert_eq!(good.layers.len(), 1);
        let bad = latest(vec![(
            "all",
            script_at(4, &[Op::keys([("K", true)]), Op::keys([("MISSING", true)])]),
        )]);
        let p = plan(&bad, &good.layers, check);
        assert_eq!(p.layers, good.layers, "the last good version stays");
        assert_eq!(p.applied["all"], 3);
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].revision, Some(4));
        assert!(
            p.errors[0].message.contains("operation 1"),
            "{:?}",
            p.errors
        );
        // No good version: no layer, not applied, reported.
        let p = plan(&bad, &[], check);
        assert!(p.layers.is_empty());
        assert!(!p.applied.contains_key("all"));
        assert_eq!(p.errors.len(), 1);
    }

    #[test]
    fn site_toggles_and_garbage_are_refused() {
        let site: Op = serde_json::from_str(r#"{"site":"3","flags":"+p"}"#).unwrap();
        let p = plan(&latest(vec![("all", script(&[site]))]), &[], check);
        assert!(p.errors[0].message.contains("local only"), "{:?}", p.errors);
        let garbage = Latest {
            revision: 5,
            value: Some(bytes::Bytes::from_static(b"{")),
        };
        let p = plan(&latest(vec![("all", garbage)]), &[], check);
        assert!(
            p.errors[0].message.contains("not a script"),
            "{:?}",
            p.errors
        );
    }
}
