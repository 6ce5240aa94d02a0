//! The editor's front-end: `web/dist/` (built by Vite from `web/`, committed),
//! embedded in the binary with `rust-embed`, served at `/editor/`. Any path
//! there that is not a file answers `index.html`, so the front-end's own
//! routes survive a reload.
//!
//! Release builds carry the files inside the binary; debug builds read them
//! from `web/dist/` on each request, so a rebuilt bundle shows without
//! recompiling. Without a built bundle, `/editor/` says how to build it.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// The built bundle.
#[derive(rust_embed::Embed)]
#[folder = "web/dist/"]
#[allow_missing = true]
struct Bundle;

/// What `/editor/` answers when the bundle was never built.
pub const NOT_BUILT: &str = "the editor bundle is not built: cd web && npm ci && npm run build\n";

/// `/editor`, `/editor/` and everything below.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/editor", get(|| async { Redirect::permanent("/editor/") }))
        .route("/editor/", get(|| async { asset("") }))
        .route("/editor/{*path}", get(|Path(path): Path<String>| async move { asset(&path) }))
}

/// The front-end's `index.html`: the console's pages (`/`, `/flows/{name}`,
/// `/runs/{id}`, [`crate::server::web`]) are routes of the same bundle.
pub fn index() -> Response {
    asset("")
}

/// The file at `path` in the bundle, else `index.html`, else 503.
fn asset(path: &str) -> Response {
    // Debug builds read the folder: no path may climb out of it.
    let is_file_path = !path.is_empty() && !path.split(['/', '\\']).any(|segment| segment == "..");
    if let Some(file) = Bundle::get(path).filter(|_| is_file_path) {
        // Vite names the files under assets/ by their content hash.
        let cache = if path.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
        return ([(header::CONTENT_TYPE, content_type(path)), (header::CACHE_CONTROL, cache)], file.data)
            .into_response();
    }
    match Bundle::get("index.html") {
        Some(index) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], index.data)
                .into_response()
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], NOT_BUILT)
            .into_response(),
    }
}

/// The media type of a bundle file, by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("wasm") => "application/wasm",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_files_get_their_media_type() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("assets/index-3f2a.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("assets/worker"), "application/octet-stream");
    }
}
