//! Orders, items and sync cursors, run against every backend `support::test_stores`
//! provides: SQLite always, PostgreSQL and MySQL/MariaDB when their URL variables are
//! set.

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use orderflow::platforms::{Money, Order, OrderItem};
use orderflow::store::{
    ColumnKind, ColumnSpec, Cursor, SaveOutcome, Store, StoreError, StoredOrder, TableSpec, timestamp_text,
};
use serde_json::json;
use support::{error_chain, test_stores};

const PLATFORM: &str = "taobao";
const SHOP: &str = "s1";

/// A time on 2024-05-01 with whole milliseconds, as the store keeps them.
fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap() + Duration::minutes(minute.into()) + Duration::milliseconds(5)
}

fn item(oid: i64, title: &str) -> OrderItem {
    OrderItem {
        oid,
        num_iid: Some(600_000_000_000 + oid % 1_000_000_000),
        sku_id: Some(format!("sku-{oid}")),
        outer_sku_id: Some(format!("OUT-{oid}")),
        title: Some(title.to_owned()),
        num: 2,
        price: Money(10_003),
        payment: Money(20_006),
        refund_status: None,
        refund_id: None,
    }
}

/// An order of shop `s1` whose items carry `status` in their title, so a test can
/// tell which version the stored items belong to.
fn order(tid: i64, minute: u32, status: &str, oids: &[i64]) -> Order {
    Order {
        platform: PLATFORM.into(),
        shop: SHOP.into(),
        tid,
        status: status.into(),
        order_type: "fixed".into(),
        created: at(0),
        modified: at(minute),
        pay_time: Some(at(1)),
        payment: Money(20_007),
        buyer_nick: Some("小明".into()),
        step_trade_status: None,
        items: oids.iter().map(|&oid| item(oid, status)).collect(),
        raw: json!({"tid": tid, "status": status, "modified": minute}),
    }
}

fn cursor(stream: &str, value: serde_json::Value) -> Cursor {
    Cursor { platform: PLATFORM.into(), shop: SHOP.into(), stream: stream.into(), value }
}

fn outcome(inserted: usize, updated: usize, stale: usize) -> SaveOutcome {
    SaveOutcome { inserted, updated, stale }
}

async fn save(store: &Store, label: &str, orders: &[Order], cursors: &[Cursor]) -> SaveOutcome {
    store.save_orders(orders, cursors).await.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)))
}

async fn stored(store: &Store, label: &str) -> Vec<StoredOrder> {
    store.stored_orders(PLATFORM, SHOP).await.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)))
}

async fn items_of(store: &Store, label: &str, tid: i64) -> Vec<OrderItem> {
    store.order_items_of(PLATFORM, SHOP, tid).await.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)))
}

fn titles(items: &[OrderItem]) -> Vec<(i64, &str)> {
    items.iter().map(|i| (i.oid, i.title.as_deref().unwrap_or(""))).collect()
}

#[tokio::test]
async fn inserts_then_updates_and_never_goes_back() {
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        let first = save(store, label, &[order(1, 10, "PAID", &[11, 12]), order(2, 10, "PAID", &[21])], &[]).await;
        assert_eq!(first, outcome(2, 0, 0), "{label}");

        // Newer: the row and its items are replaced (oid 12 vanished, 13 appeared).
        let newer = save(store, label, &[order(1, 20, "SHIPPED", &[11, 13])], &[]).await;
        assert_eq!(newer, outcome(0, 1, 0), "{label}");
        assert_eq!(titles(&items_of(store, label, 1).await), [(11, "SHIPPED"), (13, "SHIPPED")], "{label}");

        // Older: neither the row nor its items change.
        let older = save(store, label, &[order(1, 15, "STALE", &[19]), order(3, 15, "NEW", &[31])], &[]).await;
        assert_eq!(older, outcome(1, 0, 1), "{label}");
        assert_eq!(titles(&items_of(store, label, 1).await), [(11, "SHIPPED"), (13, "SHIPPED")], "{label}");

        // The same version again overwrites: a re-fetch may be more complete.
        let same = save(store, label, &[order(1, 20, "SHIPPED_AGAIN", &[11])], &[]).await;
        assert_eq!(same, outcome(0, 1, 0), "{label}");

        let expected = |tid: i64, status: &str, minute: u32, items: usize| StoredOrder {
            tid,
            status: status.into(),
            order_type: "fixed".into(),
            modified: at(minute),
            payment: "200.07".into(),
            items,
        };
        assert_eq!(
            stored(store, label).await,
            [expected(1, "SHIPPED_AGAIN", 20, 1), expected(2, "PAID", 10, 1), expected(3, "NEW", 15, 1)],
            "{label}"
        );
        assert_eq!(items_of(store, label, 1).await, [item(11, "SHIPPED_AGAIN")], "{label}: items round trip");
        assert!(items_of(store, label, 99).await.is_empty(), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn saving_twice_duplicates_nothing() {
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        let batch: Vec<Order> = (1..=5)
            .map(|tid| order(tid, 10, if tid % 2 == 0 { "A" } else { "B" }, &[tid * 10, tid * 10 + 1]))
            .collect();
        let cursors = [cursor("orders.increment", json!({"end": "2024-05-01T09:00:00Z"}))];
        assert_eq!(save(store, label, &batch, &cursors).await, outcome(5, 0, 0), "{label}");
        let before = stored(store, label).await;
        assert_eq!(save(store, label, &batch, &cursors).await, outcome(0, 5, 0), "{label}");
        assert_eq!(stored(store, label).await, before, "{label}");
        assert!(before.iter().all(|o| o.items == 2), "{label}: {before:?}");
        let summary = store.orders_summary(PLATFORM, SHOP).await.unwrap();
        assert_eq!(summary, [("A".to_owned(), 2), ("B".to_owned(), 3)], "{label}");
        assert!(store.orders_summary(PLATFORM, "other").await.unwrap().is_empty(), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_batch_keeps_the_newest_copy_of_each_order() {
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        let batch =
            [order(1, 10, "V10", &[11]), order(1, 30, "V30", &[12]), order(1, 20, "V20", &[13]), order(2, 5, "X", &[])];
        assert_eq!(save(store, label, &batch, &[]).await, outcome(2, 0, 2), "{label}");
        let orders = stored(store, label).await;
        assert_eq!((orders[0].status.as_str(), orders[0].modified), ("V30", at(30)), "{label}");
        assert_eq!(titles(&items_of(store, label, 1).await), [(12, "V30")], "{label}");
        assert_eq!(orders[1].items, 0, "{label}: an order may have no items");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn cursors_are_saved_with_the_orders() {
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        assert_eq!(store.load_cursor(PLATFORM, SHOP, "orders.increment").await.unwrap(), None, "{label}");

        let value = json!({"start": "2024-05-01T08:00:00Z", "end": "2024-05-01T09:00:00Z", "page": 3, "big": u64::MAX});
        save(store, label, &[order(1, 10, "PAID", &[11])], &[cursor("orders.increment", value.clone())]).await;
        let loaded = store.load_cursor(PLATFORM, SHOP, "orders.increment").await.unwrap();
        assert_eq!(loaded, Some(value), "{label}");

        // An empty page still moves its stream on; other streams and shops are apart.
        let next = json!({"end": "2024-05-01T10:00:00Z"});
        assert_eq!(save(store, label, &[], &[cursor("orders.increment", next.clone())]).await, outcome(0, 0, 0));
        assert_eq!(store.load_cursor(PLATFORM, SHOP, "orders.increment").await.unwrap(), Some(next), "{label}");
        assert_eq!(store.load_cursor(PLATFORM, SHOP, "orders.full").await.unwrap(), None, "{label}");
        assert_eq!(store.load_cursor(PLATFORM, "s2", "orders.increment").await.unwrap(), None, "{label}");
        assert_eq!(store.load_cursor("douyin", SHOP, "orders.increment").await.unwrap(), None, "{label}");

        // Of two cursors for one stream in a batch, the last wins.
        save(store, label, &[], &[cursor("orders.full", json!(1)), cursor("orders.full", json!(2))]).await;
        assert_eq!(store.load_cursor(PLATFORM, SHOP, "orders.full").await.unwrap(), Some(json!(2)), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_failing_batch_leaves_neither_orders_nor_cursor() {
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        save(store, label, &[order(1, 10, "PAID", &[10])], &[cursor("orders.increment", json!("c1"))]).await;
        let before = stored(store, label).await;

        // Order 3 claims sub-order 10, which belongs to order 1. The database refuses
        // its items after it has written orders 2 and 3 and the items of order 2.
        let batch = [order(2, 20, "NEW", &[20]), order(3, 20, "NEW", &[10])];
        let error = store
            .save_orders(&batch, &[cursor("orders.increment", json!("c2"))])
            .await
            .expect_err("an oid stored under another order is refused");
        assert!(error.is_constraint_violation(), "{label}: {}", error_chain(&error));
        assert!(!error.is_transient(), "{label}: {error:?}");
        assert_eq!(stored(store, label).await, before, "{label}: no order written");
        assert_eq!(titles(&items_of(store, label, 1).await), [(10, "PAID")], "{label}");
        assert!(items_of(store, label, 2).await.is_empty(), "{label}: no item written");
        let cursor_now = store.load_cursor(PLATFORM, SHOP, "orders.increment").await.unwrap();
        assert_eq!(cursor_now, Some(json!("c1")), "{label}: the cursor did not move");

        // Moving the sub-order in the same batch as a new version of its old order
        // is fine: the old order's items go first.
        let moved = save(store, label, &[order(1, 20, "SHIPPED", &[]), order(3, 20, "NEW", &[10])], &[]).await;
        assert_eq!(moved, outcome(1, 1, 0), "{label}");
        assert_eq!(titles(&items_of(store, label, 3).await), [(10, "NEW")], "{label}");

        // A value that does not fit fails the batch before anything is sent.
        let mut long = order(4, 20, "NEW", &[40]);
        long.platform = "p".repeat(65);
        let error = store
            .save_orders(&[order(5, 20, "NEW", &[50]), long], &[cursor("orders.increment", json!("c3"))])
            .await
            .expect_err("a 65-character platform is refused");
        assert!(matches!(error, StoreError::InvalidValue { ref field, .. } if field == "orders.platform"), "{error:?}");
        assert_eq!(stored(store, label).await.len(), 2, "{label}");
        assert_eq!(store.load_cursor(PLATFORM, SHOP, "orders.increment").await.unwrap(), Some(json!("c1")));

        // Two lines of one batch sharing an oid are refused up front too.
        let error = store
            .save_orders(&[order(6, 20, "NEW", &[60]), order(7, 20, "NEW", &[60])], &[])
            .await
            .expect_err("a shared oid is refused");
        assert!(error.to_string().contains("oid 60 also appears in order 6"), "{label}: {error}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_failing_cursor_rolls_the_orders_back() {
    for ts in test_stores().await {
        let label = ts.label;
        // Take the cursor table away, so the batch fails at its very last statement.
        let admin = sqlx::AnyPool::connect(&ts.url).await.unwrap();
        sqlx::query("ALTER TABLE sync_cursors RENAME TO sync_cursors_away").execute(&admin).await.unwrap();
        let error = ts
            .store
            .save_orders(&[order(1, 10, "PAID", &[11])], &[cursor("orders.increment", json!("c1"))])
            .await
            .expect_err("no cursor table");
        assert!(matches!(error, StoreError::Database { .. }), "{label}: {error:?}");
        sqlx::query("ALTER TABLE sync_cursors_away RENAME TO sync_cursors").execute(&admin).await.unwrap();
        admin.close().await;

        assert!(stored(&ts.store, label).await.is_empty(), "{label}: the order was rolled back");
        assert!(items_of(&ts.store, label, 1).await.is_empty(), "{label}: its items too");
        assert_eq!(ts.store.load_cursor(PLATFORM, SHOP, "orders.increment").await.unwrap(), None, "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn ids_above_2_pow_53_round_trip_exactly() {
    let tid = (1i64 << 60) + 7;
    let oid = i64::MAX - 1;
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        let mut big = order(tid, 10, "PAID", &[oid, (1 << 53) + 1]);
        big.items[0].num_iid = Some((1 << 62) + 3);
        big.items[0].refund_id = Some((1 << 55) + 9);
        big.items[0].refund_status = Some("WAIT_SELLER_AGREE".into());
        big.items[1].sku_id = None;
        big.items[1].title = None;
        save(store, label, &[big.clone(), order(tid + 1, 10, "PAID", &[])], &[]).await;

        let orders = stored(store, label).await;
        let tids: Vec<i64> = orders.iter().map(|o| o.tid).collect();
        assert_eq!(tids, [tid, tid + 1], "{label}");
        let mut expected = big.items.clone();
        expected.sort_by_key(|i| i.oid);
        assert_eq!(items_of(store, label, tid).await, expected, "{label}");
        let versions = store.order_versions(PLATFORM, SHOP, &[tid, tid - 1]).await.unwrap();
        let versions: Vec<(i64, DateTime<Utc>, String)> =
            versions.into_iter().map(|(tid, v)| (tid, v.modified, v.status)).collect();
        assert_eq!(versions, [(tid, at(10), "PAID".to_owned())], "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn order_versions_reports_known_tids_only() {
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        save(store, label, &[order(5, 1, "A", &[]), order(1500, 2, "A", &[]), order(2999, 3, "A", &[])], &[]).await;
        let mut other_shop = order(7, 9, "A", &[]);
        other_shop.shop = "s2".into();
        save(store, label, &[other_shop], &[]).await;

        // More tids than one IN list takes.
        let asked: Vec<i64> = (0..3000).collect();
        let versions = store.order_versions(PLATFORM, SHOP, &asked).await.unwrap();
        let mut versions: Vec<(i64, DateTime<Utc>)> = versions.into_iter().map(|(tid, v)| (tid, v.modified)).collect();
        versions.sort();
        assert_eq!(versions, [(5, at(1)), (1500, at(2)), (2999, at(3))], "{label}");
        assert!(store.order_versions(PLATFORM, SHOP, &[]).await.unwrap().is_empty(), "{label}");
        assert!(store.order_versions(PLATFORM, "s3", &[5]).await.unwrap().is_empty(), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn large_batches_span_several_statements() {
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        // 1,300 orders in two shops, 3 items each: several order and item statements.
        let batch: Vec<Order> = (0..1300i64)
            .map(|tid| {
                let mut o = order(tid, 10, "PAID", &[tid * 3, tid * 3 + 1, tid * 3 + 2]);
                if tid % 4 == 0 {
                    o.shop = "s2".into();
                }
                o
            })
            .collect();
        assert_eq!(save(store, label, &batch, &[]).await, outcome(1300, 0, 0), "{label}");
        assert_eq!(stored(store, label).await.len(), 975, "{label}");
        let s2 = store.stored_orders(PLATFORM, "s2").await.unwrap();
        assert_eq!(s2.len(), 325, "{label}");
        assert!(s2.iter().all(|o| o.items == 3), "{label}");

        // Half of them again, half older and half newer.
        let again: Vec<Order> = batch
            .iter()
            .step_by(2)
            .enumerate()
            .map(|(i, o)| Order { modified: if i % 2 == 0 { at(5) } else { at(20) }, ..o.clone() })
            .collect();
        assert_eq!(save(store, label, &again, &[]).await, outcome(0, 325, 325), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_writers_keep_each_order_whole() {
    for ts in test_stores().await {
        let label = ts.label;
        // Four writers save different versions of the same 40 orders at once. Lock
        // conflicts may fail a batch (transient errors); the writer then retries, as a
        // sync node would. In the end each order is at its newest version, with the
        // items of that version.
        let mut tasks = tokio::task::JoinSet::new();
        for version in [10u32, 40, 20, 30] {
            let store = ts.store.clone();
            tasks.spawn(async move {
                let status = format!("V{version}");
                let batch: Vec<Order> =
                    (1..=40).map(|tid| order(tid, version, &status, &[tid * 100 + i64::from(version)])).collect();
                for attempt in 0.. {
                    match store.save_orders(&batch, &[]).await {
                        Ok(outcome) => return outcome,
                        Err(error) if error.is_transient() && attempt < 50 => {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await
                        }
                        Err(error) => panic!("{}", error_chain(&error)),
                    }
                }
                unreachable!()
            });
        }
        let mut total = outcome(0, 0, 0);
        while let Some(done) = tasks.join_next().await {
            let done = done.unwrap_or_else(|e| panic!("{label}: {e}"));
            total.inserted += done.inserted;
            total.updated += done.updated;
            total.stale += done.stale;
        }
        assert_eq!(total.inserted, 40, "{label}: each order is inserted by one writer: {total:?}");
        assert_eq!(total.inserted + total.updated + total.stale, 160, "{label}");
        for o in stored(&ts.store, label).await {
            assert_eq!((o.status.as_str(), o.modified, o.items), ("V40", at(40), 1), "{label}: order {}", o.tid);
            assert_eq!(titles(&items_of(&ts.store, label, o.tid).await), [(o.tid * 100 + 40, "V40")], "{label}");
        }
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn payment_is_the_exact_yuan_string() {
    for ts in test_stores().await {
        let label = ts.label;
        let mut cheap = order(1, 10, "PAID", &[]);
        cheap.payment = Money(50);
        let mut refund = order(2, 10, "PAID", &[]);
        refund.payment = Money(-310);
        let mut rich = order(3, 10, "PAID", &[]);
        rich.payment = Money(i64::MAX);
        save(&ts.store, label, &[cheap, refund, rich], &[]).await;
        let payments: Vec<String> = stored(&ts.store, label).await.into_iter().map(|o| o.payment).collect();
        assert_eq!(payments, ["0.50", "-3.10", "92233720368547758.07"], "{label}");
        ts.cleanup().await;
    }
}

#[test]
fn the_order_tables_are_reserved() {
    for name in ["orders", "order_items", "sync_cursors", "ORDERS"] {
        let error = TableSpec::new(name, vec![ColumnSpec::new("tid", ColumnKind::Integer)], vec!["tid".into()], None)
            .expect_err(name);
        assert!(error.to_string().contains("reserved"), "{error}");
    }
    // The text the store writes for a timestamp is the text the tests compare.
    assert_eq!(timestamp_text(at(0)), "2024-05-01T08:00:00.005Z");
}
