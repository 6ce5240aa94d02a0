//! Sync throughput and API cost: the simulator → the example flows → SQLite.
//!
//! For a simulated shop of N orders: the backfill (`flows/taobao-initial-full.yaml`)
//! in orders per second and list calls per 1,000 orders; then M orders
//! changed at once and read by `flows/taobao-incremental.yaml`, again in
//! orders per second and calls (list and detail) per 1,000 changed orders.
//!
//! `cargo bench --bench sync`; `ORDERFLOW_BENCH_ORDERS=20000` and
//! `ORDERFLOW_BENCH_CHANGES=1000` override the sizes (defaults 20,000 and 2,000).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use orderflow::config::Config;
use orderflow::engine::{Engine, EngineOptions};
use orderflow::flow::{CompileEnv, compile};
use orderflow::nodes::{BuildContext, Registry};
use orderflow::platforms::Platforms;
use orderflow::script::{Limits, Sandbox};
use orderflow::sim::{SimConfig, Simulator};
use orderflow::store::{RunStatus, Store};
use tokio_util::sync::CancellationToken;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> ExitCode {
    match bench(size("ORDERFLOW_BENCH_ORDERS", 20_000), size("ORDERFLOW_BENCH_CHANGES", 2_000)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench failed: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(orders: usize, changes: usize) -> anyhow::Result<()> {
    let sim_config = SimConfig { seed: 3, orders, days: 80, ..SimConfig::default() };
    let sim = Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await?;
    let source = format!(
        "shops:\n  tmall-main:\n    platform: taobao\n    gateway: {}\n    app_key: {}\n    app_secret: ${{S}}\n    session: ${{T}}\n    rate_limit_per_min: 100000000\n",
        sim.gateway_url(),
        sim_config.app_key
    );
    let env =
        HashMap::from([("S".to_owned(), sim_config.app_secret.clone()), ("T".to_owned(), sim_config.session.clone())]);
    let config = Config::parse(Path::new("bench.yaml"), &source, &env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    let mut build = BuildContext::new(env!("CARGO_MANIFEST_DIR"), Sandbox::new(Limits::default()));
    build.platforms = Platforms::from_config(&config)?;
    let registry = Registry::builtin();
    let shops = config.shop_names();
    let env = CompileEnv { registry: &registry, build: &build, shops: &shops };
    let flow = |file: &str| -> anyhow::Result<_> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows").join(file);
        compile(&path, &std::fs::read_to_string(&path)?, &env).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let (full, incremental) = (flow("taobao-initial-full.yaml")?, flow("taobao-incremental.yaml")?);
    let engine = Engine::new(registry.clone(), build.clone(), store.clone(), EngineOptions::default());

    println!("shop: {orders} orders over 80 days; SQLite; release build\n");
    println!(
        "{:<14} {:>8} {:>9} {:>10} {:>12} {:>14}",
        "pull", "orders", "seconds", "orders/s", "list calls", "calls/1k"
    );
    let calls = sim.calls().by_method;
    let started = Instant::now();
    let report = engine.run(&full, "bench", CancellationToken::new()).await?;
    anyhow::ensure!(report.status == RunStatus::Succeeded, "backfill: {:?}", report.error);
    print_row("full", orders, started.elapsed(), &calls, &sim.calls().by_method);

    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let report = engine.run(&incremental, "bench", CancellationToken::new()).await?;
    anyhow::ensure!(report.status == RunStatus::Succeeded, "incremental: {:?}", report.error);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    sim.mutate_now(changes);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let calls = sim.calls().by_method;
    let started = Instant::now();
    let report = engine.run(&incremental, "bench", CancellationToken::new()).await?;
    anyhow::ensure!(report.status == RunStatus::Succeeded, "incremental: {:?}", report.error);
    let read = report.nodes.iter().find(|n| n.node_id == "changed").map_or(0, |n| n.records_out) as usize;
    print_row("incremental", read, started.elapsed(), &calls, &sim.calls().by_method);
    let details = sim.calls().by_method.get("taobao.trade.fullinfo.get").copied().unwrap_or(0)
        - calls.get("taobao.trade.fullinfo.get").copied().unwrap_or(0);
    println!("\nincremental detail calls (orders waiting to ship, for their address): {details}");
    sim.shutdown().await;
    Ok(())
}

fn print_row(
    pull: &str,
    orders: usize,
    elapsed: Duration,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) {
    let list = |calls: &BTreeMap<String, u64>| {
        ["taobao.trades.sold.get", "taobao.trades.sold.increment.get"]
            .iter()
            .map(|m| calls.get(*m).copied().unwrap_or(0))
            .sum::<u64>()
    };
    let list_calls = list(after) - list(before);
    let seconds = elapsed.as_secs_f64();
    println!(
        "{pull:<14} {orders:>8} {seconds:>9.2} {:>10.0} {list_calls:>12} {:>14.1}",
        orders as f64 / seconds,
        list_calls as f64 * 1000.0 / orders.max(1) as f64
    );
}
