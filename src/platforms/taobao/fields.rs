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

/// The `fields` of `taobao.trade.fullinfo.get` when the caller names none:
/// [`DEFAULT_TRADE_FIELDS`] plus the address (which a listing also returns)
/// and the notes and promotions only the detail returns.
pub const DEFAULT_DETAIL_FIELDS: &[&str] = &[
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
];

/// Trade fields `taobao.trade.fullinfo.get` documents that at least one of
/// the list methods (`trades.sold.get`, `trades.sold.increment.get`) does
/// not: a flow that needs one of these must fetch each order's detail.
/// Derived from the docs by comparing the three methods' trade-level response
/// fields, so it is conservative (a field only `trades.sold.get` returns is
/// listed, since a sync by modification time would miss it). Notably
/// `buyer_message`, `seller_memo`, `buyer_memo`, `trade_memo`,
/// `promotion_details`, `coupon_fee`, `invoice_detail_*` and `seller_*`
/// contacts are here; the `receiver_*` address is not, because both list
/// methods document it. Sub-order fields are not listed: `orders` returns
/// them all.
#[rustfmt::skip]
pub const DETAIL_ONLY_FIELDS: &[&str] = &[
    "acookie_id", "address_details", "agree_refund_checks", "alipay_no", "alipay_point", "allow_appkeys", "app_name",
    "arrive_cut_time", "arrive_interval", "asdp_ads", "asdp_biz_type", "assembly", "available_confirm_fee",
    "biz_code", "brand_light_shop_source", "brand_light_shop_store_id", "buyer_alipay_no", "buyer_area",
    "buyer_cod_fee", "buyer_email", "buyer_flag", "buyer_memo", "buyer_message", "buyer_obtain_point_fee", "can_rate",
    "cloud_store", "cod_fee", "cod_status", "collect_time", "combine_logistics_details", "commission_fee",
    "consign_interval", "coupon_fee", "cutoff_minutes", "delay_create_delivery", "delivery_cps", "delivery_plan",
    "delivery_time", "dispatch_time", "donee_nick", "donee_open_uid", "drug_register", "easy_home_city_type",
    "es_date", "es_range", "es_time", "est_con_time", "et_plate_number", "et_ser_time", "et_shop_id", "et_shop_name",
    "et_type", "et_verified_shop_name", "eticket_ext", "eticket_service_addr", "expand_card_basic_price",
    "expand_card_basic_price_used", "expand_card_expand_price", "expand_card_expand_price_used", "expandcard_info",
    "express_agency_fee", "extend_info", "forbid_consign", "general_new_presell", "gifting", "gifting_takeout",
    "has_post_fee", "has_yfx", "hk_birthday", "hk_card_code", "hk_card_type", "hk_china_name", "hk_en_name",
    "hk_flight_date", "hk_flight_no", "hk_gender", "hk_pickup", "hk_pickup_id", "hold_install", "identify_info",
    "identity", "invoice_detail_after_refund", "invoice_detail_mid_refund", "invoice_detail_pay", "is_brand_sale",
    "is_cycle_buy", "is_daixiao", "is_force_dc", "is_force_wlb", "is_gift", "is_istore", "is_lgtype", "is_openmall",
    "is_part_consign", "is_sh_ship", "is_wmly", "is_wt", "linkedmall_ext_info", "lm", "logistics_agreement",
    "logistics_consign_info", "logistics_infos", "logistics_modify_info", "m_tariff_fee", "market", "ncz_ext_attr",
    "new_presell", "nr_deposit_order_id", "nr_no_handle", "nr_offline", "nr_shop_guide_id", "nr_shop_guide_name",
    "nr_shop_id", "nr_shop_name", "nr_store_code", "nr_store_order_id", "o2o", "o2o_contract", "o2o_delivery",
    "o2o_et_order_id", "o2o_guide_id", "o2o_guide_name", "o2o_out_trade_id", "o2o_service_address",
    "o2o_service_city", "o2o_service_district", "o2o_service_mobile", "o2o_service_name", "o2o_service_state",
    "o2o_service_town", "o2o_shop_id", "o2o_shop_name", "o2o_snatch_status", "o2o_step_order_id",
    "o2o_step_trade_detail", "o2o_step_trade_detail_new", "o2o_voucher_price", "o2o_xiaopiao", "ob_tag", "obs",
    "ofp_hold", "og_id", "oi_date", "oi_range", "omni_attr", "omni_package", "omni_param", "omnichannel_param",
    "order_follow_id", "os_date", "os_range", "outer_partner_member_id", "paid_coupon_fee", "pay_channel", "pcc_af",
    "platform_subsidy_fee", "play_type", "point_fee", "priority_consign_time", "promise_service", "promise_sign_time",
    "promotion", "promotion_details", "propoint", "q_r_pay", "real_name_auth_status", "real_point_fee",
    "receipt_rel_ids", "receipt_type", "recharge_fee", "retail_out_order_id", "retail_store_code", "retail_store_id",
    "root_cat", "rt_omni_outer_store_id", "rt_omni_send_type", "rt_omni_store_id", "scenario_group",
    "seller_alipay_no", "seller_can_rate", "seller_cod_fee", "seller_email", "seller_memo", "seller_mobile",
    "seller_name", "seller_phone", "send_time", "service_tags", "share_group_hold", "shop_code", "sid", "sign_time",
    "snapshot_url", "sort_info", "sorted", "stage_address_type", "step_pay_details", "suning_shop_code",
    "suning_shop_valid", "tcps_code", "tcps_end", "tcps_start", "team_buy_hold", "third_party_customs_declaration",
    "tid_str", "timeout_action_time", "timing_promise", "tmall_coupon_fee", "top_hold", "toptype", "trade_attr",
    "trade_ext", "trade_from", "trade_memo", "trade_source", "txp_freezer_id", "txp_receive_method", "ua",
    "v_logistics_create", "wtt_param", "yfx_fee", "yfx_id", "yfx_type", "you_xiang", "zero_purchase", "zqs_order_tag",
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
        assert!(DETAIL_ONLY_FIELDS.windows(2).all(|pair| pair[0] < pair[1]), "sorted, no duplicates");
        for field in DEFAULT_TRADE_FIELDS {
            assert!(DEFAULT_DETAIL_FIELDS.contains(field), "{field} is in the detail's defaults too");
            assert!(!DETAIL_ONLY_FIELDS.contains(field), "{field} is asked of a listing, so a listing returns it");
        }
        for field in ["buyer_message", "seller_memo", "promotion_details"] {
            assert!(DETAIL_ONLY_FIELDS.contains(&field));
        }
        assert!(TRADE_TYPES.contains(&"fenxiao") && TRADE_TYPES.contains(&"tmall_i18n"));
    }
}
