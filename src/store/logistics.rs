//! What the logistics and notification nodes remember between runs: when each
//! order's parcel trace was last read (`parcel_checks`), which orders a shop holds
//! in given statuses, and what `notify` has delivered (`deliveries`), so each
//! delivery key reaches its target once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::health::check_len;
use super::{Store, parse_timestamp, timestamp_text};

/// The longest values, in characters, of the key columns MySQL keeps as VARCHAR
/// (see `migrations/mysql/0007_logistics_notify.sql`), checked on every backend.
const PLATFORM_LEN: usize = 64;
const SHOP_LEN: usize = 191;
const TARGET_LEN: usize = 64;
/// The longest delivery key; `notify` hashes longer keys to fit.
pub const DELIVERY_KEY_LEN: usize = 191;

/// At most this many values go into one `IN (…)` list: far below every backend's
/// bind limit, and a batch of orders is at most a few hundred.
const IN_LIST_CHUNK: usize = 500;

/// When an order's parcel trace was last read, and the newest event it held then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelCheck {
    /// The platform's name; at most 64 characters.
    pub platform: String,
    /// The shop's name; at most 191 characters.
    pub shop: String,
    /// The order.
    pub tid: i64,
    /// When the trace was read.
    pub checked_at: DateTime<Utc>,
    /// The newest event of any of its parcels; `None` when there was none.
    pub newest_event_at: Option<DateTime<Utc>>,
}

/// An order of a shop as [`Store::orders_in_status`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderStatus {
    /// The platform's order id.
    pub tid: i64,
    /// The stored status.
    pub status: String,
    /// The stored version.
    pub modified: DateTime<Utc>,
}

impl Store {
    /// The stored checks of `tids` of a shop, by tid; orders never checked are
    /// absent.
    pub async fn parcel_checks(
        &self,
        platform: &str,
        shop: &str,
        tids: &[i64],
    ) -> Result<HashMap<i64, ParcelCheck>, StoreError> {
        let mut checks = HashMap::new();
        for chunk in tids.chunks(IN_LIST_CHUNK) {
            let sql = dialect::sql(
                self.backend,
                &format!(
                    "SELECT tid, checked_at, newest_event_at FROM parcel_checks \
                     WHERE platform = ? AND shop = ? AND tid IN ({})",
                    dialect::in_list(chunk.len())
                ),
            );
            let mut query = sqlx::query_as::<_, (i64, DbText, Option<DbText>)>(&sql).bind(platform).bind(shop);
            for tid in chunk {
                query = query.bind(*tid);
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::db(format!("reading parcel checks of {platform}/{shop}")))?;
            for (tid, checked_at, newest) in rows {
                let check = ParcelCheck {
                    platform: platform.to_owned(),
                    shop: shop.to_owned(),
                    tid,
                    checked_at: parse_timestamp("parcel_checks.checked_at", &checked_at.0)?,
                    newest_event_at: newest
                        .map(|t| parse_timestamp("parcel_checks.newest_event_at", &t.0))
                        .transpose()?,
                };
                checks.insert(tid, check);
            }
        }
        Ok(checks)
    }

    /// Records a check, replacing the order's earlier one.
    pub async fn save_parcel_check(&self, check: &ParcelCheck) -> Result<(), StoreError> {
        check_len("parcel_checks.platform", &check.platform, PLATFORM_LEN)?;
        check_len("parcel_checks.shop", &check.shop, SHOP_LEN)?;
        let sql = dialect::upsert(
            self.backend,
            "parcel_checks",
            &["platform", "shop", "tid", "checked_at", "newest_event_at"],
            &["platform", "shop", "tid"],
            None,
        );
        let query = sqlx::query(&sql)
            .bind(&check.platform)
            .bind(&check.shop)
            .bind(check.tid)
            .bind(timestamp_text(check.checked_at))
            .bind(check.newest_event_at.map(timestamp_text));
        self.execute_write(query, format!("saving the parcel check of order {}", check.tid)).await?;
        Ok(())
    }

    /// Up to `limit` stored orders of a shop in one of `statuses`, with a tid above
    /// `after` (`None`: from the start), by tid: a page of a walk through the shop
    /// that holds at most one page in memory.
    pub async fn orders_in_status(
        &self,
        platform: &str,
        shop: &str,
        statuses: &[String],
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<OrderStatus>, StoreError> {
        if statuses.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT tid, status, modified FROM orders WHERE platform = ? AND shop = ? AND tid > ? \
                 AND status IN ({}) ORDER BY tid LIMIT ?",
                dialect::in_list(statuses.len())
            ),
        );
        let mut query =
            sqlx::query_as::<_, (i64, DbText, DbText)>(&sql).bind(platform).bind(shop).bind(after.unwrap_or(i64::MIN));
        for status in statuses {
            query = query.bind(status);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading orders of {platform}/{shop} by status")))?;
        rows.into_iter()
            .map(|(tid, status, modified)| {
                Ok(OrderStatus { tid, status: status.0, modified: parse_timestamp("orders.modified", &modified.0)? })
            })
            .collect()
    }

    /// Which of `keys` were already delivered to `target`.
    pub async fn delivered_keys(&self, target: &str, keys: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut delivered = HashSet::new();
        for chunk in keys.chunks(IN_LIST_CHUNK) {
            let sql = dialect::sql(
                self.backend,
                &format!(
                    "SELECT delivery_key FROM deliveries WHERE target = ? AND delivery_key IN ({})",
                    dialect::in_list(chunk.len())
                ),
            );
            let mut query = sqlx::query_as::<_, (DbText,)>(&sql).bind(target);
            for key in chunk {
                query = query.bind(key);
            }
            let rows =
                query.fetch_all(&self.pool).await.map_err(StoreError::db(format!("reading deliveries to {target}")))?;
            delivered.extend(rows.into_iter().map(|(key,)| key.0));
        }
        Ok(delivered)
    }

    /// Records that `key` was delivered to `target` (after the receiver accepted
    /// it). Returns false when it was recorded already.
    pub async fn record_delivery(&self, target: &str, key: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        check_len("deliveries.target", target, TARGET_LEN)?;
        check_len("deliveries.delivery_key", key, DELIVERY_KEY_LEN)?;
        let sql = dialect::insert_ignore(self.backend, "deliveries", &["target", "delivery_key", "delivered_at"]);
        let query = sqlx::query(&sql).bind(target).bind(key).bind(timestamp_text(at));
        let result = self.execute_write(query, format!("recording a delivery to {target}")).await?;
        Ok(result.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn checks_are_replaced_and_deliveries_recorded_once() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let mut check = ParcelCheck {
            platform: "taobao".into(),
            shop: "s".into(),
            tid: 1 << 60,
            checked_at: at("2026-11-20T08:00:00Z"),
            newest_event_at: None,
        };
        store.save_parcel_check(&check).await.unwrap();
        check.checked_at = at("2026-11-21T08:00:00Z");
        check.newest_event_at = Some(at("2026-11-19T08:00:00Z"));
        store.save_parcel_check(&check).await.unwrap();
        let checks = store.parcel_checks("taobao", "s", &[1 << 60, 2]).await.unwrap();
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[&(1 << 60)], check);

        assert!(store.record_delivery("hook", "a", at("2026-11-20T08:00:00Z")).await.unwrap());
        assert!(!store.record_delivery("hook", "a", at("2026-11-20T09:00:00Z")).await.unwrap());
        let keys = ["a".to_owned(), "b".to_owned()];
        assert_eq!(store.delivered_keys("hook", &keys).await.unwrap(), HashSet::from(["a".to_owned()]));
        assert!(store.delivered_keys("other", &keys).await.unwrap().is_empty());
        let long = "k".repeat(DELIVERY_KEY_LEN + 1);
        assert!(store.record_delivery("hook", &long, at("2026-11-20T08:00:00Z")).await.is_err());
    }
}
