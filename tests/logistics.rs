//! Stalled parcels end to end against the simulator: `stored_orders` →
//! `logistics_alert` (→ `notify` to a webhook in the test), compared with the
//! simulator's truth.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use orderflow::nodes::logistics_alert::PARCEL_STALLED;
use orderflow::sim::SimConfig;
use orderflow::store::{Alert, Store};
use sha2::Sha256;
use support::rig::Rig;

const TRACE_METHOD: &str = "taobao.logistics.trace.search";
const SECRET_VAR: &str = "ORDERFLOW_TEST_NOTIFY_SECRET";
const SECRET: &str = "test-webhook-secret";

/// Sets the webhook secret once, first thing in every test: `Once` makes the
/// other tests wait, so no thread reads the environment while it is written.
fn init_env() {
    static ENV: Once = Once::new();
    // SAFETY: every test calls this before starting anything that reads the
    // environment, and `call_once` blocks them all until it is done.
    ENV.call_once(|| unsafe { std::env::set_var(SECRET_VAR, SECRET) });
}

async fn rig(dir: &tempfile::TempDir) -> Rig {
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("logistics.db").display())).await.unwrap();
    let rig =
        Rig::new(SimConfig { seed: 5, orders: 3000, days: 30, mutations_per_sec: 0.0, ..SimConfig::default() }, store)
            .await;
    let backfill = "flow: backfill\nshop: tmall-main\nnodes:\n  all: {use: fetch_full, with: {days: 35}}\n  save: {use: store_orders, input: all}\n";
    rig.run(&rig.flow("backfill.yaml", backfill)).await;
    rig
}

/// stored_orders → logistics_alert, and `notify` to `url` when given.
fn alert_flow(recheck: &str, url: Option<&str>) -> String {
    let mut flow = format!(
        "flow: alerts\nshop: tmall-main\nnodes:\n  shipped: {{use: stored_orders, with: {{statuses: [WAIT_BUYER_CONFIRM_GOODS, SELLER_CONSIGNED_PART]}}}}\n  stalled: {{use: logistics_alert, input: shipped, with: {{recheck_after: {recheck}}}}}\n"
    );
    if let Some(url) = url {
        flow.push_str(&format!(
            "  tell: {{use: notify, input: stalled, with: {{url: '{url}', secret_env: {SECRET_VAR}, backoff: 10ms}}}}\n"
        ));
    }
    flow
}

async fn open_stalled(store: &Store) -> BTreeMap<i64, Alert> {
    store
        .open_alerts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == PARCEL_STALLED)
        .map(|a| (a.tid.expect("a tid"), a))
        .collect()
}

fn stalled_per_truth(rig: &Rig) -> BTreeSet<i64> {
    rig.sim.truth().stalled_parcels(chrono::Duration::hours(72)).into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stalled_parcel_gets_one_alert_which_resolves_once_it_moves() {
    init_env();
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(&dir).await;
    let stalled = stalled_per_truth(&rig);
    assert!(stalled.len() >= 2, "the shop has stalled parcels: {stalled:?}");

    rig.run(&rig.flow("alerts.yaml", &alert_flow("6h", None))).await;
    let open = open_stalled(&rig.store).await;
    assert_eq!(open.keys().copied().collect::<BTreeSet<_>>(), stalled, "one alert per stalled parcel, none else");
    let first = open.values().next().expect("an alert");
    assert!(first.detail.contains("has not moved for"), "{}", first.detail);
    let traced = rig.sim.calls().method(TRACE_METHOD);
    assert!(traced > stalled.len() as u64, "the moving parcels were read too");

    // Again: every check is fresh, so no call and no second alert.
    rig.run(&rig.flow("alerts.yaml", &alert_flow("6h", None))).await;
    assert_eq!(rig.sim.calls().method(TRACE_METHOD), traced, "checks younger than recheck_after are not redone");
    assert_eq!(open_stalled(&rig.store).await, open);

    // One parcel moves: read again, its alert resolves, the others stay.
    let moved = *stalled.iter().next().expect("a stalled parcel");
    assert!(rig.sim.move_parcel(moved));
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    rig.run(&rig.flow("alerts.yaml", &alert_flow("1s", None))).await;
    let now_open = open_stalled(&rig.store).await;
    assert!(!now_open.contains_key(&moved), "the moved parcel's alert resolved");
    assert_eq!(now_open.len(), open.len() - 1);
    for (tid, alert) in &now_open {
        assert_eq!(alert.id, open[tid].id, "no second alert for order {tid}");
    }
    assert_eq!(stalled_per_truth(&rig), now_open.keys().copied().collect());
}

/// What the webhook saw.
#[derive(Default)]
struct Received {
    /// Requests per delivery key.
    tries: BTreeMap<String, u32>,
    /// Accepted (2xx) requests per delivery key.
    accepted: BTreeMap<String, u32>,
    /// Requests whose signature did not match.
    bad_signatures: u32,
}

/// Answers 500 to the first request of each key and 200 after; checks the
/// signature of every request.
async fn webhook(State(received): State<Arc<Mutex<Received>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let signature = headers.get("x-orderflow-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let key = format!("{}/{}", json["alert_id"], json["state"].as_str().unwrap());
    assert_eq!(headers.get("x-orderflow-delivery-key").unwrap(), key.as_str());
    let mut received = received.lock().unwrap();
    if signature != expected {
        received.bad_signatures += 1;
    }
    let tries = received.tries.entry(key.clone()).or_default();
    *tries += 1;
    if *tries == 1 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    *received.accepted.entry(key).or_default() += 1;
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_alert_reaches_the_webhook_once_signed_despite_a_failing_first_try() {
    init_env();
    let dir = tempfile::tempdir().unwrap();
    let rig = rig(&dir).await;
    let received = Arc::new(Mutex::new(Received::default()));
    let app = axum::Router::new().route("/hook", axum::routing::post(webhook)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    rig.run(&rig.flow("alerts.yaml", &alert_flow("6h", Some(&url)))).await;
    let open = open_stalled(&rig.store).await;
    assert!(!open.is_empty());
    let expected: BTreeMap<String, u32> = open.values().map(|a| (format!("{}/raised", a.id), 1)).collect();
    {
        let received = received.lock().unwrap();
        assert_eq!(received.accepted, expected, "each alert accepted exactly once");
        assert!(received.tries.values().all(|t| *t == 2), "one 500, then one 200: {:?}", received.tries);
        assert_eq!(received.bad_signatures, 0);
    }

    // Rechecked at once: the open alerts come through again, and are not
    // delivered again.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    rig.run(&rig.flow("alerts.yaml", &alert_flow("1s", Some(&url)))).await;
    let received = received.lock().unwrap();
    assert_eq!(received.accepted, expected, "a rerun delivers nothing new");
    assert!(received.tries.values().all(|t| *t == 2), "nor tries to");
}
