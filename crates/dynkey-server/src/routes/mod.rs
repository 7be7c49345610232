//! The HTTP API: one handler per route, grouped by what they touch.
//!
//! - `changes`: the mutating routes (queries, site toggles, params, keys,
//!   calls), each one operation for the engine, with `?ttl=` and (for
//!   queries) `?dry_run=1`;
//! - `state`: the layers, revoking, the audit log;
//! - `reads`: the listing, params, keys, metrics, health, info, fleet.
//!
//! Bodies are read raw, whatever the Content-Type (`curl -d` sends form
//! encoding; URL-decoding would turn `+p` into ` p`). Changes run on a
//! blocking thread: a change is short, but it takes locks, may wait for an
//! fsync shared with other requests, and for a rendezvous.

pub mod changes;
pub mod reads;
pub mod state;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

use crate::{ApiError, MAX_BODY};

/// The raw body, or an error for one that is too big or unreadable.
pub(crate) fn raw(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    let body = body.map_err(ApiError::body)?;
    if body.len() >= MAX_BODY {
        return Err(ApiError::too_big(body.len()));
    }
    Ok(body)
}

/// The raw body as UTF-8 text.
pub(crate) fn text(body: Result<Bytes, BytesRejection>) -> Result<String, ApiError> {
    let body = raw(body)?;
    std::str::from_utf8(&body)
        .map(str::to_owned)
        .map_err(ApiError::bad_encoding)
}

/// Runs a change on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, dynkey::Error> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// The parameters of a query string this API knows (`ttl`, `dry_run`,
/// `format`, `limit`, `before`); others are ignored.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub ttl: Option<Duration>,
    pub dry_run: bool,
    pub format: Option<String>,
    pub limit: Option<String>,
    pub before: Option<String>,
}

impl Params {
    /// Parses `q`; a bad `ttl` or `dry_run` is a 400.
    pub fn parse(q: Option<&str>) -> Result<Params, ApiError> {
        let mut p = Params::default();
        for pair in q.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "ttl" => {
                    p.ttl = Some(dynkey::parse_ttl(v).map_err(|e| {
                        ApiError::new(StatusCode::BAD_REQUEST, "E_BAD_TTL", e.to_string())
                    })?)
                }
                "dry_run" => {
                    p.dry_run = match v {
                        "1" | "true" | "" => true,
                        "0" | "false" => false,
                        _ => {
                            return Err(ApiError::new(
                                StatusCode::BAD_REQUEST,
                                "E_BAD_PARAM",
                                format!("dry_run={v:?}: expected 1 or 0"),
                            ));
                        }
                    }
                }
                "format" => p.format = Some(v.to_string()),
                "limit" => p.limit = Some(v.to_string()),
                "before" => p.before = Some(v.to_string()),
                _ => {}
            }
        }
        Ok(p)
    }

    /// Refuses a ttl (on routes where it means nothing, such as DELETE).
    pub fn no_ttl(&self) -> Result<(), ApiError> {
        match self.ttl {
            Some(_) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "E_BAD_TTL",
                "a ttl applies to changes; revoking takes none",
            )),
            None => Ok(()),
        }
    }

    /// `op` expiring after the ttl, if one was given.
    pub fn timed(&self, op: dynkey::Op) -> dynkey::Op {
        match self.ttl {
            Some(ttl) => op.expiring_at(std::time::SystemTime::now() + ttl),
            None => op,
        }
    }
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
