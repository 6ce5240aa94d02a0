//! Stock freezes: `apply_stock_changes` on every backend (repeats and
//! concurrent runs move stock once), and the presale flow end to end against
//! the simulator.

mod support;

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use orderflow::sim::{SimConfig, TruthOrder};
use orderflow::store::{Cursor, FreezeState, MovementKind, OrderLine, StockChange, StockLevel, Store};
use orderflow::sync::{INCREMENT_STREAM, flow_stream, modified_until};
use serde_json::json;
use support::rig::{Rig, SHOP};

fn line(oid: i64) -> OrderLine {
    OrderLine { platform: "taobao".into(), shop: "s".into(), tid: oid / 10, oid }
}

fn freeze(oid: i64, sku: &str, quantity: i64) -> StockChange {
    StockChange::Freeze { line: line(oid), sku: sku.into(), quantity }
}

async fn levels(store: &Store) -> HashMap<String, (i64, i64)> {
    store.stock_levels().await.unwrap().into_iter().map(|(sku, l)| (sku, (l.on_hand, l.frozen))).collect()
}

#[tokio::test]
async fn changes_move_stock_only_from_the_right_state_and_never_below_zero() {
    for t in support::test_stores().await {
        let (store, label) = (&t.store, t.label);
        let count = StockLevel { sku: "A".into(), on_hand: 5, frozen: 0, on_order: 0 };
        store.import_stock(&[count], Utc::now()).await.unwrap();

        let applied = store.apply_stock_changes(&[freeze(11, "A", 3), freeze(11, "A", 3)], Some("r1")).await.unwrap();
        assert_eq!(applied.movements.len(), 1, "{label}: a line freezes once");
        assert!(applied.new_skus.is_empty(), "{label}");
        assert_eq!(levels(store).await["A"], (5, 3), "{label}");

        let again = store.apply_stock_changes(&[freeze(11, "A", 3)], Some("r2")).await.unwrap();
        assert!(again.movements.is_empty(), "{label}: a second run freezes nothing");

        for _ in 0..2 {
            store.apply_stock_changes(&[StockChange::Release(line(11))], None).await.unwrap();
        }
        assert_eq!(levels(store).await["A"], (5, 0), "{label}: released once");
        let late = [StockChange::Deduct(line(11)), freeze(11, "A", 3), StockChange::Release(line(11))];
        assert!(
            store.apply_stock_changes(&late, None).await.unwrap().movements.is_empty(),
            "{label}: released is final"
        );
        assert_eq!(levels(store).await["A"], (5, 0), "{label}");

        // An unknown SKU gets a row with nothing on hand; shipping it cannot
        // take on_hand below zero, and shipping twice deducts once.
        let applied = store.apply_stock_changes(&[freeze(21, "B", 2)], Some("r3")).await.unwrap();
        assert_eq!(applied.new_skus, ["B"], "{label}");
        let shipped = [StockChange::Deduct(line(21)), StockChange::Deduct(line(21)), StockChange::Release(line(21))];
        let applied = store.apply_stock_changes(&shipped, Some("r4")).await.unwrap();
        assert_eq!(applied.movements.len(), 1, "{label}");
        assert_eq!(levels(store).await["B"], (0, 0), "{label}");
        // A freeze and its deduction in one call.
        let applied =
            store.apply_stock_changes(&[freeze(31, "A", 2), StockChange::Deduct(line(31))], None).await.unwrap();
        assert_eq!(
            applied.movements.iter().map(|m| m.kind).collect::<Vec<_>>(),
            [MovementKind::Freeze, MovementKind::Deduct]
        );
        assert_eq!(levels(store).await["A"], (3, 0), "{label}");

        let states: Vec<(i64, FreezeState)> =
            store.freezes_of("taobao", "s", None).await.unwrap().iter().map(|f| (f.line.oid, f.state)).collect();
        assert_eq!(
            states,
            [(11, FreezeState::Released), (21, FreezeState::Deducted), (31, FreezeState::Deducted)],
            "{label}"
        );
        let moves = store.stock_movements("taobao", "s", Some(1)).await.unwrap();
        let moves: Vec<(MovementKind, i64, Option<&str>)> =
            moves.iter().map(|m| (m.kind, m.quantity, m.run_id.as_deref())).collect();
        assert_eq!(moves, [(MovementKind::Freeze, 3, Some("r1")), (MovementKind::Release, 3, None)], "{label}");

        let bad = store.apply_stock_changes(&[freeze(41, "A", 0)], None).await.unwrap_err();
        assert!(bad.to_string().contains("quantity"), "{label}: {bad}");
        t.cleanup().await;
    }
}

#[tokio::test]
async fn two_runs_applying_the_same_changes_at_once_freeze_once() {
    for t in support::test_stores().await {
        let label = t.label;
        let other = Store::connect(&t.url).await.unwrap();
        for round in 0..5_i64 {
            let changes: Vec<StockChange> =
                (0..6).map(|i| freeze(1000 + round * 10 + i, ["X", "Y"][(i % 2) as usize], 1 + i)).collect();
            let (a, b) = tokio::join!(
                t.store.apply_stock_changes(&changes, Some("a")),
                other.apply_stock_changes(&changes, Some("b"))
            );
            let moved = a.unwrap().movements.len() + b.unwrap().movements.len();
            assert_eq!(moved, 6, "{label}: round {round}: every line frozen once");
            let releases: Vec<StockChange> = changes.iter().map(|c| StockChange::Release(c.line().clone())).collect();
            let half = &releases[..3];
            let (a, b) =
                tokio::join!(t.store.apply_stock_changes(half, Some("a")), other.apply_stock_changes(half, Some("b")));
            assert_eq!(a.unwrap().movements.len() + b.unwrap().movements.len(), 3, "{label}: round {round}");
        }
        let frozen: i64 = t
            .store
            .freezes_of("taobao", "s", None)
            .await
            .unwrap()
            .iter()
            .filter(|f| f.state == FreezeState::Frozen)
            .map(|f| f.quantity)
            .sum();
        let levels = levels(&t.store).await;
        assert_eq!(levels["X"].1 + levels["Y"].1, frozen, "{label}: stock.frozen is the sum of the frozen rows");
        assert_eq!(t.store.stock_movements("taobao", "s", None).await.unwrap().len(), 5 * 9, "{label}");
        other.close().await;
        t.cleanup().await;
    }
}

/// What a paid presale line should hold frozen: its SKU and units, by oid.
fn expected_frozen(truth: &[TruthOrder]) -> BTreeMap<i64, (String, i64)> {
    let mut expected = BTreeMap::new();
    for order in truth.iter().filter(|o| o.order_type == "step") {
        let paid_stage =
            matches!(order.step_trade_status.as_deref(), Some("FRONT_PAID_FINAL_NOPAID" | "FRONT_PAID_FINAL_PAID"))
                || order.status == "WAIT_SELLER_SEND_GOODS";
        let moved_on = matches!(
            order.status.as_str(),
            "TRADE_CLOSED"
                | "TRADE_CLOSED_BY_TAOBAO"
                | "WAIT_BUYER_CONFIRM_GOODS"
                | "TRADE_BUYER_SIGNED"
                | "TRADE_FINISHED"
        );
        if !paid_stage || moved_on {
            continue;
        }
        for item in &order.items {
            let refunding =
                item.refund_status.as_deref().is_some_and(|s| !matches!(s, "CLOSED" | "SELLER_REFUSE_BUYER"));
            if !refunding {
                expected.insert(item.oid, (item.outer_sku_id.clone(), item.num));
            }
        }
    }
    expected
}

/// Asserts every frozen line is one the truth expects, frozen once, and that
/// `stock.frozen` is the sum of the frozen rows for every SKU.
async fn assert_frozen(rig: &Rig, expected: &BTreeMap<i64, (String, i64)>, label: &str) {
    let freezes = rig.store.freezes_of("taobao", SHOP, None).await.unwrap();
    let frozen: BTreeMap<i64, (String, i64)> = freezes
        .iter()
        .filter(|f| f.state == FreezeState::Frozen)
        .map(|f| (f.line.oid, (f.sku.clone(), f.quantity)))
        .collect();
    assert_eq!(&frozen, expected, "{label}: frozen lines");
    let mut by_sku: HashMap<&str, i64> = HashMap::new();
    for (sku, quantity) in frozen.values() {
        *by_sku.entry(sku).or_default() += quantity;
    }
    let movements = rig.store.stock_movements("taobao", SHOP, None).await.unwrap();
    let mut freezes_per_line: HashMap<i64, usize> = HashMap::new();
    for m in movements.iter().filter(|m| m.kind == MovementKind::Freeze) {
        *freezes_per_line.entry(m.line.oid).or_default() += 1;
    }
    assert!(freezes_per_line.values().all(|n| *n == 1), "{label}: a line froze twice");
    for (sku, level) in rig.store.stock_levels().await.unwrap() {
        assert!(level.frozen >= 0 && level.on_hand >= 0, "{label}: {sku} negative: {level:?}");
        assert_eq!(level.frozen, by_sku.get(sku.as_str()).copied().unwrap_or(0), "{label}: stock.frozen of {sku}");
    }
}

const BACKFILL: &str = "flow: presale-backfill\nshop: tmall-main\nnodes:\n  backfill:\n    use: fetch_full\n    with:\n      days: 40\n      page_size: 100\n  save:\n    use: store_orders\n    input: backfill\n  freeze:\n    use: stock_freeze\n    input: save\n";

#[tokio::test]
async fn the_presale_flow_freezes_each_paid_line_once_and_a_refund_releases_it() {
    let store = support::sqlite().await;
    let sim = SimConfig { seed: 5, orders: 1_500, days: 30, mutations_per_sec: 0.0, ..SimConfig::default() };
    let rig = Rig::new(sim, store.store.clone()).await;
    let truth = rig.sim.truth().orders;
    let skus: BTreeMap<String, i64> =
        truth.iter().flat_map(|o| o.items.iter().map(|i| (i.outer_sku_id.clone(), 1_000))).collect();
    let counts: Vec<StockLevel> =
        skus.into_iter().map(|(sku, on_hand)| StockLevel { sku, on_hand, frozen: 0, on_order: 0 }).collect();
    rig.store.import_stock(&counts, Utc::now()).await.unwrap();

    rig.run(&rig.flow("backfill.yaml", BACKFILL)).await;
    let flow = rig.example("presale-stock-freeze.yaml");
    for _ in 0..3 {
        rig.run(&flow).await;
    }
    let expected = expected_frozen(&truth);
    assert!(expected.len() >= 5, "the shop has paid presale lines: {}", expected.len());
    assert_frozen(&rig, &expected, "after three runs").await;

    // The buyer of a frozen line asks for a refund: the next run gives it back.
    // (The simulator refunds only orders paid in full, not those with just a deposit.)
    let order_of = |oid: i64| truth.iter().find(|o| o.items.iter().any(|i| i.oid == oid)).expect("its order");
    let (&oid, (sku, quantity)) = expected
        .iter()
        .find(|(oid, _)| order_of(**oid).status == "WAIT_SELLER_SEND_GOODS")
        .expect("a frozen line paid in full");
    let tid = order_of(oid).tid;
    let frozen_before = rig.store.stock_levels().await.unwrap()[sku].frozen;
    rig.sim.open_refund(tid, oid).expect("a paid line can be refunded");
    // Increment windows end a second in the past: let the change settle.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    rig.run(&flow).await;
    let after = expected_frozen(&rig.sim.truth().orders);
    assert!(!after.contains_key(&oid), "the truth releases it too");
    assert_frozen(&rig, &after, "after the refund").await;
    assert_eq!(rig.store.stock_levels().await.unwrap()[sku].frozen, frozen_before - quantity);
    let moves: Vec<MovementKind> = rig
        .store
        .stock_movements("taobao", SHOP, Some(tid))
        .await
        .unwrap()
        .iter()
        .filter(|m| m.line.oid == oid)
        .map(|m| m.kind)
        .collect();
    assert_eq!(moves, [MovementKind::Freeze, MovementKind::Release]);
    rig.run(&flow).await;
    assert_frozen(&rig, &after, "a run after").await;
    rig.sim.shutdown().await;
    store.cleanup().await;
}

/// `taobao-incremental` and `presale-stock-freeze` on one shop, as `serve
/// --flows flows/` runs them: each keeps its own cursor, so each reads every
/// change, and the presale flow moves stock for orders the other flow stored
/// first. They start from the cursor both shared before cursors were per flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incremental_and_presale_flows_run_together_and_every_presale_order_freezes_stock() {
    let store = support::sqlite().await;
    let sim = SimConfig { seed: 11, orders: 1_200, days: 3, mutations_per_sec: 0.0, ..SimConfig::default() };
    let rig = Rig::new(sim, store.store.clone()).await;
    let truth = rig.sim.truth().orders;
    let skus: BTreeMap<String, i64> =
        truth.iter().flat_map(|o| o.items.iter().map(|i| (i.outer_sku_id.clone(), 1_000))).collect();
    let counts: Vec<StockLevel> =
        skus.into_iter().map(|(sku, on_hand)| StockLevel { sku, on_hand, frozen: 0, on_order: 0 }).collect();
    rig.store.import_stock(&counts, Utc::now()).await.unwrap();
    // The one increment cursor of the shop, as a database from before
    // cursors were per flow holds it: both flows start there.
    let shared = Cursor {
        platform: "taobao".into(),
        shop: SHOP.into(),
        stream: INCREMENT_STREAM.into(),
        value: json!({ "modified_until": rig.sim.anchor() - chrono::Duration::days(4) }),
    };
    rig.store.save_orders(&[], &[shared]).await.unwrap();

    let incremental = rig.example("taobao-incremental.yaml");
    let presale = rig.example("presale-stock-freeze.yaml");
    for round in 0..3 {
        if round > 0 {
            rig.sim.mutate_now(150);
            // Increment windows end a second in the past: let the changes settle.
            tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
        }
        let (a, b) = tokio::join!(rig.run(&incremental), rig.run(&presale));
        let presale_read = b.nodes.iter().find(|n| n.node_id == "changed").map(|n| n.records_out);
        let incremental_read = a.nodes.iter().find(|n| n.node_id == "changed").map(|n| n.records_out);
        assert!(
            presale_read > Some(0),
            "round {round}: the presale flow read changes ({incremental_read:?} by the other)"
        );
    }

    let expected = expected_frozen(&rig.sim.truth().orders);
    assert!(expected.len() >= 5, "the shop has paid presale lines: {}", expected.len());
    assert_frozen(&rig, &expected, "both flows together").await;
    rig.assert_matches_truth(&rig.store, "both flows together").await;
    for flow in ["taobao-incremental", "presale-stock-freeze"] {
        let stream = flow_stream(INCREMENT_STREAM, flow, "changed");
        let cursor = rig.store.load_cursor("taobao", SHOP, &stream).await.unwrap();
        let until = cursor.as_ref().and_then(modified_until).unwrap_or_else(|| panic!("{stream}: {cursor:?}"));
        assert!(Utc::now() - until < chrono::Duration::minutes(1), "{stream} is at {until}");
    }
    rig.sim.shutdown().await;
    store.cleanup().await;
}
