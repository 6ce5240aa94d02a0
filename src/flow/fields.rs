//! The last stage of `compile()`: every record field a node reads — in its
//! `when:`, in settings naming fields (`store` columns, `log` fields) and in
//! its scripts — must be a field the records reaching it have, and a status
//! it compares with must be one those records can have.
//!
//! What reaches a node is what its inputs emit ([`Output::fields`]): a source
//! or a node making records of its own gives their fields; a node passing
//! records on gives what it received plus what it adds. With several inputs
//! a field must come from each of them (a record from the other input would
//! lack it). An input whose fields are not known (`read_jsonl`, a script that
//! builds records) turns the check off for the nodes after it: no false
//! alarms. Error handlers without an input receive the failed run's record.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::compile::script_pos;
use super::error::ConfigError;
use super::model::{Flow, NodeSpec};
use super::yaml::{Node, Pos, Value};
use crate::engine::output::{Entry, FieldRead, Fields, Shape, Typing, error_record_fields};
use crate::nodes::{BuildContext, Registry};
use crate::script::{FieldUse, Place, Step};

/// The fields of the records reaching each node of `flow` (the editor's
/// field completion): `None` for a source, and where they are not known.
pub fn fields_reaching(flow: &Flow, registry: &Registry, build: &BuildContext) -> BTreeMap<String, Option<Fields>> {
    let mut reaching = BTreeMap::new();
    for (specs, unfed) in [(&flow.nodes, None), (&flow.error_nodes, Some(error_record_fields()))] {
        walk(specs, unfed, registry, build, |spec, received, _| {
            reaching.insert(spec.id.clone(), received.cloned());
        });
    }
    reaching
}

/// Visits `specs` (in dependency order) with the fields of the records
/// reaching each (`None`: not known, or none for a source) and its typing.
/// Nodes without an input receive `unfed` (the error handlers' record).
fn walk<'s>(
    specs: &'s [NodeSpec],
    unfed: Option<Fields>,
    registry: &Registry,
    build: &BuildContext,
    mut visit: impl FnMut(&'s NodeSpec, Option<&Fields>, &Typing),
) {
    // Per node, the fields of what it emits; `None` when not known.
    let mut emitted: HashMap<&str, Option<Fields>> = HashMap::new();
    for spec in specs {
        let received = if spec.inputs.is_empty() {
            unfed.clone()
        } else {
            spec.inputs
                .iter()
                .try_fold(None::<Fields>, |common, input| {
                    let fields = emitted.get(input.as_str()).cloned().flatten()?;
                    Some(Some(match common {
                        Some(common) => common.common(&fields),
                        None => fields,
                    }))
                })
                .flatten()
        };
        // A type that does not build was reported by the build: nothing is
        // known after it.
        let typing = registry.get(&spec.type_name).and_then(|t| t.typing(&spec.settings, build).ok());
        let emits = typing.as_ref().and_then(|typing| {
            visit(spec, received.as_ref(), typing);
            typing.output.fields(received.as_ref())
        });
        emitted.insert(&spec.id, emits);
    }
}

/// What the field checks need besides the flow.
pub(super) struct Checker<'a> {
    pub file: &'a Path,
    pub source: &'a str,
    pub tree: &'a Node,
    pub registry: &'a Registry,
    pub build: &'a BuildContext,
}

impl Checker<'_> {
    /// Checks the fields read by the nodes of `flow`.
    pub(super) fn check(&self, flow: &Flow) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        self.section(&flow.nodes, "nodes", None, &mut errors);
        self.section(&flow.error_nodes, "errors", Some(error_record_fields()), &mut errors);
        errors
    }

    /// Checks the nodes of one section (`nodes:` or `errors:`).
    fn section(&self, specs: &[NodeSpec], section: &str, unfed: Option<Fields>, errors: &mut Vec<ConfigError>) {
        walk(specs, unfed, self.registry, self.build, |spec, received, typing| {
            let body = self.tree.get(section).and_then(|nodes| nodes.get(&spec.id));
            let (Some(received), Some(body)) = (received, body) else { return };
            let node = NodeAt { spec, body, received };
            if let (Some(when), Some(when_node)) = (&spec.when, body.get("when")) {
                for read in when.condition.fields().reads {
                    node.check_script_read(self, &read, None, when_node.pos, errors);
                }
            }
            for read in &typing.reads {
                node.check_read(self, read, errors);
            }
        });
    }
}

/// One node, its YAML and the fields of the records reaching it.
struct NodeAt<'a> {
    spec: &'a NodeSpec,
    body: &'a Node,
    received: &'a Fields,
}

impl NodeAt<'_> {
    fn check_read(&self, checker: &Checker<'_>, read: &FieldRead, errors: &mut Vec<ConfigError>) {
        match read {
            FieldRead::Setting { name, setting, entry } => {
                if self.received.get(name).is_none() {
                    let pos = self.setting_pos(setting, entry);
                    errors.push(self.missing(checker.file, Some(pos), name, name, self.received));
                }
            }
            FieldRead::Script { setting, file, read } => {
                let with = self.body.get("with");
                let value_pos = with.and_then(|w| w.get(setting)).or(with).map_or(self.spec.pos, |n| n.pos);
                self.check_script_read(checker, read, file.as_deref(), value_pos, errors);
            }
        }
    }

    /// Checks one path a script reads; the script is in `file`, or inline in
    /// the flow file at `value_pos`.
    fn check_script_read(
        &self,
        checker: &Checker<'_>,
        read: &FieldUse,
        file: Option<&Path>,
        value_pos: Pos,
        errors: &mut Vec<ConfigError>,
    ) {
        // A place in the script, in its own file (naming the node using it)
        // or mapped into the flow file.
        let located = |place: Place, error: ConfigError| -> ConfigError {
            match file {
                Some(script) => ConfigError {
                    file: script.to_path_buf(),
                    pos: Some(Pos::new(place.line as u32, place.col as u32)),
                    message: format!(
                        "{} (used by node \"{}\" in {})",
                        error.message,
                        self.spec.id,
                        checker.file.display()
                    ),
                    ..error
                },
                None => ConfigError {
                    pos: Some(script_pos(checker.source, value_pos, Some(place.line), Some(place.col))),
                    ..error
                },
            }
        };
        match lookup(self.received, &read.steps) {
            Lookup::Missing { step, fields } => {
                let (Step::Field(name), place) = &read.steps[step] else { return };
                let error = self.missing(checker.file, None, &path_label(&read.steps[..=step]), name, fields);
                errors.push(located(*place, error));
            }
            Lookup::Found(Shape::Value { values, .. }) if !values.is_empty() => {
                for (text, place) in read.compared_to.iter().filter(|(text, _)| !values.contains(&text.as_str())) {
                    let message = format!(
                        "\"{text}\" is not a known \"{}\" of records reaching \"{}\"",
                        path_label(&read.steps),
                        self.spec.id
                    );
                    let error =
                        ConfigError::new(checker.file, None, message).suggest_or_list(text, values.iter().copied());
                    errors.push(located(*place, error));
                }
            }
            _ => {}
        }
    }

    /// `records reaching "id" have no field "path"`, with the field of
    /// `fields` nearest to `name` (the path's last name), or the list of them
    /// when none is near.
    fn missing(&self, file: &Path, pos: Option<Pos>, path: &str, name: &str, fields: &Fields) -> ConfigError {
        let message = format!("records reaching \"{}\" have no field \"{path}\"", self.spec.id);
        ConfigError::new(file, pos, message).suggest_or_list(name, fields.names())
    }

    /// Where a setting names a field: the string, the list item or the map key.
    fn setting_pos(&self, setting: &str, entry: &Entry) -> Pos {
        let with = self.body.get("with");
        let Some(value) = with.and_then(|w| w.get(setting)) else {
            return with.map_or(self.spec.pos, |w| w.pos);
        };
        match (entry, &value.value) {
            (Entry::Item(index), Value::Seq(items)) => items.get(*index).map_or(value.pos, |item| item.pos),
            (Entry::Key(name), Value::Map(_)) => value.key_pos(name).unwrap_or(value.pos),
            _ => value.pos,
        }
    }
}

/// What a path leads to in records of `fields`.
enum Lookup<'f> {
    /// A field of this shape.
    Found(&'f Shape),
    /// Step `step` names a field that `fields` (the object it is looked up
    /// in) lacks.
    Missing { step: usize, fields: &'f Fields },
    /// Somewhere validation does not look into (any value, a method).
    Unknown,
}

fn lookup<'f>(fields: &'f Fields, steps: &[(Step, Place)]) -> Lookup<'f> {
    let mut object = fields;
    let mut shape: Option<&Shape> = None;
    for (index, (step, _)) in steps.iter().enumerate() {
        match (shape, step) {
            (None, Step::Field(name)) | (Some(Shape::Object(_)), Step::Field(name)) => {
                if let Some(Shape::Object(inner)) = shape {
                    object = inner;
                }
                match object.get(name) {
                    Some(field) => shape = Some(&field.shape),
                    None => return Lookup::Missing { step: index, fields: object },
                }
            }
            (Some(Shape::List(item)), Step::Item) => shape = Some(item),
            _ => return Lookup::Unknown,
        }
    }
    shape.map_or(Lookup::Unknown, Lookup::Found)
}

/// `items[].outer_sku_id` for messages.
fn path_label(steps: &[(Step, Place)]) -> String {
    let mut label = String::new();
    for (step, _) in steps {
        match step {
            Step::Field(name) if label.is_empty() => label.push_str(name),
            Step::Field(name) => {
                label.push('.');
                label.push_str(name);
            }
            Step::Item => label.push_str("[]"),
        }
    }
    label
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use crate::flow::{CompileEnv, compile};
    use crate::nodes::testing::FakeShop;
    use crate::nodes::{Registry, custom};

    /// The errors of `yaml` as `flows/x.yaml` against the built-in types,
    /// the shipped `nodes/*.rhai` and a shop `s`.
    fn errors(yaml: &str) -> Vec<String> {
        let build = FakeShop::new([], None).context();
        let mut registry = Registry::builtin();
        let nodes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nodes");
        assert!(custom::load_dir(&nodes, &build.sandbox, &mut registry).is_empty());
        let shops = BTreeSet::from(["s".to_owned()]);
        let env = CompileEnv { registry: &registry, build: &build, shops: &shops };
        match compile(std::path::Path::new("flows/x.yaml"), yaml, &env) {
            Ok(_) => Vec::new(),
            Err(errors) => {
                errors.0.iter().map(|e| e.to_string().replace(&nodes.display().to_string(), "nodes")).collect()
            }
        }
    }

    const HEAD: &str = "flow: x\nshop: s\nnodes:\n  orders:\n    use: fetch_increment\n    with: {first_run: 1h}\n";

    #[test]
    fn a_misspelt_field_in_when_is_refused_at_its_place_and_the_right_one_passes() {
        let flow = format!(
            "{HEAD}  keep:\n    use: log\n    input: orders\n    when: 'record.stauts == \"TRADE_FINISHED\"'\n"
        );
        assert_eq!(
            errors(&flow),
            ["flows/x.yaml:10:19: records reaching \"keep\" have no field \"stauts\" (did you mean \"status\"?)"]
        );
        assert_eq!(errors(&flow.replace("stauts", "status")), Vec::<String>::new());
    }

    #[test]
    fn a_status_typo_is_refused_with_the_status_meant() {
        let flow = format!(
            "{HEAD}  keep:\n    use: filter\n    input: orders\n    with:\n      condition: |\n        record.status in [\"WAIT_BUYER_PAY\",\n          \"TRADE_FINSHED\"]\n"
        );
        // Rhai folds a list of constants into one value: its strings are
        // placed at the list's `[`.
        assert_eq!(
            errors(&flow),
            [
                "flows/x.yaml:12:26: \"TRADE_FINSHED\" is not a known \"status\" of records reaching \"keep\" (did you mean \"TRADE_FINISHED\"?)"
            ]
        );
        let refunds = "flow: x\nshop: s\nnodes:\n  refunds: {use: fetch_refunds, with: {first_run: 1h}}\n  ok: {use: log, input: refunds, when: 'record.status != \"SUCCES\"'}\n";
        let found = errors(refunds);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("flows/x.yaml:5:58: \"SUCCES\" is not a known \"status\""), "{}", found[0]);
    }

    #[test]
    fn nested_item_fields_and_settings_naming_fields_are_checked() {
        let flow = format!(
            "{HEAD}  keep:\n    use: filter\n    input: orders\n    with:\n      condition: record.items[0].outer_sku != \"\" && record.raw.anything == 1\n  save:\n    use: store\n    input: keep\n    with:\n      table: t\n      key: [tid]\n      columns: {{tid: integer, buyer: text}}\n  show: {{use: log, input: keep, with: {{fields: [tid, paymnt]}}}}\n"
        );
        assert_eq!(
            errors(&flow),
            [
                "flows/x.yaml:11:34: records reaching \"keep\" have no field \"items[].outer_sku\" (did you mean \"outer_sku_id\"?)",
                "flows/x.yaml:18:31: records reaching \"save\" have no field \"buyer\"; expected one of \"platform\", \"shop\", \"tid\", \"status\", \"type\", \"created\", \"modified\", \"pay_time\", \"payment\", \"buyer_nick\", \"step_trade_status\", \"items\" or \"raw\"",
                "flows/x.yaml:19:54: records reaching \"show\" have no field \"paymnt\" (did you mean \"payment\"?)",
            ]
        );
    }

    #[test]
    fn fields_a_script_sets_reach_the_nodes_after_it_and_its_own_reads_are_checked() {
        let flow = format!(
            "{HEAD}  vip: {{use: tag_vip, input: orders}}\n  show: {{use: log, input: vip, with: {{fields: [vip_level, tid]}}}}\n  level:\n    use: script\n    input: vip\n    with:\n      source: |\n        record.band = record.vip_level * 10;\n        record.note = record.buyer_nik;\n  banded: {{use: log, input: level, when: 'record.band > 10 && record.note != \"\"'}}\n"
        );
        assert_eq!(
            errors(&flow),
            [
                "flows/x.yaml:15:30: records reaching \"level\" have no field \"buyer_nik\" (did you mean \"buyer_nick\"?)"
            ]
        );
    }

    #[test]
    fn a_custom_node_reading_a_missing_field_is_reported_in_its_file() {
        let flow = "flow: x\nshop: s\nnodes:\n  alerts: {use: stored_orders, with: {statuses: [WAIT_BUYER_CONFIRM_GOODS]}}\n  vip: {use: tag_vip, input: alerts}\n";
        let found = errors(flow);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("nodes/tag_vip.rhai:")
                && found[0].contains("records reaching \"vip\" have no field \"payment\"")
                && found[0].ends_with("(used by node \"vip\" in flows/x.yaml); expected one of \"platform\", \"shop\", \"tid\", \"status\" or \"modified\""),
            "{}",
            found[0]
        );
    }

    #[test]
    fn with_several_inputs_a_field_must_come_from_each_and_an_open_input_turns_the_check_off() {
        let flow = format!(
            "{HEAD}  shipped: {{use: stored_orders, with: {{statuses: [WAIT_BUYER_CONFIRM_GOODS]}}}}\n  both: {{use: log, input: [orders, shipped], when: 'record.payment != \"\"'}}\n"
        );
        let found = errors(&flow);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("flows/x.yaml:8:60: records reaching \"both\" have no field \"payment\""),
            "{}",
            found[0]
        );

        let open = "flow: x\nnodes:\n  lines: {use: read_jsonl, with: {path: x.jsonl}}\n  built:\n    use: script\n    input: lines\n    with: {source: '#{ total: record.anything }'}\n  show: {use: log, input: built, when: 'record.whatever == 1'}\n";
        assert_eq!(errors(open), Vec::<String>::new());
    }

    #[test]
    fn the_fields_reaching_each_node_are_data_for_completion() {
        let build = FakeShop::new([], None).context();
        let mut registry = Registry::builtin();
        let nodes = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nodes");
        custom::load_dir(&nodes, &build.sandbox, &mut registry);
        let shops = BTreeSet::from(["s".to_owned()]);
        let env = CompileEnv { registry: &registry, build: &build, shops: &shops };
        let yaml = format!("{HEAD}  vip: {{use: tag_vip, input: orders}}\n  show: {{use: log, input: vip}}\n");
        let flow = compile(std::path::Path::new("flows/x.yaml"), &yaml, &env).unwrap();
        let reaching = super::fields_reaching(&flow, &registry, &build);
        assert_eq!(reaching["orders"], None, "a source receives nothing");
        let show: Vec<&str> = reaching["show"].as_ref().unwrap().names().collect();
        assert_eq!(show.first(), Some(&"platform"));
        assert_eq!(show.last(), Some(&"vip_level"));
    }

    #[test]
    fn error_handlers_receive_the_failed_run() {
        let flow = format!("{HEAD}errors:\n  report: {{use: log, with: {{fields: [flow, run_id, eror]}}}}\n");
        let found = errors(&flow);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "flows/x.yaml:8:52: records reaching \"report\" have no field \"eror\" (did you mean \"error\"?)"
            ),
            "{}",
            found[0]
        );
    }
}
