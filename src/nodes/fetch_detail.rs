//! `fetch_detail`: completes orders the listing returned only in part.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value as Json;

use super::{BuildContext, BuildError, Built, Fields, NodeContext, NodeError, NodeKind, Output, Role, Transform};
use crate::platforms::detail_cache::DetailCache;
use crate::platforms::{ErrorKind, Order, Platform, PlatformError};
use crate::record::{Batch, Record};
use crate::sync::{self, order_record, record_order};

/// Replaces an order by its full detail (TOP `trade.fullinfo.get`) when the
/// flow `needs` a field its listing did not return — and only then: an order
/// whose listing has every needed field, or whose version the database
/// already holds, costs no call. Details are cached by order and version, in
/// the process (or in Redis, shared by every process, when configured); a
/// cached detail older than the listing is never used.
///
/// Put it after `dedupe`, so that orders already stored at this version are
/// gone before it. Fields added to a record upstream are kept.
///
/// An order whose detail the connector cannot read as an order, or whose
/// detail is created or modified ahead of now beyond clock skew, is set aside
/// as a dead letter (as listed, with the reason) and a `wrong_type` anomaly,
/// whatever `on_error` says; the other orders go on.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchDetailSettings {
    /// The shop in `orderflow.yaml`; the flow's `shop:` when left out.
    #[serde(default)]
    pub shop: Option<String>,
    /// The platform fields (as named in `raw`) the flow needs on every order.
    pub needs: Vec<String>,
    /// The fields the detail call asks for; empty asks for every field the
    /// order model needs plus `needs`.
    #[serde(default)]
    pub fields: Vec<String>,
}

/// The `fetch_detail` node type.
pub struct FetchDetail;

impl NodeKind for FetchDetail {
    const TYPE: &'static str = "fetch_detail";
    const ROLE: Role = Role::Transform;
    type Settings = FetchDetailSettings;

    fn example() -> &'static str {
        "detail:\n  use: fetch_detail\n  input: fresh\n  with:\n    needs: [buyer_message, seller_memo]\n"
    }

    /// An order lacking a needed field is replaced by its detail: an order.
    fn output() -> Output {
        Output::Received(Fields::order())
    }

    fn build(settings: FetchDetailSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let platform = ctx.platform(settings.shop.as_deref())?;
        let fields =
            if settings.fields.is_empty() { Vec::new() } else { with_needs(&settings.fields, &settings.needs) };
        let cache = ctx.platforms.detail_cache();
        Ok(Built::Transform(Box::new(DetailTransform { platform, fields, settings, cache })))
    }
}

fn with_needs(fields: &[String], needs: &[String]) -> Vec<String> {
    let mut all = fields.to_vec();
    all.extend(needs.iter().filter(|need| !fields.contains(need)).cloned());
    all
}

struct DetailTransform {
    settings: FetchDetailSettings,
    platform: Arc<dyn Platform>,
    fields: Vec<String>,
    cache: Arc<DetailCache>,
}

impl DetailTransform {
    fn lacks_needed(&self, order: &Order) -> bool {
        self.settings.needs.iter().any(|need| order.raw.get(need).is_none_or(Json::is_null))
    }

    async fn detail(&mut self, ctx: &NodeContext, listed: &Order) -> Result<Detail, NodeError> {
        let (name, shop) = (self.platform.name(), self.platform.shop());
        if let Some(cached) = self.cache.get(name, shop, listed.tid, listed.modified, Some(&listed.status)).await {
            return Ok(Detail::Found(Box::new(cached)));
        }
        let (platform, fields) = (&self.platform, &self.fields);
        // A detail the connector cannot read is an answer about this order,
        // not a failed call: it must neither be retried nor fail the batch.
        let answer = sync::call_platform(ctx, platform.as_ref(), || async move {
            match platform.order_detail(listed.tid, fields).await {
                Err(error) if error.kind == ErrorKind::BadRecord => Ok(Err(error)),
                other => other.map(Ok),
            }
        })
        .await?;
        match answer {
            Ok(Some(detail)) => {
                self.cache.put(&detail).await;
                Ok(Detail::Found(Box::new(detail)))
            }
            Ok(None) => {
                tracing::warn!(node_id = %ctx.node_id, tid = listed.tid, "The platform has no detail of this order; kept as listed.");
                Ok(Detail::Missing)
            }
            Err(error) => Ok(Detail::Bad(error)),
        }
    }
}

/// What the platform answered about one order's detail.
enum Detail {
    Found(Box<Order>),
    /// The platform has none: the order goes on as listed.
    Missing,
    /// The detail cannot be read as an order: the order is set aside.
    Bad(PlatformError),
}

#[async_trait]
impl Transform for DetailTransform {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        let mut wanting: Vec<(usize, Order)> = Vec::new();
        for (index, record) in batch.iter().enumerate() {
            let order = record_order(record).map_err(NodeError::permanent)?;
            if order.shop == self.platform.shop() && self.lacks_needed(&order) {
                wanting.push((index, order));
            }
        }
        if wanting.is_empty() {
            return Ok(batch);
        }
        let tids: Vec<i64> = wanting.iter().map(|(_, order)| order.tid).collect();
        let stored = ctx.store.order_versions(self.platform.name(), self.platform.shop(), &tids).await?;
        let mut batch = batch;
        let mut bad = Vec::new();
        for (index, listed) in wanting {
            if stored.get(&listed.tid).is_some_and(|version| version.covers(listed.modified, &listed.status)) {
                continue;
            }
            let detail = match self.detail(ctx, &listed).await? {
                Detail::Found(detail) => detail,
                Detail::Missing => continue,
                Detail::Bad(error) => {
                    bad.push((index, error.to_string()));
                    continue;
                }
            };
            let ahead = Utc::now() + sync::set_aside::CLOCK_SKEW;
            if detail.created > ahead || detail.modified > ahead {
                bad.push((index, format!(
                    "order {}: its detail says created {}, modified {}: ahead of now by more than the clock skew allowed",
                    detail.tid, detail.created, detail.modified
                )));
                continue;
            }
            if detail.modified < listed.modified {
                continue;
            }
            let record = &mut batch[index];
            let Record { fields, .. } = order_record(&detail)?;
            record.fields.extend(fields);
        }
        if bad.is_empty() {
            return Ok(batch);
        }
        let aside = bad.iter().map(|(index, reason)| (batch[*index].to_json(), reason.clone())).collect();
        sync::set_aside_unreadable(ctx, self.platform.as_ref(), "order_detail", aside).await?;
        let bad: HashSet<usize> = bad.into_iter().map(|(index, _)| index).collect();
        Ok(batch.into_iter().enumerate().filter(|(index, _)| !bad.contains(index)).map(|(_, record)| record).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;

    use super::*;
    use crate::nodes::testing::{FakeShop, assert_output, run_transform_in};
    use crate::store::Store;

    #[tokio::test]
    async fn only_orders_lacking_a_needed_field_and_not_stored_cost_a_call_once() {
        let at: chrono::DateTime<chrono::Utc> = "2026-11-20T08:00:00Z".parse().unwrap();
        let shop = FakeShop::new([(1, at), (2, at), (3, at)], None);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let listed = |tid: i64, raw: Json| {
            let mut order = serde_json::to_value(crate::nodes::testing::fake_order(tid, (at, at))).unwrap();
            order["raw"] = raw;
            order
        };
        // Order 3 is stored at this version already.
        let stored: Order = serde_json::from_value(listed(3, json!({}))).unwrap();
        store.save_orders(&[stored], &[]).await.unwrap();
        let settings: FetchDetailSettings =
            serde_json::from_value(json!({"shop": "s", "needs": ["receiver_address"]})).unwrap();
        let build = || match FetchDetail::build(settings.clone(), &shop.context()).unwrap() {
            Built::Transform(node) => node,
            Built::Source(_) => panic!("a transform"),
        };
        let input = vec![
            listed(1, json!({"receiver_address": "listed"})), // has it: no call
            listed(2, json!({"tid": 2})),                     // lacks it: one call
            listed(3, json!({"tid": 3})),                     // stored at this version: no call
        ];
        let out = run_transform_in(&store, build(), input.clone()).await.unwrap();
        assert_output(&FetchDetail::output(), &input, &out);
        assert_eq!(shop.details.load(Ordering::SeqCst), 1);
        assert_eq!(out[0]["raw"]["receiver_address"], "listed");
        assert_eq!(out[1]["raw"]["receiver_address"], "1 Road");
        assert_eq!(out[2]["raw"], json!({"tid": 3}));

        // The same version again, in the same node: from the cache.
        let mut node = build();
        let ctx = crate::nodes::testing::node_ctx(&store, crate::flow::OnError::Fail);
        for _ in 0..2 {
            let batch = vec![crate::record::Record::from_value(input[1].clone()).unwrap()];
            node.process(batch, &ctx).await.unwrap();
        }
        assert_eq!(shop.details.load(Ordering::SeqCst), 2, "one more call, then the cache");
    }

    #[tokio::test]
    async fn an_order_whose_detail_cannot_be_read_is_set_aside_and_the_others_go_on() {
        let at: chrono::DateTime<chrono::Utc> = "2026-11-20T08:00:00Z".parse().unwrap();
        let shop = FakeShop::new([(1, at), (2, at)], None);
        shop.bad_details.lock().unwrap().push(2);
        // Order 3's detail says it was modified in 2099.
        shop.orders.lock().unwrap().insert(3, (at, "2099-01-01T00:00:00Z".parse().unwrap()));
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let settings: FetchDetailSettings =
            serde_json::from_value(json!({"shop": "s", "needs": ["receiver_address"]})).unwrap();
        let Built::Transform(node) = FetchDetail::build(settings, &shop.context()).unwrap() else {
            panic!("a transform")
        };
        let input: Vec<Json> =
            [1, 2, 3].map(|tid| serde_json::to_value(crate::nodes::testing::fake_order(tid, (at, at))).unwrap()).into();
        // Under `on_error: fail`: a bad record is no reason to stop the shop.
        let out = run_transform_in(&store, node, input.clone()).await.unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!((out[0]["tid"].clone(), out[0]["raw"]["receiver_address"].clone()), (json!(1), json!("1 Road")));
        assert_eq!(shop.details.load(Ordering::SeqCst), 3, "the bad detail is not retried");
        let letters = store.dead_letters("test-run").await.unwrap();
        assert_eq!(letters.len(), 2);
        assert_eq!(letters[0].record, input[1], "the order as listed, replayable");
        assert!(letters[0].reason.contains("trade 2: created is empty"), "{}", letters[0].reason);
        assert_eq!(letters[1].record, input[2]);
        assert!(letters[1].reason.contains("modified 2099-01-01"), "{}", letters[1].reason);
        let anomalies = store.anomaly_counts().await.unwrap();
        assert_eq!(anomalies, [("taobao".into(), "s".into(), "wrong_type".into(), 2)]);
    }
}
