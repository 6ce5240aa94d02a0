//! Refunds end to end: `fetch_refunds → store_refunds` against the simulator
//! while refunds open, succeed and close, compared with its ground truth; and
//! `Store::save_refunds` on every backend.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use orderflow::platforms::taobao::time;
use orderflow::platforms::{Money, Refund};
use orderflow::sim::{SimConfig, Truth};
use orderflow::store::{Cursor, SaveOutcome, Store};
use orderflow::sync::{REFUNDS_STREAM, flow_stream};
use serde_json::{Value as Json, json};
use support::rig::{Rig, SHOP};

/// The refunds flow of `flows/refunds-incremental.yaml`, reaching back over
/// the whole history on its first run: one-day windows (the platform's
/// longest) keep 90 days to 90 calls.
const FLOW: &str = "flow: refunds\nshop: tmall-main\nnodes:\n  refunds: {use: fetch_refunds, with: {first_run: 90d, window: 1d, lookback: 1s}}\n  save: {use: store_refunds, input: refunds}\n";

/// The truth's refunds, as `refunds.receive.get` lists them when asked for
/// every order type (the connector does; the history is within the 90 days
/// it lists): refund id → (status, modified, refund_fee).
fn listed_truth(truth: &Truth) -> BTreeMap<i64, (String, DateTime<Utc>, Money)> {
    truth
        .refunds
        .iter()
        .filter_map(|refund| {
            let text = |key: &str| refund.get(key).and_then(Json::as_str);
            let modified = time::parse(text("modified")?)?;
            Some((
                text("refund_id")?.parse().ok()?,
                (text("status")?.to_owned(), modified, text("refund_fee")?.parse().ok()?),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_changing_while_synced_end_equal_to_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("refunds.db").display())).await.unwrap();
    let sim = SimConfig { seed: 23, orders: 3_000, days: 80, mutations_per_sec: 200.0, ..SimConfig::default() };
    let rig = Rig::new(sim, store.clone()).await;
    let flow = rig.flow("refunds.yaml", FLOW);

    let started = Utc::now() - chrono::Duration::seconds(1);
    rig.run(&flow).await;
    rig.sim.pause_mutations();
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    rig.run(&flow).await;

    let truth = rig.sim.truth();
    let expected = listed_truth(&truth);
    assert!(expected.len() > 50, "the shop has refunds to sync: {}", expected.len());
    let changed = expected.values().filter(|(_, modified, _)| *modified >= started).count();
    assert!(changed > 0, "refunds changed while the first run synced");
    let stored: BTreeMap<i64, (String, DateTime<Utc>, Money)> = store
        .stored_refunds("taobao", SHOP)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.refund_id, (r.status, r.modified, r.refund_fee)))
        .collect();
    let differ: Vec<_> = expected.iter().filter(|(id, want)| stored.get(id) != Some(want)).take(3).collect();
    assert!(differ.is_empty(), "refunds missing or stale, e.g. {differ:?}");
    assert_eq!(stored.len(), expected.len(), "refunds the shop does not have");

    // What went back to the buyers of orders with a successful refund.
    let mut success: BTreeMap<i64, Money> = BTreeMap::new();
    for refund in &truth.refunds {
        let (Some(id), Some(tid)) =
            (refund["refund_id"].as_str().and_then(|id| id.parse::<i64>().ok()), refund["tid"].as_i64())
        else {
            continue;
        };
        if let Some((status, _, fee)) = expected.get(&id).filter(|(status, ..)| status == "SUCCESS") {
            assert_eq!(status, "SUCCESS");
            success.entry(tid).or_default().0 += fee.0;
        }
    }
    assert!(!success.is_empty(), "some refunds succeeded");
    for (tid, amount) in success.iter().take(50) {
        assert_eq!(store.refunded_amount("taobao", SHOP, *tid).await.unwrap(), *amount, "order {tid}");
    }
    let stream = flow_stream(REFUNDS_STREAM, "refunds", "refunds");
    let cursor = store.load_cursor("taobao", SHOP, &stream).await.unwrap();
    assert!(cursor.is_some_and(|c| c.get("modified_until").is_some()), "the flow's cursor is stored");
}

fn refund(id: i64, status: &str, fee: i64, second: u32) -> Refund {
    let at = |second| Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, second).single().expect("a valid time");
    Refund {
        platform: "taobao".into(),
        shop: SHOP.into(),
        refund_id: 9_000_000_000_000_000_000 + id,
        tid: 4_611_686_018_427_387_905,
        oid: 4_611_686_018_427_387_906 + id,
        status: status.into(),
        refund_fee: Money(fee),
        created: at(0),
        modified: at(second),
        raw: json!({"refund_id": id, "status": status, "reason": "质量问题"}),
    }
}

#[tokio::test]
async fn save_refunds_keeps_the_newest_version_on_every_backend() {
    for test in support::test_stores().await {
        let (label, store) = (test.label, &test.store);
        let cursor = |until: &str| Cursor {
            platform: "taobao".into(),
            shop: SHOP.into(),
            stream: REFUNDS_STREAM.into(),
            value: json!({ "modified_until": until }),
        };
        let first = [refund(1, "WAIT_SELLER_AGREE", 1_001, 5), refund(2, "SUCCESS", 99_999_999, 5)];
        let outcome = store.save_refunds(&first, &[cursor("a")]).await.unwrap();
        assert_eq!(outcome, SaveOutcome { inserted: 2, updated: 0, stale: 0 }, "{label}");

        // A newer and an equal version overwrite, an older one does not.
        let second = [
            refund(1, "SUCCESS", 1_001, 9),
            refund(2, "WAIT_SELLER_AGREE", 99_999_999, 1),
            refund(3, "CLOSED", 7, 5),
            refund(3, "WAIT_SELLER_AGREE", 7, 5),
        ];
        let outcome = store.save_refunds(&second, &[cursor("b")]).await.unwrap();
        assert_eq!(outcome, SaveOutcome { inserted: 1, updated: 1, stale: 2 }, "{label}");
        let again = store.save_refunds(&second[..1], &[]).await.unwrap();
        assert_eq!(again, SaveOutcome { inserted: 0, updated: 1, stale: 0 }, "{label}: equal overwrites");

        let stored = store.refunds_of_order("taobao", SHOP, 4_611_686_018_427_387_905).await.unwrap();
        assert_eq!(stored, [second[0].clone(), first[1].clone(), second[3].clone()], "{label}");
        assert_eq!(
            store.refunded_amount("taobao", SHOP, 4_611_686_018_427_387_905).await.unwrap(),
            Money(100_001_000),
            "{label}: summed in fen"
        );
        assert_eq!(
            store.load_cursor("taobao", SHOP, REFUNDS_STREAM).await.unwrap(),
            Some(json!({"modified_until": "b"}))
        );

        // A failed batch writes nothing, not even its cursor.
        let bad = refund(4, &"X".repeat(65), 1, 5);
        assert!(store.save_refunds(&[refund(5, "SUCCESS", 1, 5), bad], &[cursor("c")]).await.is_err(), "{label}");
        assert_eq!(store.stored_refunds("taobao", SHOP).await.unwrap().len(), 3, "{label}");
        assert_eq!(
            store.load_cursor("taobao", SHOP, REFUNDS_STREAM).await.unwrap(),
            Some(json!({"modified_until": "b"}))
        );
        test.cleanup().await;
    }
}
