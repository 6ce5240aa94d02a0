//! End to end against the simulator: backfill twelve weeks of a busy shop,
//! then let `restock_suggest` forecast every SKU. The simulated shop has a
//! weekly pattern under its noise, so the chosen models must beat the naive
//! "same day last week" on the best sellers, and the table and the CSV must
//! say the same.

mod support;

use chrono::{NaiveDate, TimeZone, Utc};
use orderflow::platforms::{Money, Order, OrderItem};
use orderflow::sim::SimConfig;
use orderflow::store::{RestockSuggestion, StockLevel, Store};
use serde_json::json;
use support::rig::Rig;
use support::test_stores;

const BACKFILL: &str = "flow: backfill\nshop: tmall-main\nnodes:\n  full: {use: fetch_full, with: {days: 85, page_size: 100}}\n  fresh: {use: dedupe, input: full}\n  save: {use: store_orders, input: fresh}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chosen_forecasts_beat_the_naive_baseline_and_table_and_csv_agree() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("restock.db").display())).await.unwrap();
    let sim = SimConfig { seed: 11, orders: 20_000, days: 85, mutations_per_sec: 0.0, ..SimConfig::default() };
    let rig = Rig::new(sim, store.clone()).await;
    rig.run(&rig.flow("backfill.yaml", BACKFILL)).await;

    // Stock for the best seller, so the suggestion has something to subtract
    // (an import sets on hand and on order; nothing is frozen).
    let tz = chrono_tz::Asia::Shanghai;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let sales = store.daily_sales("taobao", "tmall-main", tz, today - chrono::Days::new(56), 56).await.unwrap();
    let mut busiest: Vec<(&String, u64)> = sales.iter().map(|(sku, days)| (sku, days.iter().sum())).collect();
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let top = busiest[0].0.clone();
    let level = StockLevel { sku: top.clone(), on_hand: 120, frozen: 0, on_order: 30 };
    store.import_stock(&[level], Utc::now()).await.unwrap();

    let csv = dir.path().join("out").join("restock.csv");
    let flow = format!(
        "flow: restock\nshop: tmall-main\nnodes:\n  suggest: {{use: restock_suggest, with: {{history_days: 56, lead_time_days: 7, csv: {}}}}}\n",
        csv.display()
    );
    let report = rig.run(&rig.flow("restock.yaml", &flow)).await;
    let suggestions = store.restock_suggestions(&report.run_id).await.unwrap();
    assert_eq!(suggestions.len(), sales.len(), "one suggestion per SKU sold");
    let by_sku: std::collections::HashMap<&str, _> = suggestions.iter().map(|s| (s.sku.as_str(), s)).collect();

    println!("{:<10} {:>6} {:<14} {:>10} {:>10} {:>9}", "sku", "units", "model", "mape", "naive", "suggested");
    for (sku, units) in busiest.iter().take(8) {
        let s = by_sku[sku.as_str()];
        println!(
            "{:<10} {:>6} {:<14} {:>9.1}% {:>9.1}% {:>9}",
            sku,
            units,
            s.model,
            s.mape_model.unwrap_or(f64::NAN),
            s.mape_naive.unwrap_or(f64::NAN),
            s.suggested
        );
    }
    for (sku, _) in busiest.iter().take(3) {
        let s = by_sku[sku.as_str()];
        let (model, naive) = (s.mape_model.unwrap(), s.mape_naive.unwrap());
        assert!(model < naive, "{sku}: {} {model:.1} % is not below naive {naive:.1} %", s.model);
        assert_ne!(s.model, "naive");
    }

    // The formula, on the SKU with stock.
    let s = by_sku[top.as_str()];
    assert_eq!((s.available, s.on_order), (120, 30));
    let expected = (s.demand_over_lead + s.safety_stock as f64 - 150.0).ceil().max(0.0) as i64;
    assert_eq!(s.suggested, expected);
    assert!((s.demand_over_lead - s.forecast_7d.iter().sum::<f64>()).abs() < 1e-9, "7 days of lead time");
    assert!(s.safety_stock > 0);

    // The CSV: a header, then the same SKUs and numbers, busiest first.
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("sku,model,mape_model,mape_naive,forecast_7d,"));
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
    assert_eq!(rows.len(), suggestions.len());
    assert_eq!(rows[0][0], top, "busiest first");
    for row in &rows {
        let s = by_sku[row[0]];
        assert_eq!(row[1], s.model);
        assert_eq!(row.last().copied(), Some(s.suggested.to_string().as_str()), "{}", row[0]);
    }
    let leftovers: Vec<_> = std::fs::read_dir(csv.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left behind");
}

fn line(oid: i64, outer: Option<&str>, sku_id: Option<&str>, num: i64, refund: Option<&str>) -> OrderItem {
    OrderItem {
        oid,
        num_iid: Some(600),
        sku_id: sku_id.map(Into::into),
        outer_sku_id: outer.map(Into::into),
        title: None,
        num,
        price: Money(100),
        payment: Money(100 * num),
        refund_status: refund.map(Into::into),
        refund_id: refund.map(|_| oid),
    }
}

fn sale(tid: i64, created: chrono::DateTime<Utc>, status: &str, items: Vec<OrderItem>) -> Order {
    Order {
        platform: "taobao".into(),
        shop: "s1".into(),
        tid,
        status: status.into(),
        order_type: "fixed".into(),
        created,
        modified: created,
        pay_time: Some(created),
        payment: Money(100),
        buyer_nick: None,
        step_trade_status: None,
        items,
        raw: json!({"tid": tid}),
    }
}

#[tokio::test]
async fn daily_sales_count_sold_lines_by_local_day_and_suggestions_round_trip() {
    let tz = chrono_tz::Asia::Shanghai;
    // 2024-05-01 00:30 in Shanghai is still April 30 in UTC.
    let day1 = tz.with_ymd_and_hms(2024, 5, 1, 0, 30, 0).unwrap().with_timezone(&Utc);
    let day2 = tz.with_ymd_and_hms(2024, 5, 2, 23, 59, 0).unwrap().with_timezone(&Utc);
    let before = tz.with_ymd_and_hms(2024, 4, 30, 23, 59, 0).unwrap().with_timezone(&Utc);
    let orders = vec![
        sale(1, day1, "WAIT_SELLER_SEND_GOODS", vec![line(11, Some("A"), Some("1"), 2, None)]),
        // The merchant's code is missing: the platform's SKU id stands in.
        sale(2, day1, "TRADE_FINISHED", vec![line(21, None, Some("1001"), 1, Some("NO_REFUND"))]),
        sale(
            3,
            day2,
            "TRADE_FINISHED",
            vec![
                line(31, Some("A"), None, 3, Some("CLOSED")),
                line(32, Some("A"), None, 5, Some("SUCCESS")),
                line(33, Some("A"), None, 7, Some("WAIT_SELLER_AGREE")),
            ],
        ),
        sale(4, day2, "TRADE_CLOSED", vec![line(41, Some("A"), None, 9, None)]),
        sale(5, day2, "TRADE_CLOSED_BY_TAOBAO", vec![line(51, Some("A"), None, 9, None)]),
        sale(6, before, "TRADE_FINISHED", vec![line(61, Some("A"), None, 9, None)]),
    ];
    let first_day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    for test_store in test_stores().await {
        let (store, label) = (&test_store.store, test_store.label);
        store.save_orders(&orders, &[]).await.unwrap();
        let sales = store.daily_sales("taobao", "s1", tz, first_day, 3).await.unwrap();
        assert_eq!(sales.len(), 2, "{label}: {sales:?}");
        assert_eq!(sales["A"], vec![2, 3, 0], "{label}");
        assert_eq!(sales["1001"], vec![1, 0, 0], "{label}");

        let suggestion = RestockSuggestion {
            run_id: "r1".into(),
            platform: "taobao".into(),
            shop: "s1".into(),
            sku: "A".into(),
            model: "seasonal_mean".into(),
            mape_model: None,
            mape_naive: Some(12.5),
            forecast_7d: vec![1.5; 7],
            lead_time_days: 7,
            demand_over_lead: 10.5,
            safety_stock: 3,
            available: 2,
            on_order: 0,
            suggested: 12,
            created_at: Utc.with_ymd_and_hms(2024, 5, 3, 6, 0, 0).unwrap(),
        };
        store.record_restock_suggestions(std::slice::from_ref(&suggestion)).await.unwrap();
        // A retried run replaces its rows instead of adding to them.
        store.record_restock_suggestions(std::slice::from_ref(&suggestion)).await.unwrap();
        assert_eq!(store.restock_suggestions("r1").await.unwrap(), vec![suggestion], "{label}");
        test_store.cleanup().await;
    }
}
