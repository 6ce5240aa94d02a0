//! The shop's records and how TOP writes them: trades with their sub-orders,
//! refunds and parcels, and the field selection (`fields`) every trade method
//! honours.
//!
//! Money is held in fen (`i64`) and written as yuan strings; times are whole
//! seconds written in GMT+8 by [`crate::platforms::taobao::time`]; ids are
//! JSON numbers (tids and oids exceed 2^53, which serde_json keeps exact).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json, json};

use crate::platforms::taobao::time;

/// The seller the simulated shop belongs to.
pub const SELLER_NICK: &str = "orderflow模拟旗舰店";
/// The seller's numeric user id, as TMC messages carry it.
pub const SELLER_USER_ID: i64 = 2_209_876_543_210;

/// Trade fields that only `taobao.trade.fullinfo.get` returns: the list
/// methods leave them out even when `fields` asks for them, so a client that
/// needs them must fetch the detail.
pub const DETAIL_ONLY_FIELDS: &[&str] = &[
    "receiver_name",
    "receiver_address",
    "receiver_mobile",
    "receiver_phone",
    "buyer_message",
    "buyer_memo",
    "seller_memo",
    "trade_memo",
    "promotion_details",
    "service_tags",
];

/// A trade's type, as TOP names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum TradeType {
    /// A fixed-price sale (most orders).
    Fixed,
    /// A presale: deposit first, the rest later.
    Step,
    /// A distribution (reseller) order; outside the list methods' default types.
    Fenxiao,
}

impl TradeType {
    pub(crate) const ALL: [TradeType; 3] = [TradeType::Fixed, TradeType::Step, TradeType::Fenxiao];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TradeType::Fixed => "fixed",
            TradeType::Step => "step",
            TradeType::Fenxiao => "fenxiao",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A trade's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Status {
    WaitBuyerPay,
    WaitSellerSendGoods,
    WaitBuyerConfirmGoods,
    TradeFinished,
    /// Closed after payment (every line refunded, or a forfeited deposit).
    TradeClosed,
    /// Closed before payment.
    TradeClosedByTaobao,
}

impl Status {
    pub(crate) const ALL: [Status; 6] = [
        Status::WaitBuyerPay,
        Status::WaitSellerSendGoods,
        Status::WaitBuyerConfirmGoods,
        Status::TradeFinished,
        Status::TradeClosed,
        Status::TradeClosedByTaobao,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::WaitBuyerPay => "WAIT_BUYER_PAY",
            Status::WaitSellerSendGoods => "WAIT_SELLER_SEND_GOODS",
            Status::WaitBuyerConfirmGoods => "WAIT_BUYER_CONFIRM_GOODS",
            Status::TradeFinished => "TRADE_FINISHED",
            Status::TradeClosed => "TRADE_CLOSED",
            Status::TradeClosedByTaobao => "TRADE_CLOSED_BY_TAOBAO",
        }
    }

    /// The statuses a `status` query parameter selects; `None` for a value
    /// TOP does not know. Unknown-to-the-simulator but valid statuses select
    /// nothing.
    pub(crate) fn parse_filter(text: &str) -> Option<Vec<Status>> {
        let selected = match text {
            "ALL_WAIT_PAY" => vec![Status::WaitBuyerPay],
            "ALL_CLOSED" => vec![Status::TradeClosed, Status::TradeClosedByTaobao],
            "TRADE_NO_CREATE_PAY"
            | "SELLER_CONSIGNED_PART"
            | "TRADE_BUYER_SIGNED"
            | "PAY_PENDING"
            | "WAIT_PRE_AUTH_CONFIRM"
            | "PAID_FORBID_CONSIGN" => Vec::new(),
            other => vec![Status::ALL.into_iter().find(|s| s.as_str() == other)?],
        };
        Some(selected)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many index buckets there are: one per trade type and status.
pub(crate) const BUCKETS: usize = TradeType::ALL.len() * Status::ALL.len();

/// The index bucket of a trade of `kind` in `status`.
pub(crate) fn bucket(kind: TradeType, status: Status) -> usize {
    kind.index() * Status::ALL.len() + status.index()
}

/// A presale order's payment stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StepStatus {
    NothingPaid,
    DepositPaid,
    FullyPaid,
    DepositForfeited,
}

impl StepStatus {
    fn as_str(self) -> &'static str {
        match self {
            StepStatus::NothingPaid => "FRONT_NOPAID_FINAL_NOPAID",
            StepStatus::DepositPaid => "FRONT_PAID_FINAL_NOPAID",
            StepStatus::FullyPaid => "FRONT_PAID_FINAL_PAID",
            StepStatus::DepositForfeited => "FRONT_PAID_FRONT_FORFEITED",
        }
    }
}

/// A refund's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefundStatus {
    WaitSellerAgree,
    WaitBuyerReturnGoods,
    WaitSellerConfirmGoods,
    SellerRefuseBuyer,
    Closed,
    Success,
}

impl RefundStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RefundStatus::WaitSellerAgree => "WAIT_SELLER_AGREE",
            RefundStatus::WaitBuyerReturnGoods => "WAIT_BUYER_RETURN_GOODS",
            RefundStatus::WaitSellerConfirmGoods => "WAIT_SELLER_CONFIRM_GOODS",
            RefundStatus::SellerRefuseBuyer => "SELLER_REFUSE_BUYER",
            RefundStatus::Closed => "CLOSED",
            RefundStatus::Success => "SUCCESS",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        use RefundStatus::*;
        [WaitSellerAgree, WaitBuyerReturnGoods, WaitSellerConfirmGoods, SellerRefuseBuyer, Closed, Success]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether the refund can still change.
    pub(crate) fn is_open(self) -> bool {
        !matches!(self, RefundStatus::Closed | RefundStatus::Success)
    }
}

/// One product variant the shop sells.
#[derive(Debug, Clone)]
pub(crate) struct Sku {
    pub num_iid: i64,
    pub sku_id: i64,
    pub outer_iid: String,
    pub outer_sku_id: String,
    pub title: String,
    pub properties: String,
    pub price: i64,
    pub cid: i64,
    /// How often it sells, relative to the others.
    pub popularity: f64,
    /// Its weight on each weekday, Monday first.
    pub weekday: [f64; 7],
}

/// Where the parcel goes. Province, city and district come from a fixed table.
#[derive(Debug, Clone)]
pub(crate) struct Receiver {
    pub name: String,
    pub mobile: String,
    pub state: &'static str,
    pub city: &'static str,
    pub district: &'static str,
    pub address: String,
    pub zip: &'static str,
}

/// One line of a trade.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub oid: i64,
    /// Index into the catalogue.
    pub sku: usize,
    pub num: i64,
    pub price: i64,
    pub discount: i64,
    pub adjust: i64,
    pub refund_id: Option<i64>,
    pub refund_status: Option<RefundStatus>,
    /// Set when a refund of this line succeeded.
    pub end_time: Option<DateTime<Utc>>,
}

impl Item {
    /// What the buyer pays for this line.
    pub(crate) fn payment(&self) -> i64 {
        self.price * self.num + self.adjust - self.discount
    }

    /// Whether a refund of this line succeeded.
    pub(crate) fn refunded(&self) -> bool {
        self.refund_status == Some(RefundStatus::Success)
    }
}

/// One event of a parcel's journey.
#[derive(Debug, Clone)]
pub(crate) struct TraceStep {
    pub at: DateTime<Utc>,
    pub desc: String,
    pub action: &'static str,
}

/// A shipped parcel. Its steps are planned when it ships, some in the future:
/// a query shows those that have happened by then, so traces grow with time.
/// A stalled parcel's plan simply stops.
#[derive(Debug, Clone)]
pub(crate) struct Parcel {
    pub company: &'static str,
    pub out_sid: String,
    pub steps: Vec<TraceStep>,
}

/// One trade (order).
#[derive(Debug, Clone)]
pub(crate) struct Trade {
    pub tid: i64,
    pub kind: TradeType,
    pub status: Status,
    pub step: Option<StepStatus>,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub pay_time: Option<DateTime<Utc>>,
    pub consign_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub buyer_nick: String,
    pub receiver: Receiver,
    pub buyer_message: Option<String>,
    pub seller_memo: Option<String>,
    pub seller_flag: i64,
    pub post_fee: i64,
    /// The presale deposit, for step trades.
    pub deposit: i64,
    pub alipay_no: String,
    pub trade_from: &'static str,
    pub items: Vec<Item>,
    pub parcel: Option<Parcel>,
}

impl Trade {
    /// The index bucket this trade sits in.
    pub(crate) fn bucket(&self) -> usize {
        bucket(self.kind, self.status)
    }

    /// What the buyer pays in all.
    pub(crate) fn payment(&self) -> i64 {
        self.items.iter().map(Item::payment).sum::<i64>() + self.post_fee
    }

    fn refunded(&self) -> i64 {
        self.items.iter().filter(|i| i.refunded()).map(Item::payment).sum()
    }

    fn step_paid_fee(&self) -> Option<i64> {
        Some(match self.step? {
            StepStatus::NothingPaid => 0,
            StepStatus::DepositPaid | StepStatus::DepositForfeited => self.deposit,
            StepStatus::FullyPaid => self.payment(),
        })
    }

    /// Every field the simulator knows for this trade, as
    /// `taobao.trade.fullinfo.get` writes it.
    pub(crate) fn to_json(&self, catalog: &[Sku]) -> Map<String, Json> {
        let mut t = Map::new();
        let money = |fen: i64| Json::String(yuan(fen));
        t.insert("tid".into(), json!(self.tid));
        t.insert("type".into(), json!(self.kind.as_str()));
        t.insert("status".into(), json!(self.status.as_str()));
        if let Some(step) = self.step {
            t.insert("step_trade_status".into(), json!(step.as_str()));
        }
        if let Some(paid) = self.step_paid_fee() {
            t.insert("step_paid_fee".into(), money(paid));
        }
        t.insert("seller_nick".into(), json!(SELLER_NICK));
        t.insert("buyer_nick".into(), json!(self.buyer_nick));
        t.insert("title".into(), json!(SELLER_NICK));
        t.insert("created".into(), json!(time::format(self.created)));
        t.insert("modified".into(), json!(time::format(self.modified)));
        for (name, at) in
            [("pay_time", self.pay_time), ("consign_time", self.consign_time), ("end_time", self.end_time)]
        {
            if let Some(at) = at {
                t.insert(name.into(), json!(time::format(at)));
            }
        }
        let total: i64 = self.items.iter().map(|i| i.price * i.num).sum();
        t.insert("total_fee".into(), money(total));
        t.insert("payment".into(), money(self.payment()));
        t.insert("post_fee".into(), money(self.post_fee));
        t.insert("discount_fee".into(), money(self.items.iter().map(|i| i.discount).sum()));
        t.insert("adjust_fee".into(), money(self.items.iter().map(|i| i.adjust).sum()));
        let received = if self.status == Status::TradeFinished { self.payment() - self.refunded() } else { 0 };
        t.insert("received_payment".into(), money(received));
        t.insert("shipping_type".into(), json!("express"));
        if let [only] = self.items.as_slice() {
            let sku = &catalog[only.sku];
            t.insert("num_iid".into(), json!(sku.num_iid));
            t.insert("num".into(), json!(only.num));
            t.insert("price".into(), money(only.price));
            t.insert("pic_path".into(), json!(pic_path(sku)));
        } else {
            t.insert("num".into(), json!(0));
        }
        t.insert("alipay_no".into(), json!(self.alipay_no));
        t.insert("trade_from".into(), json!(self.trade_from));
        t.insert("buyer_rate".into(), json!(false));
        t.insert("seller_rate".into(), json!(false));
        t.insert("seller_flag".into(), json!(self.seller_flag));
        t.insert("has_buyer_message".into(), json!(self.buyer_message.is_some()));
        let r = &self.receiver;
        t.insert("receiver_state".into(), json!(r.state));
        t.insert("receiver_city".into(), json!(r.city));
        t.insert("receiver_district".into(), json!(r.district));
        t.insert("receiver_zip".into(), json!(r.zip));
        t.insert("receiver_name".into(), json!(r.name));
        t.insert("receiver_address".into(), json!(r.address));
        t.insert("receiver_mobile".into(), json!(r.mobile));
        if let Some(message) = &self.buyer_message {
            t.insert("buyer_message".into(), json!(message));
        }
        if let Some(memo) = &self.seller_memo {
            t.insert("seller_memo".into(), json!(memo));
        }
        // Nested lists as TOP nests them (`{"promotion_detail": [...]}`), so a
        // client that refuses structures it does not read fails here too.
        let promotions: Vec<Json> = self
            .items
            .iter()
            .filter(|item| item.discount > 0)
            .map(|item| {
                json!({"id": item.oid, "promotion_name": "店铺优惠",
                    "promotion_id": format!("shopbonus-{}_{}", self.tid % 100_000, item.oid % 100_000),
                    "promotion_desc": format!("店铺优惠:省{}元", yuan(item.discount)),
                    "discount_fee": yuan(item.discount)})
            })
            .collect();
        if !promotions.is_empty() {
            t.insert("promotion_details".into(), json!({ "promotion_detail": promotions }));
        }
        let tags: Vec<Json> = self
            .items
            .iter()
            .map(|item| {
                json!({"order_id": item.oid.to_string(), "logistic_service_tag_list": {"logistic_service_tag": [
                    {"service_type": "TB_CONSIGN_DATE", "service_tag": "consignDate:48"}]}})
            })
            .collect();
        t.insert("service_tags".into(), json!({ "logistics_tag": tags }));
        let orders: Vec<Json> = self.items.iter().map(|item| Json::Object(self.item_json(item, catalog))).collect();
        t.insert("orders".into(), json!({ "order": orders }));
        t
    }

    fn item_json(&self, item: &Item, catalog: &[Sku]) -> Map<String, Json> {
        let sku = &catalog[item.sku];
        let mut o = Map::new();
        let money = |fen: i64| Json::String(yuan(fen));
        // Real answers write ids as numbers or as strings of digits; the
        // trades of even tid get theirs as strings.
        let id = |id: i64| if self.tid % 2 == 0 { json!(id.to_string()) } else { json!(id) };
        o.insert("oid".into(), id(item.oid));
        o.insert("num_iid".into(), id(sku.num_iid));
        o.insert("sku_id".into(), json!(sku.sku_id.to_string()));
        o.insert("outer_iid".into(), json!(sku.outer_iid));
        o.insert("outer_sku_id".into(), json!(sku.outer_sku_id));
        o.insert("title".into(), json!(sku.title));
        o.insert("sku_properties_name".into(), json!(sku.properties));
        o.insert("pic_path".into(), json!(pic_path(sku)));
        o.insert("cid".into(), json!(sku.cid));
        o.insert("price".into(), money(item.price));
        o.insert("num".into(), json!(item.num));
        o.insert("total_fee".into(), money(item.payment()));
        o.insert("payment".into(), money(item.payment()));
        o.insert("divide_order_fee".into(), money(item.payment()));
        o.insert("discount_fee".into(), money(item.discount));
        o.insert("adjust_fee".into(), money(item.adjust));
        let status =
            if item.refunded() && self.status != Status::TradeFinished { Status::TradeClosed } else { self.status };
        o.insert("status".into(), json!(status.as_str()));
        if let (Some(id), Some(state)) = (item.refund_id, item.refund_status) {
            o.insert("refund_status".into(), json!(state.as_str()));
            o.insert("refund_id".into(), json!(id.to_string()));
        } else {
            // TOP writes this on every line without a refund.
            o.insert("refund_status".into(), json!("NO_REFUND"));
        }
        o.insert("seller_type".into(), json!("B"));
        o.insert("buyer_rate".into(), json!(false));
        o.insert("seller_rate".into(), json!(false));
        if let (Some(at), Some(parcel)) = (self.consign_time, &self.parcel) {
            if !item.refunded() || item.end_time.is_some_and(|end| end > at) {
                o.insert("consign_time".into(), json!(time::format(at)));
                o.insert("logistics_company".into(), json!(parcel.company));
                o.insert("invoice_no".into(), json!(parcel.out_sid));
            }
        }
        o.insert("shipping_type".into(), json!("express"));
        if let Some(end) = item.end_time.or(self.end_time) {
            o.insert("end_time".into(), json!(time::format(end)));
        }
        o
    }
}

fn pic_path(sku: &Sku) -> String {
    format!("https://img.alicdn.com/bao/uploaded/i1/sim/{}.jpg", sku.num_iid)
}

/// `fen` as a yuan string with two decimals, as TOP writes money.
pub(crate) fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// A refund request on one line of a trade.
#[derive(Debug, Clone)]
pub(crate) struct Refund {
    pub refund_id: i64,
    pub tid: i64,
    pub oid: i64,
    pub status: RefundStatus,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub refund_fee: i64,
    pub has_good_return: bool,
    /// `onsale` before the trade finished, `aftersale` after.
    pub phase: &'static str,
    pub reason: &'static str,
}

impl Refund {
    /// Every field the simulator knows for this refund, as
    /// `taobao.refund.get` writes it; `trade` is the refund's trade.
    pub(crate) fn to_json(&self, trade: &Trade, catalog: &[Sku]) -> Map<String, Json> {
        let item = trade.items.iter().find(|i| i.oid == self.oid);
        let mut r = Map::new();
        let money = |fen: i64| Json::String(yuan(fen));
        r.insert("refund_id".into(), json!(self.refund_id.to_string()));
        r.insert("tid".into(), json!(self.tid));
        r.insert("oid".into(), json!(self.oid));
        r.insert("status".into(), json!(self.status.as_str()));
        r.insert("order_status".into(), json!(trade.status.as_str()));
        r.insert("buyer_nick".into(), json!(trade.buyer_nick));
        r.insert("seller_nick".into(), json!(SELLER_NICK));
        r.insert("created".into(), json!(time::format(self.created)));
        r.insert("modified".into(), json!(time::format(self.modified)));
        r.insert("refund_version".into(), json!(self.modified.timestamp_millis()));
        r.insert("total_fee".into(), money(trade.payment()));
        r.insert("refund_fee".into(), money(self.refund_fee));
        r.insert("payment".into(), money(trade.payment() - self.refund_fee));
        r.insert("has_good_return".into(), json!(self.has_good_return));
        let good_status = match (self.has_good_return, self.status) {
            (true, RefundStatus::WaitSellerConfirmGoods | RefundStatus::Success) => "BUYER_RETURNED_GOODS",
            (true, _) => "BUYER_RECEIVED",
            (false, _) if trade.consign_time.is_some_and(|at| at <= self.created) => "BUYER_RECEIVED",
            (false, _) => "BUYER_NOT_RECEIVED",
        };
        r.insert("good_status".into(), json!(good_status));
        r.insert("refund_phase".into(), json!(self.phase));
        r.insert("dispute_type".into(), json!(if self.has_good_return { "REFUND_AND_RETURN" } else { "REFUND" }));
        r.insert("reason".into(), json!(self.reason));
        r.insert("desc".into(), json!(""));
        if let Some(item) = item {
            let sku = &catalog[item.sku];
            r.insert("num_iid".into(), json!(sku.num_iid));
            r.insert("title".into(), json!(sku.title));
            r.insert("price".into(), money(item.price));
            r.insert("num".into(), json!(item.num));
            r.insert("outer_id".into(), json!(sku.outer_sku_id));
            r.insert("sku".into(), json!(format!("{}|{}", sku.sku_id, sku.properties)));
        }
        r.insert("shipping_type".into(), json!("express"));
        r
    }
}

/// Which fields of a record to return, from a `fields` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    top: BTreeSet<String>,
    orders: Orders,
}

/// Which sub-order fields to return.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Orders {
    None,
    All,
    Only(BTreeSet<String>),
}

impl Fields {
    /// Reads a comma-separated `fields` value. `orders` asks for every
    /// sub-order field, `orders.oid` for that one only. For the list methods
    /// (`list`), [`DETAIL_ONLY_FIELDS`] are dropped.
    pub(crate) fn parse(text: &str, list: bool) -> Self {
        let mut top = BTreeSet::new();
        let mut orders = Orders::None;
        for field in text.split(',').map(str::trim).filter(|f| !f.is_empty()) {
            if field == "orders" {
                orders = Orders::All;
            } else if let Some(sub) = field.strip_prefix("orders.") {
                match &mut orders {
                    Orders::All => {}
                    Orders::None => orders = Orders::Only(BTreeSet::from([sub.to_owned()])),
                    Orders::Only(subs) => {
                        subs.insert(sub.to_owned());
                    }
                }
            } else if !(list && DETAIL_ONLY_FIELDS.contains(&field)) {
                top.insert(field.to_owned());
            }
        }
        Self { top, orders }
    }

    /// Keeps only the selected fields of `full` (a record from `to_json`),
    /// in `full`'s order.
    pub(crate) fn apply(&self, full: Map<String, Json>) -> Map<String, Json> {
        let mut kept = Map::new();
        for (name, value) in full {
            if name == "orders" {
                match &self.orders {
                    Orders::None => {}
                    Orders::All => {
                        kept.insert(name, value);
                    }
                    Orders::Only(subs) => {
                        kept.insert(name, select_orders(value, subs));
                    }
                }
            } else if self.top.contains(&name) {
                kept.insert(name, value);
            }
        }
        kept
    }
}

fn select_orders(mut orders: Json, subs: &BTreeSet<String>) -> Json {
    if let Some(list) = orders.get_mut("order").and_then(Json::as_array_mut) {
        for order in list {
            if let Json::Object(fields) = order {
                fields.retain(|name, _| subs.contains(name));
            }
        }
    }
    orders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_written_in_yuan_with_two_decimals() {
        assert_eq!(yuan(20007), "200.07");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(-310), "-3.10");
    }

    #[test]
    fn fields_select_top_level_and_sub_order_fields() {
        let full: Map<String, Json> = serde_json::from_value(json!({
            "tid": 1, "status": "X", "receiver_name": "张三",
            "orders": {"order": [{"oid": 2, "sku_id": "9", "title": "t"}]}
        }))
        .unwrap();
        let list = Fields::parse("tid, receiver_name,orders.oid,orders.sku_id", true);
        assert_eq!(
            Json::Object(list.apply(full.clone())),
            json!({"tid": 1, "orders": {"order": [{"oid": 2, "sku_id": "9"}]}})
        );
        let detail = Fields::parse("receiver_name,orders", false);
        assert_eq!(
            Json::Object(detail.apply(full.clone())),
            json!({"receiver_name": "张三", "orders": {"order": [{"oid": 2, "sku_id": "9", "title": "t"}]}})
        );
        assert_eq!(Json::Object(Fields::parse("status", true).apply(full)), json!({"status": "X"}));
    }

    #[test]
    fn status_filters_know_the_composite_values() {
        assert_eq!(Status::parse_filter("ALL_CLOSED"), Some(vec![Status::TradeClosed, Status::TradeClosedByTaobao]));
        assert_eq!(Status::parse_filter("TRADE_FINISHED"), Some(vec![Status::TradeFinished]));
        assert_eq!(Status::parse_filter("PAY_PENDING"), Some(vec![]));
        assert_eq!(Status::parse_filter("NOPE"), None);
    }
}
