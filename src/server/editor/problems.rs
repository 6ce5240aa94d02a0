//! What `POST /api/validate` answers: the compiler's errors as problems that
//! name the node and YAML path they belong to, and the graph as far as the
//! text describes one (also while it has errors, so the canvas can draw it).

use std::path::Path;

use serde::Serialize;
use serde_json::Value as Json;

use crate::flow::yaml::{self, Node, Pos, Value};
use crate::flow::{CompileEnv, ConfigError, compile};
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
    let problems = match compile(file, source, env) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.iter().map(|error| problem(file, tree.as_ref(), error)).collect(),
    };
    let graph = tree.as_ref().and_then(|tree| graph(tree, env.registry));
    Validation { ok: problems.is_empty(), problems, graph }
}

fn problem(file: &Path, tree: Option<&Node>, error: &ConfigError) -> Problem {
    let pos = error.pos.filter(|_| error.file == file);
    let Some(pos) = pos else {
        // A mistake in another file (a custom node's script): its own
        // position would mislead in this text, so it stays in the message.
        let message = if error.file == file { error.detail() } else { error.to_string() };
        return Problem { line: None, col: None, message, node: None, path: None };
    };
    let path = tree.map(|tree| path_at(tree, pos)).filter(|path| !path.is_empty());
    let node = path.as_ref().and_then(|path| match path.as_slice() {
        [Json::String(section), Json::String(id), ..] if section == "nodes" || section == "errors" => Some(id.clone()),
        _ => None,
    });
    Problem { line: Some(pos.line), col: Some(pos.col), message: error.detail(), node, path }
}

/// The path of the key or value starting nearest before `pos` (the compiler
/// points at the start of what is wrong): among those starting at the same
/// place, the deepest.
pub fn path_at(tree: &Node, pos: Pos) -> Vec<Json> {
    let mut best: (Pos, Vec<Json>) = (Pos::default(), Vec::new());
    let mut path = Vec::new();
    visit(tree, pos, &mut path, &mut best);
    best.1
}

fn visit(node: &Node, target: Pos, path: &mut Vec<Json>, best: &mut (Pos, Vec<Json>)) {
    let consider = |at: Pos, path: &[Json], best: &mut (Pos, Vec<Json>)| {
        let better = at > best.0 || (at == best.0 && path.len() > best.1.len());
        if at <= target && better {
            *best = (at, path.to_vec());
        }
    };
    match &node.value {
        Value::Map(entries) => {
            for (key, value) in entries {
                if key.pos > target {
                    break;
                }
                path.push(Json::String(key.name.clone()));
                consider(key.pos, path, best);
                consider(value.pos, path, best);
                visit(value, target, path, best);
                path.pop();
            }
        }
        Value::Seq(items) => {
            for (index, item) in items.iter().enumerate() {
                if item.pos > target {
                    break;
                }
                path.push(Json::from(index));
                consider(item.pos, path, best);
                visit(item, target, path, best);
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
    fn positions_map_to_the_deepest_key_or_value_there() {
        let tree = yaml::parse("flow: f\nnodes:\n  a:\n    use: log\n    with: {level: x, n: [1, 2]}\n").unwrap();
        assert_eq!(path_at(&tree, Pos::new(1, 1)), [json!("flow")]);
        assert_eq!(path_at(&tree, Pos::new(3, 3)), [json!("nodes"), json!("a")]);
        // Block mappings start where their first key does: the key is meant.
        assert_eq!(path_at(&tree, Pos::new(4, 5)), [json!("nodes"), json!("a"), json!("use")]);
        assert_eq!(path_at(&tree, Pos::new(5, 18)), [json!("nodes"), json!("a"), json!("with"), json!("level")]);
        assert_eq!(path_at(&tree, Pos::new(5, 31)), [json!("nodes"), json!("a"), json!("with"), json!("n"), json!(1)]);
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
