//! What a running node sees: its identity, the run's store and cancellation,
//! its bounded output, and the run's policy for records it cannot handle.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::flow::OnError;
use crate::nodes::NodeError;
use crate::record::Batch;
use crate::store::{DeadLetter, Store};

/// Everything a node needs while it runs; handed to it by the executor.
pub struct NodeContext {
    /// The node's id in its flow.
    pub node_id: String,
    /// The run it belongs to.
    pub run_id: String,
    /// The flow's name.
    pub flow: String,
    /// The run's database.
    pub store: Store,
    /// Fires when the run is cancelled (by a failure elsewhere, or by the user).
    pub cancel: CancellationToken,
    /// How many records a source should put in one batch.
    pub batch_size: usize,
    pub(crate) on_error: OnError,
    pub(crate) stats: Arc<NodeStats>,
}

impl NodeContext {
    /// Applies the node's `on_error` to one record it could not handle:
    /// `fail` returns the error, `skip` counts it, `dead_letter` counts and
    /// stores it with `reason`.
    pub async fn reject(&self, record: Json, reason: &str) -> Result<(), NodeError> {
        match self.on_error {
            OnError::Fail => Err(NodeError::permanent(reason)),
            OnError::Skip => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node_id = %self.node_id, run_id = %self.run_id, reason, "Record skipped.");
                Ok(())
            }
            OnError::DeadLetter => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node_id = %self.node_id, run_id = %self.run_id, reason, "Record dead-lettered.");
                let letter = DeadLetter {
                    run_id: self.run_id.clone(),
                    flow: self.flow.clone(),
                    node_id: self.node_id.clone(),
                    record,
                    reason: reason.to_owned(),
                    created_at: Utc::now(),
                };
                self.store.insert_dead_letter(&letter).await.map_err(NodeError::from)
            }
        }
    }
}

/// A source's handle for sending records downstream.
pub struct Emitter<'a> {
    ctx: &'a NodeContext,
    output: &'a Output,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(ctx: &'a NodeContext, output: &'a Output) -> Self {
        Self { ctx, output }
    }

    /// The node's context.
    pub fn ctx(&self) -> &NodeContext {
        self.ctx
    }

    /// Sends a batch downstream, waiting while downstream is full
    /// (back-pressure). Fails only when the run is cancelled.
    pub async fn emit(&mut self, batch: Batch) -> Result<(), NodeError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.ctx.stats.records_out.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.output.send(batch, &self.ctx.cancel).await
    }

    /// Hands a record the source could not read to the node's `on_error`.
    pub async fn reject(&mut self, record: Json, reason: &str) -> Result<(), NodeError> {
        self.ctx.reject(record, reason).await
    }
}

/// The bounded channels to a node's downstream nodes (one per edge target).
#[derive(Default)]
pub(crate) struct Output {
    pub(crate) senders: Vec<mpsc::Sender<Batch>>,
}

impl Output {
    /// Sends `batch` to every downstream node, cloning it for all but the last.
    /// A downstream that has stopped (its receiver closed) is passed over.
    pub(crate) async fn send(&self, batch: Batch, cancel: &CancellationToken) -> Result<(), NodeError> {
        let Some((last, rest)) = self.senders.split_last() else { return Ok(()) };
        for sender in rest {
            Self::send_one(sender, batch.clone(), cancel).await?;
        }
        Self::send_one(last, batch, cancel).await
    }

    async fn send_one(sender: &mpsc::Sender<Batch>, batch: Batch, cancel: &CancellationToken) -> Result<(), NodeError> {
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(NodeError::cancelled()),
            // A closed receiver means that node stopped under `on_error: skip`;
            // the others still want the data.
            _ = sender.send(batch) => Ok(()),
        }
    }
}

/// Counters of one node during a run.
#[derive(Debug, Default)]
pub(crate) struct NodeStats {
    pub(crate) records_in: AtomicU64,
    pub(crate) records_out: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) started_at: Mutex<Option<DateTime<Utc>>>,
    pub(crate) finished_at: Mutex<Option<DateTime<Utc>>>,
}
