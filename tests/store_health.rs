//! The resilience records (bans, re-authorisations, breakers, alerts, anomalies,
//! reconciliations), order counts by creation window and paused runs, run against
//! every backend `support::test_stores` provides: SQLite always, PostgreSQL and
//! MySQL/MariaDB when their URL variables are set.

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use orderflow::platforms::{Money, Order};
use orderflow::store::{
    AppBan, BreakerRow, NewAlert, NewAnomaly, Reconciliation, RunFinish, RunStart, RunStatus, StoreError,
};
use serde_json::json;
use support::{error_chain, test_stores};

/// A time on 2024-05-01 with whole milliseconds, as the store keeps them.
fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap() + Duration::minutes(minute) + Duration::milliseconds(7)
}

/// Panics with the whole error chain and the backend's name.
fn ok<T>(label: &str, result: Result<T, StoreError>) -> T {
    result.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)))
}

fn ban(app_key: &str, until: i64, reason: &str) -> AppBan {
    AppBan { platform: "taobao".into(), app_key: app_key.into(), until: at(until), reason: reason.into() }
}

fn alert(kind: &str, tid: Option<i64>) -> NewAlert {
    NewAlert { kind: kind.into(), platform: "taobao".into(), shop: "s1".into(), tid, detail: format!("{kind} {tid:?}") }
}

#[tokio::test]
async fn a_ban_keeps_the_later_until_and_ends() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        ok(label, store.save_ban(&ban("k1", 60, "first"), at(0)).await);
        // An earlier end does not shorten the ban in force.
        ok(label, store.save_ban(&ban("k1", 30, "shorter"), at(1)).await);
        assert_eq!(ok(label, store.active_bans(at(2)).await), [ban("k1", 60, "first")], "{label}");
        // A later one extends it.
        ok(label, store.save_ban(&ban("k1", 90, "longer"), at(3)).await);
        ok(label, store.save_ban(&ban("k0", 10, "other key"), at(3)).await);
        assert_eq!(
            ok(label, store.active_bans(at(4)).await),
            [ban("k0", 10, "other key"), ban("k1", 90, "longer")],
            "{label}: ordered by key"
        );
        // `until` is excluded: a ban ending now is over.
        assert_eq!(ok(label, store.active_bans(at(10)).await), [ban("k1", 90, "longer")], "{label}");
        assert!(ok(label, store.active_bans(at(90)).await).is_empty(), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn reauth_is_marked_once_and_cleared() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        assert!(ok(label, store.mark_needs_reauth("taobao", "s1", "code 27", at(0)).await), "{label}");
        assert!(!ok(label, store.mark_needs_reauth("taobao", "s1", "code 26", at(5)).await), "{label}");
        assert!(ok(label, store.mark_needs_reauth("taobao", "s0", "code 26", at(6)).await), "{label}");
        let marked = ok(label, store.shops_needing_reauth().await);
        let marked: Vec<(&str, DateTime<Utc>, &str)> =
            marked.iter().map(|r| (r.shop.as_str(), r.since, r.reason.as_str())).collect();
        assert_eq!(marked, [("s0", at(6), "code 26"), ("s1", at(0), "code 27")], "{label}: first reason kept");

        assert!(ok(label, store.clear_needs_reauth("taobao", "s1").await), "{label}");
        assert!(!ok(label, store.clear_needs_reauth("taobao", "s1").await), "{label}: already cleared");
        let left: Vec<String> = ok(label, store.shops_needing_reauth().await).into_iter().map(|r| r.shop).collect();
        assert_eq!(left, ["s0"], "{label}");
        // Marked again after clearing: a new episode with its own start.
        assert!(ok(label, store.mark_needs_reauth("taobao", "s1", "again", at(9)).await), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn breakers_round_trip_and_upsert() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        assert_eq!(ok(label, store.load_breaker("taobao", "s1", "orders.increment").await), None, "{label}");
        let closed = BreakerRow {
            platform: "taobao".into(),
            shop: "s1".into(),
            channel: "orders.increment".into(),
            state: "closed".into(),
            outcomes: "ok,ok,fail".into(),
            opened_at: None,
            last_degraded_at: Some(at(1)),
            updated_at: at(2),
        };
        ok(label, store.save_breaker(&closed).await);
        assert_eq!(
            ok(label, store.load_breaker("taobao", "s1", "orders.increment").await).as_ref(),
            Some(&closed),
            "{label}"
        );

        let open = BreakerRow {
            state: "open".into(),
            outcomes: "f".repeat(1000),
            opened_at: Some(at(3)),
            last_degraded_at: None,
            updated_at: at(3),
            ..closed.clone()
        };
        ok(label, store.save_breaker(&open).await);
        let full = BreakerRow { channel: "orders.full".into(), ..closed.clone() };
        ok(label, store.save_breaker(&full).await);
        assert_eq!(ok(label, store.breakers().await), [full, open], "{label}: upserted, ordered by channel");

        let too_long = BreakerRow { outcomes: "f".repeat(1001), ..closed };
        let error = store.save_breaker(&too_long).await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("breakers.outcomes"), "{label}: {error}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn one_open_alert_per_key() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        let first = ok(label, store.raise_alert(&alert("stalled", Some(1)), at(0)).await);
        assert!(first.is_some(), "{label}");
        assert_eq!(ok(label, store.raise_alert(&alert("stalled", Some(1)), at(1)).await), None, "{label}");
        // No tid, another tid and another kind are other keys.
        let no_tid = ok(label, store.raise_alert(&alert("stalled", None), at(2)).await);
        let other_tid = ok(label, store.raise_alert(&alert("stalled", Some(2)), at(3)).await);
        let other_kind = ok(label, store.raise_alert(&alert("reauth", Some(1)), at(4)).await);
        assert!(no_tid.is_some() && other_tid.is_some() && other_kind.is_some(), "{label}");
        assert_eq!(ok(label, store.raise_alert(&alert("stalled", None), at(5)).await), None, "{label}");

        let open = ok(label, store.open_alerts().await);
        let ids: Vec<Option<i64>> = open.iter().map(|a| Some(a.id)).collect();
        assert_eq!(ids, [first, no_tid, other_tid, other_kind], "{label}: oldest first");
        assert_eq!(open[0].detail, "stalled Some(1)", "{label}: the first detail is kept");
        assert_eq!((open[0].tid, open[1].tid), (Some(1), None), "{label}");
        assert_eq!((open[0].created_at, open[0].resolved_at), (at(0), None), "{label}");

        assert_eq!(ok(label, store.resolve_alert("stalled", "taobao", "s1", Some(1), at(6)).await), 1, "{label}");
        assert_eq!(ok(label, store.resolve_alert("stalled", "taobao", "s1", Some(1), at(7)).await), 0, "{label}");
        assert_eq!(ok(label, store.open_alerts().await).len(), 3, "{label}");
        let again = ok(label, store.raise_alert(&alert("stalled", Some(1)), at(8)).await);
        assert!(again.is_some() && again != first, "{label}: a new alert {again:?} after {first:?}");
        assert_eq!(ok(label, store.open_alerts().await).last().map(|a| Some(a.id)), Some(again), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn concurrent_raises_store_one_alert() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        for tid in 0..5 {
            let key = alert("race", Some(tid));
            let (a, b) = tokio::join!(store.raise_alert(&key, at(0)), store.raise_alert(&key, at(0)));
            let raised = [ok(label, a), ok(label, b)];
            assert_eq!(raised.iter().flatten().count(), 1, "{label}: {raised:?}");
        }
        assert_eq!(ok(label, store.open_alerts().await).len(), 5, "{label}");
        ts.cleanup().await;
    }
}

fn anomaly(shop: &str, kind: &str, excerpt: String) -> NewAnomaly {
    NewAnomaly {
        run_id: Some("run-1".into()),
        platform: "taobao".into(),
        shop: shop.into(),
        method: "taobao.trades.sold.increment.get".into(),
        kind: kind.into(),
        excerpt,
    }
}

#[tokio::test]
async fn anomalies_are_cut_counted_and_listed() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        // 3-byte and 4-byte characters: a byte-wise cut would split one.
        let html = format!("<html>{}", "订单🚚".repeat(200));
        ok(
            label,
            store
                .record_anomalies(
                    &[anomaly("s2", "html", html.clone()), anomaly("s1", "empty_body", String::new())],
                    at(0),
                )
                .await,
        );
        let mut third = anomaly("s2", "html", "<html>".into());
        third.run_id = None;
        ok(label, store.record_anomalies(&[third], at(1)).await);
        ok(label, store.record_anomalies(&[], at(2)).await);

        let counts = ok(label, store.anomaly_counts().await);
        let expected = [
            ("taobao".to_owned(), "s1".to_owned(), "empty_body".to_owned(), 1),
            ("taobao".to_owned(), "s2".to_owned(), "html".to_owned(), 2),
        ];
        assert_eq!(counts, expected, "{label}");

        let recent = ok(label, store.recent_anomalies(2).await);
        let kinds: Vec<(&str, &str)> = recent.iter().map(|a| (a.shop.as_str(), a.kind.as_str())).collect();
        // Newest first; of equal times, the last recorded first.
        assert_eq!(kinds, [("s2", "html"), ("s1", "empty_body")], "{label}");
        assert_eq!((recent[0].run_id.as_deref(), recent[0].created_at), (None, at(1)), "{label}");
        let recent = ok(label, store.recent_anomalies(10).await);
        assert_eq!(recent.len(), 3, "{label}");
        let cut = recent.iter().find(|a| a.kind == "html" && a.run_id.is_some()).map(|a| a.excerpt.clone());
        let expected: String = html.chars().take(300).collect();
        assert_eq!(cut.as_deref(), Some(expected.as_str()), "{label}");
        assert_eq!(expected.chars().count(), 300, "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn reconciliations_round_trip_newest_window_first() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        let window = |start: i64, missing: u64| Reconciliation {
            run_id: "run-1".into(),
            platform: "taobao".into(),
            shop: "s1".into(),
            window_start: at(start),
            window_end: at(start + 60),
            platform_count: 120,
            stored_count: 118,
            refetched: 2,
            missing,
        };
        ok(label, store.record_reconciliation(&window(0, 0), at(200)).await);
        ok(label, store.record_reconciliation(&window(120, u64::MAX >> 1), at(201)).await);
        ok(label, store.record_reconciliation(&window(60, 1), at(202)).await);
        let other = Reconciliation { shop: "s2".into(), ..window(0, 0) };
        ok(label, store.record_reconciliation(&other, at(203)).await);

        assert_eq!(
            ok(label, store.reconciliations("taobao", "s1", 10).await),
            [window(120, u64::MAX >> 1), window(60, 1), window(0, 0)],
            "{label}"
        );
        assert_eq!(ok(label, store.reconciliations("taobao", "s1", 1).await), [window(120, u64::MAX >> 1)], "{label}");
        let too_big = store.record_reconciliation(&window(0, u64::MAX), at(204)).await;
        assert!(matches!(too_big, Err(StoreError::InvalidValue { .. })), "{label}: {too_big:?}");
        ts.cleanup().await;
    }
}

/// An order of `shop` created at `created`, without items.
fn order(shop: &str, tid: i64, created: DateTime<Utc>) -> Order {
    Order {
        platform: "taobao".into(),
        shop: shop.into(),
        tid,
        status: "WAIT_SELLER_SEND_GOODS".into(),
        order_type: "fixed".into(),
        created,
        modified: created,
        pay_time: None,
        payment: Money(100),
        buyer_nick: None,
        step_trade_status: None,
        items: Vec::new(),
        raw: json!({"tid": tid}),
    }
}

#[tokio::test]
async fn orders_are_counted_by_half_open_creation_window() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        let ms = Duration::milliseconds(1);
        let orders = [
            order("s1", 1, at(0) - ms),
            order("s1", 2, at(0)),
            order("s1", 3, at(30)),
            order("s1", 4, at(60) - ms),
            order("s1", 5, at(60)),
            order("s2", 6, at(30)),
        ];
        ok(label, store.save_orders(&orders, &[]).await);
        let count = |start, end| store.count_orders_created("taobao", "s1", start, end);
        assert_eq!(ok(label, count(at(0), at(60)).await), 3, "{label}: start in, end out");
        assert_eq!(ok(label, count(at(60), at(120)).await), 1, "{label}");
        assert_eq!(ok(label, count(at(-60), at(0)).await), 1, "{label}");
        assert_eq!(ok(label, count(at(30), at(30)).await), 0, "{label}: empty window");
        assert_eq!(ok(label, store.count_orders_created("taobao", "s3", at(0), at(60)).await), 0, "{label}");
        assert_eq!(ok(label, store.tids_created("taobao", "s1", at(0), at(60)).await), [2, 3, 4], "{label}");
        assert_eq!(ok(label, store.tids_created("taobao", "s2", at(0), at(60)).await), [6], "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn paused_runs_round_trip() {
    assert_eq!("paused".parse::<RunStatus>().ok(), Some(RunStatus::Paused));
    assert_eq!(RunStatus::Paused.as_str(), "paused");
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        let start = RunStart {
            id: "r1".into(),
            flow: "sync".into(),
            trigger: "schedule".into(),
            started_at: at(0),
            shop: None,
            worker: None,
        };
        ok(label, store.insert_run(&start).await);
        let finish = RunFinish {
            id: "r1".into(),
            status: RunStatus::Paused,
            finished_at: at(5),
            error: None,
            nodes: Vec::new(),
        };
        ok(label, store.finish_run(&finish).await);
        let runs = ok(label, store.recent_runs(Some("sync"), 10).await);
        assert_eq!(runs.len(), 1, "{label}");
        assert_eq!((runs[0].status, runs[0].finished_at), (RunStatus::Paused, Some(at(5))), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn stock_imports_set_counts_and_keep_what_is_frozen() {
    use orderflow::store::StockLevel;
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        let level = |sku: &str, on_hand, on_order| StockLevel { sku: sku.into(), on_hand, frozen: 0, on_order };
        store.import_stock(&[level("A-1", 10, 0), level("B-2", 0, 5)], Utc::now()).await.unwrap();
        store.import_stock(&[level("A-1", 7, 3)], Utc::now()).await.unwrap();
        let levels = store.stock_levels().await.unwrap();
        assert_eq!(levels.len(), 2, "{label}");
        assert_eq!((levels["A-1"].on_hand, levels["A-1"].on_order, levels["A-1"].available()), (7, 3, 7), "{label}");
        assert_eq!(levels["B-2"].on_order, 5, "{label}");
        let bad = store.import_stock(&[level("C-3", 1, 0), level("D-4", -1, 0)], Utc::now()).await;
        assert!(bad.is_err(), "{label}");
        assert!(!store.stock_levels().await.unwrap().contains_key("C-3"), "{label}: nothing half-written");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn calls_are_booked_one_after_another_across_stores_of_one_database() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        let interval = std::time::Duration::from_millis(500);
        let first = ok(label, store.book_calls("taobao", "key-1", 4, interval).await);
        assert_eq!(first.calls, 4, "{label}");
        assert!(
            first.first_in <= std::time::Duration::from_millis(100),
            "{label}: a fresh key goes at once: {first:?}"
        );
        // Another process on the same database books after the first's calls.
        let other = orderflow::store::Store::connect(&ts.url).await.unwrap();
        let second = ok(label, other.book_calls("taobao", "key-1", 4, interval).await);
        let after = second.first_in + std::time::Duration::from_millis(100);
        assert!(after >= interval * 4, "{label}: the second booking starts after the first's 4 calls: {second:?}");
        let elsewhere = ok(label, other.book_calls("taobao", "key-2", 1, interval).await);
        assert!(elsewhere.first_in <= std::time::Duration::from_millis(100), "{label}: another key has its own pace");
        other.close().await;
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn breakers_close_by_shop_or_channel() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        let open = |channel: &str| BreakerRow {
            platform: "taobao".into(),
            shop: "s1".into(),
            channel: channel.into(),
            state: "open".into(),
            outcomes: "x.x".into(),
            opened_at: Some(at(1)),
            last_degraded_at: Some(at(2)),
            updated_at: at(2),
        };
        ok(label, store.save_breaker(&open("orders.increment")).await);
        ok(label, store.save_breaker(&open("refunds.increment")).await);
        let one = ok(label, store.close_breakers("taobao", "s1", Some("refunds.increment"), at(3)).await);
        assert_eq!(one, ["refunds.increment"], "{label}");
        let row = ok(label, store.load_breaker("taobao", "s1", "refunds.increment").await).unwrap();
        assert_eq!(
            (row.state.as_str(), row.outcomes.as_str(), row.opened_at, row.updated_at),
            ("closed", "", None, at(3))
        );
        let rest = ok(label, store.close_breakers("taobao", "s1", None, at(4)).await);
        assert_eq!(rest, ["orders.increment"], "{label}: the closed one is left alone");
        assert!(ok(label, store.close_breakers("taobao", "s2", None, at(4)).await).is_empty(), "{label}");
        ts.cleanup().await;
    }
}
