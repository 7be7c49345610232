//! The desired state over HTTP: its layers, revoking local operations, and
//! the audit log. `GET /state` and `GET /audit` need the token when one is
//! configured: they name tokens and client addresses.

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use dynkey::{Actor, format_time};
use serde_json::{Value, json};

use super::{Params, blocking};
use crate::{ApiError, AppState};

fn local_json(l: &dynkey::LocalOp) -> Value {
    json!({
        "id": l.id.to_string(),
        "who": l.who,
        "from": l.from,
        "at": format_time(l.at),
        "expires_at": l.op.expires_at.map(format_time),
        "origin": l.source.as_str(),
        "op": l.op,
    })
}

/// `GET /state`: the baseline, the fleet layers, the local operations.
pub async fn get_state(State(s): State<AppState>) -> Json<Value> {
    let v = s.control.state_view();
    let fleet: Vec<Value> = v
        .fleet
        .iter()
        .map(|l| json!({ "scope": l.scope, "revision": l.revision, "ops": l.ops }))
        .collect();
    Json(json!({
        "baseline": v.baseline,
        "fleet": fleet,
        "local": v.local.iter().map(local_json).collect::<Vec<_>>(),
    }))
}

fn revoked(r: dynkey::RebuildReport) -> Json<Value> {
    Json(json!({ "revoked": r.revoked, "changed": r.changed, "rendezvous": r.rendezvous }))
}

/// `DELETE /state/ops/{id}`: revoke one local operation.
pub async fn revoke_one(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(q.as_deref())?.no_ttl()?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::not_found(&format!("no local operation {id:?}")))?;
    let c = s.control;
    Ok(revoked(blocking(move || c.revoke(id, &actor)).await?))
}

/// `DELETE /state/ops`: revoke every local operation.
pub async fn revoke_all(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(q.as_deref())?.no_ttl()?;
    let c = s.control;
    Ok(revoked(blocking(move || c.revoke_all(&actor)).await?))
}

/// `GET /audit?limit=N&before=ID`: newest first.
pub async fn get_audit(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let p = Params::parse(q.as_deref())?;
    let bad = |what: &str, v: &str, expected: &str| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "E_BAD_PARAM",
            format!("{what}={v:?}: expected {expected}"),
        )
    };
    let limit = match p.limit.as_deref() {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| bad("limit", v, "a number from 1 to 1000"))?,
    };
    let before = match p.before.as_deref() {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| bad("before", v, "an entry id"))?,
        ),
    };
    let (entries, next) = s.control.audit(limit, before);
    Ok(Json(json!({
        "entries": entries.iter().map(|e| e.to_json()).collect::<Vec<_>>(),
        "next": next.map(|n| n.to_string()),
    })))
}
