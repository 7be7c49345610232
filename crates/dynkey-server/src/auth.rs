//! Bearer tokens, with names.
//!
//! With tokens configured, every mutating route, and `GET /state` and
//! `GET /audit` (they name tokens and client addresses), need
//! `Authorization: Bearer <token>`. Tokens have names, so the audit says
//! who did what: a token file holds one `NAME:TOKEN` per line; a line
//! without `:` is a token named `default` (so a bare token that contains a
//! `:` needs a name in front of it). Blank lines and lines starting with
//! `#` are skipped.
//!
//! Every request that reaches a handler carries an [`Actor`]: the name of
//! the token it used (`anonymous` without tokens) and the client's address
//! when the server knows it (axum's `ConnectInfo`, which
//! [`serve`](crate::serve) provides).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use dynkey::Actor;
use subtle::ConstantTimeEq;

use crate::{ApiError, AppState};

/// A named token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Its name, as the audit shows it.
    pub name: String,
    secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({:?}, <redacted>)", self.name)
    }
}

impl Token {
    /// A token called `name`.
    pub fn new(name: impl Into<String>, secret: impl Into<String>) -> Token {
        Token {
            name: name.into(),
            secret: secret.into(),
        }
    }
}

/// Parses a token file (see the module docs). Errors name the line.
pub fn parse_tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out: Vec<Token> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, secret) = match line.split_once(':') {
            Some((n, s)) => (n.trim(), s.trim()),
            None => ("default", line),
        };
        let n = i + 1;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(format!(
                "line {n}: token name {name:?} must be letters, digits, - _ ."
            ));
        }
        if secret.is_empty() {
            return Err(format!("line {n}: the token of {name:?} is empty"));
        }
        if out.iter().any(|t| t.name == name) {
            return Err(format!("line {n}: token name {name:?} is given twice"));
        }
        if out.iter().any(|t| t.secret == secret) {
            return Err(format!(
                "line {n}: the token of {name:?} is the same as another's"
            ));
        }
        out.push(Token::new(name, secret));
    }
    if out.is_empty() {
        return Err("no token in the file".into());
    }
    Ok(out)
}

/// The name of the token `given` is, if any. Every token is compared, each
/// in time that depends only on the lengths (`subtle`), so the time says
/// neither which token matched nor how much of one did.
fn token_name(tokens: &[Token], given: &str) -> Option<String> {
    tokens.iter().fold(None, |found, t| {
        let hit = bool::from(given.as_bytes().ct_eq(t.secret.as_bytes()));
        found.or(hit.then(|| t.name.clone()))
    })
}

/// Whether a request needs a token when tokens are configured.
fn needs_token(method: &Method, path: &str) -> bool {
    !matches!(*method, Method::GET | Method::HEAD) || path == "/state" || path == "/audit"
}

/// Names the actor, and refuses with 401 a request that needs a token and
/// has none of the configured ones.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let from = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_string());
    let who = match &given {
        Some(g) => token_name(&state.tokens, g),
        None => None,
    };
    if !state.tokens.is_empty() && needs_token(req.method(), req.uri().path()) && who.is_none() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "E_UNAUTHORIZED",
            "this route needs Authorization: Bearer <token>",
        ));
    }
    let actor = match who {
        Some(who) => Actor { who, from },
        None => Actor::anonymous(from),
    };
    req.extensions_mut().insert(actor);
    Ok(next.run(req).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_whole_and_by_its_own_name() {
        let tokens = parse_tokens("alice:secret\nbob:other\n").unwrap();
        assert_eq!(token_name(&tokens, "secret").as_deref(), Some("alice"));
        assert_eq!(token_name(&tokens, "other").as_deref(), Some("bob"));
        for wrong in ["secreT", "secret2", "secre", "", "alice:secret"] {
            assert_eq!(token_name(&tokens, wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn token_files_name_their_tokens() {
        let t = parse_tokens("# ops\nalice: s3cret\n\nbob:t0ken:with:colons\nbare\n").unwrap();
        let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "default"]);
        assert_eq!(
            t[1].secret, "t0ken:with:colons",
            "only the first colon splits"
        );
        assert_eq!(t[2].secret, "bare");
        for (bad, needle) in [
            ("", "no token"),
            ("a:", "empty"),
            ("a b:x", "must be"),
            ("a:x\na:y", "twice"),
            ("a:x\nb:x", "same as"),
        ] {
            let e = parse_tokens(bad).unwrap_err();
            assert!(e.contains(needle), "{bad:?}: {e}");
        }
    }
}
