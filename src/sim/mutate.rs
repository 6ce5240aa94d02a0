//! How orders change: the transitions of a trade's life (pay, ship, finish,
//! close, adjust the fee, refunds), and the random choice of the next change
//! that the mutation task and [`super::SimHandle::mutate_now`] apply.
//!
//! A transition refuses (returns no topics) when the order cannot take it,
//! so the generator can play a planned life blindly. Every accepted change
//! moves `modified` to its time, never backwards; its topics are the TMC
//! messages it publishes.

use chrono::{DateTime, Utc};
use rand::RngExt;
use std::collections::BTreeSet;

use super::generate;
use super::model::{Parcel, Refund, RefundStatus, Status, StepStatus, TraceStep, Trade, TradeType, bucket};
use super::shop::Shop;

/// TMC topics the simulator publishes.
pub(crate) mod topic {
    pub const CREATE: &str = "taobao_trade_TradeCreate";
    pub const BUYER_PAY: &str = "taobao_trade_TradeBuyerPay";
    pub const BUYER_STEP_PAY: &str = "taobao_trade_TradeBuyerStepPay";
    pub const SELLER_SHIP: &str = "taobao_trade_TradeSellerShip";
    pub const SUCCESS: &str = "taobao_trade_TradeSuccess";
    pub const CLOSE: &str = "taobao_trade_TradeClose";
    pub const MODIFY_FEE: &str = "taobao_trade_TradeModifyFee";
    pub const MEMO_MODIFIED: &str = "taobao_trade_TradeMemoModified";
    pub const REFUND_CREATED: &str = "taobao_refund_RefundCreated";
    pub const REFUND_AGREE: &str = "taobao_refund_RefundSellerAgreeAgreement";
    pub const REFUND_REFUSE: &str = "taobao_refund_RefundSellerRefuseBuyer";
    pub const REFUND_RETURN_GOODS: &str = "taobao_refund_RefundBuyerReturnGoods";
    pub const REFUND_SUCCESS: &str = "taobao_refund_RefundSuccess";
    pub const REFUND_CLOSED: &str = "taobao_refund_RefundClosed";
}

/// The topics a change publishes; empty when the order could not take it.
pub(crate) type Topics = Vec<&'static str>;

impl Trade {
    fn touch(&mut self, at: DateTime<Utc>) {
        self.modified = self.modified.max(at);
    }

    /// The buyer pays: the whole order, or a presale's deposit or balance.
    pub(crate) fn pay(&mut self, at: DateTime<Utc>) -> Topics {
        if self.status != Status::WaitBuyerPay {
            return Vec::new();
        }
        let topic = match self.step {
            None => {
                self.status = Status::WaitSellerSendGoods;
                self.pay_time = Some(at);
                topic::BUYER_PAY
            }
            Some(StepStatus::NothingPaid) => {
                self.step = Some(StepStatus::DepositPaid);
                self.pay_time = Some(at);
                topic::BUYER_STEP_PAY
            }
            Some(StepStatus::DepositPaid) => {
                self.step = Some(StepStatus::FullyPaid);
                self.status = Status::WaitSellerSendGoods;
                topic::BUYER_PAY
            }
            Some(_) => return Vec::new(),
        };
        self.touch(at);
        vec![topic]
    }

    /// An unpaid order closes (the buyer cancels, or payment times out); a
    /// presale whose balance never came forfeits its deposit.
    pub(crate) fn close(&mut self, at: DateTime<Utc>) -> Topics {
        if self.status != Status::WaitBuyerPay {
            return Vec::new();
        }
        if self.step == Some(StepStatus::DepositPaid) {
            self.step = Some(StepStatus::DepositForfeited);
            self.status = Status::TradeClosed;
        } else {
            self.status = Status::TradeClosedByTaobao;
        }
        self.end_time = Some(at);
        self.touch(at);
        vec![topic::CLOSE]
    }

    /// The seller changes the price of an unpaid order by `delta` fen (on the
    /// first line, never below one yuan).
    pub(crate) fn adjust_fee(&mut self, delta: i64, at: DateTime<Utc>) -> Topics {
        let unpaid = self.step.is_none() || self.step == Some(StepStatus::NothingPaid);
        if self.status != Status::WaitBuyerPay || !unpaid {
            return Vec::new();
        }
        let first = &mut self.items[0];
        let floor = 100 - (first.payment() - first.adjust);
        first.adjust = (first.adjust + delta).max(floor);
        if self.kind == TradeType::Step {
            self.deposit = (self.payment() / 5 / 100).max(1) * 100;
        }
        self.touch(at);
        vec![topic::MODIFY_FEE]
    }

    /// The seller writes a memo.
    pub(crate) fn set_memo(&mut self, memo: String, at: DateTime<Utc>) -> Topics {
        self.seller_memo = Some(memo);
        self.seller_flag = 1;
        self.touch(at);
        vec![topic::MEMO_MODIFIED]
    }

    /// The seller ships the paid order in one parcel.
    pub(crate) fn ship(&mut self, parcel: Parcel, at: DateTime<Utc>) -> Topics {
        if self.status != Status::WaitSellerSendGoods {
            return Vec::new();
        }
        self.status = Status::WaitBuyerConfirmGoods;
        self.consign_time = Some(at);
        self.parcel = Some(parcel);
        self.touch(at);
        vec![topic::SELLER_SHIP]
    }

    /// The buyer confirms receipt (or the platform does, ten days after
    /// shipping). A parcel still on its way is signed for now; a stalled one
    /// stays stalled.
    pub(crate) fn finish(&mut self, at: DateTime<Utc>) -> Topics {
        if self.status != Status::WaitBuyerConfirmGoods {
            return Vec::new();
        }
        self.status = Status::TradeFinished;
        self.end_time = Some(at);
        if let Some(parcel) = &mut self.parcel {
            let planned_sign = parcel.steps.iter().any(|s| s.action == "SIGN");
            parcel.steps.retain(|s| s.at <= at);
            if planned_sign && parcel.steps.last().is_none_or(|s| s.action != "SIGN") {
                parcel
                    .steps
                    .push(TraceStep { at, desc: "快件已签收，签收人：本人".to_owned(), action: "SIGN" });
            }
        }
        self.touch(at);
        vec![topic::SUCCESS]
    }

    /// The buyer asks for line `item` back. Only paid orders, one refund per
    /// line; goods can only be returned once shipped.
    pub(crate) fn open_refund(
        &mut self,
        item: usize,
        refund_id: i64,
        return_goods: bool,
        reason: &'static str,
        at: DateTime<Utc>,
    ) -> Option<Refund> {
        let paid =
            matches!(self.status, Status::WaitSellerSendGoods | Status::WaitBuyerConfirmGoods | Status::TradeFinished);
        let line = self.items.get_mut(item)?;
        if !paid || line.refund_id.is_some() {
            return None;
        }
        line.refund_id = Some(refund_id);
        line.refund_status = Some(RefundStatus::WaitSellerAgree);
        let refund = Refund {
            refund_id,
            tid: self.tid,
            oid: line.oid,
            status: RefundStatus::WaitSellerAgree,
            created: at,
            modified: at,
            refund_fee: line.payment(),
            has_good_return: return_goods && self.consign_time.is_some(),
            phase: if self.status == Status::TradeFinished { "aftersale" } else { "onsale" },
            reason,
        };
        self.touch(at);
        Some(refund)
    }

    /// Moves `refund` (of this trade) to `next`. When the last line still
    /// owed is refunded before the trade finished, the trade closes.
    pub(crate) fn advance_refund(&mut self, refund: &mut Refund, next: RefundStatus, at: DateTime<Utc>) -> Topics {
        use RefundStatus::*;
        let allowed = match (refund.status, next) {
            (WaitSellerAgree, WaitBuyerReturnGoods) => refund.has_good_return,
            (WaitSellerAgree, Success) => !refund.has_good_return,
            (WaitSellerAgree, SellerRefuseBuyer) | (WaitBuyerReturnGoods, WaitSellerConfirmGoods | Closed) => true,
            (WaitSellerConfirmGoods, Success) | (SellerRefuseBuyer, Closed) => true,
            _ => false,
        };
        let Some(line) = self.items.iter_mut().find(|i| i.oid == refund.oid) else { return Vec::new() };
        if !allowed {
            return Vec::new();
        }
        refund.status = next;
        refund.modified = refund.modified.max(at);
        line.refund_status = Some(next);
        let mut topics = vec![match next {
            WaitBuyerReturnGoods => topic::REFUND_AGREE,
            WaitSellerConfirmGoods => topic::REFUND_RETURN_GOODS,
            SellerRefuseBuyer => topic::REFUND_REFUSE,
            Closed => topic::REFUND_CLOSED,
            Success => topic::REFUND_SUCCESS,
            WaitSellerAgree => topic::REFUND_CREATED,
        }];
        if next == Success {
            line.end_time = Some(at);
            let open = matches!(self.status, Status::WaitSellerSendGoods | Status::WaitBuyerConfirmGoods);
            if open && self.items.iter().all(|i| i.refunded()) {
                self.status = Status::TradeClosed;
                self.end_time = Some(at);
                topics.push(topic::CLOSE);
            }
        }
        self.touch(at);
        topics
    }
}

/// One change to the shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Create,
    Pay(i64),
    Ship(i64),
    Finish(i64),
    Close(i64),
    AdjustFee(i64),
    /// Opens a refund on a line of this trade.
    Refund(i64),
    /// Moves this open refund on.
    AdvanceRefund(i64),
}

/// Relative weights of the kinds of change.
const WEIGHTS: [(Kind, u32); 7] = [
    (Kind::Create, 20),
    (Kind::Pay, 20),
    (Kind::Ship, 18),
    (Kind::Finish, 15),
    (Kind::Close, 7),
    (Kind::Refund, 12),
    (Kind::AdjustFee, 8),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Pay,
    Ship,
    Finish,
    Close,
    Refund,
    AdjustFee,
}

impl Shop {
    /// Applies `n` random changes at `now`, each to a different order, and
    /// returns the tids changed, in order. Draws from the shop's own seeded
    /// stream, so the sequence of changes depends only on the seed and how
    /// many came before.
    pub(crate) fn mutate(&mut self, n: usize, now: DateTime<Utc>) -> Vec<i64> {
        let mut changed = BTreeSet::new();
        let mut order = Vec::with_capacity(n);
        for _ in 0..n {
            let change = self.pick_change(&changed);
            // A change the order refuses (a line already refunded, say)
            // becomes a new order, so that n changes always happen.
            let tid = match self.apply(change, now) {
                Some(tid) => tid,
                None => self.create(now),
            };
            changed.insert(tid);
            order.push(tid);
        }
        order
    }

    /// Picks the next change; a change whose pool is empty, or whose pick
    /// was already changed in this batch, becomes a new order.
    fn pick_change(&mut self, exclude: &BTreeSet<i64>) -> Change {
        let total: u32 = WEIGHTS.iter().map(|w| w.1).sum();
        let mut roll = self.rng.random_range(0..total);
        let kind = WEIGHTS
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .map_or(Kind::Create, |w| w.0);
        let change = match kind {
            Kind::Create => Change::Create,
            Kind::Pay => self.pick_trade(&[Status::WaitBuyerPay]).map_or(Change::Create, Change::Pay),
            Kind::Close => self.pick_trade(&[Status::WaitBuyerPay]).map_or(Change::Create, Change::Close),
            Kind::AdjustFee => self.pick_trade(&[Status::WaitBuyerPay]).map_or(Change::Create, Change::AdjustFee),
            Kind::Ship => self.pick_trade(&[Status::WaitSellerSendGoods]).map_or(Change::Create, Change::Ship),
            Kind::Finish => self.pick_trade(&[Status::WaitBuyerConfirmGoods]).map_or(Change::Create, Change::Finish),
            Kind::Refund => {
                let advance = self.open_refunds.len() > 0 && self.rng.random_bool(0.5);
                if advance {
                    let at = self.rng.random_range(0..self.open_refunds.len());
                    self.open_refunds.get(at).map_or(Change::Create, Change::AdvanceRefund)
                } else {
                    self.pick_trade(&[Status::WaitSellerSendGoods, Status::WaitBuyerConfirmGoods])
                        .map_or(Change::Create, Change::Refund)
                }
            }
        };
        let target = match change {
            Change::AdvanceRefund(id) => self.refund(id).map(|r| r.tid),
            Change::Create => None,
            Change::Pay(t) | Change::Ship(t) | Change::Finish(t) | Change::Close(t) => Some(t),
            Change::AdjustFee(t) | Change::Refund(t) => Some(t),
        };
        if target.is_some_and(|t| exclude.contains(&t)) { Change::Create } else { change }
    }

    /// A random trade in one of `statuses`, any type.
    fn pick_trade(&mut self, statuses: &[Status]) -> Option<i64> {
        let pool: Vec<usize> =
            TradeType::ALL.iter().flat_map(|&kind| statuses.iter().map(move |&status| bucket(kind, status))).collect();
        let size: usize = pool.iter().map(|b| self.by_created.bucket_len(*b)).sum();
        if size == 0 {
            return None;
        }
        let mut at = self.rng.random_range(0..size);
        for b in pool {
            let len = self.by_created.bucket_len(b);
            if at < len {
                return self.by_created.bucket_key(b, at).map(super::index::tid_of);
            }
            at -= len;
        }
        None
    }

    /// Opens a refund of line `oid` of trade `tid` at `now`, asking for the
    /// money only (no goods back), as a buyer waiting for a presale might;
    /// returns its id, or `None` when the trade refuses (unpaid, or the line
    /// has a refund already).
    pub(crate) fn open_refund_of(&mut self, tid: i64, oid: i64, now: DateTime<Utc>) -> Option<i64> {
        let item = self.trade(tid)?.items.iter().position(|i| i.oid == oid)?;
        let reason = generate::refund_reason(&mut self.rng);
        let id = generate::next_id(&mut self.rng, self.last_refund_id);
        self.update(tid, now, |t, refunds, at| match t.open_refund(item, id, false, reason, at) {
            Some(refund) => {
                refunds.insert(id, refund);
                vec![topic::REFUND_CREATED]
            }
            None => Vec::new(),
        })?;
        Some(id)
    }

    /// Applies `change` at `now` (never before the order's last change) and
    /// publishes its messages; returns the tid it changed, or `None` when
    /// the order refused the change.
    pub(crate) fn apply(&mut self, change: Change, now: DateTime<Utc>) -> Option<i64> {
        match change {
            Change::Create => Some(self.create(now)),
            Change::Pay(tid) => self.update(tid, now, |t, _, at| t.pay(at)),
            Change::Close(tid) => self.update(tid, now, |t, _, at| t.close(at)),
            Change::Finish(tid) => self.update(tid, now, |t, _, at| t.finish(at)),
            Change::AdjustFee(tid) => {
                let delta = -100 * self.rng.random_range(1..30);
                self.update(tid, now, |t, _, at| t.adjust_fee(delta, at))
            }
            Change::Ship(tid) => {
                let parcel = generate::plan_parcel(&mut self.rng, now);
                self.update(tid, now, |t, _, at| t.ship(parcel, at))
            }
            Change::Refund(tid) => {
                let lines = self.trade(tid)?.items.len();
                let item = self.rng.random_range(0..lines);
                let return_goods = self.rng.random_bool(0.6);
                let reason = generate::refund_reason(&mut self.rng);
                let id = generate::next_id(&mut self.rng, self.last_refund_id);
                self.update(tid, now, |t, refunds, at| match t.open_refund(item, id, return_goods, reason, at) {
                    Some(refund) => {
                        refunds.insert(id, refund);
                        vec![topic::REFUND_CREATED]
                    }
                    None => Vec::new(),
                })
            }
            Change::AdvanceRefund(id) => {
                let refund = self.refund(id)?.clone();
                let tid = refund.tid;
                let next = generate::next_refund_status(&mut self.rng, &refund);
                self.update(tid, now, |t, refunds, at| match refunds.get_mut(&id) {
                    Some(refund) => t.advance_refund(refund, next, at),
                    None => Vec::new(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::generate::new_trade;
    use crate::sim::model::Sku;
    use chrono::{Duration, TimeZone};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 18, 6, 0, 0).single().expect("valid") + Duration::minutes(minutes)
    }

    fn one_sku() -> Vec<Sku> {
        vec![Sku {
            num_iid: 1,
            sku_id: 2,
            outer_iid: "A".into(),
            outer_sku_id: "A-1".into(),
            title: "t".into(),
            properties: "p".into(),
            price: 1000,
            cid: 3,
            popularity: 1.0,
            weekday: [1.0; 7],
        }]
    }

    #[test]
    fn a_presale_pays_deposit_then_balance() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut trade = new_trade(&mut rng, &one_sku(), 10_000, at(0), TradeType::Step);
        assert_eq!(trade.pay(at(1)), vec![topic::BUYER_STEP_PAY]);
        assert_eq!((trade.status, trade.step), (Status::WaitBuyerPay, Some(StepStatus::DepositPaid)));
        assert!(trade.adjust_fee(-100, at(2)).is_empty(), "no price change once the deposit is paid");
        assert_eq!(trade.pay(at(3)), vec![topic::BUYER_PAY]);
        assert_eq!((trade.status, trade.pay_time), (Status::WaitSellerSendGoods, Some(at(1))));
        assert_eq!(trade.modified, at(3));
    }

    #[test]
    fn a_refund_of_every_line_closes_an_unshipped_trade() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut trade = new_trade(&mut rng, &one_sku(), 10_000, at(0), TradeType::Fixed);
        trade.pay(at(1));
        let mut refunds = Vec::new();
        for item in 0..trade.items.len() {
            let mut refund = trade.open_refund(item, 77 + item as i64, true, "r", at(2)).expect("paid order");
            assert!(!refund.has_good_return, "nothing to return before shipping");
            assert!(trade.advance_refund(&mut refund, RefundStatus::WaitBuyerReturnGoods, at(3)).is_empty());
            trade.advance_refund(&mut refund, RefundStatus::Success, at(4));
            refunds.push(refund);
        }
        assert_eq!(trade.status, Status::TradeClosed);
        assert!(trade.ship(generate::plan_parcel(&mut rng, at(5)), at(5)).is_empty());
        assert_eq!(trade.modified, at(4), "a refused change leaves modified alone");
    }

    #[test]
    fn modified_never_goes_back() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut trade = new_trade(&mut rng, &one_sku(), 10_000, at(10), TradeType::Fixed);
        trade.pay(at(5));
        assert_eq!(trade.modified, at(10));
    }
}
