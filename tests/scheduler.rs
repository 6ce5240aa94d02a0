//! The `serve` runtime in-process, on SQLite against the simulator: flow files
//! reloaded only when they validate, and graceful shutdown with its grace
//! period. (The schedule itself is tested with a manual clock in
//! `src/server/scheduler.rs`; shared workers in `tests/workers.rs`.)

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderflow::server::catalog::{Catalog, FlowEntry};
use orderflow::server::serve::{FlowEnv, ServeOptions, Server};
use orderflow::sim::SimConfig;
use orderflow::store::RunStatus;
use support::rig::{Rig, SHOP};
use tokio_util::sync::CancellationToken;

fn options(dir: &Path, grace: Duration) -> ServeOptions {
    ServeOptions {
        flows_dir: dir.to_path_buf(),
        worker_id: "test-worker".into(),
        lease: Duration::from_secs(5),
        grace,
        poll_every: Duration::from_millis(200),
        max_runs: 4,
    }
}

fn start(rig: &Rig, options: ServeOptions) -> (Arc<Catalog>, CancellationToken, tokio::task::JoinHandle<()>) {
    let env = FlowEnv { registry: rig.registry.clone(), build: rig.build.clone(), shops: rig.config.shop_names() };
    let server = Server::new(options, env, rig.engine.clone(), rig.store.clone()).expect("server");
    let catalog = server.catalog();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move { server.run(stop).await.expect("serve ends cleanly") });
    (catalog, shutdown, task)
}

/// Waits (up to 20 s) until `catalog` shows an entry for which `check` holds.
async fn wait_for(catalog: &Catalog, what: &str, check: impl Fn(&[FlowEntry]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check(&catalog.snapshot()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {:?}", catalog.snapshot());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sync_flow(description: &str) -> String {
    format!(
        "flow: sync\ndescription: {description}\nshop: {SHOP}\ntrigger: {{every: 1s}}\nnodes:\n  changed:\n    use: fetch_increment\n    with: {{first_run: 2d, window: 1d}}\n  save:\n    use: store_orders\n    input: changed\n"
    )
}

fn small_shop() -> SimConfig {
    SimConfig {
        orders: 40,
        days: 1,
        anchor: Some(chrono::Utc::now() - chrono::Duration::minutes(10)),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn a_broken_edit_keeps_the_last_valid_version_running_and_a_fixed_one_is_swapped_in() {
    let store = support::sqlite().await;
    let rig = Rig::new(small_shop(), store.store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sync.yaml");
    std::fs::write(&file, sync_flow("first")).unwrap();
    let (catalog, shutdown, task) = start(&rig, options(dir.path(), Duration::from_secs(5)));

    let description =
        |entries: &[FlowEntry]| entries.first().and_then(|e| e.flow.as_ref()).map(|f| f.description.clone());
    wait_for(&catalog, "the first version", |e| description(e).as_deref() == Some("first")).await;
    let runs_before = rig.store.runs_of("sync").await.unwrap().len();

    std::fs::write(&file, sync_flow("second").replace("use: store_orders", "use: store_ordrs")).unwrap();
    wait_for(&catalog, "the load errors", |e| e.first().is_some_and(|e| !e.errors.is_empty())).await;
    let entry = catalog.get(&file).unwrap();
    assert_eq!(entry.flow.as_ref().unwrap().description, "first", "the old version stays");
    assert!(
        entry.errors[0].starts_with(&format!("{}:10:10:", file.display())) && entry.errors[0].contains("store_ordrs"),
        "{:?}",
        entry.errors
    );
    // The old version keeps running on its trigger.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rig.store.runs_of("sync").await.unwrap().len() <= runs_before + 1 {
        assert!(Instant::now() < deadline, "no run after the broken edit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    std::fs::write(&file, sync_flow("third")).unwrap();
    wait_for(&catalog, "the fixed version", |e| description(e).as_deref() == Some("third")).await;
    assert!(catalog.get(&file).unwrap().errors.is_empty());

    std::fs::remove_file(&file).unwrap();
    wait_for(&catalog, "the removal", <[FlowEntry]>::is_empty).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("serve stops").unwrap();
    let runs = rig.store.runs_of("sync").await.unwrap();
    assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded), "{runs:?}");
    assert!(runs.iter().all(|r| r.worker.as_deref() == Some("test-worker") && r.shop.as_deref() == Some(SHOP)));
    rig.assert_matches_truth(&rig.store, "sqlite").await;
    store.cleanup().await;
}

/// Shuts down while a slow run goes on; returns how that run ended and how
/// long the shutdown took.
async fn shut_down_mid_run(grace: Duration) -> (RunStatus, Duration) {
    let store = support::sqlite().await;
    // Every call takes a second: a run lasts several.
    let rig = Rig::new(SimConfig { latency: Duration::from_secs(1), ..small_shop() }, store.store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sync.yaml"), sync_flow("slow")).unwrap();
    let (catalog, shutdown, task) = start(&rig, options(dir.path(), grace));
    wait_for(&catalog, "a running run", |e| e.first().is_some_and(|e| e.running.contains(SHOP))).await;

    let asked = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task).await.expect("serve stops").unwrap();
    let took = asked.elapsed();
    let runs = rig.store.runs_of("sync").await.unwrap();
    assert_eq!(runs.len(), 1, "no run starts after the signal: {runs:?}");
    assert!(runs[0].finished_at.is_some(), "the run is recorded finished");

    // Whatever the shutdown cut short, the next run completes the sync.
    let flow = rig.flow("sync.yaml", &sync_flow("again"));
    rig.run(&flow).await;
    rig.assert_matches_truth(&rig.store, "sqlite").await;
    let status = runs[0].status;
    store.cleanup().await;
    (status, took)
}

#[tokio::test]
async fn shutdown_lets_a_run_finish_within_the_grace_period() {
    let (status, took) = shut_down_mid_run(Duration::from_secs(30)).await;
    assert_eq!(status, RunStatus::Succeeded);
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test]
async fn shutdown_cancels_a_run_past_the_grace_period() {
    let (status, took) = shut_down_mid_run(Duration::from_millis(300)).await;
    assert_eq!(status, RunStatus::Cancelled);
    assert!(took < Duration::from_secs(10), "cancelled runs stop promptly: {took:?}");
}

#[tokio::test]
async fn a_short_lease_and_a_missing_folder_are_refused_with_their_reason() {
    let store = support::sqlite().await;
    let rig = Rig::new(small_shop(), store.store.clone()).await;
    let env = || FlowEnv { registry: rig.registry.clone(), build: rig.build.clone(), shops: rig.config.shop_names() };
    let dir = tempfile::tempdir().unwrap();
    let short = ServeOptions { lease: Duration::from_secs(1), ..options(dir.path(), Duration::from_secs(1)) };
    let error = Server::new(short, env(), rig.engine.clone(), rig.store.clone()).err().expect("refused");
    assert_eq!(error.to_string(), "the lease must be at least 3s, not 1s");

    let missing = dir.path().join("no-such-folder");
    let server = Server::new(options(&missing, Duration::from_secs(1)), env(), rig.engine.clone(), rig.store.clone())
        .expect("server");
    let error = server.run(CancellationToken::new()).await.expect_err("no folder");
    let message = error.to_string();
    assert!(message.starts_with(&format!("reading the flows folder {}: ", missing.display())), "{message}");
    store.cleanup().await;
}
