//! `read_jsonl`: records from a JSON Lines file.

use std::path::PathBuf;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{BuildContext, BuildError, Built, Emitter, NodeError, NodeKind, Output, Role, Source};
use crate::record::Record;

/// Reads records from a JSON Lines file: one JSON object per line.
///
/// For imports and tests. Blank lines are skipped. A line that is not a JSON
/// object goes to the node's `on_error` with its line number: `fail` (the
/// default) stops the run, `skip` drops it, `dead_letter` stores it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadJsonlSettings {
    /// The file, relative to the flow file's folder.
    pub path: PathBuf,
    /// Records per batch (defaults to the engine's batch size).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub batch_size: Option<usize>,
}

/// The `read_jsonl` node type.
pub struct ReadJsonl;

impl NodeKind for ReadJsonl {
    const TYPE: &'static str = "read_jsonl";
    const ROLE: Role = Role::Source;
    type Settings = ReadJsonlSettings;

    fn example() -> &'static str {
        "orders:\n  use: read_jsonl\n  with:\n    path: ../tests/data/orders.jsonl\n"
    }

    /// Each line's object, whatever its fields: nothing after it is checked.
    fn output() -> Output {
        Output::Open
    }

    fn build(settings: ReadJsonlSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        if settings.batch_size == Some(0) {
            return Err(BuildError::setting("batch_size", "\"batch_size\" must be at least 1"));
        }
        Ok(Built::Source(Box::new(ReadJsonlNode {
            path: ctx.resolve(&settings.path),
            batch_size: settings.batch_size,
        })))
    }
}

struct ReadJsonlNode {
    path: PathBuf,
    batch_size: Option<usize>,
}

#[async_trait]
impl Source for ReadJsonlNode {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let shown = self.path.display().to_string();
        let file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| NodeError::permanent(format!("cannot open {shown}: {e}")))?;
        let batch_size = self.batch_size.unwrap_or(out.ctx().batch_size).max(1);
        let mut lines = BufReader::new(file).lines();
        let mut batch = Vec::with_capacity(batch_size);
        let mut number = 0u64;
        loop {
            let line = lines
                .next_line()
                .await
                .map_err(|e| NodeError::permanent(format!("{shown}:{}: cannot read: {e}", number + 1)))?;
            let Some(line) = line else { break };
            number += 1;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Json>(&line).map(Record::from_value) {
                Ok(Some(record)) => batch.push(record),
                Ok(None) => {
                    let reason = format!("{shown}:{number}: the line is not a JSON object");
                    out.reject(json!({ "line": number, "text": excerpt(&line) }), &reason).await?;
                }
                Err(error) => {
                    let reason = format!("{shown}:{number}: invalid JSON: {error}");
                    out.reject(json!({ "line": number, "text": excerpt(&line) }), &reason).await?;
                }
            }
            if batch.len() >= batch_size {
                out.emit(std::mem::replace(&mut batch, Vec::with_capacity(batch_size))).await?;
            }
        }
        out.emit(batch).await
    }
}

/// The start of a bad line, enough to recognise it without storing megabytes.
fn excerpt(line: &str) -> String {
    const LIMIT: usize = 200;
    match line.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::OnError;
    use crate::nodes::testing::{build_ctx, run_source};

    fn node_for(contents: &str, batch_size: Option<usize>) -> (tempfile::TempDir, Box<dyn Source>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.jsonl"), contents).unwrap();
        let mut ctx = build_ctx();
        ctx.flow_dir = dir.path().to_path_buf();
        let settings = ReadJsonlSettings { path: "in.jsonl".into(), batch_size };
        let Built::Source(node) = ReadJsonl::build(settings, &ctx).unwrap() else { panic!("a source") };
        (dir, node)
    }

    #[tokio::test]
    async fn reads_objects_in_batches_and_skips_blank_lines() {
        let (_dir, node) = node_for("{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}\n", Some(2));
        let (batches, _) = run_source(node, OnError::Fail).await.unwrap();
        assert_eq!(ReadJsonl::output(), crate::nodes::Output::Open, "a file's lines may hold any fields");
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 1]);
        assert_eq!(batches[1][0].get("a"), Some(&json!(3)));
    }

    #[tokio::test]
    async fn a_broken_line_fails_the_node_naming_file_and_line() {
        let (_dir, node) = node_for("{\"a\":1}\n{\"a\":\n", None);
        let error = run_source(node, OnError::Fail).await.unwrap_err();
        assert!(
            error.message.ends_with(":2: invalid JSON: EOF while parsing a value at line 1 column 5"),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn under_dead_letter_a_broken_line_is_stored_and_the_rest_flows() {
        let (_dir, node) = node_for("[1]\n{\"a\":1}\n", None);
        let (batches, letters) = run_source(node, OnError::DeadLetter).await.unwrap();
        assert_eq!(batches.concat().len(), 1);
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].record, json!({"line": 1, "text": "[1]"}));
        assert!(letters[0].reason.contains(":1: the line is not a JSON object"), "{}", letters[0].reason);
    }

    #[test]
    fn excerpts_are_bounded() {
        assert_eq!(excerpt(&"x".repeat(500)).chars().count(), 201);
    }
}
