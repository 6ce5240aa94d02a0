//! End to end against the simulator: the example flows, the TOP client and
//! the store, with the shop changing while it is read. Each test ends by
//! comparing the database with the simulator's ground truth.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use orderflow::config::Config;
use orderflow::engine::{Engine, EngineOptions, RunReport};
use orderflow::flow::{CompileEnv, Flow, compile};
use orderflow::nodes::{BuildContext, Registry};
use orderflow::platforms::Platforms;
use orderflow::script::{Limits, Sandbox};
use orderflow::sim::{SimConfig, SimHandle, Simulator};
use orderflow::store::{RunStatus, Store};
use support::test_stores;
use tokio_util::sync::CancellationToken;

const SHOP: &str = "tmall-main";

/// A simulator, and an engine whose `tmall-main` shop is that simulator.
struct Rig {
    sim: SimHandle,
    engine: Engine,
    config: Config,
    registry: Registry,
    build: BuildContext,
}

impl Rig {
    async fn new(sim: SimConfig, store: Store) -> Self {
        let sim_handle = Simulator::start(sim.clone(), ([127, 0, 0, 1], 0).into()).await.expect("simulator starts");
        let source = format!(
            "shops:\n  {SHOP}:\n    platform: taobao\n    gateway: {}\n    app_key: {}\n    app_secret: ${{SECRET}}\n    session: ${{SESSION}}\n    rate_limit_per_min: 1000000\n",
            sim_handle.gateway_url(),
            sim.app_key
        );
        let env =
            HashMap::from([("SECRET".to_owned(), sim.app_secret.clone()), ("SESSION".to_owned(), sim.session.clone())]);
        let config = Config::parse(Path::new("test.yaml"), &source, &env).expect("config");
        let mut build = BuildContext::new(env!("CARGO_MANIFEST_DIR"), Sandbox::new(Limits::default()));
        build.platforms = Platforms::from_config(&config).expect("platforms");
        let registry = Registry::builtin();
        let engine = Engine::new(registry.clone(), build.clone(), store, EngineOptions::default());
        Self { sim: sim_handle, engine, config, registry, build }
    }

    fn flow(&self, name: &str, source: &str) -> Flow {
        let shops = self.config.shop_names();
        let env = CompileEnv { registry: &self.registry, build: &self.build, shops: &shops };
        compile(Path::new(name), source, &env).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn example(&self, file: &str) -> Flow {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows").join(file);
        let source = std::fs::read_to_string(&path).expect("example flow");
        self.flow(file, &source)
    }

    async fn run(&self, flow: &Flow) -> RunReport {
        let report = self.engine.run(flow, "test", CancellationToken::new()).await.expect("run recorded");
        assert_eq!(report.status, RunStatus::Succeeded, "{}: {:?}", flow.name, report.error);
        report
    }

    fn list_calls(&self) -> u64 {
        let calls = self.sim.calls();
        ["taobao.trades.sold.get", "taobao.trades.sold.increment.get"]
            .iter()
            .map(|m| calls.by_method.get(*m).copied().unwrap_or(0))
            .sum()
    }

    /// Asserts the store holds exactly the simulator's orders, each at its
    /// current status and version.
    async fn assert_matches_truth(&self, store: &Store, label: &str) {
        let truth = self.sim.truth().orders;
        let stored = store.stored_orders("taobao", SHOP).await.expect("stored orders");
        let stored: BTreeMap<i64, _> = stored.into_iter().map(|o| (o.tid, o)).collect();
        let mut missing = Vec::new();
        let mut stale = Vec::new();
        for order in &truth {
            match stored.get(&order.tid) {
                None => missing.push(order.tid),
                Some(s) if s.status != order.status || s.modified != order.modified => {
                    stale.push((order.tid, s.status.clone(), order.status.clone(), s.modified, order.modified))
                }
                Some(s) => assert_eq!(s.items, order.items.len(), "{label}: items of {}", order.tid),
            }
        }
        assert!(
            missing.is_empty(),
            "{label}: {} orders missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert!(stale.is_empty(), "{label}: {} orders stale, e.g. {:?}", stale.len(), &stale[..stale.len().min(3)]);
        assert_eq!(stored.len(), truth.len(), "{label}: orders the shop does not have");
    }
}

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
