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
//!   ([`HeldWebhook`]), and the harness sets this up itself, so no caller can
//!   forget it;
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

use crate::engine::node::{BuildContext, HeldWebhook, HeldWebhooks, Registry, Role};
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

/// A fresh SQLite database in a temporary folder, deleted on drop.
pub struct Scratch {
    /// The database.
    pub store: Store,
    // Kept for its drop, which deletes the folder.
    _dir: tempfile::TempDir,
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
        Ok(Self { store, _dir: dir })
    }
}

/// How to sandbox a run.
#[derive(Debug, Clone, Default)]
pub struct SandboxOptions {
    /// Nodes replaced by records, by node id.
    pub fixtures: BTreeMap<String, Vec<Record>>,
    /// Records kept per node (out, and rejected); `None` keeps them all.
    pub sample: Option<usize>,
    /// Each source ends after this many batches (a listing page is one).
    pub batches_per_source: Option<u64>,
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
/// the unreplaced nodes may call (none, for a test); its `held_webhooks` is
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
    let build = BuildContext { held_webhooks: Some(held.clone()), shop: flow.shop.clone(), ..build.clone() };
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
    if let Some(batches) = options.batches_per_source {
        engine = engine.with_batches_per_source(batches);
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

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}
