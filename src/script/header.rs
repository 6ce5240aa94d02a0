//! The `//!` header that turns a `nodes/NAME.rhai` file into a node type.
//!
//! The header lives in the script itself so that a node's documentation and
//! settings cannot drift away from its code; Rhai reads `//!` lines as comments.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value, json};

use super::{ScriptError, ScriptErrorKind};

/// What a custom node's header declares: its documentation and its settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeHeader {
    /// One line saying what the node does (the header's first paragraph).
    pub summary: String,
    /// Further prose paragraphs, line breaks kept; empty when there are none.
    pub description: String,
    /// The settings the node accepts in its `with:` map, in declaration order.
    pub settings: Vec<SettingDecl>,
    /// The fields the node adds to the records it passes on (`adds:`), with
    /// their kinds, in declaration order; fields it assigns as `record.x = …`
    /// are found in its code and need no declaration.
    pub adds: Vec<(String, SettingKind)>,
}

/// One setting a custom node accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingDecl {
    /// The key in the node's `with:` map.
    pub name: String,
    /// The JSON type the value must have.
    pub kind: SettingKind,
    /// Whether the flow must set it (settings with a default rarely need this).
    pub required: bool,
    /// The value used when the flow does not set it.
    pub default: Option<Value>,
    /// What the setting means, for docs and error messages.
    pub doc: String,
}

/// The type of a setting, as written in the header's `type:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SettingKind {
    /// A JSON string.
    String,
    /// A whole number (i64 or u64).
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A JSON array.
    List,
    /// A JSON object.
    Map,
}

impl SettingKind {
    /// The name used in headers (`type: integer`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::List => "list",
            Self::Map => "map",
        }
    }

    /// The JSON Schema `type` keyword for this kind.
    pub fn json_schema_type(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::List => "array",
            Self::Map => "object",
        }
    }

    /// Whether `value` has this kind.
    pub fn matches(self, value: &Value) -> bool {
        match self {
            Self::String => value.is_string(),
            Self::Integer => value.is_i64() || value.is_u64(),
            Self::Number => value.is_number(),
            Self::Boolean => value.is_boolean(),
            Self::List => value.is_array(),
            Self::Map => value.is_object(),
        }
    }
}

impl fmt::Display for SettingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderYaml {
    #[serde(default)]
    settings: Option<Ordered<RawSetting>>,
    #[serde(default)]
    adds: Option<Ordered<SettingKind>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetting {
    #[serde(rename = "type")]
    kind: SettingKind,
    #[serde(default)]
    default: Option<Value>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    doc: String,
}

/// A YAML mapping read in document order: the order settings and fields are
/// declared in is the order docs and schemas should show them in.
struct Ordered<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for OrderedVisitor<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from name to declaration")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, T)> = Vec::new();
                while let Some((name, declared)) = map.next_entry::<String, T>()? {
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!("`{name}` is declared twice")));
                    }
                    out.push((name, declared));
                }
                Ok(Ordered(out))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(std::marker::PhantomData))
    }
}

/// Reads the `//!` header of a custom node script.
///
/// A file without a header has an empty summary and no settings; that is not
/// an error, since a script needs no settings to be useful. YAML problems are
/// `Compile` errors carrying the line number in the file.
pub fn parse_header(source: &str) -> Result<NodeHeader, ScriptError> {
    // (1-based file line, text after the `//!` marker)
    let mut lines: Vec<(usize, &str)> = Vec::new();
    for (index, raw) in source.lines().enumerate() {
        let trimmed = raw.trim_end();
        if lines.is_empty() && trimmed.is_empty() {
            continue;
        }
        let Some(rest) = trimmed.strip_prefix("//!") else {
            break;
        };
        lines.push((index + 1, rest.strip_prefix(' ').unwrap_or(rest)));
    }

    // The YAML part starts at `settings:` or `adds:`, as a block or inline
    // (`adds: { vip_level: integer }`).
    let yaml_start = lines.iter().position(|(_, text)| text.starts_with("settings:") || text.starts_with("adds:"));
    let (prose, yaml) = lines.split_at(yaml_start.unwrap_or(lines.len()));

    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (_, text) in prose {
        if text.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(text);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    let mut paragraphs = paragraphs.into_iter();
    let summary =
        paragraphs.next().map(|p| p.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")).unwrap_or_default();
    let description = paragraphs.map(|p| p.join("\n")).collect::<Vec<_>>().join("\n\n");

    let (settings, adds) = match yaml.first() {
        Some(&(first_line, _)) => parse_declarations(yaml, first_line)?,
        None => (Vec::new(), Vec::new()),
    };
    Ok(NodeHeader { summary, description, settings, adds })
}

/// The `settings:` and `adds:` of a header.
type Declarations = (Vec<SettingDecl>, Vec<(String, SettingKind)>);

fn parse_declarations(yaml: &[(usize, &str)], first_line: usize) -> Result<Declarations, ScriptError> {
    let text: String = yaml.iter().map(|(_, t)| format!("{t}\n")).collect();
    let parsed: HeaderYaml = serde_saphyr::from_str(&text).map_err(|e| {
        let line = e.location().map(|l| first_line + (l.line() as usize).saturating_sub(1));
        let message = e.without_snippet().to_string();
        // saphyr appends its own position, which counts from the YAML block,
        // not from the file; ours replaces it.
        let message = message.split_once(" at line ").map_or(message.as_str(), |(head, _)| head).to_string();
        ScriptError {
            kind: ScriptErrorKind::Compile,
            line: line.or(Some(first_line)),
            column: None,
            message: format!("in the node header's settings: {message}"),
        }
    })?;

    let mut out = Vec::new();
    for (name, raw) in parsed.settings.map(|s| s.0).unwrap_or_default() {
        if let Some(default) = &raw.default
            && !raw.kind.matches(default)
        {
            let line = yaml
                .iter()
                .find(|(_, t)| t.trim_start().starts_with(&format!("{name}:")))
                .map_or(first_line, |(l, _)| *l);
            return Err(ScriptError {
                kind: ScriptErrorKind::Compile,
                line: Some(line),
                column: None,
                message: format!(
                    "in the node header's settings: the default of `{name}` is {default}, which is not a {}",
                    raw.kind
                ),
            });
        }
        out.push(SettingDecl { name, kind: raw.kind, required: raw.required, default: raw.default, doc: raw.doc });
    }
    Ok((out, parsed.adds.map(|adds| adds.0).unwrap_or_default()))
}

impl NodeHeader {
    /// A JSON Schema (draft 2020-12 object schema) for the node's `with:` map:
    /// properties with type/description/default, `required`, `additionalProperties: false`.
    pub fn settings_schema(&self) -> Value {
        let mut properties = Map::new();
        for s in &self.settings {
            let mut prop = Map::new();
            prop.insert("type".into(), json!(s.kind.json_schema_type()));
            if !s.doc.is_empty() {
                prop.insert("description".into(), json!(s.doc));
            }
            if let Some(default) = &s.default {
                prop.insert("default".into(), default.clone());
            }
            properties.insert(s.name.clone(), Value::Object(prop));
        }
        let required: Vec<&str> = self.settings.iter().filter(|s| s.required).map(|s| s.name.as_str()).collect();
        let mut schema = Map::new();
        schema.insert("$schema".into(), json!("https://json-schema.org/draft/2020-12/schema"));
        schema.insert("type".into(), json!("object"));
        if !self.summary.is_empty() {
            schema.insert("description".into(), json!(self.summary));
        }
        schema.insert("properties".into(), Value::Object(properties));
        schema.insert("required".into(), json!(required));
        schema.insert("additionalProperties".into(), json!(false));
        Value::Object(schema)
    }

    /// The settings a node actually runs with: `with` values plus defaults for the rest.
    ///
    /// Validation is the schema's job; undeclared keys in `with` are passed
    /// through so that a validation error, not silence, reports them.
    pub fn settings_with_defaults(&self, with: &Map<String, Value>) -> Value {
        let mut out = Map::new();
        for s in &self.settings {
            if let Some(v) = with.get(&s.name) {
                out.insert(s.name.clone(), v.clone());
            } else if let Some(d) = &s.default {
                out.insert(s.name.clone(), d.clone());
            }
        }
        for (k, v) in with {
            if !out.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: &str = "\
//! Tags buyers whose order payment reaches a threshold as VIP.
//!
//! Adds the tag and a `vip_level` field; orders below the threshold pass unchanged.
//!
//! settings:
//!   threshold: { type: number, default: 1000, doc: \"Payment in yuan from which a buyer counts as VIP.\" }
//!   tag: { type: string, default: \"vip\", doc: \"The tag to set.\" }

let x = 1;
";

    #[test]
    fn parses_the_example_header() {
        let h = parse_header(VIP).unwrap();
        assert_eq!(h.summary, "Tags buyers whose order payment reaches a threshold as VIP.");
        assert_eq!(h.description, "Adds the tag and a `vip_level` field; orders below the threshold pass unchanged.");
        assert_eq!(h.settings.len(), 2);
        let t = &h.settings[0];
        assert_eq!(t.name, "threshold");
        assert_eq!(t.kind, SettingKind::Number);
        assert_eq!(t.default, Some(json!(1000)));
        assert!(!t.required);
        assert_eq!(t.doc, "Payment in yuan from which a buyer counts as VIP.");
        assert_eq!(h.settings[1].name, "tag");
        assert_eq!(h.settings[1].default, Some(json!("vip")));
    }

    #[test]
    fn a_file_without_header_has_empty_summary_and_no_settings() {
        let h = parse_header("let x = 1;\n//! not a header: it does not lead\n").unwrap();
        assert_eq!(h, NodeHeader::default());
        assert_eq!(parse_header("").unwrap(), NodeHeader::default());
    }

    #[test]
    fn header_without_settings_is_prose_only() {
        let h = parse_header("//! Does a thing\n//! over two lines.\n//!\n//! More.\n//! Still more.\nx").unwrap();
        assert_eq!(h.summary, "Does a thing over two lines.");
        assert_eq!(h.description, "More.\nStill more.");
        assert!(h.settings.is_empty());
    }

    #[test]
    fn adds_declares_fields_with_their_kinds_alone_or_after_settings() {
        let both = "//! S\n//! settings:\n//!   a: { type: string }\n//! adds:\n//!   vip_level: integer\n//!   note: string\n";
        let h = parse_header(both).unwrap();
        assert_eq!(h.settings.len(), 1);
        assert_eq!(h.adds, [("vip_level".to_owned(), SettingKind::Integer), ("note".to_owned(), SettingKind::String)]);
        for alone in ["//! S\n//!\n//! adds: { band: number }\n", "//! S\n//!\n//! adds:\n//!   band: number\n"] {
            let h = parse_header(alone).unwrap();
            assert_eq!((h.summary.as_str(), h.description.as_str(), h.settings.len()), ("S", "", 0), "{alone}");
            assert_eq!(h.adds, [("band".to_owned(), SettingKind::Number)], "{alone}");
        }
        let bad = parse_header("//! S\n//! adds:\n//!   band: decimal\n").unwrap_err();
        assert_eq!(bad.line, Some(3), "{bad}");
    }

    #[test]
    fn unknown_type_names_the_allowed_ones_and_the_line() {
        let src = "//! S\n//!\n//! settings:\n//!   a: { type: string }\n//!   b: { type: float }\n";
        let err = parse_header(src).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Compile);
        assert_eq!(err.line, Some(5), "{err}");
        for allowed in ["string", "integer", "number", "boolean", "list", "map"] {
            assert!(err.message.contains(allowed), "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_denied() {
        let src = "//! S\n//! settings:\n//!   a: { type: string, dflt: x }\n";
        let err = parse_header(src).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Compile);
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("dflt"), "{err}");
    }

    #[test]
    fn broken_yaml_reports_the_file_line() {
        let src = "//! S\n//!\n//! settings:\n//!   a: { type: string\n";
        let err = parse_header(src).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Compile);
        assert!(err.line.is_some_and(|l| (3..=5).contains(&l)), "{err:?}");
        assert!(err.to_string().starts_with("line "), "{err}");
    }

    #[test]
    fn a_default_of_the_wrong_type_is_an_error() {
        let src = "//! S\n//! settings:\n//!   a: { type: string }\n//!   n: { type: integer, default: 1.5 }\n";
        let err = parse_header(src).unwrap_err();
        assert_eq!(err.line, Some(4), "{err}");
        assert!(err.message.contains("`n`"), "{err}");
    }

    #[test]
    fn schema_lists_properties_required_and_no_extras() {
        let src = "//! S\n//! settings:\n//!   shop: { type: string, required: true, doc: \"Shop id.\" }\n//!   n: { type: list, default: [1] }\n";
        let h = parse_header(src).unwrap();
        let schema = h.settings_schema();
        assert_eq!(schema["type"], "object");
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["required"], json!(["shop"]));
        assert_eq!(schema["properties"]["shop"], json!({"type": "string", "description": "Shop id."}));
        assert_eq!(schema["properties"]["n"], json!({"type": "array", "default": [1]}));
        let keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["shop", "n"]);
    }

    #[test]
    fn with_values_win_over_defaults() {
        let h = parse_header(VIP).unwrap();
        let Value::Object(with) = json!({"threshold": 500}) else { unreachable!() };
        assert_eq!(h.settings_with_defaults(&with), json!({"threshold": 500, "tag": "vip"}));
        assert_eq!(h.settings_with_defaults(&Map::new()), json!({"threshold": 1000, "tag": "vip"}));
    }
}
