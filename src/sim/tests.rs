//! The simulator end to end: real HTTP on 127.0.0.1, requests signed with
//! the same `sign` the client uses.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::*;
use crate::platforms::taobao::sign::{self, SignMethod};
use crate::platforms::taobao::time;

/// A minimal TOP client: system parameters in the query, business ones in a
/// form body, as the official SDKs send them.
struct Client {
    http: reqwest::Client,
    url: String,
    app_key: String,
    secret: String,
    session: String,
    sign_method: SignMethod,
    /// Added to the clock for `timestamp`.
    skew: chrono::Duration,
}

impl Client {
    fn new(sim: &SimHandle) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: sim.gateway_url(),
            app_key: SIM_APP_KEY.into(),
            secret: SIM_APP_SECRET.into(),
            session: SIM_SESSION.into(),
            sign_method: SignMethod::HmacSha256,
            skew: chrono::Duration::zero(),
        }
    }

    async fn raw(&self, method: &str, business: &[(&str, &str)]) -> (reqwest::StatusCode, String) {
        self.try_raw(method, business).await.expect("an answer")
    }

    async fn try_raw(
        &self,
        method: &str,
        business: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, String), reqwest::Error> {
        let timestamp = time::format(Utc::now() + self.skew);
        let mut system: Vec<(&str, &str)> = vec![
            ("method", method),
            ("app_key", &self.app_key),
            ("session", &self.session),
            ("timestamp", &timestamp),
            ("format", "json"),
            ("v", "2.0"),
            ("sign_method", sign::method_name(self.sign_method)),
        ];
        let signature = sign::sign(system.iter().chain(business).copied(), &self.secret, self.sign_method);
        system.push(("sign", &signature));
        let response = self.http.post(&self.url).query(&system).form(business).send().await?;
        let status = response.status();
        Ok((status, response.text().await?))
    }

    async fn call(&self, method: &str, business: &[(&str, &str)]) -> Json {
        let (status, body) = self.raw(method, business).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }
}

fn error_code(answer: &Json) -> Option<i64> {
    answer.get("error_response")?.get("code")?.as_i64()
}

/// A list answer's `total_results`, which the gateway writes as a number or,
/// like older TOP answers, as a string of digits.
fn total_results(body: &Json) -> Option<u64> {
    crate::platforms::taobao::envelope::id(body.get("total_results")?).and_then(|total| u64::try_from(total).ok())
}

fn trades(answer: &Json, method_key: &str) -> Vec<Json> {
    let body = &answer[method_key];
    assert!(body.is_object(), "{answer}");
    body["trades"]["trade"].as_array().cloned().unwrap_or_default()
}

fn tids(list: &[Json]) -> Vec<i64> {
    list.iter().map(|t| t["tid"].as_i64().expect("tid is a JSON integer")).collect()
}

async fn start(config: SimConfig) -> SimHandle {
    Simulator::start(config, "127.0.0.1:0".parse().expect("an address")).await.expect("started")
}

fn small(orders: usize, days: u32) -> SimConfig {
    SimConfig { orders, days, ..SimConfig::default() }
}

fn fmt(at: DateTime<Utc>) -> String {
    time::format(at)
}

#[tokio::test]
async fn one_seed_gives_one_shop_and_one_sequence_of_changes() {
    let anchor = clock() - chrono::Duration::minutes(5);
    let config = SimConfig { orders: 600, anchor: Some(anchor), ..SimConfig::default() };
    let (a, b) = (start(config.clone()).await, start(config.clone()).await);
    let other = start(SimConfig { seed: 43, ..config }).await;
    let (truth_a, truth_b) = (a.truth(), b.truth());
    assert_eq!(truth_a.orders, truth_b.orders);
    assert_eq!(truth_a.refunds, truth_b.refunds);
    assert_ne!(truth_a.orders, other.truth().orders);

    let (changed_a, changed_b) = (a.mutate_now(40), b.mutate_now(40));
    assert_eq!(changed_a, changed_b);
    let statuses = |sim: &SimHandle| -> Vec<(i64, String, String)> {
        let truth = sim.truth();
        changed_a.iter().filter_map(|t| truth.order(*t)).map(|o| (o.tid, o.status.clone(), o.payment.clone())).collect()
    };
    assert_eq!(statuses(&a), statuses(&b));
    assert_eq!(statuses(&a).len(), 40);
}

#[tokio::test]
async fn signatures_are_checked_with_every_method() {
    let sim = start(small(50, 5)).await;
    for method in [SignMethod::Md5, SignMethod::Hmac, SignMethod::HmacSha256] {
        let mut client = Client { sign_method: method, ..Client::new(&sim) };
        let ok = client.call("taobao.trades.sold.get", &[("fields", "tid"), ("page_size", "5")]).await;
        assert_eq!(error_code(&ok), None, "{method:?}: {ok}");
        assert_eq!(trades(&ok, "trades_sold_get_response").len(), 5);
        client.secret = "wrong-secret".into();
        let refused = client.call("taobao.trades.sold.get", &[("fields", "tid")]).await;
        assert_eq!(error_code(&refused), Some(25), "{method:?}: {refused}");
        assert_eq!(refused["error_response"]["msg"], "Invalid signature");
    }
    let calls = sim.calls();
    assert_eq!((calls.method("taobao.trades.sold.get"), calls.rejected, calls.total), (3, 3, 6));
}

#[tokio::test]
async fn requests_are_checked_like_the_real_gateway() {
    let sim = start(small(50, 5)).await;
    let client = Client::new(&sim);
    let fields = [("fields", "tid")];

    let skewed = Client { skew: chrono::Duration::minutes(11), ..Client::new(&sim) };
    assert_eq!(error_code(&skewed.call("taobao.trades.sold.get", &fields).await), Some(31));
    let tolerated = Client { skew: chrono::Duration::minutes(-9), ..Client::new(&sim) };
    assert_eq!(error_code(&tolerated.call("taobao.trades.sold.get", &fields).await), None);

    let stranger = Client { app_key: "someone-else".into(), ..Client::new(&sim) };
    assert_eq!(error_code(&stranger.call("taobao.trades.sold.get", &fields).await), Some(29));

    let expired = Client { session: "old-session".into(), ..Client::new(&sim) };
    let answer = expired.call("taobao.trades.sold.get", &fields).await;
    assert_eq!(error_code(&answer), Some(27));
    assert_eq!(answer["error_response"]["sub_code"], "invalid-sessionkey");
    assert!(answer["error_response"]["request_id"].is_string());
    // TMC needs no session.
    assert_eq!(error_code(&expired.call("taobao.tmc.messages.consume", &[]).await), None);

    assert_eq!(error_code(&client.call("taobao.item.seller.get", &fields).await), Some(22));
    assert_eq!(error_code(&client.call("taobao.trade.fullinfo.get", &[("fields", "tid")]).await), Some(40));
    let unknown = client.call("taobao.trade.fullinfo.get", &[("fields", "tid"), ("tid", "123")]).await;
    assert_eq!(unknown["error_response"]["sub_code"], "isv.trade-not-exist");
    assert_eq!(
        error_code(&client.call("taobao.trades.sold.get", &[("fields", "tid"), ("page_size", "101")]).await),
        Some(41)
    );

    // format=xml and a missing signature, by hand.
    let mut params = vec![
        ("method", "taobao.trades.sold.get".to_owned()),
        ("app_key", SIM_APP_KEY.to_owned()),
        ("session", SIM_SESSION.to_owned()),
        ("timestamp", fmt(Utc::now())),
        ("format", "xml".to_owned()),
        ("v", "2.0".to_owned()),
        ("fields", "tid".to_owned()),
    ];
    let url = sim.gateway_url();
    let get = async |params: &Vec<(&str, String)>| -> Json {
        let text = reqwest::Client::new().get(&url).query(params).send().await.expect("sent").text().await;
        serde_json::from_str(&text.expect("a body")).expect("JSON")
    };
    let body = get(&params).await;
    assert_eq!(error_code(&body), Some(23));
    params[4].1 = "json".into();
    let body = get(&params).await;
    assert_eq!(error_code(&body), Some(24));
    let signature = sign::sign(params.iter().map(|(k, v)| (*k, v.as_str())), SIM_APP_SECRET, SignMethod::Md5);
    params.push(("sign", signature));
    let body = get(&params).await;
    assert_eq!(error_code(&body), None, "GET with everything in the query, md5 by default: {body}");
}

#[tokio::test]
async fn an_increment_window_over_a_day_is_refused() {
    let sim = start(small(50, 5)).await;
    let client = Client::new(&sim);
    let now = Utc::now();
    let (start, end) = (fmt(now - chrono::Duration::hours(25)), fmt(now));
    let answer = client
        .call(
            "taobao.trades.sold.increment.get",
            &[("fields", "tid"), ("start_modified", &start), ("end_modified", &end)],
        )
        .await;
    assert_eq!(error_code(&answer), Some(41), "{answer}");
    assert!(answer["error_response"]["sub_code"].as_str().is_some_and(|s| s.starts_with("isv.invalid-parameter")));
    let start = fmt(now - chrono::Duration::hours(24));
    let answer = client
        .call(
            "taobao.trades.sold.increment.get",
            &[("fields", "tid"), ("start_modified", &start), ("end_modified", &end)],
        )
        .await;
    assert_eq!(error_code(&answer), None, "exactly one day is allowed: {answer}");
    let answer = client.call("taobao.trades.sold.increment.get", &[("fields", "tid"), ("end_modified", &end)]).await;
    assert_eq!(error_code(&answer), Some(40));
}

#[tokio::test]
async fn paging_returns_every_listable_order_once_newest_first() {
    let sim = start(small(1_500, 30)).await;
    let client = Client::new(&sim);
    let truth = sim.truth();
    let mut seen = Vec::new();
    let mut created = Vec::new();
    for page in 1.. {
        let page_no = page.to_string();
        let answer = client
            .call(
                "taobao.trades.sold.get",
                &[("fields", "tid,created"), ("page_no", &page_no), ("page_size", "100"), ("use_has_next", "true")],
            )
            .await;
        let body = &answer["trades_sold_get_response"];
        assert!(body.get("total_results").is_none(), "use_has_next drops the total");
        let list = trades(&answer, "trades_sold_get_response");
        seen.extend(tids(&list));
        created.extend(list.iter().map(|t| time::parse(t["created"].as_str().expect("a time")).expect("GMT+8")));
        if body["has_next"] != true {
            assert!(list.len() <= 100);
            break;
        }
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no order twice");
    let expected: BTreeSet<i64> = truth.orders.iter().filter(|o| o.listed_by_default()).map(|o| o.tid).collect();
    assert_eq!(unique, expected);
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest created first");

    let answer = client.call("taobao.trades.sold.get", &[("fields", "tid"), ("page_no", "1000")]).await;
    let body = &answer["trades_sold_get_response"];
    assert_eq!(total_results(body), Some(expected.len() as u64));
    assert!(body.get("trades").is_none(), "an empty list is left out");
}

#[tokio::test]
async fn increments_are_sorted_by_modified_descending() {
    let sim = start(small(3_000, 10)).await;
    let client = Client::new(&sim);
    let end = Utc::now();
    let start = end - chrono::Duration::hours(24);
    let (start_text, end_text) = (fmt(start), fmt(end));
    let mut rows: Vec<(DateTime<Utc>, i64)> = Vec::new();
    for page in 1..=100 {
        let page_no = page.to_string();
        let answer = client
            .call(
                "taobao.trades.sold.increment.get",
                &[
                    ("fields", "tid,modified"),
                    ("start_modified", &start_text),
                    ("end_modified", &end_text),
                    ("page_no", &page_no),
                    ("page_size", "40"),
                    ("type", "guarantee_trade,step,fenxiao"),
                ],
            )
            .await;
        let list = trades(&answer, "trades_sold_increment_get_response");
        if list.is_empty() {
            break;
        }
        rows.extend(list.iter().map(|t| {
            (time::parse(t["modified"].as_str().expect("a time")).expect("GMT+8"), t["tid"].as_i64().expect("tid"))
        }));
    }
    assert!(rows.len() > 40, "more than a page: {}", rows.len());
    assert!(rows.windows(2).all(|w| w[0] > w[1]), "modified descending, ties by tid descending");
    let want = sim.truth().orders.iter().filter(|o| o.modified >= start && o.modified <= end).count();
    assert_eq!(rows.len(), want);
}

#[tokio::test]
async fn fields_are_honoured_and_lists_leave_detail_fields_out() {
    let sim = start(small(300, 10)).await;
    let client = Client::new(&sim);
    let fields = "tid,status,receiver_name,receiver_address,buyer_message,seller_memo,orders.oid,orders.outer_sku_id";
    let answer = client.call("taobao.trades.sold.get", &[("fields", fields), ("page_size", "50")]).await;
    let list = trades(&answer, "trades_sold_get_response");
    assert_eq!(list.len(), 50);
    for trade in &list {
        let keys: BTreeSet<&str> = trade.as_object().expect("an object").keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["tid", "status", "orders"]), "{trade}");
        for order in trade["orders"]["order"].as_array().expect("orders") {
            let keys: BTreeSet<&str> = order.as_object().expect("an object").keys().map(String::as_str).collect();
            assert_eq!(keys, BTreeSet::from(["oid", "outer_sku_id"]));
            let oid = crate::platforms::taobao::envelope::id(&order["oid"]).expect("oid, as a number or its digits");
            assert!(oid > 1 << 53);
        }
    }
    let tid = list[0]["tid"].to_string();
    let detail =
        client.call("taobao.trade.fullinfo.get", &[("fields", "tid,receiver_name,orders"), ("tid", &tid)]).await;
    let trade = &detail["trade_fullinfo_get_response"]["trade"];
    assert!(trade["receiver_name"].is_string(), "{detail}");
    assert!(trade["orders"]["order"][0]["payment"].is_string());
    assert!(trade.get("status").is_none());
    assert_eq!(sim.truth().order(list[0]["tid"].as_i64().expect("tid")).map(|o| &o.json["tid"]), Some(&trade["tid"]));
}

#[tokio::test]
async fn the_default_type_filter_hides_fenxiao_orders() {
    let sim = start(small(1_000, 20)).await;
    let client = Client::new(&sim);
    let truth = sim.truth();
    let fenxiao = truth.orders.iter().filter(|o| o.order_type == "fenxiao").count();
    assert!(fenxiao > 0);
    let total = |answer: &Json| total_results(&answer["trades_sold_get_response"]).expect("a total") as usize;
    let default = client.call("taobao.trades.sold.get", &[("fields", "tid")]).await;
    assert_eq!(total(&default), truth.orders.len() - fenxiao);
    let all = client
        .call("taobao.trades.sold.get", &[("fields", "tid,type"), ("type", "guarantee_trade,step,fenxiao")])
        .await;
    assert_eq!(total(&all), truth.orders.len());
    let only = client
        .call("taobao.trades.sold.get", &[("fields", "tid,type"), ("type", "fenxiao"), ("page_size", "100")])
        .await;
    assert_eq!(total(&only), fenxiao);
    assert!(trades(&only, "trades_sold_get_response").iter().all(|t| t["type"] == "fenxiao"));
}

#[tokio::test]
async fn a_ban_answers_code_7_with_the_seconds_left() {
    let sim = start(small(20, 2)).await;
    let client = Client::new(&sim);
    sim.ban_for(Duration::from_secs(30));
    let answer = client.call("taobao.trades.sold.get", &[("fields", "tid")]).await;
    let error = &answer["error_response"];
    assert_eq!(error_code(&answer), Some(7));
    assert_eq!(error["sub_code"], "accesscontrol.limited-by-app-access-count");
    let message = error["sub_msg"].as_str().expect("sub_msg");
    assert!(
        message == "This ban will last for 30 more seconds" || message == "This ban will last for 29 more seconds",
        "{message}"
    );
    assert_eq!(sim.calls().banned, 1);

    let limited = start(SimConfig { rate_limit_per_min: Some(3), ..small(20, 2) }).await;
    let client = Client::new(&limited);
    for _ in 0..3 {
        assert_eq!(error_code(&client.call("taobao.tmc.messages.consume", &[]).await), None);
    }
    for _ in 0..2 {
        let answer = client.call("taobao.tmc.messages.consume", &[]).await;
        assert_eq!(error_code(&answer), Some(7));
        let message = answer["error_response"]["sub_msg"].as_str().expect("sub_msg");
        assert!(
            message.starts_with("This ban will last for 6") || message.starts_with("This ban will last for 5"),
            "{message}"
        );
    }
    let calls = limited.calls();
    assert_eq!((calls.method("taobao.tmc.messages.consume"), calls.banned), (3, 2));
}

#[tokio::test]
async fn changes_move_modified_forward_and_show_in_both_lists() {
    let sim = start(small(500, 10)).await;
    let client = Client::new(&sim);
    let before = sim.truth();
    let changed = sim.mutate_now(8);
    assert_eq!(changed.iter().collect::<BTreeSet<_>>().len(), 8);
    let after = sim.truth();
    for tid in &changed {
        let new = after.order(*tid).expect("in the truth");
        match before.order(*tid) {
            Some(old) => assert!(new.modified >= old.modified && new.json != old.json, "{tid} changed"),
            None => assert_eq!(new.created, new.modified, "{tid} is a new order"),
        }
    }
    let now = Utc::now();
    let (start_text, end_text) = (fmt(now - chrono::Duration::minutes(5)), fmt(now + chrono::Duration::minutes(1)));
    let types = "guarantee_trade,step,fenxiao";
    let answer = client
        .call(
            "taobao.trades.sold.increment.get",
            &[
                ("fields", "tid,status,modified"),
                ("start_modified", &start_text),
                ("end_modified", &end_text),
                ("type", types),
            ],
        )
        .await;
    let listed = trades(&answer, "trades_sold_increment_get_response");
    let listed_tids: BTreeSet<i64> = tids(&listed).into_iter().collect();
    for tid in &changed {
        assert!(listed_tids.contains(tid), "{tid} is in the increment");
    }
    for trade in &listed {
        let truth = after.order(trade["tid"].as_i64().expect("tid")).expect("known");
        assert_eq!(trade["status"], truth.status.as_str());
        assert_eq!(trade["modified"], fmt(truth.modified).as_str());
    }
    // sold.get shows the same state: look every changed order up by its creation second.
    for tid in &changed {
        let truth = after.order(*tid).expect("known");
        let at = fmt(truth.created);
        let answer = client
            .call(
                "taobao.trades.sold.get",
                &[("fields", "tid,status,modified"), ("start_created", &at), ("end_created", &at), ("type", types)],
            )
            .await;
        let list = trades(&answer, "trades_sold_get_response");
        let found = list.iter().find(|t| t["tid"].as_i64() == Some(*tid)).expect("listed by creation time");
        assert_eq!(found["status"], truth.status.as_str());
        assert_eq!(found["modified"], fmt(truth.modified).as_str());
    }
}

#[tokio::test]
async fn background_changes_publish_messages_delivered_until_confirmed() {
    let sim = start(SimConfig { mutations_per_sec: 200.0, ..small(300, 5) }).await;
    let client = Client::new(&sim);
    tokio::time::sleep(Duration::from_millis(200)).await;
    sim.pause_mutations();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let pending = sim.pending_messages();
    assert!(pending >= 10, "messages were published: {pending}");
    let stamp = sim.truth();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.truth().orders, stamp.orders, "paused means still");

    let consume = || client.call("taobao.tmc.messages.consume", &[("quantity", "10")]);
    let first = consume().await;
    let messages =
        first["tmc_messages_consume_response"]["messages"]["tmc_message"].as_array().cloned().expect("messages");
    assert_eq!(messages.len(), 10);
    let content: Json = serde_json::from_str(messages[0]["content"].as_str().expect("a JSON string")).expect("JSON");
    assert!(content["tid"].as_i64().is_some_and(|tid| tid > 1 << 53), "{content}");
    assert!(messages[0]["topic"].as_str().is_some_and(|t| t.starts_with("taobao_")));
    let again = consume().await;
    assert_eq!(
        again["tmc_messages_consume_response"]["messages"]["tmc_message"][0]["id"], messages[0]["id"],
        "at least once"
    );
    let ids: Vec<String> = messages.iter().map(|m| m["id"].to_string()).collect();
    let confirmed = client.call("taobao.tmc.messages.confirm", &[("s_message_ids", &ids.join(","))]).await;
    assert_eq!(confirmed["tmc_messages_confirm_response"]["is_success"], true);
    assert_eq!(sim.pending_messages(), pending - 10);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_are_served_instead_of_answers() {
    let kinds = vec![FaultKind::RemoteTimeout, FaultKind::BadGateway, FaultKind::Truncated];
    let sim = start(SimConfig { fault_rate: 1.0, fault_kinds: kinds, ..small(50, 5) }).await;
    let client = Client::new(&sim);
    let (mut timeouts, mut pages, mut cut) = (0_u64, 0_u64, 0_u64);
    for _ in 0..30 {
        let (status, body) = client.raw("taobao.trades.sold.get", &[("fields", "tid,orders")]).await;
        if status == 502 {
            assert!(body.contains("502 Bad Gateway"));
            pages += 1;
        } else if let Ok(answer) = serde_json::from_str::<Json>(&body) {
            assert_eq!(answer["error_response"]["sub_code"], "isp.top-remote-connection-timeout");
            timeouts += 1;
        } else {
            assert!(body.starts_with("{\"trades_sold_get_response\""));
            cut += 1;
        }
    }
    assert!(timeouts > 0 && pages > 0 && cut > 0, "{timeouts} {pages} {cut}");
    let calls = sim.calls();
    assert_eq!((calls.faulted, calls.method("taobao.trades.sold.get")), (30, 0));
    let by_kind = [FaultKind::RemoteTimeout, FaultKind::BadGateway, FaultKind::Truncated].map(|k| calls.fault(k));
    assert_eq!(by_kind, [timeouts, pages, cut]);
    sim.set_fault_rate(0.0);
    assert_eq!(error_code(&client.call("taobao.trades.sold.get", &[("fields", "tid")]).await), None);
}

const SOLD: &str = "taobao.trades.sold.get";
const INCREMENT: &str = "taobao.trades.sold.increment.get";
const FULLINFO: &str = "taobao.trade.fullinfo.get";

fn sub_code(body: &str) -> Option<String> {
    let answer: Json = serde_json::from_str(body).ok()?;
    answer["error_response"]["sub_code"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn every_fault_kind_is_served_in_its_shape() {
    let slow = Duration::from_millis(200);
    let sim = start(SimConfig { fault_rate: 1.0, slow_answer: slow, ..small(200, 10) }).await;
    let client = Client::new(&sim);
    let fields = "tid,status,payment,created,modified,orders";
    let list: &[(&str, &str)] = &[("fields", fields), ("page_size", "5")];
    let real = {
        sim.set_fault_rate(0.0);
        let answer = client.call(SOLD, list).await;
        sim.set_fault_rate(1.0);
        answer
    };
    let real_trades = trades(&real, "trades_sold_get_response");
    assert_eq!(real_trades.len(), 5);
    let total = &real["trades_sold_get_response"]["total_results"];
    assert!(total_results(&real["trades_sold_get_response"]).is_some_and(|n| n > 5), "{real}");

    let serve = async |kind: FaultKind, method: &str, business: &[(&str, &str)]| {
        sim.set_fault_kinds(&[kind]);
        client.raw(method, business).await
    };

    let (status, body) = serve(FaultKind::RemoteTimeout, SOLD, list).await;
    assert_eq!((status.as_u16(), sub_code(&body).as_deref()), (200, Some("isp.top-remote-connection-timeout")));
    assert!(body.contains("\"code\":15"), "{body}");

    let (status, body) = serve(FaultKind::ServiceUnavailable, SOLD, list).await;
    assert_eq!(status, 503);
    assert!(!body.is_empty() && body.len() < 100 && serde_json::from_str::<Json>(&body).is_err(), "{body}");

    let (status, body) = serve(FaultKind::BadGateway, SOLD, list).await;
    assert_eq!(status, 502);
    assert!(body.starts_with("<html>") && body.contains("502 Bad Gateway"), "{body}");

    let (status, body) = serve(FaultKind::Truncated, SOLD, list).await;
    assert_eq!(status, 200);
    assert!(body.starts_with("{\"trades_sold_get_response\"") && serde_json::from_str::<Json>(&body).is_err());

    let (status, body) = serve(FaultKind::EmptyBody, SOLD, list).await;
    assert_eq!((status.as_u16(), body.as_str()), (200, ""));

    let (status, body) = serve(FaultKind::MissingList, SOLD, list).await;
    assert_eq!(status, 200);
    let answer: Json = serde_json::from_str(&body).expect("JSON");
    let missing = &answer["trades_sold_get_response"];
    assert!(missing.get("trades").is_none(), "{body}");
    assert_eq!(&missing["total_results"], total, "the count stays as the real answer said");
    assert!(missing["request_id"].is_string());
    let (_, body) =
        serve(FaultKind::MissingList, FULLINFO, &[("fields", fields), ("tid", &real_trades[0]["tid"].to_string())])
            .await;
    let answer: Json = serde_json::from_str(&body).expect("JSON");
    let detail = answer["trade_fullinfo_get_response"].as_object().expect("a success");
    assert_eq!(detail.keys().collect::<Vec<_>>(), ["request_id"], "{body}");

    let (status, body) = serve(FaultKind::WrongType, SOLD, list).await;
    assert_eq!(status, 200);
    let broken: Json = serde_json::from_str(&body).expect("JSON");
    let records = &broken["trades_sold_get_response"]["trades"]["trade"];
    let text = records.as_str().expect("the list as its JSON text");
    assert_eq!(serde_json::from_str::<Json>(text).expect("JSON text"), Json::Array(real_trades.clone()));

    let started = std::time::Instant::now();
    let (status, body) = serve(FaultKind::Slow, SOLD, list).await;
    assert!(started.elapsed() >= slow, "held back");
    let answer: Json = serde_json::from_str(&body).expect("JSON");
    assert_eq!((status.as_u16(), trades(&answer, "trades_sold_get_response")), (200, real_trades.clone()));

    let (status, body) = serve(FaultKind::TradeServiceRejection, INCREMENT, &[]).await;
    assert_eq!((status.as_u16(), sub_code(&body).as_deref()), (200, Some("isv.trade-service-rejection")));
    assert!(body.contains("\"code\":15"), "{body}");
    let (_, body) = serve(FaultKind::TradeServiceRejection, FULLINFO, &[("fields", "tid"), ("tid", "1")]).await;
    assert_eq!(sub_code(&body).as_deref(), Some("isp.top-remote-connection-timeout"), "not a trade list");

    let calls = sim.calls();
    let served: Vec<(FaultKind, u64)> = FaultKind::ALL.iter().map(|k| (*k, calls.fault(*k))).collect();
    let expected =
        FaultKind::ALL.map(|k| (k, if k == FaultKind::RemoteTimeout || k == FaultKind::MissingList { 2 } else { 1 }));
    assert_eq!(served, expected);
    assert_eq!((calls.faulted, calls.method(SOLD), calls.total), (11, 1, 12));
}

#[tokio::test]
async fn a_fault_with_nothing_to_break_leaves_an_error_answer_alone() {
    let kinds = vec![FaultKind::MissingList, FaultKind::WrongType];
    let sim = start(SimConfig { fault_rate: 1.0, fault_kinds: kinds, ..small(20, 2) }).await;
    let client = Client::new(&sim);
    for _ in 0..4 {
        let answer = client.call(FULLINFO, &[("fields", "tid"), ("tid", "123")]).await;
        assert_eq!(answer["error_response"]["sub_code"], "isv.trade-not-exist");
    }
    let calls = sim.calls();
    assert_eq!((calls.faulted, calls.method(FULLINFO)), (0, 4), "answered, not faulted");
}

#[tokio::test]
async fn a_method_fault_rate_hits_that_method_only() {
    let sim = start(SimConfig { fault_kinds: vec![FaultKind::RemoteTimeout], ..small(50, 5) }).await;
    let client = Client::new(&sim);
    let now = Utc::now();
    let (start_text, end_text) = (fmt(now - chrono::Duration::hours(1)), fmt(now));
    let window = [("fields", "tid"), ("start_modified", start_text.as_str()), ("end_modified", end_text.as_str())];
    sim.set_method_fault_rate(INCREMENT, Some(1.0));
    for _ in 0..5 {
        assert_eq!(error_code(&client.call(INCREMENT, &window).await), Some(15));
        assert_eq!(error_code(&client.call(SOLD, &[("fields", "tid")]).await), None);
        assert_eq!(error_code(&client.call("taobao.tmc.messages.consume", &[]).await), None);
    }
    sim.set_method_fault_rate(INCREMENT, None);
    assert_eq!(error_code(&client.call(INCREMENT, &window).await), None, "back to the common rate, 0");
    let calls = sim.calls();
    assert_eq!((calls.fault(FaultKind::RemoteTimeout), calls.method(INCREMENT), calls.method(SOLD)), (5, 1, 5));
}

#[tokio::test]
async fn an_expired_session_gets_code_27_from_its_instant_on() {
    let sim = start(small(50, 5)).await;
    let client = Client::new(&sim);
    let fields = [("fields", "tid")];
    sim.expire_session_at(Utc::now() + chrono::Duration::milliseconds(400));
    assert_eq!(error_code(&client.call(SOLD, &fields).await), None, "not yet");
    assert_eq!(sim.calls().after_session_expiry, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let expired = client.call(SOLD, &fields).await;
    let wrong = Client { session: "old-session".into(), ..Client::new(&sim) }.call(SOLD, &fields).await;
    assert_eq!(error_code(&expired), Some(27));
    assert_eq!(expired["error_response"]["sub_code"], "invalid-sessionkey");
    assert_eq!(expired["error_response"]["sub_msg"], wrong["error_response"]["sub_msg"], "the same wording");
    // TMC needs no session; the faults come after the session check.
    assert_eq!(error_code(&client.call("taobao.tmc.messages.consume", &[]).await), None);
    sim.set_fault_kinds(&[FaultKind::RemoteTimeout]);
    sim.set_fault_rate(1.0);
    assert_eq!(error_code(&client.call(SOLD, &fields).await), Some(27), "an expired session wins over a fault");
    sim.set_fault_rate(0.0);
    let calls = sim.calls();
    assert_eq!((calls.after_session_expiry, calls.rejected, calls.faulted), (4, 3, 0));

    sim.renew_session();
    assert_eq!(error_code(&client.call(SOLD, &fields).await), None);
    sim.expire_session_at(Utc::now() - chrono::Duration::seconds(1));
    assert_eq!(error_code(&client.call(SOLD, &fields).await), Some(27), "an instant past expires at once");
    assert_eq!(sim.calls().after_session_expiry, 5);
}

#[tokio::test]
async fn calls_during_a_ban_are_counted_apart_from_refusals() {
    let sim = start(SimConfig { rate_limit_per_min: Some(2), fault_rate: 1.0, ..small(20, 2) }).await;
    sim.set_fault_kinds(&[FaultKind::EmptyBody]);
    let client = Client::new(&sim);
    for _ in 0..2 {
        assert_eq!(client.raw("taobao.tmc.messages.consume", &[]).await.1, "", "faulted");
    }
    let over = client.call("taobao.tmc.messages.consume", &[]).await;
    assert_eq!(error_code(&over), Some(7), "a ban wins over a fault");
    assert_eq!((sim.calls().banned, sim.calls().during_ban), (1, 0), "the call over the quota starts the ban");
    assert_eq!(error_code(&client.call("taobao.tmc.messages.consume", &[]).await), Some(7));
    let stranger = Client { app_key: "someone-else".into(), ..Client::new(&sim) };
    assert_eq!(error_code(&stranger.call("taobao.tmc.messages.consume", &[]).await), Some(29));
    let calls = sim.calls();
    assert_eq!(
        (calls.total, calls.faulted, calls.banned, calls.rejected, calls.during_ban),
        (5, 2, 2, 1, 2),
        "{calls:?}"
    );
}

#[tokio::test]
async fn one_seed_gives_one_sequence_of_served_faults() {
    let kinds: Vec<FaultKind> = FaultKind::ALL.into_iter().filter(|k| *k != FaultKind::Slow).collect();
    let run = async |seed: u64| {
        let sim = start(SimConfig { seed, fault_rate: 0.5, fault_kinds: kinds.clone(), ..small(50, 5) }).await;
        let client = Client::new(&sim);
        let mut seen = Vec::new();
        for _ in 0..40 {
            let (status, body) = client.raw(SOLD, &[("fields", "tid"), ("page_size", "3")]).await;
            let shape = serde_json::from_str::<Json>(&body).map(|_| sub_code(&body).unwrap_or_default());
            seen.push((status.as_u16(), body.len().min(1), shape.unwrap_or_else(|_| "not JSON".into())));
        }
        (seen, sim.calls().by_fault)
    };
    let (first, second, other) = (run(5).await, run(5).await, run(6).await);
    assert_eq!(first, second);
    assert_ne!(first.0, other.0);
    assert!(first.1.len() >= 4, "several kinds: {:?}", first.1);
}

#[tokio::test]
async fn a_slow_answer_comes_after_the_delay_and_outlasts_a_shorter_timeout() {
    let slow = Duration::from_millis(200);
    let config = SimConfig { fault_rate: 1.0, fault_kinds: vec![FaultKind::Slow], slow_answer: slow, ..small(20, 2) };
    let sim = start(config).await;
    let client = Client::new(&sim);
    let started = std::time::Instant::now();
    let answer = client.call(SOLD, &[("fields", "tid")]).await;
    assert!(started.elapsed() >= slow);
    assert_eq!(error_code(&answer), None, "the real answer: {answer}");
    let impatient = Client {
        http: reqwest::Client::builder().timeout(Duration::from_millis(50)).build().expect("a client"),
        ..Client::new(&sim)
    };
    let timestamp = fmt(Utc::now());
    let sent = impatient.http.get(&impatient.url).query(&[("timestamp", timestamp.as_str())]).send().await;
    assert!(sent.is_ok(), "a request that fails its checks is not held back");
    let signed = tokio::time::timeout(Duration::from_secs(5), impatient.try_raw(SOLD, &[("fields", "tid")])).await;
    assert!(signed.expect("no hang").is_err_and(|e| e.is_timeout()), "timed out");
    assert_eq!(sim.calls().fault(FaultKind::Slow), 2);
}

#[tokio::test]
async fn latency_delays_every_answer() {
    let sim = start(SimConfig { latency: Duration::from_millis(150), ..small(20, 2) }).await;
    let client = Client::new(&sim);
    let started = std::time::Instant::now();
    client.call("taobao.tmc.messages.consume", &[]).await;
    client.call("taobao.trades.sold.get", &[("fields", "tid"), ("page_size", "1")]).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn refunds_and_parcels_can_be_looked_up() {
    let sim = start(small(2_000, 30)).await;
    let client = Client::new(&sim);
    let truth = sim.truth();
    let refund = truth.refunds.iter().find(|r| r["refund_phase"] == "aftersale").expect("a refund");
    let refund_id = refund["refund_id"].as_str().expect("refund ids are strings");
    let one = client
        .call("taobao.refund.get", &[("fields", "refund_id,tid,status,refund_fee"), ("refund_id", refund_id)])
        .await;
    assert_eq!(one["refund_get_response"]["refund"]["status"], refund["status"]);

    let listed = client
        .call(
            "taobao.refunds.receive.get",
            &[
                ("fields", "refund_id,tid,oid,status,modified"),
                ("type", "guarantee_trade,step,fenxiao"),
                ("page_size", "100"),
            ],
        )
        .await;
    let body = &listed["refunds_receive_get_response"];
    assert_eq!(total_results(body), Some(truth.refunds.len() as u64));
    let modified: Vec<&str> = body["refunds"]["refund"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|r| r["modified"].as_str().expect("a time"))
        .collect();
    assert!(modified.windows(2).all(|w| w[0] >= w[1]));

    let shipped = truth.orders.iter().find(|o| o.status == "WAIT_BUYER_CONFIRM_GOODS").expect("a shipped order");
    let tid = shipped.tid.to_string();
    let trace = client.call("taobao.logistics.trace.search", &[("tid", &tid)]).await;
    let body = &trace["logistics_trace_search_response"];
    assert_eq!(body["out_sid"], shipped.json["orders"]["order"][0]["invoice_no"]);
    assert!(body["company_name"].is_string());
    let steps = body["trace_list"]["transit_step_info"].as_array().cloned().unwrap_or_default();
    assert!(
        steps.iter().all(|s| s["status_time"].is_string() && s["action"].is_string() && s["status_desc"].is_string())
    );
    let unpaid = truth
        .orders
        .iter()
        .find(|o| o.status == "WAIT_BUYER_PAY" || o.status == "TRADE_CLOSED_BY_TAOBAO")
        .expect("an unshipped order");
    let none = client.call("taobao.logistics.trace.search", &[("tid", &unpaid.tid.to_string())]).await;
    assert_eq!(error_code(&none), Some(15));
}

#[tokio::test]
async fn truth_lists_stalled_parcels_and_a_moved_parcel_leaves_the_list() {
    let sim = start(SimConfig { orders: 3000, ..SimConfig::default() }).await;
    let quiet = chrono::Duration::hours(72);
    let stalled = sim.truth().stalled_parcels(quiet);
    let tid = *stalled.first().expect("some parcels stalled");
    let before = sim.truth().order(tid).cloned().expect("the order");
    assert!(sim.move_parcel(tid));
    let truth = sim.truth();
    assert!(!truth.stalled_parcels(quiet).contains(&tid));
    assert_eq!(truth.stalled_parcels(quiet).len(), stalled.len() - 1);
    let after = truth.order(tid).expect("the order");
    assert_eq!(after.modified, before.modified, "a parcel moving is no order change");
    assert!(after.parcel.as_ref().and_then(|p| p.last_event).is_some_and(|at| truth.taken_at - at < quiet));
    let unshipped = truth.orders.iter().find(|o| o.parcel.is_none()).expect("an unshipped order");
    assert!(!sim.move_parcel(unshipped.tid));

    // The gateway's trace shows the new event last.
    let client = Client::new(&sim);
    let trace = client.call("taobao.logistics.trace.search", &[("tid", &tid.to_string())]).await;
    let steps = trace["logistics_trace_search_response"]["trace_list"]["transit_step_info"].as_array().cloned();
    let last = steps.and_then(|s| s.last().cloned()).expect("steps");
    assert_eq!(last["action"], "TRANSPORT");
}

/// Run by hand in release (`cargo test --release --lib sim::tests::paging_a_large -- --ignored --nocapture`):
/// pages stay fast on a large shop that changes 50 times a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn paging_a_large_changing_shop_stays_fast() {
    let started = std::time::Instant::now();
    let sim = start(SimConfig { orders: 20_000, mutations_per_sec: 50.0, ..SimConfig::default() }).await;
    println!("generated 20 000 orders in {:?}", started.elapsed());
    let client = Client::new(&sim);
    let mut slowest = Duration::ZERO;
    let started = std::time::Instant::now();
    let mut pages = 0;
    for page in (1..=200).rev() {
        let page_no = page.to_string();
        let t = std::time::Instant::now();
        client
            .call(
                "taobao.trades.sold.get",
                &[("fields", "tid,status,modified,orders"), ("page_no", &page_no), ("page_size", "100")],
            )
            .await;
        slowest = slowest.max(t.elapsed());
        pages += 1;
    }
    println!("{pages} pages of 100 in {:?}, slowest {slowest:?}; {:?}", started.elapsed(), sim.calls());
}

#[tokio::test]
async fn a_refund_opened_on_a_paid_line_shows_in_the_truth_once() {
    let sim = start(small(300, 10)).await;
    sim.pause_mutations();
    let truth = sim.truth();
    let paid = truth
        .orders
        .iter()
        .find(|o| o.status == "WAIT_SELLER_SEND_GOODS" && o.items.iter().all(|i| i.refund_id.is_none()))
        .expect("a paid order without refunds");
    let unpaid = truth.orders.iter().find(|o| o.status == "WAIT_BUYER_PAY").expect("an unpaid order");
    let oid = paid.items[0].oid;
    let id = sim.open_refund(paid.tid, oid).expect("a paid line can be refunded");
    assert_eq!(sim.open_refund(paid.tid, oid), None, "one refund per line");
    assert_eq!(sim.open_refund(unpaid.tid, unpaid.items[0].oid), None, "nothing paid, nothing to refund");
    let after = sim.truth();
    let line = &after.order(paid.tid).expect("still there").items[0];
    assert_eq!((line.refund_id, line.refund_status.as_deref()), (Some(id), Some("WAIT_SELLER_AGREE")));
    assert!(after.order(paid.tid).expect("still there").modified >= paid.modified);
}

#[tokio::test]
async fn answers_carry_the_shapes_real_top_answers_have() {
    let sim = start(small(300, 10)).await;
    let client = Client::new(&sim);
    let truth = sim.truth();
    let discounted = truth
        .orders
        .iter()
        .find(|o| o.json["discount_fee"] != "0.00" && o.tid % 2 == 0)
        .expect("a discounted order of even tid");
    let fields = "tid,status,promotion_details,service_tags,orders";
    let detail =
        client.call("taobao.trade.fullinfo.get", &[("fields", fields), ("tid", &discounted.tid.to_string())]).await;
    let trade = &detail["trade_fullinfo_get_response"]["trade"];
    let promotions = trade["promotion_details"]["promotion_detail"].as_array().expect("nested promotions");
    assert!(!promotions.is_empty() && promotions.iter().all(|p| p["discount_fee"].is_string()), "{trade}");
    let tags = trade["service_tags"]["logistics_tag"].as_array().expect("nested logistics tags");
    assert!(tags[0]["logistic_service_tag_list"]["logistic_service_tag"].is_array(), "{trade}");
    for line in trade["orders"]["order"].as_array().expect("lines") {
        assert!(line["oid"].is_string() && line["num_iid"].is_string(), "ids as strings on an even tid: {line}");
        let refunded = line.get("refund_id").is_some();
        assert!(refunded || line["refund_status"] == "NO_REFUND", "{line}");
    }

    let listed = client.call("taobao.trades.sold.get", &[("fields", fields), ("page_size", "100")]).await;
    let body = &listed["trades_sold_get_response"];
    assert!(body["trades"]["trade"][0].get("promotion_details").is_none(), "detail only");
    let total = total_results(body).expect("a total");
    assert_eq!(body["total_results"].is_string(), total % 2 == 1, "a string when odd: {}", body["total_results"]);
    let odd = trades(&listed, "trades_sold_get_response")
        .into_iter()
        .find(|t| t["tid"].as_i64().is_some_and(|tid| tid % 2 == 1));
    assert!(odd.expect("a trade of odd tid")["orders"]["order"][0]["oid"].is_i64(), "numbers otherwise");
}
