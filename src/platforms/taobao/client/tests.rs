//! The client against a tiny local gateway: what goes on the wire, what comes
//! back, and that no secret leaks on the way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::TimeZone;
use serde_json::json;

use super::*;

const SECRET: &str = "app-secret-0123456789abcdef";
/// Long and with characters the query string escapes, so that an echoed URL
/// shows it encoded and a cut excerpt would show only its start.
const SESSION: &str = "session 6102a8b9c0d1e2f3a4b5/6102a8b9c0d1e2f3a4b5+6102a8b9c0d1e2f3a4b5";

type Params = BTreeMap<String, String>;

/// One request as the gateway saw it.
#[derive(Debug, Clone)]
struct Seen {
    query: Params,
    form: Params,
    content_type: String,
}

/// A gateway answering each method with a canned status and body.
#[derive(Default)]
struct Fake {
    answers: BTreeMap<&'static str, (StatusCode, String)>,
    seen: Mutex<Vec<Seen>>,
}

impl Fake {
    fn answer(mut self, method: &'static str, body: Json) -> Self {
        self.answers.insert(method, (StatusCode::OK, body.to_string()));
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn gateway(
    State(fake): State<Arc<Fake>>,
    Query(query): Query<Params>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> impl IntoResponse {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let method = query.get("method").cloned().unwrap_or_default();
    fake.seen.lock().unwrap().push(Seen { query, form, content_type });
    match fake.answers.get(method.as_str()) {
        Some((status, body)) => (*status, body.clone()),
        None => (StatusCode::OK, json!({"error_response": {"code": 22, "msg": "Invalid Method"}}).to_string()),
    }
}

/// Serves `router` on a free local port; returns the gateway URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/router/rest")
}

async fn start(fake: Fake) -> (TaobaoClient, Arc<Fake>) {
    let fake = Arc::new(fake);
    let url = serve(Router::new().route("/router/rest", post(gateway)).with_state(fake.clone())).await;
    (client(&url, "hmac-sha256"), fake)
}

fn client(gateway: &str, sign_method: &str) -> TaobaoClient {
    let shop: config::Shop = serde_json::from_value(json!({
        "platform": "taobao", "gateway": gateway, "app_key": "12345678",
        "app_secret": SECRET, "session": SESSION, "sign_method": sign_method, "rate_limit_per_min": 600
    }))
    .unwrap();
    TaobaoClient::with_timeout("tmall", &shop, Duration::from_secs(5)).unwrap()
}

fn window(start: (u32, u32), end: (u32, u32)) -> TimeWindow {
    let at = |(hour, minute)| Utc.with_ymd_and_hms(2026, 11, 24, hour, minute, 0).single().unwrap();
    TimeWindow { start: at(start), end: at(end) }
}

const FIRST_PAGE: PageRequest = PageRequest { page_no: 1, page_size: 50, with_total: false };

fn trade(tid: i64) -> Json {
    json!({"tid": tid, "status": "WAIT_SELLER_SEND_GOODS", "type": "fixed", "created": "2026-11-24 09:00:00",
        "modified": "2026-11-24 10:10:00", "payment": "12.50",
        "orders": {"order": [{"oid": tid + 1, "num": 1, "price": "12.50", "payment": "12.50"}]}})
}

#[tokio::test]
async fn a_call_puts_system_params_in_the_query_and_business_params_in_a_signed_form() {
    let answer = json!({"trades_sold_increment_get_response": {
        "has_next": true, "trades": {"trade": [trade(4_611_686_018_427_387_905)]}, "request_id": "r1"}});
    let (client, fake) = start(Fake::default().answer("taobao.trades.sold.increment.get", answer)).await;

    let page = client.orders_modified(window((2, 0), (2, 30)), FIRST_PAGE, &[]).await.unwrap();

    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].tid, 4_611_686_018_427_387_905);
    assert_eq!(page.items[0].shop, "tmall");
    assert!(page.has_next);
    assert_eq!(page.total, None);
    assert_eq!(client.calls(), BTreeMap::from([("taobao.trades.sold.increment.get".to_owned(), 1)]));

    let [seen] = &fake.seen()[..] else { panic!("one request expected") };
    let keys = |params: &Params| params.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&seen.query), ["app_key", "format", "method", "session", "sign", "sign_method", "timestamp", "v"]);
    assert_eq!(
        keys(&seen.form),
        ["end_modified", "fields", "page_no", "page_size", "start_modified", "type", "use_has_next"]
    );
    assert_eq!(seen.content_type, "application/x-www-form-urlencoded;charset=utf-8");
    assert_eq!(seen.query["method"], "taobao.trades.sold.increment.get");
    assert_eq!((seen.query["v"].as_str(), seen.query["format"].as_str()), ("2.0", "json"));
    assert_eq!((seen.query["session"].as_str(), seen.query["sign_method"].as_str()), (SESSION, "hmac-sha256"));

    // The signature covers the query and the body together.
    let all = seen.query.iter().chain(&seen.form).map(|(k, v)| (k.as_str(), v.as_str()));
    assert_eq!(sign::sign(all, SECRET, SignMethod::HmacSha256), seen.query["sign"]);

    // The timestamp is GMT+8: read as such, it is now.
    let sent = time::parse(&seen.query["timestamp"]).expect("a TOP time");
    assert!((Utc::now() - sent).num_seconds().abs() < 60, "timestamp {} is not GMT+8 now", seen.query["timestamp"]);

    // [02:00, 02:30) UTC is 10:00:00 to 10:29:59 inclusive in GMT+8.
    assert_eq!(seen.form["start_modified"], "2026-11-24 10:00:00");
    assert_eq!(seen.form["end_modified"], "2026-11-24 10:29:59");
    assert_eq!((seen.form["page_no"].as_str(), seen.form["page_size"].as_str()), ("1", "50"));
    assert_eq!(seen.form["use_has_next"], "true");
    assert_eq!(seen.form["type"], TRADE_TYPES.join(","));
    assert!(seen.form["type"].split(',').any(|t| t == "fenxiao"));
    assert_eq!(seen.form["fields"], DEFAULT_TRADE_FIELDS.join(","));
}

#[tokio::test]
async fn md5_signing_and_created_listing_with_a_total() {
    let answer = json!({"trades_sold_get_response": {"total_results": "3", "trades": {"trade": [trade(1), trade(3)]}}});
    let fake = Arc::new(Fake::default().answer("taobao.trades.sold.get", answer));
    let url = serve(Router::new().route("/router/rest", post(gateway)).with_state(fake.clone())).await;
    let client = client(&url, "md5");
    let page = PageRequest { page_no: 1, page_size: 2, with_total: true };
    let fields = vec!["tid".to_owned(), "status".to_owned()];

    let page = client.orders_created(window((2, 0), (3, 0)), page, &fields).await.unwrap();

    assert_eq!((page.items.len(), page.total, page.has_next), (2, Some(3), true));
    let seen = &fake.seen()[0];
    let all = seen.query.iter().chain(&seen.form).map(|(k, v)| (k.as_str(), v.as_str()));
    assert_eq!(sign::sign(all, SECRET, SignMethod::Md5), seen.query["sign"]);
    assert_eq!(seen.form["fields"], "tid,status");
    assert_eq!(seen.form["use_has_next"], "false");
    assert_eq!(
        (seen.form["start_created"].as_str(), seen.form["end_created"].as_str()),
        ("2026-11-24 10:00:00", "2026-11-24 10:59:59")
    );
}

#[tokio::test]
async fn windows_that_cannot_be_asked_for_cost_no_call() {
    let (client, fake) = start(Fake::default()).await;
    let empty = client.orders_modified(window((2, 0), (2, 0)), FIRST_PAGE, &[]).await.unwrap();
    assert!(empty.items.is_empty() && !empty.has_next);
    let too_long =
        TimeWindow { start: window((0, 0), (0, 0)).start - chrono::Duration::hours(25), ..window((0, 0), (0, 0)) };
    let error = client.orders_modified(too_long, FIRST_PAGE, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::BadRequest);
    assert!(fake.seen().is_empty());
    assert!(client.calls().is_empty());
}

#[tokio::test]
async fn a_code_7_ban_stops_calls_until_it_ends() {
    let ban = json!({"error_response": {"code": 7, "msg": "App Call Limited",
        "sub_code": "accesscontrol.limited-by-app-access-count", "sub_msg": "This ban will last for 31 more seconds"}});
    let (client, fake) = start(Fake::default().answer("taobao.trades.sold.increment.get", ban)).await;

    let first = client.orders_modified(window((2, 0), (2, 30)), FIRST_PAGE, &[]).await.unwrap_err();
    assert_eq!(first.kind, ErrorKind::RateLimited { ban: Duration::from_secs(31) });
    assert!(first.message.contains("accesscontrol.limited-by-app-access-count"), "{first}");

    let second = client.order_detail(1, &[]).await.unwrap_err();
    let ErrorKind::RateLimited { ban } = second.kind else { panic!("still banned: {second:?}") };
    assert!(ban <= Duration::from_secs(31) && ban > Duration::from_secs(25), "{ban:?}");
    assert_eq!(second.method, "taobao.trade.fullinfo.get");
    assert_eq!(fake.seen().len(), 1, "the banned call never reached the gateway");
    assert_eq!(client.calls(), BTreeMap::from([("taobao.trades.sold.increment.get".to_owned(), 1)]));
}

#[tokio::test]
async fn a_missing_order_or_refund_is_none() {
    let not_found = |sub: &str| {
        json!({"error_response": {"code": 15, "msg": "Remote service error",
        "sub_code": sub, "sub_msg": "交易订单不存在"}})
    };
    let (client, fake) = start(
        Fake::default()
            .answer("taobao.trade.fullinfo.get", not_found("isv.trade-not-exist"))
            .answer("taobao.refund.get", json!({"refund_get_response": {}})),
    )
    .await;
    assert_eq!(client.order_detail(42, &[]).await.unwrap(), None);
    assert_eq!(client.refund(7).await.unwrap(), None);
    let seen = fake.seen();
    assert_eq!(
        (seen[0].form["tid"].as_str(), seen[0].form["fields"].as_str()),
        ("42", [DEFAULT_TRADE_FIELDS, DETAIL_EXTRA_FIELDS].concat().join(",").as_str())
    );
    assert_eq!(seen[1].form["refund_id"], "7");
}

#[tokio::test]
async fn detail_refunds_traces_and_messages_are_parsed() {
    let fake = Fake::default()
        .answer("taobao.trade.fullinfo.get", json!({"trade_fullinfo_get_response": {"trade": trade(9)}}))
        .answer("taobao.refunds.receive.get", json!({"refunds_receive_get_response": {"has_next": false,
            "refunds": {"refund": [{"refund_id": "55", "tid": 9, "oid": 10, "status": "SUCCESS", "refund_fee": "1.00",
                "created": "2026-11-24 10:00:00", "modified": "2026-11-24 10:20:00"}]}}}))
        .answer("taobao.logistics.trace.search", json!({"logistics_trace_search_response": {"out_sid": "SF1", "tid": 9,
            "trace_list": {"transit_step_info": [{"status_time": "2026-11-24 12:00:00", "status_desc": "picked up"}]}}}))
        .answer("taobao.tmc.messages.consume", json!({"tmc_messages_consume_response": {"messages": {"tmc_message": [
            {"id": 1, "topic": "taobao_trade_TradeChanged", "pub_time": "2026-11-24 10:00:00", "content": "{\"tid\":9}"},
            {"id": 2, "topic": "taobao_trade_TradeSuccess", "pub_time": "2026-11-24 10:00:01", "content": "{\"tid\":\"10\"}"}
        ]}}}))
        .answer("taobao.tmc.messages.confirm", json!({"tmc_messages_confirm_response": {"is_success": true}}));
    let (client, fake) = start(fake).await;

    assert_eq!(client.order_detail(9, &[]).await.unwrap().map(|order| order.tid), Some(9));
    let refunds = client.refunds_modified(window((2, 0), (2, 30)), FIRST_PAGE).await.unwrap();
    assert_eq!((refunds.items[0].refund_id, refunds.has_next), (55, false));
    let traces = client.parcel_trace(9).await.unwrap();
    assert_eq!((traces[0].out_sid.as_str(), traces[0].steps.len()), ("SF1", 1));
    let messages = client.messages(50).await.unwrap();
    assert_eq!(messages.iter().map(|m| m.tid).collect::<Vec<_>>(), [Some(9), Some(10)]);
    assert_eq!(client.messages(1).await.unwrap().len(), 1, "never more than asked for");
    client.confirm_messages(&[1, 2]).await.unwrap();
    client.confirm_messages(&[]).await.unwrap();

    let seen = fake.seen();
    let form = |method: &str| seen.iter().find(|s| s.query["method"] == method).unwrap().form.clone();
    assert_eq!(form("taobao.refunds.receive.get")["end_modified"], "2026-11-24 10:29:59");
    assert_eq!(form("taobao.refunds.receive.get")["type"], TRADE_TYPES.join(","));
    assert_eq!(form("taobao.logistics.trace.search")["tid"], "9");
    assert_eq!(form("taobao.tmc.messages.consume")["quantity"], "50");
    assert_eq!(form("taobao.tmc.messages.confirm")["s_message_ids"], "1,2");
    assert_eq!(client.calls()["taobao.tmc.messages.consume"], 2);
    assert_eq!(client.calls()["taobao.tmc.messages.confirm"], 1);
}

#[tokio::test]
async fn secrets_never_show_in_debug_or_in_errors() {
    // Nothing listens on a port just freed.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/router/rest", listener.local_addr().unwrap())
    };
    let client = client(&closed, "hmac-sha256");
    let debug = format!("{client:?}");
    assert!(debug.contains("tmall") && !debug.contains(SECRET) && !debug.contains(SESSION), "{debug}");

    let error = client.orders_modified(window((2, 0), (2, 30)), FIRST_PAGE, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Remote);
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(SESSION) && !shown.contains("sign="), "{shown}");

    // A gateway error page that echoes the request's query.
    async fn echo(RawQuery(query): RawQuery) -> impl IntoResponse {
        (StatusCode::BAD_GATEWAY, format!("<html><body>bad gateway for ?{}</body></html>", query.unwrap_or_default()))
    }
    let url = serve(Router::new().route("/router/rest", post(echo))).await;
    let client = self::client(&url, "hmac-sha256");
    let error = client.orders_modified(window((2, 0), (2, 30)), FIRST_PAGE, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Malformed(crate::platforms::Anomaly::Html));
    assert!(error.message.starts_with("HTTP 502"), "{error}");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("bad gateway"), "{shown}");
    assert!(!shown.contains(SECRET) && !shown.contains(SESSION) && !shown.contains("6102a8b9c0d1"), "{shown}");
    let sign_at = shown.find("sign=").map(|at| &shown[at + 5..]).unwrap_or_default();
    assert!(sign_at.starts_with("***") || sign_at.is_empty(), "the signature is hidden too: {shown}");
}

#[test]
fn form_encoding_and_inclusive_ends() {
    assert_eq!(
        form_encode([("a b", "x&y=z"), ("t", "2026-11-24 10:00:00"), ("c", "中")]),
        "a+b=x%26y%3Dz&t=2026-11-24+10%3A00%3A00&c=%E4%B8%AD"
    );
    let with_fraction = TimeWindow {
        start: window((2, 0), (2, 0)).start,
        end: window((2, 30), (2, 30)).end + chrono::Duration::milliseconds(500),
    };
    assert_eq!(inclusive_range(with_fraction).unwrap().1, "2026-11-24 10:30:00");
    assert_eq!(inclusive_range(window((2, 0), (1, 0))), None);
}

#[test]
fn a_client_needs_a_taobao_shop_a_url_and_a_rate() {
    let shop = |platform: &str, gateway: &str, rate: u32| -> config::Shop {
        serde_json::from_value(json!({"platform": platform, "gateway": gateway, "app_key": "k", "app_secret": SECRET,
            "session": SESSION, "rate_limit_per_min": rate}))
        .unwrap()
    };
    assert!(TaobaoClient::new("s", &shop("taobao", "https://eco.taobao.com/router/rest", 100)).is_ok());
    assert!(matches!(
        TaobaoClient::new("s", &shop("douyin", "https://x", 100)),
        Err(ClientError::WrongPlatform { .. })
    ));
    assert!(matches!(TaobaoClient::new("s", &shop("taobao", "eco.taobao.com", 100)), Err(ClientError::Gateway { .. })));
    assert!(matches!(TaobaoClient::new("s", &shop("taobao", "https://x", 0)), Err(ClientError::RateLimit { .. })));
}

#[tokio::test]
async fn a_listing_sets_a_bad_record_aside_and_keeps_the_rest_of_its_page() {
    let mut impossible = trade(8);
    impossible["status"] = json!(7);
    let mut no_created = trade(9);
    no_created["created"] = json!("");
    let answer = json!({"trades_sold_get_response": {"total_results": "4",
        "trades": {"trade": [trade(5), impossible, trade(-5), no_created]}}});
    let (client, _) = start(Fake::default().answer("taobao.trades.sold.get", answer)).await;
    let page = client
        .orders_created(window((2, 0), (2, 30)), PageRequest { with_total: true, ..FIRST_PAGE }, &[])
        .await
        .unwrap();
    assert_eq!(page.items.iter().map(|order| order.tid).collect::<Vec<_>>(), [5]);
    assert_eq!((page.total, page.has_next), (Some(4), false), "total_results as a string");
    let reasons: Vec<&str> = page.rejected.iter().map(|rejected| rejected.reason.as_str()).collect();
    assert_eq!(reasons[0], "trade 8: status \"7\" is not a TOP trade status");
    assert!(reasons[1].starts_with("a trade without a valid tid: ") && reasons[1].contains("-5"), "{}", reasons[1]);
    assert_eq!(reasons[2], "trade 9: missing created");
    assert_eq!(page.rejected[0].raw["status"], 7, "set aside as it came");
}

#[tokio::test]
async fn a_refund_listing_sets_a_bad_record_aside_too() {
    let refund = |id: i64| {
        json!({"refund_id": id.to_string(), "tid": "11", "oid": 12, "status": "SUCCESS", "refund_fee": "1.00",
            "created": "2026-11-24 09:00:00", "modified": "2026-11-24 10:00:00"})
    };
    let mut no_oid = refund(2);
    no_oid["oid"] = json!(0);
    let answer = json!({"refunds_receive_get_response": {"has_next": "false",
        "refunds": {"refund": [refund(1), no_oid]}}});
    let (client, _) = start(Fake::default().answer("taobao.refunds.receive.get", answer)).await;
    let page = client.refunds_modified(window((2, 0), (2, 30)), FIRST_PAGE).await.unwrap();
    assert_eq!(page.items.iter().map(|refund| refund.refund_id).collect::<Vec<_>>(), [1]);
    assert!(!page.has_next, "has_next as a string");
    assert_eq!(page.rejected.len(), 1);
    assert_eq!(page.rejected[0].reason, "refund 2: missing or invalid oid");
}

#[tokio::test]
async fn a_bad_single_record_is_a_bad_record_error_and_a_mistyped_one_an_anomaly() {
    let mut bad = trade(8);
    bad["modified"] = json!("not a time");
    let fake =
        Fake::default().answer("taobao.trade.fullinfo.get", json!({"trade_fullinfo_get_response": {"trade": bad}}));
    let (client, _) = start(fake).await;
    let error = client.order_detail(8, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::BadRecord);
    assert!(!error.kind.is_retryable());
    assert_eq!(error.to_string(), "taobao.trade.fullinfo.get: trade 8: modified is not a TOP time: \"not a time\"");

    let text = json!({"trade_fullinfo_get_response": {"trade": trade(8).to_string()}});
    let (client, _) = start(Fake::default().answer("taobao.trade.fullinfo.get", text)).await;
    let error = client.order_detail(8, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Malformed(crate::platforms::Anomaly::WrongType));

    let listed_as_text = json!({"trades_sold_get_response": {"total_results": 1, "trades": {"trade": "[]"}}});
    let (client, _) = start(Fake::default().answer("taobao.trades.sold.get", listed_as_text)).await;
    let error = client.orders_created(window((2, 0), (2, 30)), FIRST_PAGE, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Malformed(crate::platforms::Anomaly::WrongType));
}
