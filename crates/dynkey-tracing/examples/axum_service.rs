//! An axum service that logs with tracing, with dynkey as its filter and
//! dynkey's control plane mounted at `/debug`.
//!
//! ```text
//! cargo run -p dynkey-tracing --example axum_service -- --listen 127.0.0.1:8080
//! curl http://127.0.0.1:8080/debug/control   # the handler's sites, before any request
//! curl http://127.0.0.1:8080/                # 200; stderr: the handler's INFO line only
//! curl -d 'module tower_http* class DEBUG +p' http://127.0.0.1:8080/debug/control
//! curl http://127.0.0.1:8080/                # stderr: tower-http's request and response lines too
//! curl -d 'module tower_http* class DEBUG -p' http://127.0.0.1:8080/debug/control
//! curl -d 'func index class DEBUG +p' http://127.0.0.1:8080/debug/control   # the handler's debug lines
//! ```
//!
//! The handler logs with `dynkey_tracing`'s macros (compiled-in sites,
//! listed before they run, a NOP while off); tower-http's `TraceLayer` logs
//! with tracing's own, and `dynkey_tracing::layer()` lists its callsites as
//! rows of kind `tracing` once they ran. `RUST_LOG` is the baseline
//! (unset: INFO). `--listen 127.0.0.1:0` picks a free port; the address
//! is printed on stdout as `listening on http://ADDR`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::get;
use dynkey_tracing::{debug, info};
use tower_http::trace::TraceLayer;
use tracing_subscriber::prelude::*;

/// Requests served.
static SERVED: AtomicU64 = AtomicU64::new(0);

/// `GET /`.
async fn index() -> &'static str {
    // Relaxed: a counter for the log line, nothing is ordered by it.
    let n = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    debug!(request = n, "rendering the index");
    let body = "hello from axum_service\n";
    debug!(bytes = body.len(), "rendered");
    info!(request = n, "served the index");
    body
}

/// The app: the service's own routes, traced by tower-http.
fn app() -> Router {
    Router::new()
        .route("/", get(index))
        .layer(TraceLayer::new_for_http())
}

fn listen_address() -> Result<SocketAddr, String> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:8080".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = args.next().ok_or("--listen needs an address")?,
            _ => {
                return Err(format!(
                    "unknown argument {a:?}; usage: axum_service [--listen ADDR]"
                ));
            }
        }
    }
    listen
        .parse()
        .map_err(|e| format!("--listen {listen:?}: {e}"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let listen = match listen_address() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    // The RUST_LOG baseline; a bad directive is reported and skipped.
    if let Err(e) = dynkey_tracing::init() {
        eprintln!("axum_service: {e}");
    }
    // The service's subscriber, dynkey as the filter of its output.
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(dynkey_tracing::layer()),
        )
        .init();

    // The control plane at /debug (loopback, no token: a service listening
    // elsewhere must configure one).
    let app = dynkey_server::mount(app(), "/debug", dynkey_server::AppState::new(None));
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("axum_service: cannot listen on {listen}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("listening on http://{addr}"),
        Err(e) => {
            eprintln!("axum_service: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    let served = dynkey_server::serve(
        listener,
        app,
        Default::default(),
        dynkey_server::shutdown_signal(),
    )
    .await;
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum_service: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
