//! The one error shape of every route: status code plus
//! `{"errors":[{"query","category","offset","message"}]}`.
//!
//! Client mistakes (4xx) are answered precisely and not logged as errors;
//! internal failures (5xx) show the client a generic message while the
//! detail goes to the server's log.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One entry of an error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorEntry {
    /// Index of the query (0 where it does not apply).
    pub query: usize,
    /// `E_*` category.
    pub category: &'static str,
    /// Byte offset in the body (0 where it does not apply).
    pub offset: usize,
    /// What a person can act on.
    pub message: String,
}

/// An error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// At least one entry.
    pub errors: Vec<ErrorEntry>,
}

#[derive(Serialize)]
struct Body<'a> {
    errors: &'a [ErrorEntry],
}

impl ApiError {
    /// One error with no query or offset.
    pub fn new(status: StatusCode, category: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            errors: vec![ErrorEntry {
                query: 0,
                category,
                offset: 0,
                message: message.into(),
            }],
        }
    }

    /// 404 for a name in the path.
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "E_NOT_FOUND", what)
    }

    /// 400 for a body that is not UTF-8, with the offset of the first bad byte.
    pub fn bad_encoding(e: std::str::Utf8Error) -> ApiError {
        let mut err = ApiError::new(
            StatusCode::BAD_REQUEST,
            "E_BAD_ENCODING",
            format!("body is not UTF-8 at byte {}", e.valid_up_to()),
        );
        err.errors[0].offset = e.valid_up_to();
        err
    }

    /// 413 for bodies of [`MAX_BODY`] bytes or more.
    pub fn too_big(len: usize) -> ApiError {
        let mut err = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "E_TOO_BIG",
            format!(
                "body of {len} bytes; expected fewer than {} bytes",
                MAX_BODY
            ),
        );
        err.errors[0].offset = MAX_BODY - 1;
        err
    }

    /// 500, with a generic message (the detail is logged).
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        eprintln!("dynkeyd: internal error: {detail}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E_INTERNAL",
            "internal error; see the server log",
        )
    }

    /// The body could not be read.
    pub fn body(rejection: BytesRejection) -> ApiError {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                let mut e = ApiError::too_big(0);
                e.errors[0].message =
                    format!("body of more than 64 KiB; expected fewer than {MAX_BODY} bytes");
                e
            }
            status => ApiError::new(status, "E_BAD_REQUEST", rejection.body_text()),
        }
    }
}

/// Bodies of this size or more are refused (the kernel's 4096-byte limit).
pub use dynkey::MAX_BODY;

impl From<dynkey::Error> for ApiError {
    fn from(e: dynkey::Error) -> ApiError {
        use dynkey::Error as E;
        let status = match &e {
            E::Query(errs) => {
                let status = if errs.iter().any(|q| q.category() == "E_TOO_BIG") {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                };
                let errors = errs
                    .iter()
                    .map(|q| ErrorEntry {
                        query: q.query,
                        category: q.category(),
                        offset: q.offset,
                        message: q.message().to_string(),
                    })
                    .collect();
                return ApiError { status, errors };
            }
            E::UnknownParam(_) | E::UnknownCall(_) | E::UnknownSite(_) | E::UnknownOperation(_) => {
                StatusCode::NOT_FOUND
            }
            E::NotRevocable(_) => StatusCode::CONFLICT,
            // The configuration refuses every change; a full layer refuses
            // new ones: both say what to do, and neither is the client's fault.
            E::Config(_) | E::StateFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            // Applied (code written, states published), but some thread
            // may lag: say so, so clients do not retry blindly.
            e if e.applied() => {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    e.category(),
                    format!("applied, but the rendezvous did not complete: {e}"),
                );
            }
            E::Journal(_) | E::State(_) => {
                eprintln!("dynkeyd: {e}");
                StatusCode::SERVICE_UNAVAILABLE
            }
            E::Text(_) => return ApiError::internal(&e),
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.category(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(Body {
                errors: &self.errors,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}
