//! The HTTP side: `/router/rest` checks a request the way TOP does (app key,
//! quota, version, format, timestamp, signature, method, session), maybe
//! serves a fault, and otherwise answers the method from the shop. Faults are
//! decided after the checks, so a ban or an expired session wins over them.
//!
//! System parameters usually come in the query string and business
//! parameters in a urlencoded body; both are read, and the signature covers
//! them all.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use serde_json::{Map, Value as Json, json};

use super::faults::{FaultKind, Faults, Limiter, ban_seconds};
use super::model::{Fields, RefundStatus, Status, TradeType};
use super::shop::{By, HISTORY, RefundQuery, Shop, TradeQuery};
use super::{CallStats, SimConfig};
use crate::platforms::taobao::{sign, time};

/// How far a request's `timestamp` may be from the gateway's clock.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::minutes(10);
/// The longest `start_modified`–`end_modified` span of an incremental query.
pub const MAX_INCREMENT_SPAN: Duration = Duration::days(1);
/// The types the trade lists return when `type` is absent.
pub const DEFAULT_TRADE_TYPES: &str = "guarantee_trade,auto_delivery,ec,cod,step";
/// The types `taobao.refunds.receive.get` returns when `type` is absent.
pub const DEFAULT_REFUND_TYPES: &str = "guarantee_trade,auto_delivery";

/// The gateway's clock: real UTC time in whole seconds, as TOP writes times.
pub(crate) fn clock() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

/// Request parameters by name; the first value of a repeated name wins.
pub(crate) type Params = BTreeMap<String, String>;

/// A TOP error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopError {
    code: u32,
    msg: &'static str,
    sub_code: Option<String>,
    sub_msg: Option<String>,
}

impl TopError {
    fn new(code: u32, msg: &'static str) -> Self {
        Self { code, msg, sub_code: None, sub_msg: None }
    }

    fn sub(mut self, sub_code: impl Into<String>, sub_msg: impl Into<String>) -> Self {
        self.sub_code = Some(sub_code.into());
        self.sub_msg = Some(sub_msg.into());
        self
    }

    /// A required business parameter is missing (code 40).
    fn missing(name: &str) -> Self {
        Self::new(40, "Missing Required Arguments")
            .sub(format!("isv.missing-parameter:{name}"), format!("Missing required arguments:{name}"))
    }

    /// A business parameter has a wrong value (code 41).
    fn invalid(name: &str, why: impl std::fmt::Display) -> Self {
        Self::new(41, "Invalid Arguments").sub(format!("isv.invalid-parameter:{name}"), format!("{name}: {why}"))
    }

    /// A business error on an existing object (code 15, `isv.*`: not
    /// retryable).
    fn not_found(sub_code: &str, sub_msg: &str) -> Self {
        Self::new(15, "Remote service error").sub(sub_code, sub_msg)
    }

    /// The session is not the seller's current one (code 27), whether it
    /// never was or has expired: TOP does not tell the two apart.
    fn invalid_session() -> Self {
        let why = "the session key is invalid or has expired; the seller must authorise again";
        Self::new(27, "Invalid session").sub("invalid-sessionkey", why)
    }

    fn envelope(&self, request_id: &str) -> Json {
        let mut error = Map::new();
        error.insert("code".into(), json!(self.code));
        error.insert("msg".into(), json!(self.msg));
        if let Some(sub_code) = &self.sub_code {
            error.insert("sub_code".into(), json!(sub_code));
        }
        if let Some(sub_msg) = &self.sub_msg {
            error.insert("sub_msg".into(), json!(sub_msg));
        }
        error.insert("request_id".into(), json!(request_id));
        json!({ "error_response": error })
    }
}

/// Why a call gets no answer from its method.
enum Refusal {
    /// It failed a request check.
    Rejected(TopError),
    /// The app is banned for this long.
    Banned(std::time::Duration),
}

impl From<TopError> for Refusal {
    fn from(error: TopError) -> Self {
        Refusal::Rejected(error)
    }
}

type Answer = Result<Map<String, Json>, TopError>;

/// One API method.
struct Method {
    name: &'static str,
    /// Whether it acts for a seller and so needs `session`.
    needs_session: bool,
    /// Where its records sit, for the faults that break them.
    payload: Payload,
    run: fn(&Gateway, &Params, DateTime<Utc>) -> Answer,
}

/// Where a method's records sit in its success body.
#[derive(Clone, Copy)]
enum Payload {
    /// A list: records under `list` then `item`, beside their count.
    List { list: &'static str, item: &'static str },
    /// One record under this key.
    One(&'static str),
    /// The body itself is the record.
    Body,
}

const TRADES: Payload = Payload::List { list: "trades", item: "trade" };

const METHODS: &[Method] = &[
    Method { name: "taobao.trades.sold.get", needs_session: true, payload: TRADES, run: trades_sold_get },
    Method {
        name: "taobao.trades.sold.increment.get",
        needs_session: true,
        payload: TRADES,
        run: trades_sold_increment_get,
    },
    Method {
        name: "taobao.trade.fullinfo.get",
        needs_session: true,
        payload: Payload::One("trade"),
        run: trade_fullinfo_get,
    },
    Method {
        name: "taobao.refunds.receive.get",
        needs_session: true,
        payload: Payload::List { list: "refunds", item: "refund" },
        run: refunds_receive_get,
    },
    Method { name: "taobao.refund.get", needs_session: true, payload: Payload::One("refund"), run: refund_get },
    Method {
        name: "taobao.logistics.trace.search",
        needs_session: true,
        payload: Payload::Body,
        run: logistics_trace_search,
    },
    Method {
        name: "taobao.tmc.messages.consume",
        needs_session: false,
        payload: Payload::List { list: "messages", item: "tmc_message" },
        run: tmc_messages_consume,
    },
    Method {
        name: "taobao.tmc.messages.confirm",
        needs_session: false,
        payload: Payload::Body,
        run: tmc_messages_confirm,
    },
];

/// The methods `isv.trade-service-rejection` comes from.
const TRADE_LISTS: [&str; 2] = ["taobao.trades.sold.get", "taobao.trades.sold.increment.get"];

/// Everything a running simulator shares between its gateway, its mutation
/// task and its handle.
pub(crate) struct Gateway {
    pub config: SimConfig,
    pub shop: Mutex<Shop>,
    pub faults: Mutex<Faults>,
    pub limiter: Mutex<Limiter>,
    pub stats: Mutex<CallStats>,
    /// From this instant on the session is refused as expired.
    pub session_expiry: Mutex<Option<DateTime<Utc>>>,
    requests: AtomicU64,
}

/// Locks `mutex`, also after a panic elsewhere: every critical section
/// leaves its data consistent before anything can panic, and a test that
/// panicked must not take the other simulators' calls down with it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Gateway {
    pub(crate) fn new(config: SimConfig, shop: Shop) -> Self {
        Self {
            faults: Mutex::new(Faults::new(config.seed, config.fault_rate, &config.fault_kinds)),
            limiter: Mutex::new(Limiter::new(config.rate_limit_per_min)),
            shop: Mutex::new(shop),
            stats: Mutex::new(CallStats::default()),
            session_expiry: Mutex::new(None),
            requests: AtomicU64::new(config.seed),
            config,
        }
    }

    /// The router serving `/router/rest`.
    pub(crate) fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/router/rest", get(rest).post(rest))
            .route(&format!("{}/{{*method}}", super::douyin::DOUYIN_PATH), post(super::douyin::serve))
            .with_state(self)
    }

    fn shop(&self) -> MutexGuard<'_, Shop> {
        lock(&self.shop)
    }

    /// A request id in TOP's style (13 base-36 characters).
    fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        // splitmix64, so consecutive ids do not look consecutive.
        let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let mut id = String::with_capacity(13);
        for _ in 0..13 {
            id.push(char::from_digit((z % 36) as u32, 36).unwrap_or('0'));
            z /= 36;
        }
        id
    }

    /// Answers one call, and says how long to hold the answer back (a
    /// [`FaultKind::Slow`] fault).
    pub(crate) fn answer(&self, params: &Params) -> (Response, std::time::Duration) {
        let request_id = self.request_id();
        // Exact, not the gateway's whole-second clock: an expiry set a
        // fraction of a second ahead must not take effect early or late.
        let received = Utc::now();
        let instant = Instant::now();
        let now = received.trunc_subsecs(0);
        let expired = lock(&self.session_expiry).is_some_and(|at| received >= at);
        let in_ban = lock(&self.limiter).banned_at(instant);
        {
            let mut stats = lock(&self.stats);
            stats.total += 1;
            stats.after_session_expiry += u64::from(expired);
            stats.during_ban += u64::from(in_ban);
        }
        let no_delay = std::time::Duration::ZERO;
        let method = match self.check(params, now, instant, expired) {
            Ok(method) => method,
            Err(Refusal::Rejected(error)) => {
                lock(&self.stats).rejected += 1;
                return (json_response(&error.envelope(&request_id)), no_delay);
            }
            Err(Refusal::Banned(left)) => {
                lock(&self.stats).banned += 1;
                let seconds = ban_seconds(left);
                let error = TopError::new(7, "App Call Limited").sub(
                    "accesscontrol.limited-by-app-access-count",
                    format!("This ban will last for {seconds} more seconds"),
                );
                return (json_response(&error.envelope(&request_id)), no_delay);
            }
        };
        let fault = match lock(&self.faults).roll(method.name) {
            Some(FaultKind::TradeServiceRejection) if !TRADE_LISTS.contains(&method.name) => {
                Some(FaultKind::RemoteTimeout)
            }
            fault => fault,
        };
        let (response, served) = self.serve(method, params, now, &request_id, fault);
        let mut stats = lock(&self.stats);
        match served {
            Some(kind) => {
                stats.faulted += 1;
                *stats.by_fault.entry(kind.name().to_owned()).or_default() += 1;
            }
            None => *stats.by_method.entry(method.name.to_owned()).or_default() += 1,
        }
        let delay = if served == Some(FaultKind::Slow) { self.config.slow_answer } else { no_delay };
        (response, delay)
    }

    /// The answer to a checked call, broken by `fault`, and the fault it
    /// was served with: none when the fault found nothing to break (an error
    /// answer has no records to lose or mistype).
    fn serve(
        &self,
        method: &Method,
        params: &Params,
        now: DateTime<Utc>,
        request_id: &str,
        fault: Option<FaultKind>,
    ) -> (Response, Option<FaultKind>) {
        let response = match fault {
            None => return (json_response(&self.run(method, params, now, request_id)), None),
            Some(FaultKind::RemoteTimeout) => {
                let error = TopError::new(15, "Remote service error")
                    .sub("isp.top-remote-connection-timeout", "连接超时 (simulated fault)");
                json_response(&error.envelope(request_id))
            }
            Some(FaultKind::TradeServiceRejection) => {
                let why = "交易服务拒绝请求：超时请求过多，请缩小查询时间范围后重试 (simulated fault)";
                let error = TopError::new(15, "Remote service error").sub("isv.trade-service-rejection", why);
                json_response(&error.envelope(request_id))
            }
            Some(FaultKind::ServiceUnavailable) => {
                (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain")], "Service Unavailable")
                    .into_response()
            }
            Some(FaultKind::BadGateway) => {
                (StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "text/html")], BAD_GATEWAY_PAGE).into_response()
            }
            Some(FaultKind::EmptyBody) => ([(header::CONTENT_TYPE, JSON_TYPE)], "").into_response(),
            Some(FaultKind::Truncated) => {
                let mut body = self.run(method, params, now, request_id).to_string();
                let mut cut = body.len() / 2;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
                ([(header::CONTENT_TYPE, JSON_TYPE)], body).into_response()
            }
            Some(FaultKind::Slow) => json_response(&self.run(method, params, now, request_id)),
            Some(kind @ (FaultKind::MissingList | FaultKind::WrongType)) => {
                let (envelope, served) = match (method.run)(self, params, now) {
                    Ok(mut body) => {
                        let changed = if kind == FaultKind::MissingList {
                            remove_records(&mut body, method.payload)
                        } else {
                            self.mistype_a_field(&mut body, method.payload)
                        };
                        (wrap(method, Ok(body), request_id), changed.then_some(kind))
                    }
                    Err(error) => (error.envelope(request_id), None),
                };
                return (json_response(&envelope), served);
            }
        };
        (response, fault)
    }

    /// Gives `body` a field of the wrong type; false when there is nothing
    /// to change. A list's records (`trades.trade`) become their JSON text
    /// (an empty list's count is the field instead), a single record
    /// (`trade`) likewise, and another body gets one field mistyped.
    ///
    /// The list or the record as a whole, not one field of one record:
    /// a client sets a record whose own fields are impossible aside for
    /// good (it would be as bad when read again), while this fault heals on
    /// the next call, like the gateway glitch it stands for.
    fn mistype_a_field(&self, body: &mut Map<String, Json>, payload: Payload) -> bool {
        match payload {
            Payload::List { list, item } => match body.get_mut(list).and_then(|l| l.get_mut(item)) {
                Some(records) => {
                    *records = wrong_type(records);
                    true
                }
                // An empty page: its count is the field to break.
                None => self.mistype_one_of(body),
            },
            Payload::One(key) => match body.get_mut(key) {
                Some(record @ Json::Object(_)) => {
                    *record = wrong_type(record);
                    true
                }
                _ => false,
            },
            Payload::Body => self.mistype_one_of(body),
        }
    }

    /// Gives one field of `record`, picked by the fault stream, a wrong type.
    fn mistype_one_of(&self, record: &mut Map<String, Json>) -> bool {
        if record.is_empty() {
            return false;
        }
        let at = lock(&self.faults).pick(record.len());
        match record.values_mut().nth(at) {
            Some(value) => {
                *value = wrong_type(value);
                true
            }
            None => false,
        }
    }

    fn run(&self, method: &Method, params: &Params, now: DateTime<Utc>, request_id: &str) -> Json {
        wrap(method, (method.run)(self, params, now), request_id)
    }

    /// The request checks, in the gateway's order.
    fn check(
        &self,
        params: &Params,
        now: DateTime<Utc>,
        instant: Instant,
        session_expired: bool,
    ) -> Result<&'static Method, Refusal> {
        let param = |name: &str| params.get(name).map(String::as_str).filter(|v| !v.is_empty());
        let config = &self.config;
        match param("app_key") {
            None => return Err(TopError::new(28, "Missing App Key").into()),
            Some(key) if key != config.app_key => {
                return Err(TopError::new(29, "Invalid App Key")
                    .sub("isv.appkey-not-exists", format!("app_key {key} does not exist"))
                    .into());
            }
            Some(_) => {}
        }
        lock(&self.limiter).admit(instant).map_err(Refusal::Banned)?;
        let Some(name) = param("method") else { return Err(TopError::new(21, "Missing Method").into()) };
        match param("v") {
            None => return Err(TopError::new(32, "Missing Version").into()),
            Some("2.0") => {}
            Some(_) => {
                return Err(TopError::new(34, "Unsupported Version")
                    .sub("isv.invalid-version", "v must be 2.0")
                    .into());
            }
        }
        if param("format") != Some("json") {
            let why = "the simulator answers format=json only (TOP's default is xml)";
            return Err(TopError::new(23, "Invalid Format").sub("isv.invalid-format", why).into());
        }
        let Some(timestamp) = param("timestamp") else { return Err(TopError::new(30, "Missing Timestamp").into()) };
        match time::parse(timestamp) {
            Some(at) if (at - now).abs() <= TIMESTAMP_TOLERANCE => {}
            Some(_) => {
                let why = "timestamp is more than 10 minutes from the server's time (yyyy-MM-dd HH:mm:ss, GMT+8)";
                return Err(TopError::new(31, "Invalid Timestamp").sub("isv.invalid-timestamp", why).into());
            }
            None => {
                let why = "timestamp must be yyyy-MM-dd HH:mm:ss in GMT+8";
                return Err(TopError::new(31, "Invalid Timestamp").sub("isv.invalid-timestamp", why).into());
            }
        }
        let Some(signature) = param("sign") else { return Err(TopError::new(24, "Missing Signature").into()) };
        let Some(sign_method) = sign::parse_method(param("sign_method").unwrap_or("md5")) else {
            let why = "sign_method must be md5, hmac or hmac-sha256";
            return Err(TopError::new(25, "Invalid signature").sub("isv.invalid-sign-method", why).into());
        };
        let expected =
            sign::sign(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), &config.app_secret, sign_method);
        if !expected.eq_ignore_ascii_case(signature) {
            return Err(TopError::new(25, "Invalid signature").into());
        }
        let Some(method) = METHODS.iter().find(|m| m.name == name) else {
            let why = format!("the simulator has no method {name}");
            return Err(TopError::new(22, "Invalid method").sub("isv.method-not-exist", why).into());
        };
        if method.needs_session {
            match param("session") {
                None => {
                    let why = "this method needs the seller's session";
                    return Err(TopError::new(26, "Missing session").sub("missing-sessionkey", why).into());
                }
                Some(session) if session != config.session || session_expired => {
                    return Err(TopError::invalid_session().into());
                }
                Some(_) => {}
            }
        }
        Ok(method)
    }
}

const JSON_TYPE: &str = "application/json;charset=UTF-8";

const BAD_GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n</body>\r\n</html>\r\n";

/// A method's answer in its envelope: the body under the method's key, or
/// the error.
fn wrap(method: &Method, answer: Answer, request_id: &str) -> Json {
    match answer {
        Ok(mut body) => {
            body.insert("request_id".into(), json!(request_id));
            let key = format!("{}_response", method.name.trim_start_matches("taobao.").replace('.', "_"));
            json!({ key: body })
        }
        Err(error) => error.envelope(request_id),
    }
}

/// Takes the records out of a success body, leaving a list's count as it
/// was; false when there were none to take.
fn remove_records(body: &mut Map<String, Json>, payload: Payload) -> bool {
    match payload {
        Payload::List { list: key, .. } | Payload::One(key) => body.remove(key).is_some(),
        Payload::Body => {
            let had = !body.is_empty();
            body.clear();
            had
        }
    }
}

/// `value` as a type a reader of that field does not expect.
fn wrong_type(value: &Json) -> Json {
    match value {
        // `#` keeps the digits readable but makes no number of them.
        Json::Number(number) => json!(format!("#{number}")),
        Json::String(text) if is_money(text) => json!({ "amount": text }),
        Json::String(text) => json!({ "value": text }),
        Json::Bool(flag) => json!({ "value": flag }),
        Json::Null => json!({}),
        Json::Object(_) | Json::Array(_) => json!(value.to_string()),
    }
}

/// Whether `text` is an amount in yuan as TOP writes it (`200.07`).
fn is_money(text: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    text.split_once('.').is_some_and(|(whole, fraction)| digits(whole) && digits(fraction))
}

fn json_response(body: &Json) -> Response {
    ([(header::CONTENT_TYPE, JSON_TYPE)], body.to_string()).into_response()
}

async fn rest(State(gateway): State<Arc<Gateway>>, uri: Uri, body: Bytes) -> Response {
    if !gateway.config.latency.is_zero() {
        tokio::time::sleep(gateway.config.latency).await;
    }
    let mut params = Params::new();
    let query = uri.query().unwrap_or_default().as_bytes();
    for (name, value) in parse_urlencoded(query).into_iter().chain(parse_urlencoded(&body)) {
        params.entry(name).or_insert(value);
    }
    let (response, delay) = gateway.answer(&params);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Decodes `a=1&b=x+y%21` into pairs.
pub(crate) fn parse_urlencoded(input: &[u8]) -> Vec<(String, String)> {
    input
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let name = decode(parts.next().unwrap_or_default());
            let value = decode(parts.next().unwrap_or_default());
            (name, value)
        })
        .collect()
}

fn decode(bytes: &[u8]) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, TopError> {
    param(params, name).ok_or_else(|| TopError::missing(name))
}

fn time_param(params: &Params, name: &str) -> Result<Option<DateTime<Utc>>, TopError> {
    param(params, name)
        .map(|text| time::parse(text).ok_or_else(|| TopError::invalid(name, "expected yyyy-MM-dd HH:mm:ss")))
        .transpose()
}

fn int_param(params: &Params, name: &str) -> Result<Option<i64>, TopError> {
    param(params, name).map(|text| text.parse().map_err(|_| TopError::invalid(name, "expected a number"))).transpose()
}

/// `page_no`, `page_size` and `use_has_next`.
struct Paging {
    offset: usize,
    size: usize,
    use_has_next: bool,
}

fn paging(params: &Params) -> Result<Paging, TopError> {
    let page_no = int_param(params, "page_no")?.unwrap_or(1);
    if page_no < 1 {
        return Err(TopError::invalid("page_no", "must be 1 or more"));
    }
    let size = int_param(params, "page_size")?.unwrap_or(40);
    if !(1..=100).contains(&size) {
        return Err(TopError::invalid("page_size", "must be 1 to 100"));
    }
    let offset = (page_no - 1).checked_mul(size).and_then(|o| usize::try_from(o).ok());
    let offset = offset.ok_or_else(|| TopError::invalid("page_no", "too large"))?;
    let use_has_next = param(params, "use_has_next") == Some("true");
    Ok(Paging { offset, size: size as usize, use_has_next })
}

/// The trade types a `type` parameter selects (among those the simulator
/// has); `guarantee_trade` means `fixed` and `auction`.
fn types(params: &Params, default: &str) -> Vec<TradeType> {
    let text = param(params, "type").unwrap_or(default);
    let mut types = BTreeSet::new();
    for name in text.split(',').map(str::trim) {
        match name {
            "guarantee_trade" | "fixed" => types.insert(TradeType::Fixed),
            "step" => types.insert(TradeType::Step),
            "fenxiao" => types.insert(TradeType::Fenxiao),
            _ => false,
        };
    }
    types.into_iter().collect()
}

/// A list answer: the count (or `has_next`) and the records, left out when
/// there are none, as TOP does.
fn list_answer(paging: &Paging, total: usize, list: &str, item: &str, records: Vec<Json>) -> Map<String, Json> {
    let mut body = Map::new();
    if paging.use_has_next {
        body.insert("has_next".into(), json!(paging.offset + records.len() < total));
    } else if total % 2 == 1 {
        // Older answers write the count as a string; so does this one for
        // every odd count.
        body.insert("total_results".into(), json!(total.to_string()));
    } else {
        body.insert("total_results".into(), json!(total));
    }
    if !records.is_empty() {
        body.insert(list.into(), json!({ item: records }));
    }
    body
}

fn list_trades(gateway: &Gateway, params: &Params, query: TradeQuery, paging: &Paging, now: DateTime<Utc>) -> Answer {
    let fields = Fields::parse(required(params, "fields")?, true);
    let shop = gateway.shop();
    let (total, trades) = shop.list(&query, now);
    let records = trades.iter().map(|t| Json::Object(fields.apply(t.to_json(shop.catalog())))).collect();
    Ok(list_answer(paging, total, "trades", "trade", records))
}

fn status_filter(params: &Params) -> Result<Option<Vec<Status>>, TopError> {
    param(params, "status")
        .map(|text| Status::parse_filter(text).ok_or_else(|| TopError::invalid("status", "unknown trade status")))
        .transpose()
}

fn trades_sold_get(gateway: &Gateway, params: &Params, now: DateTime<Utc>) -> Answer {
    required(params, "fields")?;
    let start = time_param(params, "start_created")?.unwrap_or(now - HISTORY);
    let end = time_param(params, "end_created")?.unwrap_or(now);
    if end < start {
        return Err(TopError::invalid("end_created", "must not be before start_created"));
    }
    list_window(gateway, params, By::Created, start, end, now)
}

fn trades_sold_increment_get(gateway: &Gateway, params: &Params, now: DateTime<Utc>) -> Answer {
    required(params, "fields")?;
    required(params, "start_modified")?;
    required(params, "end_modified")?;
    let (Some(start), Some(end)) = (time_param(params, "start_modified")?, time_param(params, "end_modified")?) else {
        return Err(TopError::missing("start_modified"));
    };
    if end < start {
        return Err(TopError::invalid("end_modified", "must not be before start_modified"));
    }
    if end - start > MAX_INCREMENT_SPAN {
        return Err(TopError::invalid("end_modified", "end_modified - start_modified must be at most one day"));
    }
    if start < now - HISTORY {
        return Err(TopError::invalid("start_modified", "only the last three months can be queried"));
    }
    list_window(gateway, params, By::Modified, start, end, now)
}

/// One page of the trades `by` creation or modification time in `[start, end]`.
fn list_window(
    gateway: &Gateway,
    params: &Params,
    by: By,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Answer {
    let paging = paging(params)?;
    let query = TradeQuery {
        by,
        start,
        end,
        types: types(params, DEFAULT_TRADE_TYPES),
        statuses: status_filter(params)?,
        offset: paging.offset,
        limit: paging.size,
    };
    list_trades(gateway, params, query, &paging, now)
}

fn trade_fullinfo_get(gateway: &Gateway, params: &Params, _now: DateTime<Utc>) -> Answer {
    let fields = Fields::parse(required(params, "fields")?, false);
    required(params, "tid")?;
    let tid = int_param(params, "tid")?.unwrap_or_default();
    let shop = gateway.shop();
    let trade = shop.trade(tid).ok_or_else(|| TopError::not_found("isv.trade-not-exist", "交易不存在"))?;
    let mut body = Map::new();
    body.insert("trade".into(), Json::Object(fields.apply(trade.to_json(shop.catalog()))));
    Ok(body)
}

fn refunds_receive_get(gateway: &Gateway, params: &Params, now: DateTime<Utc>) -> Answer {
    let fields = Fields::parse(required(params, "fields")?, false);
    let start = time_param(params, "start_modified")?.unwrap_or(now - HISTORY);
    let end = time_param(params, "end_modified")?.unwrap_or(now);
    let status = param(params, "status")
        .map(|text| RefundStatus::parse(text).ok_or_else(|| TopError::invalid("status", "unknown refund status")))
        .transpose()?;
    let paging = paging(params)?;
    let query = RefundQuery {
        start,
        end,
        types: types(params, DEFAULT_REFUND_TYPES),
        status,
        offset: paging.offset,
        limit: paging.size,
    };
    let shop = gateway.shop();
    let (total, refunds) = shop.list_refunds(&query, now);
    let records = refunds
        .iter()
        .filter_map(|r| shop.trade(r.tid).map(|t| Json::Object(fields.apply(r.to_json(t, shop.catalog())))))
        .collect();
    Ok(list_answer(&paging, total, "refunds", "refund", records))
}

fn refund_get(gateway: &Gateway, params: &Params, _now: DateTime<Utc>) -> Answer {
    let fields = Fields::parse(required(params, "fields")?, false);
    required(params, "refund_id")?;
    let refund_id = int_param(params, "refund_id")?.unwrap_or_default();
    let shop = gateway.shop();
    let refund = shop.refund(refund_id).ok_or_else(|| TopError::not_found("isv.refund-not-exist", "退款单不存在"))?;
    let trade = shop.trade(refund.tid).ok_or_else(|| TopError::not_found("isv.refund-not-exist", "退款单不存在"))?;
    let mut body = Map::new();
    body.insert("refund".into(), Json::Object(fields.apply(refund.to_json(trade, shop.catalog()))));
    Ok(body)
}

fn logistics_trace_search(gateway: &Gateway, params: &Params, now: DateTime<Utc>) -> Answer {
    required(params, "tid")?;
    let tid = int_param(params, "tid")?.unwrap_or_default();
    let shop = gateway.shop();
    let trade = shop.trade(tid).ok_or_else(|| TopError::not_found("isv.trade-not-exist", "交易不存在"))?;
    let parcel =
        trade.parcel.as_ref().ok_or_else(|| TopError::not_found("isv.logistics-no-trace", "该订单尚未发货"))?;
    let steps: Vec<Json> = parcel
        .steps
        .iter()
        .filter(|s| s.at <= now)
        .map(|s| json!({ "status_time": time::format(s.at), "status_desc": s.desc, "action": s.action }))
        .collect();
    let status = match parcel.steps.iter().rfind(|s| s.at <= now).map(|s| s.action) {
        None => "等待揽收",
        Some("ACCEPT") => "已揽收",
        Some("DELIVERING") => "派送中",
        Some("SIGN") => "已签收",
        Some(_) => "运输中",
    };
    let mut body = Map::new();
    body.insert("tid".into(), json!(tid));
    body.insert("out_sid".into(), json!(parcel.out_sid));
    body.insert("company_name".into(), json!(parcel.company));
    body.insert("status".into(), json!(status));
    if !steps.is_empty() {
        body.insert("trace_list".into(), json!({ "transit_step_info": steps }));
    }
    Ok(body)
}

fn tmc_messages_consume(gateway: &Gateway, params: &Params, now: DateTime<Utc>) -> Answer {
    let quantity = int_param(params, "quantity")?.unwrap_or(100);
    if !(10..=200).contains(&quantity) {
        return Err(TopError::invalid("quantity", "must be 10 to 200"));
    }
    let messages = gateway.shop().tmc.consume(quantity as usize, now);
    let mut body = Map::new();
    if !messages.is_empty() {
        let list: Vec<Json> = messages.iter().map(|m| m.to_json()).collect();
        body.insert("messages".into(), json!({ "tmc_message": list }));
    }
    Ok(body)
}

fn tmc_messages_confirm(gateway: &Gateway, params: &Params, _now: DateTime<Utc>) -> Answer {
    let text = required(params, "s_message_ids")?;
    let ids = text
        .split(',')
        .map(|id| id.trim().parse::<i64>())
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|_| TopError::invalid("s_message_ids", "expected comma-separated message ids"))?;
    if ids.len() > 200 {
        return Err(TopError::invalid("s_message_ids", "at most 200 ids"));
    }
    gateway.shop().tmc.confirm(&ids);
    let mut body = Map::new();
    body.insert("is_success".into(), json!(true));
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded_pairs_are_decoded() {
        assert_eq!(
            parse_urlencoded(b"a=1&b=x+y%21&c=&d&e=%E4%B8%AD%2C&f=100%"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y!".into()),
                ("c".into(), "".into()),
                ("d".into(), "".into()),
                ("e".into(), "中,".into()),
                ("f".into(), "100%".into()),
            ]
        );
    }

    #[test]
    fn type_lists_expand_guarantee_trade_and_default_without_fenxiao() {
        let mut params = Params::new();
        assert_eq!(types(&params, DEFAULT_TRADE_TYPES), vec![TradeType::Fixed, TradeType::Step]);
        assert_eq!(types(&params, DEFAULT_REFUND_TYPES), vec![TradeType::Fixed]);
        params.insert("type".into(), "fixed,fenxiao,tmall_i18n".into());
        assert_eq!(types(&params, DEFAULT_TRADE_TYPES), vec![TradeType::Fixed, TradeType::Fenxiao]);
    }

    #[test]
    fn errors_use_the_top_envelope() {
        let error = TopError::new(27, "Invalid session").sub("invalid-sessionkey", "expired");
        assert_eq!(
            error.envelope("abc"),
            json!({"error_response": {"code": 27, "msg": "Invalid session", "sub_code": "invalid-sessionkey",
                "sub_msg": "expired", "request_id": "abc"}})
        );
    }
}
