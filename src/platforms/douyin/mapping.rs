//! Douyin records → the normalised model.
//!
//! The shapes are the official SDK's data classes (`order.searchList`'s
//! `ShopOrderListItem`, `afterSale.List`'s `ItemsItem`, `afterSale.Detail`'s
//! `AfterSaleDetailData`; see docs/platforms.md). Amounts are integer fen
//! (Taobao writes yuan strings): they become the same [`Money`]. Times are
//! Unix seconds. The numeric `order_status` becomes the normalised status,
//! which is TOP's vocabulary (`WAIT_SELLER_SEND_GOODS`, …), so that orders of
//! both platforms in one `orders` table compare and every node testing a
//! status works on both; the record as received stays in `raw`, its
//! `order_status` included. A record missing a field the model needs, or
//! holding one of an impossible type or value (an id that is not a positive
//! integer, a status Douyin does not document, no creation time), is
//! [`Malformed`] with a message naming the record and the field: the client
//! sets it aside and reads the rest of its page.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value as Json;

use super::PLATFORM;
use super::methods::{AFTER_SALE_LIST, ORDER_SEARCH_LIST};
use crate::platforms::taobao::envelope::{boolean, excerpt, id, is_blank, text};
use crate::platforms::taobao::error::Malformed;
use crate::platforms::{Anomaly, Money, Order, OrderItem, Page, PageRequest, PlatformError, Refund, Rejected};

/// The normalised status of a Douyin `order_status` (SDK: 1 awaiting
/// payment, 105 paid, 2 to ship, 101 partly shipped, 3 shipped, 4 cancelled,
/// 5 completed). A cancelled order that was paid was closed by a refund
/// (`TRADE_CLOSED`); one that never was, before payment
/// (`TRADE_CLOSED_BY_TAOBAO`, TOP's name for it). `None` for a code Douyin
/// does not document: such an order is refused, not guessed.
pub fn status_name(order_status: i64, paid: bool) -> Option<&'static str> {
    Some(match order_status {
        1 => "WAIT_BUYER_PAY",
        105 | 2 => "WAIT_SELLER_SEND_GOODS",
        101 => "SELLER_CONSIGNED_PART",
        3 => "WAIT_BUYER_CONFIRM_GOODS",
        4 if paid => "TRADE_CLOSED",
        4 => "TRADE_CLOSED_BY_TAOBAO",
        5 => "TRADE_FINISHED",
        _ => return None,
    })
}

/// The normalised refund status of a Douyin after-sale status, or `None`
/// for a code the SDK does not list.
///
/// The codes (SDK, `afterSale.List` / `afterSale.Detail` and the order's
/// `sku_order_list[].after_sale_info`): 6 asked, awaiting the seller; 7
/// awaiting the buyer's return; 11 returned, awaiting the seller's second
/// approval; 12 succeeded; 27 refused by the seller; 29 refused after the
/// return; 28 failed (closed, no money back); 8 an exchange, resend or
/// repair awaiting the seller's parcel; 3 and 13 that parcel on its way to
/// the buyer; 14 received by the buyer; and on order lines 51 (the order's
/// cancellation succeeded) and 53 (the reverse trade completed).
///
/// An exchange, resend or repair returns no money: while under way it is
/// named for whose move it is (8 `WAIT_SELLER_SEND_GOODS`, 3/13
/// `WAIT_BUYER_CONFIRM_GOODS`), and once done (14) it is `CLOSED`, the
/// status after which a line counts as sold, as TOP's closed refund.
pub fn refund_status_name(after_sale_status: i64) -> Option<&'static str> {
    Some(match after_sale_status {
        6 => "WAIT_SELLER_AGREE",
        7 => "WAIT_BUYER_RETURN_GOODS",
        11 => "WAIT_SELLER_CONFIRM_GOODS",
        12 | 51 | 53 => "SUCCESS",
        27 | 29 => "SELLER_REFUSE_BUYER",
        28 | 14 => "CLOSED",
        8 => "WAIT_SELLER_SEND_GOODS",
        3 | 13 => "WAIT_BUYER_CONFIRM_GOODS",
        _ => return None,
    })
}

/// Line trade types of a deposit presale (SDK `sku_order_list[].trade_type`:
/// 2 定金预售 deposit presale, 3 订金找货 deposit then sourcing).
const DEPOSIT_TRADE_TYPES: [i64; 2] = [2, 3];

/// A shop order (`shop_order_list[]` of `order.searchList`,
/// `shop_order_detail` of `order.orderDetail`) as an [`Order`] of `shop`.
///
/// Douyin sends no buyer nickname (its buyer is the opaque
/// `doudian_open_id`, kept in `raw`): `buyer_nick` stays empty.
pub fn order(shop: &str, record: &Json) -> Result<Order, Malformed> {
    let tid = record.get("order_id").and_then(id).filter(|tid| *tid > 0).ok_or_else(|| {
        Malformed::field(format!("an order without a valid order_id: {:?}", excerpt(&record.to_string())))
    })?;
    let what = format!("order {tid}");
    let order_status = required_integer(record, "order_status", &what)?;
    let pay_time = optional_time(record, "pay_time", &what)?;
    let status = status_name(order_status, pay_time.is_some()).ok_or_else(|| {
        Malformed::field(format!(
            "{what}: order_status {order_status} is not one of Douyin's (1, 105, 2, 101, 3, 4, 5)"
        ))
    })?;
    let lines = list(record, "sku_order_list", &what)?;
    let items = lines.iter().enumerate().map(|(index, item)| order_item(tid, index, item)).collect::<Result<_, _>>()?;
    let (presale, step_trade_status) = presale(record, lines, &what)?;
    Ok(Order {
        platform: PLATFORM.to_owned(),
        shop: shop.to_owned(),
        tid,
        status: status.to_owned(),
        order_type: if presale { "step" } else { "fixed" }.to_owned(),
        created: required_time(record, "create_time", &what)?,
        modified: required_time(record, "update_time", &what)?,
        pay_time,
        payment: fen(record, "pay_amount", &what)?,
        buyer_nick: None,
        step_trade_status,
        items,
        raw: record.clone(),
    })
}

/// Whether the order is a deposit presale, and its payment stage in TOP's
/// words: a presale has stage orders (`order_phase_list`, deposit phase 1
/// then the balance) or a line of a deposit trade type. The stage is read
/// from whether each phase's `pay_success` is true.
fn presale(record: &Json, lines: &[Json], what: &str) -> Result<(bool, Option<String>), Malformed> {
    let phases = list(record, "order_phase_list", what)?;
    let mut deposit_trade = false;
    for (index, line) in lines.iter().enumerate() {
        let trade_type = optional_integer(line, "trade_type", &format!("{what} sku_order_list[{index}]"))?;
        deposit_trade |= trade_type.is_some_and(|kind| DEPOSIT_TRADE_TYPES.contains(&kind));
    }
    if phases.is_empty() {
        return Ok((deposit_trade, None));
    }
    let mut deposit_paid = true;
    let mut balance_paid = true;
    for (index, phase) in phases.iter().enumerate() {
        let at = format!("{what} order_phase_list[{index}]");
        let current = required_integer(phase, "current_phase", &at)?;
        let paid = phase
            .get("pay_success")
            .and_then(boolean)
            .ok_or_else(|| Malformed::field(format!("{at}: pay_success is not a boolean")))?;
        if current <= 1 {
            deposit_paid &= paid;
        } else {
            balance_paid &= paid;
        }
    }
    let stage = match (deposit_paid, balance_paid) {
        (false, _) => "FRONT_NOPAID_FINAL_NOPAID",
        (true, false) => "FRONT_PAID_FINAL_NOPAID",
        (true, true) => "FRONT_PAID_FINAL_PAID",
    };
    Ok((true, Some(stage.to_owned())))
}

/// Line `index` (0-based) of order `tid` (`sku_order_list[]`). Its refund
/// state is `after_sale_info.after_sale_status` (0: none); the line carries
/// no after-sale id.
fn order_item(tid: i64, index: usize, item: &Json) -> Result<OrderItem, Malformed> {
    let what = format!("order {tid} sku_order_list[{index}]");
    let oid = item
        .get("order_id")
        .and_then(id)
        .filter(|oid| *oid > 0)
        .ok_or_else(|| Malformed::field(format!("{what}: missing or invalid order_id")))?;
    let what = format!("order {tid} line {oid}");
    let after_sale_status = match item.get("after_sale_info").filter(|info| info.is_object()) {
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
        price: fen(item, "origin_amount", &what)?,
        payment: fen(item, "pay_amount", &what)?,
        // A line's code the SDK does not list is kept, not a reason to set
        // the whole order aside; its after-sale record is checked strictly.
        refund_status: after_sale_status
            .map(|code| refund_status_name(code).map_or_else(|| format!("DOUYIN_{code}"), str::to_owned)),
        refund_id: None,
    })
}

/// An item of `afterSale.List` (`items[]`: `aftersale_info` and
/// `order_info` nested) as a [`Refund`] of `shop`. The line is the first of
/// `order_info.related_order_info`; the amount `refund_amount` (fen,
/// freight not included).
pub fn refund(shop: &str, item: &Json) -> Result<Refund, Malformed> {
    let info = object(item, "aftersale_info", "an after-sale item")?;
    let refund_id = info.get("aftersale_id").and_then(id).filter(|id| *id > 0).ok_or_else(|| {
        Malformed::field(format!(
            "an after-sale without a valid aftersale_info.aftersale_id: {:?}",
            excerpt(&item.to_string())
        ))
    })?;
    let what = format!("after-sale {refund_id}");
    let order_info = object(item, "order_info", &what)?;
    let related = list(order_info, "related_order_info", &what)?;
    let line = related.first().ok_or_else(|| Malformed::field(format!("{what}: no order_info.related_order_info")))?;
    Ok(Refund {
        platform: PLATFORM.to_owned(),
        shop: shop.to_owned(),
        refund_id,
        tid: positive_id(order_info, "shop_order_id", &what)?,
        oid: positive_id(line, "sku_order_id", &what)?,
        status: after_sale_status(info, "aftersale_status", &what)?,
        refund_fee: fen(info, "refund_amount", &what)?,
        created: required_time(info, "create_time", &what)?,
        modified: required_time(info, "update_time", &what)?,
        raw: item.clone(),
    })
}

/// The `data` of `afterSale.Detail` (`process_info.after_sale_info` and
/// `order_info`, other names than the list's) as a [`Refund`] of `shop`.
/// It has no creation time but `apply_time`, and its amounts include the
/// freight: the refund is `refund_total_amount - refund_post_amount`, the
/// list's `refund_amount`.
pub fn refund_detail(shop: &str, data: &Json) -> Result<Refund, Malformed> {
    let process = object(data, "process_info", "an after-sale detail")?;
    let info = object(process, "after_sale_info", "an after-sale detail")?;
    let refund_id = info.get("after_sale_id").and_then(id).filter(|id| *id > 0).ok_or_else(|| {
        Malformed::field(format!(
            "an after-sale detail without a valid after_sale_id: {:?}",
            excerpt(&data.to_string())
        ))
    })?;
    let what = format!("after-sale {refund_id}");
    let order_info = object(data, "order_info", &what)?;
    let lines = list(order_info, "sku_order_infos", &what)?;
    let line = lines.first().ok_or_else(|| Malformed::field(format!("{what}: no order_info.sku_order_infos")))?;
    let total = fen(info, "refund_total_amount", &what)?;
    let freight = fen(info, "refund_post_amount", &what)?;
    Ok(Refund {
        platform: PLATFORM.to_owned(),
        shop: shop.to_owned(),
        refund_id,
        tid: positive_id(order_info, "shop_order_id", &what)?,
        oid: positive_id(line, "sku_order_id", &what)?,
        status: after_sale_status(info, "after_sale_status", &what)?,
        refund_fee: Money(total.0 - freight.0),
        created: required_time(info, "apply_time", &what)?,
        modified: required_time(info, "update_time", &what)?,
        raw: data.clone(),
    })
}

/// One page of `order.searchList`'s `data` for `shop`: its orders, and the
/// records that cannot be read set aside, each with its reason.
pub fn order_page(shop: &str, data: &Json, page: PageRequest) -> Result<Page<Order>, PlatformError> {
    read_page(ORDER_SEARCH_LIST, shop, data, "shop_order_list", page, order)
}

/// One page of `afterSale.List`'s `data` for `shop`: its refunds, and the
/// items that cannot be read set aside, each with its reason.
pub fn refund_page(shop: &str, data: &Json, page: PageRequest) -> Result<Page<Refund>, PlatformError> {
    read_page(AFTER_SALE_LIST, shop, data, "items", page, refund)
}

/// Reads each record of `data[key]` on its own: one that cannot be read is
/// set aside and the rest of the page goes on. A list of the wrong type, or
/// none although the answer says records exist, fails the page.
fn read_page<T>(
    method: &str,
    shop: &str,
    data: &Json,
    key: &str,
    page: PageRequest,
    read: fn(&str, &Json) -> Result<T, Malformed>,
) -> Result<Page<T>, PlatformError> {
    let list = list(data, key, "the page").map_err(|error| error.into_platform_error(method))?;
    let mut items = Vec::with_capacity(list.len());
    let mut rejected = Vec::new();
    for record in list {
        match read(shop, record) {
            Ok(item) => items.push(item),
            Err(error) => {
                tracing::warn!(shop, method, reason = %error.message, "A Douyin record is set aside.");
                rejected.push(Rejected { raw: record.clone(), reason: error.message });
            }
        }
    }
    page_of(method, data, page, items, rejected)
}

/// A page of `items` and the records set aside; an empty one although the
/// answer says records exist on or after it lost its list on the way: an
/// anomaly, not an empty page.
fn page_of<T>(
    method: &str,
    data: &Json,
    page: PageRequest,
    items: Vec<T>,
    rejected: Vec<Rejected>,
) -> Result<Page<T>, PlatformError> {
    let received = items.len() + rejected.len();
    let (total, has_next) = paging(data, page, received);
    let skipped = u64::from(page.page_no - 1) * u64::from(page.page_size);
    if received == 0 && (has_next || total.is_some_and(|total| total > skipped)) {
        let message = format!(
            "page {} (Douyin page {}) has no records although the answer says {} exist: {:?}",
            page.page_no,
            page.page_no - 1,
            total.map_or_else(|| "more".to_owned(), |total| total.to_string()),
            excerpt(&data.to_string())
        );
        return Err(Malformed::new(Anomaly::MissingList, message).into_platform_error(method));
    }
    Ok(Page { items, total, has_next, rejected })
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

/// An id that must be a positive integer (a number or a string of digits).
fn positive_id(record: &Json, key: &str, what: &str) -> Result<i64, Malformed> {
    let value = required_integer(record, key, what)?;
    if value > 0 { Ok(value) } else { Err(Malformed::field(format!("{what}: {key} {value} is not a valid id"))) }
}

/// An after-sale status the SDK lists, normalised.
fn after_sale_status(record: &Json, key: &str, what: &str) -> Result<String, Malformed> {
    let code = required_integer(record, key, what)?;
    refund_status_name(code)
        .map(str::to_owned)
        .ok_or_else(|| Malformed::field(format!("{what}: {key} {code} is not one of Douyin's after-sale statuses")))
}

/// The object under `key`, which the record needs.
fn object<'a>(record: &'a Json, key: &str, what: &str) -> Result<&'a Json, Malformed> {
    match record.get(key) {
        Some(value @ Json::Object(_)) => Ok(value),
        None | Some(Json::Null) => Err(Malformed::field(format!("{what}: missing {key}"))),
        Some(other) => {
            Err(Malformed::field(format!("{what}: {key} is not an object: {}", excerpt(&other.to_string()))))
        }
    }
}

/// The list under `key`: absent or `null` is empty, anything else but a list
/// is of the wrong type.
fn list<'a>(record: &'a Json, key: &str, what: &str) -> Result<&'a [Json], Malformed> {
    match record.get(key) {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(other) => Err(Malformed::field(format!("{what}: {key} is not a list: {}", excerpt(&other.to_string())))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A shop order in the SDK's shape (field names and types of
    /// `ShopOrderListItem`), a deposit presale with its deposit paid.
    fn record() -> Json {
        json!({
            "order_id": "4611686018427387905",
            "order_status": 2,
            "create_time": 1_764_000_000,
            "update_time": "1764000300",
            "pay_time": 1_764_000_060,
            "pay_amount": 20007,
            "doudian_open_id": "1@#opaque",
            "order_phase_list": [
                {"phase_order_id": "1", "current_phase": 1, "total_phase": 2, "pay_success": true},
                {"phase_order_id": "2", "current_phase": 2, "total_phase": 2, "pay_success": false}
            ],
            "sku_order_list": [
                {"order_id": "4611686018427387906", "product_id": 100, "sku_id": 5001, "out_sku_id": "SKU-1",
                 "product_name": "茶", "item_num": 2, "origin_amount": 5000, "pay_amount": "10000", "trade_type": 2,
                 "after_sale_info": {"after_sale_status": 6, "refund_status": 1}},
                {"order_id": "4611686018427387907", "item_num": 1, "origin_amount": 10007, "pay_amount": 10007,
                 "trade_type": 0, "after_sale_info": {"after_sale_status": 0, "refund_status": 0}}
            ]
        })
    }

    #[test]
    fn an_order_maps_fen_times_status_and_presale_stage_and_keeps_its_raw() {
        let order = order("dy", &record()).unwrap();
        assert_eq!(order.platform, "douyin");
        assert_eq!(order.tid, 4_611_686_018_427_387_905);
        assert_eq!(order.status, "WAIT_SELLER_SEND_GOODS");
        assert_eq!(order.order_type, "step");
        assert_eq!(order.step_trade_status.as_deref(), Some("FRONT_PAID_FINAL_NOPAID"));
        assert_eq!(order.buyer_nick, None, "Douyin sends no nickname");
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
        assert_eq!(first.refund_id, None);
        assert_eq!(order.items[1].refund_status, None);
    }

    #[test]
    fn presale_comes_from_the_stage_orders_or_a_deposit_trade_type() {
        let mut plain = record();
        plain["order_phase_list"] = json!([]);
        plain["sku_order_list"][0]["trade_type"] = json!(0);
        let plain = order("dy", &plain).unwrap();
        assert_eq!((plain.order_type.as_str(), plain.step_trade_status), ("fixed", None));

        let mut by_line = record();
        by_line["order_phase_list"] = Json::Null;
        let by_line = order("dy", &by_line).unwrap();
        assert_eq!((by_line.order_type.as_str(), by_line.step_trade_status), ("step", None));

        let mut paid = record();
        paid["order_phase_list"][1]["pay_success"] = json!(true);
        assert_eq!(order("dy", &paid).unwrap().step_trade_status.as_deref(), Some("FRONT_PAID_FINAL_PAID"));
        paid["order_phase_list"][0]["pay_success"] = json!(false);
        assert_eq!(order("dy", &paid).unwrap().step_trade_status.as_deref(), Some("FRONT_NOPAID_FINAL_NOPAID"));
    }

    #[test]
    fn statuses_map_onto_the_normalised_ones_and_unknown_codes_are_none() {
        let cases = [
            (1, false, Some("WAIT_BUYER_PAY")),
            (105, true, Some("WAIT_SELLER_SEND_GOODS")),
            (2, true, Some("WAIT_SELLER_SEND_GOODS")),
            (101, true, Some("SELLER_CONSIGNED_PART")),
            (3, true, Some("WAIT_BUYER_CONFIRM_GOODS")),
            (4, true, Some("TRADE_CLOSED")),
            (4, false, Some("TRADE_CLOSED_BY_TAOBAO")),
            (5, true, Some("TRADE_FINISHED")),
            (7, true, None),
            (99, true, None),
        ];
        for (code, paid, name) in cases {
            assert_eq!(status_name(code, paid), name, "{code}");
        }
        let refunds = [
            (6, Some("WAIT_SELLER_AGREE")),
            (7, Some("WAIT_BUYER_RETURN_GOODS")),
            (8, Some("WAIT_SELLER_SEND_GOODS")),
            (11, Some("WAIT_SELLER_CONFIRM_GOODS")),
            (12, Some("SUCCESS")),
            (13, Some("WAIT_BUYER_CONFIRM_GOODS")),
            (3, Some("WAIT_BUYER_CONFIRM_GOODS")),
            (14, Some("CLOSED")),
            (27, Some("SELLER_REFUSE_BUYER")),
            (28, Some("CLOSED")),
            (29, Some("SELLER_REFUSE_BUYER")),
            (51, Some("SUCCESS")),
            (53, Some("SUCCESS")),
            (0, None),
            (9, None),
        ];
        for (code, name) in refunds {
            assert_eq!(refund_status_name(code), name, "{code}");
        }
    }

    #[test]
    fn a_wrong_missing_or_impossible_field_is_malformed_naming_the_order_and_the_field() {
        for (key, value, expected) in [
            ("pay_amount", json!("200.07"), "pay_amount is not integer fen"),
            ("pay_amount", json!({"amount": 1}), "pay_amount is not integer fen"),
            ("update_time", json!("#1764000300"), "update_time is not an integer"),
            ("order_status", json!(null), "missing order_status"),
            ("order_status", json!(7), "order_status 7 is not one of Douyin's"),
            ("create_time", json!(""), "missing create_time"),
            ("create_time", json!(0), "missing create_time"),
            ("sku_order_list", json!("x"), "sku_order_list is not a list"),
            ("order_phase_list", json!({}), "order_phase_list is not a list"),
        ] {
            let mut broken = record();
            broken[key] = value;
            let error = order("dy", &broken).unwrap_err();
            assert_eq!(error.anomaly, Anomaly::WrongType);
            assert!(error.message.contains("order 4611686018427387905"), "{}", error.message);
            assert!(error.message.contains(expected), "{}", error.message);
        }
        for id in [json!("x"), json!(""), json!(0), json!(-5), json!("-5")] {
            let error = order("dy", &json!({"order_id": id, "order_status": 2})).unwrap_err();
            assert!(error.message.contains("without a valid order_id"), "{id}: {}", error.message);
        }
    }

    /// An `afterSale.List` item in the SDK's shape (`ItemsItem`).
    fn after_sale_item() -> Json {
        json!({
            "aftersale_info": {"aftersale_id": "6986853269519810849", "aftersale_status": 29, "aftersale_type": 0,
                               "related_id": "4821780700279174718", "refund_amount": 1230, "refund_post_amount": 0,
                               "apply_time": 1_764_000_000, "create_time": 1_764_000_001, "update_time": 1_764_000_100},
            "order_info": {"shop_order_id": "4821780700279174718",
                           "related_order_info": [{"sku_order_id": "4821780700279174719", "item_num": 1}]},
            "text_part": {"aftersale_status_text": "商家二次拒绝"}
        })
    }

    #[test]
    fn an_after_sale_item_maps_from_its_nested_shape() {
        let mapped = refund("dy", &after_sale_item()).unwrap();
        assert_eq!(
            (mapped.refund_id, mapped.tid, mapped.oid),
            (6_986_853_269_519_810_849, 4_821_780_700_279_174_718, 4_821_780_700_279_174_719)
        );
        assert_eq!((mapped.status.as_str(), mapped.refund_fee), ("SELLER_REFUSE_BUYER", Money(1230)));
        assert_eq!((mapped.created.timestamp(), mapped.modified.timestamp()), (1_764_000_001, 1_764_000_100));
        assert_eq!(mapped.raw["text_part"]["aftersale_status_text"], "商家二次拒绝");

        for (path, value, expected) in [
            (("aftersale_info", "aftersale_status"), json!(99), "aftersale_status 99 is not one of"),
            (("order_info", "shop_order_id"), json!("0"), "shop_order_id 0 is not a valid id"),
            (("order_info", "related_order_info"), json!([]), "no order_info.related_order_info"),
            (("aftersale_info", "update_time"), json!(null), "missing update_time"),
        ] {
            let mut broken = after_sale_item();
            broken[path.0][path.1] = value;
            let error = refund("dy", &broken).unwrap_err();
            assert!(error.message.contains("after-sale 6986853269519810849"), "{}", error.message);
            assert!(error.message.contains(expected), "{}", error.message);
        }
        let flat = json!({"aftersale_id": "1", "aftersale_status": 12});
        assert!(refund("dy", &flat).unwrap_err().message.contains("missing aftersale_info"));
    }

    #[test]
    fn an_after_sale_detail_maps_from_its_own_names_and_pages_count_from_the_total() {
        let data = json!({
            "process_info": {"after_sale_info": {"after_sale_id": 7001, "after_sale_status": 12,
                "refund_total_amount": 1500, "refund_post_amount": 270, "apply_time": 1_764_000_000,
                "update_time": 1_764_000_100}},
            "order_info": {"shop_order_id": 11, "sku_order_infos": [{"sku_order_id": 12}]}
        });
        let refund = refund_detail("dy", &data).unwrap();
        assert_eq!((refund.refund_id, refund.tid, refund.oid), (7001, 11, 12));
        assert_eq!((refund.status.as_str(), refund.refund_fee), ("SUCCESS", Money(1230)));
        assert_eq!(refund.created.timestamp(), 1_764_000_000);

        let request = PageRequest { page_no: 2, page_size: 100, with_total: true };
        assert_eq!(paging(&json!({"total": 250}), request, 100), (Some(250), true));
        assert_eq!(paging(&json!({"total": 200}), request, 100), (Some(200), false));
        assert_eq!(paging(&json!({"has_more": false}), request, 100), (None, false));
    }
}
