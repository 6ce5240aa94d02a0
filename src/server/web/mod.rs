//! The web side of `orderflow serve`: the console's JSON, the front-end's
//! pages and `/metrics`.
//!
//! Routes: `/`, `/flows/{name}` and `/runs/{id}` answer the front-end
//! (`web/`, embedded; 404 when the flow or run does not exist, so an old link
//! to a missing page still says so), which draws them from
//! `/api/overview`, `/api/flows/{name}/runs` and `/api/runs/{id}`
//! ([`console`]); `/metrics` is Prometheus text, with the store's gauges read
//! on each scrape. With an editor, also its API under `/api/` and the editor
//! under `/editor/` ([`super::editor`]).
//!
//! Node settings and config values are never sent. Listening beyond loopback
//! requires an access token ([`auth`]).

mod auth;
pub mod console;
mod health;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{Access, COOKIE};
pub use health::{Health, Lag};

use super::catalog::Catalog;
use super::editor::{EDITOR_TOKEN_VAR, Editor, assets};
use crate::config::Secret;
use crate::store::Store;
use crate::telemetry::{self, StoreGauges};

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The environment variable the access token is read from.
pub const TOKEN_VAR: &str = "ORDERFLOW_WEB_TOKEN";

/// How often histogram samples are folded into their buckets when nobody
/// scrapes (the exporter leaves that to its owner).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// What the page reads.
#[derive(Clone)]
pub struct WebState {
    /// Runs, health and restock suggestions.
    pub store: Store,
    /// The loaded flows, as the scheduler keeps them.
    pub catalog: Arc<Catalog>,
    /// The installed recorder ([`telemetry::install`]); `/metrics` answers
    /// 404 without one.
    pub metrics: Option<PrometheusHandle>,
    /// The access token; `None` leaves the page open, which [`serve`] allows
    /// on loopback addresses only.
    pub token: Option<Secret>,
    /// The flow editor's API and bundle (`/api/`, `/editor/`); `None` serves
    /// neither.
    pub editor: Option<Arc<Editor>>,
}

/// Why the page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Anyone on the network could read the page.
    #[error(
        "refusing to listen on {addr} without an access token: anyone who can reach it could read the page; \
         set {TOKEN_VAR} or listen on a loopback address such as {DEFAULT_LISTEN}"
    )]
    TokenRequired {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// An empty token would let anyone in.
    #[error("the access token in {TOKEN_VAR} is empty")]
    EmptyToken,
    /// An empty editor token would let anyone save flows.
    #[error("the editor token in {EDITOR_TOKEN_VAR} is empty")]
    EmptyEditorToken,
    /// The address could not be bound.
    #[error("listening on {addr}: {error}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why (shown in the message, so not also its `source()`, which would print it twice in a chain).
        error: std::io::Error,
    },
    /// The server stopped on an I/O error.
    #[error("serving the web page: {0}")]
    Serve(std::io::Error),
}

/// The router's state: the page's inputs and the gauges it keeps current.
struct Shared {
    state: WebState,
    gauges: StoreGauges,
}

/// The page's routes, behind the token check when a token is configured.
pub fn router(state: WebState) -> Router {
    let editor = state.editor.clone().map(super::editor::router).unwrap_or_default();
    let shared = Arc::new(Shared { state, gauges: StoreGauges::default() });
    Router::new()
        .route("/", get(|| async { assets::index() }))
        .route("/flows/{name}", get(flow_page))
        .route("/runs/{id}", get(run_page))
        .route("/api/overview", get(console::overview))
        .route("/api/flows/{name}/runs", get(console::flow))
        .route("/api/runs/{id}", get(console::run))
        .route("/metrics", get(metrics))
        .merge(assets::routes())
        .merge(editor)
        .fallback(|| async { not_found(assets::index()) })
        .layer(axum::middleware::from_fn_with_state(shared.clone(), auth::require_token))
        .with_state(shared)
}

/// Binds `addr` and serves the page until `shutdown` is cancelled. Refuses a
/// non-loopback address when `state` has no token, before binding.
pub async fn serve_on(addr: SocketAddr, state: WebState, shutdown: CancellationToken) -> Result<(), WebError> {
    check_exposure(addr, &state)?;
    let listener = TcpListener::bind(addr).await.map_err(|error| WebError::Bind { addr, error })?;
    serve(listener, state, shutdown).await
}

/// Serves the page on `listener` until `shutdown` is cancelled. Refuses a
/// listener on a non-loopback address when `state` has no token.
pub async fn serve(listener: TcpListener, state: WebState, shutdown: CancellationToken) -> Result<(), WebError> {
    let addr = listener.local_addr().map_err(WebError::Serve)?;
    check_exposure(addr, &state)?;
    if let Some(handle) = state.metrics.clone() {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_EVERY);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => handle.run_upkeep(),
                }
            }
        });
    }
    let editor_saves = state.editor.as_ref().is_some_and(|editor| editor.token().is_some());
    tracing::info!(%addr, token = state.token.is_some(), editor = state.editor.is_some(), editor_saves,
        "Web page listening.");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(WebError::Serve)
}

fn check_exposure(addr: SocketAddr, state: &WebState) -> Result<(), WebError> {
    if state.editor.as_ref().and_then(|editor| editor.token()).is_some_and(|token| token.expose().is_empty()) {
        return Err(WebError::EmptyEditorToken);
    }
    match &state.token {
        Some(token) if token.expose().is_empty() => Err(WebError::EmptyToken),
        Some(_) => Ok(()),
        None if addr.ip().to_canonical().is_loopback() => Ok(()),
        None => Err(WebError::TokenRequired { addr }),
    }
}

/// `page` answered with 404 (unless it is already an error: no bundle).
fn not_found(mut page: Response) -> Response {
    if page.status().is_success() {
        *page.status_mut() = StatusCode::NOT_FOUND;
    }
    page
}

/// `/flows/{name}`: the front-end, 404 when no flow has that name.
async fn flow_page(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    match shared.state.catalog.find(&name) {
        Some(_) => assets::index(),
        None => not_found(assets::index()),
    }
}

/// `/runs/{id}`: the front-end, 404 when no run has that id (the front-end
/// shows a store failure from its API call).
async fn run_page(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    match shared.state.store.run(&id).await {
        Ok(None) => not_found(assets::index()),
        Ok(Some(_)) => assets::index(),
        Err(error) => {
            tracing::warn!(%error, run = %id, "Reading the store for a run's page failed.");
            assets::index()
        }
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let Some(handle) = &shared.state.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled in this process\n").into_response();
    };
    match Health::load(&shared.state.store, Utc::now()).await {
        Ok(health) => set_store_gauges(&shared.gauges, &health),
        // The counters are still worth scraping; the gauges keep their last values.
        Err(error) => tracing::warn!(%error, "Reading the store for /metrics failed."),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

fn set_store_gauges(gauges: &StoreGauges, health: &Health) {
    let labels = |pairs: &[(&str, &str)]| -> telemetry::Labels {
        pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    };
    gauges.set_all(
        telemetry::SYNC_LAG,
        health
            .lags
            .iter()
            .filter_map(|lag| {
                let seconds = lag.seconds?;
                Some((labels(&[("platform", &lag.platform), ("shop", &lag.shop), ("stream", &lag.stream)]), seconds))
            })
            .collect(),
    );
    gauges.set_all(
        telemetry::BREAKER_STATE,
        health
            .breakers
            .iter()
            .filter_map(|b| {
                let value = telemetry::breaker_state_value(&b.state)?;
                Some((labels(&[("platform", &b.platform), ("shop", &b.shop), ("channel", &b.channel)]), value))
            })
            .collect(),
    );
    gauges.set_all(
        telemetry::APP_BANNED,
        health
            .bans
            .iter()
            .map(|ban| (labels(&[("platform", &ban.platform), ("app_key", &ban.app_key)]), 1.0))
            .collect(),
    );
    gauges.set_all(
        telemetry::NEEDS_REAUTH,
        health.reauth.iter().map(|r| (labels(&[("platform", &r.platform), ("shop", &r.shop)]), 1.0)).collect(),
    );
    let mut by_kind: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
    for alert in &health.alerts {
        *by_kind.entry(alert.kind.as_str()).or_default() += 1.0;
    }
    gauges.set_all(
        telemetry::OPEN_ALERTS,
        by_kind.into_iter().map(|(kind, count)| (labels(&[("kind", kind)]), count)).collect(),
    );
}
