//! `fetch_increment`: orders changed since the last run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::{
    BuildContext, BuildError, Built, Emitter, Fields, Halt, NodeContext, NodeError, NodeKind, Output, Role, Source,
};
use crate::clock::Clock;
use crate::platforms::{Anomaly, Order, PageRequest, Platform, TimeWindow};
use crate::store::NewAnomaly;
use crate::sync::breaker::{Breaker, BreakerSettings, Plan};
use crate::sync::by_created::CreatedReader;
use crate::sync::by_modified::{self, Newest, Windows};
use crate::sync::progress::Progress;
use crate::sync::{self, CallFailure, INCREMENT_STREAM, Span};

/// Lists the orders modified since this flow's stored cursor, window by
/// window, and moves the cursor as the sink stores them.
///
/// Each run starts at the cursor minus `lookback` (orders the platform
/// records late are caught on the next run) and reads windows of at most
/// `window` up to one second ago; a window holding more than `split_above`
/// orders is halved first. A window is read from its last page backwards,
/// then its first page again: orders modified meanwhile leave the window
/// (their new time is later), which only moves unread orders towards pages
/// still to come, so none is missed; if the window grew instead, it is read
/// again. Reading N orders costs ⌈N / page_size⌉ + 1 calls per window (one
/// when it fits in a page). The cursor `{"modified_until": time}` of stream
/// `orders.increment/<flow>/<node>` follows the last order of each window to
/// the sink, which commits it with them: each flow keeps its own. A flow
/// without one starts at the shop's handover point (`orders.increment`, set
/// by `fetch_full` when its backfill completes), or without that `first_run`
/// ago. The same page again for window after window is recorded as a
/// `no_progress` anomaly; three in a row fail the run.
///
/// Resilience: a window the platform refuses as too heavy is halved and
/// retried after `overload_wait`; a window far below the recent baseline is
/// recorded as an anomaly and read again. The `breaker`, when declared,
/// watches the channel's calls (each with its retries): past its failure
/// rate it opens, and runs pull the recent period by creation time every
/// `full_pull_every` instead (runs between pulls end `paused`), until a
/// probe after `probe_after` finds the channel healthy; the increment cursor
/// stays put meanwhile, so nothing is missed when the channel is back.
/// Without `breaker:` there is none, and a state an earlier breaker stored
/// is closed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchIncrementSettings {
    /// The shop in `orderflow.yaml`; the flow's `shop:` when left out.
    #[serde(default)]
    pub shop: Option<String>,
    /// How far before the cursor each run starts again.
    #[serde(default = "default_lookback")]
    pub lookback: Span,
    /// The longest window one listing covers; the platform allows at most
    /// one day, TOP advises 30 minutes or less.
    #[serde(default = "default_window")]
    pub window: Span,
    /// Orders per page, 1 to 100: bigger pages, fewer calls.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Windows holding more orders than this are halved (down to a minute)
    /// before they are read; later windows grow back when they are quiet.
    #[serde(default = "default_split_above")]
    pub split_above: u64,
    /// How far back the first run reaches when neither the flow has a cursor
    /// nor the shop a handover point yet.
    #[serde(default = "default_first_run")]
    pub first_run: Span,
    /// The platform fields to list; empty asks for every field the order
    /// model needs.
    #[serde(default)]
    pub fields: Vec<String>,
    /// How long to wait when the platform refuses a window as too heavy
    /// (the window is also halved).
    #[serde(default = "sync::default_overload_wait")]
    pub overload_wait: Span,
    /// A window holding fewer orders than this percentage of what the
    /// recent baseline expects is recorded as an anomaly and read again;
    /// 0 turns the check off.
    #[serde(default = "default_drop_below")]
    pub drop_below: f64,
    /// The circuit breaker of the shop's incremental channel, and what the
    /// flow does while it is open; none when left out.
    #[serde(default)]
    pub breaker: Option<BreakerSettings>,
}

fn default_lookback() -> Span {
    Span(Duration::from_secs(5 * 60))
}

fn default_window() -> Span {
    Span(Duration::from_secs(30 * 60))
}

pub(crate) fn default_page_size() -> u32 {
    100
}

fn default_drop_below() -> f64 {
    10.0
}

fn default_split_above() -> u64 {
    5_000
}

fn default_first_run() -> Span {
    Span(Duration::from_secs(24 * 3600))
}

/// The key of the increment cursor holding the baseline (orders modified
/// per minute in recent windows), committed with the cursor.
const BASELINE_KEY: &str = "orders_per_minute";
/// How much each window moves the baseline towards its own rate.
const BASELINE_WEIGHT: f64 = 0.2;
/// A drop is only judged where the baseline expects at least this many
/// orders: fewer is normal noise.
const DROP_MIN_EXPECTED: f64 = 50.0;

/// The `fetch_increment` node type.
pub struct FetchIncrement;

impl NodeKind for FetchIncrement {
    const TYPE: &'static str = "fetch_increment";
    const ROLE: Role = Role::Source;
    type Settings = FetchIncrementSettings;

    fn example() -> &'static str {
        "changed:\n  use: fetch_increment\n  with:\n    lookback: 5m\n    window: 30m\n    page_size: 100\n"
    }

    fn output() -> Output {
        Output::Records(Fields::order())
    }

    fn build(settings: FetchIncrementSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let platform = ctx.platform(settings.shop.as_deref())?;
        check_page_size(settings.page_size)?;
        by_modified::check_window(settings.window, platform.as_ref())?;
        if settings.breaker.as_ref().is_some_and(|breaker| !(0.0..=100.0).contains(&breaker.failure_rate)) {
            return Err(BuildError::setting("breaker.failure_rate", "must be a percentage, 0 to 100"));
        }
        let breaker = Mutex::new(Breaker::new(settings.breaker.clone().unwrap_or_else(BreakerSettings::off)));
        Ok(Built::Source(Box::new(IncrementSource { settings, platform, clock: ctx.clock.clone(), breaker })))
    }
}

/// Refuses page sizes the platforms do not accept.
pub(crate) fn check_page_size(page_size: u32) -> Result<(), BuildError> {
    if (1..=100).contains(&page_size) {
        Ok(())
    } else {
        Err(BuildError::setting("page_size", format!("must be 1 to 100, not {page_size}")))
    }
}

struct IncrementSource {
    settings: FetchIncrementSettings,
    platform: Arc<dyn Platform>,
    clock: Clock,
    /// Held across a run, locked only between awaits.
    breaker: Mutex<Breaker>,
}

/// How a run that read the channel ended.
enum Increment {
    /// Every window up to now is read.
    Done,
    /// The breaker opened midway.
    Tripped,
}

#[async_trait]
impl Source for IncrementSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let ctx = out.ctx();
        let platform = self.platform.as_ref();
        let Some(settings) = self.settings.breaker.clone().filter(|breaker| breaker.enabled) else {
            let closed =
                ctx.store.close_breakers(platform.name(), platform.shop(), Some(INCREMENT_STREAM), Utc::now()).await?;
            if !closed.is_empty() {
                tracing::info!(node_id = %ctx.node_id, shop = platform.shop(),
                    "The flow declares no breaker: the one an earlier run stored is closed.");
            }
            self.read_increment(out).await?;
            return Ok(());
        };
        let stored = ctx.store.load_breaker(platform.name(), platform.shop(), INCREMENT_STREAM).await?;
        let loaded = match &stored {
            Some(row) => Breaker::from_row(settings.clone(), row),
            None => Breaker::new(settings.clone()),
        };
        *self.lock_breaker() = loaded;
        let plan = self.lock_breaker().plan(self.clock.now());
        let outcome = match plan {
            Plan::Incremental => match self.read_increment(out).await {
                Ok(Increment::Done) => {
                    self.lock_breaker().finish();
                    Ok(())
                }
                Ok(Increment::Tripped) => self.pull_in_full(out).await,
                // The call that failed past its retries was counted: if it
                // opened the breaker, the full pull stands in.
                Err(error) if !error.stops_run() && self.lock_breaker().trips(self.clock.now()) => {
                    tracing::warn!(node_id = %ctx.node_id, %error, "The incremental channel failed; pulling in full instead.");
                    self.pull_in_full(out).await
                }
                Err(error) => Err(error),
            },
            Plan::FullPull => self.pull_in_full(out).await,
            Plan::Wait(next) => {
                let (rate, calls) = self.lock_breaker().failure_rate();
                Err(NodeError::halted(
                    Halt::Paused,
                    format!(
                        "the circuit breaker of {} shop {:?} is open ({rate:.1} % of the last {calls} incremental calls failed); the next full pull is at {next}",
                        platform.name(),
                        platform.shop()
                    ),
                ))
            }
        };
        let row = self.lock_breaker().to_row(platform.name(), platform.shop(), INCREMENT_STREAM, self.clock.now());
        ctx.store.save_breaker(&row).await?;
        outcome
    }
}

impl IncrementSource {
    fn lock_breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the channel window by window from the cursor up to now.
    async fn read_increment(&self, out: &mut Emitter<'_>) -> Result<Increment, NodeError> {
        let ctx = out.ctx();
        let platform = self.platform.as_ref();
        let (stream, stored) = sync::resume_point(ctx, platform, INCREMENT_STREAM).await?;
        let resumed = stored.as_ref().and_then(sync::modified_until);
        let mut baseline = stored.as_ref().and_then(|value| value.get(BASELINE_KEY)?.as_f64());
        let end = sync::settled_now();
        if resumed.is_none() {
            tracing::warn!(node_id = %ctx.node_id, shop = platform.shop(), first_run = %self.settings.first_run,
                "No increment cursor of this flow or handover point of the shop yet: starting from `first_run` ago (run fetch_full to backfill).");
        }
        let start = by_modified::run_start(
            resumed,
            self.settings.lookback.chrono(),
            self.settings.first_run.chrono(),
            end,
            platform.horizon(),
        );
        let mut windows = Windows::new(start, end, self.settings.window.chrono(), self.settings.split_above);
        let mut overloads = 0;
        let mut progress = Progress::new(platform, "orders_modified");
        while let Some(window) = windows.next() {
            let mut orders = match self.read_window(ctx, window, windows.split_limit(window), &mut progress).await {
                Ok(Some(orders)) => orders,
                Ok(None) => {
                    windows.shrink(window);
                    tracing::info!(node_id = %ctx.node_id, "Window too crowded; halving it.");
                    continue;
                }
                Err(CallFailure::Overloaded(error)) if overloads < by_modified::MAX_OVERLOADS => {
                    overloads += 1;
                    windows.shrink(window);
                    sync::wait_out_overload(ctx, &error, self.settings.overload_wait.0).await?;
                    continue;
                }
                Err(failure) => return Err(failure.into()),
            };
            if self.is_drop(window, orders.len(), baseline) {
                orders = self.read_drop_again(ctx, window, orders, baseline, &mut progress).await?;
            }
            let per_minute = orders.len() as f64 / (window.span().num_seconds().max(1) as f64 / 60.0);
            baseline = Some(baseline.map_or(per_minute, |b| b + BASELINE_WEIGHT * (per_minute - b)));
            let until = resumed.map_or(window.end, |r| r.max(window.end));
            let cursor = sync::cursor(platform, &stream, json!({ "modified_until": until, BASELINE_KEY: baseline }));
            windows.advance(ctx, window, orders.len());
            emit_window(out, orders, cursor).await?;
            if self.lock_breaker().trips(self.clock.now()) {
                return Ok(Increment::Tripped);
            }
        }
        Ok(Increment::Done)
    }

    /// Whether `count` orders in `window` are far fewer than the baseline
    /// (orders per minute of the shop's recent windows) leads to expect.
    fn is_drop(&self, window: TimeWindow, count: usize, baseline: Option<f64>) -> bool {
        let minutes = window.span().num_seconds() as f64 / 60.0;
        let expected = baseline.unwrap_or(0.0) * minutes;
        self.settings.drop_below > 0.0
            && expected >= DROP_MIN_EXPECTED
            && (count as f64) < expected * self.settings.drop_below / 100.0
    }

    /// Records a sudden drop as an anomaly and reads the window once more:
    /// an answer that lost orders on the way must not pass for a quiet hour.
    /// A shop that really went quiet reads the same twice and is believed.
    async fn read_drop_again(
        &self,
        ctx: &NodeContext,
        window: TimeWindow,
        first: Vec<Order>,
        baseline: Option<f64>,
        progress: &mut Progress,
    ) -> Result<Vec<Order>, NodeError> {
        let platform = self.platform.as_ref();
        let excerpt = format!(
            "{} orders modified in {} – {}, where the recent baseline of {:.1} a minute expects about {:.0}",
            first.len(),
            window.start,
            window.end,
            baseline.unwrap_or(0.0),
            baseline.unwrap_or(0.0) * window.span().num_seconds() as f64 / 60.0
        );
        tracing::warn!(node_id = %ctx.node_id, shop = platform.shop(), "{excerpt}: reading the window again.");
        let anomaly = NewAnomaly {
            run_id: Some(ctx.run_id.clone()),
            platform: platform.name().to_owned(),
            shop: platform.shop().to_owned(),
            method: "orders_modified".to_owned(),
            kind: Anomaly::Drop.as_str().to_owned(),
            excerpt,
        };
        ctx.store.record_anomalies(&[anomaly], Utc::now()).await?;
        let mut orders = Newest::default();
        orders.extend(first);
        if let Some(again) = self.read_window(ctx, window, None, progress).await? {
            orders.extend(again);
        }
        Ok(orders.into_vec())
    }

    /// A full pull of the recent period by creation time, standing in for
    /// the channel while the breaker is open. It moves no cursor: when the
    /// channel is back, the increment resumes where it stood, so nothing
    /// modified meanwhile is missed.
    async fn pull_in_full(&self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let ctx = out.ctx();
        let platform = self.platform.as_ref();
        let now = sync::settled_now();
        let period = self.lock_breaker().settings().full_pull_period.chrono().min(platform.horizon());
        let since = now - period + chrono::Duration::minutes(1);
        tracing::warn!(node_id = %ctx.node_id, shop = platform.shop(), %since,
            "Circuit breaker open: pulling the recent period in full instead of the incremental channel.");
        let reader = CreatedReader {
            platform,
            page_size: self.settings.page_size,
            fields: &self.settings.fields,
            overload_wait: self.settings.overload_wait.0,
        };
        let mut next_end = now;
        while next_end > since {
            let (orders, end) = reader.read_newest(ctx, TimeWindow { start: since, end: next_end }).await?;
            next_end = end;
            let records = orders.iter().map(sync::order_record).collect::<Result<Vec<_>, _>>()?;
            out.emit(records).await?;
        }
        self.lock_breaker().pulled_in_full(self.clock.now());
        Ok(())
    }

    /// Every order modified in `window`, newest version of each; `None` when
    /// it holds more than `split_above` (see [`by_modified::read_window`]).
    async fn read_window(
        &self,
        ctx: &NodeContext,
        window: TimeWindow,
        split_above: Option<u64>,
        progress: &mut Progress,
    ) -> Result<Option<Vec<Order>>, CallFailure> {
        by_modified::read_window(ctx, window, self.settings.page_size, split_above, progress, |page| {
            self.page(ctx, window, page)
        })
        .await
    }

    /// One page, its outcome after the retries counted by the breaker.
    async fn page(
        &self,
        ctx: &NodeContext,
        window: TimeWindow,
        page: PageRequest,
    ) -> Result<crate::platforms::Page<Order>, CallFailure> {
        let fields = &self.settings.fields;
        let platform = self.platform.as_ref();
        let result = sync::call_platform(ctx, platform, || platform.orders_modified(window, page, fields)).await;
        self.lock_breaker().record(&result);
        let by_modified = sync::ListedBy { field: "modified", time: |order: &Order| order.modified };
        Ok(sync::keep_readable(ctx, platform, "orders_modified", window, by_modified, result?).await?)
    }
}

/// Sends a window's orders in batches, the cursor behind the last.
pub(crate) async fn emit_window(
    out: &mut Emitter<'_>,
    orders: Vec<Order>,
    cursor: crate::store::Cursor,
) -> Result<(), NodeError> {
    let records = orders.iter().map(sync::order_record).collect::<Result<Vec<_>, _>>()?;
    emit_records(out, records, cursor).await
}

/// Sends a window's records in batches, the cursor behind the last.
pub(crate) async fn emit_records(
    out: &mut Emitter<'_>,
    mut records: Vec<crate::record::Record>,
    cursor: crate::store::Cursor,
) -> Result<(), NodeError> {
    let batch_size = out.ctx().batch_size.max(1);
    while records.len() > batch_size {
        let rest = records.split_off(batch_size);
        out.emit(std::mem::replace(&mut records, rest)).await?;
    }
    out.emit_through(records, cursor).await
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{DateTime, Utc};
    use serde_json::Value as Json;
    use serde_json::json;

    use super::*;
    use crate::nodes::testing::{FakeShop, assert_output, records_of, source_batches};

    #[tokio::test]
    async fn orders_modified_while_the_window_is_paged_are_all_read() {
        let now = Utc::now();
        let base = now - chrono::Duration::minutes(50);
        // 250 orders one second apart, in the first 30-minute window.
        let orders = (0..250).map(|i| (1_000 + i, base + chrono::Duration::seconds(i)));
        let moved_to = now - chrono::Duration::minutes(5);
        let platform = FakeShop::new(orders, Some(moved_to));
        let settings = json!({"shop": "s", "first_run": "1h", "page_size": 20});
        let batches = source_batches::<FetchIncrement>(settings, &platform.context()).await;

        let read: BTreeSet<i64> =
            batches.iter().flatten().filter_map(|r| r.fields.get("tid").and_then(Json::as_i64)).collect();
        assert_eq!(read, (1_000..1_250).collect::<BTreeSet<_>>(), "every order read, moved or not");
        assert_output(&FetchIncrement::output(), &[], &records_of(&batches));
        // The moved orders were met again in the later window at their new version.
        let final_versions = platform.orders.lock().unwrap().clone();
        let moved: Vec<i64> = final_versions.iter().filter(|(_, (_, m))| *m == moved_to).map(|(t, _)| *t).collect();
        assert!(moved.len() >= 10, "the shop changed during paging: {} moved", moved.len());
        for tid in moved {
            let newest = batches
                .iter()
                .flatten()
                .filter(|r| r.fields.get("tid").and_then(Json::as_i64) == Some(tid))
                .filter_map(|r| r.fields.get("modified").and_then(Json::as_str)?.parse::<DateTime<Utc>>().ok())
                .max();
            assert_eq!(newest, Some(moved_to), "order {tid} read at its new version too");
        }
    }

    #[tokio::test]
    async fn a_crowded_window_is_halved_before_it_is_read() {
        let now = Utc::now();
        let base = now - chrono::Duration::minutes(50);
        // 600 orders, one every two seconds, in the first 30-minute window.
        let orders = (0..600).map(|i| (1_000 + i, base + chrono::Duration::seconds(2 * i)));
        let platform = FakeShop::new(orders, None);
        // The shop goes quiet after its 600 orders; the drop check would
        // rightly read that quiet window twice, which is not counted here.
        let settings = json!({"shop": "s", "first_run": "1h", "page_size": 100, "split_above": 200, "drop_below": 0});
        let batches = source_batches::<FetchIncrement>(settings, &platform.context()).await;

        let read: BTreeSet<i64> =
            batches.iter().flatten().filter_map(|r| r.fields.get("tid").and_then(Json::as_i64)).collect();
        assert_eq!(read.len(), 600);
        let windows = platform.windows.lock().unwrap().clone();
        let held = |w: &TimeWindow| {
            (0..600)
                .filter(|i| {
                    (base + chrono::Duration::seconds(2 * i)) >= w.start
                        && (base + chrono::Duration::seconds(2 * i)) < w.end
                })
                .count()
        };
        let crowded: Vec<&TimeWindow> = windows.iter().filter(|w| held(w) > 200).collect();
        // Each crowded window costs one probe, never a page beyond it.
        let distinct: BTreeSet<(DateTime<Utc>, DateTime<Utc>)> = crowded.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(crowded.len(), distinct.len(), "a crowded window was paged: {crowded:?}");
        assert!(!crowded.is_empty() && crowded.len() <= 4, "{} probes of crowded windows", crowded.len());
        assert!(windows.len() <= 24, "{} list calls for 600 orders", windows.len());
    }

    #[tokio::test]
    async fn a_window_far_below_the_baseline_is_recorded_and_read_again() {
        let now = Utc::now();
        let base = now - chrono::Duration::minutes(60);
        // 30 orders a minute for 30 minutes, then nothing.
        let orders = (0..900).map(|i| (1_000 + i, base + chrono::Duration::seconds(2 * i)));
        let platform = FakeShop::new(orders, None);
        let settings: FetchIncrementSettings =
            serde_json::from_value(json!({"shop": "s", "first_run": "1h", "window": "10m", "page_size": 100})).unwrap();
        let Ok(crate::nodes::Built::Source(node)) = FetchIncrement::build(settings, &platform.context()) else {
            panic!("builds")
        };
        let store = crate::store::Store::connect("sqlite::memory:").await.unwrap();
        crate::nodes::testing::run_source_in(node, crate::flow::OnError::Fail, &store).await.unwrap();

        let drops = store.recent_anomalies(10).await.unwrap();
        assert!(!drops.is_empty() && drops.iter().all(|a| a.kind == "drop"), "{drops:?}");
        assert!(drops[0].excerpt.contains("0 orders modified"), "{}", drops[0].excerpt);
        let windows = platform.windows.lock().unwrap().clone();
        let last_order = base + chrono::Duration::seconds(2 * 899);
        let quiet: Vec<&TimeWindow> = windows.iter().filter(|w| w.start > last_order).collect();
        let first_quiet = quiet.first().expect("quiet windows were read");
        assert_eq!(quiet.iter().filter(|w| **w == *first_quiet).count(), 2, "read again once: {quiet:?}");
    }

    #[tokio::test]
    async fn a_gateway_answering_the_same_page_to_every_window_fails_the_run_soon() {
        let now = Utc::now();
        let orders = (0..150).map(|i| (1_000 + i, now - chrono::Duration::minutes(i)));
        let platform = FakeShop::new(orders, None);
        let recent = TimeWindow { start: now - chrono::Duration::hours(3), end: now };
        platform.stuck_on(recent, PageRequest { page_no: 1, page_size: 100, with_total: true });
        let settings: FetchIncrementSettings =
            serde_json::from_value(json!({"shop": "s", "first_run": "1d", "drop_below": 0})).unwrap();
        let Ok(crate::nodes::Built::Source(node)) = FetchIncrement::build(settings, &platform.context()) else {
            panic!("builds")
        };
        let store = crate::store::Store::connect("sqlite::memory:").await.unwrap();
        let error = crate::nodes::testing::run_source_in(node, crate::flow::OnError::Fail, &store)
            .await
            .expect_err("the run fails")
            .to_string();

        // A window answered with records of another window fails at once,
        // naming it; were the records inside, the progress guard would.
        assert!(error.contains("orders_modified") && error.contains("none of them inside it"), "{error}");
        let calls = platform.windows.lock().unwrap().len();
        let stalls = sync::progress::MAX_STALLS as usize;
        assert!(calls <= 3 * stalls + 1, "{calls} calls before failing");
        assert!(store.dead_letters("test-run").await.unwrap().is_empty(), "nothing of the stray page is set aside");
    }

    #[tokio::test]
    async fn halving_a_window_crowded_in_its_first_minute_is_progress() {
        let now = Utc::now();
        let rush = now - chrono::Duration::minutes(50);
        // 700 orders in one minute: every halving's probe lists the same
        // newest page, for windows that overlap.
        let orders = (0..700).map(|i| (1_000 + i, rush + chrono::Duration::milliseconds(80 * i)));
        let platform = FakeShop::new(orders, None);
        let settings = json!({"shop": "s", "first_run": "1h", "page_size": 100, "split_above": 200, "drop_below": 0});
        let batches = source_batches::<FetchIncrement>(settings, &platform.context()).await;

        let read: BTreeSet<i64> =
            batches.iter().flatten().filter_map(|r| r.fields.get("tid").and_then(Json::as_i64)).collect();
        assert_eq!(read.len(), 700);
    }
}
