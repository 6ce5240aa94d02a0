//! The parser over answers written from the official SDK's data classes and
//! their documented examples (`tests/fixtures/douyin/`, sources in its
//! README): every answer reads, and the values the model takes are the ones
//! the sample holds.

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use super::error::AnswerError;
use super::{envelope, mapping};
use crate::platforms::{ErrorKind, Money, PageRequest, Refund};

const PAGE: PageRequest = PageRequest { page_no: 1, page_size: 100, with_total: true };

fn data(body: &str) -> Json {
    envelope::parse(body.as_bytes()).expect("the fixture is a success envelope")
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap()
}

#[test]
fn order_search_list_reads_a_shipped_order_and_a_deposit_presale() {
    let data = data(include_str!("../../../tests/fixtures/douyin/order_searchList.json"));
    let page = mapping::order_page("dy", &data, PAGE).unwrap();
    assert_eq!((page.total, page.has_next, page.rejected.len()), (Some(2), false, 0));
    let [shipped, presale] = page.items.as_slice() else { panic!("two orders: {:?}", page.items) };

    assert_eq!(shipped.tid, 4_781_320_682_406_083_640);
    assert_eq!(shipped.status, "WAIT_BUYER_CONFIRM_GOODS");
    assert_eq!((shipped.order_type.as_str(), shipped.step_trade_status.as_deref()), ("fixed", None));
    assert_eq!((shipped.payment, shipped.buyer_nick.as_deref()), (Money(500), None));
    assert_eq!(
        (shipped.created, shipped.modified, shipped.pay_time),
        (at(1617355413), at(1617355413), Some(at(1617355413)))
    );
    let line = &shipped.items[0];
    assert_eq!((line.oid, line.num_iid, line.num), (4_781_320_682_406_083_640, Some(3_473_196_049_974_326_153), 2));
    assert_eq!((line.sku_id.as_deref(), line.outer_sku_id.as_deref()), (Some("3254535"), Some("43564553")));
    assert_eq!((line.price, line.payment, line.title.as_deref()), (Money(100), Money(500), Some("衣服")));
    assert_eq!((line.refund_status.as_deref(), line.refund_id), (Some("WAIT_SELLER_AGREE"), None));
    assert!(shipped.raw["doudian_open_id"].is_string(), "the buyer's opaque id stays in raw");

    assert_eq!(presale.tid, 4_781_320_682_406_083_641);
    assert_eq!((presale.status.as_str(), presale.pay_time), ("WAIT_BUYER_PAY", None));
    assert_eq!(
        (presale.order_type.as_str(), presale.step_trade_status.as_deref()),
        ("step", Some("FRONT_PAID_FINAL_NOPAID"))
    );
    assert_eq!((presale.payment, presale.items[0].refund_status.as_deref()), (Money(100), None));
}

#[test]
fn one_impossible_record_is_set_aside_naming_it_and_the_rest_of_the_page_reads() {
    let mut data = data(include_str!("../../../tests/fixtures/douyin/order_searchList.json"));
    let sample = data["shop_order_list"][0].clone();
    let broken = |id: &str, key: &str, value: Json| {
        let mut record = sample.clone();
        record["order_id"] = json!(id);
        record[key] = value;
        record
    };
    let list = data["shop_order_list"].as_array_mut().unwrap();
    list.insert(1, broken("0", "order_id", json!("0")));
    list.push(broken("4781320682406083650", "order_status", json!(7)));
    list.push(broken("4781320682406083651", "create_time", json!("")));
    list.push(broken("4781320682406083652", "sku_order_list", json!({"order_id": 1})));

    let page = mapping::order_page("dy", &data, PAGE).unwrap();
    let kept: Vec<i64> = page.items.iter().map(|order| order.tid).collect();
    assert_eq!(kept, [4_781_320_682_406_083_640, 4_781_320_682_406_083_641]);
    let reasons: Vec<&str> = page.rejected.iter().map(|rejected| rejected.reason.as_str()).collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons[0].contains("without a valid order_id"), "{reasons:?}");
    assert!(reasons[1].contains("order 4781320682406083650: order_status 7"), "{reasons:?}");
    assert!(reasons[2].contains("order 4781320682406083651: missing create_time"), "{reasons:?}");
    assert!(reasons[3].contains("order 4781320682406083652: sku_order_list is not a list"), "{reasons:?}");
    assert_eq!(page.rejected[1].raw["order_status"], 7, "the record is kept as it came");
}

#[test]
fn order_detail_reads_its_shop_order_detail() {
    let data = data(include_str!("../../../tests/fixtures/douyin/order_orderDetail.json"));
    let order = mapping::order("dy", &data["shop_order_detail"]).unwrap();
    assert_eq!((order.tid, order.status.as_str()), (4_781_320_682_406_083_640, "TRADE_FINISHED"));
    assert_eq!((order.created, order.modified), (at(1617355400), at(1617955413)));
    let line = &order.items[0];
    assert_eq!((line.price, line.num, line.refund_status.as_deref()), (Money(250), 2, Some("SUCCESS")));
}

fn fields(refund: &Refund) -> (i64, i64, i64, &str, Money, DateTime<Utc>, DateTime<Utc>) {
    (refund.refund_id, refund.tid, refund.oid, &refund.status, refund.refund_fee, refund.created, refund.modified)
}

#[test]
fn after_sale_list_reads_nested_items_and_the_detail_agrees() {
    let data = data(include_str!("../../../tests/fixtures/douyin/afterSale_List.json"));
    let page = mapping::refund_page("dy", &data, PAGE).unwrap();
    assert_eq!((page.total, page.has_next, page.rejected.len()), (Some(2), false, 0));
    let [returned, refunded] = page.items.as_slice() else { panic!("two after-sales: {:?}", page.items) };
    assert_eq!(
        fields(returned),
        (
            6_986_853_269_519_810_849,
            4_821_780_700_279_174_718,
            4_821_780_700_279_174_719,
            "WAIT_SELLER_CONFIRM_GOODS",
            Money(20),
            at(1626753592),
            at(1626860666)
        )
    );
    assert_eq!(
        fields(refunded),
        (
            146_701_382_803_677_771,
            6_936_476_692_437_472_563,
            6_936_476_692_437_472_563,
            "SUCCESS",
            Money(1),
            at(1731986327),
            at(1731986645)
        )
    );

    let detail = data_of_detail();
    assert_eq!(fields(&mapping::refund_detail("dy", &detail).unwrap()), fields(returned));
}

fn data_of_detail() -> Json {
    data(include_str!("../../../tests/fixtures/douyin/afterSale_Detail.json"))
}

#[test]
fn an_error_envelope_reads_as_its_class_with_its_log_id() {
    let body = include_str!("../../../tests/fixtures/douyin/error_access_token.json");
    let Err(AnswerError::Api(error)) = envelope::parse(body.as_bytes()) else { panic!("an API error") };
    assert_eq!((error.code, error.sub_code.as_deref()), (30002, Some("isv.access-token-expired")));
    assert_eq!(error.kind(), ErrorKind::SessionExpired);
    assert_eq!(error.log_id.as_deref(), Some("2021072114244301020809704506188E51"));
}
