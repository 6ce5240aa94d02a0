//! What records a node emits and which fields it reads: the data behind the
//! field checks of `validate` (`src/flow/fields.rs`), the output fields in
//! the docs and the schema, and the editor's field completion.
//!
//! Every node type declares an [`Output`]: records of its own shape, the
//! records it receives plus some fields, or records whose fields nobody knows
//! before the run. Shapes of the platforms' models are derived from the Rust
//! types through their JSON Schema ([`Fields::of`]), so they cannot drift from
//! what is serialised; each node's tests check that what it really emits is
//! declared (`nodes::testing::assert_output`).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde_json::{Map, Value as Json, json};

use crate::platforms::taobao::fields::{REFUND_STATUSES, TRADE_STATUSES};
use crate::platforms::{Order, Refund};
use crate::script::{FieldUse, ScriptFields};

/// What one field holds, as far as validation knows before a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Any value, not looked into (a platform's own JSON in `raw`).
    Any,
    /// A scalar of one of these JSON types (`string`, `integer`, `null`, …),
    /// and, when `values` is not empty, one of those strings.
    Value {
        /// JSON Schema type names.
        types: Vec<String>,
        /// The only strings it can be (statuses); empty when any.
        values: &'static [&'static str],
    },
    /// An object map with these fields.
    Object(Fields),
    /// An array of this.
    List(Box<Shape>),
}

impl Shape {
    /// A scalar of one JSON type.
    pub fn of_type(name: &str) -> Self {
        Self::Value { types: vec![name.to_owned()], values: &[] }
    }

    /// The JSON Schema of this shape (what the editor completes from).
    pub fn to_schema(&self) -> Json {
        match self {
            Self::Any => json!({}),
            Self::Value { types, values } => {
                let mut schema = Map::new();
                schema.insert(
                    "type".into(),
                    match types.as_slice() {
                        [one] => json!(one),
                        many => json!(many),
                    },
                );
                if !values.is_empty() {
                    schema.insert("enum".into(), json!(values));
                }
                Json::Object(schema)
            }
            Self::Object(fields) => json!({"type": "object", "properties": fields.to_schema()}),
            Self::List(item) => json!({"type": "array", "items": item.to_schema()}),
        }
    }

    /// A short name for docs: `string`, `integer or null`, `list of object`.
    pub fn label(&self) -> String {
        match self {
            Self::Any => "any".into(),
            Self::Value { types, .. } => types.join(" or "),
            Self::Object(_) => "object".into(),
            Self::List(item) => format!("list of {}", item.label()),
        }
    }

    /// What two shapes have in common: where they differ, [`Shape::Any`]
    /// (validation then stops looking, rather than guess).
    fn common(&self, other: &Shape) -> Shape {
        match (self, other) {
            (Self::Object(a), Self::Object(b)) => Self::Object(a.common(b)),
            (Self::List(a), Self::List(b)) => Self::List(Box::new(a.common(b))),
            (a, b) if a == b => a.clone(),
            _ => Self::Any,
        }
    }
}

/// One field of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Its name.
    pub name: String,
    /// What it holds.
    pub shape: Shape,
    /// What it means, one line (may be empty).
    pub doc: String,
}

/// The fields of a record, in the order they are documented.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<Field>);

impl Fields {
    /// Adds (or replaces) a field.
    #[must_use]
    pub fn field(mut self, name: &str, shape: Shape, doc: &str) -> Self {
        self.set(Field { name: name.to_owned(), shape, doc: doc.to_owned() });
        self
    }

    /// Restricts the strings a scalar field can be (statuses).
    #[must_use]
    pub fn with_values(mut self, name: &str, values: &'static [&'static str]) -> Self {
        if let Some(Field { shape: Shape::Value { values: known, .. }, .. }) =
            self.0.iter_mut().find(|field| field.name == name)
        {
            *known = values;
        }
        self
    }

    fn set(&mut self, field: Field) {
        match self.0.iter_mut().find(|existing| existing.name == field.name) {
            Some(existing) => *existing = field,
            None => self.0.push(field),
        }
    }

    /// The fields of `T` as serde serialises it, from its JSON Schema.
    pub fn of<T: JsonSchema>() -> Self {
        let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Json::Null);
        let defs = schema.get("$defs").cloned().unwrap_or(Json::Null);
        match shape_of(&schema, &defs) {
            Shape::Object(fields) => fields,
            _ => Self::default(),
        }
    }

    /// A normalised order ([`Order`]), its `status` one of TOP's trade
    /// statuses (every platform maps to them).
    pub fn order() -> Self {
        Self::of::<Order>().with_values("status", TRADE_STATUSES)
    }

    /// A refund ([`Refund`]), its `status` one of TOP's refund statuses.
    pub fn refund() -> Self {
        Self::of::<Refund>().with_values("status", REFUND_STATUSES)
    }

    /// Only the fields called one of `names`.
    #[must_use]
    pub fn only(self, names: &[&str]) -> Self {
        Self(self.0.into_iter().filter(|field| names.contains(&field.name.as_str())).collect())
    }

    /// The field called `name`.
    pub fn get(&self, name: &str) -> Option<&Field> {
        self.0.iter().find(|field| field.name == name)
    }

    /// Every field, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Field> {
        self.0.iter()
    }

    /// Every field's name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.0.iter().map(|field| field.name.as_str())
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// These fields and `more` (which win on a clash).
    #[must_use]
    pub fn and(mut self, more: &Fields) -> Self {
        for field in &more.0 {
            self.set(field.clone());
        }
        self
    }

    /// The fields both have (records from two inputs: a field is certain
    /// only when each input has it).
    #[must_use]
    pub fn common(&self, other: &Fields) -> Self {
        Self(
            self.0
                .iter()
                .filter_map(|field| {
                    let theirs = other.get(&field.name)?;
                    Some(Field { shape: field.shape.common(&theirs.shape), ..field.clone() })
                })
                .collect(),
        )
    }

    /// `{name: JSON Schema}` for each field, in order.
    pub fn to_schema(&self) -> Json {
        Json::Object(self.0.iter().map(|field| (field.name.clone(), field_schema(field))).collect())
    }
}

fn field_schema(field: &Field) -> Json {
    let mut schema = field.shape.to_schema();
    if let (Json::Object(map), false) = (&mut schema, field.doc.is_empty()) {
        map.insert("description".into(), json!(field.doc));
    }
    schema
}

/// The shape a JSON Schema (schemars' output) describes, `$ref`s into
/// `defs` followed; anything it cannot read is [`Shape::Any`].
fn shape_of(schema: &Json, defs: &Json) -> Shape {
    if let Some(name) = schema.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
        return defs.get(name).map_or(Shape::Any, |def| shape_of(def, defs));
    }
    // `Option<T>` of a struct: `anyOf: [T, null]`.
    if let Some(variants) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Json::as_array) {
        let not_null: Vec<&Json> = variants.iter().filter(|v| v.get("type") != Some(&json!("null"))).collect();
        return match not_null.as_slice() {
            [one] => shape_of(one, defs),
            _ => Shape::Any,
        };
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Json::String(one)) => vec![one.clone()],
        Some(Json::Array(many)) => many.iter().filter_map(Json::as_str).map(str::to_owned).collect(),
        _ => return Shape::Any,
    };
    let not_null: Vec<&str> = types.iter().map(String::as_str).filter(|t| *t != "null").collect();
    match not_null.as_slice() {
        ["object"] => match schema.get("properties").and_then(Json::as_object) {
            Some(properties) => Shape::Object(Fields(
                properties
                    .iter()
                    .map(|(name, property)| Field {
                        name: name.clone(),
                        shape: shape_of(property, defs),
                        doc: first_line(property.get("description").and_then(Json::as_str).unwrap_or_default()),
                    })
                    .collect(),
            )),
            None => Shape::Any,
        },
        ["array"] => Shape::List(Box::new(schema.get("items").map_or(Shape::Any, |items| shape_of(items, defs)))),
        _ => Shape::Value { types, values: &[] },
    }
}

fn first_line(doc: &str) -> String {
    doc.split("\n\n").next().unwrap_or_default().replace('\n', " ")
}

/// The record an error handler without an input receives when its flow's
/// run failed (`engine::Engine::run`).
pub fn error_record_fields() -> Fields {
    let text = || Shape::of_type("string");
    Fields::default().field("flow", text(), "The flow's name.").field("run_id", text(), "The failed run's id.").field(
        "error",
        Shape::Value { types: vec!["string".into(), "null".into()], values: &[] },
        "Why it failed.",
    )
}

/// What a node sends downstream.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Records of its own with these fields (sources; nodes that turn what
    /// they receive into something else, like alerts).
    Records(Fields),
    /// The records it receives, with these fields added (none: unchanged).
    Received(Fields),
    /// Records whose fields are not known before the run (a file's lines, a
    /// script that builds records): nothing after it is checked.
    Open,
}

impl Output {
    /// The records received, unchanged.
    pub fn unchanged() -> Self {
        Self::Received(Fields::default())
    }

    /// The fields of what the node sends, given what it receives (`None`:
    /// not known).
    pub fn fields(&self, received: Option<&Fields>) -> Option<Fields> {
        match self {
            Self::Records(fields) => Some(fields.clone()),
            Self::Received(added) => received.map(|fields| fields.clone().and(added)),
            Self::Open => None,
        }
    }

    /// As data, for the schema and the editor: `{records: "own" | "received"
    /// | "open", fields: {name: JSON Schema}}`.
    pub fn to_schema(&self) -> Json {
        match self {
            Self::Records(fields) => json!({"records": "own", "fields": fields.to_schema()}),
            Self::Received(added) => json!({"records": "received", "fields": added.to_schema()}),
            Self::Open => json!({"records": "open", "fields": {}}),
        }
    }
}

/// A record field a node reads, and where its flow names it.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldRead {
    /// A field named by a setting: a string (`newer_than: modified`), an item
    /// of a list (`fields: [tid]`) or a key of a map (`columns: {tid: …}`).
    Setting {
        /// The field.
        name: String,
        /// The setting naming it.
        setting: String,
        /// Where inside the setting.
        entry: Entry,
    },
    /// A path a script reads.
    Script {
        /// The setting holding the script (`source`, `condition`), or the
        /// setting naming its file.
        setting: String,
        /// The script's file; `None` when it is inline in the flow file.
        file: Option<PathBuf>,
        /// The path, with its places in the script.
        read: FieldUse,
    },
}

/// Where inside a setting a field is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// The setting's value itself.
    Whole,
    /// The n-th item of a list.
    Item(usize),
    /// The key of a map.
    Key(String),
}

/// What a node reads and emits, once its settings are known.
#[derive(Debug, Clone, PartialEq)]
pub struct Typing {
    /// The fields read.
    pub reads: Vec<FieldRead>,
    /// What it sends.
    pub output: Output,
}

impl Typing {
    /// Reads nothing; sends `output`.
    pub fn output(output: Output) -> Self {
        Self { reads: Vec::new(), output }
    }

    /// Adds one read per field a setting names.
    #[must_use]
    pub fn reading_setting<'a>(mut self, setting: &str, names: impl IntoIterator<Item = (Entry, &'a str)>) -> Self {
        self.reads.extend(names.into_iter().map(|(entry, name)| FieldRead::Setting {
            name: name.to_owned(),
            setting: setting.to_owned(),
            entry,
        }));
        self
    }

    /// Adds the reads of a script, except of fields it set itself.
    #[must_use]
    pub fn reading_script(mut self, setting: &str, file: Option<PathBuf>, fields: &ScriptFields) -> Self {
        let own = |read: &FieldUse| matches!(read.steps.first(), Some((crate::script::Step::Field(name), _)) if fields.sets.contains(name));
        self.reads.extend(fields.reads.iter().filter(|read| !own(read)).map(|read| FieldRead::Script {
            setting: setting.to_owned(),
            file: file.clone(),
            read: read.clone(),
        }));
        self
    }

    /// The output of a script: the records it receives plus `declared` and
    /// what it sets, or open when it may build records of its own.
    pub fn script_output(fields: &ScriptFields, declared: Fields) -> Output {
        if fields.may_reshape {
            return Output::Open;
        }
        let set =
            fields.sets.iter().fold(Fields::default(), |set, name| set.field(name, Shape::Any, "Set by the script."));
        Output::Received(set.and(&declared))
    }
}

/// Reads of each item of a list setting naming fields.
pub fn list_entries(names: &[String]) -> impl Iterator<Item = (Entry, &str)> {
    names.iter().enumerate().map(|(index, name)| (Entry::Item(index), name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_shape_is_the_serialised_order_with_typed_items_and_an_open_raw() {
        let order = Fields::order();
        let names: Vec<&str> = order.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "platform",
                "shop",
                "tid",
                "status",
                "type",
                "created",
                "modified",
                "pay_time",
                "payment",
                "buyer_nick",
                "step_trade_status",
                "items",
                "raw"
            ]
        );
        assert_eq!(order.get("raw").unwrap().shape, Shape::Any);
        assert_eq!(order.get("pay_time").unwrap().shape.label(), "string or null");
        let Shape::List(item) = &order.get("items").unwrap().shape else { panic!("items is a list") };
        let Shape::Object(item) = item.as_ref() else { panic!("of objects") };
        assert!(item.get("outer_sku_id").is_some());
        assert!(
            matches!(order.get("status").unwrap().shape, Shape::Value { values, .. } if values.contains(&"TRADE_FINISHED"))
        );
        assert_eq!(order.get("tid").unwrap().doc, "The platform's order id (TOP `tid`); may exceed 2^53.");
    }

    #[test]
    fn every_status_a_platform_maps_to_is_a_known_one() {
        use crate::platforms::douyin::mapping::{refund_status_name, status_name};
        for code in 0..1000 {
            for paid in [false, true] {
                if let Some(status) = status_name(code, paid) {
                    assert!(TRADE_STATUSES.contains(&status), "Douyin order status {code}: {status}");
                }
            }
            if let Some(status) = refund_status_name(code) {
                assert!(REFUND_STATUSES.contains(&status), "Douyin after-sale status {code}: {status}");
            }
        }
    }

    #[test]
    fn common_fields_keep_what_both_inputs_have() {
        let a = Fields::default().field("x", Shape::of_type("string"), "").field("y", Shape::of_type("string"), "");
        let b = Fields::default().field("y", Shape::of_type("integer"), "").field("z", Shape::Any, "");
        let common = a.common(&b);
        assert_eq!(common.iter().map(|f| (f.name.as_str(), f.shape.clone())).collect::<Vec<_>>(), [("y", Shape::Any)]);
    }
}
