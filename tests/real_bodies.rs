//! Answers as TOP really writes them (`tests/fixtures/taobao/`, written from
//! the official documentation's samples; see the README there): the client
//! reads every one of them, and the shipped `taobao-incremental` flow syncs
//! orders whose detail nests `promotion_details`, `service_tags` and
//! `logistics_infos`. A small gateway in the test answers with those bodies,
//! so nothing here is shaped by our own simulator.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::routing::post;
use chrono::{DateTime, Utc};
use orderflow::config::{self, Config};
use orderflow::engine::{Engine, EngineOptions};
use orderflow::flow::{CompileEnv, compile};
use orderflow::nodes::{BuildContext, Registry};
use orderflow::platforms::taobao::{TaobaoClient, time};
use orderflow::platforms::{ErrorKind, Money, PageRequest, Platform, Platforms, TimeWindow};
use orderflow::script::{Limits, Sandbox};
use orderflow::store::{RunStatus, Store};
use serde_json::{Value as Json, json};
use tokio_util::sync::CancellationToken;

type Params = BTreeMap<String, String>;

const SHOP: &str = "tmall-main";
const INCREMENT: &str = "taobao.trades.sold.increment.get";
const FULLINFO: &str = "taobao.trade.fullinfo.get";

fn fixture(name: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/taobao").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A gateway answering each method with one body, as TOP would: the
/// incremental listing holds only the trades modified in the window asked
/// for, like the real one. It counts the calls by method.
#[derive(Default)]
struct Gateway {
    bodies: BTreeMap<&'static str, Json>,
    calls: Mutex<BTreeMap<String, u64>>,
}

impl Gateway {
    fn with(mut self, method: &'static str, body: Json) -> Self {
        self.bodies.insert(method, body);
        self
    }

    fn calls(&self, method: &str) -> u64 {
        self.calls.lock().unwrap().get(method).copied().unwrap_or(0)
    }
}

async fn answer(State(gateway): State<Arc<Gateway>>, Query(query): Query<Params>, Form(form): Form<Params>) -> String {
    let method = query.get("method").cloned().unwrap_or_default();
    *gateway.calls.lock().unwrap().entry(method.clone()).or_default() += 1;
    let Some(body) = gateway.bodies.get(method.as_str()) else {
        return json!({"error_response": {"code": 22, "msg": "Invalid Method"}}).to_string();
    };
    let mut body = body.clone();
    if method == INCREMENT {
        // TOP times in GMT+8 compare as text.
        let (start, end) = (&form["start_modified"], &form["end_modified"]);
        let root = &mut body["trades_sold_increment_get_response"];
        if let Some(trades) = root["trades"]["trade"].as_array_mut() {
            trades.retain(|trade| {
                trade["modified"].as_str().is_some_and(|at| start.as_str() <= at && at <= end.as_str())
            });
        }
    }
    body.to_string()
}

/// Serves `gateway`; returns its URL.
async fn serve(gateway: Arc<Gateway>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().route("/router/rest", post(answer)).with_state(gateway);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/router/rest")
}

/// The shop's secrets, as the environment would hold them.
fn secrets() -> HashMap<String, String> {
    HashMap::from([
        ("SECRET".to_owned(), "test-secret-0123456789".to_owned()),
        ("SESSION".to_owned(), "test-session-0123456789".to_owned()),
    ])
}

fn shop_yaml(gateway: &str) -> String {
    format!(
        "shops:\n  {SHOP}:\n    platform: taobao\n    gateway: {gateway}\n    app_key: \"12345678\"\n    \
         app_secret: ${{SECRET}}\n    session: ${{SESSION}}\n    rate_limit_per_min: 100000\n"
    )
}

async fn client(gateway: Gateway) -> (TaobaoClient, Arc<Gateway>) {
    let gateway = Arc::new(gateway);
    let url = serve(gateway.clone()).await;
    let config = Config::parse(Path::new("test.yaml"), &shop_yaml(&url), &secrets()).expect("config");
    let shop: config::Shop = config.shop(SHOP).expect("the shop's secrets");
    (TaobaoClient::with_timeout(SHOP, &shop, Duration::from_secs(5)).unwrap(), gateway)
}

fn at(text: &str) -> DateTime<Utc> {
    time::parse(text).unwrap()
}

fn window(start: &str, end: &str) -> TimeWindow {
    TimeWindow { start: at(start), end: at(end) }
}

const WITH_TOTAL: PageRequest = PageRequest { page_no: 1, page_size: 100, with_total: true };

#[tokio::test]
async fn every_documented_body_is_read_with_its_values() {
    let (client, _) = client(
        Gateway::default()
            .with("taobao.trades.sold.get", fixture("trades_sold_get.json"))
            .with(INCREMENT, fixture("trades_sold_increment_get.json"))
            .with(FULLINFO, fixture("trade_fullinfo_get.json"))
            .with("taobao.refunds.receive.get", fixture("refunds_receive_get.json"))
            .with("taobao.refund.get", fixture("refund_get.json")),
    )
    .await;
    let day = window("2026-11-24 00:00:00", "2026-11-25 00:00:00");

    let page = client.orders_created(day, WITH_TOTAL, &[]).await.unwrap();
    assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    assert_eq!((page.total, page.has_next), (Some(2), false));
    let summary: Vec<_> = page
        .items
        .iter()
        .map(|o| (o.tid, o.status.as_str(), o.payment, o.items.len(), o.order_type.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            (2_231_958_349, "WAIT_BUYER_CONFIRM_GOODS", Money(20007), 1, "fixed"),
            (2_231_958_350, "WAIT_SELLER_SEND_GOODS", Money(52570), 1, "step")
        ]
    );
    let line = &page.items[0].items[0];
    assert_eq!(
        (line.oid, line.num_iid, line.sku_id.as_deref(), line.num),
        (2_231_958_349, Some(3_424_234), Some("5937146"), 1)
    );
    assert_eq!(line.refund_status, None, "NO_REFUND is no refund");
    assert_eq!(page.items[0].step_trade_status, None, "an empty step_trade_status is none");
    assert_eq!(page.items[1].step_trade_status.as_deref(), Some("FRONT_PAID_FINAL_NOPAID"));
    assert_eq!(page.items[1].items[0].sku_id.as_deref(), Some("5937147"), "a sku_id written as a number");

    let page =
        client.orders_modified(window("2026-11-24 10:00:00", "2026-11-24 11:00:00"), WITH_TOTAL, &[]).await.unwrap();
    assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    assert!(!page.has_next);
    let [open, closed] = &page.items[..] else { panic!("two trades: {:?}", page.items) };
    assert_eq!((open.tid, open.payment, open.items.len()), (289_749_893_209_214_687, Money(2), 2));
    assert_eq!(open.items[1].oid, 289_749_893_211_214_687, "an oid written as a string");
    assert_eq!(open.modified, at("2026-11-24 10:21:30"));
    assert_eq!((closed.status.as_str(), closed.items[0].refund_status.as_deref()), ("TRADE_CLOSED", Some("SUCCESS")));
    assert_eq!(closed.items[0].refund_id, Some(9_000_000_000_000_001));

    let detail = client.order_detail(289_749_893_209_214_687, &[]).await.unwrap().expect("the trade");
    assert_eq!((detail.status.as_str(), detail.payment, detail.items.len()), ("WAIT_SELLER_SEND_GOODS", Money(2), 2));
    assert_eq!(
        detail.raw,
        fixture("trade_fullinfo_get.json")["trade_fullinfo_get_response"]["trade"],
        "raw as it came"
    );
    assert_eq!(detail.raw["promotion_details"]["promotion_detail"][0]["discount_fee"], "10.00");
    assert_eq!(
        detail.raw["service_tags"]["logistics_tag"][0]["logistic_service_tag_list"]["logistic_service_tag"][0]["service_type"],
        "FAST"
    );
    assert_eq!(detail.raw["logistics_infos"]["logistics_info"].as_array().map(Vec::len), Some(2));

    let page = client.refunds_modified(day, WITH_TOTAL).await.unwrap();
    assert!(page.rejected.is_empty(), "{:?}", page.rejected);
    let refunds: Vec<_> =
        page.items.iter().map(|r| (r.refund_id, r.tid, r.oid, r.status.as_str(), r.refund_fee)).collect();
    assert_eq!(
        refunds,
        [
            (9_000_000_000_000_001, 2_231_958_349, 2_231_958_349, "SUCCESS", Money(20007)),
            (9_000_000_000_000_002, 1_368_678_412_452_073, 1_368_678_412_452_073, "WAIT_SELLER_AGREE", Money(2000))
        ]
    );
    assert_eq!(page.total, Some(2));

    let refund = client.refund(9_000_000_000_000_002).await.unwrap().expect("the refund");
    assert_eq!((refund.refund_fee, refund.modified), (Money(2000), at("2026-11-24 11:00:00")));
    assert_eq!(refund.raw["refund_remind_timeout"]["exist_timeout"], true);
    assert_eq!(refund.raw["combine_item_info"]["combine_sub_item_d_o"][0]["quantity"], 1);
}

#[tokio::test]
async fn an_older_answer_with_a_total_as_text_and_one_line_as_an_object_is_read() {
    let (client, _) =
        client(Gateway::default().with("taobao.trades.sold.get", fixture("trades_sold_get_older.json"))).await;
    let page =
        client.orders_created(window("2026-11-20 00:00:00", "2026-11-21 00:00:00"), WITH_TOTAL, &[]).await.unwrap();
    assert_eq!((page.total, page.has_next, page.rejected.len()), (Some(1), false, 0));
    let [order] = &page.items[..] else { panic!("one trade: {:?}", page.items) };
    assert_eq!(
        (order.tid, order.status.as_str(), order.payment),
        (1_368_678_412_452_073, "TRADE_FINISHED", Money(8620))
    );
    let [line] = &order.items[..] else { panic!("one line: {:?}", order.items) };
    assert_eq!(
        (line.oid, line.num_iid, line.num, line.price),
        (1_368_678_412_452_073, Some(100_018_587_597), 1, Money(9620))
    );
}

#[tokio::test]
async fn the_documented_error_response_is_a_refused_session() {
    let (client, _) = client(Gateway::default().with(FULLINFO, fixture("error_response.json"))).await;
    let error = client.order_detail(1, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::SessionExpired);
    assert_eq!(error.request_id.as_deref(), Some("6ng7c7k5hwx5"));
    assert_eq!(
        error.to_string(),
        "taobao.trade.fullinfo.get: code 27 (Invalid session), sub_code invalid-sessionkey (SessionKey非法)"
    );
}

/// Every TOP time of `value` (a string such as `2026-11-24 10:21:30`) moved
/// by `by`, so that the documented bodies fall into the windows a run asks
/// for today.
fn shift_times(value: &mut Json, by: chrono::Duration) {
    match value {
        Json::String(text) => {
            if let Some(at) = time::parse(text) {
                *text = time::format(at + by);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|item| shift_times(item, by)),
        Json::Object(fields) => fields.values_mut().for_each(|field| shift_times(field, by)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_incremental_flow_stores_orders_whose_detail_nests_objects() {
    // The newest change of the bodies, 10:30, becomes ten minutes ago.
    let by = Utc::now() - chrono::Duration::minutes(10) - at("2026-11-24 10:30:00");
    let mut listing = fixture("trades_sold_increment_get.json");
    let mut detail = fixture("trade_fullinfo_get.json");
    shift_times(&mut listing, by);
    shift_times(&mut detail, by);
    let gateway = Arc::new(Gateway::default().with(INCREMENT, listing).with(FULLINFO, detail));
    let url = serve(gateway.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("real.db").display())).await.unwrap();
    let config = Config::parse(Path::new("test.yaml"), &shop_yaml(&url), &secrets()).expect("config");
    let mut build = BuildContext::new(env!("CARGO_MANIFEST_DIR"), Sandbox::new(Limits::default()));
    build.platforms = Platforms::from_config(&config).expect("platforms");
    let registry = Registry::builtin();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/taobao-incremental.yaml");
    let source = std::fs::read_to_string(&path).unwrap();
    let shops = config.shop_names();
    let flow = compile(&path, &source, &CompileEnv { registry: &registry, build: &build, shops: &shops })
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(registry, build, store.clone(), EngineOptions::default());

    let report = engine.run(&flow, "test", CancellationToken::new()).await.expect("run recorded");
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    assert_eq!(gateway.calls(FULLINFO), 1, "the order waiting to ship has its detail read");

    let stored: BTreeMap<i64, _> =
        store.stored_orders("taobao", SHOP).await.unwrap().into_iter().map(|order| (order.tid, order)).collect();
    let summary: Vec<_> = stored.values().map(|o| (o.tid, o.status.as_str(), o.payment.as_str(), o.items)).collect();
    assert_eq!(
        summary,
        [(2_231_958_349, "TRADE_CLOSED", "200.07", 1), (289_749_893_209_214_687, "WAIT_SELLER_SEND_GOODS", "0.02", 2)]
    );
    let stream = orderflow::sync::flow_stream(orderflow::sync::INCREMENT_STREAM, &flow.name, "changed");
    let cursor = store.load_cursor("taobao", SHOP, &stream).await.unwrap().expect("the flow's own cursor");
    let until = orderflow::sync::modified_until(&cursor);
    let newest = at("2026-11-24 10:30:00") + by;
    assert!(until.is_some_and(|until| until >= newest), "the cursor moved past the orders read: {cursor}");
}
