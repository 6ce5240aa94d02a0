//! `log`: writes records to the log and passes them on.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{
    BuildContext, BuildError, Built, NodeContext, NodeError, NodeKind, Output, Role, Transform, Typing, list_entries,
};
use crate::record::Batch;

/// Writes records to the log (through `tracing`, so `RUST_LOG` applies) and
/// passes them on unchanged.
///
/// Useful while writing a flow, and as an `errors:` handler.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// The log level.
    #[serde(default)]
    pub level: LogLevel,
    /// The log message each record is written under.
    #[serde(default = "default_message")]
    pub message: String,
    /// Only these fields are written (all when empty).
    #[serde(default)]
    pub fields: Vec<String>,
    /// Writes one record in this many (1 = every record), to keep a big
    /// pull from flooding the log.
    #[serde(default = "default_every")]
    #[schemars(range(min = 1))]
    pub every: u64,
}

fn default_message() -> String {
    "Record.".into()
}

fn default_every() -> u64 {
    1
}

/// A log level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Info.
    #[default]
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

/// The `log` node type.
pub struct Log;

impl NodeKind for Log {
    const TYPE: &'static str = "log";
    const ROLE: Role = Role::Transform;
    type Settings = LogSettings;

    fn example() -> &'static str {
        "show:\n  use: log\n  input: orders\n  with:\n    level: info\n    fields: [tid, status]\n    every: 100\n"
    }

    fn output() -> Output {
        Output::unchanged()
    }

    fn typing(settings: &LogSettings, _ctx: &BuildContext) -> Result<Typing, BuildError> {
        Ok(Typing::output(Self::output()).reading_setting("fields", list_entries(&settings.fields)))
    }

    fn build(settings: LogSettings, _ctx: &BuildContext) -> Result<Built, BuildError> {
        if settings.every == 0 {
            return Err(BuildError::setting("every", "\"every\" must be at least 1"));
        }
        Ok(Built::Transform(Box::new(LogNode { settings, seen: 0 })))
    }
}

struct LogNode {
    settings: LogSettings,
    seen: u64,
}

impl LogNode {
    fn shown(&self, fields: &Map<String, Json>) -> Json {
        if self.settings.fields.is_empty() {
            return Json::Object(fields.clone());
        }
        Json::Object(
            self.settings
                .fields
                .iter()
                .filter_map(|name| fields.get(name).map(|v| (name.clone(), v.clone())))
                .collect(),
        )
    }
}

#[async_trait]
impl Transform for LogNode {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        // Formatting records nobody will see would cost a copy per record.
        let enabled = match self.settings.level {
            LogLevel::Debug => tracing::enabled!(tracing::Level::DEBUG),
            LogLevel::Info => tracing::enabled!(tracing::Level::INFO),
            LogLevel::Warn => tracing::enabled!(tracing::Level::WARN),
            LogLevel::Error => tracing::enabled!(tracing::Level::ERROR),
        };
        if !enabled {
            return Ok(batch);
        }
        for record in &batch {
            self.seen += 1;
            if (self.seen - 1) % self.settings.every != 0 {
                continue;
            }
            let shown = self.shown(&record.fields);
            let message = &self.settings.message;
            let node_id = &ctx.node_id;
            match self.settings.level {
                LogLevel::Debug => tracing::debug!(node_id, record = %shown, "{message}"),
                LogLevel::Info => tracing::info!(node_id, record = %shown, "{message}"),
                LogLevel::Warn => tracing::warn!(node_id, record = %shown, "{message}"),
                LogLevel::Error => tracing::error!(node_id, record = %shown, "{message}"),
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::testing::{assert_output, build_ctx, run_transform};
    use serde_json::json;

    #[tokio::test]
    async fn passes_records_through_unchanged() {
        let settings: LogSettings = serde_json::from_value(json!({"every": 2, "fields": ["a"]})).unwrap();
        let Built::Transform(node) = Log::build(settings, &build_ctx()).unwrap() else { panic!("a transform") };
        let input = vec![json!({"a": 1, "b": 2}), json!({"a": 3})];
        let out = run_transform(node, input.clone()).await.unwrap();
        assert_eq!(out, input);
        assert_output(&Log::output(), &input, &out);
    }

    #[test]
    fn shows_only_the_chosen_fields() {
        let settings: LogSettings = serde_json::from_value(json!({"fields": ["a", "missing"]})).unwrap();
        let node = LogNode { settings, seen: 0 };
        let record = json!({"a": 1, "b": 2});
        assert_eq!(node.shown(record.as_object().unwrap()), json!({"a": 1}));
    }

    #[test]
    fn every_zero_is_refused() {
        let settings: LogSettings = serde_json::from_value(json!({"every": 0})).unwrap();
        assert!(Log::build(settings, &build_ctx()).is_err());
    }
}
