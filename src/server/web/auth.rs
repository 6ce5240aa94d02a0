//! The access token: `Authorization: Bearer <token>`, `?token=<token>` (which
//! then sets an HttpOnly cookie, so the page's links work) or that cookie.
//!
//! Tokens are compared as SHA-256 digests in constant time, so neither the
//! time a comparison takes nor its length gives the token away. The cookie
//! holds the digest, not the token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Shared;

/// The cookie a valid `?token=` sets.
pub const COOKIE: &str = "orderflow_token";

/// Lets a request through when no token is configured or it presents the
/// token; answers 401 otherwise.
pub(super) async fn require_token(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let Some(token) = &shared.state.token else { return next.run(request).await };
    let expected = digest(token.expose());
    let headers = request.headers();
    let by_header = bearer(headers).is_some_and(|presented| same(&digest(presented), &expected));
    let by_cookie = cookie(headers).and_then(|value| hex::decode(value).ok()).is_some_and(|d| same(&d, &expected));
    let by_query = Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(query)| query.get("token").map(|presented| same(&digest(presented), &expected)))
        .unwrap_or(false);
    if !(by_header || by_cookie || by_query) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "401: this page needs the access token: send `Authorization: Bearer <token>` or open it once with ?token=<token>\n",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    if by_query && !by_cookie {
        let value = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", hex::encode(expected));
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn same(presented: &[u8], expected: &[u8]) -> bool {
    presented.ct_eq(expected).into()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}
