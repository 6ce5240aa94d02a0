//! Test files (`flows/tests/*.yaml`): a flow, and tests that run it on
//! fixture records and say what each node must send on.
//!
//! ```yaml
//! flow: ../taobao-incremental.yaml     # relative to this file
//! tests:
//!   - name: an order to ship gets its detail
//!     fixtures:                        # node id -> records standing in for it
//!       changed:
//!         - {tid: 1, status: WAIT_SELLER_SEND_GOODS}
//!       to_ship: {file: data/detail.jsonl}
//!     expect:                          # node id -> what it sends on
//!       save: {count: 1}
//!       closed:
//!         records: [{tid: 1}]          # exactly these (any order; `ordered: true`)
//!         contains: [{tid: 1}]         # each matches some record on its fields
//!         each: 'record.tid > 0'       # a Rhai condition every record meets
//!         received: 1                  # records that reached it
//!         rejected: 0                  # records skipped or set aside
//!     status: succeeded                # how the run ends (the default)
//!     webhooks: {count: 0}             # what notify would have sent
//! ```
//!
//! Read through the positioned tree of `src/flow/yaml.rs`, so every mistake
//! is reported as `file:line:col` with a suggestion, all of them at once, as
//! for flows. Node ids are checked against the compiled flow by
//! [`TestFile::check_nodes`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::record_from_fixture;
use crate::flow::yaml::{self, Node, Pos, Value};
use crate::flow::{ConfigError, ConfigErrors, Flow, error::one_of};
use crate::record::Record;
use crate::script::{Condition, Sandbox};
use crate::store::RunStatus;

const FILE_KEYS: [&str; 2] = ["flow", "tests"];
const TEST_KEYS: [&str; 5] = ["name", "fixtures", "expect", "status", "webhooks"];
const EXPECT_KEYS: [&str; 7] = ["count", "records", "ordered", "contains", "each", "received", "rejected"];
const STATUSES: [(&str, RunStatus); 5] = [
    ("succeeded", RunStatus::Succeeded),
    ("partial", RunStatus::Partial),
    ("failed", RunStatus::Failed),
    ("paused", RunStatus::Paused),
    ("cancelled", RunStatus::Cancelled),
];

/// One test file, read and checked.
#[derive(Debug)]
pub struct TestFile {
    /// The test file.
    pub path: PathBuf,
    /// The flow file it tests.
    pub flow: PathBuf,
    /// Its tests, in file order.
    pub tests: Vec<TestCase>,
}

/// One test: fixtures in, expectations out.
#[derive(Debug)]
pub struct TestCase {
    /// What it shows, as its `name:` says.
    pub name: String,
    /// Records standing in for nodes, by node id.
    pub fixtures: BTreeMap<String, Vec<Record>>,
    /// What nodes must send on, by node id, in file order.
    pub expect: Vec<(String, Expectation)>,
    /// How the run must end.
    pub status: RunStatus,
    /// What `notify` nodes would have sent (objects with `node_id`, `url`,
    /// `delivery_key` and `body`).
    pub webhooks: Option<Expectation>,
    /// Where each node id is written, for errors about it.
    node_refs: Vec<(String, Pos)>,
}

/// What one node must send on; every part given must hold.
#[derive(Debug, Default)]
pub struct Expectation {
    /// How many records.
    pub count: Option<u64>,
    /// Exactly these records.
    pub records: Option<Vec<Json>>,
    /// `records` in this order.
    pub ordered: bool,
    /// Each of these matches some record on the fields it lists.
    pub contains: Option<Vec<Json>>,
    /// A Rhai condition every record meets, as written and compiled.
    pub each: Option<(String, Condition)>,
    /// How many records reached the node (a replaced node's too).
    pub received: Option<u64>,
    /// How many records the node skipped or set aside.
    pub rejected: Option<u64>,
}

impl TestFile {
    /// Reads and checks the test file at `path`; `sandbox` compiles `each:`.
    pub fn load(path: &Path, sandbox: &Sandbox) -> Result<Self, ConfigErrors> {
        let source = std::fs::read_to_string(path).map_err(|error| {
            ConfigErrors(vec![ConfigError::new(path, None, format!("cannot read the test file: {error}"))])
        })?;
        Self::parse(path, &source, sandbox)
    }

    /// Checks test file `source`, read from `path`.
    pub fn parse(path: &Path, source: &str, sandbox: &Sandbox) -> Result<Self, ConfigErrors> {
        let tree = yaml::parse(source).map_err(|error| {
            ConfigErrors(vec![ConfigError::new(path, error.pos, format!("this is not valid YAML: {}", error.message))])
        })?;
        let mut reader = Reader { file: path, sandbox, errors: Vec::new() };
        let file = reader.file(&tree);
        match file {
            Some(file) if reader.errors.is_empty() => Ok(file),
            _ => Err(ConfigErrors::sorted(reader.errors)),
        }
    }

    /// The mistakes of naming nodes `flow` does not have.
    pub fn check_nodes(&self, flow: &Flow) -> Vec<ConfigError> {
        let ids: Vec<&str> = flow.nodes.iter().chain(&flow.error_nodes).map(|s| s.id.as_str()).collect();
        let mut errors = Vec::new();
        for test in &self.tests {
            for (id, pos) in test.node_refs.iter().filter(|(id, _)| !ids.contains(&id.as_str())) {
                errors.push(
                    ConfigError::new(&self.path, Some(*pos), format!("flow \"{}\" has no node \"{id}\"", flow.name))
                        .suggest(id, ids.iter().copied())
                        .expected(one_of(ids.iter().copied())),
                );
            }
        }
        errors
    }
}

struct Reader<'a> {
    file: &'a Path,
    sandbox: &'a Sandbox,
    errors: Vec<ConfigError>,
}

impl Reader<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) -> &mut ConfigError {
        self.errors.push(ConfigError::new(self.file, Some(pos), message));
        self.errors.last_mut().expect("just pushed")
    }

    /// The entries of a mapping, reporting keys outside `allowed` (any key
    /// is allowed when it is empty: node ids, checked later).
    fn map<'n>(&mut self, node: &'n Node, what: &str, allowed: &[&str]) -> Option<&'n [(yaml::Key, Node)]> {
        let Some(entries) = node.as_map() else {
            self.error(node.pos, format!("{what} must be a mapping, not {}", node.value.kind()));
            return None;
        };
        for (key, _) in entries.iter().filter(|(k, _)| !allowed.is_empty() && !allowed.contains(&k.name.as_str())) {
            let error = ConfigError::new(self.file, Some(key.pos), format!("unknown key \"{}\" in {what}", key.name))
                .suggest(&key.name, allowed.iter().copied())
                .expected(one_of(allowed.iter().copied()));
            self.errors.push(error);
        }
        Some(entries)
    }

    fn string<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n str> {
        let text = node.as_str();
        if text.is_none() {
            self.error(node.pos, format!("{what} must be a string, not {}", node.value.kind()));
        }
        text
    }

    fn count(&mut self, node: &Node, what: &str) -> Option<u64> {
        match node.value {
            Value::Int(n) if n >= 0 => Some(n as u64),
            Value::UInt(n) => Some(n),
            _ => {
                self.error(node.pos, format!("{what} must be a whole number of records, not {}", node.value.kind()));
                None
            }
        }
    }

    fn objects(&mut self, node: &Node, what: &str) -> Option<Vec<Json>> {
        let Value::Seq(items) = &node.value else {
            self.error(node.pos, format!("{what} must be a list of records, not {}", node.value.kind()));
            return None;
        };
        let mut records = Vec::with_capacity(items.len());
        for item in items {
            if item.as_map().is_some() {
                records.push(item.to_json());
            } else {
                self.error(item.pos, format!("{what}: a record is a mapping of fields, not {}", item.value.kind()));
            }
        }
        Some(records)
    }

    fn file(&mut self, tree: &Node) -> Option<TestFile> {
        let entries = self.map(tree, "the test file", &FILE_KEYS)?;
        let find = |name: &str| entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v);
        let flow = match find("flow") {
            Some(node) => self.string(node, "\"flow\"").map(|f| self.relative(f)).filter(|path| {
                let found = path.is_file();
                if !found {
                    self.error(node.pos, format!("there is no flow file at {}", path.display())).expected =
                        Some("the flow file's path, relative to this file".into());
                }
                found
            }),
            None => {
                self.error(tree.pos, "the test file has no \"flow\"").expected =
                    Some("the flow file's path, relative to this file".into());
                None
            }
        };
        let tests = match find("tests") {
            Some(Node { value: Value::Seq(items), .. }) if !items.is_empty() => {
                items.iter().filter_map(|item| self.test(item)).collect()
            }
            Some(node) => {
                self.error(node.pos, "\"tests\" must be a list of one test or more").expected =
                    Some("`- name: …` entries".into());
                Vec::new()
            }
            None => {
                self.error(tree.pos, "the test file has no \"tests\"");
                Vec::new()
            }
        };
        Some(TestFile { path: self.file.to_path_buf(), flow: flow?, tests })
    }

    fn relative(&self, path: &str) -> PathBuf {
        self.file.parent().unwrap_or(Path::new(".")).join(path)
    }

    fn test(&mut self, node: &Node) -> Option<TestCase> {
        let entries = self.map(node, "a test", &TEST_KEYS)?;
        let mut test = TestCase {
            name: String::new(),
            fixtures: BTreeMap::new(),
            expect: Vec::new(),
            status: RunStatus::Succeeded,
            webhooks: None,
            node_refs: Vec::new(),
        };
        for (key, value) in entries {
            match key.name.as_str() {
                "name" => test.name = self.string(value, "\"name\"").unwrap_or_default().to_owned(),
                "fixtures" => {
                    for (id, records) in self.map(value, "\"fixtures\"", &[]).unwrap_or_default() {
                        test.node_refs.push((id.name.clone(), id.pos));
                        let records = self.fixture(records, &id.name).unwrap_or_default();
                        test.fixtures.insert(id.name.clone(), records);
                    }
                }
                "expect" => {
                    for (id, expectation) in self.map(value, "\"expect\"", &[]).unwrap_or_default() {
                        test.node_refs.push((id.name.clone(), id.pos));
                        let what = format!("the expectation of node \"{}\"", id.name);
                        if let Some(expectation) = self.expectation(expectation, &what) {
                            test.expect.push((id.name.clone(), expectation));
                        }
                    }
                }
                "status" => {
                    let text = self.string(value, "\"status\"").unwrap_or_default();
                    match STATUSES.iter().find(|(name, _)| *name == text) {
                        Some((_, status)) => test.status = *status,
                        None => {
                            let names = STATUSES.iter().map(|(name, _)| *name);
                            let error =
                                ConfigError::new(self.file, Some(value.pos), format!("unknown status {text:?}"))
                                    .suggest(text, names.clone())
                                    .expected(one_of(names));
                            self.errors.push(error);
                        }
                    }
                }
                "webhooks" => test.webhooks = self.expectation(value, "\"webhooks\""),
                _ => {}
            }
        }
        if test.name.is_empty() {
            self.error(node.pos, "a test has no \"name\"").expected = Some("a line saying what it shows".into());
        }
        Some(test)
    }

    /// A fixture: an inline list of records, or `file:` a JSON Lines file
    /// relative to the test file.
    fn fixture(&mut self, node: &Node, id: &str) -> Option<Vec<Record>> {
        let what = format!("the fixture of node \"{id}\"");
        let values = if let Value::Seq(_) = node.value {
            self.objects(node, &what)?
        } else {
            let entries = self.map(node, &what, &["file"])?;
            let Some((_, file)) = entries.iter().find(|(k, _)| k.name == "file") else {
                self.error(node.pos, format!("{what} has no \"file\"")).expected =
                    Some("a list of records, or `file:` a JSON Lines file".into());
                return None;
            };
            let name = self.string(file, "\"file\"")?;
            let path = self.relative(name);
            self.jsonl(&path, file.pos)?
        };
        let mut records = Vec::with_capacity(values.len());
        for value in values {
            match record_from_fixture(value) {
                Some(record) => records.push(record),
                None => {
                    self.error(node.pos, format!("{what}: \"_tags\" must be a list of strings"));
                }
            }
        }
        Some(records)
    }

    fn jsonl(&mut self, path: &Path, pos: Pos) -> Option<Vec<Json>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                self.error(pos, format!("cannot read {}: {error}", path.display()));
                return None;
            }
        };
        let mut values = Vec::new();
        for (index, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let at = Pos::new(u32::try_from(index + 1).unwrap_or(u32::MAX), 1);
            match serde_json::from_str::<Json>(line) {
                Ok(value @ Json::Object(_)) => values.push(value),
                Ok(_) => self.errors.push(ConfigError::new(path, Some(at), "a line must be one JSON object")),
                Err(error) => self.errors.push(ConfigError::new(path, Some(at), format!("not JSON: {error}"))),
            }
        }
        Some(values)
    }

    fn expectation(&mut self, node: &Node, what: &str) -> Option<Expectation> {
        let entries = self.map(node, what, &EXPECT_KEYS)?;
        let mut expectation = Expectation::default();
        for (key, value) in entries {
            let part = format!("{what}: \"{}\"", key.name);
            match key.name.as_str() {
                "count" => expectation.count = self.count(value, &part),
                "received" => expectation.received = self.count(value, &part),
                "rejected" => expectation.rejected = self.count(value, &part),
                "records" => expectation.records = self.objects(value, &part),
                "contains" => expectation.contains = self.objects(value, &part),
                "ordered" => match value.value {
                    Value::Bool(ordered) => expectation.ordered = ordered,
                    _ => {
                        self.error(value.pos, format!("{part} must be true or false, not {}", value.value.kind()));
                    }
                },
                "each" => {
                    let Some(source) = self.string(value, &part) else { continue };
                    match self.sandbox.compile_condition(source) {
                        Ok(condition) => expectation.each = Some((source.to_owned(), condition)),
                        Err(error) => {
                            self.error(value.pos, format!("{part} does not compile: {}", error.message)).expected =
                                Some("a Rhai condition over `record`, e.g. record.status == \"TRADE_CLOSED\"".into());
                        }
                    }
                }
                _ => {}
            }
        }
        if expectation.ordered && expectation.records.is_none() {
            let pos = node.key_pos("ordered").unwrap_or(node.pos);
            self.error(pos, format!("{what}: \"ordered\" applies to \"records\", which is not given"));
        }
        Some(expectation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Limits;

    fn errors(source: &str) -> Vec<String> {
        let sandbox = Sandbox::new(Limits::default());
        match TestFile::parse(Path::new("flows/tests/t.yaml"), source, &sandbox) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_test_file_reads_fixtures_and_expectations() {
        let sandbox = Sandbox::new(Limits::default());
        let source = "flow: ../example-orders.yaml\ntests:\n  - name: one\n    fixtures:\n      src: [{tid: 1, _tags: [vip]}]\n    expect:\n      out: {count: 1, each: 'record.tid == 1', records: [{tid: 1}], ordered: true}\n    status: partial\n";
        let file = TestFile::parse(Path::new("flows/tests/t.yaml"), source, &sandbox).unwrap();
        assert_eq!(file.flow, Path::new("flows/tests/../example-orders.yaml"));
        let test = &file.tests[0];
        assert_eq!(test.name, "one");
        assert!(test.fixtures["src"][0].tags.contains("vip"));
        assert_eq!(test.status, RunStatus::Partial);
        let (node, expectation) = &test.expect[0];
        assert_eq!(node, "out");
        assert_eq!(expectation.count, Some(1));
        assert!(expectation.ordered && expectation.each.is_some());
    }

    #[test]
    fn every_mistake_is_reported_at_its_place_with_a_suggestion() {
        let found = errors(
            "flow: ../nowhere.yaml\ntests:\n  - name: one\n    expcet: {}\n    expect:\n      out: {cuont: 1, each: 'record.tid ==', ordered: true}\n    status: succeded\n  - fixtures: {a: 3}\n",
        );
        assert_eq!(
            found,
            [
                "flows/tests/t.yaml:1:7: there is no flow file at flows/tests/../nowhere.yaml; expected the flow file's path, relative to this file",
                "flows/tests/t.yaml:4:5: unknown key \"expcet\" in a test (did you mean \"expect\"?); expected one of \"name\", \"fixtures\", \"expect\", \"status\" or \"webhooks\"",
                "flows/tests/t.yaml:6:13: unknown key \"cuont\" in the expectation of node \"out\" (did you mean \"count\"?); expected one of \"count\", \"records\", \"ordered\", \"contains\", \"each\", \"received\" or \"rejected\"",
                "flows/tests/t.yaml:6:29: the expectation of node \"out\": \"each\" does not compile: script is incomplete; expected a Rhai condition over `record`, e.g. record.status == \"TRADE_CLOSED\"",
                "flows/tests/t.yaml:6:46: the expectation of node \"out\": \"ordered\" applies to \"records\", which is not given",
                "flows/tests/t.yaml:7:13: unknown status \"succeded\" (did you mean \"succeeded\"?); expected one of \"succeeded\", \"partial\", \"failed\", \"paused\" or \"cancelled\"",
                "flows/tests/t.yaml:8:5: a test has no \"name\"; expected a line saying what it shows",
                "flows/tests/t.yaml:8:19: the fixture of node \"a\" must be a mapping, not an integer",
            ]
        );
    }

    #[test]
    fn a_fixture_file_is_read_relative_to_the_test_file_and_its_bad_line_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.jsonl"), "{\"tid\": 1}\n\n[2]\n").unwrap();
        std::fs::write(dir.path().join("f.yaml"), "").unwrap();
        let path = dir.path().join("t.yaml");
        let sandbox = Sandbox::new(Limits::default());
        let source = "flow: f.yaml\ntests:\n  - name: one\n    fixtures:\n      src: {file: in.jsonl}\n";
        let errors = TestFile::parse(&path, source, &sandbox).unwrap_err();
        assert_eq!(errors.0.len(), 1);
        assert_eq!(
            errors.0[0].to_string(),
            format!("{}:3:1: a line must be one JSON object", dir.path().join("in.jsonl").display())
        );
        std::fs::write(dir.path().join("in.jsonl"), "{\"tid\": 1}\n\n{\"tid\": 2}\n").unwrap();
        let file = TestFile::parse(&path, source, &sandbox).unwrap();
        assert_eq!(file.tests[0].fixtures["src"].len(), 2);
    }
}
