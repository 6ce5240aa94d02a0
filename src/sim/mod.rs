//! The platform simulator: an in-process TOP gateway with a believable,
//! changing shop behind it, so that tests, the demo and benchmarks run the
//! real client against something that behaves like Taobao, with no internet.
//!
//! [`Simulator::start`] generates a shop from a seed (thousands of orders
//! over the last `days` days: fixed-price, presale and distribution orders,
//! refunds, parcels, some of them stalled), serves `/router/rest` on a local
//! port, and, if asked, keeps changing the shop (new orders, payments,
//! shipping, refunds, fee changes) and publishing TMC messages. Requests are
//! checked like the real gateway does (app key, signature with all three sign
//! methods, timestamp, session, quota) and can be made to fail on purpose:
//! every [`FaultKind`] a real gateway produces, at a rate per call or per
//! method, bans, an expiring session, latency. [`SimHandle::truth`] tells a test what a perfect
//! client would have stored.
//!
//! The simulator's credentials are public test values, [`SIM_APP_KEY`],
//! [`SIM_APP_SECRET`] and [`SIM_SESSION`]; `docs/simulator.md` documents them
//! and the simulator's behaviour.
//!
//! Layout: `model.rs` (records and their JSON), `generate.rs` (the made-up
//! past), `mutate.rs` (how orders change), `shop.rs` (storage and indexes),
//! `index.rs`, `tmc.rs`, `faults.rs`, `gateway.rs` (HTTP and request checks).

mod backoffice;
mod douyin;
mod faults;
mod gateway;
mod generate;
mod index;
mod model;
mod mutate;
mod shop;
mod tmc;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use serde_json::Value as Json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use backoffice::{BACKOFFICE_PASSWORD, BACKOFFICE_USER, PAGE_SIZE as BACKOFFICE_PAGE_SIZE};
pub use douyin::{DOUYIN_PATH, douyin_order_status};
pub use faults::{FaultKind, UnknownFaultKind};
pub use gateway::{DEFAULT_REFUND_TYPES, DEFAULT_TRADE_TYPES, MAX_INCREMENT_SPAN, TIMESTAMP_TOLERANCE};
pub use model::{DETAIL_ONLY_FIELDS, SELLER_NICK, SELLER_USER_ID};

use gateway::{Gateway, clock, lock};
use model::{Trade, yuan};
use shop::Shop;

/// The simulator's app key: a public test value, never a real app's.
pub const SIM_APP_KEY: &str = "sim-app-key";
/// The simulator's app secret: a public test value.
pub const SIM_APP_SECRET: &str = "sim-app-secret";
/// The simulated seller's session key: a public test value.
pub const SIM_SESSION: &str = "sim-session";

/// How a simulator behaves. Everything but the credentials, latency and
/// quota shapes the shop; the same config gives the same shop.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seeds every random choice: the shop, the changes, the faults.
    pub seed: u64,
    /// How many orders the generated history holds.
    pub orders: usize,
    /// How many days back the history reaches (the list methods only see
    /// three months).
    pub days: u32,
    /// Live changes per second, spread evenly; 0 keeps the shop still.
    pub mutations_per_sec: f64,
    /// The probability that a call gets a fault instead of its answer
    /// (methods given their own with [`SimHandle::set_method_fault_rate`]
    /// excepted).
    pub fault_rate: f64,
    /// The faults a faulted call draws from, uniformly, in the seeded fault
    /// stream; empty serves no faults. Default: [`FaultKind::ALL`].
    pub fault_kinds: Vec<FaultKind>,
    /// How long a [`FaultKind::Slow`] answer is held back (on top of
    /// `latency`). Default: 5 s, longer than a client's usual timeout.
    pub slow_answer: Duration,
    /// The app's quota in calls per sliding minute; `None` for no quota.
    pub rate_limit_per_min: Option<u32>,
    /// Added before every answer.
    pub latency: Duration,
    /// The app key the gateway accepts.
    pub app_key: String,
    /// The secret requests must be signed with.
    pub app_secret: String,
    /// The seller's session key the trade methods require.
    pub session: String,
    /// Where the generated history ends. `None`: the start time. Pinning it
    /// makes two runs' shops identical in absolute time, not just relative
    /// to their start; it must not be in the future.
    pub anchor: Option<DateTime<Utc>>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            orders: 3_000,
            days: 90,
            mutations_per_sec: 0.0,
            fault_rate: 0.0,
            fault_kinds: FaultKind::ALL.to_vec(),
            slow_answer: Duration::from_secs(5),
            rate_limit_per_min: None,
            latency: Duration::ZERO,
            app_key: SIM_APP_KEY.to_owned(),
            app_secret: SIM_APP_SECRET.to_owned(),
            session: SIM_SESSION.to_owned(),
            anchor: None,
        }
    }
}

/// Why a simulator did not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// A config value is out of range.
    #[error("invalid simulator config: {0}")]
    Config(String),
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Generates the shop and serves it on `listen` (port 0 picks a free
    /// port; [`SimHandle::gateway_url`] tells which). The gateway and the
    /// mutation task run on the current tokio runtime until
    /// [`SimHandle::shutdown`] or the handle is dropped. Generation is
    /// synchronous and takes some milliseconds per thousand orders.
    pub async fn start(config: SimConfig, listen: SocketAddr) -> Result<SimHandle, SimError> {
        if !config.mutations_per_sec.is_finite() || config.mutations_per_sec < 0.0 {
            return Err(SimError::Config(format!("mutations_per_sec {} is not 0 or more", config.mutations_per_sec)));
        }
        if !(0.0..=1.0).contains(&config.fault_rate) {
            return Err(SimError::Config(format!("fault_rate {} is not between 0 and 1", config.fault_rate)));
        }
        let now = clock();
        let anchor = config.anchor.map_or(now, |a| a.trunc_subsecs(0));
        if anchor > now {
            return Err(SimError::Config(format!("anchor {anchor} is in the future")));
        }
        let listener =
            tokio::net::TcpListener::bind(listen).await.map_err(|source| SimError::Bind { addr: listen, source })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind { addr: listen, source })?;

        let shop = Shop::generate(config.seed, config.orders, config.days, anchor);
        let rate = config.mutations_per_sec;
        let gateway = Arc::new(Gateway::new(config, shop));
        let cancel = CancellationToken::new();
        let paused = Arc::new(AtomicBool::new(false));

        let backoffice_logins = Arc::new(AtomicU64::new(0));
        let routes = gateway.clone().router().merge(backoffice::router(gateway.clone(), backoffice_logins.clone()));
        let server = axum::serve(listener, routes).with_graceful_shutdown(cancel.clone().cancelled_owned());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "Simulator gateway stopped.");
            }
        })];
        if rate > 0.0 {
            tasks.push(tokio::spawn(run_mutations(gateway.clone(), rate, paused.clone(), cancel.clone())));
        }
        tracing::debug!(%addr, "Simulator started.");
        Ok(SimHandle { gateway, addr, anchor, paused, cancel, tasks, backoffice_logins })
    }
}

/// Applies `rate` changes a second, spread evenly over the second, until
/// cancelled. A pause drops the changes it would have made rather than
/// catching up afterwards.
async fn run_mutations(gateway: Arc<Gateway>, rate: f64, paused: Arc<AtomicBool>, cancel: CancellationToken) {
    let period = Duration::from_secs_f64((1.0 / rate).clamp(0.001, 60.0));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = tokio::time::Instant::now();
    let mut credit = 0.0;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(last).as_secs_f64();
        last = now;
        if paused.load(Ordering::Relaxed) {
            credit = 0.0;
            continue;
        }
        // At most a second's worth at once, should the runtime stall.
        credit = (credit + rate * elapsed).min(rate.max(1.0));
        let due = credit.floor();
        if due >= 1.0 {
            credit -= due;
            lock(&gateway.shop).mutate(due as usize, clock());
        }
    }
}

/// A running simulator. Dropping it stops the simulator too, without
/// waiting.
pub struct SimHandle {
    gateway: Arc<Gateway>,
    addr: SocketAddr,
    anchor: DateTime<Utc>,
    paused: Arc<AtomicBool>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    backoffice_logins: Arc<AtomicU64>,
}

impl SimHandle {
    /// The address the gateway listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to configure as the shop's gateway.
    pub fn gateway_url(&self) -> String {
        format!("http://{}/router/rest", self.addr)
    }

    /// The URL to configure as a Douyin shop's gateway: the same shop served
    /// through Douyin's endpoints and shapes.
    pub fn douyin_gateway_url(&self) -> String {
        format!("http://{}{DOUYIN_PATH}", self.addr)
    }

    /// Where the generated history ends (the start time in whole seconds,
    /// unless the config pinned it).
    pub fn anchor(&self) -> DateTime<Utc> {
        self.anchor
    }

    /// The config it runs with (for its credentials).
    pub fn config(&self) -> &SimConfig {
        &self.gateway.config
    }

    /// Every order as it is now, by tid, with every refund: what a client
    /// that missed nothing would hold. Copies the shop under its lock and
    /// renders it outside.
    pub fn truth(&self) -> Truth {
        let (trades, refunds, catalog) = {
            let shop = lock(&self.gateway.shop);
            let trades: Vec<Trade> = shop.trades().cloned().collect();
            let refunds: Vec<Json> = shop
                .refunds()
                .filter_map(|r| shop.trade(r.tid).map(|t| Json::Object(r.to_json(t, shop.catalog()))))
                .collect();
            (trades, refunds, shop.catalog().to_vec())
        };
        let taken_at = clock();
        let orders = trades.iter().map(|t| TruthOrder::new(t, &catalog, taken_at)).collect();
        Truth { anchor: self.anchor, taken_at, orders, refunds }
    }

    /// How many times someone signed in to the back office.
    pub fn backoffice_logins(&self) -> u64 {
        self.backoffice_logins.load(Ordering::Relaxed)
    }

    /// How many calls the gateway has had, and how they ended.
    pub fn calls(&self) -> CallStats {
        lock(&self.gateway.stats).clone()
    }

    /// Stops the live changes until [`SimHandle::resume_mutations`].
    pub fn pause_mutations(&self) {
        self.paused.store(true, Ordering::Relaxed);
    }

    /// Resumes the live changes.
    pub fn resume_mutations(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }

    /// Adds an event dated now to the parcel of order `tid` (`快件已到达…`,
    /// action `TRANSPORT`), so a stalled parcel moves again; its later
    /// planned events, if any, stay as they were. The order itself does not
    /// change (a parcel's movements are not order changes). Returns false
    /// when the order does not exist or has not shipped.
    pub fn move_parcel(&self, tid: i64) -> bool {
        lock(&self.gateway.shop).move_parcel(tid, clock())
    }

    /// Applies `n` changes now, each to a different order (a change that
    /// cannot apply becomes a new order), and returns the changed tids. For
    /// tests that need exactly `n` changed orders; works paused or not.
    pub fn mutate_now(&self, n: usize) -> Vec<i64> {
        lock(&self.gateway.shop).mutate(n, clock())
    }

    /// Opens a refund (money only) of line `oid` of order `tid` now, for tests
    /// of what a refund changes; returns its id, or `None` when the order is
    /// not paid or the line has a refund already.
    pub fn open_refund(&self, tid: i64, oid: i64) -> Option<i64> {
        lock(&self.gateway.shop).open_refund_of(tid, oid, clock())
    }

    /// Changes the probability of a fault per call (clamped to 0–1) of the
    /// methods without a rate of their own.
    pub fn set_fault_rate(&self, rate: f64) {
        lock(&self.gateway.faults).set_rate(rate);
    }

    /// Gives `method` (`taobao.trades.sold.increment.get`) its own fault
    /// rate (clamped to 0–1) in place of the common one; `None` takes it
    /// back to the common one.
    pub fn set_method_fault_rate(&self, method: &str, rate: Option<f64>) {
        lock(&self.gateway.faults).set_method_rate(method, rate);
    }

    /// Changes the faults a faulted call draws from (empty: none).
    pub fn set_fault_kinds(&self, kinds: &[FaultKind]) {
        lock(&self.gateway.faults).set_kinds(kinds);
    }

    /// From `at` on, every call needing a session gets code 27
    /// `invalid-sessionkey`, as when the seller's authorisation runs out;
    /// until [`SimHandle::renew_session`]. An instant in the past expires the
    /// session at once.
    pub fn expire_session_at(&self, at: DateTime<Utc>) {
        *lock(&self.gateway.session_expiry) = Some(at);
    }

    /// Makes the session valid again, as when the seller authorises again.
    pub fn renew_session(&self) {
        *lock(&self.gateway.session_expiry) = None;
    }

    /// Bans the app for `duration`, as if it went over its quota: every call
    /// meanwhile gets code 7 with the seconds left.
    pub fn ban_for(&self, duration: Duration) {
        lock(&self.gateway.limiter).ban_for(duration, std::time::Instant::now());
    }

    /// From now on, every call gets code 7 with a new ban of `ban` (the time
    /// left, during one), as a gateway whose quota never recovers; `None`
    /// ends it.
    pub fn ban_every_call(&self, ban: Option<Duration>) {
        lock(&self.gateway.limiter).ban_every_call(ban);
    }

    /// How many TMC messages wait for confirmation.
    pub fn pending_messages(&self) -> usize {
        lock(&self.gateway.shop).tmc.len()
    }

    /// What `orderflow sim` prints: where the gateway is and how to point a
    /// shop at it.
    pub fn banner(&self) -> String {
        let config = self.config();
        format!(
            "Simulated Taobao gateway: {url}\n\
             app_key: {key}    (app secret and session are public test values, see docs/simulator.md)\n\
             \n\
             A shop for orderflow.yaml (set SIM_APP_SECRET={secret} and SIM_SESSION={session}):\n\
             \n\
             shops:\n  sim:\n    platform: taobao\n    gateway: {url}\n    app_key: {key}\n    \
             app_secret: ${{SIM_APP_SECRET}}\n    session: ${{SIM_SESSION}}\n\
             \n\
             The same shop as a Douyin shop: platform: douyin, gateway: {douyin_url}\n\
             \n\
             {orders} orders over {days} days (seed {seed}), {rate} changes/s. Ctrl-C stops it.",
            url = self.gateway_url(),
            douyin_url = self.douyin_gateway_url(),
            key = config.app_key,
            secret = config.app_secret,
            session = config.session,
            orders = config.orders,
            days = config.days,
            seed = config.seed,
            rate = config.mutations_per_sec,
        )
    }

    /// Stops the gateway and the changes, and waits until they have.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        for task in self.tasks.drain(..) {
            if let Err(error) = task.await {
                tracing::warn!(%error, "Simulator task failed.");
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Calls the gateway has had. Each call counts once in `total` and once in
/// exactly one of `by_method` (answered by its method, business errors
/// included), `rejected` (failed a request check), `banned` (refused by the
/// quota) or `faulted` (got an injected fault). `by_fault` splits `faulted`
/// by kind. `after_session_expiry` and `during_ban` count calls by when they
/// came, whichever of those they ended in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallStats {
    /// Every call.
    pub total: u64,
    /// Answered calls by method name.
    pub by_method: BTreeMap<String, u64>,
    /// Calls that failed a request check (key, signature, timestamp, an
    /// invalid or expired session, …).
    pub rejected: u64,
    /// Calls that got an injected fault instead of their answer.
    pub faulted: u64,
    /// Faulted calls by the fault they were served ([`FaultKind::name`]): a
    /// trade service rejection drawn for a method other than the trade
    /// lists counts as the `remote_timeout` it was served as. A missing list
    /// or wrong type that found nothing to break (the method answered with
    /// an error) is no fault: that call counts in `by_method`.
    pub by_fault: BTreeMap<String, u64>,
    /// Calls refused with code 7 (the call that went over the quota, and
    /// every call during a ban that got as far as the quota check).
    pub banned: u64,
    /// Calls received at or after the instant of
    /// [`SimHandle::expire_session_at`] (while it was set), whatever their
    /// answer: also those needing no session, and those refused earlier.
    pub after_session_expiry: u64,
    /// Calls received while a ban was in force, whatever their answer: the
    /// call that goes over the quota only starts the ban and is not one,
    /// and a call with a wrong app key during a ban is one, though refused
    /// with code 29 before the quota check.
    pub during_ban: u64,
}

impl CallStats {
    /// Answered calls of `method` (`taobao.trades.sold.get`).
    pub fn method(&self, method: &str) -> u64 {
        self.by_method.get(method).copied().unwrap_or(0)
    }

    /// Calls served the fault `kind`.
    pub fn fault(&self, kind: FaultKind) -> u64 {
        self.by_fault.get(kind.name()).copied().unwrap_or(0)
    }
}

/// The shop's ground truth at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Truth {
    /// Where the generated history ends.
    pub anchor: DateTime<Utc>,
    /// When this copy was taken.
    pub taken_at: DateTime<Utc>,
    /// Every order, by tid ascending.
    pub orders: Vec<TruthOrder>,
    /// Every refund as `taobao.refund.get` writes it, by refund id.
    pub refunds: Vec<Json>,
}

impl Truth {
    /// The order `tid`.
    pub fn order(&self, tid: i64) -> Option<&TruthOrder> {
        self.orders.binary_search_by_key(&tid, |o| o.tid).ok().map(|at| &self.orders[at])
    }
}

/// One order, typed for assertions, with its complete JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthOrder {
    /// The trade id (above 2^53).
    pub tid: i64,
    /// `WAIT_BUYER_PAY`, `TRADE_FINISHED`, …
    pub status: String,
    /// `fixed`, `step` or `fenxiao`.
    pub order_type: String,
    /// For presales, the payment stage.
    pub step_trade_status: Option<String>,
    /// When it was placed.
    pub created: DateTime<Utc>,
    /// When it last changed.
    pub modified: DateTime<Utc>,
    /// When it was paid (a presale: its deposit).
    pub pay_time: Option<DateTime<Utc>>,
    /// What the buyer pays, in yuan as TOP writes it.
    pub payment: String,
    /// The buyer.
    pub buyer_nick: String,
    /// The lines.
    pub items: Vec<TruthItem>,
    /// Every field, as `taobao.trade.fullinfo.get` writes the trade.
    pub json: Json,
    /// Its parcel as a trace read at [`Truth::taken_at`] shows it, once shipped.
    pub parcel: Option<TruthParcel>,
}

/// A shipped order's parcel, as far as its trace has happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthParcel {
    /// The waybill number.
    pub out_sid: String,
    /// The carrier.
    pub company: String,
    /// When its newest event so far happened; `None` before the first.
    pub last_event: Option<DateTime<Utc>>,
    /// Whether it has been signed for (its newest event is `SIGN`).
    pub signed: bool,
}

impl Truth {
    /// The orders shipped and not yet confirmed (`WAIT_BUYER_CONFIRM_GOODS`)
    /// whose parcel is not signed for and has not moved for longer than
    /// `quiet`: what a stalled-parcel check should flag, by tid.
    pub fn stalled_parcels(&self, quiet: chrono::Duration) -> Vec<i64> {
        self.orders
            .iter()
            .filter(|o| o.status == "WAIT_BUYER_CONFIRM_GOODS")
            .filter(|o| {
                o.parcel
                    .as_ref()
                    .is_some_and(|p| !p.signed && p.last_event.is_some_and(|at| self.taken_at - at > quiet))
            })
            .map(|o| o.tid)
            .collect()
    }
}

impl TruthOrder {
    /// The status a connector of `platform` stores for this order: TOP's
    /// own on Taobao; on Douyin, what the order's numeric `order_status`
    /// normalises back to (Douyin's codes are coarser than TOP's statuses).
    pub fn status_on(&self, platform: crate::config::Platform) -> String {
        let douyin = match (platform, douyin_order_status(&self.status)) {
            (crate::config::Platform::Douyin, Some(code)) => {
                crate::platforms::douyin::mapping::status_name(code, self.pay_time.is_some())
            }
            _ => None,
        };
        douyin.map_or_else(|| self.status.clone(), str::to_owned)
    }

    fn new(trade: &Trade, catalog: &[model::Sku], now: DateTime<Utc>) -> Self {
        let items = trade
            .items
            .iter()
            .map(|item| {
                let sku = &catalog[item.sku];
                TruthItem {
                    oid: item.oid,
                    num_iid: sku.num_iid,
                    sku_id: sku.sku_id.to_string(),
                    outer_sku_id: sku.outer_sku_id.clone(),
                    num: item.num,
                    price: yuan(item.price),
                    payment: yuan(item.payment()),
                    refund_status: item.refund_status.map(|s| s.as_str().to_owned()),
                    refund_id: item.refund_id,
                }
            })
            .collect();
        let json = Json::Object(trade.to_json(catalog));
        let parcel = trade.parcel.as_ref().map(|p| {
            // What a trace read now shows: the events that have happened.
            let last = p.steps.iter().rfind(|s| s.at <= now);
            TruthParcel {
                out_sid: p.out_sid.clone(),
                company: p.company.to_owned(),
                last_event: last.map(|s| s.at),
                signed: last.is_some_and(|s| s.action == "SIGN"),
            }
        });
        Self {
            parcel,
            tid: trade.tid,
            status: trade.status.as_str().to_owned(),
            order_type: trade.kind.as_str().to_owned(),
            step_trade_status: json.get("step_trade_status").and_then(Json::as_str).map(str::to_owned),
            created: trade.created,
            modified: trade.modified,
            pay_time: trade.pay_time,
            payment: yuan(trade.payment()),
            buyer_nick: trade.buyer_nick.clone(),
            items,
            json,
        }
    }

    /// Whether the list methods return it when `type` is absent (they leave
    /// `fenxiao` out).
    pub fn listed_by_default(&self) -> bool {
        self.order_type != "fenxiao"
    }
}

/// One line of a [`TruthOrder`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthItem {
    /// The sub-order id.
    pub oid: i64,
    /// The product id.
    pub num_iid: i64,
    /// The platform's SKU id (a string, as TOP writes it).
    pub sku_id: String,
    /// The merchant's SKU code.
    pub outer_sku_id: String,
    /// Quantity.
    pub num: i64,
    /// Unit price in yuan.
    pub price: String,
    /// What the buyer pays for the line, in yuan.
    pub payment: String,
    /// The refund's state, when a refund exists.
    pub refund_status: Option<String>,
    /// The refund's id, when a refund exists.
    pub refund_id: Option<i64>,
}
