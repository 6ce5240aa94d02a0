//! Reading a listing by modification time without missing what changes while
//! it is read: what `fetch_increment` (orders) and `fetch_refunds` (refunds)
//! share. See docs/sync.md for why windows are paged backwards.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::progress::Progress;
use super::{CallFailure, Span};
use crate::activity::{self, Activity};
use crate::engine::NodeContext;
use crate::engine::node::{BuildError, NodeError};
use crate::platforms::{Order, Page, PageRequest, Platform, Refund, TimeWindow};

/// The smallest window a crowded window is split down to.
const MIN_WINDOW: Duration = Duration::from_secs(60);
/// How often a window that keeps growing while read is read again.
const MAX_RESCANS: usize = 3;
/// How often one run waits out an overloaded platform before giving up.
pub(crate) const MAX_OVERLOADS: u32 = 5;

/// Refuses a `window` setting the platform would refuse.
pub(crate) fn check_window(window: Span, platform: &dyn Platform) -> Result<(), BuildError> {
    let max = platform.max_modified_window();
    if window.0.is_zero() || window.chrono() > max {
        return Err(BuildError::setting(
            "window",
            format!(
                "must be more than 0 and at most {} on {}",
                Span(max.to_std().unwrap_or_default()),
                platform.name()
            ),
        ));
    }
    Ok(())
}

/// A record a platform lists by modification time: its id and its version.
pub(crate) trait Versioned {
    /// The platform's id of the record (`tid`, `refund_id`).
    fn id(&self) -> i64;
    /// When it last changed: the version paging may meet twice.
    fn modified(&self) -> DateTime<Utc>;
}

impl Versioned for Order {
    fn id(&self) -> i64 {
        self.tid
    }

    fn modified(&self) -> DateTime<Utc> {
        self.modified
    }
}

impl Versioned for Refund {
    fn id(&self) -> i64 {
        self.refund_id
    }

    fn modified(&self) -> DateTime<Utc> {
        self.modified
    }
}

/// The records of one window by id, keeping each record's newest version:
/// backward paging may meet a record twice.
pub(crate) struct Newest<T>(HashMap<i64, T>);

impl<T> Default for Newest<T> {
    fn default() -> Self {
        Self(HashMap::new())
    }
}

impl<T: Versioned> Newest<T> {
    /// Adds `records`, each unless a newer version is already held.
    pub(crate) fn extend(&mut self, records: Vec<T>) {
        for record in records {
            match self.0.get(&record.id()) {
                Some(known) if known.modified() > record.modified() => {}
                _ => {
                    self.0.insert(record.id(), record);
                }
            }
        }
    }

    /// The records, oldest version first (ties by id).
    pub(crate) fn into_vec(self) -> Vec<T> {
        let mut records: Vec<T> = self.0.into_values().collect();
        records.sort_by_key(|r| (r.modified(), r.id()));
        records
    }
}

/// Where a run starts: `lookback` before the stored cursor, or `first_run`
/// before `end` without one; never beyond what the platform still lists
/// (`horizon` before `end`, less a minute for the time the run takes).
pub(crate) fn run_start(
    resumed: Option<DateTime<Utc>>,
    lookback: chrono::Duration,
    first_run: chrono::Duration,
    end: DateTime<Utc>,
    horizon: chrono::Duration,
) -> DateTime<Utc> {
    let oldest = end - horizon + chrono::Duration::minutes(1);
    match resumed {
        Some(until) => until - lookback,
        None => end - first_run,
    }
    .max(oldest)
}

/// The windows of a run, from its start up to `end`: at most `configured`
/// long, halved while crowded or refused as too heavy (down to a minute),
/// growing back when quiet.
pub(crate) struct Windows {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    configured: chrono::Duration,
    span: chrono::Duration,
    split_above: u64,
    /// Windows read so far, for the progress report.
    read: u64,
}

impl Windows {
    /// Windows of at most `configured` over `[start, end)`; one holding more
    /// than `split_above` records is halved before it is read.
    pub(crate) fn new(
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        configured: chrono::Duration,
        split_above: u64,
    ) -> Self {
        Self { start, end, configured, span: configured, split_above, read: 0 }
    }

    /// The next window to read, `None` once `end` is reached.
    pub(crate) fn next(&self) -> Option<TimeWindow> {
        (self.start < self.end).then(|| TimeWindow { start: self.start, end: (self.start + self.span).min(self.end) })
    }

    /// How many records make `window` crowded: `None` once it is too short to
    /// halve, when it is read whatever it holds.
    pub(crate) fn split_limit(&self, window: TimeWindow) -> Option<u64> {
        (window.span() > min_window()).then_some(self.split_above)
    }

    /// Halves the next window: `window` was too crowded or too heavy.
    pub(crate) fn shrink(&mut self, window: TimeWindow) {
        self.span = (window.span() / 2).max(min_window());
    }

    /// Moves past `window`, read with `count` records: a window well under the
    /// limit lets the next one grow back. Reports the windows read and left
    /// to `ctx`'s activity.
    pub(crate) fn advance(&mut self, ctx: &NodeContext, window: TimeWindow, count: usize) {
        if (count as u64).saturating_mul(4) < self.split_above {
            self.span = (self.span * 2).min(self.configured);
        }
        self.start = window.end;
        self.read += 1;
        ctx.activity.report(|| Activity::Windows {
            node_id: ctx.node_id.clone(),
            done: self.read,
            total: activity::windows_total(self.read, self.end - self.start, self.span),
        });
    }
}

fn min_window() -> chrono::Duration {
    chrono::Duration::from_std(MIN_WINDOW).unwrap_or_default()
}

/// Every record modified in `window`, newest version of each, read through
/// `page` (one listing call, `with_total` or not); `None` when `split_above`
/// is given and the window holds more.
///
/// Page 1 with the total says how many pages there are; then the last page,
/// each page before it down to page 2, and page 1 again. A record modified
/// meanwhile leaves the window (its new time is later), which only moves
/// records from unread pages onto unread pages, or from read onto read: none
/// is skipped. If the total grew meanwhile (the platform wrote a record into
/// the past), the window is read again, at most [`MAX_RESCANS`] times.
/// Every page passes `progress` (see [`Progress::page`]): the same page
/// again for another window fails the node after a few.
pub(crate) async fn read_window<T, F, Fut>(
    ctx: &NodeContext,
    window: TimeWindow,
    page_size: u32,
    split_above: Option<u64>,
    progress: &mut Progress,
    mut page: F,
) -> Result<Option<Vec<T>>, CallFailure>
where
    T: Versioned,
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, CallFailure>>,
{
    let request = |page_no, with_total| PageRequest { page_no, page_size, with_total };
    for _ in 0..MAX_RESCANS {
        let probe = page(request(1, true)).await?;
        progress.page(ctx, window, &probe.items).await?;
        let total = probe.total.unwrap_or(probe.items.len() as u64);
        if split_above.is_some_and(|limit| total > limit) {
            return Ok(None);
        }
        let mut records = Newest::default();
        records.extend(probe.items);
        if total <= u64::from(page_size) && !probe.has_next {
            return Ok(Some(records.into_vec()));
        }
        let pages = total.div_ceil(u64::from(page_size)).max(2) as u32;
        for page_no in (2..=pages).rev() {
            let mut read = page(request(page_no, false)).await?;
            if read.items.is_empty() {
                // Without the total, a page that lost its list on the way
                // says "no records, none after", just like an empty one; with
                // it, the connector tells the two apart.
                read = page(request(page_no, true)).await?;
            }
            progress.page(ctx, window, &read.items).await?;
            records.extend(read.items);
        }
        let first = page(request(1, true)).await?;
        progress.page(ctx, window, &first.items).await?;
        let grew = first.total.is_some_and(|now| now > total);
        records.extend(first.items);
        if !grew {
            return Ok(Some(records.into_vec()));
        }
        tracing::info!(node_id = %ctx.node_id, start = %window.start, end = %window.end,
            "Window gained records while read; reading it again.");
    }
    Err(CallFailure::Node(NodeError::transient(format!(
        "the window {} to {} kept gaining records while read, {MAX_RESCANS} times",
        window.start, window.end
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::Collect;
    use crate::flow::OnError;
    use crate::nodes::testing::node_ctx;
    use crate::store::Store;

    #[tokio::test]
    async fn each_window_read_reports_the_windows_read_and_left() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let mut ctx = node_ctx(&store, OnError::Fail);
        let (reporter, sink) = Collect::reporter();
        ctx.activity = reporter;
        let start = Utc::now() - chrono::Duration::hours(5);
        let hour = chrono::Duration::hours(1);
        let mut windows = Windows::new(start, start + hour * 5, hour, 1_000);
        let first = windows.next().unwrap();
        windows.advance(&ctx, first, 10);
        let crowded = windows.next().unwrap();
        windows.shrink(crowded);
        let half = windows.next().unwrap();
        windows.advance(&ctx, half, 600);
        let walked: Vec<(u64, u64)> = sink
            .taken()
            .into_iter()
            .map(|activity| match activity {
                Activity::Windows { node_id, done, total } if node_id == "under_test" => (done, total),
                other => panic!("{other:?}"),
            })
            .collect();
        // Four hours left after the first; three and a half in half-hour
        // windows after the halved one.
        assert_eq!(walked, [(1, 5), (2, 9)]);
    }
}
