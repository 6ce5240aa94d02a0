//! Run records: one row per flow run, one per node of a finished run.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::{Store, parse_timestamp, timestamp_text};

/// What [`Store::insert_run`] records when a run starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStart {
    /// The run id (a UUID v7, so ids sort by start time); at most 64 characters.
    pub id: String,
    /// The flow's name.
    pub flow: String,
    /// What started the run, e.g. `schedule`, `manual`, `catch_up`.
    pub trigger: String,
    /// When it started. Stored with millisecond precision.
    pub started_at: DateTime<Utc>,
    /// The shop the run is for, when the flow has one.
    pub shop: Option<String>,
    /// The `serve` process (worker id) that runs it; `None` for `orderflow run`.
    pub worker: Option<String>,
}

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started and not finished (or the process died before finishing it).
    Running,
    /// Every node succeeded.
    Succeeded,
    /// Finished, but some records failed (see the dead letters).
    Partial,
    /// A node failed and the run stopped.
    Failed,
    /// Stopped on request or shutdown.
    Cancelled,
    /// Stopped early on purpose, to go on later: a rate-limit ban longer than the
    /// run may wait, or an open circuit breaker between its hourly full pulls. Every
    /// cursor is at the last window the run committed, so the next run resumes there.
    Paused,
}

impl RunStatus {
    /// The stored name: `running`, `succeeded`, `partial`, `failed`, `cancelled`,
    /// `paused`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Paused => "paused",
        }
    }
}

impl FromStr for RunStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "partial" => RunStatus::Partial,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "paused" => RunStatus::Paused,
            _ => return Err(unknown_status("run status", s)),
        })
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one node of a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// The node processed all its input.
    Succeeded,
    /// The node failed.
    Failed,
    /// The node failed, but its `on_error` (`skip` or `dead_letter`) let
    /// the run go on without it.
    Skipped,
    /// The node was stopped by cancellation.
    Cancelled,
    /// The node stopped its run on purpose (a long ban, an open breaker);
    /// a later run goes on.
    Paused,
}

impl NodeStatus {
    /// The stored name: `succeeded`, `failed`, `skipped`, `cancelled`, `paused`.
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeStatus::Succeeded => "succeeded",
            NodeStatus::Failed => "failed",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Cancelled => "cancelled",
            NodeStatus::Paused => "paused",
        }
    }
}

impl FromStr for NodeStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "succeeded" => NodeStatus::Succeeded,
            "failed" => NodeStatus::Failed,
            "skipped" => NodeStatus::Skipped,
            "cancelled" => NodeStatus::Cancelled,
            "paused" => NodeStatus::Paused,
            _ => return Err(unknown_status("node status", s)),
        })
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn unknown_status(field: &str, value: &str) -> StoreError {
    StoreError::InvalidValue { field: field.to_owned(), reason: format!("unknown status {value:?}") }
}

/// What one node of a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRunRecord {
    /// The node's id in the flow.
    pub node_id: String,
    /// The node's type, e.g. `fetch_increment`.
    pub node_type: String,
    /// How it ended.
    pub status: NodeStatus,
    /// Records received.
    pub records_in: u64,
    /// Records sent on.
    pub records_out: u64,
    /// Records or calls that failed.
    pub errors: u64,
    /// When it started, if it did. Stored with millisecond precision.
    pub started_at: Option<DateTime<Utc>>,
    /// When it finished, if it did. Stored with millisecond precision.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
}

/// What [`Store::finish_run`] records when a run ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFinish {
    /// The run id given to [`Store::insert_run`].
    pub id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Why it failed, for `failed` runs.
    pub error: Option<String>,
    /// One record per node, in the order they should be shown.
    pub nodes: Vec<NodeRunRecord>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id.
    pub id: String,
    /// The flow's name.
    pub flow: String,
    /// What started the run.
    pub trigger: String,
    /// Its state.
    pub status: RunStatus,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended, if it did.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<String>,
    /// The shop it ran for, when recorded.
    pub shop: Option<String>,
    /// The `serve` worker that ran it, when one did.
    pub worker: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RunRow {
    id: DbText,
    flow: DbText,
    trigger_kind: DbText,
    status: DbText,
    started_at: DbText,
    finished_at: Option<DbText>,
    error: Option<DbText>,
    shop: Option<DbText>,
    worker: Option<DbText>,
}

impl TryFrom<RunRow> for RunRecord {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<Self, StoreError> {
        Ok(RunRecord {
            status: row.status.0.parse()?,
            started_at: parse_timestamp("runs.started_at", &row.started_at.0)?,
            finished_at: row.finished_at.map(|t| parse_timestamp("runs.finished_at", &t.0)).transpose()?,
            id: row.id.into(),
            flow: row.flow.into(),
            trigger: row.trigger_kind.into(),
            error: row.error.map(Into::into),
            shop: row.shop.map(Into::into),
            worker: row.worker.map(Into::into),
        })
    }
}

#[derive(sqlx::FromRow)]
struct LastStartRow {
    shop: Option<DbText>,
    started_at: DbText,
}

#[derive(sqlx::FromRow)]
struct NodeRow {
    node_id: DbText,
    node_type: DbText,
    status: DbText,
    records_in: i64,
    records_out: i64,
    errors: i64,
    started_at: Option<DbText>,
    finished_at: Option<DbText>,
    error: Option<DbText>,
}

impl TryFrom<NodeRow> for NodeRunRecord {
    type Error = StoreError;

    fn try_from(row: NodeRow) -> Result<Self, StoreError> {
        Ok(NodeRunRecord {
            status: row.status.0.parse()?,
            records_in: from_count("run_nodes.records_in", row.records_in)?,
            records_out: from_count("run_nodes.records_out", row.records_out)?,
            errors: from_count("run_nodes.errors", row.errors)?,
            started_at: row.started_at.map(|t| parse_timestamp("run_nodes.started_at", &t.0)).transpose()?,
            finished_at: row.finished_at.map(|t| parse_timestamp("run_nodes.finished_at", &t.0)).transpose()?,
            node_id: row.node_id.into(),
            node_type: row.node_type.into(),
            error: row.error.map(Into::into),
        })
    }
}

/// Counts are BIGINT columns; anything past `i64::MAX` cannot be stored.
pub(super) fn to_count(field: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::InvalidValue {
        field: field.to_owned(),
        reason: format!("{n} does not fit a BIGINT column"),
    })
}

pub(super) fn from_count(field: &str, n: i64) -> Result<u64, StoreError> {
    u64::try_from(n)
        .map_err(|_| StoreError::InvalidValue { field: field.to_owned(), reason: format!("negative count {n}") })
}

const RUN_COLUMNS: &str = "id, flow, trigger_kind, status, started_at, finished_at, error, shop, worker";

const NODE_COLUMNS: [&str; 11] = [
    "run_id",
    "node_id",
    "seq",
    "node_type",
    "status",
    "records_in",
    "records_out",
    "errors",
    "started_at",
    "finished_at",
    "error",
];

impl Store {
    /// Records a run as `running`. Fails if a run with this id exists.
    pub async fn insert_run(&self, run: &RunStart) -> Result<(), StoreError> {
        let sql = dialect::sql(
            self.backend,
            "INSERT INTO runs (id, flow, trigger_kind, status, started_at, shop, worker) VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        sqlx::query(&sql)
            .bind(&run.id)
            .bind(&run.flow)
            .bind(&run.trigger)
            .bind(RunStatus::Running.as_str())
            .bind(timestamp_text(run.started_at))
            .bind(run.shop.clone())
            .bind(run.worker.clone())
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(format!("inserting run {}", run.id)))?;
        Ok(())
    }

    /// Updates the run row and writes one row per node, in one transaction. Calling
    /// it again for the same run overwrites the earlier report.
    pub async fn finish_run(&self, finish: &RunFinish) -> Result<(), StoreError> {
        let action = || format!("finishing run {}", finish.id);
        // Convert before opening the transaction, so a bad count costs no round trip.
        let mut nodes = Vec::with_capacity(finish.nodes.len());
        for node in &finish.nodes {
            nodes.push((
                node,
                to_count("run_nodes.records_in", node.records_in)?,
                to_count("run_nodes.records_out", node.records_out)?,
                to_count("run_nodes.errors", node.errors)?,
            ));
        }

        let mut tx = self.pool.begin().await.map_err(StoreError::db(action()))?;
        let update = dialect::sql(self.backend, "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?");
        let result = sqlx::query(&update)
            .bind(finish.status.as_str())
            .bind(timestamp_text(finish.finished_at))
            .bind(finish.error.clone())
            .bind(&finish.id)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        // MySQL counts matched rows here too: sqlx connects with CLIENT_FOUND_ROWS.
        if result.rows_affected() == 0 {
            return Err(StoreError::RunNotFound(finish.id.clone()));
        }

        let upsert = dialect::upsert(self.backend, "run_nodes", &NODE_COLUMNS, &["run_id", "node_id"], None);
        for (seq, (node, records_in, records_out, errors)) in nodes.into_iter().enumerate() {
            sqlx::query(&upsert)
                .bind(&finish.id)
                .bind(&node.node_id)
                .bind(seq as i64)
                .bind(&node.node_type)
                .bind(node.status.as_str())
                .bind(records_in)
                .bind(records_out)
                .bind(errors)
                .bind(node.started_at.map(timestamp_text))
                .bind(node.finished_at.map(timestamp_text))
                .bind(node.error.clone())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(format!("recording node {} of run {}", node.node_id, finish.id)))?;
        }
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(())
    }

    /// The latest `limit` runs, of one flow or of all, newest first.
    pub async fn recent_runs(&self, flow: Option<&str>, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        // Ties on the start time fall back to the id, which for UUID v7 ids is the
        // start order too.
        let order = format!("ORDER BY started_at DESC, id DESC LIMIT {limit}");
        let query = match flow {
            Some(_) => format!("SELECT {RUN_COLUMNS} FROM runs WHERE flow = ? {order}"),
            None => format!("SELECT {RUN_COLUMNS} FROM runs {order}"),
        };
        let sql = dialect::sql(self.backend, &query);
        let mut query = sqlx::query_as::<_, RunRow>(&sql);
        if let Some(flow) = flow {
            query = query.bind(flow);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(StoreError::db("reading recent runs"))?;
        rows.into_iter().map(RunRecord::try_from).collect()
    }

    /// The run `id`, when recorded.
    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let sql = dialect::sql(self.backend, &format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?"));
        let row = sqlx::query_as::<_, RunRow>(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading run {id}")))?;
        row.map(RunRecord::try_from).transpose()
    }

    /// When `flow` last started, per shop (`None`: runs without a shop): the
    /// last fire the scheduler counts on after a restart.
    pub async fn last_run_starts(&self, flow: &str) -> Result<Vec<(Option<String>, DateTime<Utc>)>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT shop, MAX(started_at) AS started_at FROM runs WHERE flow = ? GROUP BY shop",
        );
        let rows = sqlx::query_as::<_, LastStartRow>(&sql)
            .bind(flow)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the last runs of flow {flow}")))?;
        rows.into_iter()
            .map(|row| Ok((row.shop.map(Into::into), parse_timestamp("runs.started_at", &row.started_at.0)?)))
            .collect()
    }

    /// Every run of `flow`, oldest first: what the shared-worker tests check
    /// for overlaps.
    pub async fn runs_of(&self, flow: &str) -> Result<Vec<RunRecord>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE flow = ? ORDER BY started_at, id"),
        );
        let rows = sqlx::query_as::<_, RunRow>(&sql)
            .bind(flow)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the runs of flow {flow}")))?;
        rows.into_iter().map(RunRecord::try_from).collect()
    }

    /// The node records of a run, in the order [`Store::finish_run`] received them;
    /// empty for an unknown or unfinished run.
    pub async fn run_nodes(&self, run_id: &str) -> Result<Vec<NodeRunRecord>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT node_id, node_type, status, records_in, records_out, errors, \
             started_at, finished_at, error FROM run_nodes WHERE run_id = ? ORDER BY seq",
        );
        let rows = sqlx::query_as::<_, NodeRow>(&sql)
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading nodes of run {run_id}")))?;
        rows.into_iter().map(NodeRunRecord::try_from).collect()
    }
}
