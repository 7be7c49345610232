//! Who a script is for: instance ids, labels and scopes.
//!
//! A scope has two spellings. Operators and every document a person reads
//! (dynkeyctl's output, the status documents, `GET /fleet`) use the command
//! line's: `all`, `svc=checkout,region=eu`, `instance=web-1`. The bucket
//! uses keys NATS accepts (`[-/_=.A-Za-z0-9]`): `all`,
//! `sel.region=eu.svc=checkout`, `inst.web-1`. Both are canonical: the pairs
//! of a selector are sorted by key, so one selector has one key and two
//! operators writing `svc=a,region=eu` and `region=eu,svc=a` write the same
//! script. Ids, label keys and values use `[A-Za-z0-9_-]`, so neither `.`
//! nor `=` nor `,` can appear inside one and both spellings parse back
//! without ambiguity.
//!
//! The label key `instance` is reserved: `instance=ID` is the scope of one
//! instance, and an instance's id already says who it is.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

/// Longest id, label key or label value, in bytes.
pub const MAX_NAME: usize = 64;
/// Most label pairs an instance or a selector may have.
pub const MAX_PAIRS: usize = 16;

/// A name, label key or label value that is not `[A-Za-z0-9_-]{1,64}`, or a
/// scope or label list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// An id, label key or label value is empty, too long, or has a
    /// character outside `[A-Za-z0-9_-]`.
    #[error("{what} {value:?} is not valid: use 1 to {MAX_NAME} characters of [A-Za-z0-9_-]")]
    BadName {
        /// `instance id`, `label key` or `label value`.
        what: &'static str,
        /// The offending text.
        value: String,
    },
    /// A label pair without `=`.
    #[error("label {0:?} is not k=v")]
    NotAPair(String),
    /// The same label key twice.
    #[error("label key {0:?} is given twice")]
    DuplicateKey(String),
    /// The reserved label key `instance` used as a label.
    #[error(
        "label key \"instance\" is reserved (instance=ID is the scope of one instance; an instance's id is given with --instance)"
    )]
    ReservedKey,
    /// More than [`MAX_PAIRS`] pairs.
    #[error("{0} label pairs; at most {MAX_PAIRS}")]
    TooMany(usize),
    /// A scope that is none of `all`, `k=v[,k=v...]`, `instance=ID`.
    #[error("scope {0:?} is not valid: use all, k=v[,k2=v2...] or instance=ID")]
    BadScope(String),
    /// A bucket key that is not the key of a scope.
    #[error("bucket key {0:?} is not the key of a scope (all, sel.k=v[.k=v...], inst.ID)")]
    BadKey(String),
}

fn check_name(what: &'static str, value: &str) -> Result<(), ScopeError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_NAME
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ScopeError::BadName {
            what,
            value: value.to_string(),
        })
    }
}

/// An instance's id (`[A-Za-z0-9_-]{1,64}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// Checks and wraps an id.
    pub fn new(id: &str) -> Result<InstanceId, ScopeError> {
        check_name("instance id", id)?;
        Ok(InstanceId(id.to_string()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instance's key in both buckets: `inst.<id>`.
    pub fn key(&self) -> String {
        format!("inst.{}", self.0)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for InstanceId {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InstanceId::new(s)
    }
}

/// An instance's labels, or a selector's pairs: sorted by key, one value per
/// key.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Parses `k=v,k2=v2` (the empty string is no labels).
    pub fn parse(text: &str) -> Result<Labels, ScopeError> {
        let mut map = BTreeMap::new();
        if text.is_empty() {
            return Ok(Labels(map));
        }
        let pairs: Vec<&str> = text.split(',').collect();
        if pairs.len() > MAX_PAIRS {
            return Err(ScopeError::TooMany(pairs.len()));
        }
        for pair in pairs {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| ScopeError::NotAPair(pair.to_string()))?;
            check_name("label key", k)?;
            check_name("label value", v)?;
            if k == "instance" {
                return Err(ScopeError::ReservedKey);
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ScopeError::DuplicateKey(k.to_string()));
            }
        }
        Ok(Labels(map))
    }

    /// The pairs, sorted by key.
    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every pair of `selector` is one of ours.
    pub fn contains_all(&self, selector: &Labels) -> bool {
        selector
            .0
            .iter()
            .all(|(k, v)| self.0.get(k).is_some_and(|mine| mine == v))
    }
}

impl fmt::Display for Labels {
    /// `k=v,k2=v2`, sorted by key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Labels {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Labels::parse(s)
    }
}

impl serde::Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Ok(Labels(map))
    }
}

/// Which instances a script is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every instance.
    All,
    /// Instances whose labels contain every pair (at least one pair).
    Selector(Labels),
    /// One instance.
    Instance(InstanceId),
}

impl Scope {
    /// Parses the command line's spelling: `all`, `k=v[,k2=v2...]` or
    /// `instance=ID`.
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        if text == "all" {
            return Ok(Scope::All);
        }
        if let Some(id) = text.strip_prefix("instance=") {
            return Ok(Scope::Instance(InstanceId::new(id)?));
        }
        if text.is_empty() || !text.contains('=') {
            return Err(ScopeError::BadScope(text.to_string()));
        }
        Ok(Scope::Selector(Labels::parse(text)?))
    }

    /// The key of this scope's script in `dynkey_desired`.
    pub fn key(&self) -> String {
        match self {
            Scope::All => "all".to_string(),
            Scope::Selector(labels) => {
                let mut key = String::from("sel");
                for (k, v) in labels.pairs() {
                    key.push('.');
                    key.push_str(k);
                    key.push('=');
                    key.push_str(v);
                }
                key
            }
            Scope::Instance(id) => id.key(),
        }
    }

    /// The scope of a bucket key (the inverse of [`Scope::key`]).
    pub fn from_key(key: &str) -> Result<Scope, ScopeError> {
        let bad = || ScopeError::BadKey(key.to_string());
        if key == "all" {
            return Ok(Scope::All);
        }
        if let Some(id) = key.strip_prefix("inst.") {
            return InstanceId::new(id).map(Scope::Instance).map_err(|_| bad());
        }
        let Some(rest) = key.strip_prefix("sel.") else {
            return Err(bad());
        };
        let labels = Labels::parse(&rest.replace('.', ",")).map_err(|_| bad())?;
        let scope = Scope::Selector(labels);
        // Only the canonical (sorted) key names a scope.
        if scope.key() != key {
            return Err(bad());
        }
        Ok(scope)
    }

    /// Whether an instance with this id and these labels is in the scope.
    pub fn matches(&self, id: &InstanceId, labels: &Labels) -> bool {
        match self {
            Scope::All => true,
            Scope::Selector(sel) => labels.contains_all(sel),
            Scope::Instance(target) => target == id,
        }
    }

    /// The effective order of layers: `all`, then selectors by number of
    /// pairs (fewer first), equal numbers in the byte order of their keys,
    /// then the instance's own scope. Later layers override earlier ones.
    pub fn effective_cmp(&self, other: &Scope) -> Ordering {
        fn rank(s: &Scope) -> (u8, usize) {
            match s {
                Scope::All => (0, 0),
                Scope::Selector(l) => (1, l.len()),
                Scope::Instance(_) => (2, 0),
            }
        }
        rank(self)
            .cmp(&rank(other))
            .then_with(|| self.key().as_bytes().cmp(other.key().as_bytes()))
    }
}

impl fmt::Display for Scope {
    /// The command line's spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all"),
            Scope::Selector(labels) => labels.fmt(f),
            Scope::Instance(id) => write!(f, "instance={id}"),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(s: &str) -> InstanceId {
        InstanceId::new(s).unwrap()
    }

    #[test]
    fn spellings_and_keys() {
        let cases = [
            ("all", "all", "all"),
            ("instance=web-1", "inst.web-1", "instance=web-1"),
            ("svc=checkout", "sel.svc=checkout", "svc=checkout"),
            (
                "svc=checkout,region=eu",
                "sel.region=eu.svc=checkout",
                "region=eu,svc=checkout",
            ),
        ];
        for (text, key, shown) in cases {
            let scope = Scope::parse(text).unwrap();
            assert_eq!(scope.key(), key, "{text}");
            assert_eq!(scope.to_string(), shown, "{text}");
            assert_eq!(Scope::from_key(key).unwrap(), scope, "{key}");
        }
    }

    #[test]
    fn refusals_name_the_value() {
        for bad in [
            "",
            "everything",
            "svc",
            "svc=",
            "=x",
            "svc=a.b",
            "svc=a,svc=b",
            "instance=",
            "instance=a.b",
            "svc=a,instance=b",
            "sv c=a",
            "svc=é",
        ] {
            let err = Scope::parse(bad).unwrap_err();
            assert!(!err.to_string().is_empty(), "{bad}");
        }
        let err = Scope::parse("svc=a b").unwrap_err();
        assert!(err.to_string().contains("\"a b\""), "{err}");
        assert!(Labels::parse(&vec!["a=b"; 17].join(",")).is_err());
        assert_eq!(Labels::parse("").unwrap().len(), 0);
        assert!(InstanceId::new(&"x".repeat(65)).is_err());
        assert!(InstanceId::new(&"x".repeat(64)).is_ok());
    }

    #[test]
    fn non_canonical_keys_are_refused() {
        for key in [
            "sel.svc=a.region=eu",
            "sel.",
            "sel",
            "inst.",
            "inst.a.b",
            "other",
            "sel.a=b.a=c",
        ] {
            assert!(Scope::from_key(key).is_err(), "{key}");
        }
    }

    #[test]
    fn matching() {
        let labels = Labels::parse("svc=checkout,region=eu,tier=web").unwrap();
        let me = id("web-1");
        assert!(Scope::All.matches(&me, &labels));
        assert!(Scope::parse("svc=checkout").unwrap().matches(&me, &labels));
        assert!(
            Scope::parse("region=eu,svc=checkout")
                .unwrap()
                .matches(&me, &labels)
        );
        assert!(
            !Scope::parse("region=us,svc=checkout")
                .unwrap()
                .matches(&me, &labels)
        );
        assert!(!Scope::parse("zone=a").unwrap().matches(&me, &labels));
        assert!(
            Scope::parse("instance=web-1")
                .unwrap()
                .matches(&me, &labels)
        );
        assert!(
            !Scope::parse("instance=web-2")
                .unwrap()
                .matches(&me, &labels)
        );
    }

    #[test]
    fn effective_order() {
        let mut scopes: Vec<Scope> = [
            "instance=a",
            "svc=x,region=eu",
            "tier=web",
            "all",
            "region=eu",
            "b=1,a=2",
        ]
        .iter()
        .map(|s| Scope::parse(s).unwrap())
        .collect();
        scopes.sort_by(|a, b| a.effective_cmp(b));
        let shown: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            shown,
            [
                "all",
                "region=eu",
                "tier=web",
                "a=2,b=1",
                "region=eu,svc=x",
                "instance=a"
            ]
        );
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_-]{1,12}".prop_filter("reserved", |s| s != "instance")
    }

    proptest! {
        /// Every scope's two spellings parse back to it.
        #[test]
        fn round_trips(pairs in proptest::collection::btree_map(name(), name(), 1..5), inst in name()) {
            let text = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            for scope in [Scope::parse(&text).unwrap(), Scope::parse(&format!("instance={inst}")).unwrap(), Scope::All] {
                prop_assert_eq!(Scope::from_key(&scope.key()).unwrap(), scope.clone());
                prop_assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope.clone());
                // Every key is one NATS accepts.
                prop_assert!(scope.key().bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b)));
            }
        }

        /// The parsers never panic, and whatever they accept is canonical.
        #[test]
        fn arbitrary_text(text in ".{0,40}") {
            if let Ok(scope) = Scope::parse(&text) {
                prop_assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope);
            }
            if let Ok(scope) = Scope::from_key(&text) {
                prop_assert_eq!(scope.key(), text);
            }
        }

        /// A selector matches exactly the label sets that contain it.
        #[test]
        fn selector_matching(mine in proptest::collection::btree_map(name(), name(), 0..5),
                             sel in proptest::collection::btree_map(name(), name(), 1..4)) {
            let labels = Labels(mine.clone());
            let scope = Scope::Selector(Labels(sel.clone()));
            let expected = sel.iter().all(|(k, v)| mine.get(k) == Some(v));
            prop_assert_eq!(scope.matches(&InstanceId::new("x").unwrap(), &labels), expected);
        }
    }
}
