//! The guard against sync loops that go nowhere. A gateway that answers the
//! same page whatever is asked (a stuck cache, a proxy) would keep a reader
//! asking forever: a window whose end never moves back, or window after
//! window of the same records. Each such reading is stored as a
//! `no_progress` anomaly and logged; [`MAX_STALLS`] in a row fail the node,
//! naming the problem, instead of spending the shop's quota on it.

use chrono::{DateTime, Utc};

use super::by_modified::Versioned;
use crate::engine::NodeContext;
use crate::engine::node::NodeError;
use crate::platforms::{Anomaly, Platform, TimeWindow};
use crate::store::NewAnomaly;

/// How many readings in a row may fail to move a reader on before its node
/// fails: one or two may be a glitch of the platform, more is a loop.
pub(crate) const MAX_STALLS: u32 = 3;

/// A page's records as (id, version), in order: what tells two pages apart.
type Fingerprint = Vec<(i64, DateTime<Utc>)>;

/// How far one reader got without moving on, over one run.
pub(crate) struct Progress {
    platform: &'static str,
    shop: String,
    method: &'static str,
    stalls: u32,
    /// The last page read and the window it was asked for.
    last_page: Option<(TimeWindow, Fingerprint)>,
}

impl Progress {
    /// A guard for the readings of `method` on `platform`'s shop.
    pub(crate) fn new(platform: &dyn Platform, method: &'static str) -> Self {
        Self { platform: platform.name(), shop: platform.shop().to_owned(), method, stalls: 0, last_page: None }
    }

    /// A reading moved the reader on: the count starts again.
    pub(crate) fn moved(&mut self) {
        self.stalls = 0;
    }

    /// Records a reading that did not move the reader on (`what` says how)
    /// as an anomaly and logs it; fails the node once it happened
    /// [`MAX_STALLS`] times in a row.
    pub(crate) async fn stalled(&mut self, ctx: &NodeContext, what: String) -> Result<(), NodeError> {
        self.stalls += 1;
        tracing::warn!(node_id = %ctx.node_id, run_id = %ctx.run_id, platform = self.platform, shop = %self.shop,
            method = self.method, stalls = self.stalls, "No progress: {what}.");
        let anomaly = NewAnomaly {
            run_id: Some(ctx.run_id.clone()),
            platform: self.platform.to_owned(),
            shop: self.shop.clone(),
            method: self.method.to_owned(),
            kind: Anomaly::NoProgress.as_str().to_owned(),
            excerpt: what.clone(),
        };
        ctx.store.record_anomalies(&[anomaly], Utc::now()).await?;
        if self.stalls < MAX_STALLS {
            return Ok(());
        }
        Err(NodeError::permanent(format!(
            "no progress reading {} of {} shop {:?}: {MAX_STALLS} readings in a row did not move the sync on, the last: {what} (does the gateway answer the same page whatever is asked?)",
            self.method, self.platform, self.shop
        )))
    }

    /// Notes a page of records listed by modification time for `window`. The
    /// same records as the page before, which was asked for a window apart
    /// from this one, are a page that did not move the reader on: a record
    /// has one version, and that version lies in one window. (Within one
    /// window, or windows that overlap as a crowded window is halved, a page
    /// may rightly repeat the one before.)
    pub(crate) async fn page<T: Versioned>(
        &mut self,
        ctx: &NodeContext,
        window: TimeWindow,
        items: &[T],
    ) -> Result<(), NodeError> {
        ctx.page_read();
        let print = fingerprint(items);
        let last = self.last_page.replace((window, print.clone()));
        match last {
            Some((before, seen)) if !print.is_empty() && seen == print => {
                if before.end <= window.start || window.end <= before.start {
                    let what = format!(
                        "the page read for {} – {} holds the same {} records as the page read for {} – {}",
                        window.start,
                        window.end,
                        print.len(),
                        before.start,
                        before.end
                    );
                    self.stalled(ctx, what).await?;
                }
                Ok(())
            }
            _ => {
                self.moved();
                Ok(())
            }
        }
    }
}

/// The (id, version) of each record, in the order listed.
pub(crate) fn fingerprint<T: Versioned>(items: &[T]) -> Fingerprint {
    items.iter().map(|item| (item.id(), item.modified())).collect()
}
