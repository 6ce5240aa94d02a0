//! Shared workers: leases on every backend, and `orderflow serve` processes
//! splitting 100 shops on PostgreSQL and on MySQL, one of them killed.

mod support;

use std::time::Duration;

use orderflow::store::{RunRecord, RunStart};

#[tokio::test]
async fn a_lease_is_held_by_one_worker_renewed_released_and_taken_over_once_expired() {
    for test in support::test_stores().await {
        let (store, label) = (&test.store, test.label);
        let ttl = Duration::from_millis(1500);
        let a = store.claim_lease("sync", "s1", "worker-a", ttl).await.unwrap().expect("a free lease is claimed");
        assert_eq!(a.epoch, 1, "{label}");
        assert_eq!(store.claim_lease("sync", "s1", "worker-b", ttl).await.unwrap(), None, "{label}: held by a");
        let other = store.claim_lease("sync", "s2", "worker-b", ttl).await.unwrap();
        assert!(other.is_some(), "{label}: another shop is another lease");
        assert!(store.renew_lease(&a, ttl).await.unwrap(), "{label}: the holder renews");

        // a stops renewing (as a killed process does): b takes over once it expires.
        tokio::time::sleep(ttl + Duration::from_millis(300)).await;
        let b = store.claim_lease("sync", "s1", "worker-b", ttl).await.unwrap().expect("an expired lease is claimed");
        assert_eq!(b.epoch, 2, "{label}: the fencing epoch moves on");
        assert!(!store.renew_lease(&a, ttl).await.unwrap(), "{label}: the old holder learns it lost the lease");
        store.release_lease(&a).await.unwrap();
        let rows = store.leases().await.unwrap();
        let s1 = rows.iter().find(|row| row.shop == "s1").unwrap();
        assert_eq!((s1.holder.as_str(), s1.epoch), ("worker-b", 2), "{label}: the old holder's release is ignored");
        assert!(s1.expires_at > chrono::Utc::now(), "{label}");

        store.release_lease(&b).await.unwrap();
        let c = store.claim_lease("sync", "s1", "worker-c", ttl).await.unwrap();
        assert_eq!(c.map(|c| c.epoch), Some(3), "{label}: a released lease is free at once");
        test.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_claims_of_one_lease_have_one_winner() {
    for test in support::test_stores().await {
        let claims = (0..8).map(|i| {
            let store = test.store.clone();
            tokio::spawn(async move {
                store.claim_lease("sync", "s1", &format!("worker-{i}"), Duration::from_secs(30)).await.unwrap()
            })
        });
        let mut winners = 0;
        for claim in claims {
            winners += usize::from(claim.await.unwrap().is_some());
        }
        assert_eq!(winners, 1, "{}", test.label);
        test.cleanup().await;
    }
}

#[tokio::test]
async fn runs_record_their_shop_and_worker_and_the_last_start_per_shop() {
    for test in support::test_stores().await {
        let store = &test.store;
        let at = |secs: i64| chrono::DateTime::from_timestamp(1_767_000_000 + secs, 0).unwrap();
        for (id, shop, secs) in [("r1", "a", 0), ("r2", "b", 5), ("r3", "a", 10)] {
            let start = RunStart {
                id: id.into(),
                flow: "sync".into(),
                trigger: "schedule".into(),
                started_at: at(secs),
                shop: Some(shop.into()),
                worker: Some("w1".into()),
            };
            store.insert_run(&start).await.unwrap();
        }
        let runs: Vec<RunRecord> = store.runs_of("sync").await.unwrap();
        assert_eq!(runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1", "r2", "r3"], "{}", test.label);
        assert_eq!(runs[1].shop.as_deref(), Some("b"));
        assert_eq!(runs[1].worker.as_deref(), Some("w1"));
        let mut last = store.last_run_starts("sync").await.unwrap();
        last.sort();
        assert_eq!(last, [(Some("a".into()), at(10)), (Some("b".into()), at(5))], "{}", test.label);
        test.cleanup().await;
    }
}

/// Three `orderflow serve` processes, one database, 100 shops (all the same
/// simulated shop behind one gateway), for 60 s; the first is SIGKILLed after
/// 20 s, the others get SIGTERM at the end.
mod three_workers {
    use std::collections::{BTreeMap, HashMap};
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use chrono::{DateTime, Utc};
    use orderflow::sim::{SimConfig, Simulator};
    use orderflow::store::{RunRecord, RunStatus, Store};

    use crate::support::{self, MYSQL_URL_VAR, POSTGRES_URL_VAR, TestStore};

    const SHOPS: usize = 100;
    const FLOW: &str = "shops-sync";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) => split_shops(support::postgres(&url).await).await,
            Err(_) => eprintln!("skipping the three-worker test on PostgreSQL: {POSTGRES_URL_VAR} is not set"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_mysql() {
        match std::env::var(MYSQL_URL_VAR) {
            Ok(url) => split_shops(support::mysql(&url).await).await,
            Err(_) => eprintln!("skipping the three-worker test on MySQL: {MYSQL_URL_VAR} is not set"),
        }
    }

    fn shop(i: usize) -> String {
        format!("shop-{i:03}")
    }

    /// A port nobody listens on now (the OS picks it; the process binds it
    /// a moment later).
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// The process serves its page (the flow listed) and `/metrics` (its
    /// runs and API calls counted).
    async fn assert_serves_page_and_metrics(port: u16, label: &str) {
        let get = |path: &str| {
            let url = format!("http://127.0.0.1:{port}{path}");
            async move { reqwest::get(&url).await.unwrap().error_for_status().unwrap().text().await.unwrap() }
        };
        let page = get("/").await;
        assert!(page.contains(FLOW), "{label}: the page lists the flow");
        let metrics = get("/metrics").await;
        let count = |prefix: &str| -> f64 {
            metrics
                .lines()
                .filter(|line| line.starts_with(prefix))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let runs = count(&format!("{}{{", orderflow::telemetry::RUNS));
        assert!(runs > 0.0, "{label}: /metrics counts the process's runs:\n{metrics}");
        assert!(count(&format!("{}{{", orderflow::telemetry::API_CALLS)) >= runs, "{label}: each run called the API");
    }

    fn spawn_serve(dir: &Path, worker: &str, port: u16, database: &str, sim: &SimConfig) -> Child {
        let log = std::fs::File::create(dir.join(format!("{worker}.log"))).unwrap();
        Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .args(["--config", &dir.join("orderflow.yaml").display().to_string(), "serve"])
            .args(["--flows", &dir.join("flows").display().to_string(), "--worker-id", worker])
            .args(["--lease", "10s", "--grace", "15s", "--listen", &format!("127.0.0.1:{port}")])
            .env("ORDERFLOW_DATABASE_URL", database)
            .env("SIM_SECRET", &sim.app_secret)
            .env("SIM_SESSION", &sim.session)
            .env("RUST_LOG", "orderflow=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("orderflow serve starts")
    }

    async fn split_shops(test: TestStore) {
        let label = test.label;
        let sim_config = SimConfig {
            orders: 50,
            days: 1,
            anchor: Some(Utc::now() - chrono::Duration::minutes(10)),
            // Slow answers keep runs going long enough for the kill to
            // catch some of them mid-run.
            latency: Duration::from_millis(200),
            ..SimConfig::default()
        };
        let sim = Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::from("shops:\n");
        for i in 0..SHOPS {
            config.push_str(&format!(
                "  {}:\n    platform: taobao\n    gateway: {}\n    app_key: {}\n    app_secret: ${{SIM_SECRET}}\n    session: ${{SIM_SESSION}}\n    rate_limit_per_min: 1000000\n",
                shop(i),
                sim.gateway_url(),
                sim_config.app_key
            ));
        }
        std::fs::write(dir.path().join("orderflow.yaml"), config).unwrap();
        std::fs::create_dir(dir.path().join("flows")).unwrap();
        std::fs::write(
            dir.path().join("flows/shops-sync.yaml"),
            format!(
                "flow: {FLOW}\nshops: all\ntrigger:\n  every: 5s\nnodes:\n  changed:\n    use: fetch_increment\n    with: {{first_run: 2d, window: 1d, page_size: 100}}\n  save:\n    use: store_orders\n    input: changed\n"
            ),
        )
        .unwrap();

        let started = Instant::now();
        let workers = ["w0", "w1", "w2"];
        let ports: Vec<u16> = workers.iter().map(|_| free_port()).collect();
        let mut children: Vec<Child> = workers
            .iter()
            .zip(&ports)
            .map(|(w, port)| spawn_serve(dir.path(), w, *port, &test.url, &sim_config))
            .collect();
        tokio::time::sleep(Duration::from_secs(20)).await;
        // Kill w0 in the middle of a run: when it holds a lease.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !holds_a_lease(&test.store, "w0").await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        children[0].kill().unwrap();
        children[0].wait().unwrap();
        let killed_at = Utc::now();
        // What w0 held when it died: each lease stays its until it expires.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let leases = test.store.leases().await.unwrap();
        let held: HashMap<String, DateTime<Utc>> = leases
            .into_iter()
            .filter(|lease| lease.holder == "w0" && lease.expires_at > killed_at)
            .map(|lease| (lease.shop, lease.expires_at))
            .collect();

        tokio::time::sleep(Duration::from_secs(60).saturating_sub(started.elapsed())).await;
        assert_serves_page_and_metrics(ports[1], label).await;
        for child in &children[1..] {
            let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
            assert!(status.success());
        }
        for (worker, child) in workers.iter().zip(children.iter_mut()).skip(1) {
            let status = child.wait().unwrap();
            assert!(status.success(), "{label}: {worker} exits 0 after SIGTERM: {status}; {}", log(dir.path(), worker));
        }

        let runs = test.store.runs_of(FLOW).await.unwrap();
        let context = || format!("{label}: {} runs; w1 log: {}", runs.len(), log(dir.path(), "w1"));
        assert_no_overlap(&runs, &held, label);
        assert!(!held.is_empty(), "{label}: w0 held no lease when killed: nothing to take over; {}", context());
        for (shop, expired) in &held {
            let taken_over = runs.iter().any(|run| {
                run.shop.as_deref() == Some(shop.as_str())
                    && run.worker.as_deref() != Some("w0")
                    && run.started_at >= *expired
                    && run.status == RunStatus::Succeeded
            });
            assert!(taken_over, "{label}: {shop}, held by the killed w0, was not taken over");
        }
        let truth = sim.truth().orders;
        for i in 0..SHOPS {
            let shop = shop(i);
            let succeeded =
                runs.iter().filter(|r| r.shop.as_deref() == Some(&shop) && r.status == RunStatus::Succeeded);
            assert!(succeeded.count() > 0, "{label}: {shop} has no succeeded run; {}", context());
            assert_matches_truth(&test.store, &shop, &truth, label).await;
        }
        let by_worker = |w: &str| runs.iter().filter(|r| r.worker.as_deref() == Some(w)).count();
        let longest = runs
            .iter()
            .filter_map(|r| Some((r.finished_at? - r.started_at).num_milliseconds()))
            .max()
            .unwrap_or_default();
        eprintln!(
            "{label}: {} runs in {:.0}s (w0 {}, w1 {}, w2 {}), the longest {longest} ms; w0 held {} lease(s) when killed, all taken over",
            runs.len(),
            started.elapsed().as_secs_f64(),
            by_worker("w0"),
            by_worker("w1"),
            by_worker("w2"),
            held.len()
        );
        assert!(by_worker("w1") > 0 && by_worker("w2") > 0, "{label}: the work is shared");
        sim.shutdown().await;
        test.cleanup().await;
    }

    async fn holds_a_lease(store: &Store, worker: &str) -> bool {
        let now = Utc::now();
        store.leases().await.unwrap().iter().any(|lease| lease.holder == worker && lease.expires_at > now)
    }

    /// No two runs of one shop overlap in time. A run of the killed worker
    /// never finished: it counts as going on until its lease expired.
    fn assert_no_overlap(runs: &[RunRecord], held: &HashMap<String, DateTime<Utc>>, label: &str) {
        let mut by_shop: BTreeMap<&str, Vec<&RunRecord>> = BTreeMap::new();
        for run in runs {
            by_shop.entry(run.shop.as_deref().unwrap_or_default()).or_default().push(run);
        }
        for (shop, runs) in by_shop {
            let mut busy_until: Option<(DateTime<Utc>, &str)> = None;
            for run in runs {
                if let Some((until, id)) = busy_until {
                    assert!(
                        run.started_at >= until,
                        "{label}: {shop}: run {} ({:?}) started at {} while run {id} went on until {until}",
                        run.id,
                        run.worker,
                        run.started_at
                    );
                }
                let end = match run.finished_at {
                    Some(end) => end,
                    None => {
                        assert_eq!(
                            run.worker.as_deref(),
                            Some("w0"),
                            "{label}: {shop}: only the killed worker's runs stay unfinished"
                        );
                        *held.get(shop).unwrap_or_else(|| {
                            panic!("{label}: {shop}: unfinished run {} ({}) without a lease", run.id, run.started_at)
                        })
                    }
                };
                busy_until = Some((end, &run.id));
            }
        }
    }

    async fn assert_matches_truth(store: &Store, shop: &str, truth: &[orderflow::sim::TruthOrder], label: &str) {
        let stored: BTreeMap<i64, _> =
            store.stored_orders("taobao", shop).await.unwrap().into_iter().map(|o| (o.tid, o)).collect();
        assert_eq!(stored.len(), truth.len(), "{label}: {shop}: order count");
        for order in truth {
            let found =
                stored.get(&order.tid).unwrap_or_else(|| panic!("{label}: {shop}: order {} missing", order.tid));
            assert_eq!(
                (&found.status, found.modified),
                (&order.status, order.modified),
                "{label}: {shop}: {}",
                order.tid
            );
        }
    }

    fn log(dir: &Path, worker: &str) -> String {
        let text = std::fs::read_to_string(dir.join(format!("{worker}.log"))).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}
