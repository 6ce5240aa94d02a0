//! Reading orders by creation time, newest first: `fetch_full`'s backfill,
//! a breaker's full pulls of the recent period, and `reconcile`'s counts
//! and re-fetches share it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::progress::{self, Progress};
use super::{self as sync, CallFailure};
use crate::engine::NodeContext;
use crate::engine::node::NodeError;
use crate::platforms::{Order, Page, PageRequest, Platform, TimeWindow};

/// How often one page waits out an overloaded platform before the node gives up.
const MAX_OVERLOAD_WAITS: u32 = 5;

/// Reads one shop's orders by creation time.
pub(crate) struct CreatedReader<'a> {
    pub platform: &'a dyn Platform,
    pub page_size: u32,
    pub fields: &'a [String],
    /// The wait after the platform refused a query as too heavy.
    pub overload_wait: Duration,
}

impl CreatedReader<'_> {
    /// The newest page of `window` and the window's new end: everything
    /// created from it on has now been read. Orders created in the same
    /// second as the page's oldest may continue on the next page, so that
    /// second is read again — unless the whole page is that one second,
    /// which is then paged through in full. (Creation times never change, so
    /// nothing moves between pages.)
    ///
    /// A reading that would not move the end back (the page holds orders
    /// from after the window), or a page of that second repeating the page
    /// before, is no progress: read again, and the node fails after
    /// [`progress::MAX_STALLS`] in a row (see [`Progress`]).
    pub async fn read_newest(
        &self,
        ctx: &NodeContext,
        window: TimeWindow,
    ) -> Result<(Vec<Order>, DateTime<Utc>), NodeError> {
        let mut progress = Progress::new(self.platform, "orders_created");
        loop {
            let (orders, next_end) = self.read_newest_once(ctx, window, &mut progress).await?;
            if next_end < window.end {
                return Ok((orders, next_end));
            }
            let what = format!(
                "page 1 of the orders created {} – {} would move the window's end to {next_end}, not back",
                window.start, window.end
            );
            progress.stalled(ctx, what).await?;
        }
    }

    async fn read_newest_once(
        &self,
        ctx: &NodeContext,
        window: TimeWindow,
        progress: &mut Progress,
    ) -> Result<(Vec<Order>, DateTime<Utc>), NodeError> {
        let first = self.page(ctx, window, 1).await?;
        let created = first.items.iter().map(|o| o.created);
        let (Some(oldest), Some(newest)) = (created.clone().min(), created.max()) else {
            return Ok((first.items, window.start));
        };
        if !first.has_next {
            return Ok((first.items, window.start));
        }
        let second_after = oldest + chrono::Duration::seconds(1);
        if second_after <= newest {
            return Ok((first.items, second_after));
        }
        let mut previous = progress::fingerprint(&first.items);
        let mut orders = first.items;
        let crowded = TimeWindow { start: oldest, end: window.end };
        let mut page_no = 1;
        loop {
            page_no += 1;
            let page = self.page(ctx, crowded, page_no).await?;
            let print = progress::fingerprint(&page.items);
            if !print.is_empty() && print == previous {
                let what = format!(
                    "page {page_no} of the orders created {} – {} holds the same {} orders as page {}",
                    crowded.start,
                    crowded.end,
                    print.len(),
                    page_no - 1
                );
                progress.stalled(ctx, what).await?;
            } else {
                progress.moved();
            }
            previous = print;
            orders.extend(page.items);
            if !page.has_next {
                return Ok((orders, oldest));
            }
        }
    }

    /// How many orders the platform lists as created in `window`: one call
    /// asking for the total and a single record.
    pub async fn count(&self, ctx: &NodeContext, window: TimeWindow) -> Result<u64, NodeError> {
        let page = self.call(ctx, window, PageRequest { page_no: 1, page_size: 1, with_total: true }).await?;
        Ok(page.total.unwrap_or(page.items.len() as u64))
    }

    /// Page `page_no`, without the total, which is cheaper. An empty one is
    /// read again with the total: a page that lost its list on the way says
    /// "no records, none after" just like an empty page, and only against
    /// the total can the connector tell them apart.
    async fn page(&self, ctx: &NodeContext, window: TimeWindow, page_no: u32) -> Result<Page<Order>, NodeError> {
        let request = |with_total| PageRequest { page_no, page_size: self.page_size, with_total };
        ctx.page_read();
        let page = self.call(ctx, window, request(false)).await?;
        if !page.items.is_empty() {
            return Ok(page);
        }
        self.call(ctx, window, request(true)).await
    }

    async fn call(&self, ctx: &NodeContext, window: TimeWindow, page: PageRequest) -> Result<Page<Order>, NodeError> {
        let mut waits = 0;
        loop {
            match sync::call_platform(ctx, self.platform, || self.platform.orders_created(window, page, self.fields))
                .await
            {
                Ok(page) => return self.keep_readable(ctx, window, page).await,
                Err(CallFailure::Overloaded(error)) if waits < MAX_OVERLOAD_WAITS => {
                    waits += 1;
                    sync::wait_out_overload(ctx, &error, self.overload_wait).await?;
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    /// The page without the records set aside (see [`sync::keep_readable`]).
    /// A page with records, every one set aside, and more pages after it
    /// fails the node: paging goes by the times of the records kept, and
    /// without any it would take the window as read and skip those pages.
    async fn keep_readable(
        &self,
        ctx: &NodeContext,
        window: TimeWindow,
        page: Page<Order>,
    ) -> Result<Page<Order>, NodeError> {
        let listed = page.items.len() + page.rejected.len();
        let by_created = sync::ListedBy { field: "created", time: |order: &Order| order.created };
        let page = sync::keep_readable(ctx, self.platform, "orders_created", window, by_created, page).await?;
        if listed > 0 && page.items.is_empty() && page.has_next {
            return Err(NodeError::permanent(format!(
                "every one of the {listed} orders of a page created from {} to {} was set aside as a dead letter; \
                 stopping rather than skipping the pages after it",
                window.start, window.end
            )));
        }
        Ok(page)
    }
}
