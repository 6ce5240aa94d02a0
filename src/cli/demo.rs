//! `orderflow demo`: a simulated shop served as a Tmall shop and as a Douyin
//! shop, both synced into one SQLite orders table, start to finish, with the
//! same flows, nodes and clients real shops use.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;

use super::progress::RunProgress;
use crate::config::{Config, Platform};
use crate::engine::{Engine, EngineOptions, RunReport};
use crate::flow::{self, CompileEnv, Flow};
use crate::nodes::{BuildContext, Registry};
use crate::platforms::Platforms;
use crate::script::{Limits, Sandbox};
use crate::sim::{SimConfig, Simulator};
use crate::store::{RunStatus, Store};

const FULL_FLOW: &str = include_str!("../../flows/taobao-initial-full.yaml");
const DOUYIN_FULL_FLOW: &str = include_str!("../../flows/douyin-initial-full.yaml");
/// Catches up both shops in one graph.
const INCREMENTAL_FLOW: &str = include_str!("../../flows/multi-platform-incremental.yaml");

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
    println!(
        "simulated shop: {} orders over 85 days, as Tmall at {} and as Douyin at {}",
        options.orders,
        sim.gateway_url(),
        sim.douyin_gateway_url()
    );

    let config = demo_config(&sim.gateway_url(), &sim.douyin_gateway_url(), &sim_config, &options.database)?;
    let platforms = Platforms::from_config(&config).context("connecting to the simulator")?;
    let store = Store::connect(&config.database).await.context("opening the demo database")?;
    let sandbox = Sandbox::new(Limits::default());
    let registry = Registry::builtin();
    let mut build = BuildContext::new(".", sandbox);
    build.platforms = platforms.clone();
    let backfills = [
        (SHOPS[0], compile("flows/taobao-initial-full.yaml", FULL_FLOW, &config, &registry, &build)?),
        (SHOPS[1], compile("flows/douyin-initial-full.yaml", DOUYIN_FULL_FLOW, &config, &registry, &build)?),
    ];
    let incremental = compile("flows/multi-platform-incremental.yaml", INCREMENTAL_FLOW, &config, &registry, &build)?;
    // One bar per run while it runs, taken off before the run's line is
    // printed, so no line is drawn over.
    let progress = RunProgress::on_stderr();
    if let Some(progress) = &progress {
        progress.watch(&mut build);
    }
    let engine = Engine::new(registry, build, store.clone(), EngineOptions::default());
    let bar = progress.as_ref();

    for ((platform, shop), full) in &backfills {
        let report = run_with_bar(&engine, bar, full, &format!("backfill {shop}")).await?;
        check(&report)?;
        println!(
            "backfill of {shop} ({}): {} orders stored in {:.1}s",
            platform.as_str(),
            stored_count(&report),
            report.elapsed.as_secs_f64()
        );
    }

    // The shop kept changing during the backfill: catch up, then stop the
    // changes and catch up once more, so the comparison has a fixed truth.
    // Windows end a second before the current one, hence the wait.
    let report = run_with_bar(&engine, bar, &incremental, "incremental").await?;
    check(&report)?;
    sim.pause_mutations();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let report = run_with_bar(&engine, bar, &incremental, "incremental").await?;
    check(&report)?;
    println!(
        "incremental (both shops, one graph): {} changed orders stored in {:.1}s",
        stored_count(&report),
        report.elapsed.as_secs_f64()
    );

    let truth = sim.truth().orders;
    let mut differences = Vec::new();
    for (platform, shop) in SHOPS {
        let summary = store.orders_summary(platform.as_str(), shop).await?;
        println!("\n{shop} ({}) orders by status:", platform.as_str());
        for (status, count) in &summary {
            println!("  {status:<28} {count:>7}");
        }
        if let Some(connector) = platforms.get(shop) {
            println!("{shop} API calls used:");
            for (method, count) in connector.calls() {
                println!("  {method:<36} {count:>5}");
            }
        }
        let stored = store.stored_orders(platform.as_str(), shop).await?;
        let stored: HashMap<i64, _> = stored.into_iter().map(|o| (o.tid, o)).collect();
        let differing = truth
            .iter()
            .filter(|t| {
                stored.get(&t.tid).is_none_or(|s| s.status != t.status_on(platform) || s.modified != t.modified)
            })
            .count();
        if differing > 0 || stored.len() != truth.len() {
            differences.push(format!("{shop}: {differing} of {} orders differ, {} stored", truth.len(), stored.len()));
        }
    }
    println!("\ntime taken: {:.1}s; database: {}", started.elapsed().as_secs_f64(), config.database);
    if !differences.is_empty() {
        bail!("the database differs from the shop: {}", differences.join("; "));
    }
    println!("the database matches the shop on both platforms: {} orders each, none missing, none stale", truth.len());
    sim.shutdown().await;
    Ok(())
}

/// The demo's shops, as the example flows name them.
const SHOPS: [(Platform, &str); 2] = [(Platform::Taobao, "tmall-main"), (Platform::Douyin, "douyin-main")];

fn demo_config(gateway: &str, douyin_gateway: &str, sim: &SimConfig, database: &str) -> anyhow::Result<Config> {
    let mut source = format!("database: {database}\nshops:\n");
    for ((platform, shop), url) in SHOPS.iter().zip([gateway, douyin_gateway]) {
        source.push_str(&format!(
            "  {shop}:\n    platform: {}\n    gateway: {url}\n    app_key: {}\n    app_secret: ${{DEMO_APP_SECRET}}\n    session: ${{DEMO_SESSION}}\n    rate_limit_per_min: 100000\n",
            platform.as_str(),
            sim.app_key
        ));
    }
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

/// Runs `flow` under a bar labelled `label`, taken off before returning.
async fn run_with_bar(
    engine: &Engine,
    progress: Option<&RunProgress>,
    flow: &Flow,
    label: &str,
) -> anyhow::Result<RunReport> {
    if let Some(progress) = progress {
        progress.begin(label);
    }
    let report = engine.run(flow, "demo", CancellationToken::new()).await;
    if let Some(progress) = progress {
        progress.clear();
    }
    Ok(report?)
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
