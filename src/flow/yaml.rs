//! A YAML document as a tree in which every node keeps its line and column.
//!
//! Flow files are read into this tree first (through `serde-saphyr`, which is
//! panic-free and reports positions), and only then interpreted. Walking the
//! tree by hand, instead of deserialising straight into structs, is what lets
//! validation report *every* mistake with its position rather than stopping at
//! the first one.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl Pos {
    /// A position at `line:col`.
    pub const fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

fn pos_of(location: &serde_saphyr::Location) -> Pos {
    Pos {
        line: u32::try_from(location.line()).unwrap_or(u32::MAX),
        col: u32::try_from(location.column()).unwrap_or(u32::MAX),
    }
}

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// The value itself.
    pub value: Value,
}

/// The shapes a YAML value can take.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in 64 bits (signed).
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys keep their own positions.
    Map(Vec<(Key, Node)>),
}

/// A mapping key and its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Where the key starts.
    pub pos: Pos,
    /// The key text.
    pub name: String,
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    /// Where the parser stopped, when it knows.
    pub pos: Option<Pos>,
    /// What the parser said.
    pub message: String,
}

/// Parses a YAML document into a positioned tree.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    let mut options = serde_saphyr::options::Options::default();
    options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::Error;
    options.with_snippet = false;
    // YAML 1.1 reads `n`, `no`, `on` and `NO` (Norway) as booleans; ops staff
    // writing a country code or a setting named `n` mean the string.
    options.strict_booleans = true;
    match serde_saphyr::from_str_with_options::<Option<Spanned<Value>>>(source, options) {
        Ok(Some(spanned)) => Ok(Node { pos: pos_of(&spanned.referenced), value: spanned.value }),
        Ok(None) => Ok(Node { pos: Pos::new(1, 1), value: Value::Null }),
        Err(error) => {
            let pos = error.location().map(|l| pos_of(&l)).filter(|p| p.line > 0);
            Err(SyntaxError { pos, message: strip_location(&error.to_string()) })
        }
    }
}

/// serde-saphyr appends " at line X column Y" to its messages; the position is
/// reported separately, in `file:line:col:` form, so drop it from the text.
fn strip_location(message: &str) -> String {
    let first_line = message.lines().next().unwrap_or(message);
    match first_line.rfind(" at line ") {
        Some(index) => first_line[..index].to_string(),
        None => first_line.to_string(),
    }
}

impl Value {
    /// The name of this value's kind, as an ops person would say it.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.name == key).map(|(_, v)| v)
    }

    /// Converts to JSON, dropping positions. Keys keep file order.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.name.clone(), v.to_json())).collect()),
        }
    }

    /// The node reached by following a JSON-style path of keys and indices
    /// (as produced by `serde_path_to_error`), or the deepest one that exists.
    pub fn descend<'p>(&self, path: impl IntoIterator<Item = PathStep<'p>>) -> &Node {
        let mut node = self;
        for step in path {
            let next = match (step, &node.value) {
                (PathStep::Key(name), Value::Map(entries)) => {
                    entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v)
                }
                (PathStep::Index(i), Value::Seq(items)) => items.get(i),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }

    /// The position of the key `name` in this mapping, if present.
    pub fn key_pos(&self, name: &str) -> Option<Pos> {
        self.as_map()?.iter().find(|(k, _)| k.name == name).map(|(k, _)| k.pos)
    }
}

/// One step of a path into a tree.
#[derive(Debug, Clone, Copy)]
pub enum PathStep<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index.
    Index(usize),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::UInt(v), Value::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        i64::try_from(v).map(Value::Int).map_err(|_| E::custom("integer out of range"))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v).map(|v| self.visit_u64::<E>(v)).map_err(|_| E::custom("integer out of range"))?
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(Node { pos: pos_of(&item.referenced), value: item.value });
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let name = key.value;
            let value = map.next_value::<Spanned<Value>>()?;
            entries.push((
                Key { pos: pos_of(&key.referenced), name },
                Node { pos: pos_of(&value.referenced), value: value.value },
            ));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let doc = parse("flow: demo\nnodes:\n  read:\n    use: read_jsonl\n    with:\n      path: a.jsonl\n").unwrap();
        let nodes = doc.get("nodes").unwrap();
        assert_eq!(doc.key_pos("nodes"), Some(Pos::new(2, 1)));
        let read = nodes.get("read").unwrap();
        assert_eq!(nodes.key_pos("read"), Some(Pos::new(3, 3)));
        let path = read.get("with").unwrap().get("path").unwrap();
        assert_eq!(path.pos, Pos::new(6, 13));
        assert_eq!(path.as_str(), Some("a.jsonl"));
    }

    #[test]
    fn big_integers_do_not_pass_through_floats() {
        let doc = parse("tid: 4611686018427387905\nbig: 18446744073709551615\n").unwrap();
        assert_eq!(doc.get("tid").unwrap().value, Value::Int(4_611_686_018_427_387_905));
        assert_eq!(doc.get("big").unwrap().value, Value::UInt(u64::MAX));
    }

    #[test]
    fn syntax_errors_have_a_position_and_no_panic() {
        let error = parse("flow: demo\nnodes:\n  a: [unclosed\n").unwrap_err();
        assert!(error.pos.is_some(), "{error:?}");
        assert!(!error.message.contains(" at line "), "{}", error.message);
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let error = parse("nodes:\n  a: 1\n  a: 2\n").unwrap_err();
        assert!(error.message.to_lowercase().contains("duplicate"), "{}", error.message);
    }

    #[test]
    fn short_words_stay_strings() {
        let doc = parse("n: NO\ny: on\n").unwrap();
        assert_eq!(doc.get("n").unwrap().as_str(), Some("NO"));
        assert_eq!(doc.get("y").unwrap().as_str(), Some("on"));
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap().value, Value::Null);
    }
}
