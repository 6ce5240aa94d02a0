//! One node's task: receive, filter by `when`, process with retry and
//! timeout, apply `on_error`, send on.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::mpsc;

use super::context::Checkpoint;
use super::node::{NodeError, Source, Transform};
use super::{Emitter, NodeContext, Output, Packet};
use crate::flow::{NodeSpec, OnError};
use crate::record::{Batch, Record};
use crate::script::Sandbox;
use crate::store::Cursor;

/// Runs a source to its end, retrying the whole run on retryable errors.
pub(super) async fn run_source(
    mut node: Box<dyn Source>,
    spec: &NodeSpec,
    ctx: &NodeContext,
    output: &Output,
) -> Result<(), NodeError> {
    let mut retrier = Retrier::new(spec, ctx);
    loop {
        let mut emitter = Emitter::new(ctx, output);
        match guarded(spec, ctx, node.run(&mut emitter)).await {
            Ok(()) => return Ok(()),
            Err(_) if ctx.stats.bounded.load(Ordering::Relaxed) => return Ok(()),
            Err(error) => retrier.wait_or_fail(error).await?,
        }
    }
}

/// Feeds every incoming batch through a transform until all its inputs close.
/// `copies` says, per source, how many copies of each of its checkpoints
/// arrive here (one per input edge its records reach).
pub(super) async fn run_transform(
    mut node: Box<dyn Transform>,
    spec: &NodeSpec,
    ctx: &NodeContext,
    mut input: mpsc::Receiver<Packet>,
    output: &Output,
    sandbox: &Sandbox,
    copies: HashMap<String, usize>,
) -> Result<(), NodeError> {
    let mut alignment = Alignment { copies, arrived: HashMap::new() };
    loop {
        let packet = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return Err(NodeError::cancelled()),
            packet = input.recv() => packet,
        };
        let Some(packet) = packet else { break };
        ctx.stats.records_in.fetch_add(packet.records.len() as u64, Ordering::Relaxed);
        let checkpoints = alignment.complete(packet.checkpoints);
        let batch = select_when(spec, ctx, sandbox, packet.records).await?;
        if batch.is_empty() && checkpoints.is_empty() {
            continue;
        }
        let cursors: Vec<Cursor> = checkpoints.iter().map(|c| c.cursor.clone()).collect();
        let out = process(node.as_mut(), spec, ctx, batch, &cursors).await?;
        forward(ctx, output, Packet { records: out, checkpoints }).await?;
    }
    let mut retrier = Retrier::new(spec, ctx);
    let rest = loop {
        match guarded(spec, ctx, node.finish(ctx)).await {
            Ok(rest) => break rest,
            Err(error) => retrier.wait_or_fail(error).await?,
        }
    };
    forward(ctx, output, Packet::records(rest)).await
}

/// Holds a checkpoint back until its last copy arrives, so that a node
/// downstream of a fan-out commits a source's position only after every
/// branch has delivered the records before it.
struct Alignment {
    copies: HashMap<String, usize>,
    arrived: HashMap<(Arc<str>, u64), usize>,
}

impl Alignment {
    /// The checkpoints among `incoming` whose every copy has now arrived.
    fn complete(&mut self, incoming: Vec<Checkpoint>) -> Vec<Checkpoint> {
        let mut complete = Vec::new();
        for checkpoint in incoming {
            let expected = self.copies.get(&*checkpoint.origin).copied().unwrap_or(1);
            let key = (checkpoint.origin.clone(), checkpoint.seq);
            let arrived = self.arrived.entry(key.clone()).or_default();
            *arrived += 1;
            if *arrived >= expected {
                self.arrived.remove(&key);
                complete.push(checkpoint);
            }
        }
        complete
    }
}

async fn forward(ctx: &NodeContext, output: &Output, packet: Packet) -> Result<(), NodeError> {
    if packet.records.is_empty() && packet.checkpoints.is_empty() {
        return Ok(());
    }
    ctx.stats.records_out.fetch_add(packet.records.len() as u64, Ordering::Relaxed);
    ctx.watch.sent(&ctx.node_id, &packet.records);
    output.send(packet, &ctx.cancel).await
}

/// Keeps the records for which the node's `when` holds; a record whose
/// expression fails goes to `on_error`.
async fn select_when(spec: &NodeSpec, ctx: &NodeContext, sandbox: &Sandbox, batch: Batch) -> Result<Batch, NodeError> {
    let Some(when) = &spec.when else { return Ok(batch) };
    let mut kept = Vec::with_capacity(batch.len());
    for record in batch {
        match sandbox.eval_condition(&when.condition, &record) {
            Ok(true) => kept.push(record),
            Ok(false) => {}
            Err(error) => ctx.reject(record.to_json(), &format!("\"when\" failed: {error}")).await?,
        }
    }
    Ok(kept)
}

/// Processes a batch with retry; when it still fails and `on_error` lets the
/// run go on, retries record by record so that only the bad records are
/// skipped or dead-lettered.
///
/// `cursors` are committed with the batch; when the batch is split, they
/// are committed after its last record, on their own.
async fn process(
    node: &mut dyn Transform,
    spec: &NodeSpec,
    ctx: &NodeContext,
    batch: Batch,
    cursors: &[Cursor],
) -> Result<Batch, NodeError> {
    let may_need_again = spec.retry.attempts > 1 || spec.on_error != OnError::Fail;
    if !may_need_again {
        return guarded(spec, ctx, node.process_through(batch, cursors, ctx)).await;
    }
    let error = match process_with_retry(node, spec, ctx, &batch, cursors).await {
        Ok(out) => return Ok(out),
        Err(error) if error.stops_run() || spec.on_error == OnError::Fail => return Err(error),
        Err(error) => error,
    };
    let mut out = Vec::new();
    if let [record] = batch.as_slice() {
        ctx.reject(record.to_json(), &error.message).await?;
    } else {
        for record in batch {
            match process_with_retry(node, spec, ctx, std::slice::from_ref(&record), &[]).await {
                Ok(records) => out.extend(records),
                Err(error) if error.stops_run() => return Err(error),
                Err(error) => ctx.reject(record.to_json(), &error.message).await?,
            }
        }
    }
    if !cursors.is_empty() {
        out.extend(process_with_retry(node, spec, ctx, &[], cursors).await?);
    }
    Ok(out)
}

/// Decides, after a failed attempt, whether and when to try again: only
/// retryable errors, at most `retry.attempts` tries, exponential backoff with
/// jitter, cut short by cancellation.
struct Retrier<'a> {
    ctx: &'a NodeContext,
    delays: backon::ExponentialBackoff,
    tries: u32,
}

impl<'a> Retrier<'a> {
    fn new(spec: &NodeSpec, ctx: &'a NodeContext) -> Self {
        let delays = ExponentialBuilder::default()
            .with_min_delay(spec.retry.backoff)
            .with_max_delay(spec.retry.max_backoff)
            .with_max_times(spec.retry.attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        Self { ctx, delays, tries: 1 }
    }

    /// Waits before the next try, or gives the error back when there is none.
    async fn wait_or_fail(&mut self, error: NodeError) -> Result<(), NodeError> {
        if !error.is_retryable() {
            return Err(error);
        }
        let Some(delay) = self.delays.next() else { return Err(error) };
        tracing::warn!(node_id = %self.ctx.node_id, run_id = %self.ctx.run_id, %error, attempt = self.tries, ?delay, "Retrying.");
        self.tries += 1;
        tokio::select! {
            biased;
            () = self.ctx.cancel.cancelled() => Err(NodeError::cancelled()),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }
}

/// Processes one batch, retrying as the node's `retry` allows.
async fn process_with_retry(
    node: &mut dyn Transform,
    spec: &NodeSpec,
    ctx: &NodeContext,
    batch: &[Record],
    cursors: &[Cursor],
) -> Result<Batch, NodeError> {
    let mut retrier = Retrier::new(spec, ctx);
    loop {
        match guarded(spec, ctx, node.process_through(batch.to_vec(), cursors, ctx)).await {
            Ok(out) => return Ok(out),
            Err(error) => retrier.wait_or_fail(error).await?,
        }
    }
}

/// Bounds one attempt by the node's `timeout` and the run's cancellation.
async fn guarded<T>(
    spec: &NodeSpec,
    ctx: &NodeContext,
    attempt: impl Future<Output = Result<T, NodeError>>,
) -> Result<T, NodeError> {
    let limited = async {
        match spec.timeout {
            Some(limit) => tokio::time::timeout(limit, attempt).await.unwrap_or_else(|_| {
                Err(NodeError::transient(format!("timed out after {}", humantime::format_duration(limit))))
            }),
            None => attempt.await,
        }
    };
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(NodeError::cancelled()),
        result = limited => result,
    }
}
