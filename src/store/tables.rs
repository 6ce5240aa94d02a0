//! User tables described at run time (the `store` node's target tables): create
//! them, upsert into them all-or-nothing, read them back.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyArguments;

use super::error::StoreError;
use super::{Store, dialect};

/// The store's own tables; a [`TableSpec`] may not name them.
const RESERVED_TABLES: &[&str] = &[
    "runs",
    "run_nodes",
    "dead_letters",
    "orders",
    "order_items",
    "sync_cursors",
    "app_bans",
    "shop_reauth",
    "breakers",
    "alerts",
    "anomalies",
    "reconciliations",
    "parcel_checks",
    "deliveries",
    "stock",
    "restock_suggestions",
    "stock_freezes",
    "stock_movements",
    "refunds",
    "leases",
    "_sqlx_migrations",
];

/// The longest identifier PostgreSQL keeps (63 bytes); MySQL allows 64.
const MAX_IDENT_LEN: usize = 63;

/// The type of a column, mapped onto each backend by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// A string. Timestamps are stored as text too, in the format of
    /// [`timestamp_text`](super::timestamp_text), so that they compare correctly.
    Text,
    /// A 64-bit signed integer.
    Integer,
    /// A 64-bit float.
    Real,
    /// A boolean; stored as 0/1 on SQLite and MySQL, read back as `true`/`false`.
    Boolean,
    /// A JSON document, stored as text and read back parsed.
    Json,
}

/// One column of a [`TableSpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    /// The column name, `[A-Za-z_][A-Za-z0-9_]*`, at most 63 characters.
    pub name: String,
    /// Its type.
    pub kind: ColumnKind,
}

impl ColumnSpec {
    /// A column called `name` of type `kind`.
    pub fn new(name: impl Into<String>, kind: ColumnKind) -> Self {
        Self { name: name.into(), kind }
    }
}

/// A table the store creates and upserts into. Build it with [`TableSpec::new`],
/// which validates every identifier; the store validates again before using a spec,
/// since the fields are public.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    /// The table name.
    pub name: String,
    /// The columns, in the order rows list their values.
    pub columns: Vec<ColumnSpec>,
    /// The primary key: one or more of the columns (e.g. `platform, shop_id, tid`).
    pub key: Vec<String>,
    /// A column (typically the platform's `modified` time) that guards updates: an
    /// existing row is replaced only when its stored value is NULL or `<=` the
    /// incoming one, so older data never overwrites newer data.
    pub newer_than: Option<String>,
}

impl TableSpec {
    /// A validated spec. Fails, naming the problem, when an identifier is not
    /// `^[A-Za-z_][A-Za-z0-9_]{0,62}$`, the name is one of the store's own tables, a
    /// column appears twice (case-insensitively, as MySQL and SQLite compare them),
    /// the key is empty or names an unknown column, or `newer_than` is not a Text,
    /// Integer or Real column.
    pub fn new(
        name: impl Into<String>,
        columns: Vec<ColumnSpec>,
        key: Vec<String>,
        newer_than: Option<String>,
    ) -> Result<TableSpec, StoreError> {
        let spec = TableSpec { name: name.into(), columns, key, newer_than };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks everything [`TableSpec::new`] checks.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |msg: String| Err(StoreError::InvalidSpec(msg));
        check_ident("table name", &self.name)?;
        if RESERVED_TABLES.iter().any(|t| t.eq_ignore_ascii_case(&self.name)) {
            return invalid(format!("table name {} is reserved for the store", self.name));
        }
        if self.columns.is_empty() {
            return invalid(format!("table {} has no columns", self.name));
        }
        for (i, column) in self.columns.iter().enumerate() {
            check_ident("column name", &column.name)?;
            if self.columns[..i].iter().any(|c| c.name.eq_ignore_ascii_case(&column.name)) {
                return invalid(format!("column {} appears twice in table {}", column.name, self.name));
            }
        }
        if self.key.is_empty() {
            return invalid(format!("table {} has an empty key", self.name));
        }
        for (i, key) in self.key.iter().enumerate() {
            if self.column(key).is_none() {
                return invalid(format!("key column {key} is not a column of table {}", self.name));
            }
            if self.key[..i].contains(key) {
                return invalid(format!("key column {key} appears twice in table {}", self.name));
            }
        }
        if let Some(guard) = &self.newer_than {
            match self.column(guard) {
                None => {
                    return invalid(format!("newer_than column {guard} is not a column of table {}", self.name));
                }
                Some(ColumnSpec { kind: ColumnKind::Boolean | ColumnKind::Json, .. }) => {
                    return invalid(format!(
                        "newer_than column {guard} of table {} must be text, integer or real",
                        self.name
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Checks that `row` has one value of the right kind per column.
    fn check_row(&self, index: usize, row: &[SqlValue]) -> Result<(), StoreError> {
        let invalid = |reason: String| StoreError::InvalidRow { table: self.name.clone(), index, reason };
        if row.len() != self.columns.len() {
            return Err(invalid(format!("expected {} values, got {}", self.columns.len(), row.len())));
        }
        for (column, value) in self.columns.iter().zip(row) {
            let fits = match (column.kind, value) {
                (_, SqlValue::Null) => true,
                (ColumnKind::Text, SqlValue::Text(_)) => true,
                (ColumnKind::Json, SqlValue::Text(text)) => {
                    if let Err(error) = serde_json::from_str::<serde_json::Value>(text) {
                        return Err(invalid(format!("column {} holds invalid json: {error}", column.name)));
                    }
                    true
                }
                (ColumnKind::Integer, SqlValue::Integer(_)) => true,
                (ColumnKind::Real, SqlValue::Integer(_)) => true,
                (ColumnKind::Real, SqlValue::Real(r)) => {
                    if !r.is_finite() {
                        return Err(invalid(format!(
                            "column {} holds {r}, which no backend stores alike",
                            column.name
                        )));
                    }
                    true
                }
                (ColumnKind::Boolean, SqlValue::Bool(_)) => true,
                _ => false,
            };
            if !fits {
                return Err(invalid(format!(
                    "column {} is {:?} but the value is {}",
                    column.name,
                    column.kind,
                    value.kind_name()
                )));
            }
        }
        Ok(())
    }
}

/// One value of a row passed to [`Store::upsert_rows`].
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// SQL NULL (fits any column except a key column).
    Null,
    /// Fits Text and Json columns; for Json it must be a valid JSON document.
    Text(String),
    /// Fits Integer and Real columns.
    Integer(i64),
    /// Fits Real columns; must be finite.
    Real(f64),
    /// Fits Boolean columns.
    Bool(bool),
}

impl SqlValue {
    fn kind_name(&self) -> &'static str {
        match self {
            SqlValue::Null => "null",
            SqlValue::Text(_) => "text",
            SqlValue::Integer(_) => "an integer",
            SqlValue::Real(_) => "a real",
            SqlValue::Bool(_) => "a boolean",
        }
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(value.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(value)
    }
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        SqlValue::Integer(value)
    }
}

impl From<f64> for SqlValue {
    fn from(value: f64) -> Self {
        SqlValue::Real(value)
    }
}

impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Bool(value)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlValue::Null, Into::into)
    }
}

fn check_ident(what: &str, ident: &str) -> Result<(), StoreError> {
    let mut chars = ident.chars();
    let valid = ident.len() <= MAX_IDENT_LEN
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::InvalidSpec(format!("{what} {ident:?} must match ^[A-Za-z_][A-Za-z0-9_]{{0,62}}$")))
    }
}

impl Store {
    /// Creates the table if it does not exist, with the spec's key as primary key.
    /// An existing table is left as it is, even if its columns differ from the spec.
    pub async fn ensure_table(&self, spec: &TableSpec) -> Result<(), StoreError> {
        spec.validate()?;
        let sql = dialect::create_table(self.backend, spec);
        sqlx::query(&sql).execute(&self.pool).await.map_err(StoreError::db(format!("creating table {}", spec.name)))?;
        Ok(())
    }

    /// Upserts all rows in one transaction: either every row is written or none is.
    /// Each row has one value per spec column, in spec order. Rows are checked
    /// against the spec before anything is sent. With `newer_than`, a row whose
    /// stored guard value is newer than the incoming one is left alone (not an error).
    pub async fn upsert_rows(&self, spec: &TableSpec, rows: &[Vec<SqlValue>]) -> Result<(), StoreError> {
        spec.validate()?;
        for (index, row) in rows.iter().enumerate() {
            spec.check_row(index, row)?;
        }
        if rows.is_empty() {
            return Ok(());
        }
        let columns: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
        let key: Vec<&str> = spec.key.iter().map(String::as_str).collect();
        let sql = dialect::upsert(
            self.backend,
            &spec.name,
            &columns,
            &key,
            spec.newer_than.as_deref().and_then(|g| spec.column(g)).map(|c| (c.name.as_str(), c.kind)),
        );
        let action = || format!("upserting rows into {}", spec.name);
        let mut tx = self.begin_write().await?;
        for (index, row) in rows.iter().enumerate() {
            let mut args = AnyArguments::default();
            for (column, value) in spec.columns.iter().zip(row) {
                dialect::bind(self.backend, &mut args, column.kind, value).map_err(|error| StoreError::InvalidRow {
                    table: spec.name.clone(),
                    index,
                    reason: error.to_string(),
                })?;
            }
            sqlx::query_with(&sql, args)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(format!("upserting row {index} into {}", spec.name)))?;
        }
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(())
    }

    /// Every row of the table ordered by its key, each as a JSON object from column
    /// name to value: text as strings, integers and reals as numbers, booleans as
    /// `true`/`false`, JSON columns parsed. Meant for tests and the CLI, not for
    /// large tables.
    pub async fn fetch_all(
        &self,
        spec: &TableSpec,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, StoreError> {
        spec.validate()?;
        let sql = dialect::select_all(self.backend, spec);
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading table {}", spec.name)))?;
        rows.iter()
            .map(|row| {
                let mut object = serde_json::Map::with_capacity(spec.columns.len());
                for (index, column) in spec.columns.iter().enumerate() {
                    let value =
                        dialect::read_json(row, index, column.kind).map_err(|error| StoreError::InvalidValue {
                            field: format!("{}.{}", spec.name, column.name),
                            reason: error.to_string(),
                        })?;
                    object.insert(column.name.clone(), value);
                }
                Ok(object)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<ColumnSpec> {
        vec![
            ColumnSpec::new("tid", ColumnKind::Text),
            ColumnSpec::new("modified", ColumnKind::Text),
            ColumnSpec::new("raw", ColumnKind::Json),
        ]
    }

    #[test]
    fn accepts_a_valid_spec() {
        let spec = TableSpec::new("shop_orders", columns(), vec!["tid".into()], Some("modified".into()));
        assert!(spec.is_ok(), "{spec:?}");
    }

    #[test]
    fn names_what_is_wrong() {
        let cases: Vec<(TableSpec, &str)> = vec![
            (
                TableSpec {
                    name: "orders; drop table x".into(),
                    columns: columns(),
                    key: vec!["tid".into()],
                    newer_than: None,
                },
                "table name",
            ),
            (TableSpec { name: "shop_orders".into(), columns: columns(), key: vec![], newer_than: None }, "empty key"),
            (
                TableSpec { name: "shop_orders".into(), columns: columns(), key: vec!["oid".into()], newer_than: None },
                "key column oid",
            ),
            (
                TableSpec {
                    name: "shop_orders".into(),
                    columns: columns(),
                    key: vec!["tid".into()],
                    newer_than: Some("raw".into()),
                },
                "newer_than column raw",
            ),
            (
                TableSpec {
                    name: "shop_orders".into(),
                    columns: vec![ColumnSpec::new("tid", ColumnKind::Text), ColumnSpec::new("TID", ColumnKind::Text)],
                    key: vec!["tid".into()],
                    newer_than: None,
                },
                "appears twice",
            ),
            (
                TableSpec { name: "runs".into(), columns: columns(), key: vec!["tid".into()], newer_than: None },
                "reserved",
            ),
        ];
        for (spec, expected) in cases {
            let error = spec.validate().expect_err(expected).to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn rejects_rows_that_do_not_fit() {
        let spec = TableSpec::new("shop_orders", columns(), vec!["tid".into()], None).unwrap();
        assert!(spec.check_row(0, &["1".into(), "t".into(), "{}".into()]).is_ok());
        assert!(spec.check_row(0, &["1".into()]).is_err());
        assert!(spec.check_row(0, &[1i64.into(), "t".into(), "{}".into()]).is_err());
        assert!(spec.check_row(0, &["1".into(), "t".into(), "{".into()]).is_err());
    }
}
