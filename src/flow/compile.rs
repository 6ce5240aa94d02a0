//! `compile()`: turns a flow file into a [`Flow`], collecting every mistake
//! (with its line and column) before reporting any.
//!
//! Stages, each adding to one error list: YAML syntax; the flow's own keys
//! (`flow`, `trigger`, `shop`, …); each node's keys, type and settings (checked
//! against the schema the node type declares, then built, which compiles
//! scripts); `when:` expressions; the graph (unknown inputs, sources with
//! input, transforms without, cycles).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::error::{ConfigError, ConfigErrors, one_of};
use super::model::{Flow, NodeSpec, OnError, Overlap, Retry, Trigger, When};
use super::settings;
use super::yaml::{self, Key, Node, Pos, Value};
use crate::nodes::{BuildContext, BuildError, Registry, Role};

/// The default time zone of cron triggers: the platforms' (GMT+8).
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

const FLOW_KEYS: [&str; 7] = ["flow", "description", "trigger", "shop", "shops", "nodes", "errors"];
const NODE_KEYS: [&str; 7] = ["use", "with", "input", "when", "retry", "timeout", "on_error"];
const TRIGGER_KEYS: [&str; 5] = ["every", "cron", "timezone", "overlap", "catch_up"];
const RETRY_KEYS: [&str; 3] = ["attempts", "backoff", "max_backoff"];
/// The top-level key where the visual editor keeps the positions the user gave
/// nodes on its canvas (`node_id: [x, y]`). It does not change what the flow
/// does; ids it names that are not nodes are ignored.
pub const LAYOUT_KEY: &str = "x-layout";

/// What a flow is checked against.
pub struct CompileEnv<'a> {
    /// The node types it may use.
    pub registry: &'a Registry,
    /// What building a node needs (paths, the Rhai sandbox).
    pub build: &'a BuildContext,
    /// The shops the config declares.
    pub shops: &'a BTreeSet<String>,
}

/// Reads and compiles the flow file at `path`.
pub fn compile_file(path: &Path, env: &CompileEnv<'_>) -> Result<Flow, ConfigErrors> {
    let source = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors(vec![ConfigError::new(path, None, format!("cannot read the flow file: {error}"))])
    })?;
    compile(path, &source, env)
}

/// Compiles flow `source` (read from `file`, which errors name).
pub fn compile(file: &Path, source: &str, env: &CompileEnv<'_>) -> Result<Flow, ConfigErrors> {
    let tree = match yaml::parse(source) {
        Ok(tree) => tree,
        Err(error) => {
            return Err(ConfigErrors(vec![ConfigError::new(
                file,
                error.pos,
                format!("this is not valid YAML: {}", error.message),
            )]));
        }
    };
    let mut compiler = Compiler { file, source, env, build: env.build.clone(), errors: Vec::new() };
    let flow = compiler.flow(&tree);
    if compiler.errors.is_empty() {
        if let Some(flow) = flow {
            return Ok(flow);
        }
    }
    Err(ConfigErrors::sorted(compiler.errors))
}

struct Compiler<'a> {
    file: &'a Path,
    source: &'a str,
    env: &'a CompileEnv<'a>,
    /// `env.build` with the flow's `shop:`, which nodes are built against.
    build: BuildContext,
    errors: Vec<ConfigError>,
}

impl Compiler<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) -> &mut ConfigError {
        self.errors.push(ConfigError::new(self.file, Some(pos), message));
        self.errors.last_mut().expect("just pushed")
    }

    /// Reports keys of `map` not in `known`, each with the nearest known one.
    fn unknown_keys(&mut self, what: &str, entries: &[(Key, Node)], known: &[&str]) {
        self.unknown_keys_of(what, entries.iter().map(|(key, _)| key), known);
    }

    fn unknown_keys_of<'k>(&mut self, what: &str, keys: impl IntoIterator<Item = &'k Key>, known: &[&str]) {
        for key in keys {
            if !known.contains(&key.name.as_str()) {
                let error = self.error(key.pos, format!("unknown key \"{}\" in {what}", key.name));
                *error =
                    error.clone().suggest(&key.name, known.iter().copied()).expected(one_of(known.iter().copied()));
            }
        }
    }

    fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        match &node.value {
            Value::String(s) => Some(s),
            other => {
                let kind = other.kind();
                self.error(node.pos, format!("{what} is {kind}")).expected = Some("a string".into());
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = match &node.value {
            Value::String(s) => s.clone(),
            // A bare number is ambiguous (seconds? minutes?): insist on a unit.
            Value::Int(i) => {
                self.error(node.pos, format!("{what} is the number {i} without a unit")).expected =
                    Some(format!("a duration such as \"{i}s\" or \"{i}m\""));
                return None;
            }
            other => {
                let kind = other.kind();
                self.error(node.pos, format!("{what} is {kind}")).expected =
                    Some("a duration such as \"30s\", \"5m\" or \"1h\"".into());
                return None;
            }
        };
        match humantime::parse_duration(&text) {
            Ok(duration) if !duration.is_zero() => Some(duration),
            Ok(_) => {
                self.error(node.pos, format!("{what} is zero")).expected = Some("a positive duration".into());
                None
            }
            Err(error) => {
                self.error(node.pos, format!("{what} \"{text}\" is not a duration ({error})")).expected =
                    Some("a duration such as \"30s\", \"5m\" or \"1h\"".into());
                None
            }
        }
    }

    fn flow(&mut self, tree: &Node) -> Option<Flow> {
        let Some(entries) = tree.as_map() else {
            let kind = tree.value.kind();
            self.error(tree.pos, format!("a flow file must be a mapping, this is {kind}")).expected =
                Some("keys flow, trigger, nodes, …".into());
            return None;
        };
        // `x-layout` is the editor's, not the ops staff's: accepted, never suggested.
        let own_keys = entries.iter().map(|(key, _)| key).filter(|key| key.name != LAYOUT_KEY);
        self.unknown_keys_of("the flow", own_keys, &FLOW_KEYS);
        if let Some(layout) = tree.get(LAYOUT_KEY) {
            self.layout(layout);
        }

        let name = match tree.get("flow") {
            Some(node) => self.string(node, "\"flow\"").map(str::to_owned),
            None => {
                self.error(tree.pos, "missing key \"flow\"").expected = Some("the flow's name, a string".into());
                None
            }
        };
        let description = match tree.get("description") {
            Some(node) => self.string(node, "\"description\"").unwrap_or_default().to_owned(),
            None => String::new(),
        };
        let trigger = tree.get("trigger").and_then(|node| self.trigger(node));
        let (overlap, catch_up) = tree.get("trigger").map(|node| self.trigger_policy(node)).unwrap_or_default();
        let shop = tree.get("shop").and_then(|node| {
            let name = self.string(node, "\"shop\"")?.to_owned();
            self.known_shop(&name, node.pos);
            Some(name)
        });
        let shops = tree.get("shops").map(|node| self.shops(node)).unwrap_or_default();
        if let (Some(_), Some(node)) = (&shop, tree.get("shops")) {
            self.error(node.pos, "a flow has both \"shop\" and \"shops\"").expected =
                Some("one of them: `shop: a` for one shop, `shops: [a, b]` or `shops: all` for several".into());
        }
        // A flow for several shops is checked by building its nodes against
        // the first; each run builds them again against its own shop.
        self.build.shop = shop.clone().or_else(|| shops.first().cloned());

        let nodes = match tree.get("nodes") {
            Some(node) => self.graph(node, "nodes", false),
            None => {
                self.error(tree.pos, "missing key \"nodes\"").expected = Some("a mapping of node id to node".into());
                None
            }
        };
        let error_nodes = match tree.get("errors") {
            Some(node) => self.graph(node, "errors", true),
            None => Some(Vec::new()),
        };
        if let (Some(main), Some(handlers)) =
            (tree.get("nodes").and_then(Node::as_map), tree.get("errors").and_then(Node::as_map))
        {
            for (key, _) in handlers.iter().filter(|(key, _)| main.iter().any(|(k, _)| k.name == key.name)) {
                self.error(key.pos, format!("error node \"{}\" has the id of a node under `nodes:`", key.name))
                    .expected = Some("ids unique across `nodes:` and `errors:`".into());
            }
        }
        Some(Flow {
            name: name?,
            description,
            file: self.file.to_path_buf(),
            trigger,
            shop,
            shops,
            overlap,
            catch_up,
            nodes: nodes?,
            error_nodes: error_nodes?,
        })
    }

    /// `x-layout`: a mapping of node id to `[x, y]`, two numbers.
    fn layout(&mut self, node: &Node) {
        const EXPECTED: &str = "a mapping of node id to a position `[x, y]`, such as `{fetch: [120, 40]}`";
        let Some(entries) = node.as_map() else {
            let kind = node.value.kind();
            self.error(node.pos, format!("\"{LAYOUT_KEY}\" is {kind}")).expected = Some(EXPECTED.into());
            return;
        };
        for (key, position) in entries {
            let is_number = |item: &Node| matches!(item.value, Value::Int(_) | Value::UInt(_) | Value::Float(_));
            let valid = matches!(&position.value, Value::Seq(items) if items.len() == 2 && items.iter().all(is_number));
            if !valid {
                let kind = position.value.kind();
                self.error(position.pos, format!("the position of \"{}\" in \"{LAYOUT_KEY}\" is {kind}", key.name))
                    .expected = Some("two numbers `[x, y]`".into());
            }
        }
    }

    /// Reports `name` unless the config declares it.
    fn known_shop(&mut self, name: &str, pos: Pos) {
        if self.env.shops.contains(name) {
            return;
        }
        let shops = self.env.shops;
        let error = self.error(pos, format!("unknown shop \"{name}\""));
        let expected = if shops.is_empty() {
            "a shop declared under `shops:` in orderflow.yaml (none are declared)".to_owned()
        } else {
            one_of(shops.iter().map(String::as_str))
        };
        *error = error.clone().suggest(name, shops.iter().map(String::as_str)).expected(expected);
    }

    /// `shops: [a, b]` or `shops: all`, resolved to shop names.
    fn shops(&mut self, node: &Node) -> Vec<String> {
        const EXPECTED: &str =
            "`all`, or a list of shops declared in orderflow.yaml such as `[tmall-main, tmall-outlet]`";
        match &node.value {
            Value::String(all) if all == "all" => {
                if self.env.shops.is_empty() {
                    self.error(node.pos, "`shops: all`, but orderflow.yaml declares no shops").expected =
                        Some("shops declared under `shops:` in orderflow.yaml".into());
                }
                self.env.shops.iter().cloned().collect()
            }
            Value::Seq(items) if !items.is_empty() => {
                let mut names: Vec<String> = Vec::new();
                for item in items {
                    let Some(name) = self.string(item, "a shop under \"shops\"") else { continue };
                    if names.iter().any(|seen| seen == name) {
                        self.error(item.pos, format!("shop \"{name}\" is listed twice")).expected =
                            Some("each shop once".into());
                        continue;
                    }
                    self.known_shop(name, item.pos);
                    names.push(name.to_owned());
                }
                names
            }
            Value::Seq(_) => {
                self.error(node.pos, "\"shops\" is an empty list").expected = Some(EXPECTED.into());
                Vec::new()
            }
            other => {
                let kind = match other {
                    Value::String(text) => format!("\"{text}\""),
                    other => other.kind().to_owned(),
                };
                self.error(node.pos, format!("\"shops\" is {kind}")).expected = Some(EXPECTED.into());
                Vec::new()
            }
        }
    }

    /// `overlap:` and `catch_up:` of a trigger (defaults: skip, none).
    fn trigger_policy(&mut self, node: &Node) -> (Overlap, Option<Duration>) {
        let overlap = match node.get("overlap") {
            None => Overlap::default(),
            Some(value) => match value.as_str() {
                Some("skip") => Overlap::Skip,
                Some("queue") => Overlap::Queue,
                _ => {
                    let shown = match &value.value {
                        Value::String(text) => format!("\"{text}\""),
                        other => other.kind().to_owned(),
                    };
                    let error = self.error(value.pos, format!("\"overlap\" is {shown}"));
                    *error = error
                        .clone()
                        .suggest(value.as_str().unwrap_or_default(), Overlap::NAMES)
                        .expected(one_of(Overlap::NAMES));
                    Overlap::default()
                }
            },
        };
        let catch_up = node.get("catch_up").and_then(|value| self.duration(value, "\"catch_up\""));
        (overlap, catch_up)
    }

    fn trigger(&mut self, node: &Node) -> Option<Trigger> {
        let Some(entries) = node.as_map() else {
            let kind = node.value.kind();
            self.error(node.pos, format!("\"trigger\" is {kind}")).expected =
                Some("`every: 5m`, or `cron: \"0 3 * * *\"` with an optional `timezone`".into());
            return None;
        };
        self.unknown_keys("the trigger", entries, &TRIGGER_KEYS);
        let timezone = match node.get("timezone") {
            Some(tz) => {
                let name = self.string(tz, "\"timezone\"")?;
                match chrono_tz::Tz::from_str(name) {
                    Ok(tz) => tz,
                    Err(_) => {
                        let error = self.error(tz.pos, format!("unknown time zone \"{name}\""));
                        *error = error
                            .clone()
                            .suggest(name, chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()))
                            .expected("an IANA time zone such as \"Asia/Shanghai\"");
                        return None;
                    }
                }
            }
            None => DEFAULT_TIMEZONE,
        };
        match (node.get("every"), node.get("cron")) {
            (Some(every), None) => {
                if node.get("timezone").is_some() {
                    self.error(node.key_pos("timezone").unwrap_or(node.pos), "\"timezone\" only applies to `cron:`");
                }
                self.duration(every, "\"every\"").map(Trigger::Every)
            }
            (None, Some(cron)) => {
                let expression = self.string(cron, "\"cron\"")?.to_owned();
                match croner::Cron::from_str(&expression) {
                    Ok(_) => Some(Trigger::Cron { expression, timezone }),
                    Err(error) => {
                        self.error(cron.pos, format!("\"{expression}\" is not a cron expression: {error}")).expected =
                            Some("five fields: minute hour day-of-month month day-of-week".into());
                        None
                    }
                }
            }
            (Some(_), Some(_)) => {
                self.error(node.pos, "a trigger has both \"every\" and \"cron\"").expected =
                    Some("exactly one of them".into());
                None
            }
            (None, None) => {
                self.error(node.pos, "a trigger needs \"every\" or \"cron\"").expected =
                    Some("`every: 5m` or `cron: \"0 3 * * *\"`".into());
                None
            }
        }
    }

    /// The nodes under `nodes:` (or `errors:`), checked and in topological order.
    fn graph(&mut self, node: &Node, section: &str, is_error_section: bool) -> Option<Vec<NodeSpec>> {
        let Some(entries) = node.as_map() else {
            let kind = node.value.kind();
            self.error(node.pos, format!("\"{section}\" is {kind}")).expected =
                Some("a mapping of node id to node".into());
            return None;
        };
        if entries.is_empty() && !is_error_section {
            self.error(node.pos, format!("\"{section}\" is empty")).expected = Some("at least one node".into());
            return None;
        }
        let ids: Vec<&str> = entries.iter().map(|(k, _)| k.name.as_str()).collect();
        let mut specs = Vec::new();
        let mut complete = true;
        for (key, body) in entries {
            match self.node(key, body, &ids, is_error_section) {
                Some(spec) => specs.push(spec),
                None => complete = false,
            }
        }
        let order = self.order(&specs)?;
        complete.then(|| {
            let mut by_id: HashMap<String, NodeSpec> = specs.into_iter().map(|s| (s.id.clone(), s)).collect();
            order.iter().filter_map(|id| by_id.remove(id)).collect()
        })
    }

    /// Ids in dependency order, or `None` after reporting each cycle.
    fn order(&mut self, specs: &[NodeSpec]) -> Option<Vec<String>> {
        let mut graph = DiGraph::<&str, ()>::new();
        let index: HashMap<&str, NodeIndex> =
            specs.iter().map(|s| (s.id.as_str(), graph.add_node(s.id.as_str()))).collect();
        for spec in specs {
            for input in &spec.inputs {
                if let Some(&from) = index.get(input.as_str()) {
                    graph.add_edge(from, index[spec.id.as_str()], ());
                }
            }
        }
        match toposort(&graph, None) {
            Ok(order) => Some(order.into_iter().map(|i| graph[i].to_owned()).collect()),
            Err(_) => {
                for component in tarjan_scc(&graph) {
                    let is_cycle = component.len() > 1 || graph.contains_edge(component[0], component[0]);
                    if !is_cycle {
                        continue;
                    }
                    let mut names: Vec<&str> = component.iter().map(|&i| graph[i]).collect();
                    names.sort_unstable();
                    let first = specs.iter().find(|s| names.contains(&s.id.as_str())).map_or(Pos::new(1, 1), |s| s.pos);
                    let mut path = names.join(" -> ");
                    path.push_str(" -> ");
                    path.push_str(names[0]);
                    self.error(first, format!("the nodes form a cycle: {path}")).expected =
                        Some("a graph without cycles: remove one of these inputs".into());
                }
                None
            }
        }
    }

    fn node(&mut self, key: &Key, body: &Node, ids: &[&str], is_error_section: bool) -> Option<NodeSpec> {
        let id = key.name.clone();
        let Some(entries) = body.as_map() else {
            let kind = body.value.kind();
            self.error(body.pos, format!("node \"{id}\" is {kind}")).expected =
                Some("a mapping with `use:` and its settings".into());
            return None;
        };
        self.unknown_keys(&format!("node \"{id}\""), entries, &NODE_KEYS);

        let node_type = match body.get("use") {
            Some(use_node) => {
                let name = self.string(use_node, &format!("node \"{id}\": \"use\""))?;
                match self.env.registry.get(name) {
                    Some(node_type) => Some(node_type),
                    None => {
                        let registry = self.env.registry;
                        let error = self.error(use_node.pos, format!("node \"{id}\": unknown node type \"{name}\""));
                        *error = error.clone().suggest(name, registry.names()).expected(format!(
                            "a built-in type or a file in nodes/: {}",
                            registry.names().collect::<Vec<_>>().join(", ")
                        ));
                        None
                    }
                }
            }
            None => {
                self.error(key.pos, format!("node \"{id}\" has no \"use\"")).expected = Some("the node's type".into());
                None
            }
        };

        let inputs = self.inputs(&id, body, ids);
        let when = body.get("when").and_then(|w| self.when(&id, w));
        let retry = body.get("retry").map_or(Some(Retry::default()), |r| self.retry(&id, r));
        let timeout = body.get("timeout").map(|t| self.duration(t, &format!("node \"{id}\": \"timeout\"")));
        let on_error = match body.get("on_error") {
            Some(node) => {
                let text = self.string(node, &format!("node \"{id}\": \"on_error\""))?;
                match text {
                    "fail" => Some(OnError::Fail),
                    "skip" => Some(OnError::Skip),
                    "dead_letter" => Some(OnError::DeadLetter),
                    other => {
                        let error = self.error(node.pos, format!("node \"{id}\": \"on_error\" is \"{other}\""));
                        *error = error.clone().suggest(other, OnError::NAMES).expected(one_of(OnError::NAMES));
                        None
                    }
                }
            }
            None => Some(OnError::Fail),
        };

        let node_type = node_type?;
        // Settings are checked even when the inputs are wrong: each mistake
        // is reported in the same pass.
        let settings = self.settings(&id, key, body, node_type);
        let inputs = inputs?;
        match (node_type.role, inputs.is_empty()) {
            (Role::Source, false) => {
                let pos = body.key_pos("input").unwrap_or(body.pos);
                self.error(
                    pos,
                    format!("node \"{id}\": a {} node produces records and takes no input", node_type.name),
                )
                .expected = Some("no `input:` here".into());
            }
            (Role::Source, true) if body.get("when").is_some() => {
                let pos = body.key_pos("when").unwrap_or(body.pos);
                self.error(
                    pos,
                    format!("node \"{id}\": a {} node has no input for \"when\" to filter", node_type.name),
                )
                .expected = Some("`when:` on the nodes that receive this one's records".into());
            }
            (Role::Transform, true) if !is_error_section => {
                self.error(key.pos, format!("node \"{id}\": a {} node needs an input", node_type.name)).expected =
                    Some("`input:` naming one or more upstream nodes".into());
            }
            _ => {}
        }
        let settings = settings?;
        Some(NodeSpec {
            id,
            pos: key.pos,
            type_name: node_type.name.clone(),
            role: node_type.role,
            settings,
            inputs,
            when: when.flatten(),
            retry: retry?,
            on_error: on_error?,
            timeout: timeout.map_or(Some(None), |t| t.map(Some))?,
        })
    }

    fn inputs(&mut self, id: &str, body: &Node, ids: &[&str]) -> Option<Vec<String>> {
        let Some(node) = body.get("input") else { return Some(Vec::new()) };
        let items: Vec<&Node> = match &node.value {
            Value::String(_) => vec![node],
            Value::Seq(items) => items.iter().collect(),
            other => {
                let kind = other.kind();
                self.error(node.pos, format!("node \"{id}\": \"input\" is {kind}")).expected =
                    Some("a node id or a list of node ids".into());
                return None;
            }
        };
        let mut inputs = Vec::new();
        let mut ok = true;
        for item in items {
            let Some(name) = self.string(item, &format!("node \"{id}\": an input")) else {
                ok = false;
                continue;
            };
            if !ids.contains(&name) {
                let others = ids.iter().copied().filter(|other| *other != id);
                let error = self.error(item.pos, format!("node \"{id}\": unknown input \"{name}\""));
                *error = error.clone().suggest(name, others.clone()).expected(one_of(others));
                ok = false;
            } else if inputs.iter().any(|i| i == name) {
                self.error(item.pos, format!("node \"{id}\": input \"{name}\" is listed twice"));
                ok = false;
            } else {
                inputs.push(name.to_owned());
            }
        }
        ok.then_some(inputs)
    }

    fn when(&mut self, id: &str, node: &Node) -> Option<Option<When>> {
        let source = self.string(node, &format!("node \"{id}\": \"when\""))?.to_owned();
        match self.env.build.sandbox.compile_condition(&source) {
            Ok(condition) => Some(Some(When { source, condition })),
            Err(error) => {
                let pos = script_pos(self.source, node.pos, error.line, error.column);
                self.error(pos, format!("node \"{id}\": \"when\" does not compile: {}", error.message)).expected =
                    Some("a Rhai expression on `record`, e.g. record.status == \"TRADE_FINISHED\"".into());
                None
            }
        }
    }

    fn retry(&mut self, id: &str, node: &Node) -> Option<Retry> {
        let mut retry = Retry::default();
        let Some(entries) = node.as_map() else {
            let kind = node.value.kind();
            self.error(node.pos, format!("node \"{id}\": \"retry\" is {kind}")).expected =
                Some("a mapping such as `{ attempts: 3, backoff: 2s }`".into());
            return None;
        };
        self.unknown_keys(&format!("the retry of node \"{id}\""), entries, &RETRY_KEYS);
        let mut ok = true;
        if let Some(attempts) = node.get("attempts") {
            match attempts.value {
                Value::Int(n) if (1..=100).contains(&n) => retry.attempts = n as u32,
                _ => {
                    self.error(
                        attempts.pos,
                        format!("node \"{id}\": \"attempts\" must be a whole number from 1 to 100"),
                    )
                    .expected = Some("tries in all, including the first".into());
                    ok = false;
                }
            }
        }
        if let Some(backoff) = node.get("backoff") {
            match self.duration(backoff, &format!("node \"{id}\": \"backoff\"")) {
                Some(d) => retry.backoff = d,
                None => ok = false,
            }
        }
        if let Some(max) = node.get("max_backoff") {
            match self.duration(max, &format!("node \"{id}\": \"max_backoff\"")) {
                Some(d) => retry.max_backoff = d,
                None => ok = false,
            }
        }
        ok.then_some(retry)
    }

    fn settings(
        &mut self,
        id: &str,
        key: &Key,
        body: &Node,
        node_type: &crate::nodes::NodeType,
    ) -> Option<serde_json::Value> {
        let empty = Node { pos: key.pos, value: Value::Map(Vec::new()) };
        let with = body.get("with").unwrap_or(&empty);
        let problems = settings::check(self.file, id, &node_type.schema, with);
        if !problems.is_empty() {
            self.errors.extend(problems);
            return None;
        }
        let json = with.to_json();
        match node_type.build(&json, &self.build) {
            Ok(_) => Some(json),
            Err(error) => {
                self.build_error(id, with, &error);
                None
            }
        }
    }

    fn build_error(&mut self, id: &str, with: &Node, error: &BuildError) {
        let setting_node = error.setting.as_deref().and_then(|s| with.get(s));
        let at = setting_node.map_or(with.pos, |n| n.pos);
        match &error.script {
            Some(place) => match &place.file {
                Some(file) => {
                    let message = format!("{} (used by node \"{id}\" in {})", error.message, self.file.display());
                    self.errors.push(ConfigError::new(
                        file,
                        Some(Pos::new(place.line as u32, place.col as u32)),
                        message,
                    ));
                }
                None => {
                    let pos = script_pos(self.source, at, Some(place.line), Some(place.col));
                    self.error(pos, format!("node \"{id}\": {}", error.message));
                }
            },
            None => {
                self.error(at, format!("node \"{id}\": {}", error.message));
            }
        }
    }
}

/// The file position of line/column `line`:`col` of a script written as the
/// YAML value at `value_pos`: a block scalar (`|`) starts on the next line at
/// its indentation; an inline value starts right at `value_pos` (one further
/// when quoted).
fn script_pos(source: &str, value_pos: Pos, line: Option<usize>, col: Option<usize>) -> Pos {
    let (Some(line), col) = (line, col.unwrap_or(1)) else { return value_pos };
    let lines: Vec<&str> = source.lines().collect();
    let value_line = lines.get(value_pos.line as usize - 1).copied().unwrap_or_default();
    let rest = value_line.chars().skip(value_pos.col as usize - 1).collect::<String>();
    let indent_of = |target: usize| lines.get(target - 1).map_or(0, |l| l.len() - l.trim_start().len());
    let starts_its_line = value_line.chars().take(value_pos.col as usize - 1).all(char::is_whitespace);
    if rest.starts_with('|') || rest.starts_with('>') {
        let target = value_pos.line as usize + line;
        Pos::new(target as u32, (indent_of(target) + col) as u32)
    } else if starts_its_line {
        // A block scalar located at its first content line.
        let target = value_pos.line as usize + line - 1;
        Pos::new(target as u32, (indent_of(target) + col) as u32)
    } else if line == 1 {
        let quote = usize::from(rest.starts_with('"') || rest.starts_with('\''));
        Pos::new(value_pos.line, value_pos.col + (quote + col - 1) as u32)
    } else {
        Pos::new(value_pos.line + line as u32 - 1, col as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Limits, Sandbox};

    fn errors(yaml: &str) -> Vec<String> {
        let registry = Registry::builtin();
        let build = BuildContext::new(".", Sandbox::new(Limits::default()));
        let shops = BTreeSet::from(["tmall".to_owned()]);
        let env = CompileEnv { registry: &registry, build: &build, shops: &shops };
        match compile(Path::new("f.yaml"), yaml, &env) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    const SOURCE: &str = "  a: {use: read_jsonl, with: {path: x}}\n";

    #[test]
    fn a_valid_flow_compiles_with_its_trigger_in_its_time_zone() {
        let registry = Registry::builtin();
        let build = BuildContext::new(".", Sandbox::new(Limits::default()));
        let env = CompileEnv { registry: &registry, build: &build, shops: &BTreeSet::new() };
        let yaml = format!(
            "flow: f\ntrigger: {{cron: \"0 3 * * *\", timezone: Europe/Berlin}}\nnodes:\n{SOURCE}  b: {{use: log, input: a}}\n"
        );
        let flow = compile(Path::new("f.yaml"), &yaml, &env).unwrap();
        assert_eq!(
            flow.trigger,
            Some(Trigger::Cron { expression: "0 3 * * *".into(), timezone: chrono_tz::Europe::Berlin })
        );
        assert_eq!(flow.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn shops_all_lists_every_configured_shop_and_the_trigger_keeps_its_policy() {
        let registry = Registry::builtin();
        let build = BuildContext::new(".", Sandbox::new(Limits::default()));
        let shops = BTreeSet::from(["b".to_owned(), "a".to_owned()]);
        let env = CompileEnv { registry: &registry, build: &build, shops: &shops };
        let yaml = format!(
            "flow: f\nshops: all\ntrigger: {{every: 2m, overlap: queue, catch_up: 1h}}\nnodes:\n{SOURCE}  b: {{use: log, input: a}}\n"
        );
        let flow = compile(Path::new("f.yaml"), &yaml, &env).unwrap();
        assert_eq!(flow.shops, ["a", "b"]);
        assert_eq!(flow.run_shops(), [Some("a".to_owned()), Some("b".to_owned())]);
        assert_eq!(flow.overlap, Overlap::Queue);
        assert_eq!(flow.catch_up, Some(Duration::from_secs(3600)));

        let listed = compile(Path::new("f.yaml"), &yaml.replace("shops: all", "shops: [b]"), &env).unwrap();
        assert_eq!(listed.shops, ["b"]);
        assert_eq!(listed.overlap, Overlap::Queue);
        let single = compile(Path::new("f.yaml"), &yaml.replace("shops: all", "shop: a"), &env).unwrap();
        assert_eq!(single.run_shops(), [Some("a".to_owned())]);
    }

    #[test]
    fn bad_shops_and_trigger_policies_are_positioned() {
        let found = errors(&format!(
            "flow: f\nshop: tmall\nshops: [tmall, tmal, tmall]\ntrigger: {{every: 1m, overlap: queu, catch_up: 0s}}\nnodes:\n{SOURCE}"
        ));
        assert_eq!(
            found,
            [
                "f.yaml:3:8: a flow has both \"shop\" and \"shops\"; expected one of them: `shop: a` for one shop, `shops: [a, b]` or `shops: all` for several",
                "f.yaml:3:16: unknown shop \"tmal\" (did you mean \"tmall\"?); expected \"tmall\"",
                "f.yaml:3:22: shop \"tmall\" is listed twice; expected each shop once",
                "f.yaml:4:31: \"overlap\" is \"queu\" (did you mean \"queue\"?); expected one of \"skip\" or \"queue\"",
                "f.yaml:4:47: \"catch_up\" is zero; expected a positive duration",
            ]
        );
        let found = errors(&format!("flow: f\nshops: some\nnodes:\n{SOURCE}"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("f.yaml:2:8: \"shops\" is \"some\"; expected `all`"), "{}", found[0]);
    }

    #[test]
    fn misspelt_flow_and_node_keys_get_suggestions() {
        let found = errors(&format!("flow: f\nnodez: {{}}\nnodes:\n{SOURCE}  b: {{use: log, inptu: a}}\n"));
        assert_eq!(
            found,
            [
                "f.yaml:2:1: unknown key \"nodez\" in the flow (did you mean \"nodes\"?); expected one of \"flow\", \"description\", \"trigger\", \"shop\", \"shops\", \"nodes\" or \"errors\"",
                "f.yaml:5:3: node \"b\": a log node needs an input; expected `input:` naming one or more upstream nodes",
                "f.yaml:5:17: unknown key \"inptu\" in node \"b\" (did you mean \"input\"?); expected one of \"use\", \"with\", \"input\", \"when\", \"retry\", \"timeout\" or \"on_error\"",
            ]
        );
    }

    #[test]
    fn the_editor_layout_is_accepted_and_its_shape_checked() {
        let layout = "x-layout: {a: [120, 40.5], gone: [0, 0]}\n";
        assert_eq!(errors(&format!("flow: f\n{layout}nodes:\n{SOURCE}")), Vec::<String>::new());
        let found = errors(&format!("flow: f\nx-layout: {{a: [1], b: here}}\nnodes:\n{SOURCE}"));
        assert_eq!(
            found,
            [
                "f.yaml:2:15: the position of \"a\" in \"x-layout\" is a list; expected two numbers `[x, y]`",
                "f.yaml:2:23: the position of \"b\" in \"x-layout\" is a string; expected two numbers `[x, y]`",
            ]
        );
        let found = errors(&format!("flow: f\nx-layout: [1, 2]\nnodes:\n{SOURCE}"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("f.yaml:2:11: \"x-layout\" is a list; expected a mapping"), "{}", found[0]);
    }

    #[test]
    fn when_on_a_source_is_refused() {
        let found = errors("flow: f\nnodes:\n  a: {use: read_jsonl, when: 'true', with: {path: x}}\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("has no input for \"when\" to filter"), "{}", found[0]);
    }

    #[test]
    fn a_source_with_an_input_and_a_bad_time_zone_are_reported_together() {
        let found = errors(&format!(
            "flow: f\ntrigger: {{cron: '0 3 * * *', timezone: Asia/Shanghia}}\nnodes:\n{SOURCE}  b: {{use: read_jsonl, input: a, with: {{path: y}}}}\n"
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].contains("unknown time zone \"Asia/Shanghia\" (did you mean \"Asia/Shanghai\"?)"),
            "{}",
            found[0]
        );
        assert!(found[1].contains("produces records and takes no input"), "{}", found[1]);
    }

    #[test]
    fn retry_timeout_and_on_error_are_checked() {
        let found = errors(&format!(
            "flow: f\nnodes:\n{SOURCE}  b: {{use: log, input: a, retry: {{attempts: 0}}, timeout: soon, on_error: ignore}}\n"
        ));
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found.iter().any(|e| e.contains("\"attempts\" must be a whole number from 1 to 100")));
        assert!(found.iter().any(|e| e.contains("\"timeout\" \"soon\" is not a duration")));
        assert!(found.iter().any(|e| e.contains("\"on_error\" is \"ignore\"") && e.contains("\"dead_letter\"")));
    }

    #[test]
    fn error_nodes_may_not_reuse_main_ids_and_inline_scripts_point_at_their_line() {
        let found = errors(&format!(
            "flow: f\nnodes:\n{SOURCE}  s:\n    use: script\n    input: a\n    with:\n      source: |\n        let x = 1;\n        let = 2;\nerrors:\n  a: {{use: log}}\n"
        ));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("f.yaml:10:13: node \"s\": the script does not compile"), "{}", found[0]);
        assert!(found[1].contains("error node \"a\" has the id of a node under `nodes:`"), "{}", found[1]);
    }

    #[test]
    fn broken_yaml_is_one_positioned_error_not_a_panic() {
        let found = errors("flow: f\nnodes:\n  a: {use: [\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("f.yaml:"), "{}", found[0]);
        assert!(found[0].contains("not valid YAML"), "{}", found[0]);
    }
}
