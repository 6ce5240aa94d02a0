//! `tmc_messages`: the backup channel, orders named by the platform's pushed
//! messages (TOP's TMC), confirmed once the database holds them.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{BuildContext, BuildError, Built, Emitter, Fields, NodeContext, NodeError, NodeKind, Output, Role, Source};
use crate::platforms::detail_cache::DetailCache;
use crate::platforms::{Order, Platform, PlatformMessage};
use crate::record::Batch;
use crate::sync::{self, Span, order_record};

/// Reads the shop's pushed messages (TOP `tmc.messages.consume`), fetches the
/// full order each trade or refund message names (`trade.fullinfo.get`) and emits it;
/// confirms a message (`tmc.messages.confirm`) only once the database holds
/// its order at the fetched version or newer.
///
/// The platform delivers a message again on every consume until it is
/// confirmed, so confirming after the store is what makes the channel lose
/// nothing: a run that fails, is cancelled or crashes between the fetch and
/// the store leaves its messages unconfirmed, and a later run fetches their
/// orders again. Messages may come twice and out of order; each one only
/// names an order, whose current detail is fetched, and the store never
/// replaces a newer `modified` with an older one. Messages of other topics
/// (items, logistics, …), and about orders the platform no longer has, are
/// confirmed without a store.
///
/// Every emitted order must reach `store_orders` (put no `dedupe` between:
/// its in-run memory compares `modified` alone, so an order changed twice in
/// one second would wait for the next run). After each consume the node
/// waits up to `store_wait` for the database to hold them; what is not
/// stored by then stays unconfirmed and the run ends. A run also ends when a
/// consume comes back empty or after `max_messages`. A dry run confirms
/// nothing: the messages it read come back to the real runs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TmcMessagesSettings {
    /// The shop in `orderflow.yaml`; the flow's `shop:` when left out.
    #[serde(default)]
    pub shop: Option<String>,
    /// Messages per consume, 1 to 200 (the platform's most).
    #[serde(default = "default_quantity")]
    #[schemars(range(min = 1, max = 200))]
    pub quantity: u32,
    /// The most messages one run handles, so a scheduled run ends even while
    /// the shop keeps changing.
    #[serde(default = "default_max_messages")]
    #[schemars(range(min = 1))]
    pub max_messages: usize,
    /// The fields the detail call asks for; empty asks for every field the
    /// order model needs.
    #[serde(default)]
    pub fields: Vec<String>,
    /// How many detail calls are under way at once (the app key's rate
    /// limit still holds them all).
    #[serde(default = "default_parallel_details")]
    pub parallel_details: NonZeroUsize,
    /// How long to wait for the orders of one consume to be stored before
    /// the run ends, leaving the rest unconfirmed for a later run.
    #[serde(default = "default_store_wait")]
    pub store_wait: Span,
}

fn default_quantity() -> u32 {
    100
}

fn default_max_messages() -> usize {
    2_000
}

fn default_parallel_details() -> NonZeroUsize {
    NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN)
}

fn default_store_wait() -> Span {
    Span(Duration::from_secs(30))
}

/// The prefixes of the topics that name an order whose stored copy is now
/// stale: trade changes (`taobao_trade_TradeChanged`, …), and refund changes
/// (`taobao_refund_RefundCreated`, …), which move the order's `modified` and
/// its lines' refund status without a trade message of their own.
const ORDER_TOPIC_PREFIXES: [&str; 2] = ["taobao_trade_", "taobao_refund_"];

/// The `tmc_messages` node type.
pub struct TmcMessages;

impl NodeKind for TmcMessages {
    const TYPE: &'static str = "tmc_messages";
    const ROLE: Role = Role::Source;
    type Settings = TmcMessagesSettings;

    fn example() -> &'static str {
        "pushed:\n  use: tmc_messages\n  with:\n    quantity: 200\n    max_messages: 5000\n"
    }

    fn output() -> Output {
        Output::Records(Fields::order())
    }

    fn build(settings: TmcMessagesSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        if !(1..=200).contains(&settings.quantity) {
            return Err(BuildError::setting("quantity", format!("must be 1 to 200, not {}", settings.quantity)));
        }
        if settings.max_messages == 0 {
            return Err(BuildError::setting("max_messages", "must be at least 1"));
        }
        let platform = ctx.platform(settings.shop.as_deref())?;
        let cache = ctx.platforms.detail_cache();
        // A dry run reads the messages but must leave them to the real runs.
        let confirms = ctx.sandboxed.is_none();
        Ok(Built::Source(Box::new(TmcSource { settings, platform, cache, confirms })))
    }
}

struct TmcSource {
    settings: TmcMessagesSettings,
    platform: Arc<dyn Platform>,
    cache: Arc<DetailCache>,
    /// False in a sandboxed run: nothing is confirmed, so every message
    /// comes back to the real runs.
    confirms: bool,
}

/// An order emitted for messages that wait for it to be stored.
struct Awaited {
    tid: i64,
    modified: DateTime<Utc>,
    status: String,
    message_ids: Vec<i64>,
}

/// The messages that name one order, and the latest time among them: the
/// order's detail must be newer than that to come from the cache.
#[derive(Default)]
struct Named {
    message_ids: Vec<i64>,
    changed: Option<DateTime<Utc>>,
}

/// What one consume asks of the platform: the orders its messages name, by
/// tid, and the messages to confirm as they are.
#[derive(Default)]
struct Sorted {
    by_tid: BTreeMap<i64, Named>,
    confirm_now: Vec<i64>,
}

fn sort(messages: &[PlatformMessage]) -> Sorted {
    let mut sorted = Sorted::default();
    for message in messages {
        let names_order = ORDER_TOPIC_PREFIXES.iter().any(|prefix| message.topic.starts_with(prefix));
        match message.tid.filter(|_| names_order) {
            Some(tid) => {
                let named = sorted.by_tid.entry(tid).or_default();
                named.message_ids.push(message.id);
                named.changed = named.changed.max(Some(message.pub_time));
            }
            None => sorted.confirm_now.push(message.id),
        }
    }
    sorted
}

impl TmcSource {
    async fn confirm(&self, ctx: &NodeContext, ids: &[i64]) -> Result<(), NodeError> {
        if ids.is_empty() || !self.confirms {
            return Ok(());
        }
        let platform = &self.platform;
        sync::call_platform(ctx, platform.as_ref(), || platform.confirm_messages(ids)).await?;
        Ok(())
    }

    /// The detail of `tid`: from the cache when one is cached that is newer
    /// than the change the messages report, else from the platform (and
    /// cached). A message states no version, and platform times have whole
    /// seconds: an entry of the change's own second may predate it.
    async fn detail(
        &self,
        ctx: &NodeContext,
        tid: i64,
        changed: Option<DateTime<Utc>>,
    ) -> Result<Option<Order>, NodeError> {
        let (platform, fields) = (&self.platform, &self.settings.fields);
        if let Some(changed) = changed {
            if let Some(cached) = self.cache.get(platform.name(), platform.shop(), tid, changed, None).await {
                return Ok(Some(cached));
            }
        }
        let detail = sync::call_platform(ctx, platform.as_ref(), || platform.order_detail(tid, fields)).await?;
        if let Some(order) = &detail {
            self.cache.put(order).await;
        }
        Ok(detail)
    }

    /// Fetches the detail of every order `sorted` names, `parallel_details`
    /// at a time: the orders to emit and what waits for them; messages of
    /// orders gone are added to `confirm_now`.
    async fn fetch(&self, ctx: &NodeContext, sorted: &mut Sorted) -> Result<(Vec<Order>, Vec<Awaited>), NodeError> {
        let details: Vec<(Option<Order>, i64, Vec<i64>)> = stream::iter(std::mem::take(&mut sorted.by_tid))
            .map(|(tid, named)| async move {
                let detail = self.detail(ctx, tid, named.changed).await?;
                Ok::<_, NodeError>((detail, tid, named.message_ids))
            })
            .buffered(self.settings.parallel_details.get())
            .try_collect()
            .await?;
        let mut orders = Vec::with_capacity(details.len());
        let mut awaited = Vec::with_capacity(details.len());
        for (detail, tid, message_ids) in details {
            match detail {
                Some(order) => {
                    awaited.push(Awaited { tid, modified: order.modified, status: order.status.clone(), message_ids });
                    orders.push(order);
                }
                None => {
                    tracing::debug!(node_id = %ctx.node_id, tid, "The platform no longer has this order; its messages are confirmed.");
                    sorted.confirm_now.extend(message_ids);
                }
            }
        }
        Ok((orders, awaited))
    }

    /// Waits until the database holds every awaited order at its fetched
    /// version or newer, or `store_wait` passes; returns the ids of the
    /// messages whose orders are stored, and what still waits.
    async fn stored(
        &self,
        ctx: &NodeContext,
        mut awaited: Vec<Awaited>,
    ) -> Result<(Vec<i64>, Vec<Awaited>), NodeError> {
        let deadline = tokio::time::Instant::now() + self.settings.store_wait.0;
        let mut pause = Duration::from_millis(20);
        let mut stored_ids = Vec::new();
        loop {
            let tids: Vec<i64> = awaited.iter().map(|a| a.tid).collect();
            let versions = ctx.store.order_versions(self.platform.name(), self.platform.shop(), &tids).await?;
            let (stored, waiting): (Vec<Awaited>, Vec<Awaited>) = awaited
                .into_iter()
                .partition(|a| versions.get(&a.tid).is_some_and(|version| version.covers(a.modified, &a.status)));
            stored_ids.extend(stored.into_iter().flat_map(|a| a.message_ids));
            awaited = waiting;
            if awaited.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok((stored_ids, awaited));
            }
            tokio::select! {
                biased;
                () = ctx.cancel.cancelled() => return Err(NodeError::cancelled()),
                () = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + pause)) => {}
            }
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

#[async_trait]
impl Source for TmcSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let ctx = out.ctx();
        let platform = self.platform.clone();
        let (mut handled, mut emitted) = (0_usize, 0_usize);
        while handled < self.settings.max_messages {
            let quantity =
                self.settings.quantity.min(u32::try_from(self.settings.max_messages - handled).unwrap_or(u32::MAX));
            let messages = sync::call_platform(ctx, platform.as_ref(), || platform.messages(quantity)).await?;
            if messages.is_empty() {
                break;
            }
            handled += messages.len();
            let mut sorted = sort(&messages);
            let (orders, awaited) = self.fetch(ctx, &mut sorted).await?;
            emitted += orders.len();
            emit_in_batches(out, orders.iter().map(order_record).collect::<Result<_, _>>()?).await?;
            self.confirm(ctx, &sorted.confirm_now).await?;
            let (stored_ids, unstored) = self.stored(ctx, awaited).await?;
            self.confirm(ctx, &stored_ids).await?;
            if !unstored.is_empty() {
                let tids: Vec<i64> = unstored.iter().map(|a| a.tid).collect();
                tracing::warn!(node_id = %ctx.node_id, run_id = %ctx.run_id, wait = %self.settings.store_wait, ?tids,
                    "These orders were not stored in time; their messages stay unconfirmed and come back on a later run.");
                break;
            }
        }
        tracing::info!(node_id = %ctx.node_id, run_id = %ctx.run_id, messages = handled, orders = emitted,
            "Pushed messages handled.");
        Ok(())
    }
}

async fn emit_in_batches(out: &mut Emitter<'_>, mut records: Batch) -> Result<(), NodeError> {
    let batch_size = out.ctx().batch_size.max(1);
    while !records.is_empty() {
        let rest = records.split_off(batch_size.min(records.len()));
        out.emit(std::mem::replace(&mut records, rest)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;
    use tokio::sync::mpsc;

    use super::*;
    use crate::engine::{Output, Packet};
    use crate::flow::OnError;
    use crate::nodes::testing::{FakeShop, assert_output, fake_order, node_ctx};
    use crate::store::Store;
    use crate::sync::record_order;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn message(id: i64, topic: &str, tid: i64, pub_time: &str) -> PlatformMessage {
        PlatformMessage {
            id,
            topic: topic.into(),
            pub_time: at(pub_time),
            tid: Some(tid),
            content: json!({"tid": tid}),
        }
    }

    fn queue(shop: &FakeShop, messages: impl IntoIterator<Item = PlatformMessage>) {
        shop.messages.lock().unwrap().extend(messages.into_iter().map(|m| (m.id, m)));
    }

    fn build(shop: &Arc<FakeShop>, settings: serde_json::Value) -> Box<dyn Source> {
        let settings: TmcMessagesSettings = serde_json::from_value(settings).unwrap();
        match TmcMessages::build(settings, &shop.context()) {
            Ok(Built::Source(node)) => node,
            _ => panic!("a source"),
        }
    }

    /// Runs the source with a sink that stores what it emits (when `store_it`)
    /// as `store_orders` would; returns the tids emitted.
    async fn run_with_sink(mut node: Box<dyn Source>, store: &Store, store_it: bool) -> Result<Vec<i64>, NodeError> {
        let ctx = node_ctx(store, OnError::Fail);
        let (tx, mut rx) = mpsc::channel::<Packet>(4);
        let sink_store = store.clone();
        let sink = tokio::spawn(async move {
            let mut tids = Vec::new();
            while let Some(packet) = rx.recv().await {
                if !packet.records.is_empty() {
                    let records: Vec<serde_json::Value> =
                        packet.records.iter().map(crate::record::Record::to_json).collect();
                    assert_output(&TmcMessages::output(), &[], &records);
                }
                let orders: Vec<Order> = packet.records.iter().map(|r| record_order(r).unwrap()).collect();
                tids.extend(orders.iter().map(|o| o.tid));
                if store_it {
                    sink_store.save_orders(&orders, &[]).await.unwrap();
                }
            }
            tids
        });
        let output = Output { senders: vec![tx] };
        let result = node.run(&mut Emitter::new(&ctx, &output)).await;
        drop(output);
        let tids = sink.await.unwrap();
        result.map(|()| tids)
    }

    #[tokio::test]
    async fn a_sandboxed_run_confirms_no_message() {
        let t1 = at("2026-11-20T08:00:00Z");
        let shop = FakeShop::new([(1, t1)], None);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        queue(&shop, [message(10, "taobao_trade_TradeChanged", 1, "2026-11-20T08:00:00Z")]);
        let settings: TmcMessagesSettings = serde_json::from_value(json!({"shop": "s", "max_messages": 1})).unwrap();
        let mut ctx = shop.context();
        ctx.sandboxed =
            Some(crate::engine::node::Sandboxed { webhooks: Default::default(), output_dir: std::env::temp_dir() });
        let Ok(Built::Source(node)) = TmcMessages::build(settings, &ctx) else { panic!("a source") };
        let emitted = run_with_sink(node, &store, true).await.unwrap();
        assert_eq!(emitted, vec![1], "read and sent on as in a real run");
        assert!(shop.confirmed.lock().unwrap().is_empty(), "{:?}", shop.confirmed.lock().unwrap());
        assert_eq!(shop.messages.lock().unwrap().len(), 1, "the message waits for the real run");
    }

    #[tokio::test]
    async fn duplicates_older_messages_refunds_and_orders_gone_all_end_confirmed_with_the_newest_stored() {
        let (t1, t2) = (at("2026-11-20T08:00:00Z"), at("2026-11-20T09:00:00Z"));
        let shop = FakeShop::new([(1, t1), (2, t2)], None);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        // The database already holds order 1 at a newer version than the
        // platform's answer (an older, late message about it). A refund
        // message names its order as a trade message does.
        store.save_orders(&[fake_order(1, (t1, t2))], &[]).await.unwrap();
        queue(
            &shop,
            [
                message(10, "taobao_trade_TradeChanged", 1, "2026-11-20T08:00:00Z"),
                message(11, "taobao_trade_TradeCreate", 1, "2026-11-20T07:00:00Z"), // same order, older
                message(12, "taobao_item_ItemUpdate", 2, "2026-11-20T09:00:00Z"),   // not about the order
                message(13, "taobao_trade_TradeChanged", 99, "2026-11-20T09:00:00Z"), // order gone
                message(14, "taobao_refund_RefundCreated", 2, "2026-11-20T09:00:00Z"),
                message(15, "taobao_trade_TradeSuccess", 2, "2026-11-20T09:00:00Z"), // redelivered twin
            ],
        );
        let emitted = run_with_sink(build(&shop, json!({"shop": "s"})), &store, true).await.unwrap();

        assert_eq!(emitted, vec![1, 2], "one order per tid, however many messages name it");
        assert_eq!(shop.details.load(Ordering::SeqCst), 3, "one detail per tid: 1, 2 and the gone 99");
        let mut confirmed = shop.confirmed.lock().unwrap().clone();
        confirmed.sort_unstable();
        assert_eq!(confirmed, vec![10, 11, 12, 13, 14, 15]);
        assert!(shop.messages.lock().unwrap().is_empty());
        let versions = store.order_versions("taobao", "s", &[1, 2]).await.unwrap();
        assert_eq!(versions[&1].modified, t2, "the older answer did not replace the newer order");
        assert_eq!(versions[&2].modified, t2);
    }

    #[tokio::test]
    async fn messages_whose_orders_are_not_stored_stay_unconfirmed_and_come_back() {
        let t1 = at("2026-11-20T08:00:00Z");
        let shop = FakeShop::new([(1, t1)], None);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        queue(
            &shop,
            [
                message(20, "taobao_trade_TradeChanged", 1, "2026-11-20T08:00:00Z"),
                message(21, "taobao_item_ItemUpdate", 1, "2026-11-20T08:00:00Z"),
            ],
        );
        let settings = json!({"shop": "s", "store_wait": "150ms"});
        let started = std::time::Instant::now();
        let emitted = run_with_sink(build(&shop, settings.clone()), &store, false).await.unwrap();
        assert_eq!(emitted, vec![1]);
        assert!(started.elapsed() >= Duration::from_millis(150), "it waited for the store");
        assert_eq!(*shop.confirmed.lock().unwrap(), vec![21], "only the item message, which needs no store");
        assert_eq!(shop.messages.lock().unwrap().keys().copied().collect::<Vec<_>>(), vec![20]);

        // The next run gets it again, and this time the order is stored.
        let emitted = run_with_sink(build(&shop, settings), &store, true).await.unwrap();
        assert_eq!(emitted, vec![1]);
        assert_eq!(*shop.confirmed.lock().unwrap(), vec![21, 20]);
        assert!(store.order_versions("taobao", "s", &[1]).await.unwrap().contains_key(&1));
    }

    #[tokio::test]
    async fn a_run_handles_at_most_max_messages_and_bad_settings_are_named() {
        let t1 = at("2026-11-20T08:00:00Z");
        let shop = FakeShop::new((1..=5).map(|tid| (tid, t1)), None);
        let store = Store::connect("sqlite::memory:").await.unwrap();
        queue(&shop, (1..=5).map(|tid| message(100 + tid, "taobao_trade_TradeChanged", tid, "2026-11-20T08:00:00Z")));
        let node = build(&shop, json!({"shop": "s", "quantity": 2, "max_messages": 3}));
        assert_eq!(run_with_sink(node, &store, true).await.unwrap(), vec![1, 2, 3]);
        assert_eq!(shop.messages.lock().unwrap().len(), 2, "the rest wait for the next run");

        for (settings, setting, says) in [
            (json!({"shop": "s", "quantity": 201}), "quantity", "must be 1 to 200, not 201"),
            (json!({"shop": "s", "max_messages": 0}), "max_messages", "at least 1"),
        ] {
            let settings: TmcMessagesSettings = serde_json::from_value(settings).unwrap();
            let Err(error) = TmcMessages::build(settings, &shop.context()) else { panic!("{setting} refused") };
            assert_eq!(error.setting.as_deref(), Some(setting));
            assert!(error.message.contains(says), "{error}");
        }
    }
}
