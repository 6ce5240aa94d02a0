//! Platform connectors: one folder per platform, all behind [`Platform`], all
//! mapping to one normalised [`Order`] that keeps the platform's raw JSON.
//!
//! Nodes never speak a platform's wire format: they ask a [`Platform`] for
//! pages of orders in a time window, for one order's detail, for refunds, for
//! a parcel's trace or for pushed messages, and get typed answers or a
//! [`PlatformError`] whose [`ErrorKind`] says what to do about it.

pub mod detail_cache;
pub mod douyin;
pub mod guard;
pub mod offline;
pub mod shared;
pub mod taobao;

mod order;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value as Json;

use crate::config::{self, Config};
use crate::flow::error::ConfigErrors;

use guard::{Gates, ShopGuard};

pub use order::{Money, Order, OrderItem, ParcelTrace, PlatformMessage, Refund, TraceStep};

/// A half-open time range `[start, end)` in UTC; platforms convert it to
/// their own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Inclusive start.
    pub start: DateTime<Utc>,
    /// Exclusive end.
    pub end: DateTime<Utc>,
}

impl TimeWindow {
    /// The window's length.
    pub fn span(&self) -> chrono::Duration {
        self.end - self.start
    }
}

impl TimeWindow {
    /// Refuses the window for `method` when it is longer than `max`: the
    /// platform would refuse it too, after costing a call.
    pub(crate) fn check_span(&self, method: &str, max: chrono::Duration) -> Result<(), PlatformError> {
        if self.span() <= max {
            return Ok(());
        }
        Err(PlatformError {
            kind: ErrorKind::BadRequest,
            method: method.to_owned(),
            message: format!("the window {} – {} is longer than {} hour(s)", self.start, self.end, max.num_hours()),
            request_id: None,
        })
    }
}

/// Which page of a listing to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page_no: u32,
    /// Records per page (the platform caps it; TOP at 100).
    pub page_size: u32,
    /// Ask for the total count (costs the platform more; TOP's `use_has_next`
    /// off). Without it the page says only whether another follows.
    pub with_total: bool,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page<T> {
    /// The records on this page; an absent list is an empty page.
    pub items: Vec<T>,
    /// The total across all pages, when asked for and given.
    pub total: Option<u64>,
    /// Whether a further page exists (from `has_next`, or derived from `total`).
    pub has_next: bool,
    /// Records of this page that cannot be read as the model: set aside one
    /// by one (dead letters) so the rest of the page goes on.
    pub rejected: Vec<Rejected>,
}

/// One record of an answer that cannot be read as the model: a field the model
/// needs is missing or of an impossible type or value. It is set aside with
/// its raw body; the other records of the answer are not held back by it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The record as the platform sent it.
    pub raw: Json,
    /// What is wrong with it, naming the field (and the record's id when it has one).
    pub reason: String,
}

/// What a failed call means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The app is over its quota: stop calling for `ban` (from the answer).
    RateLimited {
        /// How long the platform says the ban lasts.
        ban: Duration,
    },
    /// The platform's own fault (`isp.*`, HTTP 5xx, network, timeout): retry
    /// with backoff.
    Remote,
    /// The platform refuses because the query is too heavy
    /// (`isv.trade-service-rejection`): shrink the window and wait.
    Overloaded,
    /// The seller must authorise again (missing, invalid or expired session).
    SessionExpired,
    /// Wrong app secret or a signing bug.
    Signature,
    /// The app lacks the permission for this method.
    Permission,
    /// A missing or invalid argument: a bug on our side.
    BadRequest,
    /// An answer of no known shape: an anomaly (see [`Anomaly`]), retried
    /// with backoff, counted and stored, never read as "no orders".
    Malformed(Anomaly),
    /// One record of a single-record answer (an order's detail, a refund)
    /// cannot be read as the model: a field the model needs is missing or of
    /// an impossible type or value. The answer came through and the platform
    /// is not at fault, so calling again returns the same record: never
    /// retried; the caller sets that one record aside (dead letters), as a
    /// listing does with [`Page::rejected`]. The message names the field and
    /// the record, and quotes no secret.
    BadRecord,
    /// A business error the platform reported that fits none of the above.
    Other,
}

impl ErrorKind {
    /// Whether calling again later can succeed without anyone acting.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Remote | Self::Overloaded | Self::Malformed(_))
    }

    /// The short, fixed name of the class, for logs and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::RateLimited { .. } => "rate_limited",
            Self::Remote => "remote",
            Self::Overloaded => "overloaded",
            Self::SessionExpired => "session_expired",
            Self::Signature => "signature",
            Self::Permission => "permission",
            Self::BadRequest => "bad_request",
            Self::Malformed(_) => "malformed",
            Self::BadRecord => "bad_record",
            Self::Other => "other",
        }
    }
}

/// What was wrong with an answer of no known shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anomaly {
    /// An HTML page (a proxy's or a gateway's error page).
    Html,
    /// No body at all.
    Empty,
    /// JSON that breaks off before its end.
    Truncated,
    /// Something else that is not JSON, or JSON that is not an object.
    NotJson,
    /// A success envelope without its body.
    MissingBody,
    /// A success page without its list although it says records exist.
    MissingList,
    /// A record field of an unexpected type or value.
    WrongType,
    /// Far fewer records than the recent baseline for a window like it.
    Drop,
    /// A reading that did not move the sync on: the same page again for
    /// another window, or a page that does not move a window's end.
    NoProgress,
    /// An answer with an HTTP status no API answer has.
    Status,
}

impl Anomaly {
    /// The stored and logged name: `html`, `empty`, `truncated`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Empty => "empty",
            Self::Truncated => "truncated",
            Self::NotJson => "not_json",
            Self::MissingBody => "missing_body",
            Self::MissingList => "missing_list",
            Self::WrongType => "wrong_type",
            Self::Drop => "drop",
            Self::NoProgress => "no_progress",
            Self::Status => "status",
        }
    }
}

/// A failed platform call. Never holds a secret: request parameters in
/// messages are shown with `app_secret`, `session` and `sign` removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method}: {message}")]
pub struct PlatformError {
    /// What to do about it.
    pub kind: ErrorKind,
    /// The API method called.
    pub method: String,
    /// The platform's code and sub-code, and their messages, or what was wrong
    /// with the answer (with a short excerpt of it).
    pub message: String,
    /// The platform's request id, when it gave one.
    pub request_id: Option<String>,
}

/// A platform's refusal as `code 7 (msg), sub_code x (sub_msg)`: both
/// platforms answer with the same four fields.
pub(crate) fn write_codes(
    f: &mut std::fmt::Formatter<'_>,
    code: i64,
    msg: &str,
    sub_code: Option<&str>,
    sub_msg: Option<&str>,
) -> std::fmt::Result {
    write!(f, "code {code}")?;
    if !msg.is_empty() {
        write!(f, " ({msg})")?;
    }
    if let Some(sub_code) = sub_code {
        write!(f, ", sub_code {sub_code}")?;
    }
    if let Some(sub_msg) = sub_msg {
        write!(f, " ({sub_msg})")?;
    }
    Ok(())
}

/// One shop on one platform, as the nodes see it.
#[async_trait]
pub trait Platform: Send + Sync {
    /// The platform's name as stored in the `platform` column (`taobao`).
    fn name(&self) -> &'static str;

    /// The shop's name in `orderflow.yaml` (stored in the `shop` column).
    fn shop(&self) -> &str;

    /// The longest window the platform accepts for a listing by modification time.
    fn max_modified_window(&self) -> chrono::Duration;

    /// How far back the platform keeps orders listable.
    fn horizon(&self) -> chrono::Duration;

    /// Orders created in `window`, newest first. `fields` narrows the answer
    /// to the platform field names given (empty = the connector's default).
    async fn orders_created(
        &self,
        window: TimeWindow,
        page: PageRequest,
        fields: &[String],
    ) -> Result<Page<Order>, PlatformError>;

    /// Orders modified in `window`, most recently modified first.
    async fn orders_modified(
        &self,
        window: TimeWindow,
        page: PageRequest,
        fields: &[String],
    ) -> Result<Page<Order>, PlatformError>;

    /// One order in full; `None` when the platform no longer has it.
    async fn order_detail(&self, tid: i64, fields: &[String]) -> Result<Option<Order>, PlatformError>;

    /// Refunds modified in `window`.
    async fn refunds_modified(&self, window: TimeWindow, page: PageRequest) -> Result<Page<Refund>, PlatformError>;

    /// One refund; `None` when unknown.
    async fn refund(&self, refund_id: i64) -> Result<Option<Refund>, PlatformError>;

    /// The parcel trace of an order.
    async fn parcel_trace(&self, tid: i64) -> Result<Vec<ParcelTrace>, PlatformError>;

    /// Up to `quantity` pushed messages not yet confirmed.
    async fn messages(&self, quantity: u32) -> Result<Vec<PlatformMessage>, PlatformError>;

    /// Confirms messages so the platform stops delivering them.
    async fn confirm_messages(&self, ids: &[i64]) -> Result<(), PlatformError>;

    /// API calls made so far through this connector, by method.
    fn calls(&self) -> BTreeMap<String, u64>;

    /// The shop's guard: its app key's rate limit and ban, its session state.
    fn guard(&self) -> &ShopGuard;
}

/// The configured shops' connectors, by shop name.
#[derive(Clone, Default)]
pub struct Platforms {
    shops: BTreeMap<String, Arc<dyn Platform>>,
    /// Shops that could not be connected in this process (`serve`), with
    /// why: the nodes that use one fail to build and say so.
    unavailable: BTreeMap<String, String>,
    /// The details fetched, for every node of the process (and, through
    /// Redis, of every process).
    detail_cache: Arc<detail_cache::DetailCache>,
}

impl std::fmt::Debug for Platforms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.shops.keys()).finish()
    }
}

/// Why a shop's connector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A Taobao shop's configuration.
    #[error(transparent)]
    Taobao(#[from] taobao::ClientError),
    /// A Douyin shop's configuration.
    #[error(transparent)]
    Douyin(#[from] douyin::client::ClientError),
    /// A shop's `${VAR}` references cannot be resolved (or it is not
    /// configured); each error names the variable and where the config
    /// refers to it.
    #[error("shop \"{shop}\" cannot be connected: {}", joined(errors))]
    Shop {
        /// The shop's name.
        shop: String,
        /// What is missing, at its place in the config file.
        errors: ConfigErrors,
    },
    /// The `redis` URL's references cannot be resolved.
    #[error("redis cannot be used: {}", joined(.0))]
    Redis(ConfigErrors),
}

/// Config errors on one line, for a message that is itself one error.
fn joined(errors: &ConfigErrors) -> String {
    errors.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Platforms {
    /// A connector for every shop of `config`, resolving every shop's
    /// secrets; fails on the first shop that cannot be connected.
    pub fn from_config(config: &Config) -> Result<Self, ConnectError> {
        Self::for_shops(config, config.shops.keys().map(String::as_str))
    }

    /// A connector for each shop named (the shops a flow calls), resolving
    /// those shops' secrets and no other's; fails on the first that cannot
    /// be connected.
    pub fn for_shops<'a>(config: &Config, shops: impl IntoIterator<Item = &'a str>) -> Result<Self, ConnectError> {
        let (platforms, mut failed) = Self::connect(config, shops)?;
        match failed.pop_first() {
            Some((_, error)) => Err(error),
            None => Ok(platforms),
        }
    }

    /// A connector for every shop of `config` that can be connected (what
    /// `serve` runs with): a shop whose secret is missing is set aside with
    /// why, so only the flows using it fail, saying so, and the rest run.
    /// Fails only on what all shops share (the Redis URL).
    pub fn for_serving(config: &Config) -> Result<Self, ConnectError> {
        let (mut platforms, failed) = Self::connect(config, config.shops.keys().map(String::as_str))?;
        for (shop, error) in failed {
            tracing::error!(shop = %shop, %error, "The shop cannot be connected: the flows using it fail.");
            platforms.unavailable.insert(shop, error.to_string());
        }
        Ok(platforms)
    }

    /// A stand-in per shop of `config` (see [`offline`]): for commands that
    /// check flows and call no shop. Needs no secret.
    pub fn offline(config: &Config) -> Self {
        let mut platforms = Self::default();
        for (name, shop) in &config.shops {
            platforms.insert(name, Arc::new(offline::Offline::new(name, shop)));
        }
        platforms
    }

    /// Connectors for `names`, each on the rate gate of its (platform, app
    /// key), shared by every shop on that key; and the shops that could not
    /// be connected, with why.
    fn connect<'a>(
        config: &Config,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(Self, BTreeMap<String, ConnectError>), ConnectError> {
        let mut failed = BTreeMap::new();
        let mut shops = Vec::new();
        for name in names {
            match config.shop(name) {
                Ok(shop) => shops.push((name, shop)),
                Err(errors) => {
                    failed.insert(name.to_owned(), ConnectError::Shop { shop: name.to_owned(), errors });
                }
            }
        }
        let mut platforms = Self::default();
        if shops.is_empty() {
            // Nothing calls a platform: Redis (and its password) is not needed.
            return Ok((platforms, failed));
        }
        let mut keys: BTreeMap<(&'static str, String), std::num::NonZeroU32> = BTreeMap::new();
        for (_, shop) in &shops {
            if let Some(per_minute) = std::num::NonZeroU32::new(shop.rate_limit_per_min) {
                let key = keys.entry((shop.platform.as_str(), shop.app_key.clone())).or_insert(per_minute);
                *key = (*key).min(per_minute);
            }
        }
        let redis_url = config.redis_url().map_err(ConnectError::Redis)?;
        let redis = redis_url.as_ref().and_then(|url| match shared::Redis::open(url, &config.redis_key_prefix) {
            Ok(redis) => {
                tracing::info!(
                    redis = redis.host(),
                    "Rate limits, bans and the detail cache are shared through Redis."
                );
                Some(Arc::new(redis))
            }
            Err(error) => {
                tracing::warn!(%error, "Redis is not used: rate limits and the detail cache stay in this process.");
                None
            }
        });
        let gates = Gates::shared(keys, redis.as_ref());
        if let Some(redis) = redis {
            platforms.detail_cache = Arc::new(detail_cache::DetailCache::Redis(redis));
        }
        for (name, shop) in shops {
            let connector: Result<Arc<dyn Platform>, ConnectError> = match shop.platform {
                config::Platform::Taobao => {
                    taobao::TaobaoClient::with_gates(name, &shop, &gates).map(|c| Arc::new(c) as _).map_err(Into::into)
                }
                config::Platform::Douyin => {
                    douyin::DouyinClient::new(name, &shop, Some(&gates)).map(|c| Arc::new(c) as _).map_err(Into::into)
                }
            };
            match connector {
                Ok(connector) => platforms.insert(name, connector),
                Err(error) => {
                    failed.insert(name.to_owned(), error);
                }
            }
        }
        Ok((platforms, failed))
    }

    /// The process's detail cache.
    pub fn detail_cache(&self) -> Arc<detail_cache::DetailCache> {
        self.detail_cache.clone()
    }

    /// Takes over what an earlier process stored: bans still in force and
    /// shops whose seller must authorise again, so no call goes out into
    /// them; and books every app key's calls in `store` from now on, so the
    /// rate limit holds across processes and restarts (without Redis).
    pub async fn restore(&self, store: &crate::store::Store) -> Result<(), crate::store::StoreError> {
        let bans = store.active_bans(Utc::now()).await?;
        let reauth = store.shops_needing_reauth().await?;
        for platform in self.shops.values() {
            let guard = platform.guard();
            guard.gate().keep_calls_in(store);
            for ban in bans.iter().filter(|ban| ban.platform == platform.name() && ban.app_key == guard.app_key()) {
                guard.gate().ban_until(ban.until);
            }
            if let Some(shop) = reauth.iter().find(|r| r.platform == platform.name() && r.shop == platform.shop()) {
                guard.mark_needs_reauth(&shop.reason);
            }
        }
        Ok(())
    }

    /// Adds or replaces a shop's connector.
    pub fn insert(&mut self, shop: impl Into<String>, platform: Arc<dyn Platform>) {
        self.shops.insert(shop.into(), platform);
    }

    /// The connector of `shop`.
    pub fn get(&self, shop: &str) -> Option<Arc<dyn Platform>> {
        self.shops.get(shop).cloned()
    }

    /// The shop names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.shops.keys().map(String::as_str)
    }

    /// Why configured shop `shop` could not be connected, when it could not.
    pub fn unavailable(&self, shop: &str) -> Option<&str> {
        self.unavailable.get(shop).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;

    use super::*;

    const CONFIG: &str = "shops:\n  a:\n    platform: taobao\n    gateway: http://127.0.0.1:9/router/rest\n    app_key: \"1\"\n    app_secret: ${A_SECRET}\n    session: ${A_SESSION}\n  b:\n    platform: douyin\n    gateway: http://127.0.0.1:9/douyin\n    app_key: \"2\"\n    app_secret: ${B_SECRET}\n    session: ${B_TOKEN}\n";

    fn config() -> Config {
        let env = HashMap::from([("A_SECRET".to_owned(), "s".to_owned()), ("A_SESSION".to_owned(), "t".to_owned())]);
        Config::parse(Path::new("o.yaml"), CONFIG, &env).unwrap()
    }

    #[test]
    fn a_flow_connects_only_its_shops_and_a_missing_secret_names_the_shop_and_the_variable() {
        let config = config();
        let platforms = Platforms::for_shops(&config, ["a"]).unwrap();
        assert_eq!(platforms.names().collect::<Vec<_>>(), ["a"]);
        let error = Platforms::for_shops(&config, ["a", "b"]).unwrap_err().to_string();
        assert!(error.starts_with("shop \"b\" cannot be connected: o.yaml:12:17: ${B_SECRET} is not set"), "{error}");
        assert!(error.contains("o.yaml:13:14: ${B_TOKEN} is not set"), "{error}");
        assert!(Platforms::from_config(&config).is_err(), "every shop, strictly");
    }

    #[test]
    fn serving_sets_a_shop_it_cannot_connect_aside_with_why_and_checking_needs_no_secret() {
        let config = config();
        let serving = Platforms::for_serving(&config).unwrap();
        assert_eq!(serving.names().collect::<Vec<_>>(), ["a"]);
        assert!(serving.unavailable("b").is_some_and(|why| why.contains("${B_TOKEN} is not set")));
        assert_eq!(serving.unavailable("a"), None);

        let offline = Platforms::offline(&config);
        assert_eq!(offline.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(offline.get("b").map(|p| p.name()), Some("douyin"));
    }
}
