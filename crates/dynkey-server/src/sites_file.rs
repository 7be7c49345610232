//! The JSON site table of `dynkeyd --sites FILE` (format: the fixtures'
//! README): class maps and sites, registered as run-time sites.
//!
//! Every problem names the entry and the field (`sites[3].line: expected a
//! non-negative integer, found "x"`), and nothing is registered unless the
//! whole file is valid.

use dynkey::{ClassMapKind, ClassMapSpec, SiteSpec};
use serde_json::{Map, Value};

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

fn err(at: &str, msg: impl std::fmt::Display) -> SitesFileError {
    SitesFileError(format!("{at}: {msg}"))
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, SitesFileError> {
    v.as_object()
        .ok_or_else(|| err(at, format!("expected an object, found {v}")))
}

/// Checks that `o` has only `allowed` fields.
fn only(o: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), SitesFileError> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(err(
            at,
            format!("unknown field {k:?}; expected {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

fn get<'a>(o: &'a Map<String, Value>, at: &str, f: &str) -> Result<&'a Value, SitesFileError> {
    o.get(f)
        .ok_or_else(|| err(at, format!("missing field {f:?}")))
}

fn string(o: &Map<String, Value>, at: &str, f: &str) -> Result<String, SitesFileError> {
    let v = get(o, at, f)?;
    v.as_str().map(str::to_owned).ok_or_else(|| {
        err(
            &format!("{at}.{f}"),
            format!("expected a string, found {v}"),
        )
    })
}

fn strings(o: &Map<String, Value>, at: &str, f: &str) -> Result<Vec<String>, SitesFileError> {
    let v = get(o, at, f)?;
    let a = v.as_array().ok_or_else(|| {
        err(
            &format!("{at}.{f}"),
            format!("expected a list of strings, found {v}"),
        )
    })?;
    a.iter()
        .enumerate()
        .map(|(i, s)| {
            s.as_str().map(str::to_owned).ok_or_else(|| {
                err(
                    &format!("{at}.{f}[{i}]"),
                    format!("expected a string, found {s}"),
                )
            })
        })
        .collect()
}

fn uint(o: &Map<String, Value>, at: &str, f: &str, max: u64) -> Result<u64, SitesFileError> {
    let v = get(o, at, f)?;
    v.as_u64().filter(|&n| n <= max).ok_or_else(|| {
        err(
            &format!("{at}.{f}"),
            format!("expected an integer from 0 to {max}, found {v}"),
        )
    })
}

/// Parses a site table.
pub fn parse(text: &str) -> Result<SiteTable, SitesFileError> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| err("file", format!("not JSON: {e}")))?;
    let root = object(&root, "file")?;
    only(root, "file", &["classmaps", "sites"])?;
    let mut table = SiteTable::default();
    if let Some(maps) = root.get("classmaps") {
        let maps = maps
            .as_array()
            .ok_or_else(|| err("classmaps", "expected a list"))?;
        for (i, m) in maps.iter().enumerate() {
            let at = format!("classmaps[{i}]");
            let o = object(m, &at)?;
            only(
                o,
                &at,
                &["param", "type", "base", "classes", "modules", "flags"],
            )?;
            let kind_name = string(o, &at, "type")?;
            let kind = ClassMapKind::from_name(&kind_name).ok_or_else(|| {
                err(
                    &format!("{at}.type"),
                    format!(
                        "unknown class map type {kind_name:?}; expected disjoint_bits or level_num"
                    ),
                )
            })?;
            table.classmaps.push(ClassMapSpec {
                param: string(o, &at, "param")?,
                kind,
                base: uint(o, &at, "base", 62)? as u8,
                classes: strings(o, &at, "classes")?,
                modules: strings(o, &at, "modules")?,
                flags: if o.contains_key("flags") {
                    string(o, &at, "flags")?
                } else {
                    "p".into()
                },
            });
        }
    }
    let sites = get(root, "file", "sites")?;
    let sites = sites
        .as_array()
        .ok_or_else(|| err("sites", "expected a list"))?;
    for (i, s) in sites.iter().enumerate() {
        let at = format!("sites[{i}]");
        let o = object(s, &at)?;
        only(
            o,
            &at,
            &["module", "file", "func", "line", "format", "class"],
        )?;
        let class = match get(o, &at, "class") {
            Ok(Value::Null) | Err(_) => None,
            Ok(Value::String(c)) => Some(c.clone()),
            Ok(v) => {
                return Err(err(
                    &format!("{at}.class"),
                    format!("expected a class name or null, found {v}"),
                ));
            }
        };
        table.sites.push(SiteSpec {
            module: string(o, &at, "module")?,
            file: string(o, &at, "file")?,
            func: string(o, &at, "func")?,
            line: uint(o, &at, "line", u32::MAX as u64)? as u32,
            format: string(o, &at, "format")?,
            class,
        });
    }
    Ok(table)
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
    fn errors_name_entry_and_field() {
        let e = |s: &str| parse(s).unwrap_err().0;
        assert_eq!(
            e(
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":"x","format":"","class":null}]}"#
            ),
            "sites[0].line: expected an integer from 0 to 4294967295, found \"x\""
        );
        assert_eq!(
            e(
                r#"{"sites":[{"module":"m","file":"f","func":"g","line":1,"format":""},{"module":"m"}]}"#
            ),
            "sites[1]: missing field \"file\""
        );
        assert!(e(r#"{"sites":[],"extra":1}"#).starts_with("file: unknown field \"extra\""));
        assert!(e(r#"{"classmaps":[{"param":"p","type":"bits","base":0,"classes":[],"modules":[]}],"sites":[]}"#)
            .starts_with("classmaps[0].type: unknown class map type \"bits\""));
        assert!(e("[").starts_with("file: not JSON"));
        assert_eq!(e(r#"{"classmaps":[]}"#), "file: missing field \"sites\"");
    }
}
