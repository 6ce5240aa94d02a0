//! Douyin records → the normalised model.
//!
//! Amounts are integer fen (Taobao writes yuan strings): they become the
//! same [`Money`]. Times are Unix seconds. The numeric `order_status` becomes
//! the normalised status, which is TOP's vocabulary (`WAIT_SELLER_SEND_GOODS`,
//! …), so that orders of both platforms in one `orders` table compare and
//! every node testing a status works on both; the record as received stays in
//! `raw`, its `order_status` included. Missing required fields and present
//! but unreadable ones are [`Malformed`], as on Taobao.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value as Json;

use super::PLATFORM;
use crate::platforms::taobao::envelope::{excerpt, id, is_blank, text};
use crate::platforms::taobao::error::Malformed;
use crate::platforms::{Money, Order, OrderItem, PageRequest, Refund};

/// The normalised status of a Douyin `order_status` (documented: 1 awaiting
/// payment, 105 paid, 2 to ship, 101 partly shipped, 3 shipped, 4 cancelled,
/// 5 completed). A cancelled order that was paid was closed by a refund
/// (`TRADE_CLOSED`); one that never was, before payment
/// (`TRADE_CLOSED_BY_TAOBAO`, TOP's name for it). A code not documented is
/// kept as `DOUYIN_<code>` rather than guessed.
pub fn status_name(order_status: i64, paid: bool) -> String {
    let name = match order_status {
        1 => "WAIT_BUYER_PAY",
        105 | 2 => "WAIT_SELLER_SEND_GOODS",
        101 => "SELLER_CONSIGNED_PART",
        3 => "WAIT_BUYER_CONFIRM_GOODS",
        4 if paid => "TRADE_CLOSED",
        4 => "TRADE_CLOSED_BY_TAOBAO",
        5 => "TRADE_FINISHED",
        other => return format!("DOUYIN_{other}"),
    };
    name.to_owned()
}

/// The normalised refund status of a Douyin `after_sale_status` (assumed
/// codes: 6 asked, 7 awaiting the buyer's return, 11 returned, awaiting the
/// seller, 12 refunded, 27 refused, 28 closed); others as `DOUYIN_<code>`.
pub fn refund_status_name(after_sale_status: i64) -> String {
    let name = match after_sale_status {
        6 => "WAIT_SELLER_AGREE",
        7 => "WAIT_BUYER_RETURN_GOODS",
        11 => "WAIT_SELLER_CONFIRM_GOODS",
        12 => "SUCCESS",
        27 => "SELLER_REFUSE_BUYER",
        28 => "CLOSED",
        other => return format!("DOUYIN_{other}"),
    };
    name.to_owned()
}

/// A shop order (`shop_order_list[]` of `order.searchList`,
/// `shop_order_detail` of `order.orderDetail`) as an [`Order`] of `shop`.
pub fn order(shop: &str, record: &Json) -> Result<Order, Malformed> {
    let tid = record.get("order_id").and_then(id).ok_or_else(|| {
        Malformed::field(format!("an order without a valid order_id: {:?}", excerpt(&record.to_string())))
    })?;
    let what = format!("order {tid}");
    let order_status = required_integer(record, "order_status", &what)?;
    let pay_time = optional_time(record, "pay_time", &what)?;
    let items = match record.get("sku_order_list") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => {
            items.iter().enumerate().map(|(index, item)| order_item(tid, index, item)).collect::<Result<_, _>>()?
        }
        Some(other) => {
            return Err(Malformed::field(format!(
                "{what}: sku_order_list is not a list: {}",
                excerpt(&other.to_string())
            )));
        }
    };
    let presale = optional_integer(record, "presell_type", &what)?.unwrap_or(0) != 0;
    Ok(Order {
        platform: PLATFORM.to_owned(),
        shop: shop.to_owned(),
        tid,
        status: status_name(order_status, pay_time.is_some()),
        order_type: if presale { "step" } else { "fixed" }.to_owned(),
        created: required_time(record, "create_time", &what)?,
        modified: required_time(record, "update_time", &what)?,
        pay_time,
        payment: fen(record, "pay_amount", &what)?,
        buyer_nick: text(record, "user_nick"),
        step_trade_status: None,
        items,
        raw: record.clone(),
    })
}

/// Line `index` (0-based) of order `tid` (`sku_order_list[]`).
fn order_item(tid: i64, index: usize, item: &Json) -> Result<OrderItem, Malformed> {
    let what = format!("order {tid} sku_order_list[{index}]");
    let oid = item
        .get("order_id")
        .and_then(id)
        .ok_or_else(|| Malformed::field(format!("{what}: missing or invalid order_id")))?;
    let what = format!("order {tid} line {oid}");
    let after_sale = item.get("after_sale_info").filter(|info| info.is_object());
    let after_sale_status = match after_sale {
        Some(info) => optional_integer(info, "after_sale_status", &what)?.filter(|status| *status != 0),
        None => None,
    };
    Ok(OrderItem {
        oid,
        num_iid: optional_integer(item, "product_id", &what)?,
        sku_id: text(item, "sku_id"),
        outer_sku_id: text(item, "out_sku_id"),
        title: text(item, "product_name"),
        num: optional_integer(item, "item_num", &what)?.unwrap_or(0),
        price: fen(item, "goods_price", &what)?,
        payment: fen(item, "pay_amount", &what)?,
        refund_status: after_sale_status.map(refund_status_name),
        refund_id: match after_sale {
            Some(info) => optional_integer(info, "after_sale_id", &what)?,
            None => None,
        },
    })
}

/// An after-sale (`items[]` of the after-sale list, `after_sale_info` of its
/// detail; flat field names assumed) as a [`Refund`] of `shop`.
pub fn refund(shop: &str, record: &Json) -> Result<Refund, Malformed> {
    let refund_id = record.get("aftersale_id").and_then(id).ok_or_else(|| {
        Malformed::field(format!("an after-sale without a valid aftersale_id: {:?}", excerpt(&record.to_string())))
    })?;
    let what = format!("after-sale {refund_id}");
    Ok(Refund {
        platform: PLATFORM.to_owned(),
        shop: shop.to_owned(),
        refund_id,
        tid: required_integer(record, "shop_order_id", &what)?,
        oid: required_integer(record, "sku_order_id", &what)?,
        status: refund_status_name(required_integer(record, "aftersale_status", &what)?),
        refund_fee: fen(record, "refund_amount", &what)?,
        created: required_time(record, "create_time", &what)?,
        modified: required_time(record, "update_time", &what)?,
        raw: record.clone(),
    })
}

/// A page's total and whether another page follows: from `total`, else from
/// `has_more`, else from whether the page came back full. `request` is
/// 1-based, as the trait's.
pub fn paging(data: &Json, request: PageRequest, count: usize) -> (Option<u64>, bool) {
    let total = data.get("total").and_then(id).and_then(|n| u64::try_from(n).ok());
    let has_next = match (total, data.get("has_more").and_then(crate::platforms::taobao::envelope::boolean)) {
        (_, Some(has_more)) => has_more,
        (Some(total), None) => u64::from(request.page_no) * u64::from(request.page_size) < total,
        (None, None) => count >= request.page_size as usize && count > 0,
    };
    (total, has_next)
}

/// An amount in integer fen (a number or a string of digits); absent is zero.
fn fen(record: &Json, key: &str, what: &str) -> Result<Money, Malformed> {
    if is_blank(record, key) {
        return Ok(Money::default());
    }
    match record.get(key) {
        Some(value @ (Json::Number(_) | Json::String(_))) => {
            id(value).map(Money).ok_or_else(|| Malformed::field(format!("{what}: {key} is not integer fen: {value}")))
        }
        Some(other) => Err(Malformed::field(format!("{what}: {key} is not integer fen: {other}"))),
        None => Ok(Money::default()),
    }
}

fn optional_integer(record: &Json, key: &str, what: &str) -> Result<Option<i64>, Malformed> {
    if is_blank(record, key) {
        return Ok(None);
    }
    match record.get(key).and_then(id) {
        Some(value) => Ok(Some(value)),
        None => Err(Malformed::field(format!("{what}: {key} is not an integer: {}", record[key]))),
    }
}

fn required_integer(record: &Json, key: &str, what: &str) -> Result<i64, Malformed> {
    optional_integer(record, key, what)?.ok_or_else(|| Malformed::field(format!("{what}: missing {key}")))
}

/// A time in Unix seconds; absent or 0 (Douyin's "not yet") is `None`.
fn optional_time(record: &Json, key: &str, what: &str) -> Result<Option<DateTime<Utc>>, Malformed> {
    match optional_integer(record, key, what)? {
        None | Some(0) => Ok(None),
        Some(seconds) => Utc
            .timestamp_opt(seconds, 0)
            .single()
            .map(Some)
            .ok_or_else(|| Malformed::field(format!("{what}: {key} is not a time in Unix seconds: {seconds}"))),
    }
}

fn required_time(record: &Json, key: &str, what: &str) -> Result<DateTime<Utc>, Malformed> {
    optional_time(record, key, what)?.ok_or_else(|| Malformed::field(format!("{what}: missing {key}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::platforms::Anomaly;

    fn record() -> Json {
        json!({
            "order_id": "4611686018427387905",
            "order_status": 2,
            "create_time": 1_764_000_000,
            "update_time": "1764000300",
            "pay_time": 1_764_000_060,
            "pay_amount": 20007,
            "presell_type": 1,
            "sku_order_list": [
                {"order_id": "4611686018427387906", "product_id": 100, "sku_id": 5001, "out_sku_id": "SKU-1",
                 "product_name": "茶", "item_num": 2, "goods_price": 5000, "pay_amount": "10000",
                 "after_sale_info": {"after_sale_status": 6, "after_sale_id": 77}},
                {"order_id": "4611686018427387907", "item_num": 1, "goods_price": 10007, "pay_amount": 10007,
                 "after_sale_info": {"after_sale_status": 0}}
            ]
        })
    }

    #[test]
    fn an_order_maps_fen_times_and_status_and_keeps_its_raw() {
        let order = order("dy", &record()).unwrap();
        assert_eq!(order.platform, "douyin");
        assert_eq!(order.tid, 4_611_686_018_427_387_905);
        assert_eq!(order.status, "WAIT_SELLER_SEND_GOODS");
        assert_eq!(order.order_type, "step");
        assert_eq!(order.payment, Money(20007));
        assert_eq!(order.payment.to_string(), "200.07");
        assert_eq!(order.created.timestamp(), 1_764_000_000);
        assert_eq!(order.modified.timestamp(), 1_764_000_300);
        assert_eq!(order.raw["order_status"], 2);
        assert_eq!(order.items.len(), 2);
        let first = &order.items[0];
        assert_eq!(
            (first.oid, first.num, first.price, first.payment),
            (4_611_686_018_427_387_906, 2, Money(5000), Money(10000))
        );
        assert_eq!(first.refund_status.as_deref(), Some("WAIT_SELLER_AGREE"));
        assert_eq!(first.refund_id, Some(77));
        assert_eq!(order.items[1].refund_status, None);
    }

    #[test]
    fn statuses_map_onto_the_normalised_ones() {
        let cases = [
            (1, false, "WAIT_BUYER_PAY"),
            (105, true, "WAIT_SELLER_SEND_GOODS"),
            (2, true, "WAIT_SELLER_SEND_GOODS"),
            (101, true, "SELLER_CONSIGNED_PART"),
            (3, true, "WAIT_BUYER_CONFIRM_GOODS"),
            (4, true, "TRADE_CLOSED"),
            (4, false, "TRADE_CLOSED_BY_TAOBAO"),
            (5, true, "TRADE_FINISHED"),
            (99, true, "DOUYIN_99"),
        ];
        for (code, paid, name) in cases {
            assert_eq!(status_name(code, paid), name, "{code}");
        }
        assert_eq!(refund_status_name(12), "SUCCESS");
        assert_eq!(refund_status_name(28), "CLOSED");
    }

    #[test]
    fn a_wrong_or_missing_field_is_malformed_naming_the_order() {
        for (key, value, expected) in [
            ("pay_amount", json!("200.07"), "pay_amount is not integer fen"),
            ("pay_amount", json!({"amount": 1}), "pay_amount is not integer fen"),
            ("update_time", json!("#1764000300"), "update_time is not an integer"),
            ("order_status", json!(null), "missing order_status"),
            ("sku_order_list", json!("x"), "sku_order_list is not a list"),
        ] {
            let mut broken = record();
            broken[key] = value;
            let error = order("dy", &broken).unwrap_err();
            assert_eq!(error.anomaly, Anomaly::WrongType);
            assert!(error.message.contains("order 4611686018427387905"), "{}", error.message);
            assert!(error.message.contains(expected), "{}", error.message);
        }
        assert!(order("dy", &json!({"order_id": "x"})).unwrap_err().message.contains("without a valid order_id"));
    }

    #[test]
    fn a_refund_maps_and_pages_count_from_the_total() {
        let refund = refund(
            "dy",
            &json!({"aftersale_id": "9001", "shop_order_id": "11", "sku_order_id": 12, "aftersale_status": 12,
                    "refund_amount": 1230, "create_time": 1_764_000_000, "update_time": 1_764_000_100}),
        )
        .unwrap();
        assert_eq!((refund.refund_id, refund.tid, refund.oid), (9001, 11, 12));
        assert_eq!((refund.status.as_str(), refund.refund_fee), ("SUCCESS", Money(1230)));
        let request = PageRequest { page_no: 2, page_size: 100, with_total: true };
        assert_eq!(paging(&json!({"total": 250}), request, 100), (Some(250), true));
        assert_eq!(paging(&json!({"total": 200}), request, 100), (Some(200), false));
        assert_eq!(paging(&json!({"has_more": false}), request, 100), (None, false));
    }
}
