//! The routes that only read: the listing, params, keys, metrics, health,
//! what the server is (`/info`, never behind a token: the web page asks it
//! whether it needs one) and its fleet view.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Params;
use crate::{ApiError, AppState};

/// One site row of the JSON listing.
pub(crate) fn site_json(r: &dynkey::SiteRow) -> Value {
    json!({
        "id": r.id, "module": r.module, "file": r.file, "func": r.func, "line": r.line,
        "format": r.format, "class": r.class, "flags": r.flags.to_string(), "kind": r.kind.as_str(),
    })
}

/// `GET /control`: the listing (text), or JSON with `?format=json`.
pub async fn get_control(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(q.as_deref())?;
    match params.format.as_deref().unwrap_or("text") {
        "text" => Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            s.control.listing_string(),
        )
            .into_response()),
        "json" => {
            let status = s.control.status().map_err(ApiError::from)?;
            let sites: Vec<Value> = s.control.sites().iter().map(site_json).collect();
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

/// `GET /params/{name}`: the stored value.
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

/// `GET /params`: every param, its value, kind, classes, modules and flags.
pub async fn get_params(State(s): State<AppState>) -> Json<Value> {
    let params: Vec<Value> = s
        .control
        .param_infos()
        .into_iter()
        .map(|p| {
            json!({ "name": p.name, "value": p.value, "kind": p.kind, "classes": p.classes,
                    "modules": p.modules, "flags": p.flags.to_string() })
        })
        .collect();
    Json(json!({ "params": params }))
}

/// `GET /keys`: static keys and static calls.
pub async fn get_keys(State(s): State<AppState>) -> Json<Value> {
    let keys: Vec<Value> = s
        .control
        .keys()
        .into_iter()
        .map(|k| {
            json!({ "name": k.name, "module": k.module, "enabled": k.enabled, "sites": k.sites,
                    "kind": k.kind.as_str(), "defined_at": k.defined_at })
        })
        .collect();
    let calls: Vec<Value> = s
        .control
        .calls()
        .into_iter()
        .map(|c| json!({ "name": c.name, "target": c.target, "targets": c.targets, "defined_at": c.defined_at }))
        .collect();
    Json(json!({ "keys": keys, "calls": calls }))
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn get_metrics(State(s): State<AppState>) -> Response {
    let text = crate::metrics::encode(&s.metrics);
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response()
}

/// `GET /healthz`: 200 when changes can be made; 503 `E_CONFIG` when the
/// `DYNKEY_*` configuration refuses them.
pub async fn healthz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    match s.control.config_error() {
        Some(e) => Err(e.into()),
        None => Ok(Json(json!({ "status": "ok" }))),
    }
}

/// `GET /info`: what this server is, for the web page (no token needed).
pub async fn info(State(s): State<AppState>) -> Json<Value> {
    let status = s.control.status().ok();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "token_required": !s.tokens.is_empty(),
        "rendezvous_method": status.as_ref().map(|s| s.method.as_str()),
        "site_kind": status.as_ref().map(|s| s.site_kind.as_str()),
        "fleet": s.fleet.is_some(),
        "durable": s.control.durable(),
    }))
}

/// `GET /fleet`: the instance's fleet view, or `{"enabled": false}`.
pub async fn fleet(State(s): State<AppState>) -> Json<Value> {
    match &s.fleet {
        Some(view) => Json(view()),
        None => Json(json!({ "enabled": false })),
    }
}
