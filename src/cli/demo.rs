//! `orderflow demo`: a simulated Tmall shop synced into SQLite, start to
//! finish, with the same flows, nodes and client a real shop uses.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::{Engine, EngineOptions, RunReport};
use crate::flow::{self, CompileEnv, Flow};
use crate::nodes::fetch_full::Backfill;
use crate::nodes::sync::FULL_STREAM;
use crate::nodes::{BuildContext, Registry};
use crate::platforms::Platforms;
use crate::script::{Limits, Sandbox};
use crate::sim::{SimConfig, Simulator};
use crate::store::{RunStatus, Store};

const FULL_FLOW: &str = include_str!("../../flows/taobao-initial-full.yaml");
const INCREMENTAL_FLOW: &str = include_str!("../../flows/taobao-incremental.yaml");

/// What the demo is asked to do.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Orders in the simulated shop.
    pub orders: usize,
    /// The simulator's seed.
    pub seed: u64,
    /// Order changes per second while the backfill runs.
    pub mutations_per_sec: f64,
    /// The database; the default demo file is replaced on each run.
    pub database: String,
}

/// Runs the demo and prints its summary; fails if the database does not end
/// up equal to the simulator's truth.
pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    // 85 days: the whole shop inside TOP's 90-day horizon, so the
    // comparison at the end is exact.
    let sim_config = SimConfig {
        seed: options.seed,
        orders: options.orders,
        days: 85,
        mutations_per_sec: options.mutations_per_sec,
        ..SimConfig::default()
    };
    let sim =
        Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await.context("starting the simulator")?;
    println!("simulated Tmall shop: {} orders over 85 days at {}", options.orders, sim.gateway_url());

    let config = demo_config(&sim.gateway_url(), &sim_config, &options.database)?;
    let platforms = Platforms::from_config(&config).context("connecting to the simulator")?;
    let store = Store::connect(&config.database).await.context("opening the demo database")?;
    let sandbox = Sandbox::new(Limits::default());
    let registry = Registry::builtin();
    let mut build = BuildContext::new(".", sandbox);
    build.platforms = platforms.clone();
    let full = compile("flows/taobao-initial-full.yaml", FULL_FLOW, &config, &registry, &build)?;
    let incremental = compile("flows/taobao-incremental.yaml", INCREMENTAL_FLOW, &config, &registry, &build)?;
    let engine = Engine::new(registry, build, store.clone(), EngineOptions::default());

    let progress = backfill_progress(store.clone());
    let report = engine.run(&full, "demo", CancellationToken::new()).await?;
    progress.cancel();
    check(&report)?;
    println!("backfill: {} orders stored in {:.1}s", stored_count(&report), report.elapsed.as_secs_f64());

    // The shop kept changing during the backfill: catch up, then stop the
    // changes and catch up once more, so the comparison has a fixed truth.
    // Windows end a second before the current one, hence the wait.
    let report = engine.run(&incremental, "demo", CancellationToken::new()).await?;
    check(&report)?;
    sim.pause_mutations();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let report = engine.run(&incremental, "demo", CancellationToken::new()).await?;
    check(&report)?;
    println!("incremental: {} changed orders stored in {:.1}s", stored_count(&report), report.elapsed.as_secs_f64());

    let summary = store.orders_summary("taobao", SHOP).await?;
    println!("\norders by status:");
    for (status, count) in &summary {
        println!("  {status:<28} {count:>7}");
    }
    let calls = sim.calls();
    println!("\nAPI calls used:");
    for (method, count) in &calls.by_method {
        println!("  {method:<36} {count:>5}");
    }
    let truth = sim.truth().orders;
    let stored = store.stored_orders("taobao", SHOP).await?;
    let stored: HashMap<i64, _> = stored.into_iter().map(|o| (o.tid, o)).collect();
    let differing = truth
        .iter()
        .filter(|t| stored.get(&t.tid).is_none_or(|s| s.status != t.status || s.modified != t.modified))
        .count();
    println!("\ntime taken: {:.1}s; database: {}", started.elapsed().as_secs_f64(), config.database);
    if differing > 0 || stored.len() != truth.len() {
        bail!("the database differs from the shop: {differing} of {} orders, {} stored", truth.len(), stored.len());
    }
    println!("the database matches the shop: {} orders, none missing, none stale", truth.len());
    sim.shutdown().await;
    Ok(())
}

/// The demo's one shop, as the example flows name it.
const SHOP: &str = "tmall-main";

fn demo_config(gateway: &str, sim: &SimConfig, database: &str) -> anyhow::Result<Config> {
    let source = format!(
        "database: {database}\nshops:\n  {SHOP}:\n    platform: taobao\n    gateway: {gateway}\n    app_key: {}\n    app_secret: ${{DEMO_APP_SECRET}}\n    session: ${{DEMO_SESSION}}\n    rate_limit_per_min: 100000\n",
        sim.app_key
    );
    let env = HashMap::from([
        ("DEMO_APP_SECRET".to_owned(), sim.app_secret.clone()),
        ("DEMO_SESSION".to_owned(), sim.session.clone()),
    ]);
    Config::parse(Path::new("<demo>"), &source, &env).map_err(|errors| anyhow::anyhow!("demo config: {errors}"))
}

fn compile(
    name: &str,
    source: &str,
    config: &Config,
    registry: &Registry,
    build: &BuildContext,
) -> anyhow::Result<Flow> {
    let shops = config.shop_names();
    let env = CompileEnv { registry, build, shops: &shops };
    flow::compile(Path::new(name), source, &env).map_err(|errors| anyhow::anyhow!("{errors}"))
}

fn check(report: &RunReport) -> anyhow::Result<()> {
    if report.status != RunStatus::Succeeded {
        bail!("flow {} {}: {}", report.flow, report.status.as_str(), report.error.as_deref().unwrap_or("see the log"));
    }
    Ok(())
}

fn stored_count(report: &RunReport) -> u64 {
    report.nodes.iter().find(|n| n.node_type == "store_orders").map_or(0, |n| n.records_in)
}

/// Draws the backfill's progress from its committed cursor until cancelled.
fn backfill_progress(store: Store) -> CancellationToken {
    let done = CancellationToken::new();
    let stop = done.clone();
    tokio::spawn(async move {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template("backfill [{bar:40}] {percent:>3}% {elapsed_precise} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        loop {
            if let Ok(Some(value)) = store.load_cursor("taobao", SHOP, FULL_STREAM).await {
                if let Ok(backfill) = serde_json::from_value::<Backfill>(value) {
                    bar.set_position((backfill.progress() * 1000.0) as u64);
                    bar.set_message(format!("orders created before {}", backfill.next_end.format("%Y-%m-%d")));
                }
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(150)) => {}
            }
        }
        bar.finish_and_clear();
    });
    done
}
