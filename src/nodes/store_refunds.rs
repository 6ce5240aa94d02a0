//! `store_refunds`: refunds into `refunds`.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildContext, BuildError, Built, NodeContext, NodeError, NodeKind, Output, Role, Transform};
use crate::record::Batch;
use crate::store::Cursor;
use crate::sync::record_refund;
use crate::sync::set_aside::save_or_set_aside;

/// Upserts refunds into `refunds` (see docs/store.md), one transaction per
/// batch, and passes them on.
///
/// A stored refund is never replaced by an older `modified`. The cursors of
/// the fetch nodes upstream (`fetch_refunds`) are committed in the same
/// transaction as the refunds they cover, so a crash never leaves a cursor
/// past unsaved refunds.
///
/// A refund the database refuses for good is set aside as a dead letter with
/// the database's message, whatever `on_error` says, and the rest of the
/// batch and its cursors are stored.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreRefundsSettings {}

/// The `store_refunds` node type.
pub struct StoreRefunds;

impl NodeKind for StoreRefunds {
    const TYPE: &'static str = "store_refunds";
    const ROLE: Role = Role::Transform;
    type Settings = StoreRefundsSettings;

    fn example() -> &'static str {
        "save:\n  use: store_refunds\n  input: refunds\n"
    }

    fn output() -> Output {
        Output::unchanged()
    }

    fn build(_settings: StoreRefundsSettings, _ctx: &BuildContext) -> Result<Built, BuildError> {
        Ok(Built::Transform(Box::new(StoreRefundsTransform)))
    }
}

struct StoreRefundsTransform;

#[async_trait]
impl Transform for StoreRefundsTransform {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        self.process_through(batch, &[], ctx).await
    }

    async fn process_through(
        &mut self,
        batch: Batch,
        cursors: &[Cursor],
        ctx: &NodeContext,
    ) -> Result<Batch, NodeError> {
        let refunds = batch.iter().map(record_refund).collect::<Result<Vec<_>, _>>().map_err(NodeError::permanent)?;
        let (batch, _, outcome) = save_or_set_aside(ctx, batch, refunds, cursors).await?;
        tracing::debug!(node_id = %ctx.node_id, ?outcome, cursors = cursors.len(), "Refunds stored.");
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::nodes::testing::{assert_output, build_ctx, records_of};
    use crate::platforms::Money;
    use crate::record::Record;
    use crate::store::Store;

    #[tokio::test]
    async fn refunds_and_the_cursor_behind_them_are_stored_together_and_bad_records_named() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ctx = crate::nodes::testing::node_ctx(&store, crate::flow::OnError::Fail);
        let Built::Transform(mut node) = StoreRefunds::build(StoreRefundsSettings {}, &build_ctx()).unwrap() else {
            panic!("a transform")
        };
        let refund = json!({"platform": "taobao", "shop": "s", "refund_id": 210_000_000_000_000_001_i64,
            "tid": 4_611_686_018_427_387_905_i64, "oid": 4_611_686_018_427_387_906_i64, "status": "SUCCESS",
            "refund_fee": "12.30", "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:05Z",
            "raw": {"refund_id": "210000000000000001"}});
        let cursor = Cursor {
            platform: "taobao".into(),
            shop: "s".into(),
            stream: "refunds.increment".into(),
            value: json!({"modified_until": "2026-11-01T00:30:00Z"}),
        };
        let batch = vec![Record::from_value(refund.clone()).unwrap()];
        let out = node.process_through(batch, std::slice::from_ref(&cursor), &ctx).await.unwrap();
        assert_eq!(out.len(), 1);
        assert_output(&StoreRefunds::output(), &[refund], &records_of(&[out]));
        let stored = store.stored_refunds("taobao", "s").await.unwrap();
        assert_eq!((stored[0].refund_id, stored[0].refund_fee), (210_000_000_000_000_001, Money(1230)));
        assert_eq!(store.refunded_amount("taobao", "s", 4_611_686_018_427_387_905).await.unwrap(), Money(1230));
        assert_eq!(store.load_cursor("taobao", "s", "refunds.increment").await.unwrap(), Some(cursor.value));

        let broken = Record::from_value(json!({"refund_id": 7, "status": "X"})).unwrap();
        let error = node.process(vec![broken], &ctx).await.unwrap_err();
        assert!(error.message.contains("refund_id 7") && error.message.contains("not a refund"), "{error}");
    }

    #[tokio::test]
    async fn a_refund_the_database_refuses_is_set_aside_and_the_rest_stored_with_the_cursor() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ctx = crate::nodes::testing::node_ctx(&store, crate::flow::OnError::Fail);
        let Built::Transform(mut node) = StoreRefunds::build(StoreRefundsSettings {}, &build_ctx()).unwrap() else {
            panic!("a transform")
        };
        let refund = |id: i64, status: &str| {
            Record::from_value(json!({"platform": "taobao", "shop": "s", "refund_id": id, "tid": 1, "oid": 2,
                "status": status, "refund_fee": "1.00", "created": "2026-11-01T00:00:00Z",
                "modified": "2026-11-01T00:00:05Z", "raw": {}}))
            .unwrap()
        };
        let cursor = Cursor {
            platform: "taobao".into(),
            shop: "s".into(),
            stream: "refunds.increment".into(),
            value: json!({"modified_until": "2026-11-01T00:30:00Z"}),
        };
        let batch = vec![refund(1, "SUCCESS"), refund(2, &"X".repeat(65)), refund(3, "CLOSED")];
        let out = node.process_through(batch, std::slice::from_ref(&cursor), &ctx).await.unwrap();
        assert_eq!(out.iter().map(|r| r.fields["refund_id"].clone()).collect::<Vec<_>>(), [json!(1), json!(3)]);
        let stored: Vec<i64> = store.stored_refunds("taobao", "s").await.unwrap().iter().map(|r| r.refund_id).collect();
        assert_eq!(stored, [1, 3]);
        assert_eq!(store.load_cursor("taobao", "s", "refunds.increment").await.unwrap(), Some(cursor.value));
        let letters = store.dead_letters("test-run").await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].record["refund_id"], 2);
        assert!(
            letters[0].reason.starts_with("refund 2 could not be stored: invalid value for"),
            "{}",
            letters[0].reason
        );
    }
}
