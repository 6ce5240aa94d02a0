//! A backfill killed with SIGKILL midway (a real child process), then run
//! again: it resumes from its last committed page, and the database ends
//! equal to the shop.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orderflow::nodes::fetch_full::Backfill;
use orderflow::sim::{SimConfig, Simulator};
use orderflow::store::Store;
use orderflow::sync::FULL_STREAM;

const SHOP: &str = "tmall-main";
const LIST_CREATED: &str = "taobao.trades.sold.get";

fn backfill(config: &Path, sim: &SimConfig) -> Child {
    let flow = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/taobao-initial-full.yaml");
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .arg("--config")
        .arg(config)
        .arg("run")
        .arg(flow)
        .env("SIM_SECRET", &sim.app_secret)
        .env("SIM_SESSION", &sim.session)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("orderflow starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_killed_midway_resumes_and_ends_equal_to_the_shop() {
    // Slow answers make the backfill last long enough to be killed midway.
    let sim_config =
        SimConfig { seed: 11, orders: 4_000, days: 80, latency: Duration::from_millis(60), ..SimConfig::default() };
    let sim = Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await.expect("simulator");
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("resume.db").display());
    let config = dir.path().join("orderflow.yaml");
    std::fs::write(
        &config,
        format!(
            "database: {database}\nshops:\n  {SHOP}:\n    platform: taobao\n    gateway: {}\n    app_key: {}\n    app_secret: ${{SIM_SECRET}}\n    session: ${{SIM_SESSION}}\n    rate_limit_per_min: 1000000\n",
            sim.gateway_url(),
            sim_config.app_key
        ),
    )
    .unwrap();

    let store = Store::connect(&database).await.expect("database");
    let mut child = backfill(&config, &sim_config);
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        assert!(Instant::now() < deadline, "the backfill made no progress");
        assert!(child.try_wait().unwrap().is_none(), "the backfill ended before it could be killed");
        let cursor = store.load_cursor("taobao", SHOP, FULL_STREAM).await.ok().flatten();
        if let Some(backfill) = cursor.and_then(|v| serde_json::from_value::<Backfill>(v).ok()) {
            if backfill.progress() >= 0.3 {
                break backfill;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    child.kill().unwrap(); // SIGKILL: no chance to clean up.
    child.wait().unwrap();
    let calls_before = sim.calls().by_method.get(LIST_CREATED).copied().unwrap_or(0);
    let stored_at_kill = store.stored_orders("taobao", SHOP).await.unwrap().len();
    assert!(stored_at_kill > 0 && !at_kill.complete);

    let status = backfill(&config, &sim_config).wait().unwrap();
    assert!(status.success(), "the resumed backfill failed: {status}");
    let resumed_calls = sim.calls().by_method.get(LIST_CREATED).copied().unwrap_or(0) - calls_before;

    let truth = sim.truth().orders;
    let full_pull_pages = truth.len().div_ceil(100) as u64;
    assert!(
        resumed_calls * 10 <= full_pull_pages * 8,
        "the second run made {resumed_calls} list calls; a full pull takes about {full_pull_pages}: it started over"
    );
    let stored: BTreeMap<i64, _> =
        store.stored_orders("taobao", SHOP).await.unwrap().into_iter().map(|o| (o.tid, o)).collect();
    for order in &truth {
        let Some(row) = stored.get(&order.tid) else { panic!("order {} missing after the resume", order.tid) };
        assert_eq!((&row.status, row.modified), (&order.status, order.modified), "order {}", order.tid);
    }
    assert_eq!(stored.len(), truth.len());
    let backfill: Backfill =
        serde_json::from_value(store.load_cursor("taobao", SHOP, FULL_STREAM).await.unwrap().unwrap()).unwrap();
    assert!(backfill.complete);
    assert_eq!(backfill.until, at_kill.until, "the resumed backfill kept its range");
}
