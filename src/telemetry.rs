//! The metrics orderflow reports, named in one place.
//!
//! Code records through the `metrics` facade with the functions below; with
//! no recorder installed (tests, `orderflow run`) they cost next to nothing.
//! `orderflow serve` installs a Prometheus recorder with [`install`] and
//! serves `/metrics` (`src/server/web/`), which also sets the gauges read
//! from the store ([`set_gauge`]) on every scrape. `docs/observability.md`
//! lists every metric with its labels.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{Label, Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::platforms::Order;
use crate::store::SaveOutcome;

/// API calls by platform, method and outcome (`ok` or the error class).
pub const API_CALLS: &str = "orderflow_api_calls_total";
/// API call latency, seconds, by platform and method.
pub const API_LATENCY: &str = "orderflow_api_call_duration_seconds";
/// Orders written to the store (new, or a newer version), by platform and shop.
pub const ORDERS_STORED: &str = "orderflow_orders_stored_total";
/// Finished runs by flow and status (`succeeded`, `failed`, `paused`, …).
pub const RUNS: &str = "orderflow_runs_total";
/// Run wall-clock time, seconds, by flow.
pub const RUN_DURATION: &str = "orderflow_run_duration_seconds";
/// Seconds between now and where a shop's incremental stream got to, by
/// platform, shop and stream (`orders.increment`, `refunds.increment`).
pub const SYNC_LAG: &str = "orderflow_sync_lag_seconds";
/// Circuit breaker state by platform, shop and channel: 0 closed, 1
/// half-open, 2 open.
pub const BREAKER_STATE: &str = "orderflow_breaker_state";
/// 1 while the platform bans an app key (rate limit), else 0; by platform and
/// app key.
pub const APP_BANNED: &str = "orderflow_app_banned";
/// 1 while a shop's seller must authorise again, else 0; by platform and shop.
pub const NEEDS_REAUTH: &str = "orderflow_shop_needs_reauth";
/// Open alerts by kind (`stalled_parcel`, `needs_reauth`, …).
pub const OPEN_ALERTS: &str = "orderflow_open_alerts";

/// Every metric name above, for checks such as "the dashboard only queries
/// metrics that exist".
pub const ALL: [&str; 10] = [
    API_CALLS,
    API_LATENCY,
    ORDERS_STORED,
    RUNS,
    RUN_DURATION,
    SYNC_LAG,
    BREAKER_STATE,
    APP_BANNED,
    NEEDS_REAUTH,
    OPEN_ALERTS,
];

/// Upper bounds of the API latency buckets, seconds: TOP answers in tens to
/// hundreds of milliseconds; the slow tail (overloaded gateways, timeouts)
/// reaches tens of seconds.
pub const API_LATENCY_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Upper bounds of the run duration buckets, seconds: an incremental run
/// takes seconds, a backfill of three months hours.
pub const RUN_DURATION_BUCKETS: [f64; 12] =
    [0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0];

/// Shown for the shop of a batch of orders from several shops (a flow whose
/// fetch nodes read different shops into one `store_orders`), whose written
/// count the store does not split.
pub const SEVERAL_SHOPS: &str = "(several)";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's metrics recorder, with
/// real histogram buckets for latency and run duration, and describes every
/// metric. Calling it again returns the first handle. Fails when another
/// recorder was installed first.
///
/// The caller renders `/metrics` from the handle and calls
/// `PrometheusHandle::run_upkeep` now and then (`server::web::serve` does
/// both).
pub fn install() -> Result<PrometheusHandle, BuildError> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(API_LATENCY.to_owned()), &API_LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(RUN_DURATION.to_owned()), &RUN_DURATION_BUCKETS)?
        .install_recorder()?;
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

fn describe() {
    describe_counter!(
        API_CALLS,
        Unit::Count,
        "Platform API calls by platform, method and outcome (ok or error class)."
    );
    describe_histogram!(API_LATENCY, Unit::Seconds, "Platform API call latency by platform and method.");
    describe_counter!(ORDERS_STORED, Unit::Count, "Orders written to the store (new or newer), by platform and shop.");
    describe_counter!(RUNS, Unit::Count, "Finished flow runs by flow and status.");
    describe_histogram!(RUN_DURATION, Unit::Seconds, "Flow run wall-clock time by flow.");
    describe_gauge!(
        SYNC_LAG,
        Unit::Seconds,
        "Now minus the end of the last synced window, by platform, shop and stream."
    );
    describe_gauge!(
        BREAKER_STATE,
        "Circuit breaker state by platform, shop and channel: 0 closed, 1 half-open, 2 open."
    );
    describe_gauge!(APP_BANNED, "1 while the platform bans the app key for exceeding its quota, else 0.");
    describe_gauge!(NEEDS_REAUTH, "1 while the shop's seller must authorise again, else 0.");
    describe_gauge!(OPEN_ALERTS, Unit::Count, "Open alerts by kind.");
}

/// Records one answered (or failed) platform API call. `outcome` is `ok` or
/// the error class (`remote`, `rate_limited`, `malformed`, …).
pub fn record_api_call(platform: &'static str, method: &str, outcome: &'static str, elapsed: Duration) {
    let method = method.to_owned();
    metrics::counter!(API_CALLS, "platform" => platform, "method" => method.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!(API_LATENCY, "platform" => platform, "method" => method).record(elapsed.as_secs_f64());
}

/// Records the orders one `store_orders` batch wrote: `outcome`'s new and
/// updated orders, under the batch's shop ([`SEVERAL_SHOPS`] when it mixes
/// shops). Stale copies are not counted: they changed nothing.
pub fn record_orders_stored(orders: &[Order], outcome: SaveOutcome) {
    let written = outcome.inserted + outcome.updated;
    let Some(first) = orders.first() else { return };
    if written == 0 {
        return;
    }
    let one_shop = orders.iter().all(|o| o.platform == first.platform && o.shop == first.shop);
    let shop = if one_shop { first.shop.clone() } else { SEVERAL_SHOPS.to_owned() };
    metrics::counter!(ORDERS_STORED, "platform" => first.platform.clone(), "shop" => shop).increment(written as u64);
}

/// Records a finished run of `flow`: its status and how long it took.
pub fn record_run(flow: &str, status: &'static str, elapsed: Duration) {
    metrics::counter!(RUNS, "flow" => flow.to_owned(), "status" => status).increment(1);
    metrics::histogram!(RUN_DURATION, "flow" => flow.to_owned()).record(elapsed.as_secs_f64());
}

/// A series' labels, as (name, value) pairs.
pub type Labels = Vec<(String, String)>;

/// The gauges read from the store, each with the label sets it was last
/// given, so that a series whose row is gone (an alert kind with no open
/// alert left, a ban that ended) drops to 0 instead of keeping its old value.
#[derive(Debug, Default)]
pub struct StoreGauges {
    seen: Mutex<BTreeMap<&'static str, BTreeSet<Labels>>>,
}

impl StoreGauges {
    /// Sets gauge `name` to exactly `values` (label set → value): every label
    /// set it had before and is missing now is set to 0.
    pub fn set_all(&self, name: &'static str, values: Vec<(Labels, f64)>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let known = seen.entry(name).or_default();
        let now: BTreeSet<Labels> = values.iter().map(|(labels, _)| labels.clone()).collect();
        for gone in known.difference(&now) {
            set_gauge(name, gone, 0.0);
        }
        for (labels, value) in &values {
            set_gauge(name, labels, *value);
        }
        known.extend(now);
    }
}

/// Sets gauge `name` with `labels` to `value`.
pub fn set_gauge(name: &'static str, labels: &[(String, String)], value: f64) {
    let labels: Vec<Label> = labels.iter().map(|(key, value)| Label::new(key.clone(), value.clone())).collect();
    metrics::gauge!(name, labels).set(value);
}

/// The value of [`BREAKER_STATE`] for a stored breaker state; `None` for a
/// state this version does not know.
pub fn breaker_state_value(state: &str) -> Option<f64> {
    match state {
        "closed" => Some(0.0),
        "half_open" => Some(1.0),
        "open" => Some(2.0),
        _ => None,
    }
}
