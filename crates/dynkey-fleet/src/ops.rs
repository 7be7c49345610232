//! The operations of a fleet script, and the checks made before one is
//! published.
//!
//! The operations are dynkey's own ([`dynkey::Op`]); the JSON shape is the
//! one of the durable-state model (the journal,
//! `GET /state`, `GET /audit`): `{"query": ..}`, `{"keys": {..}}`,
//! `{"call": .., "target": ..}`, `{"param": .., "value": ..}`, each with an
//! optional `"expires_at"` (RFC 3339, UTC). `{"site": ..}` toggles are local
//! only (site ids are per build) and never part of a fleet script.
//!
//! The operator checks what can be checked without an instance, with
//! dynkey's own parser: a query parses, a param value is a number, names are
//! not empty. Whether a key, call or param exists depends on each
//! instance's build; an instance checks that itself and reports what it
//! cannot apply.

pub use dynkey::{FleetLayer, Op, OpKind};
use serde::Serialize;

/// Why an operation cannot be published or applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpError {
    /// Index of the operation in its script (or command).
    pub op: usize,
    /// For queries: the index of the bad query within the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<usize>,
    /// The category (`E_UNKNOWN_KEYWORD`, `E_BAD_PARAM`, `E_SITE_OP`, ...).
    pub category: String,
    /// For queries: the byte offset of the offending word in the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<usize>,
    /// What is wrong, naming the value.
    pub message: String,
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "operation {}: {} ({})",
            self.op, self.message, self.category
        )?;
        if let Some(offset) = self.offset {
            write!(f, " at byte {offset}")?;
        }
        Ok(())
    }
}

fn op_error(op: usize, category: &str, message: String) -> OpError {
    OpError {
        op,
        query: None,
        category: category.to_string(),
        offset: None,
        message,
    }
}

/// Checks one operation (index `index` of its script) the way an operator
/// can: with dynkey's parser, before anything is published. Returns every
/// error found in it.
pub fn validate(index: usize, op: &Op) -> Vec<OpError> {
    let mut errors = Vec::new();
    match &op.kind {
        OpKind::Query(query) => {
            if let Err(errs) = dynkey_query::parse(query.as_bytes()) {
                errors.extend(errs.iter().map(|e| OpError {
                    op: index,
                    query: Some(e.query),
                    category: e.category().to_string(),
                    offset: Some(e.offset),
                    message: e.message().to_string(),
                }));
            }
        }
        OpKind::Keys(keys) => {
            if keys.is_empty() {
                errors.push(op_error(
                    index,
                    "E_BAD_OP",
                    "a key operation sets no key".into(),
                ));
            }
            if keys.iter().any(|(k, _)| k.is_empty()) {
                errors.push(op_error(index, "E_BAD_OP", "empty key name".into()));
            }
        }
        OpKind::Call { call, target } => {
            if call.is_empty() || target.is_empty() {
                errors.push(op_error(
                    index,
                    "E_BAD_OP",
                    format!("call {call:?} target {target:?}: neither may be empty"),
                ));
            }
        }
        OpKind::Param { param, value } => {
            if param.is_empty() {
                errors.push(op_error(index, "E_BAD_OP", "empty param name".into()));
            }
            if let Err(e) = dynkey_query::parse_param_value(value.as_bytes()) {
                errors.push(op_error(
                    index,
                    e.category(),
                    format!("param {param}: {}", e.message()),
                ));
            }
        }
        OpKind::Site { site, .. } => errors.push(site_refused(index, site)),
        other => errors.push(op_error(
            index,
            "E_BAD_OP",
            format!("{other:?} is not an operation this dynkeyctl knows"),
        )),
    }
    errors
}

/// The refusal of a per-row toggle in a fleet script.
pub fn site_refused(index: usize, site: &str) -> OpError {
    op_error(
        index,
        "E_SITE_OP",
        format!(
            "site toggle {site:?} is local only (site ids are per build); use a query in fleet scripts"
        ),
    )
}

/// Whether an operation is a per-row toggle (refused in fleet scripts).
pub fn is_site_op(op: &Op) -> Option<&str> {
    match &op.kind {
        OpKind::Site { site, .. } => Some(site),
        _ => None,
    }
}

/// Checks every operation of a script; all errors, in order.
pub fn validate_all(ops: &[Op]) -> Vec<OpError> {
    ops.iter()
        .enumerate()
        .flat_map(|(i, op)| validate(i, op))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_toggles_are_recognised() {
        let site: Op = serde_json::from_str(r#"{"site":"17","flags":"+p"}"#).unwrap();
        assert_eq!(is_site_op(&site), Some("17"));
        assert_eq!(is_site_op(&Op::query("module x +p")), None);
    }

    #[test]
    fn validation_uses_dynkeys_parser() {
        let errs = validate(3, &Op::query("mod x +p"));
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].op, 3);
        assert_eq!(errs[0].category, "E_UNKNOWN_KEYWORD");
        assert_eq!(errs[0].offset, Some(0));
        let errs = validate(0, &Op::query("module x +p; func y +z"));
        assert_eq!(errs[0].query, Some(1));
        assert_eq!(errs[0].category, "E_UNKNOWN_FLAG");
        assert!(validate(0, &Op::query("module x +p")).is_empty());
        assert_eq!(
            validate(0, &Op::param("p", "abc"))[0].category,
            "E_BAD_PARAM"
        );
        assert!(validate(0, &Op::param("p", "0x1ff")).is_empty());
        assert_eq!(validate(0, &Op::call("", "t"))[0].category, "E_BAD_OP");
        let site: Op = serde_json::from_str(r#"{"site":"17","flags":"+p"}"#).unwrap();
        assert_eq!(validate(0, &site)[0].category, "E_SITE_OP");
        assert_eq!(
            validate(0, &Op::keys(Vec::<(String, bool)>::new()))[0].category,
            "E_BAD_OP"
        );
    }
}
