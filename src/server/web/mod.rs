//! The read-only web page of `orderflow serve` and its `/metrics`.
//!
//! Routes: `/` (flows, breakers, bans, shops to authorise again, sync lag,
//! open alerts, restock suggestions, recent runs), `/flows/{name}` (the graph
//! drawn as inline SVG with the last run's counts, and the flow's runs),
//! `/runs/{id}` (each node's counts, timings and error) and `/metrics`
//! (Prometheus text, with the store's gauges read on each scrape); with an
//! editor, also its API under `/api/` and its front-end under `/editor/`
//! ([`super::editor`]).
//!
//! Pages are rendered on the server with inline CSS and no script, so they
//! work with no internet. Everything shown is HTML-escaped; node settings and
//! config values are never shown. Listening beyond loopback requires an
//! access token ([`auth`]).

mod auth;
mod graph_svg;
mod health;
mod html;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{Access, COOKIE};
pub use health::{Health, Lag};

use super::catalog::Catalog;
use super::editor::{EDITOR_TOKEN_VAR, Editor};
use crate::config::Secret;
use crate::store::{RunStatus, Store, StoreError};
use crate::telemetry::{self, StoreGauges};

/// Where `serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The environment variable the access token is read from.
pub const TOKEN_VAR: &str = "ORDERFLOW_WEB_TOKEN";

/// Runs listed on the overview and on a flow's page.
const RECENT_RUNS: u32 = 25;
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
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
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
        .route("/", get(overview))
        .route("/flows/{name}", get(flow))
        .route("/runs/{id}", get(run))
        .route("/metrics", get(metrics))
        .merge(editor)
        .fallback(|| async { PageError::NotFound("There is no such page.".to_owned()) })
        .layer(axum::middleware::from_fn_with_state(shared.clone(), auth::require_token))
        .with_state(shared)
}

/// Binds `addr` and serves the page until `shutdown` is cancelled. Refuses a
/// non-loopback address when `state` has no token, before binding.
pub async fn serve_on(addr: SocketAddr, state: WebState, shutdown: CancellationToken) -> Result<(), WebError> {
    check_exposure(addr, &state)?;
    let listener = TcpListener::bind(addr).await.map_err(|source| WebError::Bind { addr, source })?;
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

/// A page that could not be shown.
enum PageError {
    /// 404 with what was missing.
    NotFound(String),
    /// 500; the error is logged, never shown.
    Store(StoreError),
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        PageError::Store(error)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::NotFound(what) => (StatusCode::NOT_FOUND, Html(pages::not_found(&what))).into_response(),
            PageError::Store(error) => {
                tracing::error!(%error, "Reading the store for the web page failed.");
                (StatusCode::INTERNAL_SERVER_ERROR, Html(pages::unavailable())).into_response()
            }
        }
    }
}

async fn overview(State(shared): State<Arc<Shared>>) -> Result<Html<String>, PageError> {
    let store = &shared.state.store;
    let data = pages::Overview {
        flows: shared.state.catalog.snapshot(),
        runs: store.recent_runs(None, RECENT_RUNS).await?,
        health: Health::load(store, Utc::now()).await?,
        restock: store.latest_restock_suggestions().await?,
        open_dead_letters: store.open_dead_letters_per_flow().await?.into_iter().collect(),
    };
    Ok(Html(pages::overview(&data)))
}

async fn flow(State(shared): State<Arc<Shared>>, Path(name): Path<String>) -> Result<Html<String>, PageError> {
    let entry =
        shared.state.catalog.find(&name).ok_or_else(|| PageError::NotFound(format!("No flow is named {name:?}.")))?;
    let store = &shared.state.store;
    let runs = store.recent_runs(Some(&name), RECENT_RUNS).await?;
    let last = runs.iter().find(|run| run.status != RunStatus::Running);
    let last_nodes = match last {
        Some(run) => store.run_nodes(&run.id).await?,
        None => Vec::new(),
    };
    Ok(Html(pages::flow(&entry, &runs, last.map(|run| (run, last_nodes.as_slice())))))
}

async fn run(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Result<Html<String>, PageError> {
    let store = &shared.state.store;
    let run = store.run(&id).await?.ok_or_else(|| PageError::NotFound(format!("No run has the id {id:?}.")))?;
    let nodes = store.run_nodes(&id).await?;
    let entry = shared.state.catalog.find(&run.flow);
    Ok(Html(pages::run(&run, &nodes, entry.as_ref().and_then(|e| e.flow.as_deref()))))
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
