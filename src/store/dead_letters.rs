//! Dead letters: records a node gave up on or set aside, kept whole for
//! inspection and replay, each open until replayed or discarded.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::{SaveOutcome, Store, parse_timestamp, timestamp_text};
use crate::platforms::{Order, Refund};

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

/// Where a dead letter stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterState {
    /// Waiting for someone to look at it.
    Open,
    /// Fed back through the store (`orderflow dead-letters --replay`).
    Replayed,
    /// Dropped on purpose (`orderflow dead-letters --discard`).
    Discarded,
}

impl DeadLetterState {
    /// The stored name: `open`, `replayed` or `discarded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Replayed => "replayed",
            Self::Discarded => "discarded",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "open" => Ok(Self::Open),
            "replayed" => Ok(Self::Replayed),
            "discarded" => Ok(Self::Discarded),
            other => Err(StoreError::InvalidValue {
                field: "dead_letters.state".into(),
                reason: format!("{other:?} is not open, replayed or discarded"),
            }),
        }
    }
}

impl fmt::Display for DeadLetterState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dead letter as stored, with its id and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredDeadLetter {
    /// Its id, in the order letters were stored.
    pub id: i64,
    /// Open, replayed or discarded.
    pub state: DeadLetterState,
    /// When it was replayed or discarded.
    pub settled_at: Option<DateTime<Utc>>,
    /// The letter.
    #[serde(flatten)]
    pub letter: DeadLetter,
}

const COLUMNS: &str = "id, run_id, flow, node_id, record, reason, created_at, state, settled_at";

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    id: i64,
    run_id: DbText,
    flow: DbText,
    node_id: DbText,
    record: DbText,
    reason: DbText,
    created_at: DbText,
    state: DbText,
    settled_at: Option<DbText>,
}

impl TryFrom<DeadLetterRow> for StoredDeadLetter {
    type Error = StoreError;

    fn try_from(row: DeadLetterRow) -> Result<Self, StoreError> {
        Ok(StoredDeadLetter {
            id: row.id,
            state: DeadLetterState::parse(&row.state.0)?,
            settled_at: row.settled_at.map(|t| parse_timestamp("dead_letters.settled_at", &t.0)).transpose()?,
            letter: DeadLetter {
                record: serde_json::from_str(&row.record.0).map_err(|error| StoreError::InvalidValue {
                    field: "dead_letters.record".into(),
                    reason: error.to_string(),
                })?,
                created_at: parse_timestamp("dead_letters.created_at", &row.created_at.0)?,
                run_id: row.run_id.into(),
                flow: row.flow.into(),
                node_id: row.node_id.into(),
                reason: row.reason.into(),
            },
        })
    }
}

impl Store {
    /// Stores a dead letter unless the same record is already an open letter
    /// of the same flow and node: a record read again (a lookback, a page
    /// read twice, a retried run) is set aside once. True when stored.
    pub async fn insert_dead_letter(&self, letter: &DeadLetter) -> Result<bool, StoreError> {
        let record = serde_json::to_string(&letter.record).map_err(|error| StoreError::InvalidValue {
            field: "dead_letters.record".into(),
            reason: error.to_string(),
        })?;
        let held = dialect::sql(
            self.backend,
            "SELECT COUNT(*) FROM dead_letters WHERE flow = ? AND state = 'open' AND node_id = ? AND record = ?",
        );
        let (count,): (i64,) = sqlx::query_as(&held)
            .bind(&letter.flow)
            .bind(&letter.node_id)
            .bind(&record)
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db(format!(
                "looking for an open dead letter like the one of run {}",
                letter.run_id
            )))?;
        if count > 0 {
            return Ok(false);
        }
        let sql = dialect::sql(
            self.backend,
            "INSERT INTO dead_letters (run_id, flow, node_id, record, reason, created_at, state) \
             VALUES (?, ?, ?, ?, ?, ?, 'open')",
        );
        let query = sqlx::query(&sql)
            .bind(&letter.run_id)
            .bind(&letter.flow)
            .bind(&letter.node_id)
            .bind(record)
            .bind(&letter.reason)
            .bind(timestamp_text(letter.created_at));
        self.execute_write(query, format!("inserting a dead letter for run {}", letter.run_id)).await?;
        Ok(true)
    }

    /// The dead letters of a run, oldest first.
    pub async fn dead_letters(&self, run_id: &str) -> Result<Vec<DeadLetter>, StoreError> {
        let sql =
            dialect::sql(self.backend, &format!("SELECT {COLUMNS} FROM dead_letters WHERE run_id = ? ORDER BY id"));
        let rows = sqlx::query_as::<_, DeadLetterRow>(&sql)
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading dead letters of run {run_id}")))?;
        rows.into_iter().map(|row| StoredDeadLetter::try_from(row).map(|stored| stored.letter)).collect()
    }

    /// The newest `limit` dead letters, of one flow or of all, in one state or
    /// in any; newest first.
    pub async fn list_dead_letters(
        &self,
        flow: Option<&str>,
        state: Option<DeadLetterState>,
        limit: u32,
    ) -> Result<Vec<StoredDeadLetter>, StoreError> {
        let mut filters = Vec::new();
        if flow.is_some() {
            filters.push("flow = ?");
        }
        if state.is_some() {
            filters.push("state = ?");
        }
        let filter = if filters.is_empty() { String::new() } else { format!("WHERE {}", filters.join(" AND ")) };
        let sql = dialect::sql(
            self.backend,
            &format!("SELECT {COLUMNS} FROM dead_letters {filter} ORDER BY id DESC LIMIT {limit}"),
        );
        let mut query = sqlx::query_as::<_, DeadLetterRow>(&sql);
        if let Some(flow) = flow {
            query = query.bind(flow);
        }
        if let Some(state) = state {
            query = query.bind(state.as_str());
        }
        let rows = query.fetch_all(&self.pool).await.map_err(StoreError::db("listing dead letters"))?;
        rows.into_iter().map(StoredDeadLetter::try_from).collect()
    }

    /// One dead letter by id.
    pub async fn dead_letter(&self, id: i64) -> Result<Option<StoredDeadLetter>, StoreError> {
        let sql = dialect::sql(self.backend, &format!("SELECT {COLUMNS} FROM dead_letters WHERE id = ?"));
        let row = sqlx::query_as::<_, DeadLetterRow>(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading dead letter {id}")))?;
        row.map(StoredDeadLetter::try_from).transpose()
    }

    /// Moves an open dead letter to `state` (replayed or discarded) at `at`.
    /// False when no open letter has that id.
    async fn settle_dead_letter(&self, id: i64, state: DeadLetterState, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "UPDATE dead_letters SET state = ?, settled_at = ? WHERE id = ? AND state = 'open'",
        );
        let done = sqlx::query(&sql)
            .bind(state.as_str())
            .bind(timestamp_text(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(format!("marking dead letter {id} {state}")))?;
        Ok(done.rows_affected() == 1)
    }

    /// Feeds an open dead letter back through the store, after a fix: an
    /// order through [`Store::save_orders`], a refund through
    /// [`Store::save_refunds`] (so a newer stored version still wins), then
    /// marks it replayed. A record of neither shape (a platform's body the
    /// connector could not read, a flow's own record) cannot be replayed; a
    /// record the database still refuses stays open, with the refusal.
    pub async fn replay_dead_letter(&self, id: i64, at: DateTime<Utc>) -> Result<SaveOutcome, StoreError> {
        let letter = self.open_dead_letter(id).await?;
        let mut record = letter.letter.record;
        if let Some(fields) = record.as_object_mut() {
            // `Record::to_json` puts tags there; the model has no such field.
            fields.remove("_tags");
        }
        let outcome = if let Ok(order) = serde_json::from_value::<Order>(record.clone()) {
            self.save_orders(&[order], &[]).await?
        } else if let Ok(refund) = serde_json::from_value::<Refund>(record) {
            self.save_refunds(&[refund], &[]).await?
        } else {
            return Err(StoreError::DeadLetter {
                id,
                reason: "its record is neither an order nor a refund as orderflow stores them (a platform's body \
                         the connector could not read, or a flow's own record): nothing to replay; discard it once \
                         handled"
                    .into(),
            });
        };
        self.settle_dead_letter(id, DeadLetterState::Replayed, at).await?;
        Ok(outcome)
    }

    /// Discards an open dead letter.
    pub async fn discard_dead_letter(&self, id: i64, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.open_dead_letter(id).await?;
        self.settle_dead_letter(id, DeadLetterState::Discarded, at).await?;
        Ok(())
    }

    async fn open_dead_letter(&self, id: i64) -> Result<StoredDeadLetter, StoreError> {
        match self.dead_letter(id).await? {
            Some(letter) if letter.state == DeadLetterState::Open => Ok(letter),
            Some(letter) => Err(StoreError::DeadLetter { id, reason: format!("it is {} already", letter.state) }),
            None => Err(StoreError::DeadLetter { id, reason: "no such dead letter".into() }),
        }
    }
}
