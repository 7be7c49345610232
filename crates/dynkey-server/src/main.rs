//! dynkeyd: serves dynkey's HTTP control plane, with a demo service or the
//! sites of a JSON table.
//!
//! ```text
//! cargo run --release --bin dynkeyd                      # the demo
//! dynkeyd --sites table.json --listen 127.0.0.1:7070      # sites from data
//! dynkeyd --help                                         # every option and variable
//! ```
//!
//! `main` only reads the configuration ([`cli`]), starts things and maps the
//! outcome to an exit code: 0 after a clean shutdown (and for `--help`,
//! `--version`), 2 for bad arguments or a bad site table, 1 for a failure
//! while running.

mod cli;
mod demo_work;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use dynkey_server::{AppState, Limits, demo, router, serve, shutdown_signal, sites_file};

/// Why dynkeyd stopped early.
enum Failure {
    /// Bad input (arguments, environment, site table): exit code 2.
    Input(String),
    /// A failure while starting or running: exit code 1.
    Run(String),
}

fn main() -> ExitCode {
    let config = match cli::Args::try_parse().and_then(|a| a.resolve(|k| std::env::var(k).ok())) {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with code 0, errors to stderr with 2.
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(config) {
        Ok(()) => {
            eprintln!("dynkeyd: shut down");
            ExitCode::SUCCESS
        }
        Err(Failure::Input(msg)) => {
            eprintln!("dynkeyd: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Run(msg)) => {
            eprintln!("dynkeyd: {msg}");
            ExitCode::from(1)
        }
    }
}

/// Registers the sites (a table or the demo), then serves until a shutdown
/// signal.
fn run(config: cli::Config) -> Result<(), Failure> {
    let mut state = AppState::with_tokens(config.tokens.clone());
    state.browser = std::sync::Arc::new(config.browser.clone());
    if let Some(e) = state.control.config_error() {
        // dynkeyd exists to make changes: with a configuration that refuses
        // them, it does not start (a service that embeds the router serves
        // 503 E_CONFIG instead).
        return Err(Failure::Input(e.to_string()));
    }
    let _demo = match &config.sites {
        Some(path) => {
            let sites = sites_file::load(path, &state.control)
                .map_err(|e| Failure::Input(e.to_string()))?;
            eprintln!(
                "dynkeyd: registered {} sites from {}",
                sites.len(),
                path.display()
            );
            None
        }
        None => Some(
            demo::Demo::start(&state.control, config.workers, demo_work::demo_work)
                .map_err(|e| Failure::Run(format!("demo: {e}")))?,
        ),
    };
    // The state is replayed before the server listens: no request ever sees
    // a state without the journal's changes.
    if let Some(dir) = &config.state_dir {
        let notes = state
            .control
            .open_state_dir(dir, config.state_recover)
            .map_err(|e| Failure::Input(format!("--state-dir: {e}")))?;
        for n in notes {
            eprintln!("dynkeyd: {n}");
        }
        eprintln!(
            "dynkeyd: state in {} ({} local operations in force)",
            dir.display(),
            state.control.local_ops_in_force()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(format!("tokio: {e}")))?;
    runtime
        .block_on(async {
            #[cfg(feature = "fleet")]
            let _fleet = match config.fleet.clone() {
                Some(cfg) => Some(
                    dynkey_server::fleet::join(&mut state, cfg)
                        .await
                        .map_err(|e| std::io::Error::other(format!("fleet: {e}")))?,
                ),
                None => None,
            };
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let addr = listener.local_addr()?;
            announce(addr, &state, config.sites.is_none());
            serve(
                listener,
                router(state),
                Limits::default(),
                shutdown_signal(),
            )
            .await
        })
        .map_err(|e| Failure::Run(e.to_string()))
}

fn announce(addr: SocketAddr, state: &AppState, demo: bool) {
    let status = state.control.status().ok();
    let auth = if !state.tokens.is_empty() {
        " -H \"Authorization: Bearer $DYNKEY_TOKEN\""
    } else {
        ""
    };
    eprintln!(
        "dynkeyd: listening on http://{addr} ({} debug sites, code patching {}, {} rendezvous)",
        state.control.site_count(),
        match status.as_ref().map(|s| s.site_kind) {
            Some(dynkey::SiteKind::Atomic) => "off (atomic sites)",
            Some(_) => "on",
            None => "unknown",
        },
        status.as_ref().map_or("?", |s| s.method.as_str()),
    );
    if demo {
        eprintln!("dynkeyd: demo workers are running; try:");
    } else {
        eprintln!("dynkeyd: try:");
    }
    eprintln!("  curl{auth} -d 'module !virtio* +p' http://{addr}/control");
    eprintln!("  curl http://{addr}/control | grep -c '=p'");
    eprintln!("  curl{auth} -X PUT -d 0x1ff http://{addr}/params/drm.debug");
    eprintln!(
        "  (and: curl http://{addr}/metrics | grep dynkey_rendezvous_total; curl http://{addr}/keys)"
    );
    eprintln!("  the web page: http://{addr}/ui/");
}
