//! One bad record never halts a shop: what the sync nodes set aside as dead
//! letters (whatever their `on_error` says) so the rest of a page is stored
//! and the cursor moves on — records the connector could not read, records
//! with impossible times, and records the database refuses.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value as Json;

use super::Span;
use crate::engine::NodeContext;
use crate::engine::node::NodeError;
use crate::platforms::{Anomaly, Order, Page, Platform, Refund, TimeWindow};
use crate::record::Batch;
use crate::store::{Cursor, NewAnomaly, SaveOutcome, Store, StoreError};

/// How far a listed record's time may lie outside the window asked for (or
/// ahead of our clock) before it is refused as impossible: the platform's
/// clock and ours may disagree by this much.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(10);

/// Which of a listed record's times the listing was asked about.
pub struct ListedBy<T> {
    /// The field's name, for the reason a record is set aside: `created`, `modified`.
    pub field: &'static str,
    /// Reads it.
    pub time: fn(&T) -> DateTime<Utc>,
}

/// How many records a page must hold, none of them in its window, to be taken
/// for a gateway answering another window rather than for a few impossible
/// records (a 2099 `modified` alone on its page is a bad record, set aside).
const STRAY_PAGE: usize = 5;

/// The records of a listing page that a sync can take. Set aside as dead
/// letters (whatever the node's `on_error` says) and stored as `wrong_type`
/// anomalies of `method`: the records the connector could not read as the
/// model, and those whose `listed_by` time lies outside `window` or ahead of
/// now by more than [`CLOCK_SKEW`] — a 2099 `modified` stored would hide
/// every later true version of its order. The rest of the page goes on.
pub async fn keep_readable<T: Serialize>(
    ctx: &NodeContext,
    platform: &dyn Platform,
    method: &str,
    window: TimeWindow,
    listed_by: ListedBy<T>,
    page: Page<T>,
) -> Result<Page<T>, NodeError> {
    let Page { items, total, has_next, rejected } = page;
    let earliest = window.start - CLOCK_SKEW;
    let latest = window.end.min(Utc::now()) + CLOCK_SKEW;
    let (listed, rejected_count) = (items.len(), rejected.len());
    let mut aside: Vec<(Json, String)> = rejected.into_iter().map(|r| (r.raw, r.reason)).collect();
    let mut kept = Vec::with_capacity(items.len());
    for item in items {
        let at = (listed_by.time)(&item);
        if (earliest..=latest).contains(&at) {
            kept.push(item);
            continue;
        }
        let record = serde_json::to_value(&item)
            .map_err(|error| NodeError::permanent(format!("a listed record could not be turned into JSON: {error}")))?;
        let id = record.get("tid").or_else(|| record.get("refund_id")).map(Json::to_string).unwrap_or_default();
        let reason = format!(
            "record {id}: {} {at} lies outside the window asked for ({} to {}, {} allowed for clock skew)",
            listed_by.field,
            window.start,
            window.end,
            Span(CLOCK_SKEW.to_std().unwrap_or_default())
        );
        aside.push((record, reason));
    }
    let strays = aside.len() - rejected_count;
    if kept.is_empty() && strays >= STRAY_PAGE && strays == listed {
        // Not one record of the page belongs to the window: the gateway is
        // answering another question (the same page whatever is asked).
        // Setting each aside would bury the shop in dead letters and let the
        // reader walk on as if the windows were empty.
        return Err(NodeError::permanent(format!(
            "{method} answered {window_start} to {window_end} with {listed} record(s), none of them inside it: \
             the gateway answers another window; nothing of the page is stored",
            window_start = window.start,
            window_end = window.end,
        )));
    }
    set_aside_unreadable(ctx, platform, method, aside).await?;
    Ok(Page { items: kept, total, has_next, rejected: Vec::new() })
}

/// Sets aside records the platform sent that cannot be read or are
/// impossible (`(record, reason)`), each as a dead letter whatever the
/// node's `on_error` says, and stores each new one as a `wrong_type` anomaly
/// of `method`.
pub async fn set_aside_unreadable(
    ctx: &NodeContext,
    platform: &dyn Platform,
    method: &str,
    records: Vec<(Json, String)>,
) -> Result<(), NodeError> {
    let mut anomalies = Vec::new();
    for (record, reason) in records {
        if ctx.set_aside(record, &reason).await? {
            anomalies.push(NewAnomaly {
                run_id: Some(ctx.run_id.clone()),
                platform: platform.name().to_owned(),
                shop: platform.shop().to_owned(),
                method: method.to_owned(),
                kind: Anomaly::WrongType.as_str().to_owned(),
                excerpt: reason,
            });
        }
    }
    if !anomalies.is_empty() {
        if let Err(error) = ctx.store.record_anomalies(&anomalies, Utc::now()).await {
            tracing::warn!(node_id = %ctx.node_id, %error, "Could not store {} anomalies.", anomalies.len());
        }
    }
    Ok(())
}

/// What a sync sink stores: orders, refunds.
pub trait Storable: Sized + Sync {
    /// How a dead letter names it, e.g. `order 123`.
    fn name(&self) -> String;
    /// Saves `records`, then `cursors`, in one transaction.
    fn save(
        store: &Store,
        records: &[Self],
        cursors: &[Cursor],
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;
}

impl Storable for Order {
    fn name(&self) -> String {
        format!("order {}", self.tid)
    }

    fn save(
        store: &Store,
        records: &[Self],
        cursors: &[Cursor],
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send {
        store.save_orders(records, cursors)
    }
}

impl Storable for Refund {
    fn name(&self) -> String {
        format!("refund {}", self.refund_id)
    }

    fn save(
        store: &Store,
        records: &[Self],
        cursors: &[Cursor],
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send {
        store.save_refunds(records, cursors)
    }
}

/// Saves `items` (read from the records of `batch`, in order) with `cursors`
/// in one transaction. When the database refuses the batch for good (an oid
/// another order holds, a value a column refuses), saves them one at a time:
/// those it refuses are set aside with the driver's message, the others
/// stored, then the cursors committed — so one record cannot fail its page
/// on every retry. A transient failure fails the batch, retried whole.
/// Returns the records and items stored, and what storing them did.
pub async fn save_or_set_aside<T: Storable>(
    ctx: &NodeContext,
    batch: Batch,
    items: Vec<T>,
    cursors: &[Cursor],
) -> Result<(Batch, Vec<T>, SaveOutcome), NodeError> {
    let error = match T::save(&ctx.store, &items, cursors).await {
        Ok(outcome) => return Ok((batch, items, outcome)),
        Err(error) if error.is_transient() => return Err(error.into()),
        Err(error) => error,
    };
    tracing::warn!(node_id = %ctx.node_id, run_id = %ctx.run_id, %error,
        "The database refused a batch of {}; storing them one at a time to set aside those at fault.", items.len());
    let mut outcome = SaveOutcome::default();
    let (mut kept_records, mut kept_items) = (Vec::with_capacity(batch.len()), Vec::with_capacity(items.len()));
    for (record, item) in batch.into_iter().zip(items) {
        match T::save(&ctx.store, std::slice::from_ref(&item), &[]).await {
            Ok(one) => {
                outcome.inserted += one.inserted;
                outcome.updated += one.updated;
                outcome.stale += one.stale;
                kept_records.push(record);
                kept_items.push(item);
            }
            Err(error) if error.is_transient() => return Err(error.into()),
            Err(error) => {
                ctx.set_aside(record.to_json(), &format!("{} could not be stored: {error}", item.name())).await?;
            }
        }
    }
    T::save(&ctx.store, &[], cursors).await?;
    Ok((kept_records, kept_items, outcome))
}
