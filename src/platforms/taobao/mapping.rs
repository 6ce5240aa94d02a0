//! TOP's JSON records → the normalised model ([`Order`], [`Refund`],
//! [`ParcelTrace`], [`PlatformMessage`]).
//!
//! The fields the model cannot do without (`tid`, `status`, `created`,
//! `modified` of a trade) make a record [`Malformed`] when missing, naming
//! the field and the order; the others are optional, or zero when absent,
//! because the caller chose `fields` and may have left them out. A field that
//! is present but unreadable (a price that is not money, a time that is not a
//! TOP time) is malformed too: guessing would store a wrong value.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::envelope::{self, excerpt, id, is_blank, list, text};
use super::error::Malformed;
use super::fields::{DEFAULT_TRADE_FIELDS, DETAIL_EXTRA_FIELDS};
use super::{PLATFORM, time};
use crate::platforms::{Money, Order, OrderItem, PageRequest, ParcelTrace, PlatformMessage, Refund, TraceStep};

/// A trade (`trades.trade[]` of the list methods, `trade` of fullinfo) as an
/// [`Order`] of `shop`, keeping the trade's JSON as received in `raw`.
pub fn order(shop: &str, trade: &Json) -> Result<Order, Malformed> {
    let tid = trade
        .get("tid")
        .and_then(id)
        .ok_or_else(|| Malformed::field(format!("a trade without a valid tid: {:?}", excerpt(&trade.to_string()))))?;
    let what = format!("trade {tid}");
    check_trade_fields(trade, &what)?;
    let items = list(trade, "orders", "order")
        .into_iter()
        .enumerate()
        .map(|(index, item)| order_item(tid, index, item))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Order {
        platform: PLATFORM.to_owned(),
        shop: shop.to_owned(),
        tid,
        status: required_text(trade, "status", &what)?,
        // Not required: a caller's own `fields` may leave it out.
        order_type: text(trade, "type").unwrap_or_default(),
        created: required_time(trade, "created", &what)?,
        modified: required_time(trade, "modified", &what)?,
        pay_time: optional_time(trade, "pay_time", &what)?,
        payment: money(trade, "payment", &what)?,
        buyer_nick: text(trade, "buyer_nick"),
        step_trade_status: text(trade, "step_trade_status"),
        items,
        raw: trade.clone(),
    })
}

/// The amounts and times of a trade that the model does not map but the
/// raw JSON keeps: they are checked too, so that a mistyped one is caught
/// as an anomaly rather than stored.
const TRADE_AMOUNTS: [&str; 6] =
    ["total_fee", "post_fee", "discount_fee", "adjust_fee", "received_payment", "step_paid_fee"];
const TRADE_TIMES: [&str; 2] = ["consign_time", "end_time"];

/// Every field orderflow asks for holds a value of its kind: no object or
/// list where TOP sends text or a number, no amount or time that is none.
fn check_trade_fields(trade: &Json, what: &str) -> Result<(), Malformed> {
    for key in DEFAULT_TRADE_FIELDS.iter().chain(DETAIL_EXTRA_FIELDS).filter(|key| **key != "orders") {
        if let Some(value @ (Json::Object(_) | Json::Array(_))) = trade.get(*key) {
            return Err(Malformed::field(format!(
                "{what}: {key} is not a plain value: {}",
                excerpt(&value.to_string())
            )));
        }
    }
    for key in TRADE_AMOUNTS {
        if !is_blank(trade, key) {
            money(trade, key, what)?;
        }
    }
    for key in TRADE_TIMES {
        optional_time(trade, key, what)?;
    }
    Ok(())
}

/// Sub-order `index` (0-based) of trade `tid` as an [`OrderItem`].
pub fn order_item(tid: i64, index: usize, item: &Json) -> Result<OrderItem, Malformed> {
    let what = format!("trade {tid} orders.order[{index}]");
    let oid =
        item.get("oid").and_then(id).ok_or_else(|| Malformed::field(format!("{what}: missing or invalid oid")))?;
    let what = format!("trade {tid} order {oid}");
    Ok(OrderItem {
        oid,
        num_iid: optional_id(item, "num_iid", &what)?,
        sku_id: text(item, "sku_id"),
        outer_sku_id: text(item, "outer_sku_id"),
        title: text(item, "title"),
        num: optional_id(item, "num", &what)?.unwrap_or(0),
        price: money(item, "price", &what)?,
        payment: money(item, "payment", &what)?,
        refund_status: text(item, "refund_status"),
        refund_id: optional_id(item, "refund_id", &what)?,
    })
}

/// A refund (`refunds.refund[]` of `refunds.receive.get`, `refund` of
/// `refund.get`) as a [`Refund`] of `shop`.
pub fn refund(shop: &str, refund: &Json) -> Result<Refund, Malformed> {
    let refund_id = refund.get("refund_id").and_then(id).ok_or_else(|| {
        Malformed::field(format!("a refund without a valid refund_id: {:?}", excerpt(&refund.to_string())))
    })?;
    let what = format!("refund {refund_id}");
    let required_id = |key: &str| {
        refund.get(key).and_then(id).ok_or_else(|| Malformed::field(format!("{what}: missing or invalid {key}")))
    };
    Ok(Refund {
        platform: PLATFORM.to_owned(),
        shop: shop.to_owned(),
        refund_id,
        tid: required_id("tid")?,
        oid: required_id("oid")?,
        status: required_text(refund, "status", &what)?,
        refund_fee: money(refund, "refund_fee", &what)?,
        created: required_time(refund, "created", &what)?,
        modified: required_time(refund, "modified", &what)?,
        raw: refund.clone(),
    })
}

/// The parcels of a `logistics.trace.search` answer body: one per answer as
/// TOP documents it, none when the order has not shipped (no waybill and no
/// steps). Steps come oldest first whatever order the carrier wrote them in.
pub fn parcel_traces(body: &Json) -> Result<Vec<ParcelTrace>, Malformed> {
    let steps = list(body, "trace_list", "transit_step_info");
    if is_blank(body, "out_sid") && steps.is_empty() {
        return Ok(Vec::new());
    }
    let what = match text(body, "out_sid") {
        Some(out_sid) => format!("parcel {out_sid}"),
        None => "parcel".to_owned(),
    };
    let mut steps = steps
        .into_iter()
        .map(|step| {
            Ok(TraceStep {
                time: required_time(step, "status_time", &what)?,
                description: text(step, "status_desc").unwrap_or_default(),
                action: text(step, "action"),
            })
        })
        .collect::<Result<Vec<_>, Malformed>>()?;
    // Stable, so steps stamped with the same second keep the carrier's order.
    steps.sort_by_key(|step| step.time);
    Ok(vec![ParcelTrace {
        out_sid: text(body, "out_sid").unwrap_or_default(),
        company_name: text(body, "company_name"),
        status: text(body, "status"),
        steps,
    }])
}

/// A TMC message (`messages.tmc_message[]`). Its `content` is a JSON string
/// (parsed here; kept as a string if it is not JSON) whose `tid` names the
/// order the message is about.
pub fn message(message: &Json) -> Result<PlatformMessage, Malformed> {
    let message_id = message.get("id").and_then(id).ok_or_else(|| {
        Malformed::field(format!("a message without a valid id: {:?}", excerpt(&message.to_string())))
    })?;
    let what = format!("message {message_id}");
    let content = match message.get("content") {
        Some(Json::String(raw)) => match serde_json::from_str(&envelope::escape_control_characters(raw)) {
            Ok(parsed) => parsed,
            Err(_) => Json::String(raw.clone()),
        },
        Some(other) => other.clone(),
        None => Json::Null,
    };
    let tid = content.get("tid").and_then(id);
    Ok(PlatformMessage {
        id: message_id,
        topic: required_text(message, "topic", &what)?,
        pub_time: required_time(message, "pub_time", &what)?,
        tid,
        content,
    })
}

/// A page's total and whether another page follows. `has_next` from the
/// answer wins; without it (when the total was asked for, TOP drops
/// `has_next`) it is derived from `total_results`, and without either from
/// whether this page came back full.
pub fn paging(body: &Json, request: PageRequest, count: usize) -> (Option<u64>, bool) {
    let total = body.get("total_results").and_then(id).and_then(|n| u64::try_from(n).ok());
    let has_next = match body.get("has_next").and_then(envelope::boolean) {
        Some(has_next) => has_next,
        None => match total {
            Some(total) => u64::from(request.page_no) * u64::from(request.page_size) < total,
            None => count >= request.page_size as usize && count > 0,
        },
    };
    (total, has_next)
}

fn required_text(record: &Json, key: &str, what: &str) -> Result<String, Malformed> {
    text(record, key).ok_or_else(|| Malformed::field(format!("{what}: missing {key}")))
}

fn required_time(record: &Json, key: &str, what: &str) -> Result<DateTime<Utc>, Malformed> {
    optional_time(record, key, what)?.ok_or_else(|| Malformed::field(format!("{what}: missing {key}")))
}

fn optional_time(record: &Json, key: &str, what: &str) -> Result<Option<DateTime<Utc>>, Malformed> {
    let Some(raw) = text(record, key) else { return Ok(None) };
    // TMC writes some times with milliseconds; TOP's format has none.
    let parsed = time::parse(&raw).or_else(|| raw.split_once('.').and_then(|(whole, _)| time::parse(whole)));
    parsed.map(Some).ok_or_else(|| Malformed::field(format!("{what}: {key} is not a TOP time: {raw:?}")))
}

fn money(record: &Json, key: &str, what: &str) -> Result<Money, Malformed> {
    let Some(raw) = text(record, key) else { return Ok(Money::default()) };
    raw.parse().map_err(|_| Malformed::field(format!("{what}: {key} is not an amount in yuan: {raw:?}")))
}

fn optional_id(record: &Json, key: &str, what: &str) -> Result<Option<i64>, Malformed> {
    if is_blank(record, key) {
        return Ok(None);
    }
    match record.get(key).and_then(id) {
        Some(value) => Ok(Some(value)),
        None => Err(Malformed::field(format!("{what}: {key} is not an integer: {}", record[key]))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn trade() -> Json {
        json!({
            "tid": 4611686018427387905_i64,
            "status": "WAIT_SELLER_SEND_GOODS",
            "type": "step",
            "created": "2026-11-24 10:00:00",
            "modified": "2026-11-24 10:05:00",
            "pay_time": "2026-11-24 10:01:00",
            "payment": "200.07",
            "buyer_nick": "buyer",
            "step_trade_status": "FRONT_PAID_FINAL_NOPAID",
            "step_paid_fee": "20.00",
            "orders": {"order": [
                {"oid": "4611686018427387906", "num_iid": 100, "sku_id": 5001, "outer_sku_id": "SKU-1",
                 "title": "Tea", "num": "2", "price": "50.00", "payment": "100.00"},
                {"oid": 4611686018427387907_i64, "num_iid": "101", "sku_id": "5002", "num": 1, "price": "100.07",
                 "payment": "100.07", "refund_status": "SUCCESS", "refund_id": "777"}
            ]}
        })
    }

    fn at(text: &str) -> DateTime<Utc> {
        time::parse(text).unwrap()
    }

    #[test]
    fn a_trade_maps_to_an_order_with_its_items() {
        let order = order("tmall", &trade()).unwrap();
        assert_eq!(order.platform, "taobao");
        assert_eq!(order.shop, "tmall");
        assert_eq!(order.tid, 4_611_686_018_427_387_905);
        assert_eq!(order.status, "WAIT_SELLER_SEND_GOODS");
        assert_eq!(order.order_type, "step");
        assert_eq!(order.created, at("2026-11-24 10:00:00"));
        assert_eq!(order.modified, at("2026-11-24 10:05:00"));
        assert_eq!(order.pay_time, Some(at("2026-11-24 10:01:00")));
        assert_eq!(order.payment, Money(20007));
        assert_eq!(order.buyer_nick.as_deref(), Some("buyer"));
        assert_eq!(order.step_trade_status.as_deref(), Some("FRONT_PAID_FINAL_NOPAID"));
        assert_eq!(order.raw, trade());
        let [first, second] = &order.items[..] else { panic!("two items expected") };
        assert_eq!(first.oid, 4_611_686_018_427_387_906);
        assert_eq!(first.num_iid, Some(100));
        assert_eq!(first.sku_id.as_deref(), Some("5001"));
        assert_eq!(first.outer_sku_id.as_deref(), Some("SKU-1"));
        assert_eq!(first.title.as_deref(), Some("Tea"));
        assert_eq!((first.num, first.price, first.payment), (2, Money(5000), Money(10000)));
        assert_eq!((first.refund_status.as_deref(), first.refund_id), (None, None));
        assert_eq!(second.oid, 4_611_686_018_427_387_907);
        assert_eq!(second.sku_id.as_deref(), Some("5002"));
        assert_eq!((second.refund_status.as_deref(), second.refund_id), (Some("SUCCESS"), Some(777)));
    }

    #[test]
    fn optional_fields_may_be_absent() {
        let order = order(
            "s",
            &json!({"tid": "12", "status": "WAIT_BUYER_PAY", "created": "2026-01-01 00:00:00",
            "modified": "2026-01-01 00:00:00", "pay_time": "", "orders": {}}),
        )
        .unwrap();
        assert_eq!((order.tid, order.pay_time, order.payment, order.items.len()), (12, None, Money(0), 0));
        assert_eq!(order.order_type, "");
    }

    #[test]
    fn a_missing_required_field_names_the_field_and_the_tid() {
        for field in ["status", "created", "modified"] {
            let mut trade = trade();
            trade.as_object_mut().unwrap().remove(field);
            let message = order("s", &trade).unwrap_err().message;
            assert_eq!(message, format!("trade 4611686018427387905: missing {field}"));
        }
        let mut no_tid = trade();
        no_tid.as_object_mut().unwrap().remove("tid");
        assert!(order("s", &no_tid).unwrap_err().message.starts_with("a trade without a valid tid"));
        let mut bad_time = trade();
        bad_time["created"] = json!("yesterday");
        assert_eq!(
            order("s", &bad_time).unwrap_err().message,
            "trade 4611686018427387905: created is not a TOP time: \"yesterday\""
        );
        let mut bad_money = trade();
        bad_money["orders"]["order"][0]["price"] = json!("1.234");
        assert!(
            order("s", &bad_money).unwrap_err().message.contains("order 4611686018427387906: price is not an amount")
        );
        let mut bad_oid = trade();
        bad_oid["orders"]["order"][1]["oid"] = json!(null);
        assert_eq!(
            order("s", &bad_oid).unwrap_err().message,
            "trade 4611686018427387905 orders.order[1]: missing or invalid oid"
        );
    }

    #[test]
    fn a_refund_maps() {
        let raw = json!({"refund_id": "9000000000000001", "tid": 11, "oid": "12", "status": "SUCCESS",
            "refund_fee": "10.50", "created": "2026-11-24 10:00:00", "modified": "2026-11-24 11:00:00",
            "good_status": "BUYER_RECEIVED", "refund_phase": "aftersale"});
        let refund = refund("s", &raw).unwrap();
        assert_eq!((refund.refund_id, refund.tid, refund.oid), (9_000_000_000_000_001, 11, 12));
        assert_eq!((refund.status.as_str(), refund.refund_fee), ("SUCCESS", Money(1050)));
        assert_eq!(refund.modified, at("2026-11-24 11:00:00"));
        assert_eq!(refund.raw, raw);
        let mut no_oid = raw.clone();
        no_oid.as_object_mut().unwrap().remove("oid");
        assert_eq!(super::refund("s", &no_oid).unwrap_err().message, "refund 9000000000000001: missing or invalid oid");
    }

    #[test]
    fn a_trace_has_its_steps_oldest_first() {
        let body = json!({"out_sid": "SF123", "company_name": "SF", "tid": 1, "status": "SIGNED",
        "trace_list": {"transit_step_info": [
            {"status_time": "2026-11-25 09:00:00", "status_desc": "signed", "action": "SIGN"},
            {"status_time": "2026-11-24 09:00:00", "status_desc": "picked up", "action": "ACCEPT"},
            {"status_time": "2026-11-24 18:00:00", "status_desc": "in transit"}
        ]}});
        let traces = parcel_traces(&body).unwrap();
        let [trace] = &traces[..] else { panic!("one parcel expected") };
        assert_eq!((trace.out_sid.as_str(), trace.company_name.as_deref()), ("SF123", Some("SF")));
        let descriptions: Vec<&str> = trace.steps.iter().map(|s| s.description.as_str()).collect();
        assert_eq!(descriptions, ["picked up", "in transit", "signed"]);
        assert_eq!(trace.steps[0].action.as_deref(), Some("ACCEPT"));
        assert_eq!(trace.steps[1].action, None);
        assert!(parcel_traces(&json!({})).unwrap().is_empty());
        assert!(
            parcel_traces(&json!({"out_sid": "X", "trace_list": {"transit_step_info": [{"status_time": "?"}]}}))
                .is_err()
        );
    }

    #[test]
    fn a_message_carries_its_parsed_content_and_tid() {
        let raw = json!({"id": 5000000000000000001_i64, "topic": "taobao_trade_TradeChanged",
            "pub_time": "2026-11-24 10:00:00", "user_id": 1, "user_nick": "shop",
            "content": "{\"tid\":4611686018427387905,\"status\":\"TRADE_FINISHED\",\"payment\":\"1.00\"}"});
        let message = message(&raw).unwrap();
        assert_eq!(message.id, 5_000_000_000_000_000_001);
        assert_eq!(message.topic, "taobao_trade_TradeChanged");
        assert_eq!(message.pub_time, at("2026-11-24 10:00:00"));
        assert_eq!(message.tid, Some(4_611_686_018_427_387_905));
        assert_eq!(message.content["status"], "TRADE_FINISHED");
        let xml = super::message(&json!({"id": 1, "topic": "t", "pub_time": "2026-11-24 10:00:00.123",
            "content": "<tid>1</tid>"}))
        .unwrap();
        assert_eq!((xml.tid, xml.content), (None, json!("<tid>1</tid>")));
    }

    #[test]
    fn paging_prefers_has_next_then_the_total() {
        let request = |page_no, with_total| PageRequest { page_no, page_size: 10, with_total };
        assert_eq!(paging(&json!({"has_next": true}), request(1, false), 10), (None, true));
        assert_eq!(paging(&json!({"has_next": "false"}), request(1, false), 10), (None, false));
        assert_eq!(paging(&json!({"total_results": 25}), request(2, true), 10), (Some(25), true));
        assert_eq!(paging(&json!({"total_results": "25"}), request(3, true), 5), (Some(25), false));
        assert_eq!(paging(&json!({}), request(1, false), 10), (None, true));
        assert_eq!(paging(&json!({}), request(1, false), 3), (None, false));
    }
}
