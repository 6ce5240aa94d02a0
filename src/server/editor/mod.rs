//! The visual flow editor's server side (`docs/editor.md`): its JSON API
//! under `/api/`, mounted in the web page's router ([`super::web::router`])
//! behind the same token check, and the front-end's bundle ([`assets`]),
//! which that router serves at `/editor/` and at the console's pages.
//!
//! - [`api`]: the handlers (catalog, flows, templates, validate, save,
//!   versions);
//! - [`files`]: the flow-name rule, versions of a text, the atomic save;
//! - [`problems`]: compile errors as problems on nodes and YAML paths, and
//!   the graph the text describes;
//! - [`catalog`]: the node types for the palette and the settings forms;
//! - [`test_run`]: the test run, in the sandbox of [`crate::harness`];
//! - [`assets`]: the built front-end (`web/dist/`), embedded in the binary.
//!
//! Reading needs what the page needs (the viewer token when one is set).
//! Saving and test runs need the editor token, the `X-Orderflow-Csrf: 1` header and, when
//! the browser sends one, an `Origin` of this server ([`guard_writes`]).

pub mod api;
pub mod assets;
pub mod catalog;
pub mod files;
pub mod problems;
pub mod test_run;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use self::api::ApiError;
use self::files::FileError;
use super::serve::FlowEnv;
use super::web::Access;
use crate::config::{Config, Secret};
use crate::store::Store;

/// The environment variable the editor token is read from.
pub const EDITOR_TOKEN_VAR: &str = "ORDERFLOW_EDITOR_TOKEN";
/// The header every write must carry: a cross-site form cannot send it.
pub const CSRF_HEADER: &str = "x-orderflow-csrf";
/// The header naming who saves ("who" in a flow's history).
pub const USER_HEADER: &str = "x-orderflow-user";

/// A flow shipped in the flows folder when `serve` started, offered as the
/// start of a new flow.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Template {
    /// Its name (file stem).
    pub name: String,
    /// Its `description:`.
    pub description: String,
    /// Its text.
    pub yaml: String,
}

/// What the editor's API works on.
pub struct Editor {
    flows_dir: PathBuf,
    env: Arc<FlowEnv>,
    store: Store,
    token: Option<Secret>,
    templates: Vec<Template>,
    /// Saves one at a time, so that comparing a save's base version with
    /// the file and writing the file cannot interleave with another save.
    save_lock: tokio::sync::Mutex<()>,
    /// The config a test run in shop mode connects the shops from; `None`
    /// allows only test runs on fixtures.
    shops: Option<Config>,
    /// The flows with a test run going on.
    test_runs: test_run::Running,
}

impl Editor {
    /// An editor of the flows in `flows_dir`, compiled against `env`, with
    /// their history in `store`; `token` is the editor token (without it,
    /// every write is refused). The flows there now become the templates
    /// (a file too large or unreadable is left out, with a warning).
    pub fn new(flows_dir: &Path, env: Arc<FlowEnv>, store: Store, token: Option<Secret>) -> Result<Self, FileError> {
        let mut templates = Vec::new();
        for name in files::flow_names(flows_dir)? {
            let yaml = match files::read_flow(&name.file_in(flows_dir)) {
                Ok(Some(yaml)) => yaml,
                Ok(None) => continue,
                // One unreadable file costs its template, not the editor.
                Err(error) => {
                    tracing::warn!(%error, "A flow file is left out of the editor's templates.");
                    continue;
                }
            };
            let description = api::summary_of(&yaml).description;
            templates.push(Template { name: name.to_string(), description, yaml });
        }
        Ok(Self {
            flows_dir: flows_dir.to_path_buf(),
            env,
            store,
            token,
            templates,
            save_lock: tokio::sync::Mutex::new(()),
            shops: None,
            test_runs: test_run::Running::default(),
        })
    }

    /// Lets test runs read the shops of `config` (each run connects its own).
    pub fn with_shops(mut self, config: Config) -> Self {
        self.shops = Some(config);
        self
    }

    /// The editor token, when configured.
    pub fn token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }
}

/// The API, writes guarded (the bundle is mounted by the web router, which
/// serves it with or without an editor).
pub fn router<S: Clone + Send + Sync + 'static>(editor: Arc<Editor>) -> Router<S> {
    let api = api::routes()
        .layer(axum::middleware::from_fn_with_state(editor.clone(), guard_writes))
        .layer(axum::extract::DefaultBodyLimit::max(files::MAX_FLOW_BYTES));
    Router::new().merge(api).with_state(editor)
}

/// Lets reads through; a write (any method but GET, HEAD and the
/// side-effect-free `POST /api/validate`) needs the editor's access, the
/// CSRF header and a same-origin `Origin` when one is sent.
async fn guard_writes(State(editor): State<Arc<Editor>>, request: Request, next: Next) -> Response {
    let method = request.method();
    let is_read = method == Method::GET || method == Method::HEAD || request.uri().path() == "/api/validate";
    if is_read {
        return next.run(request).await;
    }
    if editor.token.is_none() {
        return ApiError::Forbidden(format!(
            "saving and test runs are switched off: no editor token is configured; set {EDITOR_TOKEN_VAR} for `orderflow serve` \
             and sign in with it"
        ))
        .into_response();
    }
    if request.extensions().get::<Access>() != Some(&Access::Editor) {
        return ApiError::Forbidden(
            "saving and test runs need the editor token: send `Authorization: Bearer <editor token>` or open the editor once \
             with ?token=<editor token>"
                .to_owned(),
        )
        .into_response();
    }
    if request.headers().get(CSRF_HEADER).is_none_or(|value| value != "1") {
        return ApiError::Forbidden(format!("a write must carry the header {CSRF_HEADER}: 1")).into_response();
    }
    if !same_origin(request.headers(), request.uri()) {
        return ApiError::Forbidden("a write must come from a page of this server (Origin)".to_owned()).into_response();
    }
    next.run(request).await
}

/// True when the request sends no `Origin`, or one whose host and port are
/// the `Host` it was sent to (the URI's authority in HTTP/2). A proxy in
/// front of `serve` must pass the `Host` the browser used.
fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()));
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")));
    matches!((origin_host, host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn origins_must_be_this_host() {
        let headers = |origin: Option<&'static str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
            if let Some(origin) = origin {
                headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
            }
            headers
        };
        let uri = Uri::from_static("/api/flows/x");
        assert!(same_origin(&headers(None), &uri));
        assert!(same_origin(&headers(Some("http://127.0.0.1:8080")), &uri));
        assert!(!same_origin(&headers(Some("http://127.0.0.1:9090")), &uri));
        assert!(!same_origin(&headers(Some("https://evil.example")), &uri));
        assert!(!same_origin(&headers(Some("null")), &uri));
        // HTTP/2 carries the host in the URI.
        let mut no_host = HeaderMap::new();
        no_host.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(same_origin(&no_host, &Uri::from_static("http://127.0.0.1:8080/api/flows/x")));
        assert!(!same_origin(&no_host, &uri));
    }
}
