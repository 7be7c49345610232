//! The JSON site table of `dynkeyd --sites FILE` (format: the fixtures'
//! README): class maps and sites, registered as run-time sites.
//!
//! serde reads the file into private mirrors of [`ClassMapSpec`] and
//! [`SiteSpec`] that deny unknown fields, and `serde_path_to_error` names
//! where a problem is: every message starts with the entry and the field
//! (`sites[3].line: expected an integer from 0 to 4294967295, found "x"`,
//! `classmaps[0]: unknown field `flag`, expected one of ...`, `file: ...`
//! for the top level) and ends with the line and column. The file is
//! checked for shape and types only; what the values mean (empty names,
//! class ids past 63, unknown classes, flag characters) is checked by
//! [`dynkey::Control::register`], whose errors [`load`] words the same way.
//! Nothing is registered unless the whole file is valid.

use std::fmt;
use std::marker::PhantomData;

use dynkey::{ClassMapKind, ClassMapSpec, SiteSpec};
use serde::de::value::MapAccessDeserializer;
use serde::de::{Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_path_to_error::{Path, Segment};

/// A problem with a site table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SitesFileError(pub String);

/// Class maps and sites read from a table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteTable {
    /// The class maps, in file order.
    pub classmaps: Vec<ClassMapSpec>,
    /// The sites, in file order (site *n* is the *n*-th row of the listing).
    pub sites: Vec<SiteSpec>,
}

fn err(at: &str, msg: impl fmt::Display) -> SitesFileError {
    SitesFileError(format!("{at}: {msg}"))
}

/// `T` read from a JSON object only: serde's derive would also take an
/// array of the fields in declaration order, a form the format does not have.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    classmaps: Vec<Object<ClassMapEntry>>,
    sites: Vec<Object<SiteEntry>>,
}

/// One entry of `classmaps` (see [`ClassMapSpec`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassMapEntry {
    param: String,
    #[serde(rename = "type", deserialize_with = "class_map_kind")]
    kind: ClassMapKind,
    #[serde(deserialize_with = "u8_field")]
    base: u8,
    classes: Vec<String>,
    modules: Vec<String>,
    #[serde(default = "default_flags")]
    flags: String,
}

/// One entry of `sites` (see [`SiteSpec`]); `class` may be absent or null.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteEntry {
    module: String,
    file: String,
    func: String,
    #[serde(deserialize_with = "u32_field")]
    line: u32,
    format: String,
    #[serde(default)]
    class: Option<String>,
}

fn default_flags() -> String {
    "p".into()
}

/// An unsigned integer up to `max`; the message names the range and the
/// value found (serde's own would name a Rust type).
fn uint<'de, D: Deserializer<'de>>(d: D, max: u64) -> Result<u64, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    v.as_u64()
        .filter(|&n| n <= max)
        .ok_or_else(|| D::Error::custom(format!("expected an integer from 0 to {max}, found {v}")))
}

fn u8_field<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    // The cast keeps the value: `uint` checked it is at most u8::MAX.
    uint(d, u8::MAX.into()).map(|n| n as u8)
}

fn u32_field<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    // The cast keeps the value: `uint` checked it is at most u32::MAX.
    uint(d, u32::MAX.into()).map(|n| n as u32)
}

fn class_map_kind<'de, D: Deserializer<'de>>(d: D) -> Result<ClassMapKind, D::Error> {
    let name = String::deserialize(d)?;
    ClassMapKind::from_name(&name).ok_or_else(|| {
        D::Error::custom(format!(
            "unknown class map type {name:?}; expected disjoint_bits or level_num"
        ))
    })
}

/// Parses a site table.
pub fn parse(text: &str) -> Result<SiteTable, SitesFileError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let file = match serde_path_to_error::deserialize(&mut de) {
        // Only white space may follow.
        Ok(Object::<File>(file)) => de.end().map(|()| file).map_err(|e| describe(None, &e))?,
        Err(e) => {
            // A text that is not JSON says so, even where a problem of shape
            // shows first.
            return Err(match serde_json::from_str::<IgnoredAny>(text) {
                Err(syntax) => describe(None, &syntax),
                Ok(_) => describe(Some(e.path()), e.inner()),
            });
        }
    };
    Ok(SiteTable {
        classmaps: file
            .classmaps
            .into_iter()
            .map(|Object(m)| ClassMapSpec {
                param: m.param,
                kind: m.kind,
                base: m.base,
                classes: m.classes,
                modules: m.modules,
                flags: m.flags,
            })
            .collect(),
        sites: file
            .sites
            .into_iter()
            .map(|Object(s)| SiteSpec {
                module: s.module,
                file: s.file,
                func: s.func,
                line: s.line,
                format: s.format,
                class: s.class,
            })
            .collect(),
    })
}

/// `AT: MESSAGE (line L, column C)`, where AT is the entry and field of
/// `path` (`file` for the top level), or `file: not JSON: ...`.
fn describe(path: Option<&Path>, e: &serde_json::Error) -> SitesFileError {
    let text = e.to_string();
    // serde_json ends its messages with the position; it reads better last,
    // in brackets.
    let position = format!(" at line {} column {}", e.line(), e.column());
    let message = match text.strip_suffix(&position) {
        Some(message) => format!("{message} (line {}, column {})", e.line(), e.column()),
        None => text,
    };
    if e.classify() != serde_json::error::Category::Data {
        return err("file", format!("not JSON: {message}"));
    }
    // serde reports an unknown field at the path of the field itself; the
    // place to name is the entry that has it.
    let unknown_field = message.starts_with("unknown field `");
    let segments: Vec<&Segment> = path.map(|p| p.iter().collect()).unwrap_or_default();
    let keep = segments.len() - usize::from(unknown_field && !segments.is_empty());
    let mut at = String::new();
    for segment in &segments[..keep] {
        if !at.is_empty() && !matches!(segment, Segment::Seq { .. }) {
            at.push('.');
        }
        at += &segment.to_string();
    }
    err(if at.is_empty() { "file" } else { &at }, message)
}

/// Reads, parses and registers a site table; errors name the entry and field.
pub fn load(
    path: &std::path::Path,
    control: &dynkey::Control,
) -> Result<Vec<dynkey::RuntimeSite>, SitesFileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SitesFileError(format!("{}: cannot read: {e}", path.display())))?;
    let table = parse(&text).map_err(|e| SitesFileError(format!("{}: {e}", path.display())))?;
    control
        .register(table.classmaps, table.sites)
        .map_err(|e| match e {
            dynkey::Error::Invalid {
                what,
                entry,
                field,
                reason,
            } => {
                let list = if what == "site" { "sites" } else { "classmaps" };
                SitesFileError(format!(
                    "{}: {list}[{entry}].{field}: {reason}",
                    path.display()
                ))
            }
            e => SitesFileError(format!("{}: {e}", path.display())),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn e(text: &str) -> String {
        parse(text).unwrap_err().0
    }

    #[test]
    fn reads_the_fixture_format() {
        let t = parse(
            r#"{"classmaps":[{"param":"drm.debug","type":"disjoint_bits","base":0,"classes":["A","B"],"modules":["drm"],"flags":"p"}],
                "sites":[{"module":"drm","file":"d.c","func":"f","line":3,"format":"x\n","class":"A"},
                         {"module":"m","file":"m.c","func":"g","line":4,"format":"y","class":null}]}"#,
        )
        .unwrap();
        assert_eq!(t.classmaps[0].classes, vec!["A", "B"]);
        assert_eq!(t.sites[0].class.as_deref(), Some("A"));
        assert_eq!(t.sites[1].class, None);
        assert_eq!(t.sites[0].format, "x\n");
    }

    #[test]
    fn reads_the_repository_fixture() {
        let path = dynkey::__private::dynkey_text::testing::fixtures_dir().join("kernel-like.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("fixture {} is missing: {e}", path.display()));
        let t = parse(&text).unwrap();
        assert_eq!((t.classmaps.len(), t.sites.len()), (2, 17));
        assert_eq!(t.classmaps[1].kind, ClassMapKind::LevelNum);
        assert_eq!(t.classmaps[1].base, 10);
    }

    #[test]
    fn optional_fields_take_their_defaults() {
        let t = parse(
            r#"{"classmaps":[{"param":"p","type":"level_num","base":1,"classes":["A"],"modules":["m"]}],
                "sites":[{"module":"m","file":"f","func":"g","line":4294967295,"format":""}]}"#,
        )
        .unwrap();
        assert_eq!(t.classmaps[0].flags, "p", "flags default to p");
        assert_eq!(t.sites[0].class, None, "no class is unclassed");
        assert_eq!(t.sites[0].line, u32::MAX);
        assert_eq!(parse(r#" {"sites":[]} "#).unwrap(), SiteTable::default());
    }

    /// The assertions of the hand-written parser, with serde's wording
    /// (backquoted names) and the position added.
    #[test]
    fn errors_name_entry_and_field() {
        assert!(
            e(r#"{"sites":[{"module":"m","file":"f","func":"g","line":"x","format":"","class":null}]}"#)
                .starts_with(r#"sites[0].line: expected an integer from 0 to 4294967295, found "x""#)
        );
        assert!(
            e(r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":""},{"module":"m"}]}"#)
                .starts_with("sites[1]: missing field `file`")
        );
        assert!(e(r#"{"sites":[],"extra":1}"#).starts_with("file: unknown field `extra`"));
        assert!(
            e(r#"{"classmaps":[{"param":"p","type":"bits","base":0,"classes":[],"modules":[]}],"sites":[]}"#)
                .starts_with(r#"classmaps[0].type: unknown class map type "bits""#)
        );
        assert!(e("[").starts_with("file: not JSON"));
        assert!(e(r#"{"classmaps":[]}"#).starts_with("file: missing field `sites`"));
    }

    /// Malformed tables, one problem each, and the whole message: the entry
    /// and field, what is wrong, where.
    #[test]
    fn malformed_tables() {
        let cases = [
            (
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":"x"},{"module":"m","file":"f","func":"g","line":1,"format":"x","flag":"p"}]}"#,
                r#"sites[1]: unknown field `flag`, expected one of `module`, `file`, `func`, `line`, `format`, `class` (line 1, column 133)"#,
            ),
            (
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":"x"},{"module":"m","file":"f","func":"g","line":1,"format":"x","line":2}]}"#,
                r#"sites[1]: duplicate field `line` (line 1, column 133)"#,
            ),
            (
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":"x"},{"module":"m","file":"f","func":"g","line":1,"format":"x","class":3}]}"#,
                r#"sites[1].class: invalid type: integer `3`, expected a string (line 1, column 136)"#,
            ),
            (
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":"x"},{"module":"m","file":"f","func":"g","line":1,"format":"x","class":["A"]}]}"#,
                r#"sites[1].class: invalid type: sequence, expected a string (line 1, column 135)"#,
            ),
            (
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":"x"},{"module":"m","file":"f","func":"g","line":-1,"format":"x"}]}"#,
                r#"sites[1].line: expected an integer from 0 to 4294967295, found -1 (line 1, column 114)"#,
            ),
            (
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":"x"},{"module":"m","file":"f","func":"g","line":4294967296,"format":"x"}]}"#,
                r#"sites[1].line: expected an integer from 0 to 4294967295, found 4294967296 (line 1, column 122)"#,
            ),
            (
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":"x"},{"module":"m","file":"f","func":"g","line":1.0,"format":"x"}]}"#,
                r#"sites[1].line: expected an integer from 0 to 4294967295, found 1.0 (line 1, column 115)"#,
            ),
            (
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":"x"},{"module":"m","file":"f","func":null,"line":1,"format":"x"}]}"#,
                r#"sites[1].func: invalid type: null, expected a string (line 1, column 105)"#,
            ),
            (
                r#"{"sites":[{"module":"m"},3]}"#,
                r#"sites[0]: missing field `file` (line 1, column 24)"#,
            ),
            (
                r#"{"sites":[3]}"#,
                r#"sites[0]: invalid type: integer `3`, expected an object (line 1, column 11)"#,
            ),
            (
                r#"{"sites":[["m","f","g",1,"x",null]]}"#,
                r#"sites[0]: invalid type: sequence, expected an object (line 1, column 10)"#,
            ),
            (
                r#"{"sites":{}}"#,
                r#"sites: invalid type: map, expected a sequence (line 1, column 9)"#,
            ),
            (
                r#"[[],[]]"#,
                r#"file: invalid type: sequence, expected an object (line 1, column 0)"#,
            ),
            (
                r#""sites""#,
                r#"file: invalid type: string "sites", expected an object (line 1, column 7)"#,
            ),
            (
                r#"{"sites":[]} {}"#,
                r#"file: not JSON: trailing characters (line 1, column 14)"#,
            ),
            (
                r#"{"sites":[3, }"#,
                r#"file: not JSON: expected value (line 1, column 14)"#,
            ),
            (
                r#"{"sites":[}"#,
                r#"file: not JSON: expected value (line 1, column 11)"#,
            ),
            (
                r#""#,
                r#"file: not JSON: EOF while parsing a value (line 1, column 0)"#,
            ),
            (
                r#"{"classmaps":[{"param":"p","type":"disjoint_bits","base":0,"classes":["A"],"modules":["m"],"flag":"p"}],"sites":[]}"#,
                r#"classmaps[0]: unknown field `flag`, expected one of `param`, `type`, `base`, `classes`, `modules`, `flags` (line 1, column 97)"#,
            ),
            (
                r#"{"classmaps":[{"param":"p","type":"disjoint_bits","base":256,"classes":["A"],"modules":["m"]}],"sites":[]}"#,
                r#"classmaps[0].base: expected an integer from 0 to 255, found 256 (line 1, column 60)"#,
            ),
            (
                r#"{"classmaps":[{"param":"p","type":"disjoint_bits","base":"0","classes":["A"],"modules":["m"]}],"sites":[]}"#,
                r#"classmaps[0].base: expected an integer from 0 to 255, found "0" (line 1, column 60)"#,
            ),
            (
                r#"{"classmaps":[{"param":"p","type":"level","base":0,"classes":["A"],"modules":["m"]}],"sites":[]}"#,
                r#"classmaps[0].type: unknown class map type "level"; expected disjoint_bits or level_num (line 1, column 41)"#,
            ),
            (
                r#"{"classmaps":[{"param":"p","type":"disjoint_bits","base":0,"classes":"A","modules":["m"]}],"sites":[]}"#,
                r#"classmaps[0].classes: invalid type: string "A", expected a sequence (line 1, column 72)"#,
            ),
            (
                r#"{"classmaps":[{"param":"p","type":"disjoint_bits","base":0,"classes":["A",2],"modules":["m"]}],"sites":[]}"#,
                r#"classmaps[0].classes[1]: invalid type: integer `2`, expected a string (line 1, column 75)"#,
            ),
            (
                r#"{"classmaps":[{"param":"p","type":"disjoint_bits","base":0,"classes":["A"]}],"sites":[]}"#,
                r#"classmaps[0]: missing field `modules` (line 1, column 75)"#,
            ),
            (
                r#"{"classmaps":[{"param":"p","type":"disjoint_bits","base":0,"classes":["A"],"modules":["m"],"flags":1}],"sites":[]}"#,
                r#"classmaps[0].flags: invalid type: integer `1`, expected a string (line 1, column 100)"#,
            ),
            (
                r#"{"classmaps":null,"sites":[]}"#,
                r#"classmaps: invalid type: null, expected a sequence (line 1, column 17)"#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(e(text), want, "for {text}");
        }
    }

    /// A site as the format writes it.
    fn site_json(s: &SiteSpec) -> Value {
        json!({"module": s.module, "file": s.file, "func": s.func, "line": s.line,
               "format": s.format, "class": s.class})
    }

    fn map_json(m: &ClassMapSpec) -> Value {
        json!({"param": m.param, "type": m.kind.name(), "base": m.base,
               "classes": m.classes, "modules": m.modules, "flags": m.flags})
    }

    fn any_site() -> impl Strategy<Value = SiteSpec> {
        (
            ("\\PC*", "\\PC*", "\\PC*"),
            any::<u32>(),
            "\\PC*",
            proptest::option::of("\\PC*"),
        )
            .prop_map(|((module, file, func), line, format, class)| SiteSpec {
                module,
                file,
                func,
                line,
                format,
                class,
            })
    }

    fn any_map() -> impl Strategy<Value = ClassMapSpec> {
        (
            "\\PC*",
            prop_oneof![
                Just(ClassMapKind::DisjointBits),
                Just(ClassMapKind::LevelNum)
            ],
            any::<u8>(),
            proptest::collection::vec("\\PC*", 0..4),
            proptest::collection::vec("\\PC*", 0..4),
            "[pmflts_]{0,4}",
        )
            .prop_map(
                |(param, kind, base, classes, modules, flags)| ClassMapSpec {
                    param,
                    kind,
                    base,
                    classes,
                    modules,
                    flags,
                },
            )
    }

    /// How one entry is spoiled, and the field the message must name.
    #[derive(Debug, Clone)]
    enum Spoil {
        /// A required field is left out: `LIST[i]: missing field `F``.
        Remove(usize),
        /// A field gets a value of the wrong type: `LIST[i].F: ...`.
        WrongType(usize, Value),
        /// An unknown field is added: `LIST[i]: unknown field `F``.
        Unknown(String),
        /// The entry is not an object: `LIST[i]: invalid type`.
        NotObject(Value),
    }

    fn any_spoil() -> impl Strategy<Value = Spoil> {
        let wrong = prop_oneof![
            Just(json!(null)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!(true)),
            Just(json!({})),
            Just(json!([[]])),
        ];
        prop_oneof![
            (0..5usize).prop_map(Spoil::Remove),
            (0..5usize, wrong.clone()).prop_map(|(f, v)| Spoil::WrongType(f, v)),
            "[a-z_]{1,8}".prop_map(Spoil::Unknown),
            prop_oneof![Just(json!(7)), Just(json!("x")), Just(json!([1]))]
                .prop_map(Spoil::NotObject),
        ]
    }

    const SITE_FIELDS: [&str; 6] = ["module", "file", "func", "line", "format", "class"];
    const MAP_FIELDS: [&str; 6] = ["param", "type", "base", "classes", "modules", "flags"];

    /// Spoils `entry` (a JSON object of `fields`, the first five required);
    /// returns the expected message prefix after `LIST[i]`, or None when the
    /// spoil happens to be valid.
    fn spoil(entry: &mut Value, how: &Spoil, fields: &[&str; 6]) -> Option<String> {
        let o = entry.as_object_mut().unwrap();
        match how {
            Spoil::Remove(f) => {
                o.remove(fields[*f]);
                Some(format!(": missing field `{}`", fields[*f]))
            }
            Spoil::WrongType(f, v) => {
                // Every value of `any_spoil` is wrong for every required
                // field (`-1` too: the integers are unsigned); a list inside
                // `classes` or `modules` is named by its index.
                let field = fields[*f];
                o.insert(field.into(), v.clone());
                Some(format!(".{field}"))
            }
            Spoil::Unknown(name) => {
                if fields.contains(&name.as_str()) {
                    return None;
                }
                o.insert(name.clone(), json!(1));
                Some(format!(": unknown field `{name}`"))
            }
            Spoil::NotObject(v) => {
                *entry = v.clone();
                Some(": invalid type: ".into())
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any table written in the format reads back as what was written.
        #[test]
        fn written_tables_read_back(
            maps in proptest::collection::vec(any_map(), 0..3),
            sites in proptest::collection::vec(any_site(), 0..6),
        ) {
            let text = json!({
                "classmaps": maps.iter().map(map_json).collect::<Vec<_>>(),
                "sites": sites.iter().map(site_json).collect::<Vec<_>>(),
            })
            .to_string();
            prop_assert_eq!(parse(&text), Ok(SiteTable { classmaps: maps, sites }));
        }

        /// One spoiled entry in an otherwise valid table: the error names
        /// that entry (and field), whichever list and place it is in.
        #[test]
        fn a_spoiled_entry_is_named(
            maps in proptest::collection::vec(any_map(), 1..3),
            sites in proptest::collection::vec(any_site(), 1..6),
            in_sites: bool,
            at in any::<prop::sample::Index>(),
            how in any_spoil(),
        ) {
            let mut maps: Vec<Value> = maps.iter().map(map_json).collect();
            let mut sites: Vec<Value> = sites.iter().map(site_json).collect();
            let (list, entries, fields) = if in_sites {
                ("sites", &mut sites, &SITE_FIELDS)
            } else {
                ("classmaps", &mut maps, &MAP_FIELDS)
            };
            let i = at.index(entries.len());
            let Some(want) = spoil(&mut entries[i], &how, fields) else {
                return Ok(());
            };
            let text = json!({"classmaps": maps, "sites": sites}).to_string();
            let got = e(&text);
            let want = format!("{list}[{i}]{want}");
            prop_assert!(got.starts_with(&want), "{got:?} should start with {want:?}");
        }

        /// Whatever the bytes, parsing returns (no panic), and an error
        /// names a place in the file.
        #[test]
        fn any_text_is_answered(text in "\\PC{0,64}|\\{\"sites\":\\[\\PC{0,48}") {
            if let Err(SitesFileError(msg)) = parse(&text) {
                let at = msg.split(": ").next().unwrap_or("");
                prop_assert!(
                    at == "file" || at.starts_with("sites") || at.starts_with("classmaps"),
                    "{msg:?}"
                );
            }
        }
    }
}
