//! The `RUST_LOG` baseline: the level directives tracing users already
//! write, as dynkey operations of the baseline layer.
//!
//! `RUST_LOG` is a comma-separated list of directives, as `EnvFilter`
//! reads them:
//!
//! - `LEVEL` (`off`, `error`, `warn`, `info`, `debug`, `trace`, or `0` to
//!   `5`, any case): the level of every target, written as the param
//!   `tracing.level` (the number of classes on: `info` is 3);
//! - `TARGET=LEVEL`: the level of one target and everything below it, as
//!   queries `module TARGET class C +p` for the classes up to `LEVEL` and
//!   `-p` for the others (plus `module TARGET::*` when `TARGET` is a path
//!   below a crate, since a module pattern matches a whole path or a crate
//!   name);
//! - `TARGET` alone: `TARGET=trace`.
//!
//! The param comes first, then the target directives from the shortest
//! target to the longest, so the most specific directive wins, as in
//! `EnvFilter`. With `RUST_LOG` unset or empty (or holding no valid
//! directive) the baseline is `info`: ERROR, WARN and INFO are on
//! everywhere. With target directives only, other targets are off, as
//! with `EnvFilter`.
//!
//! Differences from `EnvFilter`, each reported rather than guessed at:
//! span and field filters (`target[span{field=value}]=level`) and message
//! regexes (`/regex`) are skipped with an error (dynkey selects by target
//! and level, not by span context); a target matches on `::` boundaries
//! (`hyper` covers `hyper::proto`, not `hyper_util`; `EnvFilter` compares
//! raw prefixes); targets may hold letters, digits, `_`, `-`, `.` and `:`.

use dynkey::Op;

use crate::levels::{CLASSES, PARAM};

/// A directive that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("directive {directive:?} skipped: {reason}")]
pub struct DirectiveError {
    /// The directive as written.
    pub directive: String,
    /// Why it was skipped.
    pub reason: String,
}

/// One valid directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The target (None: every target).
    pub target: Option<String>,
    /// Classes turned on: 0 (`off`) to 5 (`trace`).
    pub level: u8,
}

/// What a `RUST_LOG` value becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// The valid directives, in the order given.
    pub directives: Vec<Directive>,
    /// The operations of the baseline layer: the param, then one query
    /// body per target directive, shortest target first.
    pub ops: Vec<Op>,
    /// The directives that were skipped.
    pub errors: Vec<DirectiveError>,
}

/// The level `info`, what an unset `RUST_LOG` means.
const DEFAULT_LEVEL: u8 = 3;

fn parse_level(s: &str) -> Option<u8> {
    let s = s.trim();
    let named = ["off", "error", "warn", "info", "debug", "trace"];
    if let Some(i) = named.iter().position(|n| n.eq_ignore_ascii_case(s)) {
        return Some(i as u8);
    }
    match s.parse::<u8>() {
        Ok(n) if n <= 5 => Some(n),
        _ => None,
    }
}

fn check_target(t: &str) -> Result<(), String> {
    if t.is_empty() {
        return Err("the target is empty".into());
    }
    match t
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        Some(c) => Err(format!(
            "{c:?} in target {t:?}: targets hold letters, digits, '_', '-', '.' and ':'"
        )),
        None => Ok(()),
    }
}

fn parse_directive(d: &str) -> Result<Directive, String> {
    if d.contains(['[', ']', '{', '}']) {
        return Err("span and field filters are not supported (dynkey selects by target and level, not by span)".into());
    }
    if d.contains('/') {
        return Err("message filters (/regex) are not supported".into());
    }
    if let Some((target, level)) = d.split_once('=') {
        let target = target.trim();
        check_target(target)?;
        let level = parse_level(level).ok_or_else(|| {
            format!(
                "{:?} is not a level (off, error, warn, info, debug, trace, or 0 to 5)",
                level.trim()
            )
        })?;
        return Ok(Directive {
            target: Some(target.to_string()),
            level,
        });
    }
    if let Some(level) = parse_level(d) {
        return Ok(Directive {
            target: None,
            level,
        });
    }
    check_target(d)?;
    Ok(Directive {
        target: Some(d.to_string()),
        level: 5,
    })
}

/// The query body that sets `target` to `level`.
fn target_query(target: &str, level: u8) -> String {
    let mut patterns = vec![target.to_string()];
    if target.contains("::") {
        patterns.push(format!("{target}::*"));
    }
    let mut body = String::new();
    for p in &patterns {
        for (i, class) in CLASSES.iter().enumerate() {
            let op = if (i as u8) < level { "+p" } else { "-p" };
            body.push_str(&format!("module {p} class {class} {op}\n"));
        }
    }
    body
}

/// Reads a `RUST_LOG` value (None: unset). Never fails: bad directives are
/// skipped and listed in [`Baseline::errors`].
///
/// ```
/// let b = dynkey_tracing::rust_log::baseline(Some("warn,my_app::db=debug"));
/// assert_eq!(b.ops[0], dynkey::Op::param("tracing.level", "2"));
/// assert!(b.ops[1].to_string().contains("module my_app::db class DEBUG +p"));
/// ```
pub fn baseline(spec: Option<&str>) -> Baseline {
    let mut directives = Vec::new();
    let mut errors = Vec::new();
    for d in spec.unwrap_or("").split(',') {
        let d = d.trim();
        if d.is_empty() {
            continue;
        }
        match parse_directive(d) {
            Ok(v) => directives.push(v),
            Err(reason) => errors.push(DirectiveError {
                directive: d.to_string(),
                reason,
            }),
        }
    }
    let global = if directives.is_empty() {
        DEFAULT_LEVEL
    } else {
        directives
            .iter()
            .rev()
            .find(|d| d.target.is_none())
            .map_or(0, |d| d.level)
    };
    let mut ops = vec![Op::param(PARAM, global.to_string())];
    let mut targeted: Vec<&Directive> = directives.iter().filter(|d| d.target.is_some()).collect();
    // Stable: for one target, the later directive wins.
    targeted.sort_by_key(|d| d.target.as_deref().map_or(0, str::len));
    for d in targeted {
        if let Some(t) = &d.target {
            ops.push(Op::query(target_query(t, d.level)));
        }
    }
    Baseline {
        directives,
        ops,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(op: &Op) -> String {
        match &op.kind {
            dynkey::OpKind::Query(q) => q.clone(),
            other => panic!("not a query: {other:?}"),
        }
    }

    #[test]
    fn unset_empty_and_invalid_mean_info() {
        for spec in [None, Some(""), Some(" , ,"), Some("what[ever]=debug")] {
            let b = baseline(spec);
            assert_eq!(b.ops, vec![Op::param(PARAM, "3")], "{spec:?}");
        }
        assert_eq!(baseline(Some("a[b]=debug")).errors.len(), 1);
    }

    #[test]
    fn levels_are_names_or_numbers_in_any_case() {
        for (spec, want) in [
            ("off", "0"),
            ("ERROR", "1"),
            ("Warn", "2"),
            ("info", "3"),
            ("debug", "4"),
            ("trace", "5"),
            ("4", "4"),
            ("info,trace", "5"),
        ] {
            assert_eq!(
                baseline(Some(spec)).ops,
                vec![Op::param(PARAM, want)],
                "{spec}"
            );
        }
    }

    #[test]
    fn target_directives_follow_the_param_shortest_first() {
        let b = baseline(Some("my_app::db=debug, my_app=warn"));
        assert!(b.errors.is_empty());
        assert_eq!(
            b.ops[0],
            Op::param(PARAM, "0"),
            "targets only: the rest is off"
        );
        assert_eq!(
            query(&b.ops[1]),
            "module my_app class ERROR +p\nmodule my_app class WARN +p\n\
             module my_app class INFO -p\nmodule my_app class DEBUG -p\n\
             module my_app class TRACE -p\n"
        );
        let db = query(&b.ops[2]);
        assert!(db.starts_with("module my_app::db class ERROR +p\n"), "{db}");
        assert!(db.contains("module my_app::db::* class DEBUG +p\n"), "{db}");
        assert!(db.contains("module my_app::db::* class TRACE -p\n"), "{db}");
        assert_eq!(db.lines().count(), 10);
    }

    #[test]
    fn a_bare_target_means_trace() {
        let b = baseline(Some("info,hyper"));
        assert_eq!(
            b.directives[1],
            Directive {
                target: Some("hyper".into()),
                level: 5
            }
        );
        assert!(query(&b.ops[1]).contains("module hyper class TRACE +p"));
    }

    #[test]
    fn bad_directives_are_named_and_the_rest_applies() {
        let b = baseline(Some("info,a=loud,b c=debug,x/y,=debug,ok=trace"));
        let bad: Vec<&str> = b.errors.iter().map(|e| e.directive.as_str()).collect();
        assert_eq!(bad, ["a=loud", "b c=debug", "x/y", "=debug"]);
        assert!(b.errors[0].reason.contains("\"loud\" is not a level"));
        assert_eq!(b.ops.len(), 2, "the param and ok=trace");
    }
}
