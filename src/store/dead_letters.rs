//! Dead letters: records a node gave up on, kept whole for inspection and replay.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::{Store, parse_timestamp, timestamp_text};

/// A record a node could not process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The run it happened in.
    pub run_id: String,
    /// The flow's name.
    pub flow: String,
    /// The node that gave up.
    pub node_id: String,
    /// The record, as JSON (see `Record::to_json`). Stored as text; integers such as
    /// Taobao `tid`s above 2^53 survive exactly as long as they fit an `i64`/`u64`.
    pub record: serde_json::Value,
    /// Why the node gave up.
    pub reason: String,
    /// When. Stored with millisecond precision.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    run_id: DbText,
    flow: DbText,
    node_id: DbText,
    record: DbText,
    reason: DbText,
    created_at: DbText,
}

impl TryFrom<DeadLetterRow> for DeadLetter {
    type Error = StoreError;

    fn try_from(row: DeadLetterRow) -> Result<Self, StoreError> {
        Ok(DeadLetter {
            record: serde_json::from_str(&row.record.0).map_err(|error| StoreError::InvalidValue {
                field: "dead_letters.record".into(),
                reason: error.to_string(),
            })?,
            created_at: parse_timestamp("dead_letters.created_at", &row.created_at.0)?,
            run_id: row.run_id.into(),
            flow: row.flow.into(),
            node_id: row.node_id.into(),
            reason: row.reason.into(),
        })
    }
}

impl Store {
    /// Stores a dead letter.
    pub async fn insert_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        let record = serde_json::to_string(&letter.record).map_err(|error| StoreError::InvalidValue {
            field: "dead_letters.record".into(),
            reason: error.to_string(),
        })?;
        let sql = dialect::sql(
            self.backend,
            "INSERT INTO dead_letters (run_id, flow, node_id, record, reason, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(&letter.run_id)
            .bind(&letter.flow)
            .bind(&letter.node_id)
            .bind(record)
            .bind(&letter.reason)
            .bind(timestamp_text(letter.created_at));
        self.execute_write(query, format!("inserting a dead letter for run {}", letter.run_id)).await?;
        Ok(())
    }

    /// The dead letters of a run, oldest first.
    pub async fn dead_letters(&self, run_id: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT run_id, flow, node_id, record, reason, created_at \
             FROM dead_letters WHERE run_id = ? ORDER BY id",
        );
        let rows = sqlx::query_as::<_, DeadLetterRow>(&sql)
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading dead letters of run {run_id}")))?;
        rows.into_iter().map(DeadLetter::try_from).collect()
    }
}
