//! `store`: upserts records into a SQL table.

use std::collections::BTreeMap;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

use super::{
    BuildContext, BuildError, Built, Entry, NodeContext, NodeError, NodeKind, Output, Role, Transform, Typing,
    list_entries,
};
use crate::record::{Batch, Record};
use crate::store::{ColumnKind, ColumnSpec, SqlValue, TableSpec};

/// Upserts records into a SQL table of the run's database, one transaction
/// per batch, and passes them on.
///
/// Each column takes the record field of the same name (missing fields are
/// NULL). The table is created when missing, with `key` as its primary key.
/// Re-running the same records changes nothing; with `newer_than`, a stored
/// row is never replaced by an older version of itself.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// The table (letters, digits and `_`).
    pub table: String,
    /// The columns and their types.
    pub columns: BTreeMap<String, ColumnType>,
    /// The columns that identify a row (the primary key).
    pub key: Vec<String>,
    /// A column (e.g. `modified`) whose stored value must not be newer than
    /// the incoming one for the row to be replaced.
    #[serde(default)]
    pub newer_than: Option<String>,
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Text; numbers and booleans are written as text.
    Text,
    /// A 64-bit integer; numeric strings are accepted.
    Integer,
    /// A floating-point number; numeric strings are accepted.
    Real,
    /// true / false.
    Boolean,
    /// Any JSON value, stored as its text.
    Json,
}

impl From<ColumnType> for ColumnKind {
    fn from(column: ColumnType) -> Self {
        match column {
            ColumnType::Text => ColumnKind::Text,
            ColumnType::Integer => ColumnKind::Integer,
            ColumnType::Real => ColumnKind::Real,
            ColumnType::Boolean => ColumnKind::Boolean,
            ColumnType::Json => ColumnKind::Json,
        }
    }
}

/// The `store` node type.
pub struct StoreNode;

impl NodeKind for StoreNode {
    const TYPE: &'static str = "store";
    const ROLE: Role = Role::Transform;
    type Settings = StoreSettings;

    fn example() -> &'static str {
        "save:\n  use: store\n  input: orders\n  with:\n    table: shop_orders\n    key: [tid]\n    newer_than: modified\n    columns:\n      tid: integer\n      status: text\n      modified: text\n      payment: real\n"
    }

    fn output() -> Output {
        Output::unchanged()
    }

    fn typing(settings: &StoreSettings, _ctx: &BuildContext) -> Result<Typing, BuildError> {
        let columns = settings.columns.keys().map(|name| (Entry::Key(name.clone()), name.as_str()));
        Ok(Typing::output(Self::output())
            .reading_setting("columns", columns)
            .reading_setting("key", list_entries(&settings.key))
            .reading_setting("newer_than", settings.newer_than.iter().map(|name| (Entry::Whole, name.as_str()))))
    }

    fn build(settings: StoreSettings, _ctx: &BuildContext) -> Result<Built, BuildError> {
        let columns = settings
            .columns
            .iter()
            .map(|(name, kind)| ColumnSpec { name: name.clone(), kind: (*kind).into() })
            .collect();
        let spec = TableSpec::new(settings.table.clone(), columns, settings.key.clone(), settings.newer_than.clone())
            .map_err(|error| BuildError::setting("table", error.to_string()))?;
        Ok(Built::Transform(Box::new(StoreRecords { spec, table_ready: false })))
    }
}

struct StoreRecords {
    spec: TableSpec,
    table_ready: bool,
}

impl StoreRecords {
    fn row(&self, record: &Record) -> Result<Vec<SqlValue>, NodeError> {
        self.spec
            .columns
            .iter()
            .map(|column| {
                let value = record.get(&column.name).unwrap_or(&Json::Null);
                if value.is_null() && self.spec.key.contains(&column.name) {
                    return Err(NodeError::permanent(format!(
                        "the record has no value for key column \"{}\"",
                        column.name
                    )));
                }
                to_sql(value, column.kind).map_err(|expected| {
                    NodeError::permanent(format!("field \"{}\" is {value}, expected {expected}", column.name))
                })
            })
            .collect()
    }
}

/// Converts a JSON value for a column, or says what the column expected.
fn to_sql(value: &Json, kind: ColumnKind) -> Result<SqlValue, &'static str> {
    Ok(match (kind, value) {
        (_, Json::Null) => SqlValue::Null,
        (ColumnKind::Json, other) => SqlValue::Text(other.to_string()),
        (ColumnKind::Text, Json::String(s)) => SqlValue::Text(s.clone()),
        (ColumnKind::Text, Json::Number(n)) => SqlValue::Text(n.to_string()),
        (ColumnKind::Text, Json::Bool(b)) => SqlValue::Text(b.to_string()),
        (ColumnKind::Text, _) => return Err("text"),
        (ColumnKind::Integer, Json::Number(n)) => SqlValue::Integer(n.as_i64().ok_or("a 64-bit integer")?),
        (ColumnKind::Integer, Json::String(s)) => SqlValue::Integer(s.trim().parse().map_err(|_| "an integer")?),
        (ColumnKind::Integer, _) => return Err("an integer"),
        (ColumnKind::Real, Json::Number(n)) => SqlValue::Real(n.as_f64().ok_or("a number")?),
        (ColumnKind::Real, Json::String(s)) => SqlValue::Real(s.trim().parse().map_err(|_| "a number")?),
        (ColumnKind::Real, _) => return Err("a number"),
        (ColumnKind::Boolean, Json::Bool(b)) => SqlValue::Bool(*b),
        (ColumnKind::Boolean, _) => return Err("true or false"),
    })
}

#[async_trait]
impl Transform for StoreRecords {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        if !self.table_ready {
            ctx.store.ensure_table(&self.spec).await?;
            self.table_ready = true;
        }
        let rows = batch.iter().map(|record| self.row(record)).collect::<Result<Vec<_>, _>>()?;
        ctx.store.upsert_rows(&self.spec, &rows).await?;
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::testing::{assert_output, build_ctx, run_transform_in};
    use serde_json::json;

    fn node() -> (Box<dyn Transform>, TableSpec) {
        let settings: StoreSettings = serde_json::from_value(json!({
            "table": "t", "key": ["id"], "newer_than": "v",
            "columns": {"id": "integer", "v": "integer", "name": "text", "extra": "json"}
        }))
        .unwrap();
        let Built::Transform(node) = StoreNode::build(settings, &build_ctx()).unwrap() else { panic!("a transform") };
        let spec = TableSpec::new(
            "t",
            vec![
                ColumnSpec { name: "extra".into(), kind: ColumnKind::Json },
                ColumnSpec { name: "id".into(), kind: ColumnKind::Integer },
                ColumnSpec { name: "name".into(), kind: ColumnKind::Text },
                ColumnSpec { name: "v".into(), kind: ColumnKind::Integer },
            ],
            vec!["id".into()],
            Some("v".into()),
        )
        .unwrap();
        (node, spec)
    }

    #[tokio::test]
    async fn upserts_and_never_goes_back_to_older_data() {
        let store = crate::store::Store::connect("sqlite::memory:").await.unwrap();
        let (node, spec) = node();
        let input = vec![
            json!({"id": 1, "v": 2, "name": "new", "extra": {"k": [1]}}),
            json!({"id": 1, "v": 1, "name": "old"}),
            json!({"id": "2", "v": 1, "name": 7}),
        ];
        let out = run_transform_in(&store, node, input.clone()).await.unwrap();
        assert_eq!(out, input, "records pass through");
        assert_output(&StoreNode::output(), &input, &out);
        let rows = store.fetch_all(&spec).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["name"], json!("new"));
        assert_eq!(rows[0]["extra"], json!({"k": [1]}));
        assert_eq!(rows[1]["name"], json!("7"));
    }

    #[tokio::test]
    async fn a_record_without_its_key_fails_the_batch() {
        let store = crate::store::Store::connect("sqlite::memory:").await.unwrap();
        let (node, spec) = node();
        let error = run_transform_in(&store, node, vec![json!({"id": 1, "v": 1}), json!({"v": 1})]).await.unwrap_err();
        assert!(error.message.contains("key column \"id\""), "{}", error.message);
        assert!(store.fetch_all(&spec).await.unwrap().is_empty(), "nothing half-written");
    }

    #[test]
    fn converts_values_by_column_type() {
        assert_eq!(to_sql(&json!("12"), ColumnKind::Integer), Ok(SqlValue::Integer(12)));
        assert_eq!(
            to_sql(&json!(4_611_686_018_427_387_905_i64), ColumnKind::Integer),
            Ok(SqlValue::Integer(4_611_686_018_427_387_905))
        );
        assert_eq!(to_sql(&json!("1.5"), ColumnKind::Real), Ok(SqlValue::Real(1.5)));
        assert_eq!(to_sql(&json!("x"), ColumnKind::Integer), Err("an integer"));
        assert_eq!(to_sql(&json!({"a": 1}), ColumnKind::Text), Err("text"));
    }

    #[test]
    fn an_unsafe_table_name_is_a_build_error() {
        let settings: StoreSettings =
            serde_json::from_value(json!({"table": "t; drop table x", "key": ["id"], "columns": {"id": "integer"}}))
                .unwrap();
        let Err(error) = StoreNode::build(settings, &build_ctx()) else { panic!("should not build") };
        assert_eq!(error.setting.as_deref(), Some("table"));
    }
}
