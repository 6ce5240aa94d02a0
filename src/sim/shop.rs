//! The shop behind the gateway: every trade and refund, the time indexes the
//! list methods page through, and the TMC queue changes publish to.
//!
//! The gateway and the mutation task share one `Shop` behind a mutex, held
//! only for a lookup or a change, never across an await.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value as Json, json};

use super::generate::{self, Generated};
use super::index::{self, Key, PickSet, TimeIndex};
use super::model::{BUCKETS, Refund, Sku, Status, TraceStep, Trade, TradeType, bucket, yuan};
use super::mutate::{Topics, topic};
use super::tmc::Tmc;

/// How far back the list methods reach: TOP keeps three months.
pub(crate) const HISTORY: Duration = Duration::days(90);

/// Which time a listing pages by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    Created,
    Modified,
}

/// A page request on the trade indexes.
#[derive(Debug, Clone)]
pub(crate) struct TradeQuery {
    pub by: By,
    /// Inclusive.
    pub start: DateTime<Utc>,
    /// Inclusive.
    pub end: DateTime<Utc>,
    pub types: Vec<TradeType>,
    /// `None`: every status.
    pub statuses: Option<Vec<Status>>,
    pub offset: usize,
    pub limit: usize,
}

/// A page request on the refunds.
#[derive(Debug, Clone)]
pub(crate) struct RefundQuery {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub types: Vec<TradeType>,
    pub status: Option<super::model::RefundStatus>,
    pub offset: usize,
    pub limit: usize,
}

/// The shop's state.
pub(crate) struct Shop {
    catalog: Vec<Sku>,
    trades: BTreeMap<i64, Trade>,
    refunds: BTreeMap<i64, Refund>,
    refunds_by_modified: BTreeSet<Key>,
    pub(crate) by_created: TimeIndex,
    by_modified: TimeIndex,
    /// Refunds that can still move, for the mutation picker.
    pub(crate) open_refunds: PickSet,
    last_tid: i64,
    pub(crate) last_refund_id: i64,
    /// The stream live changes draw from.
    pub(crate) rng: ChaCha8Rng,
    /// Messages published by live changes.
    pub tmc: Tmc,
}

/// Sets the mutation stream apart from the generator's, which starts from the
/// bare seed.
const MUTATION_STREAM: u64 = 0x6d75_7461_7465;

impl Shop {
    /// Generates the shop for `seed`: `orders` orders over `days` days before
    /// `anchor`.
    pub(crate) fn generate(seed: u64, orders: usize, days: u32, anchor: DateTime<Utc>) -> Self {
        let Generated { catalog, trades, refunds, last_tid, last_refund_id } =
            generate::generate(seed, orders, days, anchor);
        let by_created = TimeIndex::build(BUCKETS, trades.iter().map(|t| (t.bucket(), index::key(t.created, t.tid))));
        let by_modified = TimeIndex::build(BUCKETS, trades.iter().map(|t| (t.bucket(), index::key(t.modified, t.tid))));
        let mut open_refunds = PickSet::default();
        for refund in refunds.iter().filter(|r| r.status.is_open()) {
            open_refunds.insert(refund.refund_id);
        }
        Self {
            catalog,
            refunds_by_modified: refunds.iter().map(|r| index::key(r.modified, r.refund_id)).collect(),
            refunds: refunds.into_iter().map(|r| (r.refund_id, r)).collect(),
            trades: trades.into_iter().map(|t| (t.tid, t)).collect(),
            by_created,
            by_modified,
            open_refunds,
            last_tid,
            last_refund_id,
            rng: ChaCha8Rng::seed_from_u64(seed ^ MUTATION_STREAM),
            tmc: Tmc::default(),
        }
    }

    /// The products on sale.
    pub(crate) fn catalog(&self) -> &[Sku] {
        &self.catalog
    }

    /// One trade.
    pub(crate) fn trade(&self, tid: i64) -> Option<&Trade> {
        self.trades.get(&tid)
    }

    /// Every trade, by tid.
    pub(crate) fn trades(&self) -> impl Iterator<Item = &Trade> {
        self.trades.values()
    }

    /// One refund.
    pub(crate) fn refund(&self, refund_id: i64) -> Option<&Refund> {
        self.refunds.get(&refund_id)
    }

    /// Every refund, by id.
    pub(crate) fn refunds(&self) -> impl Iterator<Item = &Refund> {
        self.refunds.values()
    }

    /// The earliest instant the list methods reach back to at `now`.
    pub(crate) fn horizon(now: DateTime<Utc>) -> DateTime<Utc> {
        now - HISTORY
    }

    /// A page of trades, newest first (by the query's time, ties by tid
    /// descending), and how many match in all. Costs O(log n + page).
    pub(crate) fn list(&self, query: &TradeQuery, now: DateTime<Utc>) -> (usize, Vec<&Trade>) {
        let statuses = query.statuses.clone().unwrap_or_else(|| Status::ALL.to_vec());
        let buckets: Vec<usize> =
            query.types.iter().flat_map(|&kind| statuses.iter().map(move |&status| bucket(kind, status))).collect();
        let start = query.start.max(Self::horizon(now));
        if start > query.end {
            return (0, Vec::new());
        }
        let (lo, hi) = (index::first_at(start), index::last_at(query.end));
        let index = match query.by {
            By::Created => &self.by_created,
            By::Modified => &self.by_modified,
        };
        let total = index.count(&buckets, lo, hi);
        let page = index.page_desc(&buckets, lo, hi, query.offset, query.limit);
        (total, page.into_iter().filter_map(|key| self.trades.get(&index::tid_of(key))).collect())
    }

    /// A page of refunds, last modified first, and how many match in all.
    /// Refunds are few (a few per hundred orders), so this walks the window.
    pub(crate) fn list_refunds(&self, query: &RefundQuery, now: DateTime<Utc>) -> (usize, Vec<&Refund>) {
        let start = query.start.max(Self::horizon(now));
        if start > query.end {
            return (0, Vec::new());
        }
        let matching = self
            .refunds_by_modified
            .range(index::first_at(start)..=index::last_at(query.end))
            .rev()
            .filter_map(|key| self.refunds.get(&index::tid_of(*key)))
            .filter(|r| query.status.is_none_or(|s| r.status == s))
            .filter(|r| self.trades.get(&r.tid).is_some_and(|t| query.types.contains(&t.kind)));
        let mut total = 0;
        let mut page = Vec::new();
        for refund in matching {
            if total >= query.offset && page.len() < query.limit {
                page.push(refund);
            }
            total += 1;
        }
        (total, page)
    }

    /// Places a new order at `now`; returns its tid.
    pub(crate) fn create(&mut self, now: DateTime<Utc>) -> i64 {
        let tid = generate::next_id(&mut self.rng, self.last_tid);
        self.last_tid = tid;
        let kind = match self.rng.random_range(0..100) {
            0..9 => TradeType::Step,
            9..12 => TradeType::Fenxiao,
            _ => TradeType::Fixed,
        };
        let trade = generate::new_trade(&mut self.rng, &self.catalog, tid, now, kind);
        self.by_created.insert(trade.bucket(), index::key(trade.created, tid));
        self.by_modified.insert(trade.bucket(), index::key(trade.modified, tid));
        self.publish_trade(topic::CREATE, &trade, now);
        self.trades.insert(tid, trade);
        tid
    }

    /// Adds a `TRANSPORT` event at `now` to trade `tid`'s parcel, in time
    /// order among its planned events. No index changes: a parcel's events
    /// are not trade changes. False when there is no such trade or parcel.
    pub(crate) fn move_parcel(&mut self, tid: i64, now: DateTime<Utc>) -> bool {
        let Some(parcel) = self.trades.get_mut(&tid).and_then(|t| t.parcel.as_mut()) else { return false };
        let at = parcel.steps.partition_point(|s| s.at <= now);
        let step =
            TraceStep {
                at: now, desc: "快件已到达【转运中心】，正在发往下一站".to_owned(), action: "TRANSPORT"
            };
        parcel.steps.insert(at, step);
        true
    }

    /// Changes trade `tid` with `change`, which gets the trade, the refunds
    /// and the time of the change: `now`, or the trade's last change if that
    /// is later. Keeps the indexes in step and publishes the change's topics.
    /// Returns `tid`, or `None` when there is no such trade or it refused.
    pub(crate) fn update<F>(&mut self, tid: i64, now: DateTime<Utc>, change: F) -> Option<i64>
    where
        F: FnOnce(&mut Trade, &mut BTreeMap<i64, Refund>, DateTime<Utc>) -> Topics,
    {
        let trade = self.trades.get_mut(&tid)?;
        let at = now.max(trade.modified);
        let (old_bucket, old_modified) = (trade.bucket(), trade.modified);
        let refund_ids: Vec<i64> = trade.items.iter().filter_map(|i| i.refund_id).collect();
        let before: Vec<(i64, DateTime<Utc>)> =
            refund_ids.iter().filter_map(|id| self.refunds.get(id)).map(|r| (r.refund_id, r.modified)).collect();

        let topics = change(trade, &mut self.refunds, at);
        if topics.is_empty() {
            return None;
        }
        let (new_bucket, new_modified, created) = (trade.bucket(), trade.modified, trade.created);
        if (old_bucket, old_modified) != (new_bucket, new_modified) {
            self.by_created.remove(old_bucket, index::key(created, tid));
            self.by_created.insert(new_bucket, index::key(created, tid));
            self.by_modified.remove(old_bucket, index::key(old_modified, tid));
            self.by_modified.insert(new_bucket, index::key(new_modified, tid));
        }
        // Re-index the refunds this change touched (or opened).
        let mut touched = None;
        let refund_ids: Vec<i64> = trade.items.iter().filter_map(|i| i.refund_id).collect();
        for id in refund_ids {
            let Some(refund) = self.refunds.get(&id) else { continue };
            let previous = before.iter().find(|(r, _)| *r == id).map(|(_, m)| *m);
            if previous == Some(refund.modified) {
                continue;
            }
            if let Some(previous) = previous {
                self.refunds_by_modified.remove(&index::key(previous, id));
            }
            self.refunds_by_modified.insert(index::key(refund.modified, id));
            if refund.status.is_open() {
                self.open_refunds.insert(id);
            } else {
                self.open_refunds.remove(id);
            }
            self.last_refund_id = self.last_refund_id.max(id);
            touched = Some(id);
        }
        for name in topics {
            if name.starts_with("taobao_refund_") {
                if let Some(id) = touched {
                    self.publish_refund(name, id, at);
                }
            } else if let Some(trade) = self.trades.get(&tid) {
                let trade = trade.clone();
                self.publish_trade(name, &trade, at);
            }
        }
        Some(tid)
    }

    fn publish_trade(&mut self, name: &'static str, trade: &Trade, at: DateTime<Utc>) {
        let content = json!({
            "tid": trade.tid,
            "oid": trade.items.first().map_or(trade.tid, |i| i.oid),
            "status": trade.status.as_str(),
            "type": trade.kind.as_str(),
            "payment": yuan(trade.payment()),
            "seller_nick": super::model::SELLER_NICK,
            "buyer_nick": trade.buyer_nick,
        });
        self.tmc.publish(name, at, content);
    }

    fn publish_refund(&mut self, name: &'static str, refund_id: i64, at: DateTime<Utc>) {
        let Some(refund) = self.refunds.get(&refund_id) else { return };
        let buyer = self.trades.get(&refund.tid).map(|t| t.buyer_nick.clone()).unwrap_or_default();
        let content: Json = json!({
            "refund_id": refund.refund_id,
            "tid": refund.tid,
            "oid": refund.oid,
            "refund_fee": yuan(refund.refund_fee),
            "refund_phase": refund.phase,
            "modified": crate::platforms::taobao::time::format(refund.modified),
            "seller_nick": super::model::SELLER_NICK,
            "buyer_nick": buyer,
        });
        self.tmc.publish(name, at, content);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::mutate::Change;
    use chrono::TimeZone;

    fn anchor() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 18, 6, 30, 0).single().expect("valid")
    }

    fn all(by: By, start: DateTime<Utc>, end: DateTime<Utc>) -> TradeQuery {
        TradeQuery { by, start, end, types: TradeType::ALL.to_vec(), statuses: None, offset: 0, limit: usize::MAX }
    }

    #[test]
    fn listings_agree_with_a_scan_after_changes() {
        let mut shop = Shop::generate(5, 800, 10, anchor());
        let now = anchor() + Duration::seconds(30);
        shop.mutate(200, now);
        for by in [By::Created, By::Modified] {
            let start = anchor() - Duration::days(3);
            let (total, page) = shop.list(&all(by, start, now), now);
            let time = |t: &Trade| if by == By::Created { t.created } else { t.modified };
            let mut want: Vec<(DateTime<Utc>, i64)> =
                shop.trades().filter(|t| time(t) >= start && time(t) <= now).map(|t| (time(t), t.tid)).collect();
            want.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(total, want.len());
            let got: Vec<(DateTime<Utc>, i64)> = page.iter().map(|t| (time(t), t.tid)).collect();
            assert_eq!(got, want);
        }
        let (refunds, _) = shop.list_refunds(
            &RefundQuery {
                start: anchor() - Duration::days(10),
                end: now,
                types: TradeType::ALL.to_vec(),
                status: None,
                offset: 0,
                limit: 10,
            },
            now,
        );
        assert_eq!(refunds, shop.refunds().filter(|r| r.modified >= anchor() - Duration::days(10)).count());
    }

    #[test]
    fn changes_publish_messages_and_keep_modified_monotonic() {
        let mut shop = Shop::generate(6, 300, 5, anchor());
        let now = anchor() + Duration::seconds(5);
        let tid = shop.apply(Change::Create, now).expect("a new order");
        assert_eq!(shop.trade(tid).map(|t| t.created), Some(now));
        let changed = shop.mutate(50, now);
        let distinct: BTreeSet<i64> = changed.iter().copied().collect();
        assert_eq!(distinct.len(), 50, "one batch changes 50 different orders");
        for tid in changed {
            assert_eq!(shop.trade(tid).map(|t| t.modified), Some(now));
        }
        assert!(shop.tmc.len() >= 51);
    }
}
