//! Fixture records standing in for a node: a replaced source sends them; a
//! replaced transform drains its inputs (the engine counts them) and sends
//! them once its inputs have closed.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value as Json, json};

use crate::engine::node::{Built, NodeError, NodeType, Role, Source, Transform};
use crate::engine::{Emitter, NodeContext};
use crate::flow::NodeSpec;
use crate::record::{Batch, Record};

/// A record written as JSON in a fixture: the object's fields, with the tags
/// under `_tags` (the shape the report shows records in). `None` unless it
/// is an object whose `_tags`, if any, is a list of strings.
pub fn record_from_fixture(value: Json) -> Option<Record> {
    let Json::Object(mut fields) = value else { return None };
    let tags = match fields.remove("_tags") {
        None => Default::default(),
        Some(Json::Array(tags)) => tags.into_iter().map(|t| t.as_str().map(str::to_owned)).collect::<Option<_>>()?,
        Some(_) => return None,
    };
    Some(Record { fields, tags })
}

/// Makes `spec` a stand-in sending `records`, and returns its node type (to
/// add to the run's registry). It keeps its id, inputs and role: a source
/// stays a source, a transform still drains what reaches it.
pub(super) fn replace(spec: &mut NodeSpec, role: Role, records: &[Record]) -> NodeType {
    let records: Arc<[Record]> = records.into();
    let name = format!("fixture:{}", spec.id);
    spec.type_name = name.clone();
    spec.settings = json!({});
    NodeType::custom(name, role, "Fixture records standing in for a node.", json!({}), move |_, _| {
        Ok(match role {
            Role::Source => Built::Source(Box::new(FixtureSource { records: records.clone() })),
            Role::Transform => Built::Transform(Box::new(FixtureTransform { records: Some(records.clone()) })),
        })
    })
}

struct FixtureSource {
    records: Arc<[Record]>,
}

#[async_trait]
impl Source for FixtureSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let batch_size = out.ctx().batch_size.max(1);
        for chunk in self.records.chunks(batch_size) {
            out.emit(chunk.to_vec()).await?;
        }
        Ok(())
    }
}

struct FixtureTransform {
    /// Sent by `finish`, once.
    records: Option<Arc<[Record]>>,
}

#[async_trait]
impl Transform for FixtureTransform {
    async fn process(&mut self, _batch: Batch, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        Ok(Vec::new())
    }

    async fn finish(&mut self, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        Ok(self.records.take().map(|records| records.to_vec()).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixture_record_keeps_its_tags_apart() {
        let record = record_from_fixture(json!({"tid": 1, "_tags": ["vip"]})).unwrap();
        assert_eq!(record.fields.get("tid"), Some(&json!(1)));
        assert!(record.fields.get("_tags").is_none());
        assert!(record.tags.contains("vip"));
        assert_eq!(record.to_json(), json!({"tid": 1, "_tags": ["vip"]}));
        assert!(record_from_fixture(json!([1])).is_none());
        assert!(record_from_fixture(json!({"_tags": "vip"})).is_none());
    }
}
