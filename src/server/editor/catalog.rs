//! `GET /api/catalog`: every node type the flows may use, grouped for the
//! editor's palette, with the schema its settings form is generated from.

use serde::Serialize;
use serde_json::Value as Json;

use crate::nodes::{NodeType, Registry, Role};

/// Transforms that belong to syncing orders and refunds.
const SYNC_TRANSFORMS: [&str; 4] = ["fetch_detail", "dedupe", "store_orders", "store_refunds"];
/// Transforms that act for the merchant's business on synced orders.
const BUSINESS_TRANSFORMS: [&str; 3] = ["stock_freeze", "logistics_alert", "notify"];

/// Words that mark a setting as naming a credential.
const SECRET_WORDS: [&str; 3] = ["secret", "password", "token"];

/// One node type, as the palette and the settings form need it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeTypeInfo {
    /// The `use:` name.
    pub name: String,
    /// `source` or `transform`.
    pub role: &'static str,
    /// The palette group: `sources`, `sync`, `business`, `generic` or `custom`.
    pub group: &'static str,
    /// One line.
    pub summary: String,
    /// Longer prose, may be empty.
    pub description: String,
    /// The JSON Schema of `with:`.
    pub schema: Json,
    /// A YAML example of a node entry.
    pub example: String,
    /// The fields of the records it sends; `null` until records are typed.
    pub outputs: Option<Json>,
    /// The settings the form masks: those whose names contain `secret`,
    /// `password` or `token`. (Settings name environment variables that hold
    /// credentials; they never hold a credential.)
    pub secret_fields: Vec<String>,
}

/// Every type in `registry`, in registry order.
pub fn node_types(registry: &Registry) -> Vec<NodeTypeInfo> {
    registry.iter().map(info).collect()
}

fn info(node_type: &NodeType) -> NodeTypeInfo {
    let secret_fields = node_type
        .schema
        .get("properties")
        .and_then(Json::as_object)
        .map(|properties| {
            properties.keys().filter(|name| SECRET_WORDS.iter().any(|word| name.contains(word))).cloned().collect()
        })
        .unwrap_or_default();
    NodeTypeInfo {
        name: node_type.name.clone(),
        role: match node_type.role {
            Role::Source => "source",
            Role::Transform => "transform",
        },
        group: group(node_type),
        summary: node_type.summary.clone(),
        description: node_type.description.clone(),
        schema: node_type.schema.clone(),
        example: node_type.example.clone(),
        outputs: None,
        secret_fields,
    }
}

/// Custom (`nodes/*.rhai`) types are `custom`, every other source is in
/// `sources`; transforms by name, `generic` unless listed.
fn group(node_type: &NodeType) -> &'static str {
    let name = node_type.name.as_str();
    if node_type.script.is_some() {
        "custom"
    } else if node_type.role == Role::Source {
        "sources"
    } else if SYNC_TRANSFORMS.contains(&name) {
        "sync"
    } else if BUSINESS_TRANSFORMS.contains(&name) {
        "business"
    } else {
        "generic"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_type_is_grouped_and_the_listed_names_exist() {
        let registry = Registry::builtin();
        let types = node_types(&registry);
        assert_eq!(types.len(), registry.iter().count());
        for name in SYNC_TRANSFORMS.iter().chain(&BUSINESS_TRANSFORMS) {
            let found = types.iter().find(|t| t.name == *name).unwrap_or_else(|| panic!("{name} is registered"));
            assert_eq!(found.role, "transform", "{name}");
        }
        let group_of = |name: &str| types.iter().find(|t| t.name == name).map(|t| t.group);
        assert_eq!(group_of("fetch_increment"), Some("sources"));
        assert_eq!(group_of("dedupe"), Some("sync"));
        assert_eq!(group_of("notify"), Some("business"));
        assert_eq!(group_of("filter"), Some("generic"));
        let notify = types.iter().find(|t| t.name == "notify").unwrap();
        assert_eq!(notify.secret_fields, ["secret_env"]);
    }
}
