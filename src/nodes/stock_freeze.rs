//! `stock_freeze`: presale orders reserve stock when paid, give it back when
//! refunded or closed, and take it out of the warehouse when shipped.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

use super::{BuildContext, BuildError, Built, NodeContext, NodeError, NodeKind, Output, Role, Transform};
use crate::platforms::{Order, OrderItem, Refund};
use crate::record::{Batch, Record};
use crate::store::{OrderLine, StockChange};
use crate::sync::record_order;

/// Freezes stock for paid presale order lines, and releases or deducts it as
/// the orders move on (table `stock`, see docs/store.md). Passes its records
/// on unchanged. Put it after `store_orders`.
///
/// Each order line is one freeze in `stock_freezes`, which moves only
/// forward: *none* → `frozen` → `released` or `deducted`. For every order:
///
/// - closed (`TRADE_CLOSED`, `TRADE_CLOSED_BY_TAOBAO`) or its deposit forfeited
///   (`FRONT_PAID_FRONT_FORFEITED`): every line is **released**;
/// - shipped (`WAIT_BUYER_CONFIRM_GOODS`, `TRADE_BUYER_SIGNED`,
///   `TRADE_FINISHED`): every line is **deducted** (its units leave `frozen`
///   and `on_hand`);
/// - paid at least its deposit (`step_trade_status` `FRONT_PAID_FINAL_NOPAID`
///   or `FRONT_PAID_FINAL_PAID`, or status `WAIT_SELLER_SEND_GOODS` or
///   `SELLER_CONSIGNED_PART`): every line is **frozen** (`num` units added to
///   `frozen`);
/// - not paid yet: nothing.
///
/// Whatever the order's state, a line whose `refund_status` says a refund is
/// under way or succeeded (`WAIT_SELLER_AGREE`, `WAIT_BUYER_RETURN_GOODS`,
/// `WAIT_SELLER_CONFIRM_GOODS`, `SUCCESS`) is **released** instead; a refused
/// (`SELLER_REFUSE_BUYER`) or closed refund changes nothing. A refund record
/// (one with a `refund_id`, as `fetch_refunds` sends) releases its line by the
/// same rule.
///
/// A move from the wrong state does nothing, so processing an order again,
/// or from two runs at once, moves stock once; and a line released once never
/// freezes again, even if its refund is later refused. A line first seen
/// shipped was never frozen, so nothing is deducted for it. A SKU the `stock`
/// table does not know gets a row with nothing on hand (and a warning in the
/// log), so its reservation is kept until stock is imported.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockFreezeSettings {
    /// The SKU field a line reserves stock under; when the line lacks it, the
    /// other field, and then `num_iid:<product id>`. The merchant's own code
    /// (`outer_sku_id`) is what `orderflow stock import` files usually hold.
    #[serde(default)]
    pub sku: SkuField,
    /// Only presale orders (`type` `step`, or with a `step_trade_status`)
    /// reserve stock; other orders pass untouched. Set to false to reserve
    /// stock for every paid order.
    #[serde(default = "default_true")]
    pub presale_only: bool,
}

/// Which field of an order line names its SKU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkuField {
    /// The merchant's SKU code.
    #[default]
    OuterSkuId,
    /// The platform's SKU id.
    SkuId,
}

fn default_true() -> bool {
    true
}

/// The `stock_freeze` node type.
pub struct StockFreeze;

impl NodeKind for StockFreeze {
    const TYPE: &'static str = "stock_freeze";
    const ROLE: Role = Role::Transform;
    type Settings = StockFreezeSettings;

    fn example() -> &'static str {
        "freeze:\n  use: stock_freeze\n  input: save\n  with:\n    sku: outer_sku_id\n    presale_only: true\n"
    }

    fn output() -> Output {
        Output::unchanged()
    }

    fn build(settings: StockFreezeSettings, _ctx: &BuildContext) -> Result<Built, BuildError> {
        Ok(Built::Transform(Box::new(StockFreezeTransform { settings })))
    }
}

struct StockFreezeTransform {
    settings: StockFreezeSettings,
}

#[async_trait]
impl Transform for StockFreezeTransform {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        let mut changes = Vec::new();
        for record in &batch {
            changes.extend(changes_of(record, &self.settings).map_err(NodeError::permanent)?);
        }
        // One call, one transaction: the batch's stock moves all or not at all.
        let applied = ctx.store.apply_stock_changes(&changes, Some(&ctx.run_id)).await?;
        if !applied.new_skus.is_empty() {
            tracing::warn!(node_id = %ctx.node_id, skus = ?applied.new_skus, "Froze stock of SKUs the stock table did not hold: import their counts.");
        }
        tracing::debug!(node_id = %ctx.node_id, changes = changes.len(), movements = applied.movements.len(), "Stock moved.");
        Ok(batch)
    }
}

/// The stock changes one record asks for: an order's or a refund's.
fn changes_of(record: &Record, settings: &StockFreezeSettings) -> Result<Vec<StockChange>, String> {
    if record.fields.contains_key("refund_id") {
        let json = Json::Object(record.fields.clone());
        let refund: Refund = serde_path_to_error::deserialize(json).map_err(|e| {
            let id = record.fields.get("refund_id").map(Json::to_string).unwrap_or_default();
            format!("record (refund_id {id}) is not a refund: {} at `{}`", e.inner(), e.path())
        })?;
        return Ok(refund_changes(&refund));
    }
    Ok(order_changes(&record_order(record)?, settings))
}

/// A refund releases its line while it is under way or once it succeeded.
fn refund_changes(refund: &Refund) -> Vec<StockChange> {
    if releases(&refund.status) {
        let line = OrderLine {
            platform: refund.platform.clone(),
            shop: refund.shop.clone(),
            tid: refund.tid,
            oid: refund.oid,
        };
        vec![StockChange::Release(line)]
    } else {
        Vec::new()
    }
}

/// Whether a refund in `status` gives the line's stock back: every status but
/// the refused and closed ones (TOP-API.md), and any status TOP may add,
/// because keeping stock frozen for goods going back is the costlier mistake.
fn releases(status: &str) -> bool {
    !matches!(status, "" | "NO_REFUND" | "CLOSED" | "SELLER_REFUSE_BUYER")
}

/// What an order's state asks of each of its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Unpaid,
    Paid,
    Shipped,
    Closed,
}

fn stage(order: &Order) -> Stage {
    let step = order.step_trade_status.as_deref();
    match order.status.as_str() {
        "TRADE_CLOSED" | "TRADE_CLOSED_BY_TAOBAO" => Stage::Closed,
        _ if step == Some("FRONT_PAID_FRONT_FORFEITED") => Stage::Closed,
        "WAIT_BUYER_CONFIRM_GOODS" | "TRADE_BUYER_SIGNED" | "TRADE_FINISHED" => Stage::Shipped,
        "WAIT_SELLER_SEND_GOODS" | "SELLER_CONSIGNED_PART" => Stage::Paid,
        _ if matches!(step, Some("FRONT_PAID_FINAL_NOPAID" | "FRONT_PAID_FINAL_PAID")) => Stage::Paid,
        _ => Stage::Unpaid,
    }
}

fn is_presale(order: &Order) -> bool {
    order.order_type == "step" || order.step_trade_status.is_some()
}

fn order_changes(order: &Order, settings: &StockFreezeSettings) -> Vec<StockChange> {
    if settings.presale_only && !is_presale(order) {
        return Vec::new();
    }
    let stage = stage(order);
    if stage == Stage::Unpaid {
        return Vec::new();
    }
    order
        .items
        .iter()
        .map(|item| {
            let line =
                OrderLine { platform: order.platform.clone(), shop: order.shop.clone(), tid: order.tid, oid: item.oid };
            let refunded = item.refund_status.as_deref().is_some_and(releases);
            match stage {
                Stage::Closed => StockChange::Release(line),
                _ if refunded => StockChange::Release(line),
                Stage::Shipped => StockChange::Deduct(line),
                _ => StockChange::Freeze { line, sku: sku_of(item, settings.sku), quantity: item.num },
            }
        })
        .collect()
}

/// The line's SKU: the chosen field, else the other, else the product.
fn sku_of(item: &OrderItem, field: SkuField) -> String {
    let present = |value: &Option<String>| value.as_deref().filter(|v| !v.is_empty()).map(str::to_owned);
    let (first, second) = match field {
        SkuField::OuterSkuId => (&item.outer_sku_id, &item.sku_id),
        SkuField::SkuId => (&item.sku_id, &item.outer_sku_id),
    };
    present(first)
        .or_else(|| present(second))
        .unwrap_or_else(|| format!("num_iid:{}", item.num_iid.map_or_else(|| "?".to_owned(), |id| id.to_string())))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::nodes::testing::{assert_output, build_ctx, run_transform_in};
    use crate::store::{FreezeState, MovementKind, Store};

    fn settings() -> StockFreezeSettings {
        serde_json::from_value(json!({})).unwrap()
    }

    fn order(status: &str, step: Option<&str>, refund_status: Option<&str>) -> Json {
        json!({"platform": "taobao", "shop": "s", "tid": 10, "status": status, "type": "step",
            "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:05Z", "pay_time": null,
            "payment": "12.30", "buyer_nick": "b", "step_trade_status": step, "raw": {},
            "items": [
                {"oid": 11, "num_iid": 1, "sku_id": "9", "outer_sku_id": "A-1", "title": "t", "num": 2,
                 "price": "6.15", "payment": "12.30", "refund_status": refund_status, "refund_id": null},
                {"oid": 12, "num_iid": 1, "sku_id": "8", "outer_sku_id": null, "title": "t", "num": 1,
                 "price": "6.15", "payment": "6.15", "refund_status": null, "refund_id": null}]})
    }

    fn kinds(changes: &[StockChange]) -> Vec<&'static str> {
        changes
            .iter()
            .map(|c| match c {
                StockChange::Freeze { .. } => "freeze",
                StockChange::Release(_) => "release",
                StockChange::Deduct(_) => "deduct",
            })
            .collect()
    }

    fn changes(json: Json, settings: &StockFreezeSettings) -> Vec<StockChange> {
        changes_of(&Record::from_value(json).unwrap(), settings).unwrap()
    }

    #[test]
    fn the_order_state_decides_freeze_release_or_deduct() {
        let s = settings();
        let cases = [
            ("WAIT_BUYER_PAY", Some("FRONT_NOPAID_FINAL_NOPAID"), None, vec![]),
            ("WAIT_BUYER_PAY", Some("FRONT_PAID_FINAL_NOPAID"), None, vec!["freeze", "freeze"]),
            ("WAIT_SELLER_SEND_GOODS", Some("FRONT_PAID_FINAL_PAID"), None, vec!["freeze", "freeze"]),
            (
                "WAIT_SELLER_SEND_GOODS",
                Some("FRONT_PAID_FINAL_PAID"),
                Some("WAIT_SELLER_AGREE"),
                vec!["release", "freeze"],
            ),
            ("WAIT_SELLER_SEND_GOODS", Some("FRONT_PAID_FINAL_PAID"), Some("SUCCESS"), vec!["release", "freeze"]),
            ("WAIT_SELLER_SEND_GOODS", Some("FRONT_PAID_FINAL_PAID"), Some("CLOSED"), vec!["freeze", "freeze"]),
            ("WAIT_SELLER_SEND_GOODS", None, Some("SELLER_REFUSE_BUYER"), vec!["freeze", "freeze"]),
            ("WAIT_BUYER_CONFIRM_GOODS", Some("FRONT_PAID_FINAL_PAID"), None, vec!["deduct", "deduct"]),
            ("TRADE_FINISHED", Some("FRONT_PAID_FINAL_PAID"), Some("SUCCESS"), vec!["release", "deduct"]),
            ("TRADE_CLOSED", Some("FRONT_PAID_FINAL_PAID"), None, vec!["release", "release"]),
            ("TRADE_CLOSED_BY_TAOBAO", Some("FRONT_NOPAID_FINAL_NOPAID"), None, vec!["release", "release"]),
            ("WAIT_BUYER_PAY", Some("FRONT_PAID_FRONT_FORFEITED"), None, vec!["release", "release"]),
        ];
        for (status, step, refund, expected) in cases {
            let got = changes(order(status, step, refund), &s);
            assert_eq!(kinds(&got), expected, "{status} {step:?} {refund:?}");
        }
    }

    #[test]
    fn only_presale_orders_unless_told_otherwise() {
        let mut fixed = order("WAIT_SELLER_SEND_GOODS", None, None);
        fixed["type"] = json!("fixed");
        assert!(changes(fixed.clone(), &settings()).is_empty());
        let every = StockFreezeSettings { presale_only: false, ..settings() };
        assert_eq!(kinds(&changes(fixed, &every)), ["freeze", "freeze"]);
    }

    #[test]
    fn the_sku_is_the_chosen_field_then_the_other_then_the_product() {
        let got = changes(order("WAIT_SELLER_SEND_GOODS", None, None), &settings());
        let skus: Vec<(&str, i64)> = got
            .iter()
            .map(|c| match c {
                StockChange::Freeze { sku, quantity, .. } => (sku.as_str(), *quantity),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(skus, [("A-1", 2), ("8", 1)]);
        let by_id = StockFreezeSettings { sku: SkuField::SkuId, ..settings() };
        let got = changes(order("WAIT_SELLER_SEND_GOODS", None, None), &by_id);
        assert!(matches!(&got[0], StockChange::Freeze { sku, .. } if sku == "9"));
        let item: OrderItem = serde_json::from_value(json!({"oid": 1, "num_iid": 77, "sku_id": null,
            "outer_sku_id": "", "title": null, "num": 1, "price": "1.00", "payment": "1.00",
            "refund_status": null, "refund_id": null}))
        .unwrap();
        assert_eq!(sku_of(&item, SkuField::OuterSkuId), "num_iid:77");
    }

    #[test]
    fn refund_records_release_their_line_unless_refused_or_closed() {
        let refund = |status: &str| {
            json!({"platform": "taobao", "shop": "s", "refund_id": 5, "tid": 10, "oid": 11, "status": status,
                "refund_fee": "12.30", "created": "2026-11-02T00:00:00Z", "modified": "2026-11-02T00:00:00Z",
                "raw": {}})
        };
        for (status, expected) in [
            ("WAIT_SELLER_AGREE", vec!["release"]),
            ("SUCCESS", vec!["release"]),
            ("CLOSED", vec![]),
            ("SELLER_REFUSE_BUYER", vec![]),
        ] {
            assert_eq!(kinds(&changes(refund(status), &settings())), expected, "{status}");
        }
        let broken = Record::from_value(json!({"refund_id": 5, "status": "SUCCESS"})).unwrap();
        let error = changes_of(&broken, &settings()).unwrap_err();
        assert!(error.contains("refund_id 5") && error.contains("not a refund"), "{error}");
    }

    #[tokio::test]
    async fn records_pass_on_and_stock_moves_once_per_line() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let node = || match StockFreeze::build(settings(), &build_ctx()).unwrap() {
            Built::Transform(node) => node,
            Built::Source(_) => panic!("a transform"),
        };
        let paid = order("WAIT_SELLER_SEND_GOODS", Some("FRONT_PAID_FINAL_PAID"), None);
        for _ in 0..2 {
            let out = run_transform_in(&store, node(), vec![paid.clone()]).await.unwrap();
            assert_eq!(out.len(), 1);
            assert_output(&StockFreeze::output(), std::slice::from_ref(&paid), &out);
        }
        let levels = store.stock_levels().await.unwrap();
        assert_eq!((levels["A-1"].frozen, levels["8"].frozen, levels["A-1"].on_hand), (2, 1, 0));
        let shipped = order("TRADE_FINISHED", Some("FRONT_PAID_FINAL_PAID"), Some("SUCCESS"));
        run_transform_in(&store, node(), vec![shipped.clone(), shipped]).await.unwrap();
        let levels = store.stock_levels().await.unwrap();
        assert_eq!((levels["A-1"].frozen, levels["8"].frozen, levels["8"].on_hand), (0, 0, 0));
        let states: Vec<FreezeState> =
            store.freezes_of("taobao", "s", Some(10)).await.unwrap().iter().map(|f| f.state).collect();
        assert_eq!(states, [FreezeState::Released, FreezeState::Deducted]);
        let moves: Vec<MovementKind> =
            store.stock_movements("taobao", "s", Some(10)).await.unwrap().iter().map(|m| m.kind).collect();
        assert_eq!(moves, [MovementKind::Freeze, MovementKind::Freeze, MovementKind::Release, MovementKind::Deduct]);
    }
}
