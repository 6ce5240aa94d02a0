//! What a running node sees: its identity, the run's store and cancellation,
//! its bounded output, and the run's policy for records it cannot handle.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::node::NodeError;
use crate::activity::Reporter;
use crate::flow::OnError;
use crate::record::{Batch, Record};
use crate::store::{Cursor, DeadLetter, Store};

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
    /// Where the node reports what it is doing (see [`crate::activity`]).
    pub activity: Reporter,
    pub(crate) on_error: OnError,
    pub(crate) stats: Arc<NodeStats>,
    pub(crate) watch: Watch,
}

/// Watches what every node of a run sends on and sets aside, batch by batch:
/// how a sandboxed run (`src/harness/`) captures each node's records without
/// the nodes knowing. Called on the node's task, so it must be quick.
pub trait RunObserver: Send + Sync {
    /// `node_id` sent `records` downstream (a source's emit, a transform's
    /// output).
    fn sent(&self, node_id: &str, records: &[Record]);
    /// `node_id` skipped or dead-lettered `record` for `reason`.
    fn rejected(&self, node_id: &str, record: &Json, reason: &str);
}

/// What an engine set up to watch or bound its runs
/// ([`super::Engine::with_observer`], [`super::Engine::with_pages_per_source`]);
/// nothing for an ordinary run.
#[derive(Clone, Default)]
pub(crate) struct Watch {
    pub(crate) observer: Option<Arc<dyn RunObserver>>,
    /// Each source stops, as if it had reached its end, at its first send
    /// after it has read this many listing pages (a dry run's bound); a
    /// source that reads no pages, after this many batches.
    pub(crate) pages_per_source: Option<u64>,
}

impl Watch {
    pub(crate) fn sent(&self, node_id: &str, records: &[Record]) {
        if let Some(observer) = &self.observer {
            observer.sent(node_id, records);
        }
    }
}

impl NodeContext {
    /// Applies the node's `on_error` to one record it could not handle:
    /// `fail` returns the error, `skip` counts it, `dead_letter` counts and
    /// stores it with `reason`.
    pub async fn reject(&self, record: Json, reason: &str) -> Result<(), NodeError> {
        match self.on_error {
            OnError::Fail => Err(NodeError::permanent(reason)),
            OnError::Skip => {
                if let Some(observer) = &self.watch.observer {
                    observer.rejected(&self.node_id, &record, reason);
                }
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node_id = %self.node_id, run_id = %self.run_id, reason, "Record skipped.");
                Ok(())
            }
            OnError::DeadLetter => self.set_aside(record, reason).await.map(drop),
        }
    }

    /// Counts one listing page read from a platform: what a dry run's bound
    /// on pages per source counts (`Engine::with_pages_per_source`).
    pub fn page_read(&self) {
        self.stats.pages.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets a record aside in `dead_letters`, whatever `on_error` says: a
    /// record the platform sent that cannot be read or stored is never a
    /// reason to stop the shop, and the rest of its page goes on. The same
    /// record already open for this flow and node is not stored twice; a
    /// new one counts as an error of the node (the run ends `partial`).
    /// True when it was new.
    pub async fn set_aside(&self, record: Json, reason: &str) -> Result<bool, NodeError> {
        if let Some(observer) = &self.watch.observer {
            observer.rejected(&self.node_id, &record, reason);
        }
        let letter = DeadLetter {
            run_id: self.run_id.clone(),
            flow: self.flow.clone(),
            node_id: self.node_id.clone(),
            record,
            reason: reason.to_owned(),
            created_at: Utc::now(),
        };
        let stored = self.store.insert_dead_letter(&letter).await?;
        if stored {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(node_id = %self.node_id, run_id = %self.run_id, reason, "Record dead-lettered.");
        }
        Ok(stored)
    }
}

/// A source's position, travelling behind the records that brought it there.
///
/// Every path from the source to a node carries its own copy; a node with
/// several such paths in holds it until the last copy arrives, so by the
/// time a node sees a checkpoint it has seen every record emitted before it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checkpoint {
    /// The source node that emitted it.
    pub(crate) origin: Arc<str>,
    /// Its number among the source's checkpoints in this run.
    pub(crate) seq: u64,
    /// The position to commit.
    pub(crate) cursor: Cursor,
}

/// What travels on an edge: records, then the checkpoints reached after them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Packet {
    pub(crate) records: Batch,
    pub(crate) checkpoints: Vec<Checkpoint>,
}

impl Packet {
    pub(crate) fn records(records: Batch) -> Self {
        Self { records, checkpoints: Vec::new() }
    }
}

/// A source's handle for sending records downstream.
pub struct Emitter<'a> {
    ctx: &'a NodeContext,
    output: &'a Output,
    origin: Arc<str>,
    checkpoints: u64,
    batches: u64,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(ctx: &'a NodeContext, output: &'a Output) -> Self {
        Self { ctx, output, origin: Arc::from(ctx.node_id.as_str()), checkpoints: 0, batches: 0 }
    }

    /// The node's context.
    pub fn ctx(&self) -> &'a NodeContext {
        self.ctx
    }

    /// Sends a batch downstream, waiting while downstream is full
    /// (back-pressure). Fails only when the run is cancelled.
    pub async fn emit(&mut self, batch: Batch) -> Result<(), NodeError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.send(Packet::records(batch)).await
    }

    /// Sends `batch` (possibly empty) followed by `cursor`, the position the
    /// source reaches once these and all earlier records are handled. Sinks
    /// commit the cursor with the last of them; the source reads it back on
    /// its next run to resume.
    pub async fn emit_through(&mut self, batch: Batch, cursor: Cursor) -> Result<(), NodeError> {
        self.checkpoints += 1;
        let checkpoint = Checkpoint { origin: self.origin.clone(), seq: self.checkpoints, cursor };
        self.send(Packet { records: batch, checkpoints: vec![checkpoint] }).await
    }

    /// Counts, reports and sends one packet; once the run's bound on pages
    /// per source is reached, stops the source (see [`NodeStats::bounded`]).
    /// Checked after a send; a source that reports cursors stops only after
    /// one (the end of a window), so the window it was reading is sent whole.
    async fn send(&mut self, packet: Packet) -> Result<(), NodeError> {
        let at_checkpoint = !packet.checkpoints.is_empty();
        self.ctx.stats.records_out.fetch_add(packet.records.len() as u64, Ordering::Relaxed);
        self.ctx.watch.sent(&self.ctx.node_id, &packet.records);
        self.output.send(packet, &self.ctx.cancel).await?;
        self.batches += 1;
        let pages = self.ctx.stats.pages.load(Ordering::Relaxed);
        let used = if pages > 0 { pages } else { self.batches };
        let may_stop = at_checkpoint || self.checkpoints == 0;
        if may_stop && self.ctx.watch.pages_per_source.is_some_and(|bound| used >= bound) {
            self.ctx.stats.bounded.store(true, Ordering::Relaxed);
            // Unwinds the source like a cancellation (nothing retried, nothing
            // set aside); `run_source` then ends it as finished.
            return Err(NodeError { class: super::node::ErrorClass::Cancelled, message: "page bound reached".into() });
        }
        Ok(())
    }

    /// Hands a record the source could not read to the node's `on_error`.
    pub async fn reject(&mut self, record: Json, reason: &str) -> Result<(), NodeError> {
        self.ctx.reject(record, reason).await
    }
}

/// The bounded channels to a node's downstream nodes (one per edge target).
#[derive(Default)]
pub(crate) struct Output {
    pub(crate) senders: Vec<mpsc::Sender<Packet>>,
}

impl Output {
    /// Sends `packet` to every downstream node, cloning it for all but the
    /// last. A downstream that has stopped (its receiver closed) is passed over.
    pub(crate) async fn send(&self, packet: Packet, cancel: &CancellationToken) -> Result<(), NodeError> {
        let Some((last, rest)) = self.senders.split_last() else { return Ok(()) };
        for sender in rest {
            Self::send_one(sender, packet.clone(), cancel).await?;
        }
        Self::send_one(last, packet, cancel).await
    }

    async fn send_one(
        sender: &mpsc::Sender<Packet>,
        packet: Packet,
        cancel: &CancellationToken,
    ) -> Result<(), NodeError> {
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(NodeError::cancelled()),
            // A closed receiver means that node stopped under `on_error: skip`;
            // the others still want the data.
            _ = sender.send(packet) => Ok(()),
        }
    }
}

/// Counters of one node during a run.
#[derive(Debug, Default)]
pub(crate) struct NodeStats {
    pub(crate) records_in: AtomicU64,
    pub(crate) records_out: AtomicU64,
    pub(crate) errors: AtomicU64,
    /// Listing pages a source read ([`NodeContext::page_read`]).
    pub(crate) pages: AtomicU64,
    /// Set when a source stopped at the run's bound on pages per source.
    pub(crate) bounded: AtomicBool,
    pub(crate) started_at: Mutex<Option<DateTime<Utc>>>,
    pub(crate) finished_at: Mutex<Option<DateTime<Utc>>>,
}
