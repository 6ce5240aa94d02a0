//! Helpers for node unit tests: run one node outside a flow.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use serde_json::Value as Json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{BuildContext, NodeError, Source, Transform};
use crate::engine::{Emitter, NodeContext, NodeStats, Output, Packet};
use crate::flow::OnError;
use crate::platforms::guard::ShopGuard;
use crate::platforms::{
    ErrorKind, Money, Order, OrderItem, Page, PageRequest, ParcelTrace, Platform, PlatformError, PlatformMessage,
    Refund, Rejected, TimeWindow,
};
use crate::record::{Batch, Record};
use crate::script::{Limits, Sandbox};
use crate::store::{DeadLetter, Store};

/// A build context rooted in the current folder with a default sandbox.
pub(crate) fn build_ctx() -> BuildContext {
    BuildContext::new(".", Sandbox::new(Limits::default()))
}

/// A context for running a node outside a flow.
pub(crate) fn node_ctx(store: &Store, on_error: OnError) -> NodeContext {
    NodeContext {
        node_id: "under_test".into(),
        run_id: "test-run".into(),
        flow: "test".into(),
        store: store.clone(),
        cancel: CancellationToken::new(),
        batch_size: 500,
        activity: crate::activity::Reporter::default(),
        on_error,
        stats: Arc::new(NodeStats::default()),
        watch: Default::default(),
    }
}

/// Feeds `input` as one batch (then `finish`) through a transform backed by
/// `store`; returns what it sent on, as JSON.
pub(crate) async fn run_transform_in(
    store: &Store,
    mut node: Box<dyn Transform>,
    input: Vec<Json>,
) -> Result<Vec<Json>, NodeError> {
    let ctx = node_ctx(store, OnError::Fail);
    let batch: Batch = input.into_iter().filter_map(Record::from_value).collect();
    let mut out = node.process(batch, &ctx).await?;
    out.extend(node.finish(&ctx).await?);
    Ok(out.iter().map(Record::to_json).collect())
}

/// Like [`run_transform_in`] with a throwaway in-memory store.
pub(crate) async fn run_transform(node: Box<dyn Transform>, input: Vec<Json>) -> Result<Vec<Json>, NodeError> {
    let store = Store::connect("sqlite::memory:").await.expect("in-memory SQLite");
    run_transform_in(&store, node, input).await
}

/// Runs a source to its end under `on_error`; returns its batches and the
/// dead letters it left.
pub(crate) async fn run_source(
    node: Box<dyn Source>,
    on_error: OnError,
) -> Result<(Vec<Batch>, Vec<DeadLetter>), NodeError> {
    let store = Store::connect("sqlite::memory:").await.expect("in-memory SQLite");
    run_source_in(node, on_error, &store).await
}

/// Like [`run_source`], against `store`.
pub(crate) async fn run_source_in(
    mut node: Box<dyn Source>,
    on_error: OnError,
    store: &Store,
) -> Result<(Vec<Batch>, Vec<DeadLetter>), NodeError> {
    let ctx = node_ctx(store, on_error);
    let (tx, mut rx) = mpsc::channel(1024);
    let output = Output { senders: vec![tx] };
    node.run(&mut Emitter::new(&ctx, &output)).await?;
    drop(output);
    let mut batches = Vec::new();
    while let Some(Packet { records, .. }) = rx.recv().await {
        batches.push(records);
    }
    let letters = store.dead_letters("test-run").await.expect("dead letters");
    Ok((batches, letters))
}

/// Builds a source of kind `K` from `settings` in `ctx` and runs it to its
/// end; returns its batches.
pub(crate) async fn source_batches<K: super::NodeKind>(settings: Json, ctx: &BuildContext) -> Vec<Batch> {
    let settings: K::Settings = serde_json::from_value(settings).expect("valid settings");
    let Ok(super::Built::Source(node)) = K::build(settings, ctx) else { panic!("{} builds as a source", K::TYPE) };
    run_source(node, OnError::Fail).await.expect("the source runs").0
}

/// The conformance check of a node's declared output: every field of every
/// record in `out` is declared by `declared`, with a value of the declared
/// JSON type; records of the node's own carry every declared field; a node
/// passing records on adds only declared fields to what came `input`.
/// (`_tags` is where `Record::to_json` puts tags, not a field.)
pub(crate) fn assert_output(declared: &super::Output, input: &[Json], out: &[Json]) {
    use super::{Fields, Output};
    assert!(!out.is_empty(), "the check needs records emitted");
    let fields_of = |record: &Json| -> Vec<String> {
        record.as_object().expect("a record is an object").keys().filter(|k| *k != "_tags").cloned().collect()
    };
    for record in out {
        match declared {
            Output::Open => {}
            Output::Records(fields) => {
                let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
                assert_eq!(fields_of(record), names, "the fields of {record} are the declared ones, in order");
                assert_conforms(record, &super::Shape::Object(fields.clone()), "record");
            }
            Output::Received(added) => {
                let received: Vec<String> = input.iter().flat_map(fields_of).collect();
                for name in fields_of(record) {
                    assert!(
                        received.contains(&name) || added.get(&name).is_some(),
                        "field {name:?} of {record} came neither with the input nor from the declared {added:?}"
                    );
                }
                let only_added = Fields::default().and(added);
                for field in only_added.iter().filter(|f| !received.contains(&f.name)) {
                    if let Some(value) = record.get(&field.name) {
                        assert_conforms(value, &field.shape, &field.name);
                    }
                }
            }
        }
    }
}

fn assert_conforms(value: &Json, shape: &super::Shape, at: &str) {
    use super::Shape;
    match shape {
        Shape::Any => {}
        Shape::Value { types, values } => {
            let kind = match value {
                Json::Null => "null",
                Json::Bool(_) => "boolean",
                Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
                Json::Number(_) => "number",
                Json::String(_) => "string",
                Json::Array(_) => "array",
                Json::Object(_) => "object",
            };
            let fits = types.iter().any(|t| t == kind || (t == "number" && kind == "integer"));
            assert!(fits, "{at} is {value}, not of the declared {types:?}");
            if let (false, Some(text)) = (values.is_empty(), value.as_str()) {
                assert!(values.contains(&text), "{at} is {text:?}, not one of the declared {values:?}");
            }
        }
        Shape::Object(fields) => {
            let map = value.as_object().unwrap_or_else(|| panic!("{at} is {value}, not an object"));
            for (name, inner) in map {
                let field = fields.get(name).unwrap_or_else(|| panic!("{at}.{name} is not declared"));
                assert_conforms(inner, &field.shape, &format!("{at}.{name}"));
            }
        }
        Shape::List(item) => {
            let items = value.as_array().unwrap_or_else(|| panic!("{at} is {value}, not a list"));
            for (index, inner) in items.iter().enumerate() {
                assert_conforms(inner, item, &format!("{at}[{index}]"));
            }
        }
    }
}

/// The records of `batches`, as JSON.
pub(crate) fn records_of(batches: &[Batch]) -> Vec<Json> {
    batches.iter().flatten().map(Record::to_json).collect()
}

/// tid → (created, modified).
pub(crate) type FakeOrders = BTreeMap<i64, (DateTime<Utc>, DateTime<Utc>)>;

/// A shop in memory, named `s`, for the fetch nodes' tests: orders by tid
/// (which also list as one refund each, see [`Platform::refunds_modified`]),
/// each with one time as both its creation and its last change. It lists and
/// pages like TOP — newest first, with totals — and notes every window
/// asked for. With `churn_to`, before every listing by modification time but
/// the first, the order modified most recently inside the window changes
/// again (to `churn_to`): it leaves the window and every order behind it
/// moves up one place — the case where reading pages front to back skips an
/// order per change. Once [`FakeShop::stuck_on`], it answers every listing
/// with the same page, whatever is asked.
pub(crate) struct FakeShop {
    pub(crate) orders: Mutex<FakeOrders>,
    churn_to: Option<DateTime<Utc>>,
    stuck: Mutex<Option<(TimeWindow, PageRequest)>>,
    listings: AtomicU32,
    /// Detail calls answered.
    pub(crate) details: AtomicU32,
    /// Every window listed, in call order.
    pub(crate) windows: Mutex<Vec<TimeWindow>>,
    /// Pushed messages not yet confirmed, by id: consumed oldest first and
    /// delivered again until confirmed, as TMC does.
    pub(crate) messages: Mutex<BTreeMap<i64, PlatformMessage>>,
    /// Every message id confirmed, in call order.
    pub(crate) confirmed: Mutex<Vec<i64>>,
    /// Records every first page of a listing also carries, as the connector
    /// could not read them.
    pub(crate) rejects: Mutex<Vec<Rejected>>,
    /// Orders every first page of a listing also carries whatever the window
    /// asked for: impossible times.
    pub(crate) strays: Mutex<Vec<Order>>,
    /// The line oids of orders, by tid; an order not here has no lines.
    pub(crate) oids: Mutex<BTreeMap<i64, Vec<i64>>>,
    /// Orders whose detail the connector cannot read ([`ErrorKind::BadRecord`]).
    pub(crate) bad_details: Mutex<Vec<i64>>,
    guard: ShopGuard,
}

impl FakeShop {
    /// A shop of `orders` (tid, time).
    pub(crate) fn new(
        orders: impl IntoIterator<Item = (i64, DateTime<Utc>)>,
        churn_to: Option<DateTime<Utc>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            orders: Mutex::new(orders.into_iter().map(|(tid, at)| (tid, (at, at))).collect()),
            churn_to,
            stuck: Mutex::default(),
            listings: AtomicU32::new(0),
            details: AtomicU32::new(0),
            windows: Mutex::default(),
            messages: Mutex::default(),
            confirmed: Mutex::default(),
            rejects: Mutex::default(),
            strays: Mutex::default(),
            oids: Mutex::default(),
            bad_details: Mutex::default(),
            guard: ShopGuard::standalone("taobao", "fake-key", "s", std::num::NonZeroU32::MAX),
        })
    }

    /// A build context whose shop `s` is this shop.
    pub(crate) fn context(self: &Arc<Self>) -> BuildContext {
        let mut ctx = build_ctx();
        ctx.platforms.insert("s", self.clone());
        ctx
    }

    /// From now on, answers every listing as it answers `page` of `window`:
    /// a gateway stuck on one answer.
    pub(crate) fn stuck_on(&self, window: TimeWindow, page: PageRequest) {
        *self.stuck.lock().expect("not poisoned") = Some((window, page));
    }

    fn list(&self, window: TimeWindow, page: PageRequest, by_modified: bool) -> Page<Order> {
        self.windows.lock().expect("not poisoned").push(window);
        let (window, page) = self.stuck.lock().expect("not poisoned").unwrap_or((window, page));
        let mut orders = self.orders.lock().expect("not poisoned");
        let time = |times: &(DateTime<Utc>, DateTime<Utc>)| if by_modified { times.1 } else { times.0 };
        let listed = |orders: &FakeOrders| {
            let mut listed: Vec<(DateTime<Utc>, i64)> = orders
                .iter()
                .filter(|(_, times)| time(times) >= window.start && time(times) < window.end)
                .map(|(tid, times)| (time(times), *tid))
                .collect();
            listed.sort_by(|a, b| b.cmp(a));
            listed
        };
        let churn = self.churn_to.filter(|_| by_modified && self.listings.fetch_add(1, AtomicOrdering::SeqCst) > 0);
        if let (Some(churn_to), Some((_, tid))) = (churn, listed(&orders).first().copied()) {
            if let Some(times) = orders.get_mut(&tid) {
                times.1 = churn_to;
            }
        }
        let listed = listed(&orders);
        let size = page.page_size as usize;
        let oids = self.oids.lock().expect("not poisoned");
        let mut items: Vec<Order> = listed
            .iter()
            .skip((page.page_no as usize - 1) * size)
            .take(size)
            .map(|(_, tid)| Order {
                items: oids.get(tid).into_iter().flatten().map(|&oid| fake_item(oid)).collect(),
                ..fake_order(*tid, orders[tid])
            })
            .collect();
        let first = page.page_no == 1;
        if first {
            items.extend(self.strays.lock().expect("not poisoned").iter().cloned());
        }
        let total = listed.len() as u64;
        Page {
            items,
            total: Some(total),
            has_next: u64::from(page.page_no) * u64::from(page.page_size) < total,
            rejected: if first { self.rejects.lock().expect("not poisoned").clone() } else { Vec::new() },
        }
    }
}

/// A listed order of the fake shop: no items, no `raw`.
pub(crate) fn fake_order(tid: i64, (created, modified): (DateTime<Utc>, DateTime<Utc>)) -> Order {
    Order {
        platform: "taobao".into(),
        shop: "s".into(),
        tid,
        status: "WAIT_SELLER_SEND_GOODS".into(),
        order_type: "fixed".into(),
        created,
        modified,
        pay_time: None,
        payment: Money(100),
        buyer_nick: None,
        step_trade_status: None,
        items: Vec::new(),
        raw: Json::Null,
    }
}

/// One line of a fake order: one piece at 1.00.
pub(crate) fn fake_item(oid: i64) -> OrderItem {
    OrderItem {
        oid,
        num_iid: None,
        sku_id: None,
        outer_sku_id: None,
        title: None,
        num: 1,
        price: Money(100),
        payment: Money(100),
        refund_status: None,
        refund_id: None,
    }
}

/// A refund of the fake shop: the whole of `order`, asked for on its only line.
fn fake_refund(order: &Order, raw: Json) -> Refund {
    Refund {
        platform: "taobao".into(),
        shop: "s".into(),
        refund_id: order.tid,
        tid: order.tid,
        oid: order.tid + 1,
        status: "WAIT_SELLER_AGREE".into(),
        refund_fee: order.payment,
        created: order.created,
        modified: order.modified,
        raw,
    }
}

fn not_in_fake<T>() -> Result<T, PlatformError> {
    Err(PlatformError {
        kind: ErrorKind::Other,
        method: "fake".into(),
        message: "not in the fake".into(),
        request_id: None,
    })
}

#[async_trait]
impl Platform for FakeShop {
    fn name(&self) -> &'static str {
        "taobao"
    }
    fn shop(&self) -> &str {
        "s"
    }
    fn max_modified_window(&self) -> chrono::Duration {
        chrono::Duration::days(1)
    }
    fn horizon(&self) -> chrono::Duration {
        chrono::Duration::days(90)
    }
    async fn orders_created(
        &self,
        window: TimeWindow,
        page: PageRequest,
        _: &[String],
    ) -> Result<Page<Order>, PlatformError> {
        Ok(self.list(window, page, false))
    }
    async fn orders_modified(
        &self,
        window: TimeWindow,
        page: PageRequest,
        _: &[String],
    ) -> Result<Page<Order>, PlatformError> {
        Ok(self.list(window, page, true))
    }
    /// The order with its address in `raw`, the one field listings lack.
    async fn order_detail(&self, tid: i64, _: &[String]) -> Result<Option<Order>, PlatformError> {
        self.details.fetch_add(1, AtomicOrdering::SeqCst);
        if self.bad_details.lock().expect("not poisoned").contains(&tid) {
            return Err(PlatformError {
                kind: ErrorKind::BadRecord,
                method: "taobao.trade.fullinfo.get".into(),
                message: format!("trade {tid}: created is empty"),
                request_id: None,
            });
        }
        let times = self.orders.lock().expect("not poisoned").get(&tid).copied();
        Ok(times.map(|times| Order {
            raw: serde_json::json!({"tid": tid, "receiver_address": "1 Road"}),
            ..fake_order(tid, times)
        }))
    }
    /// The orders seen as refunds (one each, its id the tid), listed like
    /// orders by modification time, churn included.
    async fn refunds_modified(&self, window: TimeWindow, page: PageRequest) -> Result<Page<Refund>, PlatformError> {
        let Page { items, total, has_next, rejected } = self.list(window, page, true);
        let items = items.iter().map(|order| fake_refund(order, serde_json::json!({"refund_id": order.tid}))).collect();
        Ok(Page { items, total, has_next, rejected })
    }
    /// The refund with every field of `refund.get` in `raw`.
    async fn refund(&self, refund_id: i64) -> Result<Option<Refund>, PlatformError> {
        self.details.fetch_add(1, AtomicOrdering::SeqCst);
        let times = self.orders.lock().expect("not poisoned").get(&refund_id).copied();
        let raw: serde_json::Map<String, Json> = crate::platforms::taobao::fields::REFUND_FIELDS
            .iter()
            .map(|field| ((*field).to_owned(), Json::from(refund_id.to_string())))
            .collect();
        Ok(times.map(|times| fake_refund(&fake_order(refund_id, times), Json::Object(raw))))
    }
    async fn parcel_trace(&self, _: i64) -> Result<Vec<ParcelTrace>, PlatformError> {
        not_in_fake()
    }
    async fn messages(&self, quantity: u32) -> Result<Vec<PlatformMessage>, PlatformError> {
        let messages = self.messages.lock().expect("not poisoned");
        Ok(messages.values().take(quantity as usize).cloned().collect())
    }
    async fn confirm_messages(&self, ids: &[i64]) -> Result<(), PlatformError> {
        let mut messages = self.messages.lock().expect("not poisoned");
        for id in ids {
            messages.remove(id);
        }
        self.confirmed.lock().expect("not poisoned").extend_from_slice(ids);
        Ok(())
    }
    fn calls(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }

    fn guard(&self) -> &ShopGuard {
        &self.guard
    }
}
