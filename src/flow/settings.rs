//! Checks a node's `with:` mapping against the JSON Schema its node type
//! declares, reporting every problem with its position.
//!
//! Built-in nodes get their schema from their settings struct (schemars), Rhai
//! nodes from their script header; one checker serves both, so a custom node
//! is validated exactly like a built-in one.

use serde_json::{Map, Value as Json};

use super::error::{ConfigError, one_of};
use super::yaml::{Node, PathStep, Value};
use std::path::Path;

/// Every problem found in `with` against `schema`.
pub fn check(file: &Path, node_id: &str, schema: &Json, with: &Node) -> Vec<ConfigError> {
    let mut checker = Checker { file, node_id, root: schema, errors: Vec::new() };
    checker.check(schema, with, "");
    checker.errors
}

/// Deserialises a checked tree into `T`; a failure still points at the
/// offending value (via `serde_path_to_error`).
pub fn deserialize<T: serde::de::DeserializeOwned>(file: &Path, context: &str, node: &Node) -> Result<T, ConfigError> {
    let json = node.to_json();
    serde_path_to_error::deserialize::<_, T>(json).map_err(|error| {
        let steps: Vec<PathStep<'_>> = error
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(PathStep::Key(key.as_str())),
                serde_path_to_error::Segment::Seq { index } => Some(PathStep::Index(*index)),
                _ => None,
            })
            .collect();
        let at = node.descend(steps);
        let inner = error.into_inner().to_string();
        ConfigError::new(file, Some(at.pos), format!("{context}: {}", tidy_serde_message(&inner)))
    })
}

/// serde's messages quote names in backticks; ours use double quotes.
fn tidy_serde_message(message: &str) -> String {
    message.replace('`', "\"")
}

struct Checker<'a> {
    file: &'a Path,
    node_id: &'a str,
    root: &'a Json,
    errors: Vec<ConfigError>,
}

impl<'a> Checker<'a> {
    fn error(&mut self, node: &Node, message: String) -> &mut ConfigError {
        self.errors.push(ConfigError::new(self.file, Some(node.pos), format!("node \"{}\": {message}", self.node_id)));
        self.errors.last_mut().expect("just pushed")
    }

    /// Follows `$ref: "#/$defs/Name"` within the root schema.
    fn resolve(&self, schema: &'a Json) -> &'a Json {
        let mut schema = schema;
        for _ in 0..16 {
            match schema.get("$ref").and_then(Json::as_str) {
                Some(reference) => match reference.strip_prefix("#/") {
                    Some(pointer) => match self.root.pointer(&format!("/{pointer}")) {
                        Some(target) => schema = target,
                        None => return schema,
                    },
                    None => return schema,
                },
                None => return schema,
            }
        }
        schema
    }

    /// The branch whose only required key is the only key of `node`.
    fn tagged_branch(&self, branches: &'a [Json], node: &Node) -> Option<&'a Json> {
        let Value::Map(entries) = &node.value else { return None };
        let [(key, _)] = entries.as_slice() else { return None };
        branches.iter().find(|branch| {
            let required = self.resolve(branch).get("required").and_then(Json::as_array);
            required.is_some_and(|keys| keys.len() == 1 && keys[0].as_str() == Some(key.name.as_str()))
        })
    }

    /// The only key of each branch, when every branch is a one-key mapping.
    fn branch_tags(&self, branches: &'a [Json]) -> Option<Vec<&'a str>> {
        branches
            .iter()
            .map(|branch| match self.resolve(branch).get("required").and_then(Json::as_array)?.as_slice() {
                [key] => key.as_str(),
                _ => None,
            })
            .collect()
    }

    fn check(&mut self, schema: &'a Json, node: &Node, path: &str) {
        let schema = self.resolve(schema);
        if let Some(branches) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Json::as_array) {
            // A one-key mapping naming one branch's only key (a `browser`
            // step, `- click: …`) is checked against that branch, so its
            // errors point inside it.
            if let Some(branch) = self.tagged_branch(branches, node) {
                self.check(branch, node, path);
                return;
            }
            let matching = branches.iter().any(|branch| {
                let mut probe = Checker { file: self.file, node_id: self.node_id, root: self.root, errors: Vec::new() };
                probe.check(branch, node, path);
                probe.errors.is_empty()
            });
            let tags = self.branch_tags(branches);
            if let (false, Some(tags), Value::Map(entries)) = (matching, &tags, &node.value)
                && let [(key, _)] = entries.as_slice()
            {
                let error = self.error(node, format!("{} has the key \"{}\"", label(path), key.name));
                error.expected = Some(one_of(tags.iter().copied()));
                error.suggestion = super::error::nearest(&key.name, tags.iter().copied()).map(str::to_owned);
            } else if !matching {
                let expected = describe(self, schema);
                let got = got(node);
                self.error(node, format!("{} has {got}", label(path))).expected = Some(expected);
            }
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Json::as_array) {
            let value = node.to_json();
            if !allowed.contains(&value) {
                let names: Vec<String> = allowed.iter().map(display_json).collect();
                let wrong = display_json(&value);
                let error = self.error(node, format!("{} has {wrong}", label(path)));
                error.expected = Some(one_of(names.iter().map(String::as_str)));
                error.suggestion = super::error::nearest(&wrong, names.iter().map(String::as_str)).map(str::to_owned);
            }
            return;
        }
        if let Some(constant) = schema.get("const") {
            if node.to_json() != *constant {
                let expected = display_json(constant);
                let got = got(node);
                self.error(node, format!("{} has {got}", label(path))).expected = Some(expected);
            }
            return;
        }
        if let Some(types) = schema.get("type") {
            let types: Vec<&str> = match types {
                Json::String(t) => vec![t.as_str()],
                Json::Array(ts) => ts.iter().filter_map(Json::as_str).collect(),
                _ => vec![],
            };
            if !types.is_empty() && !types.iter().any(|t| matches_type(t, &node.value)) {
                let expected = types.iter().map(|t| type_name(t)).collect::<Vec<_>>().join(" or ");
                let got = got(node);
                self.error(node, format!("{} has {got}", label(path))).expected = Some(expected);
                return;
            }
        }
        match &node.value {
            Value::Map(entries) => self.check_object(schema, node, entries, path),
            Value::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (index, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{index}]"));
                    }
                }
            }
            _ => {}
        }
    }

    fn check_object(&mut self, schema: &'a Json, node: &Node, entries: &[(super::yaml::Key, Node)], path: &str) {
        static EMPTY: std::sync::LazyLock<Map<String, Json>> = std::sync::LazyLock::new(Map::new);
        let properties = schema.get("properties").and_then(Json::as_object).unwrap_or(&EMPTY);
        let closed = schema.get("additionalProperties") == Some(&Json::Bool(false));
        // A misspelt required key is one mistake: reported as unknown (with
        // the suggestion), not also as missing.
        let mut suggested = Vec::new();
        for (key, value) in entries {
            let child = join(path, &key.name);
            match properties.get(&key.name) {
                Some(property) => self.check(property, value, &child),
                None if closed => {
                    let names: Vec<&str> = properties.keys().map(String::as_str).collect();
                    let key_node = Node { pos: key.pos, value: Value::Null };
                    let error = self.error(&key_node, format!("unknown setting \"{child}\""));
                    error.suggestion = super::error::nearest(&key.name, names.iter().copied()).map(str::to_owned);
                    suggested.extend(error.suggestion.clone());
                    error.expected = Some(if names.is_empty() {
                        "no settings for this node type".to_owned()
                    } else {
                        one_of(names.iter().copied())
                    });
                }
                None => {
                    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                        self.check(additional, value, &child);
                    }
                }
            }
        }
        if let Some(required) = schema.get("required").and_then(Json::as_array) {
            for name in required.iter().filter_map(Json::as_str) {
                if !entries.iter().any(|(k, _)| k.name == name) && !suggested.iter().any(|s| s == name) {
                    let description =
                        properties.get(name).map(|p| describe(self, p)).unwrap_or_else(|| "a value".into());
                    self.error(node, format!("missing setting \"{}\"", join(path, name))).expected = Some(description);
                }
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn label(path: &str) -> String {
    if path.is_empty() { "\"with\"".to_owned() } else { format!("setting \"{path}\"") }
}

fn got(node: &Node) -> String {
    match &node.value {
        Value::String(s) => format!("the string \"{s}\""),
        Value::Int(i) => format!("the integer {i}"),
        Value::Bool(b) => format!("the boolean {b}"),
        other => other.kind().to_owned(),
    }
}

fn display_json(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn matches_type(schema_type: &str, value: &Value) -> bool {
    match schema_type {
        "null" => matches!(value, Value::Null),
        "boolean" => matches!(value, Value::Bool(_)),
        "integer" => matches!(value, Value::Int(_) | Value::UInt(_)),
        "number" => matches!(value, Value::Int(_) | Value::UInt(_) | Value::Float(_)),
        "string" => matches!(value, Value::String(_)),
        "array" => matches!(value, Value::Seq(_)),
        "object" => matches!(value, Value::Map(_)),
        _ => true,
    }
}

fn type_name(schema_type: &str) -> &'static str {
    match schema_type {
        "null" => "nothing",
        "boolean" => "true or false",
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "array" => "a list",
        "object" => "a mapping",
        _ => "a value",
    }
}

/// A short human description of what `schema` accepts.
fn describe<'a>(checker: &Checker<'a>, schema: &'a Json) -> String {
    let schema = checker.resolve(schema);
    if let Some(values) = schema.get("enum").and_then(Json::as_array) {
        let names: Vec<String> = values.iter().map(display_json).collect();
        return one_of(names.iter().map(String::as_str));
    }
    if let Some(constant) = schema.get("const") {
        return format!("\"{}\"", display_json(constant));
    }
    if let Some(branches) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(Json::as_array) {
        let parts: Vec<String> = branches.iter().map(|b| describe(checker, b)).collect();
        return parts.join(" or ");
    }
    match schema.get("type") {
        Some(Json::String(t)) => type_name(t).to_owned(),
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).map(type_name).collect::<Vec<_>>().join(" or "),
        _ => "a value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::yaml;
    use serde_json::json;

    fn schema() -> Json {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["path"],
            "properties": {
                "path": {"type": "string"},
                "batch_size": {"type": "integer"},
                "level": {"$ref": "#/$defs/Level"},
                "columns": {"type": "object", "additionalProperties": {"type": "string", "enum": ["text", "integer"]}},
                "key": {"type": "array", "items": {"type": "string"}}
            },
            "$defs": {"Level": {"type": "string", "enum": ["info", "warn"]}}
        })
    }

    fn errors(source: &str) -> Vec<String> {
        let tree = yaml::parse(source).unwrap();
        check(Path::new("f.yaml"), "n", &schema(), &tree).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_valid_mapping_has_no_errors() {
        assert!(errors("path: a\nbatch_size: 3\nlevel: warn\ncolumns: {a: text}\nkey: [a]\n").is_empty());
    }

    #[test]
    fn reports_every_problem_with_its_position() {
        assert_eq!(
            errors("batch_size: 1\n"),
            vec!["f.yaml:1:1: node \"n\": missing setting \"path\"; expected a string"]
        );
        let found = errors("pth: a\nbatch_size: lots\nlevel: wrn\ncolumns: {a: txt}\nkey: [1]\n");
        assert_eq!(
            found,
            vec![
                "f.yaml:1:1: node \"n\": unknown setting \"pth\" (did you mean \"path\"?); expected one of \"path\", \"batch_size\", \"level\", \"columns\" or \"key\"",
                "f.yaml:2:13: node \"n\": setting \"batch_size\" has the string \"lots\"; expected an integer",
                "f.yaml:3:8: node \"n\": setting \"level\" has wrn (did you mean \"warn\"?); expected one of \"info\" or \"warn\"",
                "f.yaml:4:14: node \"n\": setting \"columns.a\" has txt (did you mean \"text\"?); expected one of \"text\" or \"integer\"",
                "f.yaml:5:7: node \"n\": setting \"key[0]\" has the integer 1; expected a string",
            ]
        );
    }

    #[test]
    fn deserialize_points_at_the_bad_value() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            n: u8,
        }
        let tree = yaml::parse("n: 300\n").unwrap();
        let error = deserialize::<S>(Path::new("f.yaml"), "node \"x\"", &tree).unwrap_err();
        assert_eq!(error.pos, Some(yaml::Pos::new(1, 4)));
        assert!(error.message.contains("300"), "{}", error.message);
    }
}
