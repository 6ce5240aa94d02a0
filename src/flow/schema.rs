//! The JSON Schema of flow files, generated from the node registry so that
//! editors check `with:` exactly as `orderflow validate` does.

use serde_json::{Map, Value as Json, json};

use super::compile::LAYOUT_KEY;
use super::model::{OnError, Overlap};
use crate::nodes::Registry;

/// A JSON Schema (draft 2020-12) for flow files using `registry`'s node types.
pub fn flow_schema(registry: &Registry) -> Json {
    let duration =
        json!({"type": "string", "pattern": "^[0-9]+\\s*[a-z]+", "description": "A duration such as 30s, 5m or 1h."});
    let mut node_variants = Vec::new();
    let mut defs = Map::new();
    for node_type in registry.iter() {
        let mut settings = node_type.schema.clone();
        // Hoist each settings schema's own definitions so `$ref`s stay valid.
        if let Some(Json::Object(own)) = settings.as_object_mut().and_then(|s| s.remove("$defs")) {
            for (name, def) in own {
                defs.insert(name, def);
            }
        }
        if let Some(object) = settings.as_object_mut() {
            object.remove("$schema");
            object.remove("title");
        }
        node_variants.push(json!({
            "if": {"properties": {"use": {"const": node_type.name}}, "required": ["use"]},
            "then": {"properties": {"with": settings}},
        }));
    }
    let names: Vec<&str> = registry.names().collect();
    let node = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["use"],
        "properties": {
            "use": {"enum": names, "description": "The node type."},
            "with": {"type": "object", "description": "The node type's settings."},
            "input": {"description": "The upstream node id(s).", "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "when": {"type": "string", "description": "A Rhai expression over `record` and `tags`: the records this node receives."},
            "retry": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "attempts": {"type": "integer", "minimum": 1, "maximum": 100, "description": "Tries in all, including the first."},
                    "backoff": duration,
                    "max_backoff": duration,
                },
            },
            "timeout": duration,
            "on_error": {"enum": OnError::NAMES, "description": "What a failure that retries did not cure does."},
        },
        "allOf": node_variants,
    });
    let nodes = json!({"type": "object", "additionalProperties": {"$ref": "#/$defs/node"}});
    defs.insert("node".into(), node);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "orderflow flow file",
        "type": "object",
        "additionalProperties": false,
        "required": ["flow", "nodes"],
        "properties": {
            "flow": {"type": "string", "description": "The flow's name; runs are recorded under it."},
            "description": {"type": "string"},
            "trigger": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "every": duration,
                    "cron": {"type": "string", "description": "Five fields: minute hour day-of-month month day-of-week."},
                    "timezone": {"type": "string", "default": "Asia/Shanghai"},
                    "overlap": {"enum": Overlap::NAMES, "default": "skip", "description": "A fire while the same flow runs for the same shop: skipped, or queued to run once right after."},
                    "catch_up": duration,
                },
            },
            "shop": {"type": "string", "description": "A shop declared in orderflow.yaml."},
            "shops": {
                "description": "The shops a scheduled run covers, one run per shop: a list, or `all` for every shop in orderflow.yaml. Not with `shop`.",
                "oneOf": [{"const": "all"}, {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": true}],
            },
            "nodes": nodes,
            "errors": nodes,
            LAYOUT_KEY: {
                "type": "object",
                "description": "Where the visual editor draws each node: node id to [x, y]. Changes nothing the flow does.",
                "additionalProperties": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            },
        },
        "$defs": defs,
    })
}
