//! Douyin's face of the simulator: the same shop, faults, bans, session
//! expiry and mutation stream, served through Douyin's endpoints and shapes
//! under `/douyin/<method path>`.
//!
//! A Douyin request is checked the way Douyin does (its signature pattern
//! over `param_json` sorted at every level, `v=2`, a Unix-seconds timestamp
//! within ten minutes, `order_by=update_time` on a query by update time),
//! then translated into
//! the TOP call that asks the same question and answered by the TOP gateway
//! itself, so that every TOP check, quota, ban, expiry and fault applies
//! unchanged; the answer is translated back into the official SDK's shapes:
//! `{code: 10000, data}` with ids as strings, times in Unix seconds, money in
//! fen, numeric statuses, presale stage orders and nested after-sales, or
//! an error envelope with the codes the Douyin client classifies. Broken
//! answers (HTML, empty, cut short) pass through as they are, and records
//! with a mistyped field keep the mistyped value, so a Douyin client meets
//! the same anomalies. Calls count in [`super::CallStats`] under the TOP
//! method that served them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Map, Value as Json, json};

use super::gateway::{Gateway, Params, clock, lock, parse_urlencoded};
use crate::platforms::Money;
use crate::platforms::douyin::error::{
    CODE_BAD_PARAMETER, CODE_BUSINESS, CODE_PERMISSION, CODE_RATE_LIMITED, CODE_SERVICE_UNAVAILABLE, CODE_SIGNATURE,
    CODE_SUCCESS, CODE_TOKEN_INVALID, SUB_NOT_FOUND, SUB_OVERLOADED,
};
use crate::platforms::douyin::methods::{AFTER_SALE_DETAIL, AFTER_SALE_LIST, ORDER_DETAIL, ORDER_SEARCH_LIST, path};
use crate::platforms::douyin::{VERSION, sign as douyin_sign};
use crate::platforms::taobao::fields::{DEFAULT_TRADE_FIELDS, DETAIL_EXTRA_FIELDS, REFUND_FIELDS, TRADE_TYPES};
use crate::platforms::taobao::{sign as top_sign, time};

/// Where Douyin's endpoints are served: a Douyin shop's gateway is
/// `http://<addr>` + this.
pub const DOUYIN_PATH: &str = "/douyin";

/// How far a request's timestamp may be from the gateway's clock (assumed
/// like TOP's).
const TIMESTAMP_TOLERANCE_SECS: i64 = 600;

/// The Douyin `order_status` of a TOP trade status (1 awaiting payment,
/// 105 paid, 2 to ship, 101 partly shipped, 3 shipped, 4 cancelled,
/// 5 completed); `None` for a status Douyin has no counterpart of.
pub fn douyin_order_status(top_status: &str) -> Option<i64> {
    Some(match top_status {
        "WAIT_BUYER_PAY" | "TRADE_NO_CREATE_PAY" | "PAY_PENDING" | "WAIT_PRE_AUTH_CONFIRM" => 1,
        "PAID_FORBID_CONSIGN" => 105,
        "WAIT_SELLER_SEND_GOODS" => 2,
        "SELLER_CONSIGNED_PART" => 101,
        "WAIT_BUYER_CONFIRM_GOODS" | "TRADE_BUYER_SIGNED" => 3,
        "TRADE_CLOSED" | "TRADE_CLOSED_BY_TAOBAO" => 4,
        "TRADE_FINISHED" => 5,
        _ => return None,
    })
}

/// The Douyin after-sale status of a TOP refund status (the SDK's codes:
/// 6 asked, 7 awaiting the return, 11 returned, 12 succeeded, 27 refused,
/// 28 failed).
fn after_sale_status(top_status: &str) -> Option<i64> {
    Some(match top_status {
        "WAIT_SELLER_AGREE" => 6,
        "WAIT_BUYER_RETURN_GOODS" => 7,
        "WAIT_SELLER_CONFIRM_GOODS" => 11,
        "SUCCESS" => 12,
        "SELLER_REFUSE_BUYER" => 27,
        "CLOSED" => 28,
        _ => return None,
    })
}

/// A Douyin error answer.
struct Refusal {
    code: i64,
    msg: &'static str,
    sub_code: String,
    sub_msg: String,
}

impl Refusal {
    fn new(code: i64, msg: &'static str, sub_code: impl Into<String>, sub_msg: impl Into<String>) -> Self {
        Self { code, msg, sub_code: sub_code.into(), sub_msg: sub_msg.into() }
    }

    fn bad_parameter(name: &str, why: &str) -> Self {
        Self::new(CODE_BAD_PARAMETER, "参数错误", format!("isv.parameter-invalid:{name}"), format!("{name}: {why}"))
    }

    fn envelope(&self, log_id: &str) -> Json {
        json!({"code": self.code, "msg": self.msg, "sub_code": self.sub_code, "sub_msg": self.sub_msg,
               "data": null, "log_id": log_id})
    }
}

/// Serves one Douyin call.
pub(crate) async fn serve(State(gateway): State<Arc<Gateway>>, uri: Uri, body: Bytes) -> Response {
    if !gateway.config.latency.is_zero() {
        tokio::time::sleep(gateway.config.latency).await;
    }
    let query: Params = parse_urlencoded(uri.query().unwrap_or_default().as_bytes()).into_iter().rev().collect();
    let log_id = format!("sim{}", Utc::now().timestamp_nanos_opt().unwrap_or_default());
    let (method, top_params) = match translate_request(&gateway, uri.path(), &query, &body) {
        Ok(translated) => translated,
        Err(refusal) => {
            let mut stats = lock(&gateway.stats);
            stats.total += 1;
            stats.rejected += 1;
            return json_response(StatusCode::OK, &refusal.envelope(&log_id));
        }
    };
    let (response, delay) = gateway.answer(&top_params);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
    let parsed = serde_json::from_slice::<Json>(&bytes).ok().filter(|_| status.is_success());
    let Some(Json::Object(top)) = parsed else {
        // HTML, empty, cut short or an HTTP error: a broken answer is broken
        // the same way on either platform.
        let mut passed = (status, bytes).into_response();
        if let Some(content_type) = content_type {
            passed.headers_mut().insert(header::CONTENT_TYPE, content_type);
        }
        return passed;
    };
    json_response(StatusCode::OK, &translate_answer(method, &top, &log_id))
}

/// Checks a Douyin request and builds the TOP call asking the same.
fn translate_request(
    gateway: &Gateway,
    url_path: &str,
    query: &Params,
    body: &[u8],
) -> Result<(&'static str, Params), Refusal> {
    let param = |name: &str| query.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let method = param("method").ok_or_else(|| Refusal::bad_parameter("method", "missing"))?;
    if url_path.strip_prefix(DOUYIN_PATH) != Some(path(method).as_str()) {
        return Err(Refusal::bad_parameter("method", "does not match the URL path"));
    }
    let app_key = param("app_key").ok_or_else(|| Refusal::bad_parameter("app_key", "missing"))?;
    if param("v") != Some(VERSION) {
        return Err(Refusal::bad_parameter("v", "must be 2"));
    }
    let timestamp = param("timestamp").ok_or_else(|| Refusal::bad_parameter("timestamp", "missing"))?;
    let seconds: i64 = timestamp.parse().map_err(|_| Refusal::bad_parameter("timestamp", "Unix seconds expected"))?;
    if (seconds - clock().timestamp()).abs() > TIMESTAMP_TOLERANCE_SECS {
        return Err(Refusal::bad_parameter("timestamp", "more than 10 minutes from the server's time"));
    }
    let body = std::str::from_utf8(body).map_err(|_| Refusal::bad_parameter("param_json", "not UTF-8"))?;
    let business: Map<String, Json> = match serde_json::from_str(if body.is_empty() { "{}" } else { body }) {
        Ok(Json::Object(map)) => map,
        _ => return Err(Refusal::bad_parameter("param_json", "not a JSON object")),
    };
    // The signature covers the parameters with the keys of every level
    // sorted, whatever order the body wrote them in: a client that signs
    // another form (top-level keys only sorted) fails here.
    let param_json = douyin_sign::param_json(&business);
    let sign_method = douyin_sign::parse_method(param("sign_method").unwrap_or_default())
        .ok_or_else(|| Refusal::bad_parameter("sign_method", "md5 or hmac-sha256"))?;
    let signed = douyin_sign::SignedParams { app_key, method, param_json: &param_json, timestamp, v: VERSION };
    let expected = douyin_sign::sign(signed, &gateway.config.app_secret, sign_method).unwrap_or_default();
    if param("sign") != Some(expected.as_str()) {
        return Err(Refusal::new(CODE_SIGNATURE, "签名错误", "isv.sign-invalid", "the signature does not match"));
    }
    let call = business_params(method, &business)?;
    let mut params: Params = call.params.into_iter().collect();
    params.insert("method".into(), call.top_method.into());
    params.insert("app_key".into(), app_key.into());
    params.insert("timestamp".into(), time::format(clock()));
    params.insert("v".into(), "2.0".into());
    params.insert("format".into(), "json".into());
    params.insert("sign_method".into(), "md5".into());
    if let Some(token) = param("access_token") {
        params.insert("session".into(), token.into());
    }
    let sign = top_sign::sign(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &gateway.config.app_secret,
        crate::config::SignMethod::Md5,
    );
    params.insert("sign".into(), sign);
    Ok((call.douyin_method, params))
}

/// The TOP call answering a Douyin call.
struct TopCall {
    top_method: &'static str,
    /// The Douyin method, as a `'static` name.
    douyin_method: &'static str,
    /// The TOP business parameters.
    params: Vec<(String, String)>,
}

/// The TOP method and business parameters answering a Douyin method's.
fn business_params(method: &str, business: &Map<String, Json>) -> Result<TopCall, Refusal> {
    let text = |name: &str| match business.get(name) {
        Some(Json::String(text)) => Some(text.clone()),
        Some(Json::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let seconds = |name: &str| -> Result<Option<String>, Refusal> {
        text(name)
            .map(|value| {
                value
                    .parse::<i64>()
                    .ok()
                    .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
                    .map(time::format)
                    .ok_or_else(|| Refusal::bad_parameter(name, "Unix seconds expected"))
            })
            .transpose()
    };
    let page = |page_key: &str, size_key: &str| -> Result<Vec<(String, String)>, Refusal> {
        let page: i64 = text(page_key)
            .unwrap_or_else(|| "0".into())
            .parse()
            .map_err(|_| Refusal::bad_parameter(page_key, "a number"))?;
        if page < 0 {
            return Err(Refusal::bad_parameter(page_key, "pages start at 0"));
        }
        Ok(vec![
            ("page_no".into(), (page + 1).to_string()),
            ("page_size".into(), text(size_key).unwrap_or_else(|| "20".into())),
            ("use_has_next".into(), "false".into()),
        ])
    };
    let trade_fields = || [DEFAULT_TRADE_FIELDS, DETAIL_EXTRA_FIELDS].concat().join(",");
    let mut out: Vec<(String, String)> = Vec::new();
    let top_method = match method {
        ORDER_SEARCH_LIST => {
            let by_update_time = ["update_time_start", "update_time_end"].iter().any(|key| business.contains_key(*key));
            // Douyin sorts by creation time unless told otherwise, so a query
            // by update time without `order_by` misses records; refused here
            // so that a client forgetting it fails at once.
            if by_update_time && text("order_by").as_deref() != Some("update_time") {
                return Err(Refusal::bad_parameter("order_by", "update_time is required with update_time_start/end"));
            }
            let (top, start_key, end_key) = if by_update_time {
                ("taobao.trades.sold.increment.get", "start_modified", "end_modified")
            } else {
                ("taobao.trades.sold.get", "start_created", "end_created")
            };
            let prefix = if top == "taobao.trades.sold.get" { "create_time" } else { "update_time" };
            for (douyin_key, top_key) in [(format!("{prefix}_start"), start_key), (format!("{prefix}_end"), end_key)] {
                if let Some(value) = seconds(&douyin_key)? {
                    out.push((top_key.into(), value));
                }
            }
            out.extend(page("page", "size")?);
            out.push(("fields".into(), trade_fields()));
            out.push(("type".into(), TRADE_TYPES.join(",")));
            (top, ORDER_SEARCH_LIST)
        }
        ORDER_DETAIL => {
            let tid = text("shop_order_id").ok_or_else(|| Refusal::bad_parameter("shop_order_id", "missing"))?;
            out.push(("tid".into(), tid));
            out.push(("fields".into(), trade_fields()));
            ("taobao.trade.fullinfo.get", ORDER_DETAIL)
        }
        AFTER_SALE_LIST => {
            for (douyin_key, top_key) in [("update_start_time", "start_modified"), ("update_end_time", "end_modified")]
            {
                if let Some(value) = seconds(douyin_key)? {
                    out.push((top_key.into(), value));
                }
            }
            out.extend(page("page", "size")?);
            out.push(("fields".into(), REFUND_FIELDS.join(",")));
            out.push(("type".into(), TRADE_TYPES.join(",")));
            ("taobao.refunds.receive.get", AFTER_SALE_LIST)
        }
        AFTER_SALE_DETAIL => {
            let id = text("after_sale_id").ok_or_else(|| Refusal::bad_parameter("after_sale_id", "missing"))?;
            out.push(("refund_id".into(), id));
            out.push(("fields".into(), REFUND_FIELDS.join(",")));
            ("taobao.refund.get", AFTER_SALE_DETAIL)
        }
        other => {
            let why = format!("the simulator has no Douyin method {other}");
            return Err(Refusal::new(CODE_BAD_PARAMETER, "参数错误", "isv.method-not-exist", why));
        }
    };
    Ok(TopCall { top_method: top_method.0, douyin_method: top_method.1, params: out })
}

/// A TOP answer (success or `error_response`) as Douyin's envelope.
fn translate_answer(method: &str, top: &Map<String, Json>, log_id: &str) -> Json {
    if let Some(error) = top.get("error_response") {
        return refusal_of(error).envelope(log_id);
    }
    let Some(Json::Object(body)) = top.values().next() else {
        return json!({"code": CODE_SUCCESS, "msg": "success", "log_id": log_id});
    };
    let mut data = Map::new();
    let page_of = |data: &mut Map<String, Json>| {
        if let Some(total) = body.get("total_results") {
            data.insert("total".into(), total.clone());
        }
    };
    match method {
        ORDER_SEARCH_LIST => {
            page_of(&mut data);
            if let Some(trades) = body.get("trades") {
                data.insert("shop_order_list".into(), records(trades, "trade", shop_order));
            }
        }
        ORDER_DETAIL => {
            if let Some(trade) = body.get("trade") {
                data.insert("shop_order_detail".into(), shop_order(trade));
            }
        }
        AFTER_SALE_LIST => {
            page_of(&mut data);
            if let Some(refunds) = body.get("refunds") {
                data.insert("items".into(), records(refunds, "refund", after_sale));
            }
        }
        _ => {
            if let Some(refund) = body.get("refund") {
                data = after_sale_detail(refund);
            }
        }
    }
    json!({"code": CODE_SUCCESS, "msg": "success", "data": data, "log_id": log_id})
}

/// The records of a TOP list container (`{"trade": [...]}`) translated; a
/// container of another shape is passed on as it is (a mistyped field).
fn records(container: &Json, item: &str, translate: impl Fn(&Json) -> Json) -> Json {
    match container.get(item).and_then(Json::as_array) {
        Some(items) => Json::Array(items.iter().map(translate).collect()),
        None => container.clone(),
    }
}

/// A TOP `error_response` as the Douyin refusal of the same class.
fn refusal_of(error: &Json) -> Refusal {
    let code = error.get("code").and_then(Json::as_i64).unwrap_or_default();
    let sub_code = error.get("sub_code").and_then(Json::as_str).unwrap_or_default();
    let sub_msg = error.get("sub_msg").and_then(Json::as_str).unwrap_or_default().to_owned();
    match code {
        7 => Refusal::new(CODE_RATE_LIMITED, "调用频率超限", "isv.app-call-limited", sub_msg),
        _ if sub_code == "isv.trade-service-rejection" => {
            Refusal::new(CODE_SERVICE_UNAVAILABLE, "服务繁忙", SUB_OVERLOADED, sub_msg)
        }
        _ if sub_code.starts_with("isp.") => Refusal::new(CODE_SERVICE_UNAVAILABLE, "服务不可用", sub_code, sub_msg),
        26 | 27 => Refusal::new(CODE_TOKEN_INVALID, "access_token已过期", "isv.access-token-expired", sub_msg),
        24 | 25 => Refusal::new(CODE_SIGNATURE, "签名错误", "isv.sign-invalid", sub_msg),
        11 | 28 | 29 => Refusal::new(CODE_PERMISSION, "无权限", "isv.permission-denied", sub_msg),
        _ if sub_code.contains("not-exist") => Refusal::new(CODE_BUSINESS, "业务处理失败", SUB_NOT_FOUND, sub_msg),
        _ => Refusal::new(CODE_BAD_PARAMETER, "参数错误", sub_code, sub_msg),
    }
}

/// A TOP trade as a Douyin shop order (the SDK's `ShopOrderListItem`): no
/// buyer nickname (Douyin identifies the buyer by an opaque
/// `doudian_open_id`), presale as stage orders and a deposit trade type.
fn shop_order(trade: &Json) -> Json {
    let status = trade.get("status").cloned().unwrap_or(Json::Null);
    let pay_time = trade.get("pay_time").map_or(json!(0), seconds);
    let presale = trade.get("type").and_then(Json::as_str) == Some("step");
    let mut order = json!({
        "order_id": id_text(trade.get("tid")),
        "order_status": status.as_str().and_then(douyin_order_status).map_or(status.clone(), Json::from),
        "create_time": trade.get("created").map_or(Json::Null, seconds),
        "update_time": trade.get("modified").map_or(Json::Null, seconds),
        "pay_time": pay_time,
        "pay_amount": trade.get("payment").map_or(json!(0), fen),
        "doudian_open_id": format!("1@#{}", trade.get("buyer_nick").and_then(Json::as_str).unwrap_or_default()),
        "order_phase_list": if presale { stage_orders(trade) } else { json!([]) },
    });
    if let Some(lines) = trade.get("orders") {
        let trade_type = if presale { DEPOSIT_PRESALE } else { 0 };
        order["sku_order_list"] = records(lines, "order", |line| sku_order(line, trade_type));
    }
    order
}

/// Douyin's line trade type of a deposit presale (SDK: 2 定金预售).
const DEPOSIT_PRESALE: i64 = 2;

/// A presale's stage orders: the deposit (phase 1) and the balance (phase
/// 2), each paid or not as TOP's `step_trade_status` says.
fn stage_orders(trade: &Json) -> Json {
    let (deposit, balance) = match trade.get("step_trade_status").and_then(Json::as_str) {
        Some("FRONT_PAID_FINAL_PAID") => (true, true),
        Some("FRONT_PAID_FINAL_NOPAID" | "FRONT_PAID_FRONT_FORFEITED") => (true, false),
        _ => (false, false),
    };
    let tid = id_text(trade.get("tid"));
    json!([
        {"phase_order_id": format!("{}-1", tid.as_str().unwrap_or_default()), "current_phase": 1, "total_phase": 2,
         "pay_success": deposit},
        {"phase_order_id": format!("{}-2", tid.as_str().unwrap_or_default()), "current_phase": 2, "total_phase": 2,
         "pay_success": balance},
    ])
}

/// A TOP sub-order as a Douyin SKU order (`SkuOrderListItem`): the unit
/// price is `origin_amount`, the after-sale state carries no id.
fn sku_order(line: &Json, trade_type: i64) -> Json {
    let field = |key: &str| line.get(key).cloned().unwrap_or(Json::Null);
    let top_refund = line.get("refund_status").and_then(Json::as_str);
    let after_sale_status = top_refund.and_then(after_sale_status).unwrap_or(0);
    // SDK: 1 awaiting the refund, 3 refunded (0: no after-sale).
    let refund_status = match top_refund {
        Some("SUCCESS") => 3,
        _ if after_sale_status != 0 => 1,
        _ => 0,
    };
    json!({
        "order_id": id_text(line.get("oid")),
        "product_id": field("num_iid"),
        "sku_id": field("sku_id"),
        "out_sku_id": field("outer_sku_id"),
        "product_name": field("title"),
        "item_num": field("num"),
        "origin_amount": line.get("price").map_or(json!(0), fen),
        "pay_amount": line.get("payment").map_or(json!(0), fen),
        "trade_type": trade_type,
        "after_sale_info": {"after_sale_status": after_sale_status, "refund_status": refund_status},
    })
}

/// A TOP refund as an `afterSale.List` item: `aftersale_info` and
/// `order_info` nested, as the SDK's `ItemsItem`.
fn after_sale(refund: &Json) -> Json {
    let status = refund.get("status").cloned().unwrap_or(Json::Null);
    let created = refund.get("created").map_or(Json::Null, seconds);
    json!({
        "aftersale_info": {
            "aftersale_id": id_text(refund.get("refund_id")),
            "aftersale_order_type": 1,
            "aftersale_type": 0,
            "aftersale_status": status.as_str().and_then(after_sale_status).map_or(status.clone(), Json::from),
            "related_id": id_text(refund.get("oid")),
            "refund_amount": refund.get("refund_fee").map_or(json!(0), fen),
            "refund_post_amount": 0,
            "apply_time": created.clone(),
            "create_time": created,
            "update_time": refund.get("modified").map_or(Json::Null, seconds),
        },
        "order_info": {
            "shop_order_id": id_text(refund.get("tid")),
            "related_order_info": [{"sku_order_id": id_text(refund.get("oid"))}],
        },
    })
}

/// A TOP refund as `afterSale.Detail`'s data (`AfterSaleDetailData`): other
/// names than the list's, ids as numbers, amounts with the freight.
fn after_sale_detail(refund: &Json) -> Map<String, Json> {
    let status = refund.get("status").cloned().unwrap_or(Json::Null);
    let mut data = Map::new();
    data.insert(
        "process_info".into(),
        json!({"after_sale_info": {
            "after_sale_id": id_number(refund.get("refund_id")),
            "after_sale_status": status.as_str().and_then(after_sale_status).map_or(status.clone(), Json::from),
            "after_sale_type": 0,
            "refund_total_amount": refund.get("refund_fee").map_or(json!(0), fen),
            "refund_post_amount": 0,
            "apply_time": refund.get("created").map_or(Json::Null, seconds),
            "update_time": refund.get("modified").map_or(Json::Null, seconds),
        }}),
    );
    data.insert(
        "order_info".into(),
        json!({
            "shop_order_id": id_number(refund.get("tid")),
            "sku_order_infos": [{"sku_order_id": id_number(refund.get("oid"))}],
        }),
    );
    data
}

/// An id as a JSON number, as the after-sale detail writes them; anything
/// else (a mistyped field) as it came.
fn id_number(value: Option<&Json>) -> Json {
    match value {
        Some(Json::String(text)) => text.parse::<i64>().map_or_else(|_| json!(text), Json::from),
        Some(other) => other.clone(),
        None => Json::Null,
    }
}

/// An id as Douyin writes order ids: a string of digits; anything else
/// (a mistyped field) as it came.
fn id_text(value: Option<&Json>) -> Json {
    match value {
        Some(Json::Number(number)) => json!(number.to_string()),
        Some(other) => other.clone(),
        None => Json::Null,
    }
}

/// A TOP time as Unix seconds; anything else as it came.
fn seconds(value: &Json) -> Json {
    match value.as_str().and_then(time::parse) {
        Some(at) => json!(at.timestamp()),
        None => value.clone(),
    }
}

/// A yuan amount as integer fen; anything else as it came.
fn fen(value: &Json) -> Json {
    match value.as_str().and_then(|text| text.parse::<Money>().ok()) {
        Some(Money(fen)) => json!(fen),
        None => value.clone(),
    }
}

fn json_response(status: StatusCode, body: &Json) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json;charset=UTF-8")], body.to_string()).into_response()
}
