//! [`DouyinClient`]: one shop's connection to a Douyin gateway (production
//! or the simulator), implementing [`Platform`].
//!
//! Each call is a POST to `<gateway>/<method with dots as slashes>` with the
//! system parameters in the query string and the business parameters as the
//! JSON body (`param_json`), signed over both. Calls pass the same shared
//! rate gate and ban as Taobao's ([`ShopGuard`]); the app secret, the access
//! token and the signature never appear in a log line, an error or `Debug`.
//! The trait's pages are 1-based; Douyin's start at 0, converted here.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use reqwest::Url;
use serde_json::{Map, Value as Json, json};

use super::error::{AnswerError, ApiError};
use super::methods::{AFTER_SALE_DETAIL, AFTER_SALE_LIST, ORDER_DETAIL, ORDER_SEARCH_LIST};
use super::sign::{self, SignedParams};
use super::{MAX_PAGE_SIZE, PLATFORM, VERSION, envelope, mapping};
use crate::config::{self, Secret, SignMethod};
use crate::platforms::guard::{Gates, ShopGuard};
use crate::platforms::taobao::client::{describe, form_encode};
use crate::platforms::taobao::envelope::excerpt;
use crate::platforms::taobao::error as top_error;
use crate::platforms::{
    ErrorKind, Order, Page, PageRequest, ParcelTrace, Platform, PlatformError, PlatformMessage, Refund, TimeWindow,
};

/// How long one call may take, answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Secrets shorter than this are not searched for in messages (see the
/// Taobao client: real secrets and tokens are far longer).
const MIN_REDACTED_LEN: usize = 4;

/// Why a [`DouyinClient`] could not be built from a shop's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The shop is configured for another platform.
    #[error("shop {shop:?} is a {platform:?} shop, not a douyin one")]
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
    /// Douyin signs with `md5` or `hmac-sha256` only.
    #[error("shop {shop:?}: sign_method hmac (HMAC-MD5) is not offered by Douyin; use md5 or hmac-sha256")]
    SignMethod {
        /// The shop's name.
        shop: String,
    },
    /// A rate limit of zero calls per minute would never call.
    #[error("shop {shop:?}: rate_limit_per_min must be at least 1")]
    RateLimit {
        /// The shop's name.
        shop: String,
    },
    /// The HTTP client could not be set up.
    #[error("shop {shop:?}: cannot set up HTTP: {error}")]
    Http {
        /// The shop's name.
        shop: String,
        /// What reqwest said (shown in the message, so not also its `source()`, which would print it twice in a chain).
        error: reqwest::Error,
    },
}

/// One Douyin shop. Cheap to share behind an `Arc`; calls may run
/// concurrently and share the rate gate, the ban and the call counts.
pub struct DouyinClient {
    shop: String,
    gateway: String,
    app_key: String,
    app_secret: Secret,
    access_token: Secret,
    sign_method: SignMethod,
    http: reqwest::Client,
    guard: ShopGuard,
    calls: Mutex<BTreeMap<String, u64>>,
}

impl fmt::Debug for DouyinClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DouyinClient")
            .field("shop", &self.shop)
            .field("gateway", &self.gateway)
            .field("app_key", &self.app_key)
            .field("app_secret", &self.app_secret)
            .field("access_token", &self.access_token)
            .field("sign_method", &self.sign_method)
            .finish_non_exhaustive()
    }
}

/// A call that failed, before it is told apart into "not found" or an error.
enum CallError {
    Answer(AnswerError),
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

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Answer(error) => error.kind(),
            Self::Platform(error) => error.kind,
        }
    }
}

impl DouyinClient {
    /// A client for `shop_name` on the gate `gates` holds for its app key
    /// (shared with every other shop on that key), or a gate of its own.
    pub fn new(shop_name: &str, shop: &config::Shop, gates: Option<&Gates>) -> Result<Self, ClientError> {
        Self::with_timeout(shop_name, shop, gates, DEFAULT_TIMEOUT)
    }

    /// Like [`DouyinClient::new`] with another per-call timeout.
    pub fn with_timeout(
        shop_name: &str,
        shop: &config::Shop,
        gates: Option<&Gates>,
        timeout: Duration,
    ) -> Result<Self, ClientError> {
        let name = || shop_name.to_owned();
        if shop.platform != config::Platform::Douyin {
            return Err(ClientError::WrongPlatform { shop: name(), platform: shop.platform });
        }
        Url::parse(&shop.gateway)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https"))
            .ok_or_else(|| ClientError::Gateway { shop: name(), gateway: shop.gateway.clone() })?;
        if sign::method_name(shop.sign_method).is_none() {
            return Err(ClientError::SignMethod { shop: name() });
        }
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
            gateway: shop.gateway.trim_end_matches('/').to_owned(),
            app_key: shop.app_key.clone(),
            app_secret: shop.app_secret.clone(),
            access_token: shop.session.clone(),
            sign_method: shop.sign_method,
            http,
            guard,
            calls: Mutex::new(BTreeMap::new()),
        })
    }

    /// Calls `method` with the business parameters `params` and returns the
    /// answer's `data`.
    async fn call(&self, method: &str, params: &Map<String, Json>) -> Result<Json, CallError> {
        self.guard.admit(method).await.map_err(CallError::Platform)?;
        let timestamp = Utc::now().timestamp().to_string();
        let param_json = sign::param_json(params);
        let signed =
            SignedParams { app_key: &self.app_key, method, param_json: &param_json, timestamp: &timestamp, v: VERSION };
        // The sign method was checked when the client was built.
        let sign_method = sign::method_name(self.sign_method).unwrap_or("md5");
        let signature = sign::sign(signed, self.app_secret.expose(), self.sign_method).unwrap_or_default();
        let url = format!("{}{}", self.gateway, super::methods::path(method));
        let mut url = Url::parse(&url).map_err(|_| {
            CallError::Platform(PlatformError {
                kind: ErrorKind::BadRequest,
                method: method.to_owned(),
                message: format!("no URL for {method} under the configured gateway"),
                request_id: None,
            })
        })?;
        url.query_pairs_mut().extend_pairs([
            ("app_key", self.app_key.as_str()),
            ("method", method),
            ("timestamp", &timestamp),
            ("v", VERSION),
            ("sign_method", sign_method),
            ("sign", &signature),
            ("access_token", self.access_token.expose()),
        ]);
        self.count(method);
        let started = Instant::now();
        let result = self.send(method, url, param_json, &signature).await;
        if let Err(error) = &result {
            if !error.is_not_found() {
                let observed = match error {
                    CallError::Answer(answer) => answer.clone().into_platform_error(method),
                    CallError::Platform(platform) => platform.clone(),
                };
                self.guard.observe(&observed);
            }
        }
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind().label(),
        };
        crate::telemetry::record_api_call(PLATFORM, method, outcome, started.elapsed());
        tracing::debug!(shop = %self.shop, method, elapsed_ms = started.elapsed().as_millis() as u64, outcome, "Douyin call finished.");
        result
    }

    async fn send(&self, method: &str, url: Url, body: String, signature: &str) -> Result<Json, CallError> {
        let transport = |error: reqwest::Error| CallError::Platform(top_error::transport(method, &describe(error)));
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json;charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok())
            .map(Duration::from_secs);
        let bytes = response.bytes().await.map_err(transport)?;
        let parsed = envelope::parse(&bytes);
        if status.is_success() && parsed.is_ok() {
            return parsed.map_err(CallError::Answer);
        }
        // A failure quotes the answer: read it again from a copy with the
        // secrets cleaned out, so no excerpt can cut a secret short.
        let text = self.redact(String::from_utf8_lossy(&bytes).into_owned(), signature);
        match envelope::parse(text.as_bytes()) {
            Err(AnswerError::Api(error)) => Err(CallError::Answer(AnswerError::Api(self.redact_api(error, signature)))),
            Ok(_) | Err(AnswerError::Malformed(_)) if !status.is_success() => {
                Err(CallError::Platform(top_error::http_status(method, status.as_u16(), retry_after, &excerpt(&text))))
            }
            other => other.map_err(CallError::Answer),
        }
    }

    fn count(&self, method: &str) {
        let mut calls = self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *calls.entry(method.to_owned()).or_default() += 1;
    }

    /// `text` with the secret, the access token and `signature` replaced by
    /// `***`, as written and as URL-encoded.
    fn redact(&self, text: String, signature: &str) -> String {
        [self.app_secret.expose(), self.access_token.expose(), signature]
            .into_iter()
            .filter(|secret| secret.len() >= MIN_REDACTED_LEN)
            .flat_map(|secret| [secret.to_owned(), form_encode([("", secret)])[1..].to_owned()])
            .fold(text, |text, secret| if text.contains(&secret) { text.replace(&secret, "***") } else { text })
    }

    fn redact_api(&self, error: ApiError, signature: &str) -> ApiError {
        ApiError {
            msg: self.redact(error.msg, signature),
            sub_msg: error.sub_msg.map(|text| self.redact(text, signature)),
            ..error
        }
    }

    /// One page of `order.searchList` by `time_key` (`update_time` or
    /// `create_time`), most recent first.
    async fn search(
        &self,
        time_key: &str,
        window: TimeWindow,
        page: PageRequest,
    ) -> Result<Page<Order>, PlatformError> {
        let Some((start, end)) = inclusive_seconds(window) else { return Ok(empty_page()) };
        let page = clamp_page(page);
        let mut params = Map::new();
        params.insert(format!("{time_key}_start"), json!(start));
        params.insert(format!("{time_key}_end"), json!(end));
        params.insert("page".into(), json!(page.page_no - 1));
        params.insert("size".into(), json!(page.page_size));
        params.insert("order_by".into(), json!(time_key));
        params.insert("order_asc".into(), json!(false));
        let data = self.call(ORDER_SEARCH_LIST, &params).await.map_err(|e| e.into_platform_error(ORDER_SEARCH_LIST))?;
        mapping::order_page(&self.shop, &data, page)
    }

    /// A single-record lookup: `None` when Douyin says it does not exist.
    async fn lookup(&self, method: &str, params: Map<String, Json>) -> Result<Option<Json>, PlatformError> {
        match self.call(method, &params).await {
            Ok(data) => Ok(Some(data)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error.into_platform_error(method)),
        }
    }

    fn not_built(method: &str, what: &str) -> PlatformError {
        PlatformError {
            kind: ErrorKind::BadRequest,
            method: method.to_owned(),
            message: format!("{what} is not built for Douyin shops yet"),
            request_id: None,
        }
    }
}

#[async_trait]
impl Platform for DouyinClient {
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
        _fields: &[String],
    ) -> Result<Page<Order>, PlatformError> {
        // Douyin has no field selection: `fields` names TOP fields and is
        // ignored here.
        self.search("create_time", window, page).await
    }

    async fn orders_modified(
        &self,
        window: TimeWindow,
        page: PageRequest,
        _fields: &[String],
    ) -> Result<Page<Order>, PlatformError> {
        window.check_span(ORDER_SEARCH_LIST, self.max_modified_window())?;
        self.search("update_time", window, page).await
    }

    async fn order_detail(&self, tid: i64, _fields: &[String]) -> Result<Option<Order>, PlatformError> {
        let mut params = Map::new();
        params.insert("shop_order_id".into(), json!(tid.to_string()));
        let Some(data) = self.lookup(ORDER_DETAIL, params).await? else { return Ok(None) };
        match data.get("shop_order_detail") {
            Some(record @ Json::Object(map)) if !map.is_empty() => {
                mapping::order(&self.shop, record).map(Some).map_err(|error| error.into_platform_error(ORDER_DETAIL))
            }
            _ => Ok(None),
        }
    }

    async fn refunds_modified(&self, window: TimeWindow, page: PageRequest) -> Result<Page<Refund>, PlatformError> {
        let Some((start, end)) = inclusive_seconds(window) else { return Ok(empty_page()) };
        let page = clamp_page(page);
        let mut params = Map::new();
        params.insert("update_start_time".into(), json!(start));
        params.insert("update_end_time".into(), json!(end));
        params.insert("page".into(), json!(page.page_no - 1));
        params.insert("size".into(), json!(page.page_size));
        let data = self.call(AFTER_SALE_LIST, &params).await.map_err(|e| e.into_platform_error(AFTER_SALE_LIST))?;
        mapping::refund_page(&self.shop, &data, page)
    }

    async fn refund(&self, refund_id: i64) -> Result<Option<Refund>, PlatformError> {
        let mut params = Map::new();
        params.insert("after_sale_id".into(), json!(refund_id.to_string()));
        let Some(data) = self.lookup(AFTER_SALE_DETAIL, params).await? else { return Ok(None) };
        match data.get("process_info") {
            Some(Json::Object(map)) if !map.is_empty() => mapping::refund_detail(&self.shop, &data)
                .map(Some)
                .map_err(|error| error.into_platform_error(AFTER_SALE_DETAIL)),
            _ => Ok(None),
        }
    }

    async fn parcel_trace(&self, _tid: i64) -> Result<Vec<ParcelTrace>, PlatformError> {
        Err(Self::not_built("logistics trace", "the parcel trace"))
    }

    async fn messages(&self, _quantity: u32) -> Result<Vec<PlatformMessage>, PlatformError> {
        Err(Self::not_built("message push", "Douyin's message push"))
    }

    async fn confirm_messages(&self, _ids: &[i64]) -> Result<(), PlatformError> {
        Err(Self::not_built("message push", "Douyin's message push"))
    }

    fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn guard(&self) -> &ShopGuard {
        &self.guard
    }
}

/// The window as inclusive Unix seconds `[start, end]`, or `None` when it is
/// empty: the last whole second of `[start, end)`.
fn inclusive_seconds(window: TimeWindow) -> Option<(i64, i64)> {
    if window.end <= window.start {
        return None;
    }
    let last: DateTime<Utc> = if window.end.trunc_subsecs(0) == window.end {
        window.end - chrono::Duration::seconds(1)
    } else {
        window.end.trunc_subsecs(0)
    };
    Some((window.start.timestamp(), last.timestamp()))
}

fn clamp_page(page: PageRequest) -> PageRequest {
    PageRequest { page_no: page.page_no.max(1), page_size: page.page_size.clamp(1, MAX_PAGE_SIZE), ..page }
}

fn empty_page<T>() -> Page<T> {
    Page { items: Vec::new(), total: Some(0), has_next: false, rejected: Vec::new() }
}

#[cfg(test)]
mod tests;
