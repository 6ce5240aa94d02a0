//! `fetch_refunds`: refunds changed since the last run.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::fetch_increment::{check_page_size, default_page_size, emit_records};
use super::{BuildContext, BuildError, Built, Emitter, Fields, NodeContext, NodeError, NodeKind, Output, Role, Source};
use crate::platforms::taobao::fields::{REFUND_FIELDS, REFUND_LIST_FIELDS};
use crate::platforms::{Page, PageRequest, Platform, Refund, TimeWindow};
use crate::sync::by_modified::{self, Windows};
use crate::sync::progress::Progress;
use crate::sync::{self, CallFailure, REFUNDS_STREAM, Span};

/// Lists the refunds modified since this flow's stored cursor, window by
/// window, and moves the cursor as the sink stores them.
///
/// It reads refunds the way `fetch_increment` reads orders (see
/// docs/sync.md): each run starts at the cursor minus `lookback` and reads
/// windows of at most `window` up to one second ago, each from its last page
/// backwards and then its first page again, so that refunds changing
/// meanwhile are never skipped; a window that grew while read is read again,
/// one holding more than `split_above` refunds is halved first, and one the
/// platform refuses as too heavy is halved and retried after
/// `overload_wait`. The cursor `{"modified_until": time}` of stream
/// `refunds.increment/<flow>/<node>` follows the last refund of each window
/// to the sink (`store_refunds`), which commits it with them: each flow keeps
/// its own. Without one, the run starts at the shop's `refunds.increment`
/// cursor (the one flows shared before), or else `first_run` ago (at most the
/// 90 days the platform lists). The same page again for window after window
/// fails the run after three (`no_progress` anomalies).
///
/// With `detail`, each listed refund lacking fields the listing never
/// returns (the goods returned, the Alipay number, the SKU, …) is read
/// again with `refund.get`: one call per refund.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchRefundsSettings {
    /// The shop in `orderflow.yaml`; the flow's `shop:` when left out.
    #[serde(default)]
    pub shop: Option<String>,
    /// How far before the cursor each run starts again.
    #[serde(default = "default_lookback")]
    pub lookback: Span,
    /// The longest window one listing covers; the platform allows at most
    /// one day.
    #[serde(default = "default_window")]
    pub window: Span,
    /// Refunds per page, 1 to 100: bigger pages, fewer calls.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Windows holding more refunds than this are halved (down to a minute)
    /// before they are read; later windows grow back when they are quiet.
    #[serde(default = "default_split_above")]
    pub split_above: u64,
    /// How far back the first run reaches when neither the flow nor the shop
    /// has a cursor yet.
    #[serde(default = "default_first_run")]
    pub first_run: Span,
    /// How long to wait when the platform refuses a window as too heavy
    /// (the window is also halved).
    #[serde(default = "sync::default_overload_wait")]
    pub overload_wait: Span,
    /// Read each listed refund again with `refund.get` when the listing
    /// lacks fields the detail has: one call per refund.
    #[serde(default)]
    pub detail: bool,
}

fn default_lookback() -> Span {
    Span(Duration::from_secs(5 * 60))
}

fn default_window() -> Span {
    Span(Duration::from_secs(30 * 60))
}

fn default_split_above() -> u64 {
    5_000
}

fn default_first_run() -> Span {
    Span(Duration::from_secs(24 * 3600))
}

/// The `fetch_refunds` node type.
pub struct FetchRefunds;

impl NodeKind for FetchRefunds {
    const TYPE: &'static str = "fetch_refunds";
    const ROLE: Role = Role::Source;
    type Settings = FetchRefundsSettings;

    fn example() -> &'static str {
        "refunds:\n  use: fetch_refunds\n  with:\n    lookback: 5m\n    window: 30m\n    detail: false\n"
    }

    fn output() -> Output {
        Output::Records(Fields::refund())
    }

    fn build(settings: FetchRefundsSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let platform = ctx.platform(settings.shop.as_deref())?;
        check_page_size(settings.page_size)?;
        by_modified::check_window(settings.window, platform.as_ref())?;
        Ok(Built::Source(Box::new(RefundsSource { settings, platform })))
    }
}

struct RefundsSource {
    settings: FetchRefundsSettings,
    platform: Arc<dyn Platform>,
}

#[async_trait]
impl Source for RefundsSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let ctx = out.ctx();
        let platform = self.platform.as_ref();
        let (stream, stored) = sync::resume_point(ctx, platform, REFUNDS_STREAM).await?;
        let resumed = stored.as_ref().and_then(sync::modified_until);
        let end = sync::settled_now();
        if resumed.is_none() {
            tracing::info!(node_id = %ctx.node_id, shop = platform.shop(), first_run = %self.settings.first_run,
                "No refunds cursor of this flow or the shop yet: starting from `first_run` ago.");
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
        let mut progress = Progress::new(platform, "refunds_modified");
        while let Some(window) = windows.next() {
            let (page_size, split_limit) = (self.settings.page_size, windows.split_limit(window));
            let listed = by_modified::read_window(ctx, window, page_size, split_limit, &mut progress, |page| {
                self.page(ctx, window, page)
            })
            .await;
            let refunds = match listed {
                Ok(Some(refunds)) => refunds,
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
            windows.advance(ctx, window, refunds.len());
            let refunds = if self.settings.detail { self.with_detail(ctx, refunds).await? } else { refunds };
            let records = refunds.iter().map(sync::refund_record).collect::<Result<Vec<_>, _>>()?;
            let until = resumed.map_or(window.end, |r| r.max(window.end));
            let cursor = sync::cursor(platform, &stream, json!({ "modified_until": until }));
            emit_records(out, records, cursor).await?;
        }
        Ok(())
    }
}

impl RefundsSource {
    /// One page of refunds modified in `window`.
    async fn page(
        &self,
        ctx: &NodeContext,
        window: TimeWindow,
        page: PageRequest,
    ) -> Result<Page<Refund>, CallFailure> {
        let platform = self.platform.as_ref();
        let listed = sync::call_platform(ctx, platform, || platform.refunds_modified(window, page)).await?;
        let by_modified = sync::ListedBy { field: "modified", time: |refund: &Refund| refund.modified };
        Ok(sync::keep_readable(ctx, platform, "refunds_modified", window, by_modified, listed).await?)
    }

    /// `refunds` with each one lacking a detail field replaced by its detail,
    /// unless the detail is gone or older than the listed copy.
    async fn with_detail(&self, ctx: &NodeContext, refunds: Vec<Refund>) -> Result<Vec<Refund>, NodeError> {
        let platform = self.platform.as_ref();
        let mut detailed = Vec::with_capacity(refunds.len());
        for listed in refunds {
            if !lacks_detail(&listed.raw) {
                detailed.push(listed);
                continue;
            }
            let refund_id = listed.refund_id;
            let detail = sync::call_platform(ctx, platform, || platform.refund(refund_id)).await?;
            match detail {
                // A refund changed since it was listed is newer: its new
                // version also lists in a later window, and the store keeps
                // the newest whichever comes first.
                Some(detail) if detail.modified >= listed.modified => detailed.push(detail),
                _ => detailed.push(listed),
            }
        }
        Ok(detailed)
    }
}

/// Whether a listed refund's `raw` lacks a field that `refund.get` returns
/// and the listing does not.
fn lacks_detail(raw: &Json) -> bool {
    REFUND_FIELDS.iter().filter(|field| !REFUND_LIST_FIELDS.contains(field)).any(|field| raw.get(field).is_none())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::Ordering;

    use chrono::Utc;

    use super::*;
    use crate::nodes::testing::{FakeShop, assert_output, records_of, source_batches};

    #[tokio::test]
    async fn refunds_modified_while_the_window_is_paged_are_all_read() {
        let now = Utc::now();
        let base = now - chrono::Duration::minutes(50);
        let refunds = (0..250).map(|i| (1_000 + i, base + chrono::Duration::seconds(i)));
        let moved_to = now - chrono::Duration::minutes(5);
        let platform = FakeShop::new(refunds, Some(moved_to));
        let settings = json!({"shop": "s", "first_run": "1h", "page_size": 20});
        let batches = source_batches::<FetchRefunds>(settings, &platform.context()).await;

        let read: BTreeSet<i64> =
            batches.iter().flatten().filter_map(|r| r.fields.get("refund_id").and_then(Json::as_i64)).collect();
        assert_eq!(read, (1_000..1_250).collect::<BTreeSet<_>>(), "every refund read, moved or not");
        assert_output(&FetchRefunds::output(), &[], &records_of(&batches));
        assert!(batches.iter().flatten().all(|r| sync::record_refund(r).is_ok()), "records are refunds");
        assert_eq!(platform.details.load(Ordering::SeqCst), 0, "no detail calls unless asked");
    }

    #[tokio::test]
    async fn with_detail_each_listed_refund_is_read_again() {
        let now = Utc::now();
        let refunds = (0..30).map(|i| (1_000 + i, now - chrono::Duration::minutes(20) + chrono::Duration::seconds(i)));
        let platform = FakeShop::new(refunds, None);
        let settings = json!({"shop": "s", "first_run": "1h", "detail": true});
        let batches = source_batches::<FetchRefunds>(settings, &platform.context()).await;

        let records: Vec<_> = batches.iter().flatten().collect();
        assert_eq!(records.len(), 30);
        assert_eq!(platform.details.load(Ordering::SeqCst), 30, "one refund.get per refund");
        assert!(records.iter().all(|r| r.fields["raw"].get("alipay_no").is_some()), "the details were kept");
    }

    #[test]
    fn listings_lack_detail_fields_and_details_do_not() {
        assert!(lacks_detail(&json!({"refund_id": "1", "status": "SUCCESS"})));
        let full: serde_json::Map<String, Json> = REFUND_FIELDS.iter().map(|f| ((*f).to_owned(), json!("x"))).collect();
        assert!(!lacks_detail(&Json::Object(full)));
    }
}
