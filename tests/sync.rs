//! End to end against the simulator: the example flows, the TOP client and
//! the store, with the shop changing while it is read. Each test ends by
//! comparing the database with the simulator's ground truth.

mod support;

use std::time::Duration;

use orderflow::sim::SimConfig;
use orderflow::store::Store;
use support::rig::Rig;
use support::test_stores;

fn sim_config(orders: usize, mutations_per_sec: f64) -> SimConfig {
    // 80 days: the whole shop is inside TOP's 90-day horizon.
    SimConfig { seed: 7, orders, days: 80, mutations_per_sec, ..SimConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_orders_changing_while_synced_end_equal_to_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("sync.db").display())).await.unwrap();
    let rig = Rig::new(sim_config(20_000, 50.0), store.clone()).await;
    rig.run(&rig.example("taobao-initial-full.yaml")).await;
    let incremental = rig.example("taobao-incremental.yaml");
    rig.run(&incremental).await;
    let truth = rig.sim.truth();
    let changed = truth.orders.iter().filter(|o| o.modified > truth.anchor).count();
    assert!(changed > 50, "the shop should have changed during the sync, {changed} orders changed");
    rig.sim.pause_mutations();
    // Windows end a second before the current one: wait until the last
    // change is more than a second old.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    rig.run(&incremental).await;
    rig.assert_matches_truth(&store, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_ends_equal_to_a_changing_shop() {
    for test_store in test_stores().await {
        let rig = Rig::new(sim_config(2_000, 30.0), test_store.store.clone()).await;
        rig.run(&rig.example("taobao-initial-full.yaml")).await;
        let incremental = rig.example("taobao-incremental.yaml");
        rig.run(&incremental).await;
        rig.sim.pause_mutations();
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        rig.run(&incremental).await;
        rig.assert_matches_truth(&test_store.store, test_store.label).await;
        rig.sim.shutdown().await;
        test_store.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changed_orders_cost_at_most_eleven_list_calls() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("calls.db").display())).await.unwrap();
    let rig = Rig::new(sim_config(3_000, 0.0), store.clone()).await;
    rig.run(&rig.example("taobao-initial-full.yaml")).await;
    // The shop's own history ends at the simulator's start; wait past the
    // lookback's reach of it so that only the changes below are in the window.
    let incremental = rig.flow(
        "increment-only.yaml",
        "flow: increment-only\nshop: tmall-main\nnodes:\n  changed: {use: fetch_increment, with: {lookback: 1s, page_size: 100}}\n  fresh: {use: dedupe, input: changed}\n  save: {use: store_orders, input: fresh}\n",
    );
    rig.run(&incremental).await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    rig.sim.mutate_now(1_000);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let before = rig.list_calls();
    let report = rig.run(&incremental).await;
    let list_calls = rig.list_calls() - before;
    let stored = report.nodes.iter().find(|n| n.node_id == "save").map_or(0, |n| n.records_in);
    println!("{stored} changed orders read with {list_calls} list calls");
    assert!(stored >= 900, "mutate_now(1000) should change about 1000 orders, {stored} stored");
    assert!(list_calls <= 11, "{list_calls} list calls for {stored} orders");
    assert_eq!(rig.sim.calls().by_method.get("taobao.trade.fullinfo.get").copied().unwrap_or(0), 0);
    rig.assert_matches_truth(&store, "sqlite").await;
}
