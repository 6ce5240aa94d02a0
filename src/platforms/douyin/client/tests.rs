//! The client against the simulator's Douyin face: every method answered,
//! pages converted, each error class told apart, no secret in any error.

use chrono::Utc;
use serde_json::json;

use super::*;
use crate::platforms::Anomaly;
use crate::sim::{FaultKind, SimConfig, SimHandle, Simulator};

async fn simulator(orders: usize) -> SimHandle {
    let config = SimConfig { seed: 5, orders, days: 30, ..SimConfig::default() };
    Simulator::start(config, ([127, 0, 0, 1], 0).into()).await.unwrap()
}

fn client(sim: &SimHandle, app_secret: &str, sign_method: &str) -> DouyinClient {
    let config = sim.config();
    let shop: config::Shop = serde_json::from_value(json!({
        "platform": "douyin", "gateway": sim.douyin_gateway_url(), "app_key": config.app_key,
        "app_secret": app_secret, "session": config.session, "sign_method": sign_method,
        "rate_limit_per_min": 100000
    }))
    .unwrap();
    DouyinClient::with_timeout("dy", &shop, None, Duration::from_secs(5)).unwrap()
}

fn whole_history(sim: &SimHandle) -> TimeWindow {
    TimeWindow { start: sim.anchor() - chrono::Duration::days(31), end: Utc::now() + chrono::Duration::seconds(1) }
}

const PAGE: PageRequest = PageRequest { page_no: 1, page_size: 100, with_total: true };

#[tokio::test]
async fn every_method_is_answered_in_douyin_shapes_and_pages_convert_from_1_to_0() {
    let sim = simulator(250).await;
    let client = client(&sim, &sim.config().app_secret.clone(), "hmac-sha256");
    let truth = sim.truth();
    let window = whole_history(&sim);

    let first = client.orders_created(window, PAGE, &[]).await.unwrap();
    assert_eq!(first.total, Some(truth.orders.len() as u64));
    assert!(first.has_next && first.items.len() == 100);
    let third = client.orders_created(window, PageRequest { page_no: 3, ..PAGE }, &[]).await.unwrap();
    assert_eq!(third.items.len(), 50);
    assert!(!third.has_next);
    assert!(third.items.iter().all(|o| first.items.iter().all(|f| f.tid != o.tid)), "page 3 is not page 1");

    let order = &first.items[0];
    let expected = truth.order(order.tid).unwrap();
    assert_eq!(order.platform, "douyin");
    assert_eq!(order.status, expected.status_on(config::Platform::Douyin));
    assert_eq!(order.payment.to_string(), expected.payment);
    assert_eq!(order.modified, expected.modified);
    assert_eq!(order.items.len(), expected.items.len());
    assert!(order.raw["order_status"].is_i64(), "the raw keeps Douyin's numeric status: {}", order.raw);

    let last_day = TimeWindow { start: window.end - chrono::Duration::days(1), end: window.end };
    let modified = client.orders_modified(last_day, PAGE, &[]).await.unwrap();
    let expected = truth.orders.iter().filter(|o| o.modified >= last_day.start).count();
    assert_eq!(modified.total, Some(expected as u64));

    let detail = client.order_detail(order.tid, &[]).await.unwrap().unwrap();
    assert_eq!((detail.tid, &detail.status), (order.tid, &order.status));
    assert_eq!(client.order_detail(1, &[]).await.unwrap(), None);

    let refunds = client.refunds_modified(window, PAGE).await.unwrap();
    assert_eq!(refunds.total, Some(truth.refunds.len() as u64));
    assert!(!refunds.items.is_empty(), "the generated shop has refunds");
    let refund = &refunds.items[0];
    assert!(refund.raw["aftersale_info"].is_object(), "the list answers nested items: {}", refund.raw);
    let detail = client.refund(refund.refund_id).await.unwrap().unwrap();
    assert!(detail.raw["process_info"]["after_sale_info"].is_object(), "{}", detail.raw);
    let fields = |r: &Refund| (r.refund_id, r.tid, r.oid, r.status.clone(), r.refund_fee, r.created, r.modified);
    assert_eq!(fields(&detail), fields(refund), "the detail agrees with the list");
    assert_eq!(client.refund(1).await.unwrap(), None);

    let not_built = client.parcel_trace(order.tid).await.unwrap_err();
    assert_eq!(not_built.kind, ErrorKind::BadRequest);
    assert!(not_built.message.contains("not built for Douyin"), "{not_built}");
    let calls = client.calls();
    assert_eq!(calls.get(ORDER_SEARCH_LIST), Some(&3));
    assert_eq!(calls.get(AFTER_SALE_DETAIL), Some(&2));
}

#[tokio::test]
async fn each_failure_arrives_in_its_class_with_no_secret_in_it() {
    let sim = simulator(50).await;
    let secret = sim.config().app_secret.clone();
    let window = whole_history(&sim);
    let leaks = |error: &PlatformError| {
        let text = format!("{error} {error:?}");
        text.contains(&secret) || text.contains(&sim.config().session)
    };

    let wrong = client(&sim, "wrong-secret-0123456789", "md5");
    let error = wrong.orders_created(window, PAGE, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Signature, "{error}");
    assert!(!format!("{error:?}").contains("wrong-secret"), "{error:?}");

    let cases = [
        (FaultKind::BadGateway, ErrorKind::Malformed(Anomaly::Html)),
        (FaultKind::EmptyBody, ErrorKind::Malformed(Anomaly::Empty)),
        (FaultKind::Truncated, ErrorKind::Malformed(Anomaly::Truncated)),
        (FaultKind::RemoteTimeout, ErrorKind::Remote),
        (FaultKind::ServiceUnavailable, ErrorKind::Remote),
        (FaultKind::TradeServiceRejection, ErrorKind::Overloaded),
        (FaultKind::MissingList, ErrorKind::Malformed(Anomaly::MissingList)),
    ];
    sim.set_fault_rate(1.0);
    for (fault, kind) in cases {
        sim.set_fault_kinds(&[fault]);
        let error = client(&sim, &secret, "md5").orders_created(window, PAGE, &[]).await.unwrap_err();
        assert_eq!(error.kind, kind, "{}: {error}", fault.name());
        assert!(!leaks(&error), "{error:?}");
    }
    sim.set_fault_rate(0.0);

    sim.ban_for(Duration::from_secs(30));
    let banned = client(&sim, &secret, "md5");
    let error = banned.orders_created(window, PAGE, &[]).await.unwrap_err();
    assert!(matches!(error.kind, ErrorKind::RateLimited { ban } if ban.as_secs() >= 29), "{error}");
    assert!(banned.guard().gate().banned_until().is_some(), "the ban is kept by the shared gate");

    let expired = client(&sim, &secret, "md5");
    sim.expire_session_at(Utc::now() - chrono::Duration::seconds(1));
    sim.ban_for(Duration::ZERO);
    let error = expired.orders_created(window, PAGE, &[]).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::SessionExpired, "{error}");
    assert!(expired.guard().needs_reauth().is_some());
    assert!(!leaks(&error), "{error:?}");
}

#[test]
fn hmac_md5_and_a_taobao_shop_are_refused_with_the_shop_named() {
    let shop = |platform: &str, sign_method: &str| -> config::Shop {
        serde_json::from_value(json!({
            "platform": platform, "gateway": "http://127.0.0.1:9/douyin", "app_key": "k",
            "app_secret": "s", "session": "t", "sign_method": sign_method
        }))
        .unwrap()
    };
    let error = DouyinClient::new("dy", &shop("douyin", "hmac"), None).unwrap_err();
    assert!(error.to_string().contains("shop \"dy\"") && error.to_string().contains("hmac"), "{error}");
    let error = DouyinClient::new("tm", &shop("taobao", "md5"), None).unwrap_err();
    assert!(matches!(error, ClientError::WrongPlatform { .. }), "{error}");
}

#[tokio::test]
async fn a_listing_by_update_time_without_order_by_is_refused_naming_it() {
    let sim = simulator(20).await;
    let client = client(&sim, &sim.config().app_secret.clone(), "md5");
    let now = Utc::now().timestamp();
    let mut params = Map::new();
    params.insert("update_time_start".into(), json!(now - 3600));
    params.insert("update_time_end".into(), json!(now));
    params.insert("page".into(), json!(0));
    params.insert("size".into(), json!(10));
    let Err(error) = client.call(ORDER_SEARCH_LIST, &params).await else {
        panic!("a query by update time without order_by was answered");
    };
    let error = error.into_platform_error(ORDER_SEARCH_LIST);
    assert_eq!(error.kind, ErrorKind::BadRequest, "{error}");
    assert!(error.message.contains("order_by"), "{error}");

    params.insert("order_by".into(), json!("update_time"));
    assert!(client.call(ORDER_SEARCH_LIST, &params).await.is_ok(), "with order_by the same query is answered");
}

#[tokio::test]
async fn a_signature_over_nested_keys_left_unsorted_is_refused() {
    let sim = simulator(5).await;
    let config = sim.config();
    let timestamp = Utc::now().timestamp().to_string();
    let post = |param_json: &'static str| {
        let signed = SignedParams {
            app_key: &config.app_key,
            method: ORDER_DETAIL,
            param_json,
            timestamp: &timestamp,
            v: VERSION,
        };
        let signature = sign::sign(signed, &config.app_secret, SignMethod::Md5).unwrap();
        let mut url =
            Url::parse(&format!("{}{}", sim.douyin_gateway_url(), super::super::methods::path(ORDER_DETAIL))).unwrap();
        url.query_pairs_mut().extend_pairs([
            ("app_key", config.app_key.as_str()),
            ("method", ORDER_DETAIL),
            ("timestamp", &timestamp),
            ("v", VERSION),
            ("sign_method", "md5"),
            ("sign", &signature),
            ("access_token", config.session.as_str()),
        ]);
        async move {
            let body = reqwest::Client::new().post(url).body(param_json).send().await.unwrap().text().await.unwrap();
            serde_json::from_str::<Json>(&body).unwrap()
        }
    };
    // Top-level keys sorted, the nested object's not: signed as sent, refused.
    let unsorted = post(r#"{"extra":{"z":1,"a":2},"shop_order_id":"1"}"#).await;
    assert_eq!(unsorted["code"], super::super::error::CODE_SIGNATURE, "{unsorted}");
    // Every level sorted: the signature holds (the order is unknown).
    let sorted = post(r#"{"extra":{"a":2,"z":1},"shop_order_id":"1"}"#).await;
    assert_ne!(sorted["code"], super::super::error::CODE_SIGNATURE, "{sorted}");
}
