//! The access tokens: `Authorization: Bearer <token>`, `?token=<token>` (which
//! then sets an HttpOnly cookie, so the page's links work) or that cookie.
//! The viewer token (`ORDERFLOW_WEB_TOKEN`) reads; the editor token
//! (`ORDERFLOW_EDITOR_TOKEN`) reads and, through the editor's API, saves
//! flows ([`Access`]).
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

/// What a request may do, found by [`require_token`] and kept in the
/// request's extensions for the handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Read pages and the editor's GET API: the viewer token, or anyone when
    /// no viewer token is configured.
    Viewer,
    /// Also save flows: the editor token.
    Editor,
}

impl Access {
    /// `viewer` or `editor`, as flow versions record it.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Viewer => "viewer",
            Access::Editor => "editor",
        }
    }
}

/// Lets a request through as a viewer when no viewer token is configured or
/// it presents the viewer or the editor token (as an editor when that is the
/// editor token); answers 401 otherwise.
pub(super) async fn require_token(State(shared): State<Arc<Shared>>, mut request: Request, next: Next) -> Response {
    let viewer = shared.state.token.as_ref().map(|token| digest(token.expose()));
    let editor = shared.state.editor.as_ref().and_then(|editor| editor.token()).map(|token| digest(token.expose()));
    let access_of = |presented: &[u8]| {
        if editor.as_deref().is_some_and(|expected| same(presented, expected)) {
            Some(Access::Editor)
        } else if viewer.as_deref().is_some_and(|expected| same(presented, expected)) {
            Some(Access::Viewer)
        } else {
            None
        }
    };
    let headers = request.headers();
    let by_header = bearer(headers).and_then(|presented| access_of(&digest(presented)));
    let cookie_digest = cookie(headers).and_then(|value| hex::decode(value).ok());
    let by_cookie = cookie_digest.as_deref().and_then(access_of);
    let query_digest = Query::<HashMap<String, String>>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(query)| query.get("token").map(|presented| digest(presented)));
    let by_query = query_digest.as_deref().and_then(access_of);
    let access = match by_header.max(by_cookie).max(by_query) {
        Some(access) => access,
        None if viewer.is_none() => Access::Viewer,
        None => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "401: this page needs the access token: send `Authorization: Bearer <token>` or open it once with ?token=<token>\n",
            )
                .into_response();
        }
    };
    request.extensions_mut().insert(access);
    let mut response = next.run(request).await;
    // A token given in the query becomes the cookie, so the page's links
    // (and the editor's requests) carry it.
    if let Some(presented) = query_digest.filter(|_| by_query.is_some() && by_query != by_cookie) {
        let value = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", hex::encode(presented));
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
