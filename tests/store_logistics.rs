//! Parcel checks, deliveries, orders by status and open alerts by key, run against
//! every backend `support::test_stores` provides: SQLite always, PostgreSQL and
//! MySQL/MariaDB when their URL variables are set.

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use orderflow::platforms::{Money, Order};
use orderflow::store::{NewAlert, ParcelCheck, StoreError};
use serde_json::json;
use support::{error_chain, test_stores};

fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap() + Duration::minutes(minute) + Duration::milliseconds(7)
}

fn ok<T>(label: &str, result: Result<T, StoreError>) -> T {
    result.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)))
}

fn order(tid: i64, status: &str) -> Order {
    Order {
        platform: "taobao".into(),
        shop: "s1".into(),
        tid,
        status: status.into(),
        order_type: "fixed".into(),
        created: at(0),
        modified: at(tid % 50),
        pay_time: None,
        payment: Money(100),
        buyer_nick: None,
        step_trade_status: None,
        items: Vec::new(),
        raw: json!({"tid": tid}),
    }
}

#[tokio::test]
async fn parcel_checks_deliveries_and_orders_by_status() {
    const BIG: i64 = 3_900_000_000_000_000_000;
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        let check = |tid, minute, newest: Option<i64>| ParcelCheck {
            platform: "taobao".into(),
            shop: "s1".into(),
            tid,
            checked_at: at(minute),
            newest_event_at: newest.map(at),
        };
        ok(label, store.save_parcel_check(&check(BIG + 1, 0, None)).await);
        ok(label, store.save_parcel_check(&check(BIG + 1, 10, Some(5))).await);
        ok(label, store.save_parcel_check(&check(BIG + 2, 3, Some(1))).await);
        let checks = ok(label, store.parcel_checks("taobao", "s1", &[BIG + 1, BIG + 2, BIG + 3]).await);
        assert_eq!(checks.len(), 2, "{label}");
        assert_eq!(checks[&(BIG + 1)], check(BIG + 1, 10, Some(5)), "{label}");
        assert!(ok(label, store.parcel_checks("taobao", "s2", &[BIG + 1]).await).is_empty(), "{label}");

        assert!(ok(label, store.record_delivery("hook", "7/raised", at(0)).await), "{label}");
        assert!(!ok(label, store.record_delivery("hook", "7/raised", at(1)).await), "{label}: once");
        let keys = vec!["7/raised".to_owned(), "7/resolved".to_owned()];
        let delivered = ok(label, store.delivered_keys("hook", &keys).await);
        assert_eq!(delivered.into_iter().collect::<Vec<_>>(), vec!["7/raised".to_owned()], "{label}");

        let orders: Vec<Order> = (1..=7)
            .map(|i| order(BIG + i, if i % 3 == 0 { "TRADE_FINISHED" } else { "WAIT_BUYER_CONFIRM_GOODS" }))
            .collect();
        ok(label, store.save_orders(&orders, &[]).await);
        let statuses = vec!["WAIT_BUYER_CONFIRM_GOODS".to_owned(), "SELLER_CONSIGNED_PART".to_owned()];
        let first = ok(label, store.orders_in_status("taobao", "s1", &statuses, None, 3).await);
        let tids: Vec<i64> = first.iter().map(|o| o.tid - BIG).collect();
        assert_eq!(tids, vec![1, 2, 4], "{label}");
        assert_eq!(first[0].modified, at((BIG + 1) % 50), "{label}");
        let rest = ok(label, store.orders_in_status("taobao", "s1", &statuses, Some(BIG + 4), 3).await);
        assert_eq!(rest.iter().map(|o| o.tid - BIG).collect::<Vec<_>>(), vec![5, 7], "{label}");

        let alert = NewAlert {
            kind: "parcel_stalled".into(),
            platform: "taobao".into(),
            shop: "s1".into(),
            tid: Some(BIG + 1),
            detail: "stuck".into(),
        };
        let id = ok(label, store.raise_alert(&alert, at(0)).await).expect("raised");
        let open = ok(label, store.open_alert("parcel_stalled", "taobao", "s1", Some(BIG + 1)).await);
        assert_eq!(open.map(|a| (a.id, a.detail)), Some((id, "stuck".to_owned())), "{label}");
        ok(label, store.resolve_alert("parcel_stalled", "taobao", "s1", Some(BIG + 1), at(1)).await);
        assert!(ok(label, store.open_alert("parcel_stalled", "taobao", "s1", Some(BIG + 1)).await).is_none());
        ts.cleanup().await;
    }
}
