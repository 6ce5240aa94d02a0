//! `fetch_full`: every order created in the last days, resumable.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::fetch_increment::{check_page_size, default_page_size, emit_window};
use super::{BuildContext, BuildError, Built, Emitter, Fields, NodeError, NodeKind, Output, Role, Source};
use crate::activity::{self, Activity};
use crate::platforms::{Platform, TimeWindow};
use crate::sync::by_created::CreatedReader;
use crate::sync::{self, FULL_STREAM, INCREMENT_STREAM, Span};

/// Backfills every order created in the last `days` days (first
/// initialisation, or a full pull when the increment channel is not
/// trusted), newest first, and hands the increment channel over when done.
///
/// The range is read as a window whose end moves back past each page read
/// (creation times never change, so nothing moves between pages); each page
/// goes downstream with the backfill's position `{"since", "until",
/// "next_end", "complete"}` behind it, committed with the page's orders. A
/// backfill killed midway resumes from its last committed page on the next
/// run instead of starting over; the position is the shop's, shared by
/// every backfill flow of the shop. When it completes, the shop's handover
/// point (stream `orders.increment`) is set to the backfill's start (unless
/// it is already later): every `fetch_increment` flow without a cursor of
/// its own starts there, so it picks up every order changed during the
/// backfill. A page that does not move the window's end back is recorded as
/// a `no_progress` anomaly and read again; three in a row fail the run.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchFullSettings {
    /// The shop in `orderflow.yaml`; the flow's `shop:` when left out.
    #[serde(default)]
    pub shop: Option<String>,
    /// How many days back to read, at most the platform's horizon (90 on TOP).
    #[serde(default = "default_days")]
    pub days: u32,
    /// Orders per page, 1 to 100.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// The platform fields to list; empty asks for every field the order
    /// model needs.
    #[serde(default)]
    pub fields: Vec<String>,
    /// How long to wait when the platform refuses a query as too heavy.
    #[serde(default = "sync::default_overload_wait")]
    pub overload_wait: Span,
}

fn default_days() -> u32 {
    90
}

/// The `fetch_full` node type.
pub struct FetchFull;

impl NodeKind for FetchFull {
    const TYPE: &'static str = "fetch_full";
    const ROLE: Role = Role::Source;
    type Settings = FetchFullSettings;

    fn example() -> &'static str {
        "backfill:\n  use: fetch_full\n  with:\n    days: 90\n    page_size: 100\n"
    }

    fn output() -> Output {
        Output::Records(Fields::order())
    }

    fn build(settings: FetchFullSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let platform = ctx.platform(settings.shop.as_deref())?;
        check_page_size(settings.page_size)?;
        let horizon = platform.horizon().num_days();
        if settings.days == 0 || i64::from(settings.days) > horizon {
            return Err(BuildError::setting(
                "days",
                format!("must be 1 to {horizon}: {} lists orders that far back only", platform.name()),
            ));
        }
        Ok(Built::Source(Box::new(FullSource { settings, platform })))
    }
}

/// Where a backfill stands: the cursor value of the `orders.full` stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backfill {
    /// The oldest creation time read.
    pub since: DateTime<Utc>,
    /// When the backfill began: the newest creation time read.
    pub until: DateTime<Utc>,
    /// Orders created in `[next_end, until)` are stored.
    pub next_end: DateTime<Utc>,
    /// Whether the whole range is stored.
    pub complete: bool,
}

impl Backfill {
    /// The share of the range already stored, 0 to 1.
    pub fn progress(&self) -> f64 {
        let whole = (self.until - self.since).num_seconds().max(1) as f64;
        ((self.until - self.next_end).num_seconds() as f64 / whole).clamp(0.0, 1.0)
    }
}

struct FullSource {
    settings: FetchFullSettings,
    platform: Arc<dyn Platform>,
}

#[async_trait]
impl Source for FullSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let ctx = out.ctx();
        let platform = self.platform.as_ref();
        let stored = ctx.store.load_cursor(platform.name(), platform.shop(), FULL_STREAM).await?;
        let now = sync::settled_now();
        let mut backfill = match stored.and_then(|value| serde_json::from_value::<Backfill>(value).ok()) {
            Some(backfill) if !backfill.complete => {
                tracing::info!(node_id = %ctx.node_id, shop = platform.shop(), next_end = %backfill.next_end,
                    "Resuming the backfill where it stopped.");
                backfill
            }
            _ => {
                let since = now - chrono::Duration::days(i64::from(self.settings.days));
                Backfill { since, until: now, next_end: now, complete: false }
            }
        };
        // A resumed backfill may have outlived the platform's horizon.
        let oldest = now - platform.horizon() + chrono::Duration::minutes(1);
        let since = backfill.since.max(oldest);
        let reader = CreatedReader {
            platform,
            page_size: self.settings.page_size,
            fields: &self.settings.fields,
            overload_wait: self.settings.overload_wait.0,
        };
        // For the progress report: pages vary in the time they cover, so
        // the pages left are estimated at this run's average so far.
        let (mut read, walk_from) = (0, backfill.next_end);
        while backfill.next_end > since {
            let window = TimeWindow { start: since, end: backfill.next_end };
            let (orders, next_end) = reader.read_newest(ctx, window).await?;
            read += 1;
            ctx.activity.report(|| Activity::Windows {
                node_id: ctx.node_id.clone(),
                done: read,
                total: activity::windows_total(read, next_end - since, (walk_from - next_end) / read as i32),
            });
            backfill.next_end = next_end;
            let cursor = sync::cursor(platform, FULL_STREAM, serde_json::to_value(&backfill).unwrap_or_default());
            emit_window(out, orders, cursor).await?;
        }
        backfill.complete = true;
        let cursor = sync::cursor(platform, FULL_STREAM, serde_json::to_value(&backfill).unwrap_or_default());
        out.emit_through(Vec::new(), cursor).await?;

        let increment = ctx.store.load_cursor(platform.name(), platform.shop(), INCREMENT_STREAM).await?;
        if increment.as_ref().and_then(sync::modified_until).is_none_or(|until| until < backfill.until) {
            let cursor = sync::cursor(platform, INCREMENT_STREAM, json!({ "modified_until": backfill.until }));
            out.emit_through(Vec::new(), cursor).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{Value as Json, json};

    use super::*;
    use crate::nodes::testing::{FakeShop, assert_output, records_of, source_batches};

    #[tokio::test]
    async fn orders_sharing_a_second_across_page_edges_are_all_read() {
        let now = Utc::now();
        let crowded = now - chrono::Duration::days(3);
        // 150 orders in one second (more than a page), 130 spread over two
        // days with pairs sharing a second, and one on the oldest edge.
        let orders = (0..150)
            .map(|i| (1_000 + i, crowded))
            .chain(
                (0..130)
                    .map(|i| (2_000 + i, now - chrono::Duration::hours(1) - chrono::Duration::minutes(20 * (i / 2)))),
            )
            .chain([(3_000, now - chrono::Duration::days(9) + chrono::Duration::minutes(1))]);
        let shop = FakeShop::new(orders, None);
        let batches =
            source_batches::<FetchFull>(json!({"shop": "s", "days": 9, "page_size": 100}), &shop.context()).await;

        let read: BTreeSet<i64> =
            batches.iter().flatten().filter_map(|r| r.fields.get("tid").and_then(Json::as_i64)).collect();
        let expected: BTreeSet<i64> = shop.orders.lock().unwrap().keys().copied().collect();
        assert_eq!(read, expected);
        let calls = shop.windows.lock().unwrap().len();
        assert!(calls <= 7, "{calls} calls for 281 orders in pages of 100");
        assert_output(&FetchFull::output(), &[], &records_of(&batches));
    }

    /// Builds `settings` on `shop` and runs it to its end against a fresh store.
    async fn run_on(shop: &std::sync::Arc<FakeShop>, settings: Json) -> (Result<(), NodeError>, crate::store::Store) {
        let settings: FetchFullSettings = serde_json::from_value(settings).unwrap();
        let Ok(Built::Source(node)) = FetchFull::build(settings, &shop.context()) else { panic!("builds") };
        let store = crate::store::Store::connect("sqlite::memory:").await.unwrap();
        let result = crate::nodes::testing::run_source_in(node, crate::flow::OnError::Fail, &store).await.map(drop);
        (result, store)
    }

    #[tokio::test]
    async fn a_gateway_answering_the_same_page_to_every_window_fails_the_backfill_soon() {
        let now = Utc::now();
        let orders = (0..150).map(|i| (1_000 + i, now - chrono::Duration::minutes(i)));
        let shop = FakeShop::new(orders, None);
        let everything = TimeWindow { start: now - chrono::Duration::days(1), end: now };
        shop.stuck_on(everything, crate::platforms::PageRequest { page_no: 1, page_size: 100, with_total: false });
        let (result, store) = run_on(&shop, json!({"shop": "s", "days": 9, "page_size": 100})).await;

        let error = result.expect_err("the backfill fails").to_string();
        assert!(error.contains("no progress") && error.contains("orders_created"), "{error}");
        let calls = shop.windows.lock().unwrap().len();
        assert_eq!(calls, 1 + sync::progress::MAX_STALLS as usize, "calls before failing");
        // The stuck page also lists orders newer than the windows asked for:
        // those are set aside as `wrong_type`; the stalls are counted apart.
        let anomalies = store.recent_anomalies(50).await.unwrap();
        let stalls: Vec<_> = anomalies.iter().filter(|a| a.kind == "no_progress").collect();
        assert_eq!(stalls.len(), sync::progress::MAX_STALLS as usize, "{anomalies:?}");
        assert!(stalls.iter().all(|a| a.excerpt.contains("not back")), "{stalls:?}");
    }

    #[tokio::test]
    async fn a_gateway_repeating_the_page_of_a_crowded_second_fails_the_backfill_soon() {
        let now = Utc::now();
        // 150 orders in one second: more than a page, paged through in full.
        let second = now - chrono::Duration::hours(2);
        let shop = FakeShop::new((0..150).map(|i| (1_000 + i, second)), None);
        let window = TimeWindow { start: now - chrono::Duration::days(1), end: now };
        shop.stuck_on(window, crate::platforms::PageRequest { page_no: 1, page_size: 100, with_total: false });
        let (result, _) = run_on(&shop, json!({"shop": "s", "days": 9, "page_size": 100})).await;

        let error = result.expect_err("the backfill fails").to_string();
        assert!(error.contains("the same 100 orders as page"), "{error}");
        let calls = shop.windows.lock().unwrap().len();
        assert!(calls <= 1 + sync::progress::MAX_STALLS as usize, "{calls} calls before failing");
    }

    #[tokio::test]
    async fn orders_created_outside_the_window_asked_for_are_set_aside() {
        let now = Utc::now();
        let shop = FakeShop::new((1..=3).map(|tid| (tid, now - chrono::Duration::hours(tid))), None);
        let (epoch, far) = ("1970-01-02T00:00:00Z".parse().unwrap(), "2099-01-01T00:00:00Z".parse().unwrap());
        shop.strays.lock().unwrap().extend([
            crate::nodes::testing::fake_order(8, (epoch, now)),
            crate::nodes::testing::fake_order(9, (far, far)),
        ]);
        let settings: FetchFullSettings = serde_json::from_value(json!({"shop": "s", "days": 2})).unwrap();
        let Ok(Built::Source(node)) = FetchFull::build(settings, &shop.context()) else { panic!("a source") };
        let (batches, letters) =
            crate::nodes::testing::run_source(node, crate::flow::OnError::Fail).await.expect("the source runs");

        let read: BTreeSet<i64> =
            batches.iter().flatten().filter_map(|r| r.fields.get("tid").and_then(Json::as_i64)).collect();
        assert_eq!(read, BTreeSet::from([1, 2, 3]), "the true orders, all of them");
        let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
        assert_eq!(letters.len(), 2, "{reasons:?}");
        assert!(reasons.iter().any(|r| r.starts_with("record 8: created 1970-01-02")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.starts_with("record 9: created 2099-01-01")), "{reasons:?}");
    }
}
