//! The unit of data that flows between nodes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One record: a JSON object plus the tags that nodes attached to it.
///
/// Tags live beside the fields, not inside them, so a tag never collides with a
/// field the platform sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The record's fields, in the order they arrived.
    pub fields: Map<String, Value>,
    /// Labels set by `script` nodes (e.g. `vip`), usable in `when` expressions.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
}

/// Records travel between nodes in batches, so that channel capacity bounds
/// memory and per-message overhead stays small.
pub type Batch = Vec<Record>;

impl Record {
    /// A record with the given fields and no tags.
    pub fn new(fields: Map<String, Value>) -> Self {
        Self { fields, tags: BTreeSet::new() }
    }

    /// Builds a record from a JSON value; `None` unless it is an object.
    pub fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Object(fields) => Some(Self::new(fields)),
            _ => None,
        }
    }

    /// The field `name`, if present.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// The record as one JSON object, tags under `_tags` when there are any
    /// (used for dead letters and logs).
    pub fn to_json(&self) -> Value {
        let mut fields = self.fields.clone();
        if !self.tags.is_empty() {
            fields.insert("_tags".into(), Value::Array(self.tags.iter().cloned().map(Value::String).collect()));
        }
        Value::Object(fields)
    }
}
