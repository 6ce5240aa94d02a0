//! Runs a flow in a sandbox: what `orderflow test`, `orderflow run --dry-run`
//! and the editor's test run share.
//!
//! A sandboxed run is an ordinary engine run with four differences:
//!
//! - nodes named in [`SandboxOptions::fixtures`] are **replaced** by their
//!   fixture records: a replaced source sends them, a replaced transform
//!   drains (and counts) its inputs and then sends them. This is how a test
//!   answers for a node that would call a shop or read the database;
//! - every write goes to a **scratch database** ([`Scratch`]: a fresh SQLite
//!   file in a temporary folder), never the real one;
//! - `notify` **posts nothing**: it records what it would have sent
//!   ([`HeldWebhook`]), and files nodes write (`restock_suggest`'s CSV) land
//!   in the scratch folder; the harness sets this up itself
//!   ([`BuildContext::sandboxed`]), so no caller can forget it;
//! - every node's output and rejects are **captured** ([`Capture`], the
//!   engine's [`RunObserver`]), all of them or the first few per node.
//!
//! The result is a [`SandboxReport`], serialisable for the web editor.
//! Expectations over it (test files) are in [`test_file`] and [`expect`];
//! a dry run's set-up (real cursors and bans, bounded sources) in [`dry_run`].

pub mod dry_run;
pub mod expect;
mod fixture;
pub mod test_file;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value as Json;
use tokio_util::sync::CancellationToken;

use crate::engine::node::{BuildContext, HeldWebhook, HeldWebhooks, Registry, Role, Sandboxed};
use crate::engine::{Engine, EngineError, EngineOptions, RunObserver};
use crate::flow::Flow;
use crate::record::Record;
use crate::store::{NodeStatus, RunStatus, Store, StoreError};

pub use fixture::record_from_fixture;

/// Why a sandboxed run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The scratch database could not be made.
    #[error("making the scratch database: {0}")]
    Scratch(String),
    /// The scratch or the real database refused a read or write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run could not be recorded in the scratch database.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A node that cannot be built in the sandbox: in a test, one that calls
    /// a shop (no shop is connected) and has no fixture.
    #[error("node \"{node}\" cannot run in the sandbox: {message}; give it a fixture")]
    Unbuildable {
        /// The node.
        node: String,
        /// Why building it failed.
        message: String,
    },
    /// A fixture names a node the flow does not have.
    #[error("a fixture names node \"{node}\", which flow \"{flow}\" does not have")]
    UnknownNode {
        /// The flow.
        flow: String,
        /// The node id given.
        node: String,
    },
}

/// A fresh SQLite database in a temporary folder, deleted on drop; files
/// nodes write go to the same folder.
pub struct Scratch {
    /// The database.
    pub store: Store,
    // Deleted, with all in it, on drop.
    dir: tempfile::TempDir,
}

impl Scratch {
    /// Makes the folder and the database (with every table migrated).
    pub async fn new() -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("orderflow-sandbox-")
            .tempdir()
            .map_err(|e| HarnessError::Scratch(e.to_string()))?;
        let url = format!("sqlite://{}", dir.path().join("scratch.db").display());
        let store = Store::connect(&url).await?;
        Ok(Self { store, dir })
    }

    /// Where the files nodes write go (`BuildContext::resolve_output`).
    pub fn output_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("files")
    }
}

/// How to sandbox a run.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Nodes replaced by records, by node id.
    pub fixtures: BTreeMap<String, Vec<Record>>,
    /// Records kept per node (out, and rejected); `None` keeps them all.
    pub sample: Option<usize>,
    /// Each source ends at its first send after this many listing pages
    /// (after this many batches, for a source that reads no pages).
    pub pages_per_source: Option<u64>,
}

/// What a sandboxed run did, node by node.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxReport {
    /// The flow's name.
    pub flow: String,
    /// How the run ended.
    pub status: RunStatus,
    /// The first fatal error, naming its node.
    pub error: Option<String>,
    /// Wall-clock time, in milliseconds.
    pub elapsed_ms: u64,
    /// Per node, in flow order (error nodes last, when they ran).
    pub nodes: Vec<NodeReport>,
    /// The webhooks `notify` nodes would have sent.
    pub webhooks: Vec<HeldWebhook>,
}

impl SandboxReport {
    /// The node called `id`.
    pub fn node(&self, id: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

/// What one node did in a sandboxed run.
#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    /// The node's id.
    pub id: String,
    /// Its type as the flow names it.
    pub node_type: String,
    /// Whether fixture records stood in for it.
    pub fixture: bool,
    /// How it ended.
    pub status: NodeStatus,
    /// Records received.
    pub records_in: u64,
    /// Records sent on.
    pub records_out: u64,
    /// Records or calls that failed.
    pub errors: u64,
    /// How long it ran, in milliseconds.
    pub elapsed_ms: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The records it sent on (tags under `_tags`): all of them, or the first
    /// [`SandboxOptions::sample`].
    pub records: Vec<Json>,
    /// The records it skipped or set aside, with the reason.
    pub rejected: Vec<Rejected>,
}

/// A record a node skipped or set aside.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejected {
    /// The record.
    pub record: Json,
    /// Why.
    pub reason: String,
}

/// The engine observer that keeps each node's records.
#[derive(Default)]
struct Capture {
    limit: Option<usize>,
    nodes: Mutex<HashMap<String, Captured>>,
}

#[derive(Default)]
struct Captured {
    records: Vec<Json>,
    rejected: Vec<Rejected>,
}

impl Capture {
    fn room(&self, held: usize) -> usize {
        self.limit.map_or(usize::MAX, |limit| limit.saturating_sub(held))
    }

    fn take(&self, node_id: &str) -> Captured {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner()).remove(node_id).unwrap_or_default()
    }
}

impl RunObserver for Capture {
    fn sent(&self, node_id: &str, records: &[Record]) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let captured = nodes.entry(node_id.to_owned()).or_default();
        let room = self.room(captured.records.len());
        captured.records.extend(records.iter().take(room).map(Record::to_json));
    }

    fn rejected(&self, node_id: &str, record: &Json, reason: &str) {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let captured = nodes.entry(node_id.to_owned()).or_default();
        if self.room(captured.rejected.len()) > 0 {
            captured.rejected.push(Rejected { record: record.clone(), reason: reason.to_owned() });
        }
    }
}

/// Runs `flow` once in the sandbox `options` describe, writing to `scratch`
/// only. `build` gives the folder, the sandbox, the clock and the platforms
/// the unreplaced nodes may call (none, for a test); its `sandboxed` is
/// set here whatever it was.
pub async fn run_sandboxed(
    flow: &Flow,
    registry: &Registry,
    build: &BuildContext,
    scratch: &Scratch,
    options: &SandboxOptions,
) -> Result<SandboxReport, HarnessError> {
    // The types as the flow names them, before fixtures stand in.
    let types: HashMap<String, String> =
        flow.nodes.iter().chain(&flow.error_nodes).map(|spec| (spec.id.clone(), spec.type_name.clone())).collect();
    let mut flow = flow.clone();
    let mut registry = registry.clone();
    for (node_id, records) in &options.fixtures {
        let Some(spec) = flow.nodes.iter_mut().chain(flow.error_nodes.iter_mut()).find(|s| &s.id == node_id) else {
            return Err(HarnessError::UnknownNode { flow: flow.name.clone(), node: node_id.clone() });
        };
        // A type the registry does not know fails the run when it is built.
        let role = registry.get(&spec.type_name).map_or(Role::Transform, |t| t.role);
        registry.add(fixture::replace(spec, role, records));
    }
    let held = HeldWebhooks::default();
    let sandboxed = Sandboxed { webhooks: held.clone(), output_dir: scratch.output_dir() };
    let build = BuildContext { sandboxed: Some(sandboxed), shop: flow.shop.clone(), ..build.clone() };
    // Built once before the run, so that a node the sandbox cannot give what
    // it needs is named as such rather than failing the run.
    for spec in flow.nodes.iter().chain(&flow.error_nodes) {
        if let Some(node_type) = registry.get(&spec.type_name)
            && let Err(error) = node_type.build(&spec.settings, &build)
        {
            return Err(HarnessError::Unbuildable { node: spec.id.clone(), message: error.message });
        }
    }
    let capture = Arc::new(Capture { limit: options.sample, ..Capture::default() });
    let mut engine =
        Engine::new(registry, build, scratch.store.clone(), EngineOptions::default()).with_observer(capture.clone());
    if let Some(pages) = options.pages_per_source {
        engine = engine.with_pages_per_source(pages);
    }
    let run = engine.run(&flow, "sandbox", CancellationToken::new()).await?;

    let nodes = run
        .nodes
        .into_iter()
        .map(|node| {
            let captured = capture.take(&node.node_id);
            let elapsed_ms = match (node.started_at, node.finished_at) {
                (Some(start), Some(end)) => u64::try_from((end - start).num_milliseconds()).ok(),
                _ => None,
            };
            NodeReport {
                fixture: options.fixtures.contains_key(&node.node_id),
                node_type: types.get(&node.node_id).cloned().unwrap_or(node.node_type),
                id: node.node_id,
                status: node.status,
                records_in: node.records_in,
                records_out: node.records_out,
                errors: node.errors,
                elapsed_ms,
                error: node.error,
                records: captured.records,
                rejected: captured.rejected,
            }
        })
        .collect();
    Ok(SandboxReport {
        flow: run.flow,
        status: run.status,
        error: run.error,
        elapsed_ms: millis(run.elapsed),
        nodes,
        webhooks: held.all(),
    })
}

/// One test run and checked: what the run did (none when a node could not
/// run in the sandbox) and what it did not do that the test expected.
#[derive(Debug, Clone, Serialize)]
pub struct TestOutcome {
    /// The test's name.
    pub name: String,
    /// The run, node by node.
    pub report: Option<SandboxReport>,
    /// Every expectation not met; empty when the test passed.
    pub mismatches: Vec<expect::Mismatch>,
}

impl TestOutcome {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Runs `test` of `flow` on a fresh scratch database and checks it: what
/// `orderflow test` does for each test, and the editor's test run. `build`
/// should hold no platform (a test calls no shop); a node that needs one
/// fails the test, naming the node.
pub async fn run_test(
    flow: &Flow,
    test: &test_file::TestCase,
    registry: &Registry,
    build: &BuildContext,
) -> Result<TestOutcome, HarnessError> {
    let scratch = Scratch::new().await?;
    let options = SandboxOptions { fixtures: test.fixtures.clone(), sample: None, pages_per_source: None };
    let (report, mismatches) = match run_sandboxed(flow, registry, build, &scratch, &options).await {
        Ok(report) => {
            let mismatches = expect::check(test, &report, &build.sandbox);
            (Some(report), mismatches)
        }
        Err(HarnessError::Unbuildable { node, message }) => {
            let line = format!("cannot run in a test ({message}): give it a fixture");
            (None, vec![expect::Mismatch { subject: format!("node \"{node}\""), lines: vec![line] }])
        }
        Err(error) => return Err(error),
    };
    Ok(TestOutcome { name: test.name.clone(), report, mismatches })
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::flow::{CompileEnv, compile};
    use crate::script::{Limits, Sandbox};

    struct Bench {
        dir: tempfile::TempDir,
        registry: Registry,
        build: BuildContext,
    }

    impl Bench {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let build = BuildContext::new(dir.path(), Sandbox::new(Limits::default()));
            Self { dir, registry: Registry::builtin(), build }
        }

        fn flow(&self, yaml: &str) -> Flow {
            let shops = BTreeSet::new();
            let env = CompileEnv { registry: &self.registry, build: &self.build, shops: &shops };
            compile(Path::new("test.yaml"), yaml, &env).unwrap_or_else(|e| panic!("{e}"))
        }

        async fn run(&self, yaml: &str, options: SandboxOptions) -> SandboxReport {
            let scratch = Scratch::new().await.unwrap();
            run_sandboxed(&self.flow(yaml), &self.registry, &self.build, &scratch, &options).await.unwrap()
        }
    }

    fn records(values: &[Json]) -> Vec<Record> {
        values.iter().cloned().map(|v| record_from_fixture(v).unwrap()).collect()
    }

    #[tokio::test]
    async fn a_fixture_replaces_a_source_and_a_transform_and_every_record_is_captured() {
        let bench = Bench::new();
        let flow = "flow: f\nnodes:\n  src: {use: read_jsonl, with: {path: missing.jsonl}}\n  tag: {use: script, input: src, with: {source: 'tags.push(\"seen\");'}}\n  swap: {use: filter, input: tag, with: {condition: 'false'}}\n  out: {use: log, input: swap, with: {level: debug}}\n";
        let fixtures = BTreeMap::from([
            ("src".to_owned(), records(&[json!({"n": 1}), json!({"n": 2})])),
            ("swap".to_owned(), records(&[json!({"n": 9, "_tags": ["fixture"]})])),
        ]);
        let report = bench.run(flow, SandboxOptions { fixtures, ..SandboxOptions::default() }).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
        let tag = report.node("tag").unwrap();
        assert_eq!(tag.records, [json!({"n": 1, "_tags": ["seen"]}), json!({"n": 2, "_tags": ["seen"]})]);
        let swap = report.node("swap").unwrap();
        assert!(swap.fixture);
        assert_eq!(swap.node_type, "filter");
        assert_eq!((swap.records_in, swap.records_out), (2, 1));
        assert_eq!(report.node("out").unwrap().records, [json!({"n": 9, "_tags": ["fixture"]})]);
    }

    #[tokio::test]
    async fn skipped_records_are_captured_with_their_reason_and_samples_are_bounded() {
        let bench = Bench::new();
        let flow = "flow: f\nnodes:\n  src: {use: read_jsonl, with: {path: x.jsonl}}\n  check: {use: script, input: src, on_error: skip, with: {source: 'if record.n == 2 { throw \"two is bad\"; }'}}\n";
        let fixtures =
            BTreeMap::from([("src".to_owned(), records(&[json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]))]);
        let report = bench.run(flow, SandboxOptions { fixtures, sample: Some(1), pages_per_source: None }).await;
        assert_eq!(report.status, RunStatus::Partial, "{report:?}");
        let check = report.node("check").unwrap();
        assert_eq!(check.records_out, 2);
        assert_eq!(check.records, [json!({"n": 1})], "the sample keeps the first record only");
        assert_eq!(check.rejected.len(), 1);
        assert_eq!(check.rejected[0].record, json!({"n": 2}));
        assert!(check.rejected[0].reason.contains("two is bad"), "{:?}", check.rejected);
    }

    #[tokio::test]
    async fn a_source_that_reads_no_pages_stops_cleanly_after_its_batches() {
        let bench = Bench::new();
        let lines: String = (0..10).map(|n| format!("{{\"n\": {n}}}\n")).collect();
        std::fs::write(bench.dir.path().join("in.jsonl"), lines).unwrap();
        let flow = "flow: f\nnodes:\n  src: {use: read_jsonl, with: {path: in.jsonl, batch_size: 2}}\n  out: {use: log, input: src, with: {level: debug}}\n";
        let report = bench.run(flow, SandboxOptions { pages_per_source: Some(3), ..SandboxOptions::default() }).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
        let src = report.node("src").unwrap();
        assert_eq!((src.status, src.records_out, src.error.as_deref()), (NodeStatus::Succeeded, 6, None));
        assert_eq!(report.node("out").unwrap().records_in, 6);
    }

    #[tokio::test]
    async fn notify_holds_its_webhook_and_reads_no_secret() {
        let bench = Bench::new();
        // A URL nothing listens on, and a secret variable that is not set: a
        // real post would fail the run.
        let flow = "flow: f\nnodes:\n  src: {use: read_jsonl, with: {path: x.jsonl}}\n  tell:\n    use: notify\n    input: src\n    with:\n      url: http://127.0.0.1:9/hook?token=secret-token\n      secret_env: ORDERFLOW_HARNESS_TEST_UNSET\n      delivery_key: [n]\n      template: '#{text: \"n is \" + record.n}'\n";
        let fixtures = BTreeMap::from([("src".to_owned(), records(&[json!({"n": 1})]))]);
        let report = bench.run(flow, SandboxOptions { fixtures, ..SandboxOptions::default() }).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
        assert_eq!(
            report.webhooks,
            [HeldWebhook {
                node_id: "tell".into(),
                url: "http://127.0.0.1:9/hook".into(),
                delivery_key: "1".into(),
                body: json!({"text": "n is 1"}),
            }]
        );
        let shown = serde_json::to_string(&report).unwrap();
        assert!(!shown.contains("secret-token"), "{shown}");
    }

    #[tokio::test]
    async fn a_file_a_node_writes_lands_in_the_scratch_folder() {
        let bench = Bench::new();
        let flow = "flow: f\nshop: s\nnodes:\n  suggest: {use: restock_suggest, with: {csv: out/restock.csv}}\n";
        let shop = crate::nodes::testing::FakeShop::new([], None);
        let build = BuildContext { flow_dir: bench.dir.path().to_path_buf(), ..shop.context() };
        let shops = BTreeSet::from(["s".to_owned()]);
        let env = CompileEnv { registry: &bench.registry, build: &build, shops: &shops };
        let flow = compile(Path::new("test.yaml"), flow, &env).unwrap_or_else(|e| panic!("{e}"));
        let scratch = Scratch::new().await.unwrap();
        let report = run_sandboxed(&flow, &bench.registry, &build, &scratch, &SandboxOptions::default()).await.unwrap();
        assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
        assert!(!bench.dir.path().join("out").exists(), "the real place is left alone");
        assert!(scratch.output_dir().join("restock.csv").is_file());
    }

    #[tokio::test]
    async fn a_node_that_needs_a_shop_asks_for_a_fixture() {
        let bench = Bench::new();
        let flow = bench.flow("flow: f\nnodes:\n  src: {use: read_jsonl, with: {path: x.jsonl}}\n  save: {use: store_orders, input: src}\n");
        let mut flow = flow;
        flow.nodes[1].type_name = "fetch_detail".into();
        flow.nodes[1].settings = json!({"needs": ["receiver_address"]});
        flow.shop = Some("tmall-main".into());
        let scratch = Scratch::new().await.unwrap();
        let error = run_sandboxed(&flow, &bench.registry, &bench.build, &scratch, &SandboxOptions::default())
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("node \"save\" cannot run in the sandbox: shop \"tmall-main\" is not configured"),
            "{message}"
        );
        assert!(message.ends_with("give it a fixture"), "{message}");
    }
}
