//! Resilience end to end against the simulator: faults of every kind, bans,
//! a failing incremental channel, an expired session and orders deleted
//! behind orderflow's back. Each test ends with the database equal to the
//! simulator's ground truth.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use orderflow::clock::Clock;
use orderflow::config::Config;
use orderflow::platforms::guard::MAX_BANS_IN_A_ROW;
use orderflow::platforms::{Platform, Platforms};
use orderflow::sim::{FaultKind, SimConfig, SimHandle, Simulator};
use orderflow::store::{BreakerRow, RunStatus, Store};
use orderflow::sync::{FULL_STREAM, NEEDS_REAUTH_ALERT};
use support::rig::{Rig, SHOP};

const INCREMENT_METHOD: &str = "taobao.trades.sold.increment.get";

async fn sqlite(dir: &tempfile::TempDir, name: &str) -> Store {
    Store::connect(&format!("sqlite://{}", dir.path().join(name).display())).await.expect("sqlite store")
}

fn sim_config(orders: usize, mutations_per_sec: f64) -> SimConfig {
    SimConfig { seed: 11, orders, days: 80, mutations_per_sec, ..SimConfig::default() }
}

/// A backfill flow; `with` adds settings to `fetch_full`.
fn backfill_flow(with: &str) -> String {
    format!(
        "flow: backfill\nshop: tmall-main\nnodes:\n  all: {{use: fetch_full, with: {{days: 85{with}}}}}\n  save: {{use: store_orders, input: all}}\n"
    )
}

/// An incremental flow with detail fetches for orders to ship (two nodes
/// calling the platform at once); `with` adds settings to `fetch_increment`.
fn incremental_flow(with: &str) -> String {
    format!(
        "flow: incremental\nshop: tmall-main\nnodes:\n  changed: {{use: fetch_increment, with: {{lookback: 1s{with}}}}}\n  fresh: {{use: dedupe, input: changed}}\n  detail: {{use: fetch_detail, input: fresh, when: 'record.status == \"WAIT_SELLER_SEND_GOODS\"', with: {{needs: [receiver_address]}}}}\n  others: {{use: filter, input: fresh, with: {{condition: 'record.status != \"WAIT_SELLER_SEND_GOODS\"'}}}}\n  save: {{use: store_orders, input: [detail, others]}}\n"
    )
}

/// Lets the shop's last change settle (windows end a second in the past).
async fn settle(rig: &Rig) {
    rig.sim.pause_mutations();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_percent_faults_of_every_kind_during_a_twenty_thousand_order_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "faults.db").await;
    let sim = SimConfig {
        fault_rate: 0.05,
        fault_kinds: FaultKind::ALL.to_vec(),
        slow_answer: Duration::from_millis(300),
        ..sim_config(20_000, 50.0)
    };
    let rig = Rig::new(sim, store.clone()).await;
    // Overloaded answers wait a second here, not TOP's three minutes. The
    // breaker watches with its defaults (5 % of 100 operations): faults the
    // retries recover are no failures, so it must stay closed.
    let quick = ", overload_wait: 1s";
    rig.run(&rig.flow("backfill.yaml", &backfill_flow(quick))).await;
    let incremental = rig.flow("incremental.yaml", &incremental_flow(", overload_wait: 1s, breaker: {}"));
    rig.run(&incremental).await;
    settle(&rig).await;
    rig.run(&incremental).await;

    let calls = rig.sim.calls();
    for kind in FaultKind::ALL {
        assert!(
            calls.by_fault.get(kind.name()).copied().unwrap_or(0) > 0,
            "no {} fault served: {calls:?}",
            kind.name()
        );
    }
    // Every broken answer served was caught and stored as its anomaly; a
    // missing list or a mistyped field can only be caught where there was a
    // record to lose or a field orderflow reads.
    let anomalies = store.anomaly_counts().await.unwrap();
    let stored = |kind: &str| anomalies.iter().filter(|(_, _, k, _)| k == kind).map(|(_, _, _, n)| *n).sum::<u64>();
    assert_eq!(stored("html"), calls.fault(FaultKind::BadGateway), "{anomalies:?} {calls:?}");
    assert_eq!(stored("empty"), calls.fault(FaultKind::EmptyBody), "{anomalies:?} {calls:?}");
    assert_eq!(stored("truncated"), calls.fault(FaultKind::Truncated), "{anomalies:?} {calls:?}");
    assert!(stored("missing_list") <= calls.fault(FaultKind::MissingList));
    assert!(stored("wrong_type") <= calls.fault(FaultKind::WrongType));
    assert!(stored("missing_list") + stored("wrong_type") > 0, "{anomalies:?} {calls:?}");
    let breaker = store.load_breaker("taobao", SHOP, "orders.increment").await.unwrap().expect("stored");
    assert_eq!(breaker.state, "closed", "recovered faults never open the breaker: {breaker:?}");
    assert!(!breaker.outcomes.contains('x') && !breaker.outcomes.is_empty(), "no operation failed: {breaker:?}");
    rig.assert_matches_truth(&store, "5 % faults").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_ban_midway_is_waited_out_without_a_single_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "ban.db").await;
    let rig = Rig::new(SimConfig { latency: Duration::from_millis(20), ..sim_config(4_000, 0.0) }, store.clone()).await;
    let backfill = rig.flow("backfill.yaml", &backfill_flow(", page_size: 50"));
    let banned_at = {
        let sim = &rig.sim;
        let run = rig.run(&backfill);
        tokio::pin!(run);
        let banned_at = loop {
            tokio::select! {
                _ = &mut run => panic!("the backfill ended before the ban"),
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            if sim.calls().total >= 20 {
                sim.ban_for(Duration::from_secs(30));
                break Instant::now();
            }
        };
        run.await;
        banned_at
    };
    assert!(banned_at.elapsed() >= Duration::from_secs(30), "the sync finished during the ban");
    let calls = rig.sim.calls();
    assert_eq!(calls.during_ban, 1, "only the call that met the ban reached the gateway during it: {calls:?}");
    assert!(
        store.active_bans(Utc::now() - chrono::Duration::seconds(40)).await.unwrap().len() == 1,
        "the ban was stored"
    );
    rig.assert_matches_truth(&store, "ban").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_of_hours_pauses_the_run_at_its_last_committed_page_and_the_next_process_stays_off() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "long-ban.db").await;
    let mut rig = Rig::new(sim_config(3_000, 0.0), store.clone()).await;
    let backfill = rig.flow("backfill.yaml", &backfill_flow(", page_size: 20"));
    let report = {
        let run = rig.run_any(&backfill);
        tokio::pin!(run);
        loop {
            tokio::select! {
                report = &mut run => break report,
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
            if rig.sim.calls().total == 30 {
                rig.sim.ban_for(Duration::from_secs(3 * 3600));
            }
        }
    };
    assert_eq!(report.status, RunStatus::Paused, "{:?}", report.error);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("banned") && error.contains("sim-app-key"), "{error}");
    assert!(rig.sim.calls().during_ban <= 1, "{:?}", rig.sim.calls());

    // The cursor claims exactly what is stored: every order created after
    // its position, none before.
    let cursor = store.load_cursor("taobao", SHOP, FULL_STREAM).await.unwrap().expect("a committed page");
    let next_end: chrono::DateTime<Utc> = cursor["next_end"].as_str().unwrap().parse().unwrap();
    assert_eq!(cursor["complete"], false);
    let stored = store.stored_orders("taobao", SHOP).await.unwrap().len();
    let expected = rig.sim.truth().orders.iter().filter(|o| o.listed_by_default() && o.created >= next_end).count();
    assert!(stored >= expected && stored > 0, "{stored} stored, {expected} created after the cursor");

    let before = rig.sim.calls().total;
    rig.restart().await;
    let again = rig.run_any(&backfill).await;
    assert_eq!(again.status, RunStatus::Paused, "{:?}", again.error);
    assert_eq!(rig.sim.calls().total, before, "a new process knows the ban and makes no call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_channel_in_outage_degrades_to_hourly_full_pulls_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "breaker.db").await;
    let (clock, hand) = Clock::manual(Utc::now());
    // An outage answers every call with the platform's own fault, which
    // retries do not get past (an overload would be halved and waited out).
    let sim =
        SimConfig { fault_kinds: vec![FaultKind::RemoteTimeout, FaultKind::BadGateway], ..sim_config(3_000, 0.0) };
    let rig = Rig::with_clock(sim, store.clone(), clock).await;
    rig.run(&rig.flow("backfill.yaml", &backfill_flow(""))).await;
    let incremental = rig.flow(
        "incremental.yaml",
        &incremental_flow(
            ", page_size: 20, overload_wait: 1s, breaker: {failure_rate: 20, window: 10, min_calls: 1, full_pull_every: 1h, full_pull_period: 3d, probe_after: 3h}",
        ),
    );
    let method_calls = |method: &str| rig.sim.calls().by_method.get(method).copied().unwrap_or(0);

    rig.sim.set_method_fault_rate(INCREMENT_METHOD, Some(1.0));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    rig.sim.mutate_now(1_500);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let report = rig.run_any(&incremental).await;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let breaker = store.load_breaker("taobao", SHOP, "orders.increment").await.unwrap().expect("stored");
    assert_eq!(breaker.state, "open", "a listing that failed after its retries opens the breaker: {breaker:?}");
    assert_eq!(breaker.outcomes, "x", "one operation, counted once for its seven attempts: {breaker:?}");
    let full_pulls = method_calls("taobao.trades.sold.get");

    hand.advance(chrono::Duration::minutes(30));
    let between = rig.run_any(&incremental).await;
    assert_eq!(between.status, RunStatus::Paused, "between hourly pulls: {:?}", between.error);
    assert!(between.error.unwrap_or_default().contains("next full pull"));
    assert_eq!(method_calls("taobao.trades.sold.get"), full_pulls, "no call between pulls");

    hand.advance(chrono::Duration::minutes(31));
    let increments = method_calls(INCREMENT_METHOD);
    rig.run(&incremental).await;
    assert!(method_calls("taobao.trades.sold.get") > full_pulls, "an hour later: another full pull");
    assert_eq!(method_calls(INCREMENT_METHOD), increments, "the broken channel is left alone while open");

    rig.sim.set_method_fault_rate(INCREMENT_METHOD, None);
    hand.advance(chrono::Duration::hours(3));
    settle(&rig).await;
    rig.run(&incremental).await;
    let breaker = store.load_breaker("taobao", SHOP, "orders.increment").await.unwrap().expect("stored");
    assert_eq!(breaker.state, "closed", "a healthy probe closes it: {breaker:?}");
    assert!(method_calls(INCREMENT_METHOD) > increments, "back on the incremental channel");
    rig.assert_matches_truth(&store, "breaker").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_removed_from_the_flow_no_longer_acts_and_one_closes_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "no-breaker.db").await;
    let rig = Rig::new(sim_config(500, 0.0), store.clone()).await;
    rig.run(&rig.flow("backfill.yaml", &backfill_flow(""))).await;
    let open = |at| BreakerRow {
        platform: "taobao".into(),
        shop: SHOP.into(),
        channel: "orders.increment".into(),
        state: "open".into(),
        outcomes: "xxxx".into(),
        opened_at: Some(at),
        last_degraded_at: Some(at),
        updated_at: at,
    };
    // An earlier version of the flow had a breaker, and left it open.
    store.save_breaker(&open(Utc::now())).await.unwrap();
    let lists = rig.sim.calls().by_method.get(INCREMENT_METHOD).copied().unwrap_or(0);
    let report = rig.run_any(&rig.flow("incremental.yaml", &incremental_flow(""))).await;
    assert_eq!(report.status, RunStatus::Succeeded, "no breaker, no pause: {:?}", report.error);
    assert!(rig.sim.calls().by_method.get(INCREMENT_METHOD).copied().unwrap_or(0) > lists, "the channel was read");
    let row = store.load_breaker("taobao", SHOP, "orders.increment").await.unwrap().expect("stored");
    assert_eq!(row.state, "closed", "the stale state was closed, so it shows nowhere: {row:?}");

    store.save_breaker(&open(Utc::now())).await.unwrap();
    let closed = store.close_breakers("taobao", SHOP, None, Utc::now()).await.unwrap();
    assert_eq!(closed, ["orders.increment"]);
    let row = store.load_breaker("taobao", SHOP, "orders.increment").await.unwrap().expect("stored");
    assert_eq!((row.state.as_str(), row.outcomes.as_str(), row.opened_at), ("closed", "", None));
    assert!(store.close_breakers("taobao", SHOP, None, Utc::now()).await.unwrap().is_empty(), "nothing left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_bans_every_call_for_two_seconds_pauses_the_run_within_a_few_calls() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "ban-loop.db").await;
    let rig = Rig::new(sim_config(500, 0.0), store.clone()).await;
    rig.sim.ban_every_call(Some(Duration::from_secs(2)));
    let started = Instant::now();
    let report = rig.run_any(&rig.flow("backfill.yaml", &backfill_flow(""))).await;
    assert_eq!(report.status, RunStatus::Paused, "{:?}", report.error);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("times in a row"), "{error}");
    let calls = rig.sim.calls().total;
    assert!(calls <= u64::from(MAX_BANS_IN_A_ROW) + 1, "{calls} calls into a gateway that bans every one");
    assert!(started.elapsed() < Duration::from_secs(20), "paused after {:?}", started.elapsed());
    assert_eq!(store.active_bans(Utc::now()).await.unwrap().len(), 1, "the ban is recorded for later runs");
}

/// One "process" on the simulator's app key at `per_minute`: its connectors,
/// booking their calls in `store` as `orderflow run` and `serve` do.
async fn process(sim: &SimHandle, store: &Store, per_minute: u32) -> Arc<dyn Platform> {
    let source = format!(
        "shops:\n  {SHOP}:\n    platform: taobao\n    gateway: {}\n    app_key: {}\n    app_secret: ${{SECRET}}\n    session: ${{SESSION}}\n    rate_limit_per_min: {per_minute}\n",
        sim.gateway_url(),
        sim.config().app_key
    );
    let env = HashMap::from([
        ("SECRET".to_owned(), sim.config().app_secret.clone()),
        ("SESSION".to_owned(), sim.config().session.clone()),
    ]);
    let config = Config::parse(Path::new("test.yaml"), &source, &env).expect("config");
    let platforms = Platforms::from_config(&config).expect("platforms");
    platforms.restore(store).await.expect("restore");
    platforms.get(SHOP).expect("the shop")
}

/// Calls as fast as the gate lets three callers for `span`, against a
/// gateway that bans at `per_minute` calls in any sliding minute, with a new
/// process every `restart_every` (or one for the whole span); returns the
/// calls made. No call may be banned.
async fn calls_under_a_sliding_minute(per_minute: u32, span: Duration, restart_every: Option<Duration>) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "pace.db").await;
    let sim = SimConfig { orders: 20, rate_limit_per_min: Some(per_minute), ..SimConfig::default() };
    let sim = Simulator::start(sim, ([127, 0, 0, 1], 0).into()).await.expect("simulator");
    let tid = sim.truth().orders[0].tid;
    let deadline = Instant::now() + span;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let lifetime = restart_every.map_or(left, |every| every.min(left));
        let platform = process(&sim, &store, per_minute).await;
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let platform = platform.clone();
            callers.spawn(async move {
                let end = Instant::now() + lifetime;
                while let Some(left) = end.checked_duration_since(Instant::now()) {
                    // A call still waiting for its turn at the end dies with its process.
                    if let Ok(answer) = tokio::time::timeout(left, platform.order_detail(tid, &[])).await {
                        answer.expect("no call is refused");
                    }
                }
            });
        }
        callers.join_all().await;
    }
    let calls = sim.calls();
    assert_eq!(calls.banned, 0, "{per_minute}/min over {span:?}, restarted every {restart_every:?}: {calls:?}");
    calls.total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_in_every_sliding_minute_for_a_run_and_across_restarts() {
    // 20 a minute for a little over a minute: a burst of a minute's
    // allowance, at the start or at any restart, would be banned.
    let span = Duration::from_secs(66);
    let (one, restarted) = tokio::join!(
        calls_under_a_sliding_minute(20, span, None),
        calls_under_a_sliding_minute(20, span, Some(Duration::from_secs(8))),
    );
    eprintln!("20/min over {span:?}: {one} calls in one process, {restarted} restarted every 8 s");
    assert!(one > 20, "more than a minute's allowance went out, so the minute was tested: {one}");
    // A process that ends loses the call it had booked and not made (one
    // interval, 3 s at 20 a minute): 8 restarts cost a few calls, no more
    // (16 on a quiet machine, 13 with the rest of the suite beside it).
    assert!(restarted >= 11, "restarts keep the pace, they do not stall it: {restarted}");
}

/// The soak: `rate_limit_per_min: 100` for five minutes, one process and one
/// restarted every 8 s (`cargo test --test resilience -- --ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a five-minute soak"]
async fn soak_the_rate_limit_holds_at_100_a_minute_for_five_minutes() {
    let span = Duration::from_secs(300);
    let (one, restarted) = tokio::join!(
        calls_under_a_sliding_minute(100, span, None),
        calls_under_a_sliding_minute(100, span, Some(Duration::from_secs(8))),
    );
    eprintln!("100/min over {span:?}: {one} calls in one process, {restarted} restarted every 8 s");
    assert!(one >= 480, "{one}");
    assert!(restarted >= 440, "{restarted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_marks_the_shop_raises_one_alert_and_stops_calling() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "session.db").await;
    let mut rig = Rig::new(sim_config(2_000, 0.0), store.clone()).await;
    rig.run(&rig.flow("backfill.yaml", &backfill_flow(""))).await;
    let incremental = rig.flow("incremental.yaml", &incremental_flow(", page_size: 20"));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    rig.sim.mutate_now(800);
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    rig.sim.expire_session_at(Utc::now());
    let report = rig.run_any(&incremental).await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(report.error.unwrap_or_default().contains("authorised again"));
    let calls = rig.sim.calls();
    assert!(calls.after_session_expiry >= 1 && calls.after_session_expiry <= 2, "{calls:?}");
    let marked = store.shops_needing_reauth().await.unwrap();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].shop, SHOP);
    let alerts = store.open_alerts().await.unwrap();
    assert_eq!(alerts.iter().filter(|a| a.kind == NEEDS_REAUTH_ALERT && a.shop == SHOP).count(), 1, "{alerts:?}");

    // Another process, another run: no call at all, no second alert.
    rig.restart().await;
    let again = rig.run_any(&incremental).await;
    assert_eq!(again.status, RunStatus::Failed);
    assert_eq!(rig.sim.calls().after_session_expiry, calls.after_session_expiry, "no call with a dead session");
    assert_eq!(store.open_alerts().await.unwrap().len(), alerts.len());

    // The seller authorises again: the shop syncs on from its cursor.
    rig.sim.renew_session();
    assert!(store.clear_needs_reauth("taobao", SHOP).await.unwrap());
    rig.restart().await;
    settle(&rig).await;
    rig.run(&incremental).await;
    rig.assert_matches_truth(&store, "session renewed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_finds_and_repairs_orders_deleted_behind_its_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reconcile.db");
    let store = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let rig = Rig::new(sim_config(6_000, 0.0), store.clone()).await;
    rig.run(&rig.flow("backfill.yaml", &backfill_flow(""))).await;

    // Delete every seventh order of the last three whole days (and its
    // lines), as a careless script would.
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let start = today.pred_opt().unwrap().pred_opt().unwrap().pred_opt().unwrap();
    let in_range = |created: chrono::DateTime<Utc>| {
        let day = created.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
        day >= start && day < today
    };
    let victims: Vec<i64> = rig
        .sim
        .truth()
        .orders
        .iter()
        .filter(|o| o.listed_by_default() && in_range(o.created))
        .map(|o| o.tid)
        .step_by(7)
        .collect();
    assert!(victims.len() >= 5, "{} orders to delete", victims.len());
    let mut db =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    for tid in &victims {
        for table in ["orders", "order_items"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE tid = ?")).bind(tid).execute(&mut db).await.unwrap();
        }
    }

    let details_before = rig.sim.calls().method("taobao.trade.fullinfo.get");
    let report = rig.run(&rig.example("taobao-reconcile-nightly.yaml")).await;
    let found = store.reconciliations("taobao", SHOP, 100).await.unwrap();
    let missing: u64 = found.iter().filter(|r| r.refetched > 0).map(|r| r.missing).sum();
    assert_eq!(missing, victims.len() as u64, "every deleted order found: {found:?}");
    let days = found.iter().filter(|r| r.window_end - r.window_start == chrono::Duration::days(1)).count();
    assert_eq!(days, 3, "one line per day compared");
    let refetched: u64 = found.iter().map(|r| r.refetched).sum();
    let differing_hours = found.iter().filter(|r| r.refetched > 0).count() as u64;
    assert!(differing_hours <= victims.len() as u64, "only differing hours re-fetched");
    assert!(refetched < 3 * 24 * 100, "re-fetched {refetched} orders for {} deleted", victims.len());
    assert_eq!(rig.sim.calls().method("taobao.trade.fullinfo.get"), details_before);
    assert!(report.nodes.iter().any(|n| n.node_id == "save" && n.records_in == refetched));
    rig.assert_matches_truth(&store, "reconciled").await;
}

/// A fixed-offset time zone where it is now early afternoon, so that today
/// has hours of orders whatever time the test runs.
fn zone_in_the_afternoon() -> chrono_tz::Tz {
    use chrono::Timelike;
    let offset = (14 - i64::from(Utc::now().hour())).clamp(-12, 14);
    // POSIX-style names: Etc/GMT-8 is eight hours ahead of UTC.
    let name = match offset {
        0 => "Etc/GMT".to_owned(),
        ahead if ahead > 0 => format!("Etc/GMT-{ahead}"),
        behind => format!("Etc/GMT+{}", -behind),
    };
    name.parse().expect("an Etc/GMT zone")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_repairs_orders_of_today_lost_before_its_settle_margin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("today.db");
    let store = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let sim = SimConfig { seed: 11, orders: 1_500, days: 3, ..SimConfig::default() };
    let rig = Rig::new(sim, store.clone()).await;
    rig.run(&rig.flow("backfill.yaml", &backfill_flow(""))).await;

    // Lose every fourth order created today before the default settle
    // margin of 30 minutes.
    let zone = zone_in_the_afternoon();
    let today = Utc::now().with_timezone(&zone).date_naive();
    let settled = Utc::now() - chrono::Duration::minutes(31);
    let victims: Vec<i64> = rig
        .sim
        .truth()
        .orders
        .iter()
        .filter(|o| o.listed_by_default() && o.created.with_timezone(&zone).date_naive() == today)
        .filter(|o| o.created < settled)
        .map(|o| o.tid)
        .step_by(4)
        .collect();
    assert!(victims.len() >= 20, "{} orders of today to delete", victims.len());
    let mut db =
        <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    for tid in &victims {
        for table in ["orders", "order_items"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE tid = ?")).bind(tid).execute(&mut db).await.unwrap();
        }
    }

    let flow = format!(
        "flow: reconcile\nshop: tmall-main\nnodes:\n  compare: {{use: reconcile, with: {{days: 1, timezone: {}}}}}\n  save: {{use: store_orders, input: compare}}\n",
        zone.name()
    );
    rig.run(&rig.flow("reconcile.yaml", &flow)).await;
    let found = store.reconciliations("taobao", SHOP, 100).await.unwrap();
    let missing: u64 = found.iter().filter(|r| r.refetched > 0).map(|r| r.missing).sum();
    assert_eq!(missing, victims.len() as u64, "every lost order of today found by one run: {found:?}");
    let midnight = today.and_hms_opt(0, 0, 0).unwrap().and_local_timezone(zone).unwrap().with_timezone(&Utc);
    // Today as a whole, before the hours it was narrowed down to.
    let compared_today =
        found.iter().filter(|r| r.window_start == midnight).max_by_key(|r| r.window_end).expect("today compared");
    let margin = Utc::now() - compared_today.window_end;
    assert!(
        margin >= chrono::Duration::minutes(30) && margin < chrono::Duration::minutes(31),
        "today compared up to 30 minutes ago: {compared_today:?}"
    );
    rig.assert_matches_truth(&store, "today reconciled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_app_secret_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir, "secret.db").await;
    let rig = Rig::with_app_secret(sim_config(200, 0.0), store.clone(), "not-the-secret").await;
    let report = rig.run_any(&rig.flow("backfill.yaml", &backfill_flow(""))).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("code 25") && !error.contains("not-the-secret"), "{error}");
    assert_eq!(rig.sim.calls().total, 1, "a signature error is never retried");
}
