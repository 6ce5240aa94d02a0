//! The console's JSON: what the read-only views of the front-end show (the
//! overview, a flow's page, a run's page), read from the catalog and the
//! store. Viewer permission.
//!
//! Nothing here carries a node's `with:` settings or any config value:
//! settings may name the variables secrets come from, and the config holds
//! secrets. A node is its id, type, role, inputs and `when:` only.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Shared;
use super::health::{Health, Lag};
use crate::flow::{Flow, NodeSpec, Trigger};
use crate::nodes::Role;
use crate::server::catalog::FlowEntry;
use crate::store::{
    Alert, AppBan, BreakerRow, NodeRunRecord, Reauth, RestockSuggestion, RunRecord, RunStatus, StoreError,
};

/// Runs listed on the overview and on a flow's page.
const RECENT_RUNS: u32 = 25;

/// `GET /api/overview`.
#[derive(Debug, Serialize)]
pub struct Overview {
    /// When the server read it (the views show "as of").
    pub now: DateTime<Utc>,
    /// Every flow file the catalog holds.
    pub flows: Vec<FlowFacts>,
    /// Every stored breaker.
    pub breakers: Vec<BreakerRow>,
    /// Bans in force.
    pub bans: Vec<AppBan>,
    /// Shops whose seller must authorise again.
    pub reauth: Vec<Reauth>,
    /// Each flow's incremental stream per shop.
    pub lags: Vec<LagView>,
    /// Open alerts.
    pub alerts: Vec<Alert>,
    /// The latest restock run's suggestions (all of them; the view lists
    /// those with something to order).
    pub restock: Vec<RestockSuggestion>,
    /// The latest runs of every flow, newest first.
    pub runs: Vec<RunRecord>,
}

/// One sync lag.
#[derive(Debug, Serialize)]
pub struct LagView {
    /// The platform's name.
    pub platform: String,
    /// The shop's name.
    pub shop: String,
    /// The flow's cursor stream.
    pub stream: String,
    /// The end of the last synced window.
    pub until: Option<DateTime<Utc>>,
    /// Seconds behind now.
    pub seconds: Option<f64>,
}

impl From<Lag> for LagView {
    fn from(lag: Lag) -> Self {
        Self { platform: lag.platform, shop: lag.shop, stream: lag.stream, until: lag.until, seconds: lag.seconds }
    }
}

/// What the catalog knows of one flow file.
#[derive(Debug, Serialize)]
pub struct FlowFacts {
    /// The flow's name (the file's stem while it never validated).
    pub name: String,
    /// The file, as `serve` was given it.
    pub file: String,
    /// `description:` of the running version.
    pub description: Option<String>,
    /// `every 5m`, `cron 0 3 * * * (Asia/Shanghai)`, `manual`; `None` when
    /// the file never validated.
    pub trigger: Option<String>,
    /// The shops it runs for.
    pub shops: Vec<String>,
    /// When it runs next.
    pub next_run: Option<DateTime<Utc>>,
    /// The shops it is running for now.
    pub running: Vec<String>,
    /// When the running version was loaded.
    pub loaded_at: Option<DateTime<Utc>>,
    /// The last load's errors, `path:line:col: message`.
    pub errors: Vec<String>,
    /// Dead letters still open (`orderflow dead-letters`).
    pub open_dead_letters: u64,
}

impl FlowFacts {
    fn of(entry: &FlowEntry, open_dead_letters: u64) -> Self {
        Self {
            name: entry.name(),
            file: entry.file.display().to_string(),
            description: entry.flow.as_ref().map(|flow| flow.description.clone()),
            trigger: entry.flow.as_deref().map(trigger),
            shops: entry.shops.clone(),
            next_run: entry.next_run,
            running: entry.running.iter().cloned().collect(),
            loaded_at: entry.loaded_at,
            errors: entry.errors.clone(),
            open_dead_letters,
        }
    }
}

/// The running version's graph: `nodes:` and `errors:`.
#[derive(Debug, Serialize)]
pub struct Graph {
    /// Every node of both sections.
    pub nodes: Vec<GraphNode>,
}

/// One node as the views draw it: never its settings.
#[derive(Debug, Serialize)]
pub struct GraphNode {
    /// Its id.
    pub id: String,
    /// `use:`.
    #[serde(rename = "use")]
    pub type_name: String,
    /// `source` or `transform`.
    pub role: &'static str,
    /// `nodes` or `errors`.
    pub section: &'static str,
    /// `input:`.
    pub inputs: Vec<String>,
    /// `when:`, as written (an expression over records, no setting).
    pub when: Option<String>,
}

impl Graph {
    fn of(flow: &Flow) -> Self {
        let node = |section: &'static str| {
            move |spec: &NodeSpec| GraphNode {
                id: spec.id.clone(),
                type_name: spec.type_name.clone(),
                role: match spec.role {
                    Role::Source => "source",
                    Role::Transform => "transform",
                },
                section,
                inputs: spec.inputs.clone(),
                when: spec.when.as_ref().map(|when| when.source.clone()),
            }
        };
        let nodes = flow.nodes.iter().map(node("nodes")).chain(flow.error_nodes.iter().map(node("errors"))).collect();
        Self { nodes }
    }
}

/// `GET /api/flows/{name}/runs`: the flow as `serve` runs it, its runs and
/// the node records of its last finished run (the counts on the graph).
#[derive(Debug, Serialize)]
pub struct FlowPage {
    /// The catalog's facts.
    pub flow: FlowFacts,
    /// The running version's graph; `None` when the file never validated.
    pub graph: Option<Graph>,
    /// Its latest runs, newest first.
    pub runs: Vec<RunRecord>,
    /// The latest finished run and its nodes.
    pub last_run: Option<RecordedRun>,
}

/// A run and what each of its nodes did.
#[derive(Debug, Serialize)]
pub struct RecordedRun {
    /// The run.
    pub run: RunRecord,
    /// Its nodes' counts, timings and errors, as recorded when it finished.
    pub nodes: Vec<NodeRunRecord>,
}

/// `GET /api/runs/{id}`: the run, each node's counts, timings and error,
/// and its flow's graph when that flow is loaded.
#[derive(Debug, Serialize)]
pub struct RunPage {
    /// The run and its nodes.
    #[serde(flatten)]
    pub recorded: RecordedRun,
    /// The graph of its flow's running version.
    pub graph: Option<Graph>,
}

/// A console request that could not be answered, as `{"error": "…"}`.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConsoleError {
    /// 404: no such flow or run.
    #[error("{0}")]
    NotFound(String),
    /// 500; the error is logged, never sent.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ConsoleError {
    fn no_flow(name: &str) -> Self {
        ConsoleError::NotFound(format!("no flow is named {name:?}"))
    }

    fn no_run(id: &str) -> Self {
        ConsoleError::NotFound(format!("no run has the id {id:?}"))
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ConsoleError::NotFound(what) => (StatusCode::NOT_FOUND, what.clone()),
            ConsoleError::Store(error) => {
                tracing::error!(%error, "Reading the store for the console failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the database could not be read; the server's log says why".to_owned(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

pub(super) async fn overview(State(shared): State<Arc<Shared>>) -> Result<Json<Overview>, ConsoleError> {
    let store = &shared.state.store;
    let now = Utc::now();
    let dead_letters: HashMap<String, u64> = store.open_dead_letters_per_flow().await?.into_iter().collect();
    let flows = shared
        .state
        .catalog
        .snapshot()
        .iter()
        .map(|entry| FlowFacts::of(entry, dead_letters.get(&entry.name()).copied().unwrap_or(0)))
        .collect();
    let Health { bans, reauth, breakers, alerts, lags } = Health::load(store, now).await?;
    Ok(Json(Overview {
        now,
        flows,
        breakers,
        bans,
        reauth,
        lags: lags.into_iter().map(LagView::from).collect(),
        alerts,
        restock: store.latest_restock_suggestions().await?,
        runs: store.recent_runs(None, RECENT_RUNS).await?,
    }))
}

pub(super) async fn flow(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Result<Json<FlowPage>, ConsoleError> {
    let entry = shared.state.catalog.find(&name).ok_or_else(|| ConsoleError::no_flow(&name))?;
    let store = &shared.state.store;
    let dead_letters = store.open_dead_letters_per_flow().await?;
    let open = dead_letters.iter().find(|(flow, _)| *flow == name).map_or(0, |(_, count)| *count);
    let runs = store.recent_runs(Some(&name), RECENT_RUNS).await?;
    let last_run = match runs.iter().find(|run| run.status != RunStatus::Running) {
        Some(run) => Some(RecordedRun { run: run.clone(), nodes: store.run_nodes(&run.id).await? }),
        None => None,
    };
    Ok(Json(FlowPage {
        flow: FlowFacts::of(&entry, open),
        graph: entry.flow.as_deref().map(Graph::of),
        runs,
        last_run,
    }))
}

pub(super) async fn run(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Json<RunPage>, ConsoleError> {
    let store = &shared.state.store;
    let run = store.run(&id).await?.ok_or_else(|| ConsoleError::no_run(&id))?;
    let nodes = store.run_nodes(&id).await?;
    let graph = shared.state.catalog.find(&run.flow).and_then(|entry| entry.flow.as_deref().map(Graph::of));
    Ok(Json(RunPage { recorded: RecordedRun { run, nodes }, graph }))
}

fn trigger(flow: &Flow) -> String {
    match &flow.trigger {
        Some(Trigger::Every(every)) => format!("every {}", humantime::format_duration(*every)),
        Some(Trigger::Cron { expression, timezone }) => format!("cron {expression} ({timezone})"),
        None => "manual".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(error: ConsoleError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        (status, serde_json::from_slice(&body).expect("JSON"))
    }

    #[tokio::test]
    async fn a_missing_flow_is_named_and_a_store_failure_is_not_detailed() {
        let (status, body) = answer(ConsoleError::no_flow("a\"b")).await;
        assert_eq!(
            (status, body),
            (StatusCode::NOT_FOUND, serde_json::json!({"error": "no flow is named \"a\\\"b\""}))
        );
        let failure = StoreError::InvalidValue { field: "dsn".into(), reason: "mysql://root:hunter2@db".into() };
        let (status, body) = answer(ConsoleError::Store(failure)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body.to_string().contains("hunter2"), "the store's error stays in the log: {body}");
    }
}
