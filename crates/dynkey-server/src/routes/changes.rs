//! The mutating routes. Each request is one operation for the engine:
//! journaled (with a state directory) before the reply says 200, audited
//! under the token's name, expiring after `?ttl=` when given. Concurrent
//! requests share one journal write, one commit and one rendezvous; each
//! keeps its own all-or-nothing result.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::{Json, response::IntoResponse, response::Response};
use dynkey::{Actor, Applied, Op};
use serde_json::{Value, json};

use super::{Params, blocking, raw, text};
use crate::{ApiError, AppState};

/// The reply fields every change has.
fn applied(a: &Applied) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("changed".into(), a.changed.into());
    m.insert("rendezvous".into(), a.rendezvous.into());
    m.insert("id".into(), a.id.map(|i| i.to_string()).into());
    m
}

async fn submit(s: &AppState, actor: Actor, op: Op) -> Result<Applied, ApiError> {
    s.applier.submit(op, actor).await
}

/// `POST /control`: a body of dyndbg queries, all or nothing; with
/// `?dry_run=1`, what it would do.
pub async fn post_control(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let body = raw(body)?;
    let op = Op::query_bytes(&body)?;
    if params.dry_run {
        return dry_run(&s, op).await.map(IntoResponse::into_response);
    }
    let a = submit(&s, actor, params.timed(op)).await?;
    let mut m = applied(&a);
    m.insert("queries".into(), a.queries.into());
    m.insert("matched".into(), a.matched.into());
    Ok(Json(Value::Object(m)).into_response())
}

async fn dry_run(s: &AppState, op: Op) -> Result<Json<Value>, ApiError> {
    let c = s.control;
    let d = blocking(move || c.dry_run(&op)).await?;
    let sites = s.control.sites();
    let by_id: std::collections::HashMap<&str, &dynkey::SiteRow> =
        sites.iter().map(|r| (r.id.as_str(), r)).collect();
    let rows: Vec<Value> = d
        .rows
        .iter()
        .filter_map(|r| {
            let mut row = super::reads::site_json(by_id.get(r.id.as_str())?);
            row["new_flags"] = r.new_flags.to_string().into();
            Some(row)
        })
        .collect();
    Ok(Json(json!({
        "dry_run": true,
        "queries": d.queries,
        "matched": d.matched,
        "changed": d.changed,
        "rendezvous": 0,
        "protected": d.protected,
        "rows": rows,
        "ids": d.ids,
    })))
}

/// `POST /sites/{id}`: one site's flags (`+p`, `-p`, `+pmf`).
pub async fn post_site(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    if !s.control.has_site(&id) {
        return Err(ApiError::not_found(&format!("no site with id {id:?}")));
    }
    let flags = text(body)?;
    let op = Op::site(id, flags.trim());
    if params.dry_run {
        return dry_run(&s, op).await;
    }
    let a = submit(&s, actor, params.timed(op)).await?;
    let mut m = applied(&a);
    m.insert("queries".into(), 0.into());
    m.insert("matched".into(), a.matched.into());
    Ok(Json(Value::Object(m)))
}

/// `PUT /params/{name}`: a class param value, one commit for all its bits.
pub async fn put_param(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    if s.control.param(&name).is_none() {
        return Err(ApiError::not_found(&format!("no param named {name:?}")));
    }
    let value = text(body)?;
    let a = submit(&s, actor, params.timed(Op::param(&name, value))).await?;
    let mut m = applied(&a);
    m.insert("param".into(), name.into());
    m.insert("value".into(), a.value.clone().unwrap_or_default().into());
    Ok(Json(Value::Object(m)))
}

/// `POST /keys`: `{"name": true, ...}`, all in one commit.
pub async fn post_keys(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    let body = raw(body)?;
    let bad_json = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "E_BAD_JSON", m);
    let map: serde_json::Map<String, Value> = serde_json::from_slice(&body).map_err(|e| {
        bad_json(format!(
            "expected a JSON object of key names to true or false: {e}"
        ))
    })?;
    let mut keys = Vec::with_capacity(map.len());
    for (name, v) in map {
        let on = v
            .as_bool()
            .ok_or_else(|| bad_json(format!("key {name:?}: expected true or false, found {v}")))?;
        keys.push((name, on));
    }
    let op = Op::keys(keys);
    let a = submit(&s, actor, params.timed(op)).await?;
    Ok(Json(Value::Object(applied(&a))))
}

/// `PUT /calls/{name}`: the name of one of the call's targets.
pub async fn put_call(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q.as_deref())?;
    if !s.control.calls().iter().any(|c| c.name == name) {
        return Err(ApiError::not_found(&format!(
            "no static call named {name:?}"
        )));
    }
    let target = text(body)?.trim().to_string();
    let a = submit(&s, actor, params.timed(Op::call(&name, &target))).await?;
    let mut m = applied(&a);
    m.insert("call".into(), name.into());
    m.insert("target".into(), target.into());
    Ok(Json(Value::Object(m)))
}
