//! A simulator with an engine whose `tmall-main` shop is that simulator, and
//! the checks the end-to-end tests share.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use orderflow::clock::Clock;
use orderflow::config::{Config, Platform};
use orderflow::engine::{Engine, EngineOptions, RunReport};
use orderflow::flow::{CompileEnv, Flow, compile};
use orderflow::nodes::{BuildContext, Registry};
use orderflow::platforms::Platforms;
use orderflow::script::{Limits, Sandbox};
use orderflow::sim::{SimConfig, SimHandle, Simulator};
use orderflow::store::{RunStatus, Store};
use tokio_util::sync::CancellationToken;

pub const SHOP: &str = "tmall-main";

/// The shop of a rig on Douyin ([`Rig::on`]).
pub const DOUYIN_SHOP: &str = "douyin-main";

/// A simulator, and an engine whose `tmall-main` shop is that simulator.
pub struct Rig {
    pub sim: SimHandle,
    pub engine: Engine,
    pub config: Config,
    pub registry: Registry,
    pub build: BuildContext,
    pub store: Store,
    /// The platform the rig's shop is on.
    pub platform: Platform,
    /// The rig's shop: [`SHOP`] on Taobao, [`DOUYIN_SHOP`] on Douyin.
    pub shop: &'static str,
}

impl Rig {
    /// A rig on the system clock.
    pub async fn new(sim: SimConfig, store: Store) -> Self {
        Self::with_clock(sim, store, Clock::system()).await
    }

    /// A rig whose engine decides schedules (breakers) by `clock`.
    pub async fn with_clock(sim: SimConfig, store: Store, clock: Clock) -> Self {
        let secret = sim.app_secret.clone();
        Self::build(Platform::Taobao, sim, store, clock, &secret, "").await
    }

    /// A rig whose `orderflow.yaml` also holds the lines `extra` (e.g. `redis:`).
    pub async fn with_config_lines(sim: SimConfig, store: Store, extra: &str) -> Self {
        let secret = sim.app_secret.clone();
        Self::build(Platform::Taobao, sim, store, Clock::system(), &secret, extra).await
    }

    /// A rig whose shop signs with `app_secret`, whatever the simulator expects.
    pub async fn with_app_secret(sim: SimConfig, store: Store, app_secret: &str) -> Self {
        Self::build(Platform::Taobao, sim, store, Clock::system(), app_secret, "").await
    }

    /// A rig whose shop is on `platform`: the simulator's TOP gateway for
    /// Taobao, its Douyin face for Douyin.
    pub async fn on(platform: Platform, sim: SimConfig, store: Store) -> Self {
        let secret = sim.app_secret.clone();
        Self::build(platform, sim, store, Clock::system(), &secret, "").await
    }

    /// A rig with a shop on every platform, all on the one simulated shop:
    /// [`SHOP`] on Taobao (the rig's `platform` and `shop`) and
    /// [`DOUYIN_SHOP`] on Douyin.
    pub async fn on_every_platform(sim: SimConfig, store: Store) -> Self {
        let secret = sim.app_secret.clone();
        Self::build_shops(&[Platform::Taobao, Platform::Douyin], sim, store, Clock::system(), &secret, "").await
    }

    async fn build(
        platform: Platform,
        sim: SimConfig,
        store: Store,
        clock: Clock,
        app_secret: &str,
        extra: &str,
    ) -> Self {
        Self::build_shops(&[platform], sim, store, clock, app_secret, extra).await
    }

    /// The rig's shop on `platform`.
    pub fn shop_on(platform: Platform) -> &'static str {
        match platform {
            Platform::Taobao => SHOP,
            Platform::Douyin => DOUYIN_SHOP,
        }
    }

    async fn build_shops(
        platforms: &[Platform],
        sim: SimConfig,
        store: Store,
        clock: Clock,
        app_secret: &str,
        extra: &str,
    ) -> Self {
        let sim_handle = Simulator::start(sim.clone(), ([127, 0, 0, 1], 0).into()).await.expect("simulator starts");
        let mut source = format!("{extra}shops:\n");
        for platform in platforms {
            let gateway = match platform {
                Platform::Taobao => sim_handle.gateway_url(),
                Platform::Douyin => sim_handle.douyin_gateway_url(),
            };
            source.push_str(&format!(
                "  {}:\n    platform: {}\n    gateway: {gateway}\n    app_key: {}\n    app_secret: ${{SECRET}}\n    session: ${{SESSION}}\n    rate_limit_per_min: 1000000\n",
                Self::shop_on(*platform),
                platform.as_str(),
                sim.app_key
            ));
        }
        let platform = platforms[0];
        let shop = Self::shop_on(platform);
        let env =
            HashMap::from([("SECRET".to_owned(), app_secret.to_owned()), ("SESSION".to_owned(), sim.session.clone())]);
        let config = Config::parse(Path::new("test.yaml"), &source, &env).expect("config");
        let mut build = BuildContext::new(env!("CARGO_MANIFEST_DIR"), Sandbox::new(Limits::default()));
        build.clock = clock;
        build.platforms = Platforms::from_config(&config).expect("platforms");
        // The example flows may use the custom nodes in nodes/, as
        // `orderflow run` loads them.
        let mut registry = Registry::builtin();
        let errors = orderflow::nodes::custom::load_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("nodes"),
            &build.sandbox,
            &mut registry,
        );
        assert!(errors.is_empty(), "nodes/: {errors:?}");
        let engine = Engine::new(registry.clone(), build.clone(), store.clone(), EngineOptions::default());
        Self { sim: sim_handle, engine, config, registry, build, store, platform, shop }
    }

    /// As a new process would start: new connectors, taking over the bans
    /// and session states the store holds.
    pub async fn restart(&mut self) {
        self.build.platforms = Platforms::from_config(&self.config).expect("platforms");
        self.build.platforms.restore(&self.store).await.expect("restore");
        self.engine =
            Engine::new(self.registry.clone(), self.build.clone(), self.store.clone(), EngineOptions::default());
    }

    pub fn flow(&self, name: &str, source: &str) -> Flow {
        let shops = self.config.shop_names();
        let env = CompileEnv { registry: &self.registry, build: &self.build, shops: &shops };
        compile(Path::new(name), source, &env).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    pub fn example(&self, file: &str) -> Flow {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows").join(file);
        let source = std::fs::read_to_string(&path).expect("example flow");
        self.flow(file, &source)
    }

    /// Runs `flow` and asserts it succeeded.
    pub async fn run(&self, flow: &Flow) -> RunReport {
        let report = self.run_any(flow).await;
        assert_eq!(report.status, RunStatus::Succeeded, "{}: {:?}", flow.name, report.error);
        report
    }

    /// Runs `flow`, however it ends.
    pub async fn run_any(&self, flow: &Flow) -> RunReport {
        self.engine.run(flow, "test", CancellationToken::new()).await.expect("run recorded")
    }

    pub fn list_calls(&self) -> u64 {
        let calls = self.sim.calls();
        ["taobao.trades.sold.get", "taobao.trades.sold.increment.get"]
            .iter()
            .map(|m| calls.by_method.get(*m).copied().unwrap_or(0))
            .sum()
    }

    /// Asserts the store holds exactly the simulator's orders, each at its
    /// current status and version.
    pub async fn assert_matches_truth(&self, store: &Store, label: &str) {
        self.assert_shop_matches_truth(self.platform, store, label).await;
    }

    /// Asserts the store holds exactly the simulator's orders for the rig's
    /// shop on `platform`.
    pub async fn assert_shop_matches_truth(&self, platform: Platform, store: &Store, label: &str) {
        let truth = self.sim.truth().orders;
        let stored = store.stored_orders(platform.as_str(), Self::shop_on(platform)).await.expect("stored orders");
        let stored: BTreeMap<i64, _> = stored.into_iter().map(|o| (o.tid, o)).collect();
        let mut missing = Vec::new();
        let mut stale = Vec::new();
        for order in &truth {
            match stored.get(&order.tid) {
                None => missing.push(order.tid),
                Some(s) if s.status != order.status_on(platform) || s.modified != order.modified => {
                    stale.push((order.tid, s.status.clone(), order.status_on(platform), s.modified, order.modified))
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
