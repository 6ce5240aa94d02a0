//! Refunds: the `refunds` table, written like the orders (see [`super::orders`]):
//! a batch and the cursors it advances in one transaction, never replacing a
//! newer version.

use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use sqlx::AnyConnection;

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::orders::{
    BYTES_PER_STATEMENT, CODE_LEN, PLATFORM_LEN, SHOP_LEN, cursor_text, fixed_stamp, lock_shops, save_cursors, too_long,
};
use super::tables::ColumnKind;
use super::{Backend, Cursor, SaveOutcome, Store, parse_timestamp, timestamp_text};
use crate::platforms::{Money, Refund};

/// At most this many refunds go into one statement.
const REFUNDS_PER_STATEMENT: usize = 500;
/// At most this many refund ids go into one `IN (…)` list.
const IDS_PER_STATEMENT: usize = 1000;
/// The status of a refund whose money went back to the buyer.
const SUCCESS: &str = "SUCCESS";

const REFUND_COLUMNS: [&str; 11] =
    ["platform", "shop", "refund_id", "tid", "oid", "status", "refund_fee", "created", "modified", "raw", "synced_at"];
const REFUND_KEY: [&str; 3] = ["platform", "shop", "refund_id"];

/// A refund checked and turned into the text its columns hold.
struct RefundRow<'a> {
    refund: &'a Refund,
    created: String,
    modified: String,
    refund_fee: String,
    raw: String,
}

impl<'a> RefundRow<'a> {
    fn new(refund: &'a Refund) -> Result<Self, StoreError> {
        let id = refund.refund_id;
        for (field, value, max) in [
            ("refunds.platform", &refund.platform, PLATFORM_LEN),
            ("refunds.shop", &refund.shop, SHOP_LEN),
            ("refunds.status", &refund.status, CODE_LEN),
        ] {
            if let Some(reason) = too_long(value, max) {
                return Err(invalid(field, id, reason));
            }
        }
        Ok(Self {
            created: fixed_stamp(refund.created).map_err(|reason| invalid("refunds.created", id, reason))?,
            modified: fixed_stamp(refund.modified).map_err(|reason| invalid("refunds.modified", id, reason))?,
            refund_fee: refund.refund_fee.to_string(),
            raw: serde_json::to_string(&refund.raw).map_err(|error| invalid("refunds.raw", id, error))?,
            refund,
        })
    }

    fn shop(&self) -> (&'a str, &'a str) {
        (&self.refund.platform, &self.refund.shop)
    }

    /// Roughly how many bytes the row adds to a statement.
    fn size(&self) -> usize {
        self.raw.len() + 256
    }
}

fn invalid(field: &str, refund_id: i64, reason: impl std::fmt::Display) -> StoreError {
    StoreError::InvalidValue { field: field.to_owned(), reason: format!("refund {refund_id}: {reason}") }
}

/// The rows by shop, one row per refund: the newest, and of equal versions the
/// last (as the database would keep after writing them in turn). PostgreSQL
/// refuses to update a row twice in one statement, so duplicates cannot go
/// through together. Also returns how many were dropped.
fn newest_by_shop<'a>(rows: Vec<RefundRow<'a>>) -> (BTreeMap<(&'a str, &'a str), Vec<RefundRow<'a>>>, usize) {
    let mut shops: BTreeMap<(&str, &str), Vec<RefundRow<'a>>> = BTreeMap::new();
    let mut at: HashMap<(&str, &str, i64), usize> = HashMap::new();
    let mut dropped = 0;
    for row in rows {
        let (platform, shop) = row.shop();
        let group = shops.entry((platform, shop)).or_default();
        match at.get(&(platform, shop, row.refund.refund_id)) {
            Some(&i) => {
                dropped += 1;
                if row.modified >= group[i].modified {
                    group[i] = row;
                }
            }
            None => {
                at.insert((platform, shop, row.refund.refund_id), group.len());
                group.push(row);
            }
        }
    }
    (shops, dropped)
}

/// One shop's rows cut into pieces that fit one statement.
fn statement_chunks<'r, 'a>(rows: &'r [RefundRow<'a>], max_rows: usize) -> Vec<&'r [RefundRow<'a>]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, row) in rows.iter().enumerate() {
        if i > start && (i - start >= max_rows || bytes + row.size() > BYTES_PER_STATEMENT) {
            chunks.push(&rows[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += row.size();
    }
    if start < rows.len() {
        chunks.push(&rows[start..]);
    }
    chunks
}

impl Store {
    /// Writes a batch of refunds, then the cursors, in one transaction: all of it
    /// or, on any error, none of it.
    ///
    /// A refund is written unless the database holds a newer version (a later
    /// `modified`); an equal `modified` overwrites, since a re-fetched copy of the
    /// same version may be more complete (a `refund.get` detail after a listing).
    /// Cursors are written whatever happened to the refunds, so an empty page still
    /// advances its stream.
    ///
    /// Values are checked before anything is sent: text longer than its column
    /// (platform 64, shop 191, status 64 characters) and timestamps outside the
    /// years 0000 to 9999 fail the batch with [`StoreError::InvalidValue`]. The
    /// counts of the outcome are those of the versions read under the
    /// transaction's locks; the newest version wins whatever the timing. A lock
    /// conflict fails the batch with a transient error; saving it again is safe.
    pub async fn save_refunds(&self, refunds: &[Refund], cursors: &[Cursor]) -> Result<SaveOutcome, StoreError> {
        let rows = refunds.iter().map(RefundRow::new).collect::<Result<Vec<_>, _>>()?;
        let cursor_values = cursors.iter().map(cursor_text).collect::<Result<Vec<_>, _>>()?;
        let (shops, superseded) = newest_by_shop(rows);
        let mut outcome = SaveOutcome { stale: superseded, ..SaveOutcome::default() };
        if shops.is_empty() && cursors.is_empty() {
            return Ok(outcome);
        }

        let now = timestamp_text(Utc::now());
        let mut tx = self.begin_write().await?;
        lock_shops(&mut tx, self.backend, shops.keys().copied()).await?;
        let max_rows = REFUNDS_PER_STATEMENT.min(dialect::max_binds(self.backend) / REFUND_COLUMNS.len());
        for ((platform, shop), rows) in &shops {
            for chunk in statement_chunks(rows, max_rows) {
                self.save_refund_chunk(&mut tx, platform, shop, chunk, &now, &mut outcome).await?;
            }
        }
        save_cursors(&mut tx, self.backend, cursors, cursor_values, &now).await?;
        let count: usize = shops.values().map(Vec::len).sum();
        tx.commit().await.map_err(StoreError::db(format!("committing {count} refunds")))?;
        Ok(outcome)
    }

    /// Writes one statement's worth of refunds of one shop.
    async fn save_refund_chunk(
        &self,
        conn: &mut AnyConnection,
        platform: &str,
        shop: &str,
        chunk: &[RefundRow<'_>],
        now: &str,
        outcome: &mut SaveOutcome,
    ) -> Result<(), StoreError> {
        let ids: Vec<i64> = chunk.iter().map(|row| row.refund.refund_id).collect();
        let stored = read_refund_versions(conn, self.backend, platform, shop, &ids).await?;
        let mut write = Vec::with_capacity(chunk.len());
        for row in chunk {
            match stored.get(&row.refund.refund_id) {
                Some(version) if version.as_str() > row.modified.as_str() => outcome.stale += 1,
                Some(_) => {
                    outcome.updated += 1;
                    write.push(row);
                }
                None => {
                    outcome.inserted += 1;
                    write.push(row);
                }
            }
        }
        if write.is_empty() {
            return Ok(());
        }
        let upsert = dialect::upsert_many(
            self.backend,
            "refunds",
            &REFUND_COLUMNS,
            &REFUND_KEY,
            Some(("modified", ColumnKind::Text)),
            write.len(),
        );
        let mut query = sqlx::query(&upsert);
        for row in &write {
            let refund = row.refund;
            query = query
                .bind(&refund.platform)
                .bind(&refund.shop)
                .bind(refund.refund_id)
                .bind(refund.tid)
                .bind(refund.oid)
                .bind(&refund.status)
                .bind(&row.refund_fee)
                .bind(&row.created)
                .bind(&row.modified)
                .bind(&row.raw)
                .bind(now);
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db(format!("upserting {} refunds of {platform}/{shop}", write.len())))?;
        Ok(())
    }

    /// The refunds of order `tid`, by refund id.
    pub async fn refunds_of_order(&self, platform: &str, shop: &str, tid: i64) -> Result<Vec<Refund>, StoreError> {
        self.read_refunds(platform, shop, Some(tid)).await
    }

    /// How much of order `tid` went back to its buyer: the sum of the refunds in
    /// status `SUCCESS`, added up exactly in fen.
    pub async fn refunded_amount(&self, platform: &str, shop: &str, tid: i64) -> Result<Money, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT refund_id, refund_fee FROM refunds WHERE platform = ? AND shop = ? AND tid = ? AND status = ?",
        );
        let rows: Vec<(i64, DbText)> = sqlx::query_as(&sql)
            .bind(platform)
            .bind(shop)
            .bind(tid)
            .bind(SUCCESS)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the refunds of order {tid} of {platform}/{shop}")))?;
        // Summed here rather than in SQL: each backend would cast the text to a
        // different numeric type, and SQLite's only exact one is the integer.
        rows.into_iter().try_fold(Money(0), |sum, (refund_id, fee)| {
            let fee: Money = fee.0.parse().map_err(|error| invalid("refunds.refund_fee", refund_id, error))?;
            sum.0
                .checked_add(fee.0)
                .map(Money)
                .ok_or_else(|| invalid("refunds.refund_fee", refund_id, format!("order {tid}: the sum overflows")))
        })
    }

    /// Every refund of a shop, by refund id. Meant for tests and checks that
    /// compare the database with the platform, not for large shops.
    pub async fn stored_refunds(&self, platform: &str, shop: &str) -> Result<Vec<Refund>, StoreError> {
        self.read_refunds(platform, shop, None).await
    }

    /// The refunds of a shop, or of one of its orders, by refund id.
    async fn read_refunds(&self, platform: &str, shop: &str, tid: Option<i64>) -> Result<Vec<Refund>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT refund_id, tid, oid, status, refund_fee, created, modified, raw \
                 FROM refunds WHERE platform = ? AND shop = ?{} ORDER BY refund_id",
                if tid.is_some() { " AND tid = ?" } else { "" }
            ),
        );
        let mut query = sqlx::query_as::<_, RefundDbRow>(&sql).bind(platform).bind(shop);
        if let Some(tid) = tid {
            query = query.bind(tid);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading refunds of {platform}/{shop}")))?;
        rows.into_iter()
            .map(|row| {
                let id = row.refund_id;
                Ok(Refund {
                    platform: platform.to_owned(),
                    shop: shop.to_owned(),
                    refund_id: id,
                    tid: row.tid,
                    oid: row.oid,
                    status: row.status.0,
                    refund_fee: row.refund_fee.0.parse().map_err(|error| invalid("refunds.refund_fee", id, error))?,
                    created: parse_timestamp("refunds.created", &row.created.0)?,
                    modified: parse_timestamp("refunds.modified", &row.modified.0)?,
                    raw: serde_json::from_str(&row.raw.0).map_err(|error| invalid("refunds.raw", id, error))?,
                })
            })
            .collect()
    }
}

#[derive(sqlx::FromRow)]
struct RefundDbRow {
    refund_id: i64,
    tid: i64,
    oid: i64,
    status: DbText,
    refund_fee: DbText,
    created: DbText,
    modified: DbText,
    raw: DbText,
}

/// The stored `modified` text of each of `ids` the database holds, the rows
/// locked until the transaction `conn` is in ends (see [`dialect::lock_rows`]).
async fn read_refund_versions(
    conn: &mut AnyConnection,
    backend: Backend,
    platform: &str,
    shop: &str,
    ids: &[i64],
) -> Result<HashMap<i64, String>, StoreError> {
    let mut versions = HashMap::with_capacity(ids.len());
    for part in ids.chunks(IDS_PER_STATEMENT) {
        let sql = dialect::sql(
            backend,
            &format!(
                "SELECT refund_id, modified FROM refunds WHERE platform = ? AND shop = ? AND refund_id IN ({}){}",
                dialect::in_list(part.len()),
                dialect::lock_rows(backend)
            ),
        );
        let mut query = sqlx::query_as::<_, (i64, DbText)>(&sql).bind(platform).bind(shop);
        for id in part {
            query = query.bind(*id);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db(format!("reading stored versions of refunds of {platform}/{shop}")))?;
        versions.extend(rows.into_iter().map(|(id, modified)| (id, modified.0)));
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone};
    use serde_json::json;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 10, minute, 0).single().expect("a valid time")
    }

    fn refund(id: i64, tid: i64, status: &str, fee: i64, minute: u32) -> Refund {
        Refund {
            platform: "taobao".into(),
            shop: "s".into(),
            refund_id: id,
            tid,
            oid: id + 1,
            status: status.into(),
            refund_fee: Money(fee),
            created: at(0),
            modified: at(minute),
            raw: json!({"refund_id": id.to_string(), "status": status}),
        }
    }

    #[tokio::test]
    async fn newer_versions_win_and_success_refunds_add_up_in_fen() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let cursor = Cursor {
            platform: "taobao".into(),
            shop: "s".into(),
            stream: "refunds.increment".into(),
            value: json!({"modified_until": "x"}),
        };
        let first = [refund(1, 10, "WAIT_SELLER_AGREE", 1001, 5), refund(2, 10, "SUCCESS", 1999, 5)];
        let outcome = store.save_refunds(&first, std::slice::from_ref(&cursor)).await.unwrap();
        assert_eq!(outcome, SaveOutcome { inserted: 2, updated: 0, stale: 0 });
        assert_eq!(store.load_cursor("taobao", "s", "refunds.increment").await.unwrap(), Some(cursor.value));

        // Refund 1 succeeds; an older copy of refund 2 arrives late; a batch
        // holding two copies of refund 3 keeps the newer.
        let second = [
            refund(1, 10, "SUCCESS", 1001, 9),
            refund(2, 10, "WAIT_SELLER_AGREE", 1999, 1),
            refund(3, 11, "CLOSED", 5, 7),
            refund(3, 11, "WAIT_SELLER_AGREE", 5, 6),
        ];
        let outcome = store.save_refunds(&second, &[]).await.unwrap();
        assert_eq!(outcome, SaveOutcome { inserted: 1, updated: 1, stale: 2 });

        let stored = store.stored_refunds("taobao", "s").await.unwrap();
        let summary: Vec<(i64, &str)> = stored.iter().map(|r| (r.refund_id, r.status.as_str())).collect();
        assert_eq!(summary, [(1, "SUCCESS"), (2, "SUCCESS"), (3, "CLOSED")]);
        assert_eq!(stored[0], second[0]);
        assert_eq!(store.refunds_of_order("taobao", "s", 11).await.unwrap(), [second[2].clone()]);
        assert_eq!(store.refunded_amount("taobao", "s", 10).await.unwrap(), Money(3000));
        assert_eq!(store.refunded_amount("taobao", "s", 11).await.unwrap(), Money(0));
    }

    #[tokio::test]
    async fn a_status_too_long_fails_the_whole_batch() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let long = refund(2, 10, &"X".repeat(65), 1, 1);
        let error = store.save_refunds(&[refund(1, 10, "SUCCESS", 1, 1), long], &[]).await.unwrap_err();
        assert!(error.to_string().contains("refunds.status"), "{error}");
        assert!(store.stored_refunds("taobao", "s").await.unwrap().is_empty());
    }
}
