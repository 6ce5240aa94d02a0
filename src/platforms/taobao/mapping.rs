//! TOP's JSON records → the normalised model ([`Order`], [`Refund`],
//! [`ParcelTrace`], [`PlatformMessage`]).
//!
//! Only what the model holds is read, and read strictly: the fields a
//! record cannot do without (`tid`, `status`, `created`, `modified` of a
//! trade) make it [`Malformed`] when missing, naming the field and the
//! order, and so do impossible values (a `tid` that is not positive, a
//! status TOP does not document). The model's other fields are optional, or
//! zero when absent, because the caller chose `fields` and may have left
//! them out; when present but unreadable (a price that is not money, a time
//! that is not a TOP time) they are malformed too, as guessing would store a
//! wrong value. Everything else is kept in `raw` exactly as it came, nested
//! objects and lists included (`promotion_details`, `service_tags`, …):
//! TOP adds such structures over time, and a field orderflow does not read
//! must never refuse an order.

use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use super::envelope::{self, excerpt, id, is_blank, list, text};
use super::error::Malformed;
use super::fields::{NO_REFUND, TRADE_STATUSES};
use super::{PLATFORM, time};
use crate::platforms::{Money, Order, OrderItem, PageRequest, ParcelTrace, PlatformMessage, Refund, TraceStep};

/// A trade (`trades.trade[]` of the list methods, `trade` of fullinfo) as an
/// [`Order`] of `shop`, keeping the trade's JSON as received in `raw`.
pub fn order(shop: &str, trade: &Json) -> Result<Order, Malformed> {
    let tid = positive_id(trade, "tid")
        .ok_or_else(|| Malformed::field(format!("a trade without a valid tid: {:?}", excerpt(&trade.to_string()))))?;
    let what = format!("trade {tid}");
    let status = required_text(trade, "status", &what)?;
    if !TRADE_STATUSES.contains(&status.as_str()) {
        return Err(Malformed::field(format!("{what}: status {status:?} is not a TOP trade status")));
    }
    let items = list(trade, "orders", "order")
        .into_iter()
        .enumerate()
        .map(|(index, item)| order_item(tid, index, item))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Order {
        platform: PLATFORM.to_owned(),
        shop: shop.to_owned(),
        tid,
        status,
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

/// Sub-order `index` (0-based) of trade `tid` as an [`OrderItem`]. TOP's
/// `refund_status: "NO_REFUND"` is no refund: `None`, as when it is absent.
pub fn order_item(tid: i64, index: usize, item: &Json) -> Result<OrderItem, Malformed> {
    let what = format!("trade {tid} orders.order[{index}]");
    let oid = positive_id(item, "oid").ok_or_else(|| Malformed::field(format!("{what}: missing or invalid oid")))?;
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
        refund_status: text(item, "refund_status").filter(|status| status != NO_REFUND),
        refund_id: optional_id(item, "refund_id", &what)?,
    })
}

/// A refund (`refunds.refund[]` of `refunds.receive.get`, `refund` of
/// `refund.get`) as a [`Refund`] of `shop`.
pub fn refund(shop: &str, refund: &Json) -> Result<Refund, Malformed> {
    let refund_id = positive_id(refund, "refund_id").ok_or_else(|| {
        Malformed::field(format!("a refund without a valid refund_id: {:?}", excerpt(&refund.to_string())))
    })?;
    let what = format!("refund {refund_id}");
    let required_id = |key: &str| {
        positive_id(refund, key).ok_or_else(|| Malformed::field(format!("{what}: missing or invalid {key}")))
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

/// What a record that cannot be mapped is set aside with: its reason names
/// the field and the record (`trade 12: missing status`).
pub fn rejected(raw: &Json, error: Malformed) -> crate::platforms::Rejected {
    crate::platforms::Rejected { raw: raw.clone(), reason: error.message }
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

/// An id TOP documents as a positive number (`tid`, `oid`, `refund_id`),
/// written as a number or a string of digits; zero or below is no id.
fn positive_id(record: &Json, key: &str) -> Option<i64> {
    record.get(key).and_then(id).filter(|id| *id > 0)
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
    fn fields_the_model_does_not_read_are_kept_as_they_come_whatever_their_shape() {
        let mut nested = trade();
        nested["promotion_details"] = json!({"promotion_detail": [{"id": 1368678412452030_i64,
            "promotion_name": "收藏先发货", "discount_fee": "10.00"}]});
        nested["service_tags"] = json!({"logistics_tag": [{"order_id": "1368678412452073",
            "logistic_service_tag_list": {"logistic_service_tag": [{"service_type": "FAST"}]}}]});
        nested["seller_flag"] = json!({"unexpected": true});
        nested["post_fee"] = json!(["not", "money"]);
        nested["consign_time"] = json!("not a time");
        nested["orders"]["order"][0]["refund_status"] = json!("NO_REFUND");
        nested["orders"]["order"][0]["logistics_infos"] = json!({"logistics_info": []});
        let order = order("s", &nested).unwrap();
        assert_eq!(order.raw, nested);
        assert_eq!(order.raw["promotion_details"]["promotion_detail"][0]["discount_fee"], "10.00");
        assert_eq!(order.items[0].refund_status, None, "NO_REFUND is no refund");
        assert_eq!(order.items[1].refund_status.as_deref(), Some("SUCCESS"));
    }

    #[test]
    fn impossible_values_are_refused_naming_the_field_and_the_tid() {
        for tid in [json!(0), json!(-5), json!("-5"), json!({"id": 1}), json!(1.5)] {
            let mut bad = trade();
            bad["tid"] = tid.clone();
            let message = order("s", &bad).unwrap_err().message;
            assert!(message.starts_with("a trade without a valid tid"), "{tid}: {message}");
        }
        for status in [json!(7), json!("SHIPPED"), json!("wait_buyer_pay")] {
            let mut bad = trade();
            bad["status"] = status.clone();
            let message = order("s", &bad).unwrap_err().message;
            assert!(message.starts_with("trade 4611686018427387905: status"), "{status}: {message}");
        }
        for field in ["created", "modified"] {
            let mut empty = trade();
            empty[field] = json!("");
            assert_eq!(order("s", &empty).unwrap_err().message, format!("trade 4611686018427387905: missing {field}"));
        }
        let mut zero_oid = trade();
        zero_oid["orders"]["order"][0]["oid"] = json!(0);
        assert_eq!(
            order("s", &zero_oid).unwrap_err().message,
            "trade 4611686018427387905 orders.order[0]: missing or invalid oid"
        );
        for status in TRADE_STATUSES {
            let mut good = trade();
            good["status"] = json!(status);
            assert_eq!(order("s", &good).unwrap().status, *status);
        }
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
