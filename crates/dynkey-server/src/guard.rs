//! Browser safety: a web page must not drive a dynkeyd on the developer's
//! machine.
//!
//! dynkeyd listens on loopback, often without a token, where a browser runs
//! too. Any page can send a "simple" cross-origin POST (`text/plain`) to
//! `http://127.0.0.1:7070/control`, and a DNS-rebinding page (its own name
//! re-pointed at 127.0.0.1) can read the replies. Two checks, in this order,
//! before the token and the routing:
//!
//! 1. **Host**: a request whose `Host` is a DNS name other than `localhost`
//!    or an allowed host gets 421 `E_HOST`. Any IP literal, with any port,
//!    is accepted: rebinding needs a name, and Prometheus or a container
//!    reached by address must keep working. No `Host` at all is accepted.
//! 2. **Origin**: a mutating request (any method but GET, HEAD, OPTIONS)
//!    whose `Origin` is not the request's own origin (`http://` or
//!    `https://` plus its accepted `Host`) or an allowed origin gets 403
//!    `E_ORIGIN`; `Origin: null` is foreign. Requests without `Origin`
//!    (curl, Prometheus, other services) are unaffected.
//!
//! Both are on by default in [`router`](crate::router), for dynkeyd and for
//! services that mount it.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::{ApiError, AppState};

/// Which hosts and origins a browser may use besides the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserPolicy {
    /// Off only when the embedder checks hosts and origins itself.
    pub disabled: bool,
    /// DNS names accepted in `Host` besides `localhost` (case-insensitive,
    /// without port).
    pub allowed_hosts: Vec<String>,
    /// Origins accepted on mutating requests besides the request's own
    /// (`scheme://host[:port]`, exactly as browsers send them).
    pub allowed_origins: Vec<String>,
}

impl BrowserPolicy {
    /// Whether `host` (a `Host` header value) is acceptable.
    pub fn host_ok(&self, host: &str) -> bool {
        let name = strip_port(host);
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok()
            || name.eq_ignore_ascii_case("localhost")
            || self
                .allowed_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether `origin` may mutate, for a request whose `Host` is `host`.
    pub fn origin_ok(&self, origin: &str, host: Option<&str>) -> bool {
        if self.allowed_origins.iter().any(|o| o == origin) {
            return true;
        }
        let Some(host) = host else { return false };
        ["http://", "https://"].iter().any(|scheme| {
            origin
                .strip_prefix(scheme)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
        })
    }
}

/// `host:port` without the port (`[::1]:80` keeps its brackets).
fn strip_port(host: &str) -> &str {
    if let Some(end) = host.strip_prefix('[').and_then(|h| h.find(']')) {
        return &host[..end + 2];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The middleware.
pub(crate) async fn check(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let policy = &state.browser;
    if policy.disabled {
        return Ok(next.run(req).await);
    }
    let host = match req.headers().get(header::HOST).map(|h| h.to_str()) {
        None => None,
        Some(Ok(h)) if policy.host_ok(h) => Some(h.to_string()),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "E_HOST",
                "this Host is not served here: use an IP address, localhost or an allowed host \
                 (--allowed-host)",
            ));
        }
    };
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating && let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .is_ok_and(|o| policy.origin_ok(o, host.as_deref()));
        if !ok {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "E_ORIGIN",
                "changes from another origin are refused (a web page cannot drive dynkeyd); \
                 allow it with --allowed-origin",
            ));
        }
    }
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_by_address_localhost_or_allowed() {
        let p = BrowserPolicy {
            allowed_hosts: vec!["dynkey.internal".into()],
            ..BrowserPolicy::default()
        };
        for ok in [
            "127.0.0.1:7070",
            "127.0.0.1",
            "10.1.2.3:9",
            "[::1]:7070",
            "[::1]",
            "localhost:7070",
            "LOCALHOST",
            "dynkey.internal:80",
            "DYNKEY.internal",
        ] {
            assert!(p.host_ok(ok), "{ok} is accepted");
        }
        for bad in [
            "evil.example:7070",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "internal",
            "",
        ] {
            assert!(!p.host_ok(bad), "{bad} is refused");
        }
    }

    #[test]
    fn origins_must_be_the_requests_own_or_allowed() {
        let p = BrowserPolicy {
            allowed_origins: vec!["http://ui.example:8080".into()],
            ..BrowserPolicy::default()
        };
        let host = Some("127.0.0.1:7070");
        assert!(p.origin_ok("http://127.0.0.1:7070", host));
        assert!(
            p.origin_ok("https://127.0.0.1:7070", host),
            "behind a TLS proxy"
        );
        assert!(p.origin_ok("http://ui.example:8080", host));
        assert!(
            !p.origin_ok("http://127.0.0.1:7071", host),
            "another port is another origin"
        );
        assert!(!p.origin_ok("http://evil.example", host));
        assert!(!p.origin_ok("null", host));
        assert!(
            !p.origin_ok("http://127.0.0.1:7070", None),
            "no Host: only allowed origins"
        );
    }
}
