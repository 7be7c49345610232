//! The web page at `/ui/`: static files compiled into the binary.
//!
//! The page is plain HTML, CSS and JavaScript modules written by hand (no
//! build step, no framework), kept in `crates/dynkey-server/ui/` and
//! embedded with `include_bytes!`, so the Rust build never needs node and
//! the page works on a host with no internet: it loads nothing from
//! anywhere but the server that serves it.
//!
//! Every reply carries a strict Content-Security-Policy (scripts, styles,
//! images and requests from the page's own origin only; no inline script,
//! no framing, no form posts, no `<base>` rewrites) so that text from the
//! listing (format strings are whatever the service wrote) can never run as
//! code even if a bug let it into the markup. The page talks to the API
//! with relative URLs, so it works wherever the router is mounted
//! (`/ui/` on dynkeyd, `/debug/ui/` under `Router::nest("/debug", ..)`),
//! which is also why `/ui` redirects with a relative `Location`.
//!
//! Files change only with the binary: they are served with an `ETag` (a
//! hash of the bytes) and `Cache-Control: no-cache`, so a browser revalidates
//! and gets `304 Not Modified` until dynkeyd is upgraded.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::ApiError;

/// The policy of every page reply: nothing from anywhere but the origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    etag: u64,
}

/// FNV-1a, evaluated at compile time for the `ETag` of each file.
const fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../ui/", $name)),
            etag: fnv1a64(include_bytes!(concat!("../ui/", $name))),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the page; `index.html` is served at `/ui/`.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("text.js", JS),
    asset!("dom.js", JS),
    asset!("sites.js", JS),
    asset!("query.js", JS),
    asset!("controls.js", JS),
    asset!("state.js", JS),
    asset!("live.js", JS),
];

/// The page's routes: `/ui` (redirect), `/ui/` and `/ui/{file}`. They take
/// no state, so they merge into any router.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(redirect))
        .route("/ui/", get(index))
        .route("/ui/{file}", get(file))
}

/// `/ui` sends the browser to `/ui/` (relative, so it works when nested),
/// where the page's relative links resolve.
async fn redirect() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, HeaderValue::from_static("ui/"))],
    )
        .into_response()
}

async fn index(headers: HeaderMap) -> Response {
    serve(&ASSETS[0], &headers)
}

async fn file(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => serve(a, &headers),
        None => ApiError::not_found(&format!("no file {name:?} in the web page")).into_response(),
    }
}

fn serve(asset: &Asset, req: &HeaderMap) -> Response {
    let etag = format!("\"{:016x}\"", asset.etag);
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn app() -> Router {
        crate::router(crate::AppState::new(None))
    }

    async fn send(app: Router, uri: &str, etag: Option<&str>) -> (Response, Vec<u8>) {
        let mut req = Request::get(uri);
        if let Some(e) = etag {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (Response::from_parts(parts, Body::empty()), bytes.to_vec())
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn header_of(res: &Response, name: header::HeaderName) -> &str {
        res.headers()
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    #[test]
    fn ui_serves_the_page_with_a_strict_policy() {
        block_on(async {
            let (res, body) = send(app(), "/ui/", None).await;
            assert_eq!(res.status(), StatusCode::OK);
            assert_eq!(
                header_of(&res, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert_eq!(
                header_of(&res, header::CONTENT_SECURITY_POLICY),
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(header_of(&res, header::CACHE_CONTROL), "no-cache");
            assert_eq!(header_of(&res, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
            let html = String::from_utf8(body).unwrap();
            assert!(html.contains(r#"<script type="module" src="app.js">"#));
            // Nothing but 'self' anywhere in the policy; no inline scripts.
            for directive in CONTENT_SECURITY_POLICY.split(';') {
                let sources: Vec<&str> = directive.split_whitespace().skip(1).collect();
                assert!(
                    sources == ["'self'"] || sources == ["'none'"],
                    "{directive}"
                );
            }
            assert!(!html.contains("<script>"), "inline script in index.html");
            assert!(!html.contains("style=\""), "inline style in index.html");
        });
    }

    #[test]
    fn ui_without_slash_redirects_relative() {
        block_on(async {
            let (res, _) = send(app(), "/ui", None).await;
            assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
            assert_eq!(header_of(&res, header::LOCATION), "ui/");
        });
    }

    #[test]
    fn every_file_is_served_with_its_type_and_revalidates() {
        block_on(async {
            for a in ASSETS {
                let (res, body) = send(app(), &format!("/ui/{}", a.name), None).await;
                assert_eq!(res.status(), StatusCode::OK, "{}", a.name);
                assert_eq!(header_of(&res, header::CONTENT_TYPE), a.content_type);
                assert_eq!(body, a.body, "{}", a.name);
                let etag = header_of(&res, header::ETAG).to_string();
                let (again, body) = send(app(), &format!("/ui/{}", a.name), Some(&etag)).await;
                assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{}", a.name);
                assert!(body.is_empty());
                assert_eq!(
                    header_of(&again, header::CONTENT_SECURITY_POLICY),
                    CONTENT_SECURITY_POLICY
                );
                let (stale, _) = send(app(), &format!("/ui/{}", a.name), Some("\"0\"")).await;
                assert_eq!(stale.status(), StatusCode::OK);
            }
            let (res, body) = send(app(), "/ui/nope.js", None).await;
            assert_eq!(res.status(), StatusCode::NOT_FOUND);
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["errors"][0]["category"], "E_NOT_FOUND");
        });
    }

    #[test]
    fn every_module_the_page_imports_is_served() {
        // A module missing from ASSETS would 404 in the browser only.
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(a.body).unwrap();
            for line in text.lines() {
                let Some(rest) = line.split(" from './").nth(1) else {
                    continue;
                };
                let name = rest.split('\'').next().unwrap();
                assert!(
                    ASSETS.iter().any(|b| b.name == name),
                    "{} imports {name}, which is not in ASSETS",
                    a.name
                );
            }
        }
        let on_disk: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/ui"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        for name in &on_disk {
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "ui/{name} is not served (add it to ASSETS)"
            );
        }
    }

    #[test]
    fn works_when_nested() {
        block_on(async {
            let app = Router::new().nest("/debug", app());
            let (res, _) = send(app.clone(), "/debug/ui", None).await;
            assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
            // Relative to /debug/ui, `ui/` is /debug/ui/.
            assert_eq!(header_of(&res, header::LOCATION), "ui/");
            let (res, _) = send(app.clone(), "/debug/ui/", None).await;
            assert_eq!(res.status(), StatusCode::OK);
            let (res, _) = send(app, "/debug/ui/app.js", None).await;
            assert_eq!(header_of(&res, header::CONTENT_TYPE), JS);
        });
    }
}
