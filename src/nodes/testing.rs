//! Helpers for node unit tests: run one node outside a flow.

use std::sync::Arc;

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{BuildContext, NodeError, Source, Transform};
use crate::engine::{Emitter, NodeContext, NodeStats, Output, Packet};
use crate::flow::OnError;
use crate::record::{Batch, Record};
use crate::script::{Limits, Sandbox};
use crate::store::{DeadLetter, Store};

/// A build context rooted in the current folder with a default sandbox.
pub(crate) fn build_ctx() -> BuildContext {
    BuildContext::new(".", Sandbox::new(Limits::default()))
}

/// A context for running a node outside a flow.
pub(crate) fn node_ctx(store: &Store, on_error: OnError) -> NodeContext {
    NodeContext {
        node_id: "under_test".into(),
        run_id: "test-run".into(),
        flow: "test".into(),
        store: store.clone(),
        cancel: CancellationToken::new(),
        batch_size: 500,
        on_error,
        stats: Arc::new(NodeStats::default()),
    }
}

/// Feeds `input` as one batch (then `finish`) through a transform backed by
/// `store`; returns what it sent on, as JSON.
pub(crate) async fn run_transform_in(
    store: &Store,
    mut node: Box<dyn Transform>,
    input: Vec<Json>,
) -> Result<Vec<Json>, NodeError> {
    let ctx = node_ctx(store, OnError::Fail);
    let batch: Batch = input.into_iter().filter_map(Record::from_value).collect();
    let mut out = node.process(batch, &ctx).await?;
    out.extend(node.finish(&ctx).await?);
    Ok(out.iter().map(Record::to_json).collect())
}

/// Like [`run_transform_in`] with a throwaway in-memory store.
pub(crate) async fn run_transform(node: Box<dyn Transform>, input: Vec<Json>) -> Result<Vec<Json>, NodeError> {
    let store = Store::connect("sqlite::memory:").await.expect("in-memory SQLite");
    run_transform_in(&store, node, input).await
}

/// Runs a source to its end under `on_error`; returns its batches and the
/// dead letters it left.
pub(crate) async fn run_source(
    mut node: Box<dyn Source>,
    on_error: OnError,
) -> Result<(Vec<Batch>, Vec<DeadLetter>), NodeError> {
    let store = Store::connect("sqlite::memory:").await.expect("in-memory SQLite");
    let ctx = node_ctx(&store, on_error);
    let (tx, mut rx) = mpsc::channel(1024);
    let output = Output { senders: vec![tx] };
    node.run(&mut Emitter::new(&ctx, &output)).await?;
    drop(output);
    let mut batches = Vec::new();
    while let Some(Packet { records, .. }) = rx.recv().await {
        batches.push(records);
    }
    let letters = store.dead_letters("test-run").await.expect("dead letters");
    Ok((batches, letters))
}
