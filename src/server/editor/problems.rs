//! What `POST /api/validate` answers: the compiler's errors as problems that
//! name the node and YAML path they belong to, and the graph as far as the
//! text describes one (also while it has errors, so the canvas can draw it).

use std::path::Path;

use serde::Serialize;
use serde_json::Value as Json;

use crate::flow::yaml::{self, Node, Pos, Value};
use crate::flow::{CompileEnv, ConfigError, Flow, compile};
use crate::nodes::{Registry, Role};

/// One mistake, for the problem list and the node it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// 1-based line in the flow text; `None` when the mistake has no position
    /// there (it is in a `nodes/*.rhai` file, which `message` names).
    pub line: Option<u32>,
    /// 1-based column, with `line`.
    pub col: Option<u32>,
    /// What is wrong, the suggestion and what was expected.
    pub message: String,
    /// The node id under `nodes:` or `errors:` the position is in.
    pub node: Option<String>,
    /// The YAML path of the key or value at the position, such as
    /// `["nodes", "fresh", "with", "window"]`; list items are numbers.
    pub path: Option<Vec<Json>>,
}

/// One node of the graph the text describes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphNode {
    /// Its id.
    pub id: String,
    /// Its `use:`, when that is a string.
    #[serde(rename = "use")]
    pub node_type: Option<String>,
    /// `source` or `transform`, when the type is known.
    pub role: Option<&'static str>,
    /// Its `input:` ids.
    pub inputs: Vec<String>,
    /// True for the handlers under `errors:`.
    pub errors_lane: bool,
}

/// The graph the text describes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    /// Every node under `nodes:`, then under `errors:`, in file order.
    pub nodes: Vec<GraphNode>,
}

/// The answer to a validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Validation {
    /// True when the flow compiles.
    pub ok: bool,
    /// Every mistake, in position order.
    pub problems: Vec<Problem>,
    /// `None` when the text is not YAML or not a mapping.
    pub graph: Option<Graph>,
}

/// Compiles `source` as the flow file `file`, the way `orderflow validate`
/// does, and describes the result.
pub fn validate(file: &Path, source: &str, env: &CompileEnv<'_>) -> Validation {
    let tree = yaml::parse(source).ok();
    let problems = compile_with_problems(file, source, tree.as_ref(), env).err().unwrap_or_default();
    let graph = tree.as_ref().and_then(|tree| graph(tree, env.registry));
    Validation { ok: problems.is_empty(), problems, graph }
}

/// Compiles `source` as the flow file `file` (what a test run runs), its
/// errors as problems.
pub fn compile_flow(file: &Path, source: &str, env: &CompileEnv<'_>) -> Result<Flow, Vec<Problem>> {
    compile_with_problems(file, source, yaml::parse(source).ok().as_ref(), env)
}

fn compile_with_problems(
    file: &Path,
    source: &str,
    tree: Option<&Node>,
    env: &CompileEnv<'_>,
) -> Result<Flow, Vec<Problem>> {
    compile(file, source, env).map_err(|errors| errors.0.iter().map(|error| problem(file, tree, error)).collect())
}

fn problem(file: &Path, tree: Option<&Node>, error: &ConfigError) -> Problem {
    let pos = error.pos.filter(|_| error.file == file);
    let Some(pos) = pos else {
        // A mistake in another file (a custom node's script): its own
        // position would mislead in this text, so it stays in the message.
        let message = if error.file == file { error.detail() } else { error.to_string() };
        return Problem { line: None, col: None, message, node: None, path: None };
    };
    let path = tree.map(|tree| path_at(tree, pos, &error.detail())).filter(|path| !path.is_empty());
    let node = path.as_ref().and_then(|path| match path.as_slice() {
        [Json::String(section), Json::String(id), ..] if section == "nodes" || section == "errors" => Some(id.clone()),
        _ => None,
    });
    Problem { line: Some(pos.line), col: Some(pos.col), message: error.detail(), node, path }
}

/// The path of the key or value that starts nearest before `pos` (the
/// compiler points at the start of what is wrong), for the mistake `message`.
///
/// A block mapping starts where its first key does, so one position can be
/// both a mapping and its first key: then the deepest whose key the message
/// names in quotes (`unknown setting "windw"`) is meant, else the mapping
/// (`shop "x" is not configured` is about the whole `with:`), but never the
/// `nodes:` or `errors:` mapping over a node id (a cycle starts at a node).
pub fn path_at(tree: &Node, pos: Pos, message: &str) -> Vec<Json> {
    let mut found = Found { at: tree.pos, paths: vec![Vec::new()] };
    if tree.pos > pos {
        found.paths.clear();
    }
    visit(tree, pos, &mut Vec::new(), &mut found);
    let named = |path: &&Vec<Json>| {
        path.last().and_then(Json::as_str).is_some_and(|key| message.contains(&format!("\"{key}\"")))
    };
    if let Some(path) = found.paths.iter().filter(named).max_by_key(|path| path.len()) {
        return path.clone();
    }
    let is_section = |path: &Vec<Json>| matches!(path.as_slice(), [Json::String(s)] if s == "nodes" || s == "errors");
    let deepest = found.paths.iter().map(Vec::len).max().unwrap_or_default();
    found.paths.into_iter().filter(|path| !(is_section(path) && deepest > 1)).min_by_key(Vec::len).unwrap_or_default()
}

/// The paths of the keys and values starting at `at`, the latest start seen
/// so far that is not after the target.
struct Found {
    at: Pos,
    paths: Vec<Vec<Json>>,
}

impl Found {
    fn consider(&mut self, at: Pos, target: Pos, path: &[Json]) {
        if at > target || at < self.at {
            return;
        }
        if at > self.at {
            self.at = at;
            self.paths.clear();
        }
        self.paths.push(path.to_vec());
    }
}

fn visit(node: &Node, target: Pos, path: &mut Vec<Json>, found: &mut Found) {
    match &node.value {
        Value::Map(entries) => {
            for (key, value) in entries {
                if key.pos > target {
                    break;
                }
                path.push(Json::String(key.name.clone()));
                found.consider(key.pos, target, path);
                found.consider(value.pos, target, path);
                visit(value, target, path, found);
                path.pop();
            }
        }
        Value::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                if item.pos > target {
                    break;
                }
                path.push(Json::from(index));
                found.consider(item.pos, target, path);
                visit(item, target, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The nodes and edges of `tree`, as far as it has them.
fn graph(tree: &Node, registry: &Registry) -> Option<Graph> {
    tree.as_map()?;
    let mut nodes = Vec::new();
    for (section, errors_lane) in [("nodes", false), ("errors", true)] {
        let Some(entries) = tree.get(section).and_then(Node::as_map) else { continue };
        for (key, body) in entries {
            let node_type = body.get("use").and_then(Node::as_str).map(str::to_owned);
            let role = node_type.as_deref().and_then(|name| registry.get(name)).map(|t| match t.role {
                Role::Source => "source",
                Role::Transform => "transform",
            });
            let inputs = match body.get("input").map(|input| &input.value) {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Seq(items)) => items.iter().filter_map(Node::as_str).map(str::to_owned).collect(),
                _ => Vec::new(),
            };
            nodes.push(GraphNode { id: key.name.clone(), node_type, role, inputs, errors_lane });
        }
    }
    Some(Graph { nodes })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;
    use crate::nodes::BuildContext;
    use crate::script::{Limits, Sandbox};

    fn validated(source: &str) -> Validation {
        let registry = Registry::builtin();
        let build = BuildContext::new(".", Sandbox::new(Limits::default()));
        let env = CompileEnv { registry: &registry, build: &build, shops: &BTreeSet::new() };
        validate(Path::new("flows/f.yaml"), source, &env)
    }

    #[test]
    fn positions_map_to_the_key_or_value_the_message_is_about() {
        let tree = yaml::parse("flow: f\nnodes:\n  a:\n    use: log\n    with: {level: x, n: [1, 2]}\n").unwrap();
        let at = |line, col, message| path_at(&tree, Pos::new(line, col), message);
        assert_eq!(at(1, 1, "\"flow\" is a list"), [json!("flow")]);
        // The root mapping starts at its first key: a mistake about the file.
        assert_eq!(at(1, 1, "missing key \"trigger\""), Vec::<Json>::new());
        // `nodes:` starts at its first node: a cycle from there is the node's.
        assert_eq!(at(3, 3, "the nodes form a cycle: a -> b -> a"), [json!("nodes"), json!("a")]);
        assert_eq!(at(4, 5, "node \"a\": \"use\" is a list"), [json!("nodes"), json!("a"), json!("use")]);
        // `a:` starts at `use:`: a mistake that names no key is the node's.
        assert_eq!(at(4, 5, "node \"a\": needs an input"), [json!("nodes"), json!("a")]);
        assert_eq!(at(5, 18, "unknown setting \"level\""), [json!("nodes"), json!("a"), json!("with"), json!("level")]);
        assert_eq!(at(5, 31, "must be a string"), [json!("nodes"), json!("a"), json!("with"), json!("n"), json!(1)]);
        // Inside a value: the value.
        assert_eq!(at(5, 20, "not allowed"), [json!("nodes"), json!("a"), json!("with"), json!("level")]);

        let block = yaml::parse("nodes:\n  a:\n    use: log\n    with:\n      lookback: 5m\n      windw: 1\n").unwrap();
        let at = |line, col, message| path_at(&block, Pos::new(line, col), message);
        let with = [json!("nodes"), json!("a"), json!("with")];
        assert_eq!(at(5, 7, "node \"a\": shop \"x\" is not configured"), with);
        assert_eq!(at(5, 7, "node \"a\": \"lookback\" is not a duration"), [&with[..], &[json!("lookback")]].concat());
    }

    #[test]
    fn problems_name_their_node_and_path_and_the_graph_is_drawn_anyway() {
        let source = "flow: f\nnodes:\n  read: {use: read_jsonl, with: {path: x, windw: 3}}\n  \
                      loop_a: {use: log, input: loop_b}\n  loop_b: {use: log, input: loop_a}\n";
        let validation = validated(source);
        assert!(!validation.ok);
        let unknown = validation.problems.iter().find(|p| p.message.contains("windw")).expect("unknown setting");
        assert_eq!((unknown.line, unknown.col, unknown.node.as_deref()), (Some(3), Some(43), Some("read")));
        assert_eq!(unknown.path, Some(vec![json!("nodes"), json!("read"), json!("with"), json!("windw")]));
        let cycle = validation.problems.iter().find(|p| p.message.contains("cycle")).expect("cycle");
        assert_eq!(cycle.node.as_deref(), Some("loop_a"));
        let graph = validation.graph.expect("a graph despite the errors");
        let ids: Vec<(&str, Option<&str>, &[String])> =
            graph.nodes.iter().map(|n| (n.id.as_str(), n.role, n.inputs.as_slice())).collect();
        assert_eq!(
            ids,
            [
                ("read", Some("source"), &[][..]),
                ("loop_a", Some("transform"), &["loop_b".to_owned()][..]),
                ("loop_b", Some("transform"), &["loop_a".to_owned()][..]),
            ]
        );
    }

    #[test]
    fn a_valid_flow_has_no_problems_and_broken_yaml_no_graph() {
        let validation =
            validated("flow: f\nnodes:\n  read: {use: read_jsonl, with: {path: x}}\nerrors:\n  r: {use: log}\n");
        assert!(validation.ok, "{:?}", validation.problems);
        assert!(validation.graph.unwrap().nodes.iter().any(|n| n.id == "r" && n.errors_lane));
        let broken = validated("flow: f\nnodes: [\n");
        assert!(!broken.ok && broken.graph.is_none());
        assert!(broken.problems[0].line.is_some(), "{:?}", broken.problems);
    }
}
