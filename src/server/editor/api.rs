//! The editor's JSON API (`docs/editor.md`). Errors answer
//! `{"error": "…"}` with a fitting status; a store or file failure is logged
//! and answered with 500 and no detail.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value as JsonValue, json};

use super::files::{self, BadFlowName, FileError, FlowName, MAX_FLOW_BYTES};
use super::problems::{self, Problem, Validation};
use super::{Editor, USER_HEADER, catalog};
use crate::flow::{CompileEnv, schema, yaml};
use crate::server::web::Access;
use crate::store::{FlowVersion, StoreError};

/// Who saved, when the editor does not say.
const DEFAULT_USER: &str = "editor";
/// The longest "who" kept.
const MAX_USER_CHARS: usize = 100;
/// `saved_by` of the text found on disk before the first save.
const ON_DISK: &str = "(on disk)";
/// Its `role`.
const ON_DISK_ROLE: &str = "file";

/// The API's routes.
pub(super) fn routes() -> Router<Arc<Editor>> {
    Router::new()
        .route("/api/catalog", get(catalog))
        .route("/api/flows", get(list_flows))
        .route("/api/flows/{name}", get(get_flow).put(save_flow))
        .route("/api/flows/{name}/versions", get(list_versions))
        .route("/api/flows/{name}/versions/{version}", get(get_version))
        .route("/api/templates", get(templates))
        .route("/api/validate", post(validate))
        .route("/api/test-run", post(super::test_run::test_run))
        .route("/api/{*rest}", any(|| async { ApiError::NotFound("there is no such API path".to_owned()) }))
}

/// A request the API refuses or cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a flow name that breaks the rule.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such flow or version.
    #[error("{0}")]
    NotFound(String),
    /// 409: the save was based on another version than the file's.
    #[error("{message}")]
    Conflict {
        /// What happened.
        message: String,
        /// The file's version now, `None` when there is no file.
        current_version: Option<String>,
        /// The file's text now.
        current_yaml: Option<String>,
    },
    /// 409: a test run of the flow is going on already.
    #[error("{0}")]
    Busy(String),
    /// 422: the sandbox cannot run the flow as it is (a node needs a shop
    /// or a fixture names no node of the flow).
    #[error("{0}")]
    Unrunnable(String),
    /// 500: what went wrong, safe to show (no path, no secret).
    #[error("{0}")]
    Failed(String),
    /// 413: the body or the flow is larger than 1 MiB.
    #[error("the flow is larger than {MAX_FLOW_BYTES} bytes")]
    TooLarge,
    /// 422: the flow does not compile; nothing was written.
    #[error("the flow has {} problem(s); nothing was written (save it as a draft to keep it)", .0.len())]
    Invalid(Vec<Problem>),
    /// The body was refused by the JSON extractor: not JSON, not the
    /// expected fields (400, 415, 422), or over 1 MiB (413).
    #[error("{0}")]
    Body(#[from] JsonRejection),
    /// 500: the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 500: a file could not be read or written.
    #[error(transparent)]
    File(#[from] FileError),
}

impl From<BadFlowName> for ApiError {
    fn from(error: BadFlowName) -> Self {
        ApiError::BadRequest(error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::Busy(_) => StatusCode::CONFLICT,
            ApiError::TooLarge | ApiError::File(FileError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Invalid(_) | ApiError::Unrunnable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Body(rejection) => rejection.status(),
            ApiError::Store(_) | ApiError::File(_) | ApiError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = match &self {
            ApiError::Store(_) | ApiError::File(FileError::Io { .. }) => {
                tracing::error!(error = %self, "The editor could not read or write a flow or its history.");
                json!({"error": "the flow or its history could not be read or written; the server's log says why"})
            }
            ApiError::Conflict { message, current_version, current_yaml } => {
                json!({"error": message, "current_version": current_version, "current_yaml": current_yaml})
            }
            // The file's path on the server is no business of the browser's.
            ApiError::File(FileError::TooLarge { .. }) => json!({"error": ApiError::TooLarge.to_string()}),
            ApiError::Invalid(problems) => json!({"error": self.to_string(), "problems": problems}),
            ApiError::Body(rejection) => json!({"error": rejection.body_text()}),
            other => json!({"error": other.to_string()}),
        };
        (status, Json(body)).into_response()
    }
}

/// What the list and the templates show of a flow text, read without
/// compiling it (so a broken flow still shows them).
pub(super) struct Summary {
    pub(super) description: String,
    pub(super) shop: Option<String>,
}

/// The `description:` and `shop:` of a flow text, empty when unreadable.
pub(super) fn summary_of(text: &str) -> Summary {
    let tree = yaml::parse(text).ok();
    let field = |key: &str| tree.as_ref().and_then(|tree| tree.get(key)).and_then(|v| v.as_str()).map(str::to_owned);
    Summary { description: field("description").unwrap_or_default(), shop: field("shop") }
}

impl Editor {
    fn file_of(&self, name: &FlowName) -> PathBuf {
        name.file_in(&self.flows_dir)
    }

    /// Compiles `text` as the flow file `file` (on a blocking thread:
    /// building nodes compiles their scripts).
    async fn validate(self: &Arc<Self>, file: PathBuf, text: String) -> Validation {
        let editor = self.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let env = &editor.env;
            let compile_env = CompileEnv { registry: &env.registry, build: &env.build, shops: &env.shops };
            problems::validate(&file, &text, &compile_env)
        });
        match checked.await {
            Ok(validation) => validation,
            Err(error) => {
                // Compiling never panics by design; if it did, say so as a problem.
                tracing::error!(%error, "Validating a flow panicked.");
                let problem = Problem {
                    line: None,
                    col: None,
                    message: "the flow could not be checked (the server logged why)".into(),
                    node: None,
                    path: None,
                };
                Validation { ok: false, problems: vec![problem], graph: None }
            }
        }
    }
}

async fn catalog(State(editor): State<Arc<Editor>>) -> Json<JsonValue> {
    let registry = &editor.env.registry;
    Json(json!({
        "node_types": catalog::node_types(registry),
        "flow_schema": schema::flow_schema(registry),
        "shops": editor.env.shops,
    }))
}

#[derive(Serialize)]
struct FlowListItem {
    name: String,
    description: String,
    shop: Option<String>,
    valid: bool,
    /// `None` for a flow that exists only as a draft.
    version: Option<String>,
    has_draft: bool,
}

async fn list_flows(State(editor): State<Arc<Editor>>) -> Result<Json<Vec<FlowListItem>>, ApiError> {
    let drafts = editor.store.flows_with_drafts().await?;
    let mut items = Vec::new();
    for name in files::flow_names(&editor.flows_dir)? {
        let file = editor.file_of(&name);
        let text = match files::read_flow(&file) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            // Listed, so the folder's content is not hidden; opening it says why it fails.
            Err(error) => {
                tracing::warn!(%error, "A flow file cannot be listed in the editor.");
                items.push(FlowListItem {
                    name: name.to_string(),
                    description: String::new(),
                    shop: None,
                    valid: false,
                    version: None,
                    has_draft: drafts.iter().any(|draft| draft == name.as_str()),
                });
                continue;
            }
        };
        let summary = summary_of(&text);
        let version = files::version_of(&text);
        let valid = editor.validate(file, text).await.ok;
        let has_draft = drafts.iter().any(|draft| draft == name.as_str());
        items.push(FlowListItem {
            name: name.to_string(),
            description: summary.description,
            shop: summary.shop,
            valid,
            version: Some(version),
            has_draft,
        });
    }
    // A new flow saved only as a draft has no file yet, and is listed too.
    let draft_only: Vec<&String> =
        drafts.iter().filter(|draft| !items.iter().any(|item| item.name == **draft)).collect();
    for name in draft_only {
        let Some((_, text)) = editor.store.flow_draft(name).await? else { continue };
        let summary = summary_of(&text);
        items.push(FlowListItem {
            name: name.to_owned(),
            description: summary.description,
            shop: summary.shop,
            valid: false,
            version: None,
            has_draft: true,
        });
    }
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(items))
}

#[derive(Serialize)]
struct DraftBody {
    yaml: String,
    version: String,
    saved_by: String,
    saved_at: chrono::DateTime<Utc>,
}

async fn get_flow(State(editor): State<Arc<Editor>>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let name = FlowName::parse(&name)?;
    let text = files::read_flow(&editor.file_of(&name))?;
    let draft = editor.store.flow_draft(name.as_str()).await?;
    if text.is_none() && draft.is_none() {
        return Err(ApiError::NotFound(format!("there is no flow named \"{name}\"")));
    }
    let version = text.as_deref().map(files::version_of);
    let draft = draft.map(|(meta, yaml)| DraftBody {
        yaml,
        version: meta.version,
        saved_by: meta.saved_by,
        saved_at: meta.saved_at,
    });
    let body = json!({"name": name.as_str(), "yaml": text.unwrap_or_default(), "version": version, "draft": draft});
    let mut response = Json(body).into_response();
    if let Some(etag) = version.and_then(|v| format!("\"{v}\"").parse().ok()) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    Ok(response)
}

async fn templates(State(editor): State<Arc<Editor>>) -> Json<Vec<super::Template>> {
    Json(editor.templates.clone())
}

#[derive(Deserialize)]
struct ValidateBody {
    yaml: String,
    name: Option<String>,
}

async fn validate(
    State(editor): State<Arc<Editor>>,
    body: Result<Json<ValidateBody>, JsonRejection>,
) -> Result<Json<Validation>, ApiError> {
    let Json(body) = body?;
    if body.yaml.len() > MAX_FLOW_BYTES {
        return Err(ApiError::TooLarge);
    }
    let name = FlowName::parse(body.name.as_deref().unwrap_or("untitled"))?;
    Ok(Json(editor.validate(editor.file_of(&name), body.yaml).await))
}

#[derive(Deserialize)]
struct SaveBody {
    yaml: String,
    /// The file version the text was edited from; `None` creates the file.
    base_version: Option<String>,
    draft: bool,
}

async fn save_flow(
    State(editor): State<Arc<Editor>>,
    Path(name): Path<String>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Result<Json<SaveBody>, JsonRejection>,
) -> Result<Json<JsonValue>, ApiError> {
    let name = FlowName::parse(&name)?;
    let Json(body) = body?;
    if body.yaml.len() > MAX_FLOW_BYTES {
        return Err(ApiError::TooLarge);
    }
    let saved_by = user_of(&headers);
    let file = editor.file_of(&name);
    let _one_at_a_time = editor.save_lock.lock().await;

    let current = files::read_flow(&file)?;
    let current_version = current.as_deref().map(files::version_of);
    if body.base_version != current_version {
        let message = match (&body.base_version, &current_version) {
            (None, Some(_)) => format!("a flow named \"{name}\" exists already"),
            (Some(_), None) => format!("the flow \"{name}\" was deleted since it was opened"),
            _ => format!("the flow \"{name}\" was changed since it was opened"),
        };
        return Err(ApiError::Conflict { message, current_version, current_yaml: current });
    }
    let version = files::version_of(&body.yaml);
    let now = Utc::now();
    let record = |draft| FlowVersion {
        flow: name.to_string(),
        version: version.clone(),
        saved_by: saved_by.clone(),
        role: access.as_str().to_owned(),
        saved_at: now,
        draft,
    };

    if body.draft {
        editor.store.record_flow_version(&record(true), &body.yaml).await?;
        return Ok(Json(json!({"version": version})));
    }
    let validation = editor.validate(file.clone(), body.yaml.clone()).await;
    if !validation.ok {
        return Err(ApiError::Invalid(validation.problems));
    }
    // The text on disk before the first save through the editor is kept, so
    // it can be restored.
    if let (Some(text), Some(on_disk)) = (&current, &current_version)
        && editor.store.flow_version(name.as_str(), on_disk).await?.is_none()
    {
        let original = FlowVersion {
            flow: name.to_string(),
            version: on_disk.clone(),
            saved_by: ON_DISK.into(),
            role: ON_DISK_ROLE.into(),
            saved_at: modified_at(&file).unwrap_or(now),
            draft: false,
        };
        editor.store.record_flow_version(&original, text).await?;
    }
    files::write_atomically(&file, &body.yaml)?;
    editor.store.record_flow_version(&record(false), &body.yaml).await?;
    tracing::info!(flow = %name, %version, saved_by, "Flow saved from the editor.");
    Ok(Json(json!({"version": version})))
}

async fn list_versions(
    State(editor): State<Arc<Editor>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<FlowVersion>>, ApiError> {
    let name = FlowName::parse(&name)?;
    Ok(Json(editor.store.flow_versions(name.as_str()).await?))
}

async fn get_version(
    State(editor): State<Arc<Editor>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<JsonValue>, ApiError> {
    let name = FlowName::parse(&name)?;
    let (meta, yaml) = editor
        .store
        .flow_version(name.as_str(), &version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("the flow \"{name}\" has no version {version:?}")))?;
    let mut body = serde_json::to_value(meta).unwrap_or_default();
    if let Some(object) = body.as_object_mut() {
        object.insert("yaml".into(), JsonValue::String(yaml));
    }
    Ok(Json(body))
}

/// The `X-Orderflow-User` header, percent-decoded (a browser sends only
/// ASCII in headers, so the editor sends `encodeURIComponent(name)`), without
/// control characters and cut to [`MAX_USER_CHARS`]; [`DEFAULT_USER`] when
/// absent or blank.
fn user_of(headers: &HeaderMap) -> String {
    let raw = headers.get(USER_HEADER).map(|value| value.as_bytes()).unwrap_or_default();
    let decoded = String::from_utf8_lossy(&percent_decode(raw)).into_owned();
    let cleaned: String = decoded.chars().filter(|c| !c.is_control()).take(MAX_USER_CHARS).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() { DEFAULT_USER.to_owned() } else { cleaned.to_owned() }
}

/// `%XX` escapes turned into their bytes; anything else kept as it is.
fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, tail)) = rest.split_first() {
        let escaped = match tail {
            [high, low, ..] if byte == b'%' => {
                std::str::from_utf8(&[*high, *low]).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok())
            }
            _ => None,
        };
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                rest = &tail[2..];
            }
            None => {
                out.push(byte);
                rest = tail;
            }
        }
    }
    out
}

fn modified_at(file: &std::path::Path) -> Option<chrono::DateTime<Utc>> {
    std::fs::metadata(file).and_then(|meta| meta.modified()).ok().map(chrono::DateTime::<Utc>::from)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn who_saved_is_decoded_cleaned_and_defaulted() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(USER_HEADER, HeaderValue::from_static(value));
            user_of(&headers)
        };
        assert_eq!(user_of(&HeaderMap::new()), DEFAULT_USER);
        assert_eq!(with("  "), DEFAULT_USER);
        assert_eq!(with("Wang Fang"), "Wang Fang");
        assert_eq!(with("%E7%8E%8B%E8%8A%B3"), "王芳");
        assert_eq!(with("100%"), "100%");
        assert_eq!(with("a%0Ab"), "ab");
        assert_eq!(
            user_of(&{
                let mut headers = HeaderMap::new();
                headers.insert(USER_HEADER, HeaderValue::from_str(&"x".repeat(300)).unwrap());
                headers
            })
            .len(),
            MAX_USER_CHARS
        );
    }

    #[test]
    fn summaries_read_broken_flows_too() {
        let summary = summary_of("flow: f\ndescription: Orders\nshop: tmall-main\nnodes: {a: {use: nope}}\n");
        assert_eq!((summary.description.as_str(), summary.shop.as_deref()), ("Orders", Some("tmall-main")));
        assert_eq!(summary_of("[").description, "");
    }
}
