//! dynkeyd: serves dynkey's HTTP control plane, with a demo service or the
//! sites of a JSON table.
//!
//! ```text
//! cargo run --release --bin dynkeyd                      # the demo
//! dynkeyd --sites table.json --listen 127.0.0.1:7070      # sites from data
//! ```
//!
//! `main` only reads the configuration, starts things and maps the outcome
//! to an exit code: 0 after a clean shutdown, 2 for bad arguments or a bad
//! site table, 1 for a failure while running.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use dynkey::{static_branch_unlikely, static_call, static_key};
use dynkey_server::{AppState, Limits, demo, router, serve, shutdown_signal, sites_file};

static_key!(
    /// Demo workers verify each chunk's checksum twice (a feature flag to flip).
    pub static DEMO_VERIFY: bool = false
);

fn fnv32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ *b as u32).wrapping_mul(0x0100_0193)
    })
}

fn adler32(data: &[u8]) -> u32 {
    let (a, b) = data.iter().fold((1u32, 0u32), |(a, b), &x| {
        ((a + x as u32) % 65521, (b + a + x as u32) % 65521)
    });
    (b << 16) | a
}

static_call!(
    /// The demo's checksum (switch with `PUT /calls/DEMO_CHECKSUM`).
    pub static DEMO_CHECKSUM: fn(data: &[u8]) -> u32 = [fnv32, adler32]
);

fn demo_work(chunk: &[u8]) -> u32 {
    let sum = DEMO_CHECKSUM.get()(chunk);
    if static_branch_unlikely!(DEMO_VERIFY) {
        assert_eq!(
            sum,
            DEMO_CHECKSUM.get()(chunk),
            "checksums are deterministic"
        );
    }
    sum
}

const USAGE: &str = "\
usage: dynkeyd [--listen ADDR] [--sites FILE] [--token-file FILE] [--insecure] [--workers N]

  --listen ADDR       address to serve on (default 127.0.0.1:7070)
  --sites FILE        register the sites of a JSON site table (no demo then)
  --token-file FILE   require `Authorization: Bearer <token>` on mutating routes
                      (the token is the file's first line; DYNKEY_TOKEN also works)
  --insecure          allow a non-loopback --listen without a token
  --workers N         demo worker threads (default 2)

environment: DYNKEY_QUERY (applied at start, and again after --sites),
DYNKEY_SITES, DYNKEY_RENDEZVOUS, DYNKEY_QUEUE (see dynkey-text)";

struct Args {
    listen: SocketAddr,
    sites: Option<PathBuf>,
    token: Option<String>,
    insecure: bool,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        listen: "127.0.0.1:7070".parse().unwrap(),
        sites: None,
        token: None,
        insecure: false,
        workers: 2,
    };
    let mut token_file = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => a.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--sites" => a.sites = Some(value()?.into()),
            "--token-file" => token_file = Some(PathBuf::from(value()?)),
            "--insecure" => a.insecure = true,
            "--workers" => a.workers = value()?.parse().map_err(|e| format!("--workers: {e}"))?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    a.token = match token_file {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("--token-file {}: {e}", path.display()))?;
            Some(text.lines().next().unwrap_or("").trim().to_string())
        }
        None => std::env::var("DYNKEY_TOKEN")
            .ok()
            .map(|t| t.trim().to_string()),
    };
    if a.token.as_deref() == Some("") {
        return Err("the token is empty".into());
    }
    if !a.listen.ip().is_loopback() && a.token.is_none() && !a.insecure {
        return Err(format!(
            "refusing to serve {} without a token: anyone on the network could change flags; \
             give --token-file (or DYNKEY_TOKEN), or --insecure",
            a.listen
        ));
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("dynkeyd: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let state = AppState::new(args.token.clone());
    let _demo = match &args.sites {
        Some(path) => {
            match sites_file::load(path, &state.control) {
                Ok(sites) => eprintln!(
                    "dynkeyd: registered {} sites from {}",
                    sites.len(),
                    path.display()
                ),
                Err(e) => {
                    eprintln!("dynkeyd: {e}");
                    return ExitCode::from(2);
                }
            }
            None
        }
        None => match demo::Demo::start(&state.control, args.workers.max(1), demo_work) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("dynkeyd: demo: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dynkeyd: tokio: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        let addr = listener.local_addr()?;
        announce(addr, &state, args.sites.is_none());
        serve(
            listener,
            router(state),
            Limits::default(),
            shutdown_signal(),
        )
        .await
    });
    match result {
        Ok(()) => {
            eprintln!("dynkeyd: shut down");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dynkeyd: {e}");
            ExitCode::from(1)
        }
    }
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
}
