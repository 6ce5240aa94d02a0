//! The node reference in `docs/flows.md`, generated from the registry so the
//! docs cannot drift from the code (a test compares them).

use serde_json::Value as Json;

use crate::engine::node::{Registry, Role};

/// Marks the start of the generated part of `docs/flows.md`.
pub const BEGIN: &str = "<!-- BEGIN GENERATED NODE REFERENCE: `orderflow docs --write` -->";
/// Marks its end.
pub const END: &str = "<!-- END GENERATED NODE REFERENCE -->";

/// One Markdown section per node type.
pub fn markdown(registry: &Registry) -> String {
    let mut out = String::new();
    for node_type in registry.iter() {
        let role = match node_type.role {
            Role::Source => "source (takes no `input`)",
            Role::Transform => "transform (needs `input`)",
        };
        out.push_str(&format!("### `{}`\n\n{}\n\n", node_type.name, node_type.summary));
        if !node_type.description.is_empty() {
            out.push_str(&format!("{}\n\n", node_type.description));
        }
        out.push_str(&format!("Kind: {role}.\n\n"));
        let properties = node_type.schema.get("properties").and_then(Json::as_object);
        match properties {
            Some(properties) if !properties.is_empty() => {
                let required: Vec<&str> = node_type
                    .schema
                    .get("required")
                    .and_then(Json::as_array)
                    .map(|r| r.iter().filter_map(Json::as_str).collect())
                    .unwrap_or_default();
                out.push_str("| setting | type | required | default | description |\n|---|---|---|---|---|\n");
                for (name, property) in properties {
                    let kind = type_of(&node_type.schema, property);
                    let default = property.get("default").map(|d| format!("`{d}`")).unwrap_or_default();
                    let doc = property.get("description").and_then(Json::as_str).unwrap_or_default().replace('\n', " ");
                    let is_required = if required.contains(&name.as_str()) { "yes" } else { "no" };
                    out.push_str(&format!("| `{name}` | {kind} | {is_required} | {default} | {doc} |\n"));
                }
                out.push('\n');
            }
            _ => out.push_str("No settings.\n\n"),
        }
        if !node_type.example.is_empty() {
            out.push_str(&format!("```yaml\n{}```\n\n", node_type.example));
        }
    }
    out
}

/// A short type description for the table.
fn type_of(root: &Json, property: &Json) -> String {
    let resolved = property
        .get("$ref")
        .and_then(Json::as_str)
        .and_then(|r| r.strip_prefix("#/"))
        .and_then(|p| root.pointer(&format!("/{p}")))
        .unwrap_or(property);
    if let Some(values) = resolved.get("enum").and_then(Json::as_array) {
        return values
            .iter()
            .map(|v| format!("`{}`", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if let Some(branches) = resolved.get("oneOf").and_then(Json::as_array) {
        let consts: Vec<String> =
            branches.iter().filter_map(|b| b.get("const").and_then(Json::as_str)).map(|c| format!("`{c}`")).collect();
        if consts.len() == branches.len() {
            return consts.join(" \\| ");
        }
    }
    match resolved.get("type") {
        Some(Json::String(t)) => t.clone(),
        Some(Json::Array(ts)) => {
            ts.iter().filter_map(Json::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" \\| ")
        }
        _ => {
            if let Some(Json::Object(additional)) = resolved.get("additionalProperties") {
                return format!("map of {}", type_of(root, &Json::Object(additional.clone())));
            }
            "any".to_owned()
        }
    }
}

/// Replaces the generated part of `document` with `generated`; `None` when
/// the markers are missing.
pub fn splice(document: &str, generated: &str) -> Option<String> {
    let start = document.find(BEGIN)? + BEGIN.len();
    let end = document.find(END)?;
    (start <= end).then(|| format!("{}\n\n{}{}", &document[..start], generated, &document[end..]))
}
