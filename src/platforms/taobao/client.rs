//! [`TaobaoClient`]: one shop's connection to a TOP gateway (production, a
//! sandbox, or the simulator), implementing [`Platform`].
//!
//! Every call goes the way the official clients send it: system parameters
//! in the query string, business parameters as a form body, the signature
//! over both. Calls wait for the shop's rate limiter first, and are not made
//! at all while TOP's last code-7 ban lasts, because calling into a ban
//! prolongs it. The app secret, the session and the signature never appear in
//! a log line, an error message or `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use reqwest::Url;
use serde_json::Value as Json;

use super::envelope::{self, excerpt, list};
use super::error::{self, AnswerError, ApiError, Malformed};
use super::fields::{DEFAULT_TRADE_FIELDS, DETAIL_EXTRA_FIELDS, REFUND_FIELDS, REFUND_LIST_FIELDS, TRADE_TYPES};
use super::{PLATFORM, mapping, sign, time};
use crate::config::{self, Secret, SignMethod};
use crate::platforms::guard::{Gates, ShopGuard};
use crate::platforms::{
    Anomaly, ErrorKind, Order, Page, PageRequest, ParcelTrace, Platform, PlatformError, PlatformMessage, Refund,
    TimeWindow,
};

/// How long one call may take, answer included: TOP's own timeouts are
/// shorter, so a call still open after this is lost.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most records TOP returns per page.
pub const MAX_PAGE_SIZE: u32 = 100;

/// The fewest and most messages `taobao.tmc.messages.consume` hands out per
/// call, and the most ids `taobao.tmc.messages.confirm` takes.
pub const TMC_QUANTITY: (u32, u32) = (10, 200);

/// Secrets shorter than this are not searched for in messages: replacing
/// every "s" of a message would make it unreadable, and real app secrets and
/// session keys are 32 characters or more.
const MIN_REDACTED_LEN: usize = 4;

/// Why a [`TaobaoClient`] could not be built from a shop's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The shop is configured for another platform.
    #[error("shop {shop:?} is a {platform:?} shop, not a taobao one")]
    WrongPlatform {
        /// The shop's name.
        shop: String,
        /// Its platform.
        platform: config::Platform,
    },
    /// The gateway is not an `http(s)://` URL.
    #[error("shop {shop:?}: the gateway {gateway:?} is not an http(s) URL")]
    Gateway {
        /// The shop's name.
        shop: String,
        /// The configured gateway.
        gateway: String,
    },
    /// A rate limit of zero calls per minute would never call.
    #[error("shop {shop:?}: rate_limit_per_min must be at least 1")]
    RateLimit {
        /// The shop's name.
        shop: String,
    },
    /// The HTTP client could not be set up (TLS roots, …).
    #[error("shop {shop:?}: cannot set up HTTP: {error}")]
    Http {
        /// The shop's name.
        shop: String,
        /// What reqwest said (shown in the message, so not also its `source()`, which would print it twice in a chain).
        error: reqwest::Error,
    },
}

/// One shop on TOP. Cheap to share behind an `Arc`; calls may run
/// concurrently and share the rate limiter, the ban and the call counts.
pub struct TaobaoClient {
    shop: String,
    gateway: Url,
    app_key: String,
    app_secret: Secret,
    session: Secret,
    sign_method: SignMethod,
    http: reqwest::Client,
    guard: ShopGuard,
    calls: Mutex<BTreeMap<String, u64>>,
}

impl fmt::Debug for TaobaoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret and the session are `Secret`s, which print `***`; they
        // are listed so that the output shows they are set.
        f.debug_struct("TaobaoClient")
            .field("shop", &self.shop)
            .field("gateway", &self.gateway.as_str())
            .field("app_key", &self.app_key)
            .field("app_secret", &self.app_secret)
            .field("session", &self.session)
            .field("sign_method", &self.sign_method)
            .finish_non_exhaustive()
    }
}

/// A call that failed, before it is told apart into "not found" or an error.
#[derive(Clone)]
enum CallError {
    /// TOP answered, but not with a usable body.
    Answer(AnswerError),
    /// No answer, an HTTP failure, or a known ban.
    Platform(PlatformError),
}

impl CallError {
    fn into_platform_error(self, method: &str) -> PlatformError {
        match self {
            Self::Answer(error) => error.into_platform_error(method),
            Self::Platform(error) => error,
        }
    }

    fn is_not_found(&self) -> bool {
        matches!(self, Self::Answer(AnswerError::Api(error)) if error.is_not_found())
    }
}

impl TaobaoClient {
    /// A client for `shop_name`, configured by `shop`, with
    /// [`DEFAULT_TIMEOUT`] per call and a rate limiter of its own.
    pub fn new(shop_name: &str, shop: &config::Shop) -> Result<Self, ClientError> {
        Self::with_timeout(shop_name, shop, DEFAULT_TIMEOUT)
    }

    /// Like [`TaobaoClient::new`], on the gate `gates` holds for the shop's
    /// app key (shared with every other shop on that key).
    pub fn with_gates(shop_name: &str, shop: &config::Shop, gates: &Gates) -> Result<Self, ClientError> {
        Self::build(shop_name, shop, DEFAULT_TIMEOUT, Some(gates))
    }

    /// Like [`TaobaoClient::new`] with another per-call timeout (tests, slow
    /// gateways).
    pub fn with_timeout(shop_name: &str, shop: &config::Shop, timeout: Duration) -> Result<Self, ClientError> {
        Self::build(shop_name, shop, timeout, None)
    }

    fn build(
        shop_name: &str,
        shop: &config::Shop,
        timeout: Duration,
        gates: Option<&Gates>,
    ) -> Result<Self, ClientError> {
        let name = || shop_name.to_owned();
        if shop.platform != config::Platform::Taobao {
            return Err(ClientError::WrongPlatform { shop: name(), platform: shop.platform });
        }
        let gateway = Url::parse(&shop.gateway)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| ClientError::Gateway { shop: name(), gateway: shop.gateway.clone() })?;
        let per_minute =
            NonZeroU32::new(shop.rate_limit_per_min).ok_or_else(|| ClientError::RateLimit { shop: name() })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|error| ClientError::Http { shop: name(), error })?;
        let guard = match gates {
            Some(gates) => gates.guard(PLATFORM, &shop.app_key, shop_name, per_minute),
            None => ShopGuard::standalone(PLATFORM, &shop.app_key, shop_name, per_minute),
        };
        Ok(Self {
            shop: name(),
            gateway,
            app_key: shop.app_key.clone(),
            app_secret: shop.app_secret.clone(),
            session: shop.session.clone(),
            sign_method: shop.sign_method,
            http,
            guard,
            calls: Mutex::new(BTreeMap::new()),
        })
    }

    /// Calls `method` with `params` (business parameters) and returns the
    /// body under the answer's root key.
    async fn call(&self, method: &str, params: &[(&str, String)]) -> Result<Json, CallError> {
        self.guard.admit(method).await.map_err(CallError::Platform)?;

        let timestamp = time::format(Utc::now());
        let sign_method = sign::method_name(self.sign_method);
        let mut system: Vec<(&str, &str)> = vec![
            ("method", method),
            ("app_key", &self.app_key),
            ("timestamp", &timestamp),
            ("v", "2.0"),
            ("sign_method", sign_method),
            ("format", "json"),
            ("session", self.session.expose()),
        ];
        let signature = sign::sign(
            system.iter().copied().chain(params.iter().map(|(key, value)| (*key, value.as_str()))),
            self.app_secret.expose(),
            self.sign_method,
        );
        system.push(("sign", &signature));
        let mut url = self.gateway.clone();
        url.query_pairs_mut().extend_pairs(&system);
        let body = form_encode(params.iter().map(|(key, value)| (*key, value.as_str())));

        self.count(method);
        let started = Instant::now();
        let result = self.send(method, url, body, &signature).await.map_err(|error| self.redact(error, &signature));
        if let Err(error) = &result {
            if !error.is_not_found() {
                self.guard.observe(&error.clone().into_platform_error(method));
            }
        }
        let outcome = match &result {
            Ok(_) => "ok",
            Err(CallError::Answer(AnswerError::Api(error))) => error.kind().label(),
            Err(CallError::Answer(AnswerError::Malformed(malformed))) => {
                ErrorKind::Malformed(malformed.anomaly).label()
            }
            Err(CallError::Platform(error)) => error.kind.label(),
        };
        crate::telemetry::record_api_call(PLATFORM, method, outcome, started.elapsed());
        tracing::debug!(
            shop = %self.shop,
            method,
            elapsed_ms = started.elapsed().as_millis() as u64,
            outcome,
            "TOP call finished."
        );
        result
    }

    async fn send(&self, method: &str, url: Url, body: String, signature: &str) -> Result<Json, CallError> {
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|error| CallError::Platform(error::transport(method, &describe(error))))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .map(Duration::from_secs);
        let bytes =
            response.bytes().await.map_err(|error| CallError::Platform(error::transport(method, &describe(error))))?;
        let parsed = envelope::parse(method, &bytes);
        if status.is_success() && parsed.is_ok() {
            return parsed.map_err(CallError::Answer);
        }
        // A failure quotes the answer, so it is read again from a copy with
        // the secrets cleaned out first: an excerpt could cut a secret short,
        // and a cut secret no longer matches when messages are cleaned. (Not
        // done to a success, whose data a short session could corrupt.)
        let text = self.redact_text(String::from_utf8_lossy(&bytes).into_owned(), signature);
        match envelope::parse(method, text.as_bytes()) {
            Err(AnswerError::Api(error)) => Err(CallError::Answer(AnswerError::Api(error))),
            Ok(_) | Err(AnswerError::Malformed(_)) if !status.is_success() => {
                Err(CallError::Platform(error::http_status(method, status.as_u16(), retry_after, &excerpt(&text))))
            }
            other => other.map_err(CallError::Answer),
        }
    }

    fn count(&self, method: &str) {
        let mut calls = self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *calls.entry(method.to_owned()).or_default() += 1;
    }

    /// Removes the secret, the session and this call's signature from every
    /// text of a failure: TOP or a gateway in front of it may echo the
    /// request (an HTML error page quoting the URL, a `sub_msg` quoting a
    /// parameter).
    fn redact(&self, error: CallError, signature: &str) -> CallError {
        let clean = |text: String| self.redact_text(text, signature);
        match error {
            CallError::Answer(AnswerError::Api(api)) => CallError::Answer(AnswerError::Api(ApiError {
                msg: clean(api.msg),
                sub_code: api.sub_code.map(clean),
                sub_msg: api.sub_msg.map(clean),
                ..api
            })),
            CallError::Answer(AnswerError::Malformed(malformed)) => {
                CallError::Answer(AnswerError::Malformed(Malformed { message: clean(malformed.message), ..malformed }))
            }
            CallError::Platform(error) => CallError::Platform(PlatformError { message: clean(error.message), ..error }),
        }
    }

    /// `text` with the secret, the session and `signature` replaced by
    /// `***`, as written and as form-encoded (the way a page echoing the URL
    /// would show them).
    fn redact_text(&self, text: String, signature: &str) -> String {
        [self.app_secret.expose(), self.session.expose(), signature]
            .into_iter()
            .filter(|secret| secret.len() >= MIN_REDACTED_LEN)
            .flat_map(|secret| [secret.to_owned(), form_encode([("", secret)])[1..].to_owned()])
            .fold(text, |text, secret| if text.contains(&secret) { text.replace(&secret, "***") } else { text })
    }

    /// One page of trades from a list method, by `start_key`/`end_key` time.
    async fn trades(
        &self,
        method: &str,
        (start_key, end_key): (&str, &str),
        window: TimeWindow,
        page: PageRequest,
        fields: &[String],
    ) -> Result<Page<Order>, PlatformError> {
        let Some((start, end)) = inclusive_range(window) else { return Ok(empty_page()) };
        let page = clamp_page(page);
        let params = [
            ("fields", fields_param(fields, DEFAULT_TRADE_FIELDS)),
            (start_key, start),
            (end_key, end),
            ("type", TRADE_TYPES.join(",")),
            ("page_no", page.page_no.to_string()),
            ("page_size", page.page_size.to_string()),
            ("use_has_next", (!page.with_total).to_string()),
        ];
        let body = self.call(method, &params).await.map_err(|error| error.into_platform_error(method))?;
        let records =
            envelope::page_records(&body, "trades", "trade").map_err(|error| error.into_platform_error(method))?;
        page_of(method, &body, page, records, |trade| mapping::order(&self.shop, trade))
    }
}

#[async_trait]
impl Platform for TaobaoClient {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn shop(&self) -> &str {
        &self.shop
    }

    fn max_modified_window(&self) -> chrono::Duration {
        super::MAX_MODIFIED_WINDOW
    }

    fn horizon(&self) -> chrono::Duration {
        super::HORIZON
    }

    async fn orders_created(
        &self,
        window: TimeWindow,
        page: PageRequest,
        fields: &[String],
    ) -> Result<Page<Order>, PlatformError> {
        self.trades("taobao.trades.sold.get", ("start_created", "end_created"), window, page, fields).await
    }

    async fn orders_modified(
        &self,
        window: TimeWindow,
        page: PageRequest,
        fields: &[String],
    ) -> Result<Page<Order>, PlatformError> {
        const METHOD: &str = "taobao.trades.sold.increment.get";
        // TOP would refuse it with code 41.
        window.check_span(METHOD, self.max_modified_window())?;
        self.trades(METHOD, ("start_modified", "end_modified"), window, page, fields).await
    }

    async fn order_detail(&self, tid: i64, fields: &[String]) -> Result<Option<Order>, PlatformError> {
        const METHOD: &str = "taobao.trade.fullinfo.get";
        let default_fields = [DEFAULT_TRADE_FIELDS, DETAIL_EXTRA_FIELDS].concat();
        let params = [("fields", fields_param(fields, &default_fields)), ("tid", tid.to_string())];
        let body = match self.call(METHOD, &params).await {
            Ok(body) => body,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(error.into_platform_error(METHOD)),
        };
        match envelope::single_record(&body, "trade").map_err(|error| error.into_platform_error(METHOD))? {
            Some(trade) => mapping::order(&self.shop, trade).map(Some).map_err(|error| bad_record(METHOD, error)),
            None => Ok(None),
        }
    }

    async fn refunds_modified(&self, window: TimeWindow, page: PageRequest) -> Result<Page<Refund>, PlatformError> {
        const METHOD: &str = "taobao.refunds.receive.get";
        let Some((start, end)) = inclusive_range(window) else { return Ok(empty_page()) };
        let page = clamp_page(page);
        let params = [
            ("fields", REFUND_LIST_FIELDS.join(",")),
            ("start_modified", start),
            ("end_modified", end),
            ("type", TRADE_TYPES.join(",")),
            ("page_no", page.page_no.to_string()),
            ("page_size", page.page_size.to_string()),
            ("use_has_next", (!page.with_total).to_string()),
        ];
        let body = self.call(METHOD, &params).await.map_err(|error| error.into_platform_error(METHOD))?;
        let records =
            envelope::page_records(&body, "refunds", "refund").map_err(|error| error.into_platform_error(METHOD))?;
        page_of(METHOD, &body, page, records, |refund| mapping::refund(&self.shop, refund))
    }

    async fn refund(&self, refund_id: i64) -> Result<Option<Refund>, PlatformError> {
        const METHOD: &str = "taobao.refund.get";
        let params = [("fields", REFUND_FIELDS.join(",")), ("refund_id", refund_id.to_string())];
        let body = match self.call(METHOD, &params).await {
            Ok(body) => body,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(error.into_platform_error(METHOD)),
        };
        match envelope::single_record(&body, "refund").map_err(|error| error.into_platform_error(METHOD))? {
            Some(refund) => mapping::refund(&self.shop, refund).map(Some).map_err(|error| bad_record(METHOD, error)),
            None => Ok(None),
        }
    }

    async fn parcel_trace(&self, tid: i64) -> Result<Vec<ParcelTrace>, PlatformError> {
        const METHOD: &str = "taobao.logistics.trace.search";
        let body = match self.call(METHOD, &[("tid", tid.to_string())]).await {
            Ok(body) => body,
            // An order TOP knows no parcel of has, as far as we can tell, none.
            Err(error) if error.is_not_found() => return Ok(Vec::new()),
            Err(error) => return Err(error.into_platform_error(METHOD)),
        };
        mapping::parcel_traces(&body).map_err(|error| error.into_platform_error(METHOD))
    }

    async fn messages(&self, quantity: u32) -> Result<Vec<PlatformMessage>, PlatformError> {
        const METHOD: &str = "taobao.tmc.messages.consume";
        if quantity == 0 {
            return Ok(Vec::new());
        }
        // TOP takes 10 to 200. Asking for fewer than 10 still fetches 10 and
        // hands back `quantity`: the rest are not confirmed, so TMC delivers
        // them again later.
        let asked = quantity.clamp(TMC_QUANTITY.0, TMC_QUANTITY.1);
        let body = self
            .call(METHOD, &[("quantity", asked.to_string())])
            .await
            .map_err(|error| error.into_platform_error(METHOD))?;
        let mut messages = list(&body, "messages", "tmc_message")
            .into_iter()
            .map(mapping::message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| error.into_platform_error(METHOD))?;
        messages.truncate(quantity as usize);
        Ok(messages)
    }

    async fn confirm_messages(&self, ids: &[i64]) -> Result<(), PlatformError> {
        const METHOD: &str = "taobao.tmc.messages.confirm";
        for chunk in ids.chunks(TMC_QUANTITY.1 as usize) {
            let joined = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            let body = self
                .call(METHOD, &[("s_message_ids", joined)])
                .await
                .map_err(|error| error.into_platform_error(METHOD))?;
            if body.get("is_success").and_then(envelope::boolean) == Some(false) {
                return Err(PlatformError {
                    kind: ErrorKind::Other,
                    method: METHOD.to_owned(),
                    message: format!("TOP did not confirm {} messages (is_success false)", chunk.len()),
                    request_id: None,
                });
            }
        }
        Ok(())
    }

    fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn guard(&self) -> &ShopGuard {
        &self.guard
    }
}

/// A page of the records of `body`, each mapped by `map`. A record that
/// cannot be mapped is set aside in [`Page::rejected`] with its reason, and
/// the rest of the page goes on. A page without records although the answer
/// says some exist on it, or after it, lost its list on the way: an anomaly,
/// not an empty page.
fn page_of<T>(
    method: &str,
    body: &Json,
    page: PageRequest,
    records: Vec<&Json>,
    map: impl Fn(&Json) -> Result<T, Malformed>,
) -> Result<Page<T>, PlatformError> {
    let (total, has_next) = mapping::paging(body, page, records.len());
    let skipped = u64::from(page.page_no.saturating_sub(1)) * u64::from(page.page_size);
    if records.is_empty() && (has_next || total.is_some_and(|total| total > skipped)) {
        let message = format!(
            "page {} has no records although the answer says {} exist: {:?}",
            page.page_no,
            total.map_or_else(|| "more".to_owned(), |total| total.to_string()),
            excerpt(&body.to_string())
        );
        return Err(Malformed::new(Anomaly::MissingList, message).into_platform_error(method));
    }
    let mut items = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for record in records {
        match map(record) {
            Ok(item) => items.push(item),
            Err(error) => {
                tracing::warn!(method, reason = %error, "A record of the page is set aside: it cannot be read.");
                rejected.push(mapping::rejected(record, error));
            }
        }
    }
    Ok(Page { items, total, has_next, rejected })
}

/// The error of a single-record answer whose record cannot be read as the
/// model: the record is at fault, not the platform ([`ErrorKind::BadRecord`]).
fn bad_record(method: &str, error: Malformed) -> PlatformError {
    PlatformError { kind: ErrorKind::BadRecord, method: method.to_owned(), message: error.message, request_id: None }
}

/// The window as TOP's inclusive `[start, end]` in its time format, or
/// `None` when the window is empty. TOP times have whole seconds, so the last
/// second of `[start, end)` is `end - 1 s`, or `end` cut to the second when
/// `end` has a fraction.
fn inclusive_range(window: TimeWindow) -> Option<(String, String)> {
    if window.end <= window.start {
        return None;
    }
    let last: DateTime<Utc> = if window.end.trunc_subsecs(0) == window.end {
        window.end - chrono::Duration::seconds(1)
    } else {
        window.end.trunc_subsecs(0)
    };
    Some((time::format(window.start), time::format(last)))
}

fn clamp_page(page: PageRequest) -> PageRequest {
    PageRequest { page_no: page.page_no.max(1), page_size: page.page_size.clamp(1, MAX_PAGE_SIZE), ..page }
}

fn empty_page<T>() -> Page<T> {
    Page { items: Vec::new(), total: Some(0), has_next: false, rejected: Vec::new() }
}

fn fields_param(fields: &[String], default: &[&str]) -> String {
    if fields.is_empty() { default.join(",") } else { fields.join(",") }
}

/// A transport failure in words, without the URL (whose query holds the
/// session and the signature), with its causes.
pub(crate) fn describe(error: reqwest::Error) -> String {
    let headline = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect to the gateway".to_owned()
    } else {
        "no answer".to_owned()
    };
    let error = error.without_url();
    let mut text = format!("{headline}: {error}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `application/x-www-form-urlencoded` encoding of `pairs`, in UTF-8:
/// ASCII letters, digits and `*-._` as they are, space as `+`, every other
/// byte as `%XX`.
pub(crate) fn form_encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    fn push(out: &mut String, text: &str) {
        for byte in text.bytes() {
            match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(byte as char),
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (key, value) in pairs {
        if !out.is_empty() {
            out.push('&');
        }
        push(&mut out, key);
        out.push('=');
        push(&mut out, value);
    }
    out
}

#[cfg(test)]
mod tests;
