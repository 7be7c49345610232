//! Every query vector of `fixtures/` (and of `DYNKEY_FIXTURES`, when set),
//! replayed without a server.
//!
//! The model below is what dynkeyd does with this crate, reduced to data:
//! a site table from `kernel-like.json`, `POST /control` as parse-then-apply
//! (all-or-nothing: an error leaves every site alone), `PUT /params` through
//! [`ClassMap::apply`] with every change applied at once, and the listing
//! through [`write_row`]. A `class` query matches a site only when the site's
//! module knows the class through a map's `modules` list (as the kernel
//! resolves `class NAME` per module, `ddebug_find_valid_class`).
//!
//! A missing fixture fails the test.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dynkey_query::{
    ClassMap, ClassMapKind, ErrorKind, Flags, LISTING_HEADER, SiteInfo, format_param_value, parse,
    parse_param_value, row,
};
use serde_json::Value;

/// The repository's fixtures (`fixtures/` at the workspace root).
fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn load_path(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("fixture {} is required: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not JSON: {e}", path.display()))
}

fn load(name: &str) -> Value {
    load_path(&fixtures_dir().join(name))
}

/// Every vector to replay: the repository's `fixtures/vectors.json`, then
/// those of every `vectors*.json` in `DYNKEY_FIXTURES` (an extra, outside
/// set, written against the same site table), if set.
fn vectors() -> Vec<Value> {
    let mut files = vec![fixtures_dir().join("vectors.json")];
    if let Some(dir) = std::env::var_os("DYNKEY_FIXTURES") {
        let mut extra: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("DYNKEY_FIXTURES: {e}"))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("vectors") && n.ends_with(".json"))
            })
            .collect();
        extra.sort();
        files.extend(extra);
    }
    files
        .iter()
        .flat_map(|f| match load_path(f) {
            Value::Array(v) => v,
            _ => panic!("{} is not a list of vectors", f.display()),
        })
        .collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} must be a string in {v}"))
}

struct Site {
    module: String,
    file: String,
    func: String,
    line: u32,
    format: String,
    class: Option<String>,
}

impl Site {
    fn info(&self) -> SiteInfo<'_> {
        SiteInfo {
            module: &self.module,
            file: &self.file,
            func: &self.func,
            line: self.line,
            format: self.format.as_bytes(),
            class: self.class.as_deref(),
        }
    }
}

struct Param {
    name: String,
    map: ClassMap,
    modules: Vec<String>,
}

struct Table {
    sites: Vec<Site>,
    params: Vec<Param>,
}

impl Table {
    fn load() -> Table {
        let json = load("kernel-like.json");
        let params = json["classmaps"]
            .as_array()
            .expect("classmaps")
            .iter()
            .map(|m| Param {
                name: text(m, "param").to_owned(),
                map: ClassMap {
                    kind: ClassMapKind::from_name(text(m, "type")).expect("known map type"),
                    base: u8::try_from(m["base"].as_u64().expect("base"))
                        .expect("base fits a byte"),
                    names: m["classes"]
                        .as_array()
                        .expect("classes")
                        .iter()
                        .map(|c| c.as_str().expect("name").to_owned())
                        .collect(),
                    flags: text(m, "flags").parse().expect("map flags"),
                },
                modules: m["modules"]
                    .as_array()
                    .expect("modules")
                    .iter()
                    .map(|c| c.as_str().expect("module").to_owned())
                    .collect(),
            })
            .collect();
        let sites = json["sites"]
            .as_array()
            .expect("sites")
            .iter()
            .map(|s| Site {
                module: text(s, "module").to_owned(),
                file: text(s, "file").to_owned(),
                func: text(s, "func").to_owned(),
                line: u32::try_from(s["line"].as_u64().expect("line")).expect("line fits u32"),
                format: text(s, "format").to_owned(),
                class: s["class"].as_str().map(str::to_owned),
            })
            .collect();
        Table { sites, params }
    }

    /// True when `module` knows class `name` through some map.
    fn knows(&self, module: &str, name: &str) -> bool {
        self.params
            .iter()
            .any(|p| p.modules.iter().any(|m| m == module) && p.map.names.iter().any(|n| n == name))
    }
}

/// The server's state and the reply of its last request.
struct Server<'t> {
    table: &'t Table,
    flags: Vec<Flags>,
    params: BTreeMap<String, u64>,
}

struct Reply {
    status: u16,
    errors: Vec<(usize, String)>,
    queries: Option<usize>,
}

impl<'t> Server<'t> {
    fn new(table: &'t Table) -> Self {
        Server {
            table,
            flags: vec![Flags::EMPTY; table.sites.len()],
            params: table.params.iter().map(|p| (p.name.clone(), 0)).collect(),
        }
    }

    fn post_control(&mut self, body: &[u8]) -> Reply {
        match parse(body) {
            Err(errors) => Reply {
                status: if errors.iter().any(|e| e.kind == ErrorKind::TooBig) {
                    413
                } else {
                    400
                },
                errors: errors
                    .iter()
                    .map(|e| (e.query, e.category().to_owned()))
                    .collect(),
                queries: None,
            },
            Ok(queries) => {
                let mut next = self.flags.clone();
                for q in &queries {
                    for (site, flags) in self.table.sites.iter().zip(next.iter_mut()) {
                        let class_known =
                            q.class().is_none_or(|c| self.table.knows(&site.module, c));
                        if class_known && q.matches(&site.info()) {
                            *flags = q.op().apply(*flags);
                        }
                    }
                }
                self.flags = next;
                Reply {
                    status: 200,
                    errors: vec![],
                    queries: Some(queries.len()),
                }
            }
        }
    }

    fn put_param(&mut self, name: &str, body: &[u8]) -> Reply {
        let param = self
            .table
            .params
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("unknown param {name}"));
        let requested = match parse_param_value(body) {
            Ok(v) => v,
            Err(e) => {
                return Reply {
                    status: 400,
                    errors: vec![(0, e.category().to_owned())],
                    queries: None,
                };
            }
        };
        let old = self.params[name];
        let change = param.map.apply(old, requested);
        // One commit: compute every site's new flags, then store them all.
        let mut next = self.flags.clone();
        for (class, op) in &change.changes {
            for (site, flags) in self.table.sites.iter().zip(next.iter_mut()) {
                if site.class.as_deref() == Some(*class) && param.modules.contains(&site.module) {
                    *flags = op.apply(*flags);
                }
            }
        }
        self.flags = next;
        self.params.insert(name.to_owned(), change.stored);
        Reply {
            status: 200,
            errors: vec![],
            queries: None,
        }
    }
}

/// Replays one vector; returns a description of each mismatch.
fn run(table: &Table, v: &Value) -> Vec<String> {
    let id = text(v, "id");
    let expect = &v["expect"];
    let mut server = Server::new(table);
    let mut problems = Vec::new();
    let mut last = Reply {
        status: 200,
        errors: vec![],
        queries: None,
    };
    let steps = v["steps"].as_array().expect("steps");
    for (i, step) in steps.iter().enumerate() {
        last = if let Some(q) = step["query"].as_str() {
            server.post_control(q.as_bytes())
        } else {
            server.put_param(text(step, "param"), text(step, "value").as_bytes())
        };
        let is_last = i + 1 == steps.len();
        let want = step["status"].as_u64().map(|s| s as u16);
        if !is_last && last.status != want.unwrap_or(200) {
            problems.push(format!(
                "{id}: step {i} answered {} {:?}",
                last.status, last.errors
            ));
        }
    }
    let status = expect["status"].as_u64().expect("status") as u16;
    if last.status != status {
        problems.push(format!(
            "{id}: status {} (errors {:?}), expected {status}",
            last.status, last.errors
        ));
    }
    if let Some(cat) = expect["category"].as_str()
        && !last.errors.iter().any(|(_, c)| c == cat)
    {
        problems.push(format!("{id}: category {cat} not in {:?}", last.errors));
    }
    if let Some(list) = expect["errors"].as_array() {
        let want: Vec<(usize, String)> = list
            .iter()
            .map(|e| {
                (
                    e["query"].as_u64().expect("query") as usize,
                    text(e, "category").to_owned(),
                )
            })
            .collect();
        if want != last.errors {
            problems.push(format!("{id}: errors {:?}, expected {want:?}", last.errors));
        }
    }
    let want_flags = expect["flags"].as_object().expect("flags");
    for (n, flags) in server.flags.iter().enumerate() {
        let key = (n + 1).to_string();
        let want = want_flags.get(&key).and_then(Value::as_str).unwrap_or("_");
        if flags.to_string() != want {
            problems.push(format!("{id}: site {key} is ={flags}, expected ={want}"));
        }
    }
    if let Some(params) = expect["param"].as_object() {
        for (name, want) in params {
            let kind = table
                .params
                .iter()
                .find(|p| &p.name == name)
                .expect("param of the table")
                .map
                .kind;
            let got = format_param_value(kind, server.params[name]);
            if Some(got.as_str()) != want.as_str() {
                problems.push(format!("{id}: param {name} reads {got}, expected {want}"));
            }
        }
    }
    if let Some(header) = expect["header"].as_str()
        && header != LISTING_HEADER
    {
        problems.push(format!(
            "{id}: header {LISTING_HEADER:?}, expected {header:?}"
        ));
    }
    if let Some(rows) = expect["rows"].as_object() {
        for (key, want) in rows {
            let n: usize = key.parse().expect("row number");
            let got = row(&table.sites[n - 1].info(), server.flags[n - 1]);
            if Some(got.as_str()) != want.as_str() {
                problems.push(format!("{id}: row {n} is {got:?}, expected {want}"));
            }
        }
    }
    if let Some(q) = expect["queries"].as_u64()
        && last.queries != Some(q as usize)
    {
        problems.push(format!("{id}: queries {:?}, expected {q}", last.queries));
    }
    problems
}

#[test]
fn fixture_table_is_consistent() {
    let table = Table::load();
    assert_eq!(table.sites.len(), 17, "kernel-like.json has 17 sites");
    for site in &table.sites {
        if let Some(class) = &site.class {
            assert!(
                table.knows(&site.module, class),
                "site class {class} must be known to module {}",
                site.module
            );
        }
    }
}

#[test]
fn every_vector() {
    let table = Table::load();
    let vectors = vectors();
    assert!(vectors.len() >= 100, "{} vectors", vectors.len());
    let problems: Vec<String> = vectors.iter().flat_map(|v| run(&table, v)).collect();
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn every_query_round_trips_through_its_canonical_text() {
    for v in &vectors() {
        for step in v["steps"].as_array().expect("steps") {
            if let Some(body) = step["query"].as_str() {
                dynkey_query::fuzzing::parse_round_trip(body.as_bytes());
            }
        }
    }
}
