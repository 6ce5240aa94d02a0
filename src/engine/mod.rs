//! The executor: a flow becomes a graph of tokio tasks joined by bounded
//! channels carrying batches of records.
//!
//! Each node runs as one task. A node's input is one bounded channel that all
//! its upstream nodes hold a sender of (fan-in); its output sends a copy of
//! each batch to every downstream node (fan-out). A full channel makes the
//! sender wait, so a slow sink slows its source and memory stays bounded by
//! `channel_capacity × batch_size` per edge, whatever the record count.
//!
//! A failure under `on_error: fail` cancels the run's token; every task
//! watches it on each receive and send, so the run ends promptly with no task
//! left behind. Every run and every node's counts and timings are recorded.

mod context;
pub mod node;
pub mod output;
mod task;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use context::{Emitter, NodeContext, RunObserver};
pub(crate) use context::{NodeStats, Output, Packet, Watch};

use crate::flow::{Flow, NodeSpec, OnError};
use crate::record::Record;
use crate::store::{Lease, NodeRunRecord, NodeStatus, RunFinish, RunStart, RunStatus, Store, StoreError};
use node::{BuildContext, Built, ErrorClass, Halt, Registry};

/// Tuning of the executor.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// Records per batch that sources aim for.
    pub batch_size: usize,
    /// Batches a channel holds before its sender waits.
    pub channel_capacity: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self { batch_size: 500, channel_capacity: 4 }
    }
}

/// Why a run could not even be recorded.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The run could not be written to the store; the store's message says
    /// what it was writing.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run's id.
    pub run_id: String,
    /// The flow's name.
    pub flow: String,
    /// How it ended.
    pub status: RunStatus,
    /// The first fatal error, naming its node.
    pub error: Option<String>,
    /// Per node, in flow order (error nodes last, when they ran).
    pub nodes: Vec<NodeRunRecord>,
    /// Wall-clock time.
    pub elapsed: Duration,
}

/// Runs flows against one store.
#[derive(Clone)]
pub struct Engine {
    registry: Arc<Registry>,
    build: BuildContext,
    store: Store,
    options: EngineOptions,
    /// The `serve` worker id recorded on every run, when a worker runs it.
    worker: Option<String>,
    watch: Watch,
}

struct GraphOutcome {
    nodes: Vec<NodeRunRecord>,
    fatal: Option<String>,
    /// The first node that halted the run on purpose, and why.
    halted: Option<(Halt, String)>,
    had_errors: bool,
}

impl Engine {
    /// An engine that builds nodes from `registry` and records runs in `store`.
    pub fn new(registry: Registry, build: BuildContext, store: Store, options: EngineOptions) -> Self {
        Self { registry: Arc::new(registry), build, store, options, worker: None, watch: Watch::default() }
    }

    /// This engine, telling `observer` what every node sends on and sets
    /// aside (a sandboxed run's capture).
    pub fn with_observer(mut self, observer: Arc<dyn RunObserver>) -> Self {
        self.watch.observer = Some(observer);
        self
    }

    /// This engine, ending every source as if it had nothing more once it
    /// has read `pages` listing pages (the sync readers count them with
    /// [`NodeContext::page_read`]): at the end of the window it is reading,
    /// for a source that reports cursors (its first window, larger than a
    /// batch, may end at its first batch), else at its next send. A source
    /// that reads no pages ends after `pages` batches. What it sent is
    /// processed downstream as usual (a dry run's bound).
    pub fn with_pages_per_source(mut self, pages: u64) -> Self {
        self.watch.pages_per_source = Some(pages.max(1));
        self
    }

    /// This engine, recording `worker` as the runner of every run (a `serve`
    /// process's worker id).
    pub fn with_worker(mut self, worker: impl Into<String>) -> Self {
        self.worker = Some(worker.into());
        self
    }

    /// The store runs are recorded in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `flow` once. `trigger` says why (`manual`, `schedule`, …);
    /// cancelling `cancel` stops the run (it is then recorded `cancelled`).
    pub async fn run(&self, flow: &Flow, trigger: &str, cancel: CancellationToken) -> Result<RunReport, EngineError> {
        self.run_on(flow, trigger, cancel, self.store.clone()).await
    }

    /// Runs `flow` once under `lease`, as [`Engine::run`] does, with every write
    /// its nodes make fenced by the lease ([`Store::fenced`]): once another
    /// worker has taken the lease over, the run's next write is refused, the run
    /// stops and is recorded `failed` with the reason. A run cancelled because
    /// its lease was lost (`cancel`) is recorded `cancelled` with that reason.
    /// The run's own record is not fenced.
    pub async fn run_fenced(
        &self,
        flow: &Flow,
        trigger: &str,
        cancel: CancellationToken,
        lease: Lease,
    ) -> Result<RunReport, EngineError> {
        self.run_on(flow, trigger, cancel, self.store.fenced(lease)).await
    }

    /// Runs `flow` with its nodes writing through `nodes_store`.
    async fn run_on(
        &self,
        flow: &Flow,
        trigger: &str,
        cancel: CancellationToken,
        nodes_store: Store,
    ) -> Result<RunReport, EngineError> {
        let run_id = uuid::Uuid::now_v7().to_string();
        let started = Instant::now();
        self.store
            .insert_run(&RunStart {
                id: run_id.clone(),
                flow: flow.name.clone(),
                trigger: trigger.to_owned(),
                started_at: Utc::now(),
                shop: flow.shop.clone(),
                worker: self.worker.clone(),
            })
            .await?;
        tracing::info!(flow = %flow.name, shop = flow.shop.as_deref().unwrap_or_default(), run_id = %run_id, trigger,
            "Run started.");

        let run_cancel = cancel.child_token();
        let mut main = self.run_graph(flow, &flow.nodes, &run_id, None, &nodes_store, run_cancel.clone()).await;
        let mut nodes = main.nodes;
        let externally_cancelled = cancel.is_cancelled();
        if main.fatal.is_none() {
            main.fatal = match &main.halted {
                Some((Halt::NeedsReauth | Halt::LeaseLost, reason)) => Some(reason.clone()),
                _ => None,
            };
        }
        if externally_cancelled
            && main.fatal.is_none()
            && let Err(lost @ StoreError::Fenced { .. }) = nodes_store.check_fence().await
        {
            // Cancelled by the renewal that found the lease taken over.
            main.fatal = Some(lost.to_string());
        }
        let status = if externally_cancelled {
            RunStatus::Cancelled
        } else if main.fatal.is_some() {
            RunStatus::Failed
        } else if main.halted.is_some() {
            RunStatus::Paused
        } else if main.had_errors {
            RunStatus::Partial
        } else {
            RunStatus::Succeeded
        };

        if status == RunStatus::Failed && !flow.error_nodes.is_empty() {
            let failure = Record::from_value(json!({
                "flow": flow.name,
                "run_id": run_id,
                "error": main.fatal,
            }))
            .unwrap_or_default();
            let handlers = self
                .run_graph(flow, &flow.error_nodes, &run_id, Some(failure), &nodes_store, cancel.child_token())
                .await;
            if let Some(error) = &handlers.fatal {
                tracing::error!(flow = %flow.name, run_id = %run_id, %error, "Error handler failed.");
            }
            nodes.extend(handlers.nodes);
        }

        let finish = RunFinish {
            id: run_id.clone(),
            status,
            finished_at: Utc::now(),
            error: main.fatal.clone().or_else(|| main.halted.as_ref().map(|(_, reason)| reason.clone())),
            nodes: nodes.clone(),
        };
        self.store.finish_run(&finish).await?;
        crate::telemetry::record_run(&flow.name, status.as_str(), started.elapsed());
        let shop = flow.shop.as_deref().unwrap_or_default();
        match (&finish.error, status) {
            (Some(error), RunStatus::Paused) => {
                tracing::warn!(flow = %flow.name, shop, run_id = %run_id, status = status.as_str(), %error, "Run finished.")
            }
            (Some(error), _) => {
                tracing::error!(flow = %flow.name, shop, run_id = %run_id, status = status.as_str(), %error, "Run finished.")
            }
            (None, _) => {
                tracing::info!(flow = %flow.name, shop, run_id = %run_id, status = status.as_str(), "Run finished.")
            }
        }
        Ok(RunReport {
            run_id,
            flow: flow.name.clone(),
            status,
            error: finish.error,
            nodes,
            elapsed: started.elapsed(),
        })
    }

    /// Builds, wires and runs `specs`, writing through `store`; `seed`, when
    /// given, is the one record fed to every node without inputs (the failure
    /// record for `errors:`).
    async fn run_graph(
        &self,
        flow: &Flow,
        specs: &[NodeSpec],
        run_id: &str,
        seed: Option<Record>,
        store: &Store,
        cancel: CancellationToken,
    ) -> GraphOutcome {
        let mut receivers: HashMap<&str, mpsc::Receiver<Packet>> = HashMap::new();
        let mut senders: HashMap<&str, mpsc::Sender<Packet>> = HashMap::new();
        for spec in specs {
            let (tx, rx) = mpsc::channel(self.options.channel_capacity.max(1));
            senders.insert(spec.id.as_str(), tx);
            receivers.insert(spec.id.as_str(), rx);
        }
        let mut outputs: HashMap<&str, Output> = specs.iter().map(|s| (s.id.as_str(), Output::default())).collect();
        for spec in specs {
            for input in &spec.inputs {
                if let (Some(output), Some(tx)) = (outputs.get_mut(input.as_str()), senders.get(spec.id.as_str())) {
                    output.senders.push(tx.clone());
                }
            }
        }
        if let Some(seed) = &seed {
            for spec in specs.iter().filter(|s| s.inputs.is_empty()) {
                if let Some(tx) = senders.get(spec.id.as_str()) {
                    // Capacity is at least 1 and the channel is fresh: never full.
                    let _ = tx.try_send(Packet::records(vec![seed.clone()]));
                }
            }
        }
        // Only upstream nodes may keep a node's input open.
        drop(senders);

        let mut copies = checkpoint_copies(specs);
        let stats: Vec<Arc<NodeStats>> = specs.iter().map(|_| Arc::new(NodeStats::default())).collect();
        let build = BuildContext { shop: flow.shop.clone(), ..self.build.clone() };
        let mut tasks = JoinSet::new();
        let mut build_failure = None;
        for (index, spec) in specs.iter().enumerate() {
            let node_type = match self.registry.get(&spec.type_name) {
                Some(node_type) => node_type,
                None => {
                    build_failure = Some(format!("node \"{}\": unknown node type \"{}\"", spec.id, spec.type_name));
                    break;
                }
            };
            let built = match node_type.build(&spec.settings, &build) {
                Ok(built) => built,
                Err(error) => {
                    build_failure = Some(format!("node \"{}\": {error}", spec.id));
                    break;
                }
            };
            let ctx = NodeContext {
                node_id: spec.id.clone(),
                run_id: run_id.to_owned(),
                flow: flow.name.clone(),
                store: store.clone(),
                cancel: cancel.clone(),
                batch_size: self.options.batch_size,
                activity: build.activity.clone(),
                on_error: spec.on_error,
                stats: stats[index].clone(),
                watch: self.watch.clone(),
            };
            let output = outputs.remove(spec.id.as_str()).unwrap_or_default();
            let input = receivers.remove(spec.id.as_str());
            let copies = copies.remove(spec.id.as_str()).unwrap_or_default();
            let spec = spec.clone();
            let sandbox = self.build.sandbox.clone();
            let is_source = matches!(built, Built::Source(_));
            tasks.spawn(async move {
                *ctx.stats.started_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Utc::now());
                let result = match (built, input) {
                    (Built::Source(node), _) => task::run_source(node, &spec, &ctx, &output).await,
                    (Built::Transform(node), Some(input)) => {
                        task::run_transform(node, &spec, &ctx, input, &output, &sandbox, copies).await
                    }
                    (Built::Transform(_), None) => Ok(()),
                };
                *ctx.stats.finished_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Utc::now());
                if let Err(error) = &result {
                    // A halted source just stops: what it sent before is
                    // delivered and committed downstream. A halted transform
                    // cannot let records pass, and a lost lease lets nothing
                    // more be written, so the run stops.
                    let cancels = match error.class {
                        ErrorClass::Cancelled => false,
                        ErrorClass::Halted(halt) => !is_source || halt == Halt::LeaseLost,
                        _ => spec.on_error == OnError::Fail,
                    };
                    if cancels {
                        ctx.cancel.cancel();
                    }
                }
                (index, result)
            });
        }
        if build_failure.is_some() {
            cancel.cancel();
        }
        drop(receivers);
        drop(outputs);

        let mut results: Vec<Option<Result<(), crate::nodes::NodeError>>> = specs.iter().map(|_| None).collect();
        let mut fatal = build_failure;
        let mut halted = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, result)) => {
                    if let Err(error) = &result {
                        let spec = &specs[index];
                        if let ErrorClass::Halted(halt) = error.class {
                            tracing::warn!(flow = %flow.name, run_id, node_id = %spec.id, %error, "Node halted the run.");
                            halted.get_or_insert_with(|| (halt, format!("node \"{}\": {error}", spec.id)));
                        } else if error.class != ErrorClass::Cancelled {
                            tracing::error!(flow = %flow.name, run_id, node_id = %spec.id, %error, "Node failed.");
                            if spec.on_error == OnError::Fail && fatal.is_none() {
                                fatal = Some(format!("node \"{}\": {error}", spec.id));
                            }
                        }
                    }
                    results[index] = Some(result);
                }
                Err(join_error) => {
                    // A panicking node must not take the run down silently.
                    cancel.cancel();
                    fatal.get_or_insert_with(|| format!("a node panicked: {join_error}"));
                }
            }
        }

        let mut had_errors = false;
        let nodes = specs
            .iter()
            .zip(&stats)
            .zip(results)
            .map(|((spec, stats), result)| {
                let errors = stats.errors.load(Ordering::Relaxed);
                let (status, error) = match result {
                    Some(Ok(())) => (NodeStatus::Succeeded, None),
                    Some(Err(e)) if e.class == ErrorClass::Cancelled => (NodeStatus::Cancelled, None),
                    Some(Err(e)) if e.class == ErrorClass::Halted(Halt::Paused) => {
                        (NodeStatus::Paused, Some(e.message))
                    }
                    Some(Err(e)) if matches!(e.class, ErrorClass::Halted(Halt::NeedsReauth | Halt::LeaseLost)) => {
                        (NodeStatus::Failed, Some(e.message))
                    }
                    Some(Err(e)) if spec.on_error == OnError::Fail => (NodeStatus::Failed, Some(e.message)),
                    Some(Err(e)) => (NodeStatus::Skipped, Some(e.message)),
                    None => (NodeStatus::Cancelled, None),
                };
                had_errors |= errors > 0 || status == NodeStatus::Skipped;
                NodeRunRecord {
                    node_id: spec.id.clone(),
                    node_type: spec.type_name.clone(),
                    status,
                    records_in: stats.records_in.load(Ordering::Relaxed),
                    records_out: stats.records_out.load(Ordering::Relaxed),
                    errors: errors + u64::from(status == NodeStatus::Failed || status == NodeStatus::Skipped),
                    started_at: *stats.started_at.lock().unwrap_or_else(|e| e.into_inner()),
                    finished_at: *stats.finished_at.lock().unwrap_or_else(|e| e.into_inner()),
                    error,
                }
            })
            .collect();
        GraphOutcome { nodes, fatal, halted, had_errors }
    }
}

/// For each node, how many copies of a checkpoint from each source reach it:
/// one per input edge that the source's records can travel along.
fn checkpoint_copies(specs: &[NodeSpec]) -> HashMap<&str, HashMap<String, usize>> {
    let mut downstream: HashMap<&str, Vec<&str>> = HashMap::new();
    for spec in specs {
        for input in &spec.inputs {
            downstream.entry(input.as_str()).or_default().push(spec.id.as_str());
        }
    }
    let mut copies: HashMap<&str, HashMap<String, usize>> = HashMap::new();
    for source in specs.iter().filter(|s| s.inputs.is_empty()) {
        let mut reached: HashSet<&str> = HashSet::from([source.id.as_str()]);
        let mut frontier = vec![source.id.as_str()];
        while let Some(node) = frontier.pop() {
            for &next in downstream.get(node).into_iter().flatten() {
                if reached.insert(next) {
                    frontier.push(next);
                }
            }
        }
        for spec in specs {
            let edges = spec.inputs.iter().filter(|input| reached.contains(input.as_str())).count();
            if edges > 0 {
                copies.entry(spec.id.as_str()).or_default().insert(source.id.clone(), edges);
            }
        }
    }
    copies
}

#[cfg(test)]
mod tests;
