//! Generated inputs for the Douyin answer parser: whatever comes back,
//! [`envelope::parse`] and [`mapping`] answer with `Ok` or `Err` and never
//! panic, a body cut short is never read as an answer with fewer orders, and
//! a record's field of any type or value costs at most that record.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value as Json, json};

use super::{envelope, mapping};
use crate::platforms::PageRequest;

const ORDERS: usize = 3;

/// A few hundred cases each, fast enough for every `cargo test`; no
/// regression files (a failure prints its smallest input).
fn config() -> Config {
    Config { cases: 300, failure_persistence: None, ..Config::default() }
}

/// An `order.searchList` answer in the SDK's shape: ids above 2^53
/// as strings, fen, Unix seconds, Chinese text.
fn answer() -> Json {
    let orders: Vec<Json> = (0..ORDERS as i64)
        .map(|n| {
            let id = 3_900_000_000_000_000_000 + n * 1_000;
            json!({"order_id": id.to_string(), "order_status": 2, "create_time": 1_764_000_000,
                "update_time": 1_764_000_300, "pay_time": 1_764_000_060, "pay_amount": 26400, "order_phase_list": [],
                "doudian_open_id": "1@#opaque", "sku_order_list": [
                    {"order_id": (id + 1).to_string(), "product_id": 600_001, "sku_id": 5001, "out_sku_id": "TEA-1",
                     "product_name": "明前龙井 250g", "item_num": 2, "origin_amount": 8850, "pay_amount": 17700, "trade_type": 0,
                     "after_sale_info": {"after_sale_status": 0, "refund_status": 0}}]})
        })
        .collect();
    json!({"code": 10000, "msg": "success", "data": {"total": 41, "shop_order_list": orders}, "log_id": "L"})
}

fn body() -> Vec<u8> {
    answer().to_string().into_bytes()
}

/// How many orders the bytes read as, or `None` when they are refused.
fn read(bytes: &[u8]) -> Option<usize> {
    let data = envelope::parse(bytes).ok()?;
    let list = data.get("shop_order_list")?.as_array()?;
    list.iter().map(|record| mapping::order("dy", record)).collect::<Result<Vec<_>, _>>().ok().map(|o| o.len())
}

#[test]
fn the_real_looking_answer_reads_in_full() {
    assert_eq!(read(&body()), Some(ORDERS));
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Json::from),
        ".{0,12}".prop_map(Json::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Json::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|map| Json::Object(map.into_iter().collect())),
        ]
    })
}

/// The fields a mistyped value may land in.
const PLACES: [&str; 10] = [
    "order_id",
    "order_status",
    "create_time",
    "update_time",
    "pay_time",
    "pay_amount",
    "order_phase_list",
    "sku_order_list",
    "sku_order_list.0.order_id",
    "sku_order_list.0.after_sale_info",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = read(&bytes);
    }

    #[test]
    fn any_cut_of_the_answer_is_an_error(cut in 0..body().len()) {
        prop_assert_eq!(read(&body()[..cut]), None);
    }

    #[test]
    fn any_single_byte_corruption_never_panics(at in 0..body().len(), byte in any::<u8>()) {
        let mut bytes = body();
        bytes[at] = byte;
        let _ = read(&bytes);
    }

    #[test]
    fn any_field_of_any_type_costs_at_most_its_record(
        place in prop::sample::select(PLACES.to_vec()),
        value in json_value(),
    ) {
        let mut answer = answer();
        let mut target = &mut answer["data"]["shop_order_list"][0];
        for step in place.split('.') {
            target = match step.parse::<usize>() {
                Ok(index) => &mut target[index],
                Err(_) => &mut target[step],
            };
        }
        *target = value;
        let data = envelope::parse(answer.to_string().as_bytes()).expect("the envelope is intact");
        let request = PageRequest { page_no: 1, page_size: 100, with_total: true };
        let page = mapping::order_page("dy", &data, request).expect("one record never fails its page");
        prop_assert_eq!(page.items.len() + page.rejected.len(), ORDERS);
        prop_assert!(page.items.len() >= ORDERS - 1, "only the changed record may be set aside");
        prop_assert!(page.rejected.iter().all(|r| !r.reason.is_empty()));
    }

    #[test]
    fn any_envelope_never_panics(code in json_value(), data in json_value(), sub_msg in any::<String>()) {
        let body = json!({"code": code, "sub_msg": sub_msg, "data": data}).to_string();
        let _ = envelope::parse(body.as_bytes());
    }
}
