//! The history of flow files saved through the editor: every version written
//! to a file and every draft kept beside it, newest last. Rows are never
//! changed; a flow's draft is its newest row when that row is a draft, so a
//! later save clears it without deleting anything.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::{Store, parse_timestamp, timestamp_text};

/// Who saved which text of a flow, and when (the text itself is apart: lists
/// leave it out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowVersion {
    /// The flow file's name without `.yaml`.
    pub flow: String,
    /// The first 16 hex characters of the SHA-256 of the text.
    pub version: String,
    /// Who saved it, as the editor named them.
    pub saved_by: String,
    /// `editor` (saved with the editor token) or `file` (the text found on
    /// disk before the first save through the editor).
    pub role: String,
    /// When. Stored with millisecond precision.
    pub saved_at: DateTime<Utc>,
    /// True for a draft, which never replaced the file.
    pub draft: bool,
}

const COLUMNS: &str = "flow, version, saved_by, role, saved_at, draft";

#[derive(sqlx::FromRow)]
struct VersionRow {
    flow: DbText,
    version: DbText,
    saved_by: DbText,
    role: DbText,
    saved_at: DbText,
    draft: i64,
}

#[derive(sqlx::FromRow)]
struct VersionTextRow {
    #[sqlx(flatten)]
    meta: VersionRow,
    yaml: DbText,
}

impl TryFrom<VersionRow> for FlowVersion {
    type Error = StoreError;

    fn try_from(row: VersionRow) -> Result<Self, StoreError> {
        Ok(FlowVersion {
            saved_at: parse_timestamp("flow_versions.saved_at", &row.saved_at.0)?,
            flow: row.flow.into(),
            version: row.version.into(),
            saved_by: row.saved_by.into(),
            role: row.role.into(),
            draft: row.draft != 0,
        })
    }
}

impl Store {
    /// Records `version` of its flow with its text `yaml`.
    pub async fn record_flow_version(&self, version: &FlowVersion, yaml: &str) -> Result<(), StoreError> {
        let sql = dialect::sql(
            self.backend,
            "INSERT INTO flow_versions (flow, version, yaml, saved_by, role, saved_at, draft) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(&sql)
            .bind(&version.flow)
            .bind(&version.version)
            .bind(yaml)
            .bind(&version.saved_by)
            .bind(&version.role)
            .bind(timestamp_text(version.saved_at))
            .bind(i64::from(version.draft));
        self.execute_write(query, format!("recording version {} of flow {}", version.version, version.flow)).await?;
        Ok(())
    }

    /// The versions and drafts of `flow`, newest first.
    pub async fn flow_versions(&self, flow: &str) -> Result<Vec<FlowVersion>, StoreError> {
        let sql =
            dialect::sql(self.backend, &format!("SELECT {COLUMNS} FROM flow_versions WHERE flow = ? ORDER BY id DESC"));
        let rows = sqlx::query_as::<_, VersionRow>(&sql)
            .bind(flow)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the versions of flow {flow}")))?;
        rows.into_iter().map(FlowVersion::try_from).collect()
    }

    /// The newest row of `flow` whose text has the version `version`, with
    /// that text.
    pub async fn flow_version(&self, flow: &str, version: &str) -> Result<Option<(FlowVersion, String)>, StoreError> {
        self.one_flow_version(
            flow,
            "AND version = ? ORDER BY id DESC LIMIT 1",
            Some(version),
            format!("reading version {version} of flow {flow}"),
        )
        .await
    }

    /// The draft of `flow` with its text: its newest row, when that is a draft.
    pub async fn flow_draft(&self, flow: &str) -> Result<Option<(FlowVersion, String)>, StoreError> {
        let newest =
            self.one_flow_version(flow, "ORDER BY id DESC LIMIT 1", None, format!("reading the draft of flow {flow}"));
        Ok(newest.await?.filter(|(version, _)| version.draft))
    }

    /// The flows that have a draft, in byte order.
    pub async fn flows_with_drafts(&self) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "SELECT v.flow FROM flow_versions v WHERE v.draft = 1 \
             AND v.id = (SELECT MAX(w.id) FROM flow_versions w WHERE w.flow = v.flow) ORDER BY v.flow{}",
            dialect::sort_text(self.backend)
        );
        let rows: Vec<(DbText,)> = sqlx::query_as(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("listing the flows with a draft"))?;
        Ok(rows.into_iter().map(|(flow,)| flow.0).collect())
    }

    async fn one_flow_version(
        &self,
        flow: &str,
        rest: &str,
        version: Option<&str>,
        action: String,
    ) -> Result<Option<(FlowVersion, String)>, StoreError> {
        let sql =
            dialect::sql(self.backend, &format!("SELECT {COLUMNS}, yaml FROM flow_versions WHERE flow = ? {rest}"));
        let mut query = sqlx::query_as::<_, VersionTextRow>(&sql).bind(flow);
        if let Some(version) = version {
            query = query.bind(version);
        }
        let row = query.fetch_optional(&self.pool).await.map_err(StoreError::db(action))?;
        row.map(|row| Ok((FlowVersion::try_from(row.meta)?, row.yaml.0))).transpose()
    }
}
