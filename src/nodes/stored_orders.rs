//! `stored_orders`: the shop's orders as the database holds them, by status.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{BuildContext, BuildError, Built, Emitter, Fields, NodeError, NodeKind, Output, Role, Source};
use crate::record::Record;

/// Reads the shop's stored orders in the given statuses, by tid, without
/// calling the platform.
///
/// Each record is `{platform, shop, tid, status, modified}`: enough for nodes
/// that look an order up by tid (`logistics_alert`), not a whole order. It
/// starts flows about orders that have not changed lately, which the fetch
/// nodes never list again (a parcel stuck in transit leaves its order
/// unchanged). Reads a page of `batch_size` orders at a time, so a large shop
/// never sits in memory; the orders must have been stored by a sync flow
/// (`fetch_full` / `fetch_increment` → `store_orders`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredOrdersSettings {
    /// The statuses to read, e.g. `[WAIT_BUYER_CONFIRM_GOODS]` (shipped, not
    /// yet received). At least one.
    #[schemars(length(min = 1))]
    pub statuses: Vec<String>,
    /// The shop, as named in `orderflow.yaml`; defaults to the flow's `shop:`.
    #[serde(default)]
    pub shop: Option<String>,
    /// Orders per batch (defaults to the engine's batch size).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub batch_size: Option<u32>,
}

/// The `stored_orders` node type.
pub struct StoredOrders;

impl NodeKind for StoredOrders {
    const TYPE: &'static str = "stored_orders";
    const ROLE: Role = Role::Source;
    type Settings = StoredOrdersSettings;

    fn example() -> &'static str {
        "shipped:\n  use: stored_orders\n  with:\n    statuses: [WAIT_BUYER_CONFIRM_GOODS, SELLER_CONSIGNED_PART]\n"
    }

    fn output() -> Output {
        Output::Records(Fields::order().only(&["platform", "shop", "tid", "status", "modified"]))
    }

    fn build(settings: StoredOrdersSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        if settings.statuses.is_empty() {
            return Err(BuildError::setting("statuses", "name at least one status"));
        }
        if settings.batch_size == Some(0) {
            return Err(BuildError::setting("batch_size", "\"batch_size\" must be at least 1"));
        }
        // The platform only names the shop's records; no call is made.
        let platform = ctx.platform(settings.shop.as_deref())?;
        Ok(Built::Source(Box::new(StoredOrdersNode {
            platform: platform.name().to_owned(),
            shop: platform.shop().to_owned(),
            statuses: settings.statuses,
            batch_size: settings.batch_size,
        })))
    }
}

struct StoredOrdersNode {
    platform: String,
    shop: String,
    statuses: Vec<String>,
    batch_size: Option<u32>,
}

#[async_trait]
impl Source for StoredOrdersNode {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let ctx = out.ctx();
        let limit = self.batch_size.unwrap_or_else(|| u32::try_from(ctx.batch_size).unwrap_or(u32::MAX)).max(1);
        let store = ctx.store.clone();
        let mut after = None;
        loop {
            let page = store.orders_in_status(&self.platform, &self.shop, &self.statuses, after, limit).await?;
            let Some(last) = page.last() else { return Ok(()) };
            after = Some(last.tid);
            let full = page.len() == limit as usize;
            let batch = page
                .iter()
                .filter_map(|o| {
                    Record::from_value(json!({
                        "platform": self.platform,
                        "shop": self.shop,
                        "tid": o.tid,
                        "status": o.status,
                        "modified": o.modified,
                    }))
                })
                .collect();
            out.emit(batch).await?;
            if !full {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::flow::OnError;
    use crate::nodes::testing::{FakeShop, assert_output, fake_order, records_of, run_source_in};
    use crate::store::Store;

    #[tokio::test]
    async fn reads_the_orders_in_the_statuses_page_by_page() {
        let at: chrono::DateTime<chrono::Utc> = "2026-11-20T08:00:00Z".parse().unwrap();
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let orders: Vec<_> = (1..=5)
            .map(|tid| {
                let status = if tid == 3 { "TRADE_FINISHED" } else { "WAIT_BUYER_CONFIRM_GOODS" };
                crate::platforms::Order { status: status.into(), ..fake_order(tid, (at, at)) }
            })
            .collect();
        store.save_orders(&orders, &[]).await.unwrap();
        let shop = FakeShop::new([], None);
        let settings: StoredOrdersSettings =
            serde_json::from_value(json!({"shop": "s", "statuses": ["WAIT_BUYER_CONFIRM_GOODS"], "batch_size": 2}))
                .unwrap();
        let Ok(Built::Source(node)) = StoredOrders::build(settings, &shop.context()) else { panic!("a source") };
        let (batches, _) = run_source_in(node, OnError::Fail, &store).await.unwrap();
        let tids: Vec<Vec<i64>> =
            batches.iter().map(|b| b.iter().map(|r| r.fields["tid"].as_i64().unwrap()).collect()).collect();
        assert_eq!(tids, vec![vec![1, 2], vec![4, 5]]);
        assert_eq!(batches[0][0].fields["status"], "WAIT_BUYER_CONFIRM_GOODS");
        assert_eq!(batches[0][0].fields["shop"], "s");
        assert_output(&StoredOrders::output(), &[], &records_of(&batches));
    }
}
