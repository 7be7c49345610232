//! Operations: the unit of desired state.
//!
//! Every change a user can ask for is one [`Op`]: a body of dyndbg queries,
//! a set of named keys, a static call's target, a class param's value, or
//! one site's flags (a per-row toggle). The same JSON shape serves the
//! journal, `GET /state`, `GET /audit` and the fleet's scripts:
//!
//! ```text
//! {"query": "module virtio_net +p"}
//! {"keys": {"NAME": true, "OTHER": false}}
//! {"call": "NAME", "target": "TARGET"}
//! {"param": "NAME", "value": "0x1ff"}
//! {"site": "SITE_ID", "flags": "+p"}
//! ```
//!
//! plus `"expires_at"` (RFC 3339, UTC, whole seconds) when it expires.
//! Keys keep the order they were written in: a body that sets a key twice
//! means the last value, as a query body's later query wins.
//!
//! ```
//! use dynkey::{Op, OpKind};
//! let op: Op = serde_json::from_str(r#"{"keys": {"A": true, "B": false}}"#).unwrap();
//! assert_eq!(op.kind, OpKind::Keys(vec![("A".into(), true), ("B".into(), false)]));
//! assert_eq!(serde_json::to_string(&op).unwrap(), r#"{"keys":{"A":true,"B":false}}"#);
//! ```

use std::fmt;
use std::time::SystemTime;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::{format_time, parse_time, whole_seconds};

/// What an operation changes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpKind {
    /// A body of dyndbg queries, applied all or nothing.
    Query(String),
    /// Named static keys and their new states, in the order given.
    Keys(Vec<(String, bool)>),
    /// A static call switched to one of its targets, by name.
    Call {
        /// The call's name.
        call: String,
        /// The target's name.
        target: String,
    },
    /// A class param's value (`kstrtoul` base 0: `0x1ff`, `017`, `3`).
    Param {
        /// The param's name.
        param: String,
        /// The value as written.
        value: String,
    },
    /// One site's flags changed by a flag operation such as `+p` or `-pmf`.
    /// Site ids are per build, so these stay local (never in a fleet script).
    Site {
        /// The site's id, as the JSON listing gives it.
        site: String,
        /// The flag operation.
        flags: String,
    },
}

/// One operation, with its expiry when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// What it changes.
    pub kind: OpKind,
    /// When it leaves its layer (absolute, so it survives restarts).
    pub expires_at: Option<SystemTime>,
}

impl Op {
    /// An operation that never expires.
    pub fn new(kind: OpKind) -> Op {
        Op {
            kind,
            expires_at: None,
        }
    }

    /// A body of dyndbg queries.
    pub fn query(body: impl Into<String>) -> Op {
        Op::new(OpKind::Query(body.into()))
    }

    /// A body of dyndbg queries given as bytes: one that is not UTF-8 is
    /// refused the way the query parser refuses it (`E_BAD_ENCODING` at the
    /// first bad byte).
    pub fn query_bytes(body: &[u8]) -> Result<Op, crate::error::Error> {
        match std::str::from_utf8(body) {
            Ok(text) => Ok(Op::query(text)),
            Err(_) => Err(crate::error::Error::Query(
                dynkey_query::parse(body).err().unwrap_or_default(),
            )),
        }
    }

    /// Named keys set to the given states.
    pub fn keys<S: Into<String>>(keys: impl IntoIterator<Item = (S, bool)>) -> Op {
        Op::new(OpKind::Keys(
            keys.into_iter().map(|(k, on)| (k.into(), on)).collect(),
        ))
    }

    /// A static call switched to a target.
    pub fn call(call: impl Into<String>, target: impl Into<String>) -> Op {
        Op::new(OpKind::Call {
            call: call.into(),
            target: target.into(),
        })
    }

    /// A class param set to a value.
    pub fn param(param: impl Into<String>, value: impl Into<String>) -> Op {
        Op::new(OpKind::Param {
            param: param.into(),
            value: value.into(),
        })
    }

    /// One site's flags changed (`+p`, `-p`, ...).
    pub fn site(site: impl Into<String>, flags: impl Into<String>) -> Op {
        Op::new(OpKind::Site {
            site: site.into(),
            flags: flags.into(),
        })
    }

    /// The same operation, expiring at `at` (rounded down to whole seconds,
    /// the journal's precision).
    pub fn expiring_at(mut self, at: SystemTime) -> Op {
        self.expires_at = Some(whole_seconds(at));
        self
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// One fleet scope's script, as an instance applies it: the fleet layers
/// sit between the baseline and the local operations, in effective order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetLayer {
    /// The scope's bucket key: `all`, `sel.k=v[.k2=v2...]` or `inst.ID`.
    pub scope: String,
    /// The revision of the scope's script this layer holds.
    pub revision: u64,
    /// The script's operations, in order.
    pub ops: Vec<Op>,
}

impl Serialize for Op {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match &self.kind {
            OpKind::Query(q) => m.serialize_entry("query", q)?,
            OpKind::Keys(keys) => m.serialize_entry("keys", &OrderedKeys(keys))?,
            OpKind::Call { call, target } => {
                m.serialize_entry("call", call)?;
                m.serialize_entry("target", target)?;
            }
            OpKind::Param { param, value } => {
                m.serialize_entry("param", param)?;
                m.serialize_entry("value", value)?;
            }
            OpKind::Site { site, flags } => {
                m.serialize_entry("site", site)?;
                m.serialize_entry("flags", flags)?;
            }
        }
        if let Some(t) = self.expires_at {
            m.serialize_entry("expires_at", &format_time(t))?;
        }
        m.end()
    }
}

struct OrderedKeys<'a>(&'a [(String, bool)]);

impl Serialize for OrderedKeys<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A JSON object of names to booleans, in document order.
struct KeyList(Vec<(String, bool)>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of key names to true or false")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyList, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, bool>()? {
                    out.push((k, v));
                }
                Ok(KeyList(out))
            }
        }
        d.deserialize_map(V)
    }
}

const FIELDS: &[&str] = &[
    "query",
    "keys",
    "call",
    "target",
    "param",
    "value",
    "site",
    "flags",
    "expires_at",
];

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Op;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "an operation: {\"query\"}, {\"keys\"}, {\"call\", \"target\"}, {\"param\", \"value\"} or {\"site\", \"flags\"}",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Op, A::Error> {
                let mut fields: [Option<String>; 8] = Default::default();
                let mut keys: Option<Vec<(String, bool)>> = None;
                let mut expires_at = None;
                while let Some(name) = map.next_key::<String>()? {
                    let Some(i) = FIELDS.iter().position(|f| *f == name) else {
                        return Err(de::Error::unknown_field(&name, FIELDS));
                    };
                    let dup = match name.as_str() {
                        "keys" => keys.replace(map.next_value::<KeyList>()?.0).is_some(),
                        "expires_at" => {
                            let s: String = map.next_value()?;
                            let t = parse_time(&s).map(whole_seconds).ok_or_else(|| {
                                de::Error::custom(format!(
                                    "expires_at {s:?} is not an RFC 3339 time such as 2026-11-28T10:00:00Z"
                                ))
                            })?;
                            expires_at.replace(t).is_some()
                        }
                        _ => fields[i].replace(map.next_value()?).is_some(),
                    };
                    if dup {
                        return Err(de::Error::custom(format!("duplicate field `{name}`")));
                    }
                }
                let [query, _, call, target, param, value, site, flags] = fields;
                // Fields that belong to another kind of operation.
                let stray = if call.is_some() {
                    value.is_some() || flags.is_some()
                } else if param.is_some() {
                    target.is_some() || flags.is_some()
                } else if site.is_some() {
                    target.is_some() || value.is_some()
                } else {
                    target.is_some() || value.is_some() || flags.is_some()
                };
                let kinds = [
                    query.is_some(),
                    keys.is_some(),
                    call.is_some(),
                    param.is_some(),
                    site.is_some(),
                ];
                match kinds.iter().filter(|k| **k).count() {
                    0 => {
                        return Err(de::Error::custom(
                            "expected one of query, keys, call, param or site",
                        ));
                    }
                    1 => {}
                    _ => {
                        return Err(de::Error::custom(
                            "an operation has exactly one of query, keys, call, param or site",
                        ));
                    }
                }
                if stray {
                    return Err(de::Error::custom(
                        "target, value and flags belong to call, param and site operations only",
                    ));
                }
                let kind = if let Some(q) = query {
                    OpKind::Query(q)
                } else if let Some(k) = keys {
                    OpKind::Keys(k)
                } else if let Some(call) = call {
                    OpKind::Call {
                        call,
                        target: target.ok_or_else(|| de::Error::missing_field("target"))?,
                    }
                } else if let Some(param) = param {
                    OpKind::Param {
                        param,
                        value: value.ok_or_else(|| de::Error::missing_field("value"))?,
                    }
                } else {
                    OpKind::Site {
                        site: site.unwrap_or_default(),
                        flags: flags.ok_or_else(|| de::Error::missing_field("flags"))?,
                    }
                };
                Ok(Op { kind, expires_at })
            }
        }
        d.deserialize_map(V)
    }
}

impl fmt::Display for Op {
    /// The operation's JSON form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn round_trip(json: &str) {
        let op: Op = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            json,
            "re-encodes as given"
        );
    }

    #[test]
    fn every_kind_round_trips_in_the_documented_shape() {
        round_trip(r#"{"query":"module virtio_net +p"}"#);
        round_trip(r#"{"keys":{"B":false,"A":true}}"#);
        round_trip(r#"{"call":"DEMO_CHECKSUM","target":"adler32"}"#);
        round_trip(r#"{"param":"drm.debug","value":"0x1ff"}"#);
        round_trip(r#"{"site":"12","flags":"+p"}"#);
        round_trip(r#"{"query":"+p","expires_at":"2026-11-28T10:00:00Z"}"#);
    }

    #[test]
    fn malformed_operations_are_refused_with_a_reason() {
        for (json, needle) in [
            (r#"{}"#, "expected one of"),
            (r#"{"query":"+p","keys":{}}"#, "exactly one"),
            (r#"{"call":"X"}"#, "target"),
            (r#"{"param":"X"}"#, "value"),
            (r#"{"site":"1"}"#, "flags"),
            (r#"{"query":"+p","target":"t"}"#, "belong to"),
            (r#"{"query":"+p","ttl":"1"}"#, "unknown field"),
            (r#"{"keys":{"A":1}}"#, "expected a boolean"),
            (r#"{"query":"+p","expires_at":"tomorrow"}"#, "RFC 3339"),
            (r#"{"query":"+p","query":"-p"}"#, "duplicate"),
            (r#"[]"#, "operation"),
        ] {
            let err = serde_json::from_str::<Op>(json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn expiry_is_whole_seconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_999);
        let op = Op::query("+p").expiring_at(t);
        assert_eq!(op.expires_at, Some(whole_seconds(t)));
        assert!(op.expired(whole_seconds(t)));
        let json = serde_json::to_string(&op).unwrap();
        assert!(json.contains("2026-09-21T14:13:20Z"), "{json}");
    }
}
