//! Node types defined by Rhai files: `nodes/NAME.rhai` is usable as
//! `use: NAME`.
//!
//! The file's `//!` header names the node and declares its settings (see
//! [`crate::script::parse_header`]); those settings become the node type's
//! schema, so a flow using it is validated exactly like one using a built-in.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use super::script::{RhaiTransform, compile};
use super::{Built, Fields, NodeType, Registry, Role, Shape, Typing};
use crate::flow::error::ConfigError;
use crate::flow::yaml::Pos;
use crate::script::{NodeHeader, Sandbox};

/// Adds a node type for every `*.rhai` file in `dir` to `registry`; returns
/// the problems of files that could not be used (each naming file and line).
/// A missing folder holds no node types.
pub fn load_dir(dir: &Path, sandbox: &Sandbox, registry: &mut Registry) -> Vec<ConfigError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    files.sort();
    let mut errors = Vec::new();
    for file in files {
        match load_file(&file, sandbox) {
            Ok(node_type) if registry.get(&node_type.name).is_some_and(|t| t.script.is_none()) => errors.push(
                ConfigError::new(&file, None, format!("\"{}\" is the name of a built-in node type", node_type.name))
                    .expected("another file name"),
            ),
            Ok(node_type) => registry.add(node_type),
            Err(error) => errors.push(error),
        }
    }
    errors
}

/// Reads, checks and compiles one Rhai node file.
pub fn load_file(file: &Path, sandbox: &Sandbox) -> Result<NodeType, ConfigError> {
    let name = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
    let valid_name = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_name {
        return Err(ConfigError::new(file, None, format!("\"{name}\" cannot name a node type"))
            .expected("a snake_case file name such as tag_vip.rhai"));
    }
    let source = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::new(file, None, format!("cannot read the node file: {e}")))?;
    let at = |line: Option<usize>, col: Option<usize>| line.map(|l| Pos::new(l as u32, col.unwrap_or(1) as u32));
    let header = crate::script::parse_header(&source)
        .map_err(|e| ConfigError::new(file, at(e.line, e.column), format!("the header is invalid: {}", e.message)))?;
    let script = compile(sandbox, &source, Some(file.to_path_buf()), "file").map_err(|e| {
        let pos = e.script.as_ref().map(|p| Pos::new(p.line as u32, p.col as u32));
        ConfigError::new(file, pos, e.message)
    })?;
    let fields = script.fields();
    let declared = header.adds.iter().fold(Fields::default(), |declared, (name, kind)| {
        declared.field(name, Shape::of_type(kind.json_schema_type()), "Declared in the node's `adds:`.")
    });
    let typing = Typing { reads: Vec::new(), output: Typing::script_output(&fields, declared) }.reading_script(
        "file",
        Some(file.to_path_buf()),
        &fields,
    );
    let example = example(&name, &header);
    let summary = header.summary.clone();
    let description = header.description.clone();
    let schema = header.settings_schema();
    let sandbox = sandbox.clone();
    let node_type = NodeType::custom(name, Role::Transform, summary, schema, move |with, _ctx| {
        let empty = Map::new();
        let with = with.as_object().unwrap_or(&empty);
        Ok(Built::Transform(Box::new(RhaiTransform {
            script: script.clone(),
            sandbox: sandbox.clone(),
            settings: header.settings_with_defaults(with),
        })))
    });
    let mut node_type = node_type.typed(typing.output.clone(), move |_, _| Ok(typing.clone()));
    node_type.description = description;
    node_type.example = example;
    node_type.script = Some(file.to_path_buf());
    Ok(node_type)
}

fn example(name: &str, header: &NodeHeader) -> String {
    let mut example = format!("{name}:\n  use: {name}\n  input: orders\n");
    let shown: Vec<String> = header
        .settings
        .iter()
        .filter_map(|s| s.default.as_ref().map(|d| format!("    {}: {}\n", s.name, yaml_scalar(d))))
        .collect();
    if !shown.is_empty() {
        example.push_str("  with:\n");
        example.extend(shown);
    }
    example
}

fn yaml_scalar(value: &Json) -> String {
    match value {
        Json::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::{FieldRead, Output};
    use crate::script::Limits;

    #[test]
    fn a_rhai_file_becomes_a_node_type_with_its_declared_settings() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("double.rhai"),
            "//! Doubles a field.\n//!\n//! settings:\n//!   field: { type: string, required: true, doc: \"Which field.\" }\nrecord[settings.field] *= 2;\n",
        )
        .unwrap();
        let mut registry = Registry::builtin();
        let errors = load_dir(dir.path(), &Sandbox::new(Limits::default()), &mut registry);
        assert!(errors.is_empty(), "{errors:?}");
        let node_type = registry.get("double").unwrap();
        assert_eq!(node_type.summary, "Doubles a field.");
        assert_eq!(node_type.schema["required"], serde_json::json!(["field"]));
    }

    #[tokio::test]
    async fn the_shipped_tag_vip_declares_vip_level_reads_payment_and_emits_what_it_declares() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("nodes/tag_vip.rhai");
        let node_type = load_file(&file, &Sandbox::new(Limits::default())).unwrap();
        let Output::Received(added) = &node_type.output else { panic!("passes records on: {:?}", node_type.output) };
        let added: Vec<(&str, String)> = added.iter().map(|f| (f.name.as_str(), f.shape.label())).collect();
        assert_eq!(added, [("vip_level", "integer".to_owned())]);
        let ctx = crate::nodes::testing::build_ctx();
        let typing = node_type.typing(&serde_json::json!({}), &ctx).unwrap();
        let reads: Vec<(String, Option<&Path>)> = typing
            .reads
            .iter()
            .map(|read| match read {
                FieldRead::Script { read, file, .. } => (format!("{:?}", read.steps[0].0), file.as_deref()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(
            reads.iter().all(|(step, at)| step == "Field(\"payment\")" && *at == Some(file.as_path())),
            "{reads:?}"
        );

        let Built::Transform(node) = node_type.build(&serde_json::json!({}), &ctx).unwrap() else { panic!() };
        let input = vec![serde_json::json!({"tid": 1, "payment": "2500.00"})];
        let out = crate::nodes::testing::run_transform(node, input.clone()).await.unwrap();
        assert_eq!(out[0]["vip_level"], 2);
        crate::nodes::testing::assert_output(&node_type.output, &input, &out);
    }

    #[test]
    fn a_broken_script_is_reported_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.rhai"), "//! Broken.\nlet x = 1;\nlet = ;\n").unwrap();
        let mut registry = Registry::builtin();
        let errors = load_dir(dir.path(), &Sandbox::new(Limits::default()), &mut registry);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].pos.map(|p| p.line), Some(3), "{}", errors[0]);
        assert!(registry.get("broken").is_none());
    }

    #[test]
    fn a_built_in_name_cannot_be_taken() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("filter.rhai"), "true\n").unwrap();
        let mut registry = Registry::builtin();
        let errors = load_dir(dir.path(), &Sandbox::new(Limits::default()), &mut registry);
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
