//! Generated inputs for the TOP answer parser: whatever a gateway, a proxy or
//! a broken connection hands back, [`envelope::parse`] and [`mapping`] answer
//! with `Ok` or `Err` and never panic, and a body cut short is never read as
//! an answer with fewer orders.
//!
//! Only `is_err()` is asserted of failures: the error types' insides are not
//! this file's business.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value as Json, json};

use super::error::{ApiError, ban_length};
use super::{envelope, mapping};
use crate::platforms::PageRequest;

const METHOD: &str = "taobao.trades.sold.get";
const TRADES: usize = 3;
const ITEMS: usize = 2;

/// A few hundred cases each: enough to find the usual edge, fast enough to
/// run with every `cargo test`. No regression files: a failure prints its
/// smallest input, which belongs in a named test.
fn config() -> Config {
    Config { cases: 300, failure_persistence: None, ..Config::default() }
}

/// A `trades.sold.get` answer with [`TRADES`] trades.
fn answer() -> Json {
    answer_of(TRADES)
}

/// A `trades.sold.get` answer with `trades` trades as the simulator writes
/// one: ids above 2^53 (some as strings), money as yuan strings, GMT+8
/// times, Chinese text.
fn answer_of(trades: usize) -> Json {
    let trades: Vec<Json> = (0..trades as i64)
        .map(|n| {
            let tid = 3_900_000_000_000_000_000 + n * 1_000;
            let items: Vec<Json> = (1..=ITEMS as i64)
                .map(|k| {
                    json!({"oid": if k == 1 { json!(tid + k) } else { json!((tid + k).to_string()) },
                        "num_iid": 600_000 + k, "sku_id": format!("{}", 5_000 + k), "outer_sku_id": format!("TEA-{k}"),
                        "title": "明前龙井 250g", "num": k, "price": "88.50", "payment": format!("{}.00", 88 * k),
                        "refund_status": "NO_REFUND"})
                })
                .collect();
            json!({"tid": tid, "status": "WAIT_SELLER_SEND_GOODS", "type": "fixed",
                "created": "2026-11-24 10:00:00", "modified": "2026-11-24 10:05:00", "pay_time": "2026-11-24 10:01:00",
                "payment": "264.00", "buyer_nick": "茶客", "buyer_message": "请尽快发货\n谢谢",
                "orders": {"order": items}})
        })
        .collect();
    json!({"trades_sold_get_response": {"total_results": 41, "trades": {"trade": trades},
        "request_id": "1a2b3c4d5e6f7"}})
}

/// [`answer`] as bytes.
fn body() -> Vec<u8> {
    body_of(TRADES)
}

/// [`answer_of`] as bytes, with the raw newline inside `buyer_message` that
/// real answers carry (JSON forbids it; the parser tolerates it).
fn body_of(trades: usize) -> Vec<u8> {
    answer_of(trades).to_string().replace("\\n", "\n").into_bytes()
}

/// Parses `bytes` and maps every trade and the paging, as the client does;
/// the orders read, or `None` when the answer was refused.
fn read(bytes: &[u8]) -> Option<usize> {
    let value = envelope::parse(METHOD, bytes).ok()?;
    let trades = envelope::list(&value, "trades", "trade");
    for trade in &trades {
        let _ = mapping::order("shop", trade);
    }
    let _ = mapping::paging(&value, PageRequest { page_no: 2, page_size: 40, with_total: true }, trades.len());
    Some(trades.len())
}

#[test]
fn the_real_looking_answer_reads_in_full() {
    let value = envelope::parse(METHOD, &body()).expect("parses");
    let trades = envelope::list(&value, "trades", "trade");
    assert_eq!(trades.len(), TRADES);
    for trade in trades {
        let order = mapping::order("shop", trade).expect("maps");
        assert_eq!(order.items.len(), ITEMS);
        assert!(order.raw["buyer_message"].as_str().is_some_and(|m| m.contains('\n')));
    }
}

#[test]
fn every_truncation_is_an_error() {
    let body = body();
    for cut in 0..body.len() {
        assert_eq!(read(&body[..cut]), None, "cut at byte {cut} of {}", body.len());
    }
    assert_eq!(read(&body), Some(TRADES));
}

/// Every offset with the bytes that matter to JSON, UTF-8 and the control
/// character fix-up; random bytes at random offsets are the property below.
/// One trade, because the others repeat its structure and each trade
/// multiplies the time.
#[test]
fn every_offset_survives_a_structural_byte() {
    let body = body_of(1);
    let bytes =
        [b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'0', b'-', b'e', b' ', b'\n', 0x00, 0x1f, 0x80, 0xff];
    for at in 0..body.len() {
        for byte in bytes {
            let mut corrupted = body.clone();
            corrupted[at] = byte;
            read(&corrupted);
        }
    }
}

/// Texts at the edges of what the fields hold: times at chrono's limits and
/// with milliseconds, amounts at `i64`'s limit in fen, ids past `i64`.
const EDGE_TEXTS: &[&str] = &[
    "",
    " ",
    "2026-11-24 10:00:00",
    "2026-11-24 10:00:00.123",
    "+262143-12-31 23:59:59",
    "-262143-01-01 00:00:00",
    "88.50",
    "-0.01",
    "92233720368547758.07",
    "92233720368547758.08",
    "-92233720368547758.08",
    "3900000000000000001",
    "9223372036854775808",
    "true",
    "This ban will last for 18446744073709551615 more hours",
];

/// Any JSON value: the leaves a field could hold, including TOP-looking
/// texts and numbers at the edges, nested a few levels.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Json::Number)),
        prop::sample::select(EDGE_TEXTS).prop_map(Json::from),
        any::<String>().prop_map(Json::String),
    ];
    let key = prop_oneof![Just("order".to_owned()), Just("oid".to_owned()), Just("tid".to_owned()), "[a-z_]{1,8}"];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((key.clone(), inner), 0..4)
                .prop_map(|pairs| Json::Object(pairs.into_iter().collect())),
        ]
    })
}

/// JSON pointers (below the method's key) to every field of the answer:
/// the counts, the list wrappers, each trade's and each line's fields.
fn places() -> Vec<String> {
    let answer = answer();
    let body = &answer["trades_sold_get_response"];
    let keys = |value: &Json| value.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    let trade = &body["trades"]["trade"][0];
    let item = &trade["orders"]["order"][0];
    let mut places: Vec<String> = keys(body).iter().map(|key| format!("/{key}")).collect();
    places.push("/trades/trade".to_owned());
    for t in 0..TRADES {
        let trade_at = format!("/trades/trade/{t}");
        places.extend(keys(trade).iter().map(|key| format!("{trade_at}/{key}")));
        places.push(format!("{trade_at}/orders/order"));
        for i in 0..ITEMS {
            let item_at = format!("{trade_at}/orders/order/{i}");
            places.extend(keys(item).iter().map(|key| format!("{item_at}/{key}")));
            places.push(item_at);
        }
        places.push(trade_at);
    }
    places
}

#[test]
fn every_field_survives_every_edge_text() {
    for place in places() {
        for text in EDGE_TEXTS {
            let mut answer = answer();
            if let Some(field) = answer["trades_sold_get_response"].pointer_mut(&place) {
                *field = json!(text);
            }
            read(answer.to_string().as_bytes());
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        read(&bytes);
    }

    #[test]
    fn json_looking_bytes_never_panic(
        text in prop::collection::vec(
            prop::sample::select(&b"{}[]\":, 0123456789.-eEtruefalsn\\u\x01\n_trades_sold_get_response"[..]), 0..300)
    ) {
        read(&text);
        let mut wrapped = b"{\"trades_sold_get_response\":".to_vec();
        wrapped.extend(&text);
        read(&wrapped);
    }

    #[test]
    fn any_cut_of_the_answer_is_an_error(cut in 0..body().len()) {
        prop_assert!(envelope::parse(METHOD, &body()[..cut]).is_err());
    }

    #[test]
    fn any_single_byte_corruption_never_panics(at in 0..body().len(), byte in any::<u8>()) {
        let mut corrupted = body();
        corrupted[at] = byte;
        read(&corrupted);
    }

    #[test]
    fn any_field_of_any_type_never_panics(place in prop::sample::select(places()), value in json_value()) {
        let mut answer = answer();
        let field = answer["trades_sold_get_response"].pointer_mut(&place);
        prop_assert!(field.is_some(), "{place} is in the answer");
        if let Some(field) = field {
            *field = value;
        }
        read(answer.to_string().as_bytes());
    }

    #[test]
    fn any_error_response_never_panics(error in json_value(), sub_msg in any::<String>()) {
        let body = json!({"error_response": error}).to_string();
        prop_assert!(envelope::parse(METHOD, body.as_bytes()).is_err());
        let _ = ApiError::from_json(&error).kind();
        let _ = ban_length(&sub_msg);
        let _ = ban_length(&format!("This ban will last for {sub_msg}"));
    }
}
