//! The field and type lists sent to TOP, in one place so a wrong guess is one
//! line to change. Every name here comes from `platform-api/taobao/*.txt`.

/// Every trade type the list methods document (the request's `type` values,
/// plus `fenxiao` which the response's `type` documents). Sent with every
/// listing, because without `type` TOP returns only `guarantee_trade,
/// auto_delivery, ec, cod, step` and silently drops the rest (`fenxiao`,
/// `tmall_i18n`, …); `taobao.refunds.receive.get` likewise drops refunds of
/// other types than `guarantee_trade, auto_delivery` without it.
pub const TRADE_TYPES: &[&str] = &[
    "fixed",
    "auction",
    "guarantee_trade",
    "step",
    "independent_simple_trade",
    "independent_shop_trade",
    "auto_delivery",
    "ec",
    "cod",
    "fenxiao",
    "game_equipment",
    "shopex_trade",
    "netcn_trade",
    "external_trade",
    "instant_trade",
    "b2c_cod",
    "hotel_trade",
    "super_market_trade",
    "super_market_cod_trade",
    "taohua",
    "waimai",
    "o2o_offlinetrade",
    "nopaid",
    "eticket",
    "tmall_i18n",
    "insurance_plus",
    "finance",
    "pre_auth_type",
    "lazada",
];

/// Every trade `status` TOP documents for a trade (`Trade.status` of
/// `taobao.trade.fullinfo.get`, `taobao.trades.sold.get` and
/// `taobao.trades.sold.increment.get`). A trade whose status is none of
/// these is refused as a bad record rather than stored.
pub const TRADE_STATUSES: &[&str] = &[
    "TRADE_NO_CREATE_PAY",
    "WAIT_BUYER_PAY",
    "SELLER_CONSIGNED_PART",
    "WAIT_SELLER_SEND_GOODS",
    "WAIT_BUYER_CONFIRM_GOODS",
    "TRADE_BUYER_SIGNED",
    "TRADE_FINISHED",
    "TRADE_CLOSED",
    "TRADE_CLOSED_BY_TAOBAO",
    "PAY_PENDING",
    "WAIT_PRE_AUTH_CONFIRM",
    "PAID_FORBID_CONSIGN",
];

/// Every refund `status` a refund record can have: those TOP documents
/// (`Refund.status` of `taobao.refunds.receive.get` and `taobao.refund.get`),
/// then the two Douyin's exchanges are named by (`douyin::mapping::
/// refund_status_name`). Validation checks compared statuses against them.
pub const REFUND_STATUSES: &[&str] = &[
    "WAIT_SELLER_AGREE",
    "WAIT_BUYER_RETURN_GOODS",
    "WAIT_SELLER_CONFIRM_GOODS",
    "SELLER_REFUSE_BUYER",
    "CLOSED",
    "SUCCESS",
    "WAIT_SELLER_SEND_GOODS",
    "WAIT_BUYER_CONFIRM_GOODS",
];

/// The `refund_status` TOP writes on every sub-order without a refund; the
/// model has no refund state for it.
pub const NO_REFUND: &str = "NO_REFUND";

/// The `fields` of a listing when the caller names none: what [`Order`]
/// needs (`tid` … `step_trade_status`, and `orders`, which returns every
/// sub-order field, `oid`, `num_iid`, `sku_id`, `outer_sku_id`, `title`,
/// `num`, `price`, `payment`, `refund_status`, `refund_id` among them), plus
/// the money and times a merchant's database usually wants in `raw`. Every
/// one is documented for both `trades.sold.get` and
/// `trades.sold.increment.get`.
///
/// [`Order`]: crate::platforms::Order
pub const DEFAULT_TRADE_FIELDS: &[&str] = &[
    "tid",
    "status",
    "type",
    "created",
    "modified",
    "pay_time",
    "payment",
    "buyer_nick",
    "step_trade_status",
    "step_paid_fee",
    "seller_nick",
    "total_fee",
    "post_fee",
    "discount_fee",
    "adjust_fee",
    "received_payment",
    "consign_time",
    "end_time",
    "shipping_type",
    "orders",
];

/// What `taobao.trade.fullinfo.get` asks for beyond [`DEFAULT_TRADE_FIELDS`]
/// when the caller names no fields: the address (which a listing also
/// returns) and the notes, promotions and logistics tags only the detail
/// returns, kept in `raw` as they come.
pub const DETAIL_EXTRA_FIELDS: &[&str] = &[
    "receiver_name",
    "receiver_country",
    "receiver_state",
    "receiver_city",
    "receiver_district",
    "receiver_town",
    "receiver_address",
    "receiver_zip",
    "receiver_mobile",
    "receiver_phone",
    "buyer_message",
    "buyer_memo",
    "seller_memo",
    "seller_flag",
    "trade_memo",
    "promotion_details",
    "service_tags",
];

/// The `fields` of `taobao.refunds.receive.get`: every field it documents
/// as supported, so `raw` holds the whole refund.
pub const REFUND_LIST_FIELDS: &[&str] = &[
    "refund_id",
    "tid",
    "oid",
    "title",
    "buyer_nick",
    "seller_nick",
    "total_fee",
    "status",
    "created",
    "modified",
    "refund_fee",
    "good_status",
    "has_good_return",
    "company_name",
    "sid",
    "payment",
    "reason",
    "desc",
    "order_status",
    "refund_phase",
    "dispute_type",
];

/// The `fields` of `taobao.refund.get`: the supported fields that describe
/// the refund, plus `modified`, which the answer documents but the list of
/// supported fields forgets, and which [`Refund`] needs.
///
/// [`Refund`]: crate::platforms::Refund
pub const REFUND_FIELDS: &[&str] = &[
    "refund_id",
    "alipay_no",
    "tid",
    "oid",
    "buyer_nick",
    "seller_nick",
    "total_fee",
    "status",
    "created",
    "modified",
    "refund_fee",
    "good_status",
    "has_good_return",
    "payment",
    "reason",
    "desc",
    "num_iid",
    "title",
    "price",
    "num",
    "good_return_time",
    "company_name",
    "sid",
    "shipping_type",
    "refund_phase",
    "refund_version",
    "outer_id",
    "dispute_type",
    "sku",
    "end_time",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lists_are_consistent() {
        for field in DEFAULT_TRADE_FIELDS {
            assert!(!DETAIL_EXTRA_FIELDS.contains(field), "{field} is asked for twice");
        }
        assert!(TRADE_TYPES.contains(&"fenxiao") && TRADE_TYPES.contains(&"tmall_i18n"));
    }
}
