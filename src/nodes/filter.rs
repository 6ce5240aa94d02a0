//! `filter`: keeps the records for which an expression holds.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildContext, BuildError, Built, NodeContext, NodeError, NodeKind, Output, Role, Transform, Typing};
use crate::record::Batch;
use crate::script::{Condition, Sandbox};

/// Keeps the records for which `condition` is true and drops the rest.
///
/// The condition is a Rhai expression over `record` (the record's fields) and
/// `tags` (its tags). To route records, give several downstream nodes the same
/// input and each its own `when:`; `filter` is for dropping records outright.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterSettings {
    /// A Rhai expression that yields true or false, e.g.
    /// `record.status != "TRADE_CLOSED_BY_TAOBAO"`.
    pub condition: String,
}

/// The `filter` node type.
pub struct Filter;

impl NodeKind for Filter {
    const TYPE: &'static str = "filter";
    const ROLE: Role = Role::Transform;
    type Settings = FilterSettings;

    fn example() -> &'static str {
        "paid:\n  use: filter\n  input: orders\n  with:\n    condition: record.status == \"WAIT_SELLER_SEND_GOODS\"\n"
    }

    fn build(settings: FilterSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let condition = compile(&settings, ctx)?;
        Ok(Built::Transform(Box::new(FilterNode { condition, sandbox: ctx.sandbox.clone() })))
    }

    fn output() -> Output {
        Output::unchanged()
    }

    fn typing(settings: &FilterSettings, ctx: &BuildContext) -> Result<Typing, BuildError> {
        let fields = compile(settings, ctx)?.fields();
        Ok(Typing::output(Self::output()).reading_script("condition", None, &fields))
    }
}

fn compile(settings: &FilterSettings, ctx: &BuildContext) -> Result<Condition, BuildError> {
    ctx.sandbox.compile_condition(&settings.condition).map_err(|error| BuildError {
        setting: Some("condition".into()),
        script: error.line.map(|line| super::ScriptPlace { file: None, line, col: error.column.unwrap_or(1) }),
        message: format!("\"condition\" does not compile: {}", error.message),
    })
}

struct FilterNode {
    condition: Condition,
    sandbox: Sandbox,
}

#[async_trait]
impl Transform for FilterNode {
    async fn process(&mut self, batch: Batch, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        let mut kept = Vec::with_capacity(batch.len());
        for record in batch {
            match self.sandbox.eval_condition(&self.condition, &record) {
                Ok(true) => kept.push(record),
                Ok(false) => {}
                Err(error) => return Err(NodeError::permanent(format!("\"condition\" failed: {error}"))),
            }
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::testing::{assert_output, build_ctx, run_transform};
    use serde_json::json;

    #[tokio::test]
    async fn keeps_matching_records_only() {
        let settings = FilterSettings { condition: "record.n > 1".into() };
        let Built::Transform(node) = Filter::build(settings, &build_ctx()).unwrap() else { panic!("a transform") };
        let input = vec![json!({"n": 1}), json!({"n": 2}), json!({"n": 3})];
        let out = run_transform(node, input.clone()).await.unwrap();
        assert_eq!(out, vec![json!({"n": 2}), json!({"n": 3})]);
        assert_output(&Filter::output(), &input, &out);
    }

    #[test]
    fn a_condition_that_does_not_compile_is_a_build_error() {
        let settings = FilterSettings { condition: "record.n >".into() };
        let Err(error) = Filter::build(settings, &build_ctx()) else { panic!("should not build") };
        assert_eq!(error.setting.as_deref(), Some("condition"));
        assert!(error.message.contains("does not compile"), "{}", error.message);
    }
}
