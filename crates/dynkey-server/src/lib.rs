//! dynkeyd: the HTTP control plane of dynkey.
//!
//! A library, so a service can mount [`router`] inside its own axum app, and
//! a binary (`dynkeyd`) that serves it with a demo or a site file. The API
//! (see `proto/openapi.yaml`):
//!
//! | route | what |
//! |---|---|
//! | `POST /control` | dyndbg queries, all or nothing, one rendezvous (`?ttl=`, `?dry_run=1`) |
//! | `GET /control` | the listing (`?format=json` for JSON, with site ids) |
//! | `POST /sites/{id}` | one site's flags (`+p`, `-p`) |
//! | `GET /params`, `PUT /params/{name}`, `GET /params/{name}` | class params |
//! | `GET /keys`, `POST /keys` | static keys and calls; set keys by name |
//! | `PUT /calls/{name}` | switch a static call's target |
//! | `GET /state`, `DELETE /state/ops/{id}`, `DELETE /state/ops` | the layers; revoke |
//! | `GET /audit` | who changed what, newest first |
//! | `GET /info`, `GET /fleet` | what this server is; its fleet view |
//! | `GET /metrics`, `GET /healthz` | Prometheus; 503 when the configuration refuses changes |
//! | `GET /ui/` | the web page |
//!
//! Embedding in an existing app:
//!
//! ```no_run
//! # async fn app() {
//! let dynkey = dynkey_server::router(dynkey_server::AppState::new(None));
//! let app = axum::Router::new().nest("/debug", dynkey);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! // dynkey_server::serve keeps the header-read timeout, the header size
//! // limit, graceful shutdown and the client addresses the audit shows.
//! dynkey_server::serve(listener, app, Default::default(), dynkey_server::shutdown_signal())
//!     .await
//!     .unwrap();
//! # }
//! ```
//!
//! What the router itself keeps wherever it is mounted: the request
//! timeout, the body limit, the token check, and the browser checks (Host
//! and Origin, see [`BrowserPolicy`]). What only [`serve`] gives (plain
//! `axum::serve` lacks it): a header-read timeout (a client that sends half
//! a header is dropped after 5 s), a header size limit (16 KiB), graceful
//! shutdown, and `ConnectInfo` (without it the audit's `from` is null).
//! dynkeyd also refuses to listen off loopback without a token; a service
//! that mounts the router must make that choice itself.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod applier;
mod auth;
pub mod demo;
mod error;
#[cfg(feature = "fleet")]
pub mod fleet;
mod guard;
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
use axum::routing::{delete, get, post, put};

pub use auth::{Token, parse_tokens};
pub use error::{ApiError, ErrorEntry, MAX_BODY};
pub use guard::BrowserPolicy;
pub use serve::{Limits, serve, shutdown_signal};

/// The fleet view `GET /fleet` shows (the fleet crate provides it).
pub type FleetView = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The process's dynkey.
    pub control: dynkey::Control,
    /// Named bearer tokens (empty: no authentication).
    pub tokens: Arc<[Token]>,
    /// The metrics registry `GET /metrics` encodes.
    pub metrics: Arc<prometheus::Registry>,
    /// Limit on the time to answer one request.
    pub request_timeout: Duration,
    /// Which hosts and origins browsers may use.
    pub browser: Arc<BrowserPolicy>,
    /// The fleet view, when this instance is in a fleet.
    pub fleet: Option<FleetView>,
    /// The thread that applies mutating requests in batches.
    applier: Arc<applier::Applier>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("tokens", &self.tokens)
            .field("browser", &self.browser)
            .field("fleet", &self.fleet.is_some())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for this process's dynkey, with an optional token (named
    /// `default`).
    pub fn new(token: Option<String>) -> AppState {
        let tokens = token
            .map(|t| Token::new("default", t))
            .into_iter()
            .collect();
        AppState::with_tokens(tokens)
    }

    /// State for this process's dynkey, with named tokens.
    pub fn with_tokens(tokens: Vec<Token>) -> AppState {
        let control = dynkey::control();
        AppState {
            control,
            tokens: tokens.into(),
            metrics: Arc::new(metrics::registry(control)),
            request_timeout: Duration::from_secs(10),
            browser: Arc::new(BrowserPolicy::default()),
            fleet: None,
            applier: applier::Applier::start(control),
        }
    }
}

/// Mounts the API under `prefix` (such as `/debug`) in `app`: `nest`, plus
/// the bare `prefix/`, which `nest` leaves to the app's own fallback, so
/// that every miss under the prefix answers with the JSON error shape.
pub fn mount(app: Router, prefix: &str, state: AppState) -> Router {
    let prefix = prefix.trim_end_matches('/');
    app.nest(prefix, router(state.clone())).route(
        &format!("{prefix}/"),
        axum::routing::any(routes::not_found).with_state(state),
    )
}

/// The API as a router (mount it with [`mount`], or `nest`).
pub fn router(state: AppState) -> Router {
    use routes::{changes, reads, state as st};
    Router::new()
        .route(
            "/control",
            get(reads::get_control).post(changes::post_control),
        )
        .route("/sites/{id}", post(changes::post_site))
        .route("/params", get(reads::get_params))
        .route(
            "/params/{name}",
            get(reads::get_param).put(changes::put_param),
        )
        .route("/keys", get(reads::get_keys).post(changes::post_keys))
        .route("/calls/{name}", put(changes::put_call))
        .route("/state", get(st::get_state))
        .route("/state/ops", delete(st::revoke_all))
        .route("/state/ops/{id}", delete(st::revoke_one))
        .route("/audit", get(st::get_audit))
        .route("/info", get(reads::info))
        .route("/fleet", get(reads::fleet))
        .route("/metrics", get(reads::get_metrics))
        .route("/healthz", get(reads::healthz))
        .route("/", get(routes::not_found))
        .merge(ui::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        // Inner to outer: the token check names the actor for the audit
        // and refuses what needs a token; the browser checks (Host, then
        // Origin) run before it, as they must run before anything looks at
        // a request a web page may have sent; the body limit lets handlers
        // (not the framework) answer 413 as JSON for bodies a little over
        // the 4 KiB limit; the timeout is outermost so it bounds
        // everything, body reading included.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), guard::check))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_timeout,
        ))
        .with_state(state)
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
