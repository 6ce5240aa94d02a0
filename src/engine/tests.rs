//! Topology tests: fan-out, fan-in, back-pressure, failure, retry, timeout,
//! cancellation, dead letters and error handlers, on real flows.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::flow::{CompileEnv, compile};
use crate::nodes::{BuildContext, Built, NodeError, NodeType, Role, Source, Transform};
use crate::record::Batch;
use crate::script::{Limits, Sandbox};
use crate::store::{Cursor, NodeStatus};

struct Harness {
    _dir: tempfile::TempDir,
    registry: Registry,
    build: BuildContext,
    store: Store,
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let build = BuildContext::new(dir.path(), Sandbox::new(Limits::default()));
        Self { _dir: dir, registry: Registry::builtin(), build, store }
    }

    fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.build.flow_dir.join(name), contents).unwrap();
    }

    fn flow(&self, yaml: &str) -> Flow {
        let shops = BTreeSet::new();
        let env = CompileEnv { registry: &self.registry, build: &self.build, shops: &shops };
        compile(Path::new("test.yaml"), yaml, &env).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn run(&self, yaml: &str, options: EngineOptions) -> RunReport {
        let flow = self.flow(yaml);
        let engine = Engine::new(self.registry.clone(), self.build.clone(), self.store.clone(), options);
        engine.run(&flow, "test", CancellationToken::new()).await.unwrap()
    }

    fn node<'a>(report: &'a RunReport, id: &str) -> &'a NodeRunRecord {
        report.nodes.iter().find(|n| n.node_id == id).unwrap_or_else(|| panic!("no node {id}"))
    }
}

fn jsonl(n: usize) -> String {
    (0..n).map(|i| format!("{{\"n\":{i}}}\n")).collect()
}

#[tokio::test]
async fn a_diamond_fans_out_and_in_and_is_recorded() {
    let h = Harness::new().await;
    h.write("in.jsonl", &jsonl(1000));
    let report = h
        .run(
            "flow: diamond\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  b: {use: filter, input: a, with: {condition: 'record.n % 2 == 0'}}\n  c: {use: script, input: a, with: {source: 'record.c = true;'}}\n  d: {use: log, input: [b, c], with: {level: debug}}\n",
            EngineOptions { batch_size: 64, channel_capacity: 2 },
        )
        .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(Harness::node(&report, "a").records_out, 1000);
    assert_eq!(Harness::node(&report, "b").records_out, 500);
    assert_eq!(Harness::node(&report, "c").records_out, 1000);
    assert_eq!(Harness::node(&report, "d").records_in, 1500);
    let recorded = h.store.run_nodes(&report.run_id).await.unwrap();
    assert_eq!(recorded.len(), 4);
    let d = recorded.iter().find(|n| n.node_id == "d").unwrap();
    assert_eq!((d.records_in, d.status), (1500, NodeStatus::Succeeded));
    let runs = h.store.recent_runs(Some("diamond"), 5).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Succeeded);
}

#[tokio::test]
async fn when_routes_records_to_the_nodes_that_want_them() {
    let h = Harness::new().await;
    h.write("in.jsonl", &jsonl(10));
    let report = h
        .run(
            "flow: route\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  small: {use: log, input: a, when: record.n < 3}\n  big: {use: log, input: a, when: record.n >= 3}\n",
            EngineOptions::default(),
        )
        .await;
    assert_eq!(Harness::node(&report, "small").records_out, 3);
    assert_eq!(Harness::node(&report, "big").records_out, 7);
}

/// A source that emits `batches` single-record batches and counts them.
struct CountingSource {
    batches: u64,
    emitted: Arc<AtomicU64>,
}

#[async_trait]
impl Source for CountingSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        for n in 0..self.batches {
            out.emit(vec![Record::from_value(json!({ "n": n })).unwrap()]).await?;
            self.emitted.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A sink that sleeps per batch and notes how far ahead the source got.
struct SleepingSink {
    received: u64,
    emitted: Arc<AtomicU64>,
    max_lead: Arc<AtomicU64>,
}

#[async_trait]
impl Transform for SleepingSink {
    async fn process(&mut self, batch: Batch, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        self.received += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
        let lead = self.emitted.load(Ordering::SeqCst).saturating_sub(self.received);
        self.max_lead.fetch_max(lead, Ordering::SeqCst);
        Ok(batch)
    }
}

#[tokio::test]
async fn a_sleeping_sink_slows_its_source_instead_of_buffering() {
    let mut h = Harness::new().await;
    let emitted = Arc::new(AtomicU64::new(0));
    let max_lead = Arc::new(AtomicU64::new(0));
    let (e1, e2, lead) = (emitted.clone(), emitted.clone(), max_lead.clone());
    h.registry.add(NodeType::custom(
        "counting_source",
        Role::Source,
        "test",
        json!({"type": "object"}),
        move |_, _| Ok(Built::Source(Box::new(CountingSource { batches: 200, emitted: e1.clone() }))),
    ));
    h.registry.add(NodeType::custom(
        "sleeping_sink",
        Role::Transform,
        "test",
        json!({"type": "object"}),
        move |_, _| {
            Ok(Built::Transform(Box::new(SleepingSink { received: 0, emitted: e2.clone(), max_lead: lead.clone() })))
        },
    ));
    let capacity = 3;
    let report = h
        .run(
            "flow: pressure\nnodes:\n  src: {use: counting_source}\n  sink: {use: sleeping_sink, input: src}\n",
            EngineOptions { batch_size: 1, channel_capacity: capacity },
        )
        .await;
    assert_eq!(report.status, RunStatus::Succeeded);
    assert_eq!(Harness::node(&report, "sink").records_in, 200);
    // The source may be ahead by what the channel holds, plus the batch the
    // sink is working on and the one the source is about to send.
    let lead = max_lead.load(Ordering::SeqCst);
    assert!(
        lead <= capacity as u64 + 2,
        "the source ran {lead} batches ahead of a sink behind a {capacity}-batch channel"
    );
}

#[tokio::test]
async fn an_endless_script_fails_the_run_naming_the_node_and_stops_every_task() {
    let h = Harness::new().await;
    h.write("in.jsonl", &jsonl(100_000));
    let report = h
        .run(
            "flow: spin\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  spin: {use: script, input: a, with: {source: 'loop {}'}}\n  other: {use: log, input: a, with: {level: debug}}\n",
            EngineOptions { batch_size: 10, channel_capacity: 1 },
        )
        .await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.clone().unwrap();
    assert!(error.starts_with("node \"spin\": script failed:"), "{error}");
    assert!(error.contains("operations"), "{error}");
    assert_eq!(Harness::node(&report, "spin").status, NodeStatus::Failed);
    // The reader was cut short rather than left blocked on a full channel.
    assert!(Harness::node(&report, "a").records_out < 100_000);
    let runs = h.store.recent_runs(Some("spin"), 1).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(runs[0].error.as_deref().unwrap_or_default().contains("spin"));
}

#[tokio::test]
async fn dead_letter_keeps_the_bad_records_and_lets_the_good_ones_through() {
    let h = Harness::new().await;
    h.write("in.jsonl", &jsonl(10));
    let report = h
        .run(
            "flow: letters\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  check:\n    use: script\n    input: a\n    on_error: dead_letter\n    with: {source: 'if record.n == 3 || record.n == 7 { throw \"bad order \" + record.n; }'}\n  out: {use: log, input: check}\n",
            EngineOptions::default(),
        )
        .await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(Harness::node(&report, "out").records_in, 8);
    assert_eq!(Harness::node(&report, "check").errors, 2);
    let letters = h.store.dead_letters(&report.run_id).await.unwrap();
    let mut bad: Vec<i64> = letters.iter().map(|l| l.record["n"].as_i64().unwrap()).collect();
    bad.sort_unstable();
    assert_eq!(bad, vec![3, 7]);
    assert!(letters[0].reason.contains("bad order"), "{}", letters[0].reason);
}

/// Fails the first `failures` calls with a transient error.
struct Flaky {
    failures: usize,
    calls: Arc<AtomicUsize>,
}

#[async_trait]
impl Transform for Flaky {
    async fn process(&mut self, batch: Batch, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call < self.failures { Err(NodeError::transient("connection reset")) } else { Ok(batch) }
    }
}

fn flaky(h: &mut Harness, failures: usize) -> Arc<AtomicUsize> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    h.registry.add(NodeType::custom("flaky", Role::Transform, "test", json!({"type": "object"}), move |_, _| {
        Ok(Built::Transform(Box::new(Flaky { failures, calls: counter.clone() })))
    }));
    calls
}

#[tokio::test]
async fn retryable_failures_are_retried_with_backoff() {
    let mut h = Harness::new().await;
    let calls = flaky(&mut h, 2);
    h.write("in.jsonl", &jsonl(1));
    let report = h
        .run(
            "flow: retry\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  f: {use: flaky, input: a, retry: {attempts: 3, backoff: 10ms}}\n",
            EngineOptions::default(),
        )
        .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn retries_stop_when_attempts_are_used_up() {
    let mut h = Harness::new().await;
    let calls = flaky(&mut h, 10);
    h.write("in.jsonl", &jsonl(1));
    let report = h
        .run(
            "flow: retry\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  f: {use: flaky, input: a, retry: {attempts: 2, backoff: 10ms}}\n",
            EngineOptions::default(),
        )
        .await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(report.error.as_deref(), Some("node \"f\": connection reset"));
}

/// Never answers.
struct Stuck;

#[async_trait]
impl Transform for Stuck {
    async fn process(&mut self, _batch: Batch, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        std::future::pending().await
    }
}

fn add_stuck(h: &mut Harness) {
    h.registry.add(NodeType::custom("stuck", Role::Transform, "test", json!({"type": "object"}), |_, _| {
        Ok(Built::Transform(Box::new(Stuck)))
    }));
}

#[tokio::test]
async fn a_timeout_ends_a_stuck_node_and_the_error_handlers_run() {
    let mut h = Harness::new().await;
    add_stuck(&mut h);
    h.write("in.jsonl", &jsonl(1));
    let report = h
        .run(
            "flow: stuck\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  s: {use: stuck, input: a, timeout: 50ms}\nerrors:\n  alert: {use: log, with: {level: error}}\n  keep:\n    use: store\n    input: alert\n    with: {table: failures, key: [run_id], columns: {run_id: text, error: text}}\n",
            EngineOptions::default(),
        )
        .await;
    assert_eq!(report.status, RunStatus::Failed);
    assert_eq!(report.error.as_deref(), Some("node \"s\": timed out after 50ms"));
    assert_eq!(Harness::node(&report, "keep").records_out, 1);
    let spec = crate::store::TableSpec::new(
        "failures",
        vec![
            crate::store::ColumnSpec { name: "error".into(), kind: crate::store::ColumnKind::Text },
            crate::store::ColumnSpec { name: "run_id".into(), kind: crate::store::ColumnKind::Text },
        ],
        vec!["run_id".into()],
        None,
    )
    .unwrap();
    let rows = h.store.fetch_all(&spec).await.unwrap();
    assert_eq!(rows[0]["run_id"], json!(report.run_id));
    assert_eq!(rows[0]["error"], json!("node \"s\": timed out after 50ms"));
}

#[tokio::test]
async fn cancelling_a_run_ends_it_promptly_as_cancelled() {
    let mut h = Harness::new().await;
    add_stuck(&mut h);
    h.write("in.jsonl", &jsonl(1));
    let flow = h.flow("flow: c\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  s: {use: stuck, input: a}\n");
    let engine = Engine::new(h.registry.clone(), h.build.clone(), h.store.clone(), EngineOptions::default());
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let report =
        tokio::time::timeout(Duration::from_secs(5), engine.run(&flow, "test", cancel)).await.unwrap().unwrap();
    assert_eq!(report.status, RunStatus::Cancelled);
    assert_eq!(Harness::node(&report, "s").status, NodeStatus::Cancelled);
}

#[tokio::test]
async fn under_skip_a_failing_source_stops_alone_and_the_run_is_partial() {
    let h = Harness::new().await;
    h.write("good.jsonl", &jsonl(5));
    let report = h
        .run(
            "flow: skip\nnodes:\n  good: {use: read_jsonl, with: {path: good.jsonl}}\n  missing: {use: read_jsonl, on_error: skip, with: {path: nope.jsonl}}\n  out: {use: log, input: [good, missing]}\n",
            EngineOptions::default(),
        )
        .await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(Harness::node(&report, "missing").status, NodeStatus::Skipped);
    assert_eq!(Harness::node(&report, "out").records_in, 5);
}

/// A source that emits `batches` batches of ten records, each followed by a
/// cursor holding the batch's number.
struct CursorSource {
    batches: i64,
}

#[async_trait]
impl Source for CursorSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        for batch in 0..self.batches {
            let records = (0..10).map(|i| Record::from_value(json!({ "n": batch * 10 + i })).unwrap()).collect();
            let cursor = Cursor { platform: "p".into(), shop: "s".into(), stream: "x".into(), value: json!(batch) };
            out.emit_through(records, cursor).await?;
        }
        Ok(())
    }
}

/// A sink that notes, for every cursor handed to it, how many records it had
/// received by then.
struct CursorSink {
    received: u64,
    commits: Arc<std::sync::Mutex<Vec<(u64, i64)>>>,
}

#[async_trait]
impl Transform for CursorSink {
    async fn process(&mut self, batch: Batch, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        self.received += batch.len() as u64;
        Ok(batch)
    }

    async fn process_through(
        &mut self,
        batch: Batch,
        cursors: &[Cursor],
        ctx: &NodeContext,
    ) -> Result<Batch, NodeError> {
        let batch = self.process(batch, ctx).await?;
        let mut commits = self.commits.lock().unwrap();
        commits.extend(cursors.iter().map(|c| (self.received, c.value.as_i64().unwrap())));
        Ok(batch)
    }
}

fn add_cursor_nodes(h: &mut Harness, batches: i64) -> Arc<std::sync::Mutex<Vec<(u64, i64)>>> {
    let commits = Arc::new(std::sync::Mutex::new(Vec::new()));
    h.registry.add(NodeType::custom("cursor_source", Role::Source, "test", json!({"type": "object"}), move |_, _| {
        Ok(Built::Source(Box::new(CursorSource { batches })))
    }));
    let sink_commits = commits.clone();
    h.registry.add(NodeType::custom("cursor_sink", Role::Transform, "test", json!({"type": "object"}), move |_, _| {
        Ok(Built::Transform(Box::new(CursorSink { received: 0, commits: sink_commits.clone() })))
    }));
    commits
}

#[tokio::test]
async fn a_cursor_reaches_the_sink_behind_the_records_it_covers() {
    let mut h = Harness::new().await;
    let commits = add_cursor_nodes(&mut h, 20);
    let report = h
        .run(
            "flow: chain\nnodes:\n  src: {use: cursor_source}\n  odd: {use: filter, input: src, with: {condition: 'record.n % 2 == 1'}}\n  none: {use: filter, input: odd, with: {condition: 'false'}}\n  sink: {use: cursor_sink, input: none}\n",
            EngineOptions { batch_size: 10, channel_capacity: 1 },
        )
        .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    // Every record was filtered out before the sink, yet each cursor still
    // arrives, once, in order.
    let commits = commits.lock().unwrap().clone();
    assert_eq!(commits, (0..20).map(|batch| (0, batch)).collect::<Vec<_>>());
}

#[tokio::test]
async fn behind_a_fan_out_a_cursor_waits_for_every_branch() {
    let mut h = Harness::new().await;
    let commits = add_cursor_nodes(&mut h, 50);
    let report = h
        .run(
            "flow: diamond\nnodes:\n  src: {use: cursor_source}\n  even: {use: filter, input: src, with: {condition: 'record.n % 2 == 0'}}\n  slow: {use: script, input: src, with: {source: 'let i = 0; while i < 2000 { i += 1; }'}}\n  sink: {use: cursor_sink, input: [even, slow]}\n",
            EngineOptions { batch_size: 10, channel_capacity: 1 },
        )
        .await;
    assert_eq!(report.status, RunStatus::Succeeded, "{report:?}");
    let commits = commits.lock().unwrap().clone();
    assert_eq!(commits.iter().map(|(_, batch)| *batch).collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
    for (received, batch) in commits {
        // Both branches' records up to this cursor: 5 even + 10 from `slow` per batch.
        let covered = 15 * (batch as u64 + 1);
        assert!(received >= covered, "cursor {batch} committed after {received} records, before {covered}");
    }
}

/// The "one bad record never halts a shop" case: a page carrying a record
/// the connector could not read (tid -5, status 7), an order modified in
/// 2099, and an order whose line oid an order already stored holds.
#[tokio::test]
async fn bad_records_are_set_aside_while_the_page_is_stored_and_the_cursor_moves() {
    use crate::nodes::testing::{FakeShop, fake_item, fake_order};
    use crate::platforms::Order;
    use crate::platforms::Rejected;
    use crate::store::DeadLetterState;

    let mut h = Harness::new().await;
    let at = Utc::now() - chrono::Duration::minutes(30);
    let shop = FakeShop::new((1..=5).map(|tid| (tid, at)), None);
    shop.oids.lock().unwrap().extend((1..=5).map(|tid| (tid, vec![100 + tid])));
    // Order 99, stored by an earlier sync, holds oid 103, which order 3 now lists.
    let holder = Order { items: vec![fake_item(103)], ..fake_order(99, (at, at)) };
    h.store.save_orders(std::slice::from_ref(&holder), &[]).await.unwrap();
    shop.rejects.lock().unwrap().push(Rejected {
        raw: json!({"tid": -5, "status": 7}),
        reason: "tid -5 is not an order id, status 7 is not a status".into(),
    });
    let far_future = "2099-01-01T00:00:00Z".parse().unwrap();
    shop.strays.lock().unwrap().push(fake_order(6, (at, far_future)));
    h.build.platforms.insert("s", shop.clone());
    let shops = BTreeSet::from(["s".to_owned()]);
    let env = CompileEnv { registry: &h.registry, build: &h.build, shops: &shops };
    let yaml = "flow: shop-sync\nshop: s\nnodes:\n  changed: {use: fetch_increment}\n  save: {use: store_orders, input: changed}\n";
    let flow = compile(Path::new("test.yaml"), yaml, &env).unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(h.registry.clone(), h.build.clone(), h.store.clone(), EngineOptions::default());

    let report = engine.run(&flow, "test", CancellationToken::new()).await.unwrap();
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    let stored: Vec<i64> = h.store.stored_orders("taobao", "s").await.unwrap().iter().map(|o| o.tid).collect();
    assert_eq!(stored, [1, 2, 4, 5, 99], "the rest of the page is stored");
    let stream = crate::sync::flow_stream(crate::sync::INCREMENT_STREAM, "shop-sync", "changed");
    let cursor = h.store.load_cursor("taobao", "s", &stream).await.unwrap();
    let until = cursor.as_ref().and_then(crate::sync::modified_until).expect("the cursor moved");
    assert!(until > at, "cursor {until} is past the orders read");

    let letters = h.store.dead_letters(&report.run_id).await.unwrap();
    let reasons: Vec<(&str, &str)> = letters.iter().map(|l| (l.node_id.as_str(), l.reason.as_str())).collect();
    assert_eq!(letters.len(), 3, "each set aside once, though page 1 is read twice: {reasons:?}");
    assert_eq!(letters[0].record, json!({"tid": -5, "status": 7}));
    assert!(reasons[1].0 == "changed" && reasons[1].1.contains("modified 2099-01-01"), "{reasons:?}");
    assert_eq!(reasons[2].0, "save");
    assert!(reasons[2].1.starts_with("order 3 could not be stored") && reasons[2].1.contains("oid"), "{reasons:?}");
    let anomalies = h.store.anomaly_counts().await.unwrap();
    assert_eq!(anomalies, [("taobao".into(), "s".into(), "wrong_type".into(), 2)]);

    // The next run reads the same bad records again (lookback): not set aside twice.
    let again = engine.run(&flow, "test", CancellationToken::new()).await.unwrap();
    assert!(h.store.dead_letters(&again.run_id).await.unwrap().is_empty(), "{again:?}");

    let open = h.store.list_dead_letters(Some("shop-sync"), Some(DeadLetterState::Open), 10).await.unwrap();
    let id_of = |tid: i64| open.iter().find(|l| l.letter.record["tid"] == json!(tid)).map(|l| l.id).unwrap();
    let error = h.store.replay_dead_letter(id_of(3), Utc::now()).await.unwrap_err();
    assert!(error.to_string().contains("UNIQUE constraint failed: order_items"), "{error}");
    let error = h.store.replay_dead_letter(id_of(-5), Utc::now()).await.unwrap_err();
    assert!(matches!(error, StoreError::DeadLetter { .. }), "{error}");

    // The fix: order 99 no longer holds oid 103. The replay stores order 3.
    let fixed = Order { items: vec![fake_item(199)], ..fake_order(99, (at, at + chrono::Duration::seconds(1))) };
    h.store.save_orders(&[fixed], &[]).await.unwrap();
    h.store.replay_dead_letter(id_of(3), Utc::now()).await.unwrap();
    let items: Vec<i64> = h.store.order_items_of("taobao", "s", 3).await.unwrap().iter().map(|i| i.oid).collect();
    assert_eq!(items, [103]);
    let replayed = h.store.dead_letter(id_of(3)).await.unwrap().unwrap();
    assert_eq!(replayed.state, DeadLetterState::Replayed);
    assert_eq!(h.store.open_dead_letters_per_flow().await.unwrap(), [("shop-sync".to_owned(), 2)]);
}

/// A run under a lease another worker has taken over writes nothing: not its
/// table rows, not even the dead letters its `on_error` would keep, and fails
/// naming the lease. Under the current lease the same flow writes.
#[tokio::test]
async fn a_run_whose_lease_was_taken_over_writes_nothing() {
    let h = Harness::new().await;
    h.write("in.jsonl", &jsonl(10));
    let flow = h.flow(
        "flow: fenced\nnodes:\n  a: {use: read_jsonl, with: {path: in.jsonl}}\n  check:\n    use: script\n    input: a\n    on_error: dead_letter\n    with: {source: 'if record.n == 3 { throw \"bad\"; }'}\n  keep:\n    use: store\n    input: check\n    on_error: skip\n    with: {table: kept, key: [n], columns: {n: integer}}\n",
    );
    let engine = Engine::new(h.registry.clone(), h.build.clone(), h.store.clone(), EngineOptions::default());
    let stale = h.store.claim_lease("fenced", "", "worker-a", Duration::from_millis(1)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let current = h.store.claim_lease("fenced", "", "worker-b", Duration::from_secs(30)).await.unwrap().unwrap();

    let report = engine.run_fenced(&flow, "test", CancellationToken::new(), stale).await.unwrap();
    assert_eq!(report.status, RunStatus::Failed, "{report:?}");
    let error = report.error.clone().unwrap_or_default();
    assert!(error.contains("fenced off") && error.contains("epoch 2, claimed by worker-b"), "{error}");
    assert!(h.store.dead_letters(&report.run_id).await.unwrap().is_empty(), "the dead letter was fenced too");
    let recorded = h.store.run(&report.run_id).await.unwrap().unwrap();
    assert_eq!((recorded.status, recorded.error), (RunStatus::Failed, report.error.clone()), "the run is recorded");

    let report = engine.run_fenced(&flow, "test", CancellationToken::new(), current).await.unwrap();
    assert_eq!(report.status, RunStatus::Partial, "{report:?}");
    assert_eq!(h.store.dead_letters(&report.run_id).await.unwrap().len(), 1);
    assert_eq!(Harness::node(&report, "keep").records_out, 9);
}
