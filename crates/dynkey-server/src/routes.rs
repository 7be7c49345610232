//! The HTTP API of DESIGN.md: one handler per route.
//!
//! Bodies of `POST /control`, `PUT /params` and `PUT /calls` are read raw,
//! whatever the Content-Type (`curl -d` sends form encoding; URL-decoding
//! would turn `+p` into ` p`). Changes run on a blocking thread: a commit is
//! short, but it takes locks and may wait for a rendezvous.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::{ApiError, AppState, MAX_BODY};

/// The raw body, or an error for one that is too big or unreadable.
fn raw(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    let body = body.map_err(ApiError::body)?;
    if body.len() >= MAX_BODY {
        return Err(ApiError::too_big(body.len()));
    }
    Ok(body)
}

/// The raw body as UTF-8 text.
fn text(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let body = raw(body)?;
    std::str::from_utf8(&body)
        .map(str::to_owned)
        .map_err(ApiError::bad_encoding)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, dynkey::Error> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// `POST /control`: a body of dyndbg queries, all or nothing.
pub async fn post_control(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = raw(body)?;
    let c = s.control;
    let r = blocking(move || c.exec(&body)).await?;
    Ok(Json(
        json!({ "queries": r.queries, "matched": r.matched, "changed": r.changed, "rendezvous": r.rendezvous }),
    ))
}

/// `GET /control`: the listing (text), or JSON with `?format=json`.
pub async fn get_control(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let format = q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("format="))
        .unwrap_or("text");
    match format {
        "text" => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            s.control.listing_string(),
        )
            .into_response()),
        "json" => {
            let status = s.control.status().map_err(|e| ApiError::internal(&e))?;
            let sites: Vec<Value> = s
                .control
                .sites()
                .into_iter()
                .map(|r| {
                    json!({
                        "module": r.module, "file": r.file, "func": r.func, "line": r.line,
                        "format": r.format, "class": r.class, "flags": r.flags.to_string(), "kind": r.kind.as_str(),
                    })
                })
                .collect();
            Ok(Json(json!({
                "rendezvous_method": status.method.as_str(),
                "site_kind": status.site_kind.as_str(),
                "sites": sites,
            }))
            .into_response())
        }
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "E_BAD_FORMAT",
            format!("unknown format {other:?}; expected text or json"),
        )),
    }
}

/// `PUT /params/{name}`: a class param value, one commit for all its bits.
pub async fn put_param(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    if s.control.param(&name).is_none() {
        return Err(ApiError::not_found(&format!("no param named {name:?}")));
    }
    let value = text(body)?;
    let c = s.control;
    let r = blocking(move || c.set_param(&name, value)).await?;
    Ok(Json(
        json!({ "param": r.param, "value": r.value, "changed": r.changed, "rendezvous": r.rendezvous }),
    ))
}

/// `GET /params/{name}`: the last written value.
pub async fn get_param(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let v = s
        .control
        .param(&name)
        .ok_or_else(|| ApiError::not_found(&format!("no param named {name:?}")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], v).into_response())
}

/// `GET /keys`: static keys and static calls.
pub async fn get_keys(State(s): State<AppState>) -> Json<Value> {
    let keys: Vec<Value> = s
        .control
        .keys()
        .into_iter()
        .map(|k| json!({ "name": k.name, "enabled": k.enabled, "sites": k.sites, "kind": k.kind.as_str(), "defined_at": k.defined_at }))
        .collect();
    let calls: Vec<Value> = s
        .control
        .calls()
        .into_iter()
        .map(|c| json!({ "name": c.name, "target": c.target, "targets": c.targets, "defined_at": c.defined_at }))
        .collect();
    Json(json!({ "keys": keys, "calls": calls }))
}

/// `POST /keys`: `{"name": true, ...}`, all in one commit.
pub async fn post_keys(
    State(s): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = raw(body)?;
    let bad_json = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "E_BAD_JSON", m);
    let map: serde_json::Map<String, Value> = serde_json::from_slice(&body).map_err(|e| {
        bad_json(format!(
            "expected a JSON object of key names to booleans: {e}"
        ))
    })?;
    let mut changes = Vec::with_capacity(map.len());
    for (name, v) in map {
        let on = v
            .as_bool()
            .ok_or_else(|| bad_json(format!("key {name:?}: expected true or false, found {v}")))?;
        changes.push((name, on));
    }
    let c = s.control;
    let r = blocking(move || c.set_keys(changes.iter().map(|(n, on)| (n.as_str(), *on)))).await?;
    Ok(Json(
        json!({ "changed": r.changed, "rendezvous": r.rendezvous }),
    ))
}

/// `PUT /calls/{name}`: the name of one of the call's targets.
pub async fn put_call(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    if !s.control.calls().iter().any(|c| c.name == name) {
        return Err(ApiError::not_found(&format!(
            "no static call named {name:?}"
        )));
    }
    let target = text(body)?.trim().to_string();
    let c = s.control;
    let (n, t) = (name.clone(), target.clone());
    let r = blocking(move || c.set_call(&n, &t)).await?;
    Ok(Json(
        json!({ "call": name, "target": target, "changed": r.changed, "rendezvous": r.rendezvous }),
    ))
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn get_metrics(State(s): State<AppState>) -> Response {
    let text = crate::metrics::encode(&s.metrics);
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response()
}

/// `GET /healthz`: liveness.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Known paths, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "E_METHOD",
        "method not allowed on this route",
    )
}
