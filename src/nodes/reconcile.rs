//! `reconcile`: compares the platform's order counts with the database's,
//! day by day, and re-fetches exactly the windows that differ.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration as Days, NaiveDate, TimeZone, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use super::fetch_increment::{check_page_size, default_page_size};
use super::{BuildContext, BuildError, Built, Emitter, Fields, NodeContext, NodeError, NodeKind, Output, Role, Source};
use crate::platforms::{Platform, TimeWindow};
use crate::store::Reconciliation;
use crate::sync::by_created::CreatedReader;
use crate::sync::{self, Span};

/// For each of the last `days` whole days (in `timezone`), counts the orders
/// the platform lists as created that day and the orders the database holds
/// for it. A day that differs is split into windows of `split`, counted
/// again, and every window that differs is read in full and sent on (to
/// `store_orders`), repairing orders that went missing however they did —
/// a sync bug, a lost write, a row deleted by hand. Each compared window is
/// recorded in the `reconciliations` table: both counts, how many orders were
/// re-fetched and how many of them the database lacked. Today is compared
/// too, from midnight up to `settle` ago: the orders of the last minutes may
/// simply not be synced yet. Days past the platform's horizon are skipped.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileSettings {
    /// The shop in `orderflow.yaml`; the flow's `shop:` when left out.
    #[serde(default)]
    pub shop: Option<String>,
    /// How many whole days before today to compare (today itself is
    /// always compared, up to `settle` ago).
    #[serde(default = "default_days")]
    #[schemars(range(min = 1, max = 89))]
    pub days: u32,
    /// The time zone whose days are compared (the platform's own).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// The windows a differing day is narrowed down to before re-fetching.
    #[serde(default = "default_split")]
    pub split: Span,
    /// Orders per page when re-fetching, 1 to 100.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// How long to wait when the platform refuses a query as too heavy.
    #[serde(default = "sync::default_overload_wait")]
    pub overload_wait: Span,
    /// Orders created this recently are left out of today's comparison: the
    /// incremental sync may not have stored them yet (a few of its runs).
    #[serde(default = "default_settle")]
    pub settle: Span,
}

fn default_settle() -> Span {
    Span(std::time::Duration::from_secs(30 * 60))
}

fn default_days() -> u32 {
    3
}

fn default_timezone() -> String {
    "Asia/Shanghai".to_owned()
}

fn default_split() -> Span {
    Span(std::time::Duration::from_secs(3600))
}

/// The `reconcile` node type.
pub struct Reconcile;

impl NodeKind for Reconcile {
    const TYPE: &'static str = "reconcile";
    const ROLE: Role = Role::Source;
    type Settings = ReconcileSettings;

    fn example() -> &'static str {
        "reconcile:\n  use: reconcile\n  with:\n    days: 3\n    timezone: Asia/Shanghai\n    split: 1h\n    settle: 30m\n"
    }

    fn output() -> Output {
        Output::Records(Fields::order())
    }

    fn build(settings: ReconcileSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let platform = ctx.platform(settings.shop.as_deref())?;
        check_page_size(settings.page_size)?;
        let timezone: chrono_tz::Tz = settings.timezone.parse().map_err(|_| {
            BuildError::setting("timezone", format!("{:?} is not an IANA time zone", settings.timezone))
        })?;
        let day = std::time::Duration::from_secs(24 * 3600);
        if settings.split.0 < std::time::Duration::from_secs(60) || settings.split.0 > day {
            return Err(BuildError::setting("split", "must be 1m to 1d"));
        }
        if settings.settle.0 > day {
            return Err(BuildError::setting("settle", "must be at most 1d: today would never be compared"));
        }
        if settings.days == 0 || i64::from(settings.days) >= platform.horizon().num_days() {
            return Err(BuildError::setting(
                "days",
                format!(
                    "must be 1 to {}: older orders are past the platform's horizon",
                    platform.horizon().num_days() - 1
                ),
            ));
        }
        Ok(Built::Source(Box::new(ReconcileSource { settings, timezone, platform })))
    }
}

struct ReconcileSource {
    settings: ReconcileSettings,
    timezone: chrono_tz::Tz,
    platform: Arc<dyn Platform>,
}

#[async_trait]
impl Source for ReconcileSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let ctx = out.ctx();
        let platform = self.platform.as_ref();
        let now = sync::settled_now();
        let today = now.with_timezone(&self.timezone).date_naive();
        let oldest = now - platform.horizon() + Days::minutes(1);
        let settled = now - self.settings.settle.chrono();
        let (mut differing, mut missing) = (0, 0);
        for back in (0..=i64::from(self.settings.days)).rev() {
            let whole = self.day(today - Days::days(back));
            let day = TimeWindow { start: whole.start, end: whole.end.min(settled) };
            if day.start < oldest || day.start >= day.end {
                continue;
            }
            let found = self.compare(ctx, day).await?;
            self.record(ctx, &found).await?;
            if found.platform_count == found.stored_count {
                continue;
            }
            differing += 1;
            let mut start = day.start;
            while start < day.end {
                let window = TimeWindow { start, end: (start + self.settings.split.chrono()).min(day.end) };
                start = window.end;
                let found = self.compare(ctx, window).await?;
                if found.platform_count == found.stored_count {
                    continue;
                }
                let repaired = self.refetch(out, found).await?;
                missing += repaired.missing;
                self.record(ctx, &repaired).await?;
            }
        }
        tracing::info!(node_id = %ctx.node_id, shop = platform.shop(), days = self.settings.days, differing, missing,
            "Reconciliation done.");
        Ok(())
    }
}

impl ReconcileSource {
    /// The whole day `date` in the node's time zone, in UTC.
    fn day(&self, date: NaiveDate) -> TimeWindow {
        let midnight = |date: NaiveDate| -> DateTime<Utc> {
            let local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
            // Zones that skip midnight start the day at its first instant.
            self.timezone
                .from_local_datetime(&local)
                .earliest()
                .unwrap_or_else(|| self.timezone.from_utc_datetime(&local))
                .with_timezone(&Utc)
        };
        TimeWindow { start: midnight(date), end: midnight(date + Days::days(1)) }
    }

    fn reader(&self) -> CreatedReader<'_> {
        CreatedReader {
            platform: self.platform.as_ref(),
            page_size: self.settings.page_size,
            fields: &[],
            overload_wait: self.settings.overload_wait.0,
        }
    }

    /// Both counts of `window`.
    async fn compare(&self, ctx: &NodeContext, window: TimeWindow) -> Result<Reconciliation, NodeError> {
        let platform = self.platform.as_ref();
        let platform_count = self.reader().count(ctx, window).await?;
        let stored_count =
            ctx.store.count_orders_created(platform.name(), platform.shop(), window.start, window.end).await?;
        Ok(Reconciliation {
            run_id: ctx.run_id.clone(),
            platform: platform.name().to_owned(),
            shop: platform.shop().to_owned(),
            window_start: window.start,
            window_end: window.end,
            platform_count,
            stored_count,
            refetched: 0,
            missing: 0,
        })
    }

    /// Reads every order of a differing window and sends it on; counts the
    /// ones the database lacked.
    async fn refetch(&self, out: &mut Emitter<'_>, found: Reconciliation) -> Result<Reconciliation, NodeError> {
        let ctx = out.ctx();
        let platform = self.platform.as_ref();
        let stored: HashSet<i64> = ctx
            .store
            .tids_created(platform.name(), platform.shop(), found.window_start, found.window_end)
            .await?
            .into_iter()
            .collect();
        let (mut refetched, mut missing) = (0, 0);
        let mut next_end = found.window_end;
        while next_end > found.window_start {
            let window = TimeWindow { start: found.window_start, end: next_end };
            let (orders, end) = self.reader().read_newest(ctx, window).await?;
            next_end = end;
            refetched += orders.len() as u64;
            missing += orders.iter().filter(|order| !stored.contains(&order.tid)).count() as u64;
            let records = orders.iter().map(sync::order_record).collect::<Result<Vec<_>, _>>()?;
            out.emit(records).await?;
        }
        tracing::warn!(node_id = %ctx.node_id, shop = platform.shop(), start = %found.window_start,
            end = %found.window_end, platform_count = found.platform_count, stored_count = found.stored_count,
            refetched, missing, "Window differed; re-fetched it.");
        Ok(Reconciliation { refetched, missing, ..found })
    }

    async fn record(&self, ctx: &NodeContext, found: &Reconciliation) -> Result<(), NodeError> {
        Ok(ctx.store.record_reconciliation(found, Utc::now()).await?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::nodes::testing::{FakeShop, assert_output, records_of, source_batches};

    #[tokio::test]
    async fn orders_the_database_lacks_are_sent_on_with_the_declared_fields() {
        let created = Utc::now() - chrono::Duration::hours(30);
        let shop = FakeShop::new((1..=3).map(|tid| (tid, created)), None);
        let batches = source_batches::<Reconcile>(json!({"shop": "s", "days": 2}), &shop.context()).await;
        let records = records_of(&batches);
        let mut tids: Vec<i64> = records.iter().filter_map(|r| r["tid"].as_i64()).collect();
        tids.sort_unstable();
        assert_eq!(tids, [1, 2, 3], "an empty database lacks every order");
        assert_output(&Reconcile::output(), &[], &records);
    }
}
