//! `store_orders`: orders and their items into `orders` / `order_items`.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildContext, BuildError, Built, NodeContext, NodeError, NodeKind, Output, Role, Transform};
use crate::activity::Activity;
use crate::record::Batch;
use crate::store::Cursor;
use crate::sync::record_order;
use crate::sync::set_aside::save_or_set_aside;

/// Upserts orders into `orders` and their lines into `order_items` (see
/// docs/store.md), one transaction per batch, and passes them on.
///
/// A stored order is never replaced by an older `modified`. The cursors of
/// the fetch nodes upstream are committed in the same transaction as the
/// orders they cover, so a crash never leaves a cursor past unsaved orders.
///
/// An order the database refuses for good (a line whose oid another order
/// holds, a value a column refuses) is set aside as a dead letter with the
/// database's message, whatever `on_error` says, and the rest of the batch
/// and its cursors are stored: one bad order never stops the shop.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreOrdersSettings {}

/// The `store_orders` node type.
pub struct StoreOrders;

impl NodeKind for StoreOrders {
    const TYPE: &'static str = "store_orders";
    const ROLE: Role = Role::Transform;
    type Settings = StoreOrdersSettings;

    fn example() -> &'static str {
        "save:\n  use: store_orders\n  input: detail\n"
    }

    fn output() -> Output {
        Output::unchanged()
    }

    fn build(_settings: StoreOrdersSettings, _ctx: &BuildContext) -> Result<Built, BuildError> {
        Ok(Built::Transform(Box::new(StoreOrdersTransform)))
    }
}

struct StoreOrdersTransform;

#[async_trait]
impl Transform for StoreOrdersTransform {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        self.process_through(batch, &[], ctx).await
    }

    async fn process_through(
        &mut self,
        batch: Batch,
        cursors: &[Cursor],
        ctx: &NodeContext,
    ) -> Result<Batch, NodeError> {
        let orders = batch.iter().map(record_order).collect::<Result<Vec<_>, _>>().map_err(NodeError::permanent)?;
        let (batch, orders, outcome) = save_or_set_aside(ctx, batch, orders, cursors).await?;
        crate::telemetry::record_orders_stored(&orders, outcome);
        ctx.activity.report(|| Activity::OrdersStored((outcome.inserted + outcome.updated) as u64));
        tracing::debug!(node_id = %ctx.node_id, ?outcome, cursors = cursors.len(), "Orders stored.");
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::nodes::testing::{assert_output, build_ctx, records_of};
    use crate::record::Record;
    use crate::store::Store;

    #[tokio::test]
    async fn orders_and_the_cursor_behind_them_are_stored_together_and_bad_records_named() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ctx = crate::nodes::testing::node_ctx(&store, crate::flow::OnError::Fail);
        let Built::Transform(mut node) = StoreOrders::build(StoreOrdersSettings {}, &build_ctx()).unwrap() else {
            panic!("a transform")
        };
        let order = json!({"platform": "taobao", "shop": "s", "tid": 4_611_686_018_427_387_905_i64,
            "status": "WAIT_SELLER_SEND_GOODS", "type": "fixed", "created": "2026-11-01T00:00:00Z",
            "modified": "2026-11-01T00:00:05Z", "pay_time": null, "payment": "12.30", "buyer_nick": "b",
            "step_trade_status": null, "raw": {"tid": 4_611_686_018_427_387_905_i64},
            "items": [{"oid": 4_611_686_018_427_387_906_i64, "num_iid": 1, "sku_id": "9", "outer_sku_id": "A-1",
                "title": "t", "num": 2, "price": "6.15", "payment": "12.30", "refund_status": null, "refund_id": null}]});
        let cursor = Cursor {
            platform: "taobao".into(),
            shop: "s".into(),
            stream: "orders.increment".into(),
            value: json!({"modified_until": "2026-11-01T00:30:00Z"}),
        };
        let batch = vec![Record::from_value(order.clone()).unwrap()];
        let out = node.process_through(batch, std::slice::from_ref(&cursor), &ctx).await.unwrap();
        assert_eq!(out.len(), 1);
        assert_output(&StoreOrders::output(), &[order], &records_of(&[out]));
        let stored = store.stored_orders("taobao", "s").await.unwrap();
        assert_eq!(
            (stored[0].tid, stored[0].items, stored[0].payment.as_str()),
            (4_611_686_018_427_387_905, 1, "12.30")
        );
        assert_eq!(store.load_cursor("taobao", "s", "orders.increment").await.unwrap(), Some(cursor.value));

        let broken = Record::from_value(json!({"tid": 7, "status": "X"})).unwrap();
        let error = node.process(vec![broken], &ctx).await.unwrap_err();
        assert!(error.message.contains("tid 7") && error.message.contains("not an order"), "{error}");
    }
}
