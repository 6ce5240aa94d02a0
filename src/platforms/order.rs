//! The normalised model every platform maps to. Each record keeps the
//! platform's own JSON in `raw`, so nothing the model leaves out is lost.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

/// An amount of money in fen (hundredths of a yuan), so that no sum goes
/// through floating point. Written and read as a decimal string in yuan
/// (`"200.07"`), as TOP writes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(pub i64);

/// A money string that is not a decimal amount with at most two places.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an amount in yuan with at most two decimals: {0:?}")]
pub struct MoneyError(String);

impl FromStr for Money {
    type Err = MoneyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || MoneyError(text.to_owned());
        let trimmed = text.trim();
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || fraction.len() > 2 || !all_digits(whole) || !all_digits(fraction) {
            return Err(invalid());
        }
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let cents: i64 = format!("{fraction:0<2}").parse().map_err(|_| invalid())?;
        let fen = whole.checked_mul(100).and_then(|w| w.checked_add(cents)).ok_or_else(invalid)?;
        Ok(Self(if negative { -fen } else { fen }))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let fen = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", fen / 100, fen % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

// Described as what it serialises to, so record shapes derived from the
// model (`engine::output::Fields::of`) say `string`.
impl JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"type": "string", "description": "An amount in yuan, e.g. \"200.07\"."})
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One order (a TOP "trade"), normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Order {
    /// The platform's name (`taobao`).
    pub platform: String,
    /// The shop's name in `orderflow.yaml`.
    pub shop: String,
    /// The platform's order id (TOP `tid`); may exceed 2^53.
    pub tid: i64,
    /// The platform's status, as it writes it (`WAIT_SELLER_SEND_GOODS`).
    pub status: String,
    /// The platform's order type (`fixed`, `step` for presale, …).
    #[serde(rename = "type")]
    pub order_type: String,
    /// When the buyer placed it.
    pub created: DateTime<Utc>,
    /// When it last changed: the version of this record.
    pub modified: DateTime<Utc>,
    /// When it was paid, if it was.
    pub pay_time: Option<DateTime<Utc>>,
    /// What the buyer paid, in yuan.
    pub payment: Money,
    /// The buyer's nickname.
    pub buyer_nick: Option<String>,
    /// Presale payment stage (TOP `step_trade_status`), for `step` orders.
    pub step_trade_status: Option<String>,
    /// The lines of the order.
    pub items: Vec<OrderItem>,
    /// The platform's JSON for this order, as received.
    pub raw: Json,
}

/// One line of an order (a TOP sub-order, `orders.order[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderItem {
    /// The platform's sub-order id; may exceed 2^53.
    pub oid: i64,
    /// The product id.
    pub num_iid: Option<i64>,
    /// The platform's SKU id.
    pub sku_id: Option<String>,
    /// The merchant's own SKU code.
    pub outer_sku_id: Option<String>,
    /// Product title.
    pub title: Option<String>,
    /// Quantity.
    pub num: i64,
    /// Unit price.
    pub price: Money,
    /// What the buyer paid for this line.
    pub payment: Money,
    /// The refund's state, when a refund exists.
    pub refund_status: Option<String>,
    /// The refund's id, when a refund exists.
    pub refund_id: Option<i64>,
}

/// One refund request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Refund {
    /// The platform's name.
    pub platform: String,
    /// The shop's name.
    pub shop: String,
    /// The refund's id.
    pub refund_id: i64,
    /// The order it belongs to.
    pub tid: i64,
    /// The order line it belongs to.
    pub oid: i64,
    /// The platform's refund status (`WAIT_SELLER_AGREE`, `SUCCESS`, …).
    pub status: String,
    /// The amount refunded or asked for.
    pub refund_fee: Money,
    /// When the buyer asked.
    pub created: DateTime<Utc>,
    /// When it last changed.
    pub modified: DateTime<Utc>,
    /// The platform's JSON, as received.
    pub raw: Json,
}

/// One parcel of an order and where it has been.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParcelTrace {
    /// The carrier's waybill number.
    pub out_sid: String,
    /// The carrier.
    pub company_name: Option<String>,
    /// The platform's parcel status.
    pub status: Option<String>,
    /// Events, oldest first.
    pub steps: Vec<TraceStep>,
}

/// One event in a parcel's trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// When it happened.
    pub time: DateTime<Utc>,
    /// What happened, in the carrier's words.
    pub description: String,
    /// The carrier's event code (`ACCEPT`, `TRANSPORT`, `SIGN`, …), when given.
    pub action: Option<String>,
}

/// A pushed message: a hint that something changed, never the data itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformMessage {
    /// The message id, for confirming it.
    pub id: i64,
    /// The topic (`taobao_trade_TradeChanged`, …).
    pub topic: String,
    /// When the platform published it.
    pub pub_time: DateTime<Utc>,
    /// The order it is about, when it names one.
    pub tid: Option<i64>,
    /// The message's content, parsed from its JSON string.
    pub content: Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_round_trips_yuan_strings_without_floats() {
        for (text, fen, shown) in
            [("200.07", 20007, "200.07"), ("0.5", 50, "0.50"), ("12", 1200, "12.00"), ("-3.10", -310, "-3.10")]
        {
            let money: Money = text.parse().expect(text);
            assert_eq!(money, Money(fen));
            assert_eq!(money.to_string(), shown);
        }
        for bad in ["", "1.234", "abc", "1.2.3", "--1", ".5", "92233720368547758.08"] {
            assert!(bad.parse::<Money>().is_err(), "{bad:?} should be refused");
        }
    }
}
