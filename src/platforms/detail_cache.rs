//! Orders' details as last fetched, so a detail is not paid for twice: in
//! this process's memory, or in Redis for every process when configured.
//!
//! An entry is the whole order with its `modified`. A reader says how new an
//! order it needs (the listing's `modified` and status, the message's time)
//! and gets an entry only when it is at least that new, so the cache never
//! serves a stale order; entries also expire after [`DETAIL_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::Order;
use super::shared::Redis;

/// How long a cached detail is kept.
pub const DETAIL_TTL: Duration = Duration::from_secs(10 * 60);
/// How many details the in-memory cache holds.
pub const MEMORY_CAPACITY: usize = 10_000;

/// In-memory entries: (platform, shop, tid) → when cached, the order.
type MemoryEntries = HashMap<(String, String, i64), (Instant, Order)>;

/// The detail cache of a process.
pub enum DetailCache {
    /// This process's memory: bounded, each entry for [`DETAIL_TTL`].
    Memory(Mutex<MemoryEntries>),
    /// Redis, shared by every process on it (`SET … EX`).
    Redis(Arc<Redis>),
}

impl Default for DetailCache {
    fn default() -> Self {
        Self::Memory(Mutex::default())
    }
}

impl DetailCache {
    /// The cached detail of `tid` in `platform`'s `shop`, if one at least as
    /// new as `at_least` is cached. Platform times have whole seconds and an
    /// order can change twice in one, so an entry of the same second is used
    /// only when its status is the `status` the reader saw (never when the
    /// reader saw none). A Redis failure is a miss (and a warning).
    pub async fn get(
        &self,
        platform: &str,
        shop: &str,
        tid: i64,
        at_least: DateTime<Utc>,
        status: Option<&str>,
    ) -> Option<Order> {
        let order = match self {
            Self::Memory(entries) => {
                let entries = entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let (stored_at, order) = entries.get(&(platform.to_owned(), shop.to_owned(), tid))?;
                (stored_at.elapsed() < DETAIL_TTL).then(|| order.clone())
            }
            Self::Redis(redis) => {
                let key = detail_key(redis, platform, shop, tid);
                let text: Option<String> = match redis.connection().await {
                    Ok(mut connection) => redis::cmd("GET").arg(&key).query_async(&mut connection).await,
                    Err(error) => Err(error),
                }
                .inspect_err(|error| warn(redis, error))
                .ok()?;
                serde_json::from_str(&text?).ok()
            }
        }?;
        let same_version = order.modified == at_least && status == Some(order.status.as_str());
        (order.modified > at_least || same_version).then_some(order)
    }

    /// Caches `order`'s detail.
    pub async fn put(&self, order: &Order) {
        match self {
            Self::Memory(entries) => {
                let mut entries = entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if entries.len() >= MEMORY_CAPACITY {
                    entries.retain(|_, (stored_at, _)| stored_at.elapsed() < DETAIL_TTL);
                }
                if entries.len() >= MEMORY_CAPACITY {
                    // Details are cheap to fetch again; a reset bounds memory.
                    entries.clear();
                }
                entries
                    .insert((order.platform.clone(), order.shop.clone(), order.tid), (Instant::now(), order.clone()));
            }
            Self::Redis(redis) => {
                let Ok(text) = serde_json::to_string(order) else { return };
                let key = detail_key(redis, &order.platform, &order.shop, order.tid);
                let stored: Result<(), _> = match redis.connection().await {
                    Ok(mut connection) => {
                        redis::cmd("SET")
                            .arg(&key)
                            .arg(text)
                            .arg("EX")
                            .arg(DETAIL_TTL.as_secs())
                            .query_async(&mut connection)
                            .await
                    }
                    Err(error) => Err(error),
                };
                if let Err(error) = stored {
                    warn(redis, &error);
                }
            }
        }
    }
}

fn detail_key(redis: &Redis, platform: &str, shop: &str, tid: i64) -> String {
    redis.key(&format!("detail:{platform}:{shop}:{tid}"))
}

fn warn(redis: &Redis, error: &redis::RedisError) {
    tracing::warn!(redis = redis.host(), error = ?error.kind(), "The Redis detail cache failed; the detail is fetched.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platforms::Money;

    fn order(tid: i64, modified: &str) -> Order {
        let modified: DateTime<Utc> = modified.parse().unwrap();
        Order {
            platform: "taobao".into(),
            shop: "s".into(),
            tid,
            status: "WAIT_SELLER_SEND_GOODS".into(),
            order_type: "fixed".into(),
            created: modified,
            modified,
            pay_time: None,
            payment: Money(100),
            buyer_nick: None,
            step_trade_status: None,
            items: Vec::new(),
            raw: serde_json::Value::Null,
        }
    }

    #[tokio::test]
    async fn a_cached_detail_is_served_only_when_at_least_as_new_as_asked() {
        let cache = DetailCache::default();
        cache.put(&order(1, "2026-11-20T08:00:00Z")).await;
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let (eight, seven) = (at("2026-11-20T08:00:00Z"), at("2026-11-20T07:00:00Z"));
        let paid = Some("WAIT_SELLER_SEND_GOODS");
        assert!(cache.get("taobao", "s", 1, eight, paid).await.is_some(), "the same version");
        assert!(cache.get("taobao", "s", 1, seven, None).await.is_some(), "newer than asked");
        assert!(cache.get("taobao", "s", 1, eight, Some("TRADE_CLOSED")).await.is_none(), "changed twice in a second");
        assert!(cache.get("taobao", "s", 1, eight, None).await.is_none(), "same second, status unknown");
        assert!(cache.get("taobao", "s", 1, at("2026-11-20T08:00:01Z"), paid).await.is_none(), "stale");
        assert!(cache.get("taobao", "other", 1, seven, None).await.is_none(), "keyed by shop");
    }
}
