//! Shared workers: leases and the fencing of writes by them on every backend,
//! `orderflow serve` processes splitting 100 shops on PostgreSQL and on MySQL,
//! one of them killed, and one stalled past its lease that commits nothing.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orderflow::engine::node::{ErrorClass, Halt, NodeError};
use orderflow::platforms::{Order, Refund};
use orderflow::sim::{SimConfig, SimHandle};
use orderflow::store::{
    AppBan, Backend, BreakerRow, ColumnKind, ColumnSpec, Cursor, DeadLetter, NewAlert, NewAnomaly, OrderLine,
    ParcelCheck, Reconciliation, RunRecord, RunStart, SqlValue, StockChange, Store, StoreError, StoredOrder, TableSpec,
};
use serde_json::json;
use sqlx::{AnyConnection, Connection};

/// A port nobody listens on now (the OS picks it; the process binds it a
/// moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Writes `orderflow.yaml` with `shops`, each the simulated shop behind
/// `sim`, and `flows/sync.yaml` holding `flow`.
fn write_setup(dir: &Path, sim: &SimHandle, sim_config: &SimConfig, shops: &[String], flow: &str) {
    let mut config = String::from("shops:\n");
    for shop in shops {
        config.push_str(&format!(
            "  {shop}:\n    platform: taobao\n    gateway: {}\n    app_key: {}\n    app_secret: ${{SIM_SECRET}}\n    session: ${{SIM_SESSION}}\n    rate_limit_per_min: 1000000\n",
            sim.gateway_url(),
            sim_config.app_key
        ));
    }
    std::fs::write(dir.join("orderflow.yaml"), config).unwrap();
    std::fs::create_dir(dir.join("flows")).unwrap();
    std::fs::write(dir.join("flows/sync.yaml"), flow).unwrap();
}

/// A flow named `name` for `shops` (a `shop:` or `shops:` line) reading the
/// orders changed in the last two days every `every`, `window` at a time.
fn sync_flow(name: &str, shops: &str, every: &str, window: &str) -> String {
    format!(
        "flow: {name}\n{shops}\ntrigger:\n  every: {every}\nnodes:\n  changed:\n    use: fetch_increment\n    with: {{first_run: 2d, window: {window}, page_size: 100}}\n  save:\n    use: store_orders\n    input: changed\n"
    )
}

/// `orderflow serve` on the setup in `dir` as `worker`, its log in `dir`.
fn spawn_serve(dir: &Path, worker: &str, port: u16, database: &str, sim: &SimConfig, lease: &str) -> Child {
    let log = std::fs::File::create(dir.join(format!("{worker}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["--config", &dir.join("orderflow.yaml").display().to_string(), "serve"])
        .args(["--flows", &dir.join("flows").display().to_string(), "--worker-id", worker])
        .args(["--lease", lease, "--grace", "15s", "--listen", &format!("127.0.0.1:{port}")])
        .env("ORDERFLOW_DATABASE_URL", database)
        .env("SIM_SECRET", &sim.app_secret)
        .env("SIM_SESSION", &sim.session)
        .env("RUST_LOG", "orderflow=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("orderflow serve starts")
}

/// The last lines of `worker`'s log.
fn log(dir: &Path, worker: &str) -> String {
    let text = std::fs::read_to_string(dir.join(format!("{worker}.log"))).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(15).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

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

/// A store fenced by a lease writes while the lease row carries that claim;
/// once another worker has claimed it, every writer a node calls refuses in
/// its transaction and writes nothing. An unfenced store (`orderflow run`)
/// is not affected.
#[tokio::test]
async fn a_write_under_a_stale_epoch_is_refused_and_one_under_the_current_epoch_passes() {
    for test in support::test_stores().await {
        let (store, label) = (&test.store, test.label);
        let a = store.claim_lease("sync", "s1", "worker-a", Duration::from_millis(1)).await.unwrap().unwrap();
        let under_a = store.fenced(a);
        under_a.save_orders(&[order(1)], &[cursor(1)]).await.unwrap_or_else(|e| panic!("{label}: {e}"));

        tokio::time::sleep(Duration::from_millis(20)).await;
        let b = store.claim_lease("sync", "s1", "worker-b", Duration::from_secs(30)).await.unwrap().unwrap();
        let under_b = store.fenced(b);
        let refused = under_a.save_orders(&[order(2)], &[cursor(2)]).await;
        match &refused {
            Err(StoreError::Fenced { epoch: 1, holder: Some((holder, 2)), .. }) if holder == "worker-b" => {}
            other => panic!("{label}: {other:?}"),
        }
        let error = NodeError::from(refused.unwrap_err());
        assert_eq!(error.class, ErrorClass::Halted(Halt::LeaseLost), "{label}: a fenced write stops the run");
        assert!(error.message.contains("epoch 2, claimed by worker-b"), "{label}: {}", error.message);
        let tids = |orders: Vec<StoredOrder>| orders.into_iter().map(|o| o.tid).collect::<Vec<_>>();
        assert_eq!(
            tids(store.stored_orders("taobao", "s1").await.unwrap()),
            [1],
            "{label}: the stale write left nothing"
        );
        assert_eq!(store.load_cursor("taobao", "s1", "orders.increment").await.unwrap(), Some(json!(1)), "{label}");
        assert!(matches!(under_a.check_fence().await, Err(StoreError::Fenced { .. })), "{label}");
        under_b.check_fence().await.unwrap_or_else(|e| panic!("{label}: {e}"));

        assert_every_writer_is_fenced(&under_a, label).await;
        assert!(store.dead_letters("r1").await.unwrap().is_empty(), "{label}");
        assert!(store.breakers().await.unwrap().is_empty(), "{label}");
        assert!(store.open_alerts().await.unwrap().is_empty(), "{label}");
        assert!(store.anomaly_counts().await.unwrap().is_empty(), "{label}");
        assert!(store.stock_levels().await.unwrap().is_empty(), "{label}");

        under_b.save_orders(&[order(2)], &[cursor(2)]).await.unwrap_or_else(|e| panic!("{label}: {e}"));
        store.save_orders(&[order(3)], &[]).await.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(tids(store.stored_orders("taobao", "s1").await.unwrap()), [1, 2, 3], "{label}");
        assert_eq!(store.load_cursor("taobao", "s1", "orders.increment").await.unwrap(), Some(json!(2)), "{label}");
        test.cleanup().await;
    }
}

/// The fence holds until its transaction commits: a claim made while a fenced
/// write is under way waits for it, so the write lands under the lease it
/// checked, and the next write of the old holder is refused. (PostgreSQL and
/// MySQL; SQLite has one writer at a time.) The test holds a lock on an order
/// row the write needs, to keep the write's transaction open.
#[tokio::test]
async fn a_claim_waits_for_the_fenced_write_under_way() {
    for test in support::test_stores().await {
        let (store, label) = (&test.store, test.label);
        if store.backend() == Backend::Sqlite {
            test.cleanup().await;
            continue;
        }
        store.save_orders(&[order(1)], &[]).await.unwrap();
        let a = store.claim_lease("sync", "s1", "worker-a", Duration::from_millis(1)).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let under_a = store.fenced(a);

        let mut holder = AnyConnection::connect(&test.url).await.unwrap();
        let mut row_lock = holder.begin().await.unwrap();
        sqlx::query("SELECT tid FROM orders WHERE tid = 1 FOR UPDATE").execute(&mut *row_lock).await.unwrap();
        let write = tokio::spawn({
            let under_a = under_a.clone();
            async move { under_a.save_orders(&[order(1)], &[cursor(7)]).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let claim = tokio::spawn({
            let store = store.clone();
            async move { store.claim_lease("sync", "s1", "worker-b", Duration::from_secs(30)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!write.is_finished() && !claim.is_finished(), "{label}: the claim waits for the fenced write");

        row_lock.rollback().await.unwrap();
        write.await.unwrap().unwrap_or_else(|e| panic!("{label}: the write checked its lease before the claim: {e}"));
        let b = claim.await.unwrap().unwrap().expect("the claim goes through after the write");
        assert_eq!(b.epoch, 2, "{label}");
        assert_eq!(store.load_cursor("taobao", "s1", "orders.increment").await.unwrap(), Some(json!(7)), "{label}");
        let late = under_a.save_orders(&[order(2)], &[]).await;
        assert!(matches!(late, Err(StoreError::Fenced { .. })), "{label}: {late:?}");
        holder.close().await.unwrap();
        test.cleanup().await;
    }
}

fn order(tid: i64) -> Order {
    serde_json::from_value(json!({
        "platform": "taobao", "shop": "s1", "tid": tid, "status": "WAIT_SELLER_SEND_GOODS", "type": "fixed",
        "created": "2024-05-01T08:00:00Z", "modified": "2024-05-01T08:00:00Z", "payment": "1.00",
        "items": [{"oid": tid * 10, "num": 1, "price": "1.00", "payment": "1.00"}], "raw": {"tid": tid}
    }))
    .unwrap()
}

fn cursor(value: i64) -> Cursor {
    Cursor { platform: "taobao".into(), shop: "s1".into(), stream: "orders.increment".into(), value: json!(value) }
}

/// Every store writer a node calls refuses under a stale fence.
async fn assert_every_writer_is_fenced(stale: &Store, label: &str) {
    let at = chrono::Utc::now();
    let refund: Refund = serde_json::from_value(json!({
        "platform": "taobao", "shop": "s1", "refund_id": 5, "tid": 1, "oid": 10, "status": "WAIT_SELLER_AGREE",
        "refund_fee": "1.00", "created": "2024-05-01T08:00:00Z", "modified": "2024-05-01T08:00:00Z", "raw": {}
    }))
    .unwrap();
    let line = OrderLine { platform: "taobao".into(), shop: "s1".into(), tid: 1, oid: 10 };
    let table = TableSpec {
        name: "kept".into(),
        columns: vec![ColumnSpec { name: "n".into(), kind: ColumnKind::Integer }],
        key: vec!["n".into()],
        newer_than: None,
    };
    stale.ensure_table(&table).await.unwrap();
    let letter = DeadLetter {
        run_id: "r1".into(),
        flow: "sync".into(),
        node_id: "save".into(),
        record: json!({}),
        reason: "bad".into(),
        created_at: at,
    };
    let breaker = BreakerRow {
        platform: "taobao".into(),
        shop: "s1".into(),
        channel: "orders.increment".into(),
        state: "open".into(),
        outcomes: String::new(),
        opened_at: Some(at),
        last_degraded_at: None,
        updated_at: at,
    };
    let alert =
        NewAlert { kind: "k".into(), platform: "taobao".into(), shop: "s1".into(), tid: None, detail: "d".into() };
    let anomaly = NewAnomaly {
        run_id: Some("r1".into()),
        platform: "taobao".into(),
        shop: "s1".into(),
        method: "m".into(),
        kind: "k".into(),
        excerpt: String::new(),
    };
    let reconciliation = Reconciliation {
        run_id: "r1".into(),
        platform: "taobao".into(),
        shop: "s1".into(),
        window_start: at,
        window_end: at,
        platform_count: 1,
        stored_count: 0,
        refetched: 0,
        missing: 1,
    };
    let check =
        ParcelCheck { platform: "taobao".into(), shop: "s1".into(), tid: 1, checked_at: at, newest_event_at: None };
    let ban = AppBan { platform: "taobao".into(), app_key: "k".into(), until: at, reason: "r".into() };
    let freeze = StockChange::Freeze { line, sku: "A".into(), quantity: 1 };
    let results: Vec<(&str, Result<(), StoreError>)> = vec![
        ("save_refunds", stale.save_refunds(&[refund], &[]).await.map(drop)),
        ("apply_stock_changes", stale.apply_stock_changes(&[freeze], Some("r1")).await.map(drop)),
        ("upsert_rows", stale.upsert_rows(&table, &[vec![SqlValue::Integer(1)]]).await),
        ("insert_dead_letter", stale.insert_dead_letter(&letter).await.map(drop)),
        ("save_breaker", stale.save_breaker(&breaker).await),
        ("raise_alert", stale.raise_alert(&alert, at).await.map(drop)),
        ("resolve_alert", stale.resolve_alert("k", "taobao", "s1", None, at).await.map(drop)),
        ("record_anomalies", stale.record_anomalies(&[anomaly], at).await),
        ("record_reconciliation", stale.record_reconciliation(&reconciliation, at).await),
        ("save_parcel_check", stale.save_parcel_check(&check).await),
        ("record_delivery", stale.record_delivery("hook", "key", at).await.map(drop)),
        ("save_ban", stale.save_ban(&ban, at).await),
        ("mark_needs_reauth", stale.mark_needs_reauth("taobao", "s1", "r", at).await.map(drop)),
    ];
    for (writer, result) in results {
        assert!(matches!(result, Err(StoreError::Fenced { .. })), "{label}: {writer}: {result:?}");
    }
    let rows = stale.fetch_all(&table).await.unwrap();
    assert!(rows.is_empty(), "{label}: {rows:?}");
}

/// Three `orderflow serve` processes, one database, 100 shops (all the same
/// simulated shop behind one gateway), for 60 s; the first is SIGKILLed after
/// 20 s, the others get SIGTERM at the end.
mod three_workers {
    use std::collections::{BTreeMap, HashMap};
    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use chrono::{DateTime, Utc};
    use orderflow::sim::{SimConfig, Simulator};
    use orderflow::store::{RunRecord, RunStatus, Store};

    use crate::support::{self, MYSQL_URL_VAR, POSTGRES_URL_VAR, TestStore};
    use crate::{free_port, log, spawn_serve, sync_flow, write_setup};

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

    /// The process serves its console (the page, and the flow listed in the
    /// overview it draws) and `/metrics` (its runs and API calls counted).
    async fn assert_serves_page_and_metrics(port: u16, label: &str) {
        let get = |path: &str| {
            let url = format!("http://127.0.0.1:{port}{path}");
            async move { reqwest::get(&url).await.unwrap().error_for_status().unwrap().text().await.unwrap() }
        };
        let page = get("/").await;
        assert!(page.contains("id=\"root\""), "{label}: the console's page is served");
        let overview = get("/api/overview").await;
        assert!(overview.contains(&format!("\"name\":\"{FLOW}\"")), "{label}: the overview lists the flow");
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
        let shops: Vec<String> = (0..SHOPS).map(shop).collect();
        write_setup(dir.path(), &sim, &sim_config, &shops, &sync_flow(FLOW, "shops: all", "5s", "1d"));

        let started = Instant::now();
        let workers = ["w0", "w1", "w2"];
        let ports: Vec<u16> = workers.iter().map(|_| free_port()).collect();
        let mut children: Vec<Child> = workers
            .iter()
            .zip(&ports)
            .map(|(w, port)| spawn_serve(dir.path(), w, *port, &test.url, &sim_config, "10s"))
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
}

/// A `serve` process SIGSTOPped in the middle of a run, past its lease, while
/// a second process takes the shop over; then SIGCONTed: it commits nothing.
mod stalled_worker {
    use std::process::Command;
    use std::time::{Duration, Instant};

    use chrono::Utc;
    use orderflow::sim::{SimConfig, Simulator};
    use orderflow::store::{RunRecord, RunStatus, Store};
    use orderflow::sync::INCREMENT_STREAM;
    use sqlx::AnyPool;

    use crate::support::{self, MYSQL_URL_VAR, POSTGRES_URL_VAR, TestStore};
    use crate::{free_port, log, spawn_serve, sync_flow, write_setup};

    const FLOW: &str = "stalled-sync";
    const SHOP: &str = "shop-a";
    const ORDERS: usize = 200;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) => stall_past_the_lease(support::postgres(&url).await).await,
            Err(_) => eprintln!("skipping the stalled-worker test on PostgreSQL: {POSTGRES_URL_VAR} is not set"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_mysql() {
        match std::env::var(MYSQL_URL_VAR) {
            Ok(url) => stall_past_the_lease(support::mysql(&url).await).await,
            Err(_) => eprintln!("skipping the stalled-worker test on MySQL: {MYSQL_URL_VAR} is not set"),
        }
    }

    fn signal(pid: u32, signal: &str) {
        let status = Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    async fn stored_count(store: &Store) -> usize {
        store.stored_orders("taobao", SHOP).await.unwrap().len()
    }

    /// What a write of any run leaves behind: the latest write time of an
    /// order row and of a cursor row (each write sets it to now), and the
    /// increment cursor.
    async fn footprint(pool: &AnyPool, store: &Store) -> (Option<String>, Option<String>, Option<serde_json::Value>) {
        let latest = |sql: &'static str| async move {
            sqlx::query_scalar::<_, Option<String>>(sql).fetch_one(pool).await.unwrap()
        };
        (
            latest("SELECT MAX(synced_at) FROM orders").await,
            latest("SELECT MAX(updated_at) FROM sync_cursors").await,
            store
                .load_cursor("taobao", SHOP, &orderflow::sync::flow_stream(INCREMENT_STREAM, FLOW, "changed"))
                .await
                .unwrap(),
        )
    }

    async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = check().await {
                return found;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stall_past_the_lease(test: TestStore) {
        let label = test.label;
        let sim_config = SimConfig {
            orders: ORDERS,
            days: 1,
            anchor: Some(Utc::now() - chrono::Duration::minutes(10)),
            // 48 windows of an hour, each committed on its own, at 300 ms a
            // call: a run lasts about 15 s.
            latency: Duration::from_millis(300),
            ..SimConfig::default()
        };
        let sim = Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        write_setup(
            dir.path(),
            &sim,
            &sim_config,
            &[SHOP.to_owned()],
            &sync_flow(FLOW, &format!("shop: {SHOP}"), "2s", "1h"),
        );
        let store = &test.store;
        let pool = AnyPool::connect(&test.url).await.unwrap();

        // a runs the shop; it is stopped right after committing a window,
        // while it reads the next one: the rest of the run is still to write.
        let mut a = spawn_serve(dir.path(), "a", free_port(), &test.url, &sim_config, "3s");
        let first = wait_for("a's first orders", Duration::from_secs(30), async || {
            let count = stored_count(store).await;
            (count > 0).then_some(count)
        })
        .await;
        wait_for("a's next window", Duration::from_secs(10), async || {
            (stored_count(store).await > first).then_some(())
        })
        .await;
        signal(a.id(), "-STOP");
        let stored_by_a = stored_count(store).await;
        assert!(stored_by_a < ORDERS, "{label}: a was stopped mid-run ({stored_by_a} orders stored)");
        let runs = store.runs_of(FLOW).await.unwrap();
        let stale: RunRecord = runs.into_iter().find(|run| run.worker.as_deref() == Some("a")).expect("a's run");
        assert_eq!(stale.status, RunStatus::Running, "{label}");

        // Past the lease, b claims the shop and syncs it to the end.
        tokio::time::sleep(Duration::from_millis(4500)).await;
        let mut b = spawn_serve(dir.path(), "b", free_port(), &test.url, &sim_config, "3s");
        wait_for("a run of b", Duration::from_secs(60), async || {
            let runs = store.runs_of(FLOW).await.unwrap();
            runs.iter()
                .any(|run| run.worker.as_deref() == Some("b") && run.status == RunStatus::Succeeded)
                .then_some(())
        })
        .await;
        signal(b.id(), "-TERM");
        let status = b.wait().unwrap();
        assert!(status.success(), "{label}: b exits 0: {status}; {}", log(dir.path(), "b"));
        let lease = store.leases().await.unwrap().into_iter().find(|lease| lease.flow == FLOW).unwrap();
        assert!(lease.epoch >= 2 && lease.holder == "b", "{label}: b took the lease over: {lease:?}");
        let by_b = footprint(&pool, store).await;
        assert_eq!(stored_count(store).await, ORDERS, "{label}: b stored every order");

        // a resumes holding pages it fetched under epoch 1.
        signal(a.id(), "-CONT");
        let ended = wait_for("the end of a's stalled run", Duration::from_secs(30), async || {
            store.run(&stale.id).await.unwrap().filter(|run| run.finished_at.is_some())
        })
        .await;
        // Read at once: a's next run, under a new claim, writes only after
        // its first calls to the (slow) platform.
        let after = footprint(&pool, store).await;
        assert_eq!(after, by_b, "{label}: a wrote after it resumed; a's log: {}", log(dir.path(), "a"));
        let error = ended.error.clone().unwrap_or_default();
        assert!(
            matches!(ended.status, RunStatus::Failed | RunStatus::Cancelled) && error.contains("fenced off"),
            "{label}: a's stalled run ended {:?}: {error}",
            ended.status
        );
        eprintln!("{label}: a's stalled run ended {}: {error}", ended.status.as_str());

        signal(a.id(), "-TERM");
        let status = a.wait().unwrap();
        assert!(status.success(), "{label}: a exits 0: {status}; {}", log(dir.path(), "a"));
        let truth = sim.truth().orders;
        let stored = store.stored_orders("taobao", SHOP).await.unwrap();
        assert_eq!(stored.len(), truth.len(), "{label}");
        pool.close().await;
        sim.shutdown().await;
        test.cleanup().await;
    }
}
