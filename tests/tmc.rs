//! The TMC backup channel end to end: with `trades.sold.increment.get`
//! failing every call, the pushed messages alone bring every changed order
//! into the database, at its latest version, and a message is confirmed only
//! once its order is stored.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orderflow::sim::SimConfig;
use orderflow::store::{RunStatus, Store};
use support::rig::{Rig, SHOP};
use tokio_util::sync::CancellationToken;

const INCREMENT_METHOD: &str = "taobao.trades.sold.increment.get";
const DETAIL_METHOD: &str = "taobao.trade.fullinfo.get";
const CONFIRM_METHOD: &str = "taobao.tmc.messages.confirm";

/// The backup flow with the store held back: its orders are fetched, never
/// stored, as when a run dies between the fetch and the store.
const HELD_FLOW: &str = "flow: held\nshop: tmall-main\nnodes:\n  pushed: {use: tmc_messages, with: {store_wait: 30s}}\n  held: {use: filter, input: pushed, with: {condition: 'false'}}\n  save: {use: store_orders, input: held}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_incremental_channel_broken_the_backup_brings_every_changed_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("tmc.db").display())).await.unwrap();
    let sim = SimConfig { seed: 23, orders: 2_000, days: 30, mutations_per_sec: 30.0, ..SimConfig::default() };
    let rig = Rig::new(sim, store.clone()).await;
    rig.sim.set_method_fault_rate(INCREMENT_METHOD, Some(1.0));
    rig.sim.pause_mutations();
    let before: BTreeMap<i64, _> =
        rig.sim.truth().orders.into_iter().map(|o| (o.tid, (o.modified, o.status))).collect();
    rig.sim.resume_mutations();
    let backup = rig.example("taobao-tmc-backup.yaml");
    let started = Instant::now();

    // A run stopped between the fetch and the store confirms nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = rig.flow("held.yaml", HELD_FLOW);
    let cancel = CancellationToken::new();
    let stopper = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            cancel.cancel();
        })
    };
    let details_before = rig.sim.calls().method(DETAIL_METHOD);
    let report = rig.engine.run(&held, "test", cancel).await.unwrap();
    stopper.await.unwrap();
    assert_eq!(report.status, RunStatus::Cancelled, "{:?}", report.error);
    let fetched_unstored = rig.sim.calls().method(DETAIL_METHOD) - details_before;
    assert!(fetched_unstored > 0, "the held run fetched orders");
    // Every fetched order still has its message waiting.
    assert!(
        rig.sim.pending_messages() as u64 >= fetched_unstored,
        "the fetched orders' messages were confirmed before any store: {} pending, {fetched_unstored} fetched",
        rig.sim.pending_messages()
    );
    assert!(store.stored_orders("taobao", SHOP).await.unwrap().is_empty());

    // The backup runs while the shop keeps changing …
    let mut runs = 0;
    while started.elapsed() < Duration::from_secs(6) {
        rig.run(&backup).await;
        runs += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // … then the shop goes quiet and the backup drains the queue.
    rig.sim.pause_mutations();
    // A change already under way when the pause came still lands.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        if rig.sim.pending_messages() == 0 {
            break;
        }
        rig.run(&backup).await;
    }
    let truth = rig.sim.truth();
    assert_eq!(rig.sim.pending_messages(), 0, "every message confirmed");

    let changed: Vec<_> =
        truth.orders.iter().filter(|o| before.get(&o.tid) != Some(&(o.modified, o.status.clone()))).collect();
    assert!(changed.len() > 100, "the shop changed enough to tell: {}", changed.len());
    let stored: BTreeMap<i64, _> =
        store.stored_orders("taobao", SHOP).await.unwrap().into_iter().map(|o| (o.tid, o)).collect();
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for order in &changed {
        match stored.get(&order.tid) {
            None => missing.push(order.tid),
            Some(s) if (s.modified, &s.status) != (order.modified, &order.status) => stale.push(order.tid),
            Some(_) => {}
        }
    }
    assert!(
        missing.is_empty(),
        "{} changed orders missing, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(stale.is_empty(), "{} changed orders stale, e.g. {:?}", stale.len(), &stale[..stale.len().min(5)]);
    assert!(stored.keys().all(|tid| truth.order(*tid).is_some()), "only orders the shop has");
    let calls = rig.sim.calls();
    assert_eq!(calls.method(INCREMENT_METHOD), 0, "the backup never needed the broken incremental listing: {calls:?}");
    eprintln!(
        "tmc: {} changed orders stored by {runs} runs + drain in {:.1}s; {} detail calls, {} consumes, {} confirms",
        changed.len(),
        started.elapsed().as_secs_f64(),
        calls.method(DETAIL_METHOD),
        calls.method("taobao.tmc.messages.consume"),
        calls.method(CONFIRM_METHOD),
    );
}
