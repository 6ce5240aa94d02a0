//! Redis shared by several processes: one app key's rate limit (its pace,
//! with no burst) holds for all of them together, and one process's detail fetch fills the cache another
//! reads — never with a stale order. Runs when `ORDERFLOW_TEST_REDIS_URL` is
//! set; each test writes under its own key prefix.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderflow::config::Config;
use std::num::NonZeroU32;

use orderflow::platforms::guard::Pace;
use orderflow::platforms::{Platform, Platforms};
use orderflow::sim::{SimConfig, SimHandle, Simulator};
use orderflow::store::Store;
use support::rig::{Rig, SHOP};

const DETAIL_METHOD: &str = "taobao.trade.fullinfo.get";

/// The Redis URL, or `None` (after saying why) when the variable is unset;
/// panics when it is set but Redis does not answer.
async fn redis_url() -> Option<String> {
    let Ok(url) = std::env::var("ORDERFLOW_TEST_REDIS_URL") else {
        eprintln!("skipped: ORDERFLOW_TEST_REDIS_URL is not set");
        return None;
    };
    let client = redis::Client::open(url.as_str()).expect("ORDERFLOW_TEST_REDIS_URL is a Redis URL");
    let mut connection = client.get_multiplexed_async_connection().await.expect("Redis answers");
    let pong: String = redis::cmd("PING").query_async(&mut connection).await.expect("Redis answers PING");
    assert_eq!(pong, "PONG");
    Some(url)
}

fn unique_prefix() -> String {
    format!("orderflow-test:{}:", uuid::Uuid::now_v7())
}

/// One "process": the connectors a config with `redis_lines` builds.
fn process(sim: &SimHandle, per_minute: u32, redis_lines: &str) -> Arc<dyn Platform> {
    let source = format!(
        "{redis_lines}shops:\n  {SHOP}:\n    platform: taobao\n    gateway: {}\n    app_key: {}\n    app_secret: ${{SECRET}}\n    session: ${{SESSION}}\n    rate_limit_per_min: {per_minute}\n",
        sim.gateway_url(),
        sim.config().app_key
    );
    let env = HashMap::from([
        ("SECRET".to_owned(), sim.config().app_secret.clone()),
        ("SESSION".to_owned(), sim.config().session.clone()),
    ]);
    let config = Config::parse(Path::new("test.yaml"), &source, &env).expect("config");
    Platforms::from_config(&config).expect("platforms").get(SHOP).expect("the shop")
}

/// Two processes call as fast as their gates let them for `span`; returns
/// the calls the simulator answered meanwhile.
async fn hammer(sim: &SimHandle, processes: [Arc<dyn Platform>; 2], tid: i64, span: Duration) -> u64 {
    let before = sim.calls().total;
    let deadline = Instant::now() + span;
    let mut callers = tokio::task::JoinSet::new();
    for platform in processes {
        for _ in 0..3 {
            let platform = platform.clone();
            callers.spawn(async move {
                while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                    // A call still waiting for its turn at the deadline is dropped.
                    let _ = tokio::time::timeout(left, platform.order_detail(tid, &[])).await;
                }
            });
        }
    }
    callers.join_all().await;
    sim.calls().total - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_app_key_stay_together_under_its_rate_limit() {
    let Some(url) = redis_url().await else { return };
    let sim = Simulator::start(SimConfig { orders: 50, ..SimConfig::default() }, ([127, 0, 0, 1], 0).into())
        .await
        .expect("simulator");
    let tid = sim.truth().orders[0].tid;
    let per_minute = 600;
    let span = Duration::from_secs(3);
    // No burst: one call every 60 s / 599 for the key, whichever process
    // makes it, and the one at the start.
    let interval = Pace::per_minute(NonZeroU32::new(per_minute).unwrap()).interval;
    let budget = (span.as_secs_f64() / interval.as_secs_f64()).floor() as u64 + 1;

    let redis = format!("redis: {url}\nredis_key_prefix: \"{}\"\n", unique_prefix());
    let shared = hammer(&sim, [process(&sim, per_minute, &redis), process(&sim, per_minute, &redis)], tid, span).await;
    let apart = hammer(&sim, [process(&sim, per_minute, ""), process(&sim, per_minute, "")], tid, span).await;
    eprintln!("redis: {shared} calls with a shared limit, {apart} without (budget {budget} in {span:?})");
    assert!(shared <= budget, "{shared} calls went out, over the shared budget of {budget}");
    assert!(shared + 3 >= budget, "the pace was kept, not slower: {shared}");
    assert!(apart + 6 >= 2 * budget, "each process alone keeps its own pace: {apart}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detail_one_process_fetched_is_not_fetched_again_by_another_unless_stale() {
    let Some(url) = redis_url().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("redis.db").display())).await.unwrap();
    let sim = SimConfig { seed: 5, orders: 200, days: 20, ..SimConfig::default() };
    let lines = format!("redis: {url}\nredis_key_prefix: \"{}\"\n", unique_prefix());
    let mut rig = Rig::with_config_lines(sim, store, &lines).await;
    // Details only, never stored: the second process finds nothing in the
    // database, only in the cache.
    let flow = rig.flow(
        "details.yaml",
        "flow: details\nshop: tmall-main\nnodes:\n  all: {use: fetch_full, with: {days: 25}}\n  detail: {use: fetch_detail, input: all, with: {needs: [receiver_address]}}\n  drop: {use: filter, input: detail, with: {condition: 'false'}}\n",
    );
    let details = |rig: &Rig| rig.sim.calls().by_method.get(DETAIL_METHOD).copied().unwrap_or(0);

    rig.run(&flow).await;
    let first = details(&rig);
    assert_eq!(first, rig.sim.truth().orders.len() as u64, "the first process fetched every detail");

    rig.restart().await;
    rig.run(&flow).await;
    assert_eq!(details(&rig), first, "the second process read every detail from the cache");

    // Orders changed since: their cached details are older than the listing.
    let changed: BTreeSet<i64> = rig.sim.mutate_now(5).into_iter().collect();
    // Listings end a second in the past: let the changes settle into them.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    rig.restart().await;
    rig.run(&flow).await;
    assert_eq!(details(&rig) - first, changed.len() as u64, "exactly the changed orders were fetched again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_one_process_meets_holds_the_other_back_without_a_call() {
    let Some(url) = redis_url().await else { return };
    let sim = Simulator::start(SimConfig { orders: 20, ..SimConfig::default() }, ([127, 0, 0, 1], 0).into())
        .await
        .expect("simulator");
    let redis = format!("redis: {url}\nredis_key_prefix: \"{}\"\n", unique_prefix());
    let (first, second) = (process(&sim, 600, &redis), process(&sim, 600, &redis));
    first.guard().gate().ban_until(chrono::Utc::now() + chrono::Duration::seconds(60));
    // The ban reaches Redis in the background.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = sim.calls().total;
    let refused = second.order_detail(sim.truth().orders[0].tid, &[]).await.expect_err("banned");
    assert!(refused.message.contains("not called"), "{refused}");
    assert_eq!(sim.calls().total, before, "no call went out into the ban");
    assert!(second.guard().gate().banned_until().is_some(), "the second process now knows the ban");
}
