//! dynkeyd: the HTTP control plane of dynkey.
//!
//! A library, so a service can mount [`router`] inside its own axum app, and
//! a binary (`dynkeyd`) that serves it with a demo or a site file. The API
//! (see `proto/openapi.yaml`):
//!
//! | route | what |
//! |---|---|
//! | `POST /control` | dyndbg queries, all or nothing, one rendezvous |
//! | `GET /control` | the listing (`?format=json` for JSON) |
//! | `PUT /params/{name}`, `GET /params/{name}` | class params |
//! | `GET /keys`, `POST /keys` | static keys and calls; set keys by name |
//! | `PUT /calls/{name}` | switch a static call's target |
//! | `GET /metrics`, `GET /healthz` | Prometheus, liveness |
//!
//! Embedding in an existing app:
//!
//! ```no_run
//! # async fn app() {
//! let dynkey = dynkey_server::router(dynkey_server::AppState::new(None));
//! let app = axum::Router::new().nest("/debug", dynkey);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! [`serve`] is the hardened server dynkeyd uses (header-read timeout,
//! header size limit, graceful shutdown), which plain `axum::serve` lacks.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod auth;
pub mod demo;
mod error;
pub mod metrics;
mod routes;
mod serve;
pub mod sites_file;
mod ui;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};

pub use auth::constant_time_eq;
pub use error::{ApiError, ErrorEntry, MAX_BODY};
pub use serve::{Limits, serve, shutdown_signal};

/// What every handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The process's dynkey.
    pub control: dynkey::Control,
    /// Bearer token for mutating routes (None: no authentication).
    pub token: Option<Arc<str>>,
    /// The metrics registry `GET /metrics` encodes.
    pub metrics: Arc<prometheus::Registry>,
    /// Limit on the time to answer one request.
    pub request_timeout: Duration,
}

impl AppState {
    /// State for this process's dynkey, with an optional token.
    pub fn new(token: Option<String>) -> AppState {
        let control = dynkey::control();
        AppState {
            control,
            token: token.map(Into::into),
            metrics: Arc::new(metrics::registry(control)),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The API as a router (mount it anywhere with `nest`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/control",
            get(routes::get_control).post(routes::post_control),
        )
        .route(
            "/params/{name}",
            get(routes::get_param).put(routes::put_param),
        )
        .route("/keys", get(routes::get_keys).post(routes::post_keys))
        .route("/calls/{name}", put(routes::put_call))
        .route("/metrics", get(routes::get_metrics))
        .route("/healthz", get(routes::healthz))
        .merge(ui::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Inner to outer: the token check sees only routed requests; the
        // body limit lets handlers (not the framework) answer 413 as JSON
        // for bodies a little over the 4 KiB limit; the timeout is outermost
        // so it bounds everything, body reading included.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            mutating_needs_token,
        ))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_timeout,
        ))
        .with_state(state)
}

/// Every method but GET and HEAD mutates: it needs the token.
async fn mutating_needs_token(
    state: axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    use axum::http::Method;
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return Ok(next.run(req).await);
    }
    auth::require_token(state, req, next).await
}

async fn request_timeout(
    state: axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "E_TIMEOUT",
            "request took too long",
        )
        .into_response(),
    }
}
