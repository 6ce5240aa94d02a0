//! The node reference in `docs/flows.md`, generated from the registry so the
//! docs cannot drift from the code (a test compares them).

use serde_json::Value as Json;

use crate::engine::node::{Registry, Role};
use crate::engine::output::{Fields, Output, Shape};

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
        out.push_str(&emits(&node_type.output));
        if !node_type.example.is_empty() {
            out.push_str(&format!("```yaml\n{}```\n\n", node_type.example));
        }
    }
    out
}

/// What a node emits, with a table of the fields it declares.
fn emits(output: &Output) -> String {
    let (said, fields) = match output {
        Output::Records(fields) => ("Emits records of its own, with these fields:", fields),
        Output::Received(added) if added.is_empty() => return "Emits the records it receives, unchanged.\n\n".into(),
        Output::Received(added) => ("Emits the records it receives, with these fields added:", added),
        Output::Open => return "Emits records whose fields are not declared in advance.\n\n".into(),
    };
    let mut out = format!("{said}\n\n| field | type | description |\n|---|---|---|\n");
    field_rows(fields, "", &mut out);
    out.push('\n');
    out
}

/// One row per field, nested fields under their path (`items[].oid`).
fn field_rows(fields: &Fields, prefix: &str, out: &mut String) {
    for field in fields.iter() {
        let path = format!("{prefix}{}", field.name);
        let values = match &field.shape {
            Shape::Value { values, .. } if !values.is_empty() => {
                format!(" One of {}.", values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", "))
            }
            _ => String::new(),
        };
        out.push_str(&format!("| `{path}` | {} | {}{values} |\n", field.shape.label(), field.doc));
        match &field.shape {
            Shape::Object(inner) => field_rows(inner, &format!("{path}."), out),
            Shape::List(item) => {
                if let Shape::Object(inner) = item.as_ref() {
                    field_rows(inner, &format!("{path}[]."), out);
                }
            }
            _ => {}
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_lists_each_node_types_output_fields_nested_ones_by_path() {
        let text = markdown(&Registry::builtin());
        let section = |name: &str| {
            let start = text.find(&format!("### `{name}`")).unwrap();
            let rest = &text[start + 4..];
            rest[..rest.find("### ").unwrap_or(rest.len())].to_owned()
        };
        let refunds = section("fetch_refunds");
        assert!(refunds.contains("Emits records of its own, with these fields:"), "{refunds}");
        assert!(refunds.contains("| `refund_fee` | string |"), "{refunds}");
        assert!(
            section("fetch_full")
                .contains("| `items[].outer_sku_id` | string or null | The merchant's own SKU code. |")
        );
        assert!(section("dedupe").contains("Emits the records it receives, unchanged."));
        assert!(section("fetch_detail").contains("Emits the records it receives, with these fields added:"));
    }
}
