//! Orders, their items and the sync cursors.
//!
//! A sync node hands over a page of orders together with the cursor that page
//! advances to, and [`Store::save_orders`] writes both in one transaction. The cursor
//! therefore never claims more than the database holds, and a failed batch leaves the
//! database as it was, so the page is simply fetched again (at-least-once delivery;
//! writing a page twice changes nothing).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::tables::ColumnKind;
use super::{Store, parse_timestamp, timestamp_text};
use crate::platforms::{Money, Order, OrderItem};

/// How far one sync stream of a shop got, e.g. the end of the last fetched
/// `modified` window of `orders.increment`. Saved with the orders it covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// The platform's name (`taobao`); at most 64 characters.
    pub platform: String,
    /// The shop's name in `orderflow.yaml`; at most 191 characters.
    pub shop: String,
    /// The stream, e.g. `orders.full` or `orders.increment/<flow>/<node>`; at
    /// most 255 characters.
    pub stream: String,
    /// The position, in whatever shape the stream needs. Stored as JSON text.
    pub value: serde_json::Value,
}

/// What [`Store::save_orders`] did with the orders it was given (or
/// [`Store::save_refunds`] with the refunds). The three counts add up to the
/// number of records passed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaveOutcome {
    /// Orders the database did not hold before.
    pub inserted: usize,
    /// Orders that replaced a stored version with the same or an older `modified`.
    pub updated: usize,
    /// Orders left out because the database holds a newer version, or because
    /// another copy of the order in the same batch replaced them. Not an error:
    /// pages overlap and arrive out of order.
    pub stale: usize,
}

/// What the store holds of an order, to tell whether a listed copy is news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// The stored `modified`.
    pub modified: DateTime<Utc>,
    /// The stored status.
    pub status: String,
}

impl StoredVersion {
    /// Whether the stored row is at least as new as a copy at `modified`
    /// with `status`. Platform times have whole seconds, so an order can
    /// change twice in one: an equal `modified` only counts as the same
    /// version when the status agrees too.
    pub fn covers(&self, modified: DateTime<Utc>, status: &str) -> bool {
        self.modified > modified || (self.modified == modified && self.status == status)
    }
}

/// An order as stored, reduced to what tests and summaries compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredOrder {
    /// The platform's order id.
    pub tid: i64,
    /// The platform's status.
    pub status: String,
    /// The platform's order type (column `type`).
    pub order_type: String,
    /// The stored version.
    pub modified: DateTime<Utc>,
    /// The amount paid, as stored: a decimal yuan string such as `200.07`.
    pub payment: String,
    /// How many rows `order_items` holds for it.
    pub items: usize,
}

/// The longest values, in characters, of the columns MySQL keeps as VARCHAR (see
/// `migrations/mysql/0002_orders.sql`). The store checks them on every backend, so
/// MySQL never truncates and a batch behaves alike everywhere.
pub(super) const PLATFORM_LEN: usize = 64;
pub(super) const SHOP_LEN: usize = 191;
/// Status codes, order types, refund states and stream names.
pub(super) const CODE_LEN: usize = 64;
/// Cursor streams, named after the flow and node that read them.
const STREAM_LEN: usize = 255;
const SKU_LEN: usize = 191;

/// At most this many orders go into one statement: a typical page costs a handful of
/// round trips, and statements stay small.
const ORDERS_PER_STATEMENT: usize = 500;
/// At most about this many bytes of order text go into one statement. Raw JSON can be
/// tens of kilobytes per order, and MySQL refuses packets above `max_allowed_packet`
/// (16 MiB by default on MariaDB).
pub(super) const BYTES_PER_STATEMENT: usize = 4 << 20;
/// At most this many tids go into one `IN (…)` list.
const TIDS_PER_STATEMENT: usize = 1000;

const ORDER_COLUMNS: [&str; 13] = [
    "platform",
    "shop",
    "tid",
    "status",
    "type",
    "created",
    "modified",
    "pay_time",
    "payment",
    "buyer_nick",
    "step_trade_status",
    "raw",
    "synced_at",
];
const ORDER_KEY: [&str; 3] = ["platform", "shop", "tid"];

const ITEM_COLUMNS: [&str; 13] = [
    "platform",
    "shop",
    "tid",
    "oid",
    "num_iid",
    "sku_id",
    "outer_sku_id",
    "title",
    "num",
    "price",
    "payment",
    "refund_status",
    "refund_id",
];

const CURSOR_COLUMNS: [&str; 5] = ["platform", "shop", "stream", "value", "updated_at"];
const CURSOR_KEY: [&str; 3] = ["platform", "shop", "stream"];

/// An order checked and turned into the text its columns hold.
struct OrderRow<'a> {
    order: &'a Order,
    created: String,
    modified: String,
    pay_time: Option<String>,
    payment: String,
    raw: String,
    items: Vec<ItemRow<'a>>,
}

struct ItemRow<'a> {
    item: &'a OrderItem,
    price: String,
    payment: String,
}

impl<'a> OrderRow<'a> {
    fn new(order: &'a Order) -> Result<Self, StoreError> {
        let tid = order.tid;
        check_len("orders.platform", tid, &order.platform, PLATFORM_LEN)?;
        check_len("orders.shop", tid, &order.shop, SHOP_LEN)?;
        check_len("orders.status", tid, &order.status, CODE_LEN)?;
        check_len("orders.type", tid, &order.order_type, CODE_LEN)?;
        if let Some(step) = &order.step_trade_status {
            check_len("orders.step_trade_status", tid, step, CODE_LEN)?;
        }
        let items = order
            .items
            .iter()
            .map(|item| {
                for (field, value, max) in [
                    ("order_items.sku_id", &item.sku_id, SKU_LEN),
                    ("order_items.outer_sku_id", &item.outer_sku_id, SKU_LEN),
                    ("order_items.refund_status", &item.refund_status, CODE_LEN),
                ] {
                    if let Some(value) = value {
                        check_len(field, tid, value, max)?;
                    }
                }
                Ok(ItemRow { item, price: item.price.to_string(), payment: item.payment.to_string() })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(OrderRow {
            created: stamp("orders.created", tid, order.created)?,
            modified: stamp("orders.modified", tid, order.modified)?,
            pay_time: order.pay_time.map(|t| stamp("orders.pay_time", tid, t)).transpose()?,
            payment: order.payment.to_string(),
            raw: serde_json::to_string(&order.raw).map_err(|error| invalid("orders.raw", tid, error))?,
            items,
            order,
        })
    }

    fn key(&self) -> (&'a str, &'a str, i64) {
        (&self.order.platform, &self.order.shop, self.order.tid)
    }

    /// Roughly how many bytes the row adds to a statement.
    fn size(&self) -> usize {
        self.raw.len() + self.order.buyer_nick.as_ref().map_or(0, String::len) + 256
    }
}

fn invalid(field: &str, tid: i64, reason: impl std::fmt::Display) -> StoreError {
    StoreError::InvalidValue { field: field.to_owned(), reason: format!("order {tid}: {reason}") }
}

fn check_len(field: &str, tid: i64, value: &str, max: usize) -> Result<(), StoreError> {
    too_long(value, max).map_or(Ok(()), |reason| Err(invalid(field, tid, reason)))
}

/// Why `value` does not fit a column of `max` characters, if it does not.
pub(super) fn too_long(value: &str, max: usize) -> Option<String> {
    let len = value.chars().count();
    (len > max).then(|| format!("{len} characters, at most {max} fit"))
}

fn stamp(field: &str, tid: i64, t: DateTime<Utc>) -> Result<String, StoreError> {
    fixed_stamp(t).map_err(|reason| invalid(field, tid, reason))
}

/// `t` as stored. Only years 0000 to 9999 keep the fixed width that makes text order
/// time order; the error says why `t` is outside them.
pub(super) fn fixed_stamp(t: DateTime<Utc>) -> Result<String, String> {
    let text = timestamp_text(t);
    if text.len() == "2024-05-01T08:00:00.000Z".len() {
        Ok(text)
    } else {
        Err(format!("{text} is outside the years 0000 to 9999"))
    }
}

/// Keeps one row per order key: the newest, and of equal versions the last (as the
/// database would after writing them in turn). Returns the rows in first-seen order
/// and how many were dropped.
fn newest_per_key(rows: Vec<OrderRow<'_>>) -> (Vec<OrderRow<'_>>, usize) {
    let mut kept: Vec<OrderRow<'_>> = Vec::with_capacity(rows.len());
    let mut at = HashMap::with_capacity(rows.len());
    let mut dropped = 0;
    for row in rows {
        match at.get(&row.key()) {
            Some(&i) => {
                dropped += 1;
                let slot: &mut OrderRow<'_> = &mut kept[i];
                if row.modified >= slot.modified {
                    *slot = row;
                }
            }
            None => {
                at.insert(row.key(), kept.len());
                kept.push(row);
            }
        }
    }
    (kept, dropped)
}

/// A sub-order belongs to one order. Two lines of a batch with the same oid would
/// make the item insert fail half-way, so refuse them up front, naming both orders.
fn check_oids(rows: &[OrderRow<'_>]) -> Result<(), StoreError> {
    let mut owner: HashMap<(&str, &str, i64), i64> = HashMap::new();
    for row in rows {
        let (platform, shop, tid) = row.key();
        for item in &row.items {
            if let Some(other) = owner.insert((platform, shop, item.item.oid), tid) {
                let oid = item.item.oid;
                let reason = if other == tid {
                    format!("oid {oid} appears twice")
                } else {
                    format!("oid {oid} also appears in order {other} of the same batch")
                };
                return Err(invalid("order_items.oid", tid, reason));
            }
        }
    }
    Ok(())
}

/// The rows grouped by shop (in first-seen order), each group cut into pieces that
/// fit one statement.
fn statement_chunks<'r, 'a>(rows: &'r [OrderRow<'a>], max_rows: usize) -> Vec<Vec<&'r OrderRow<'a>>> {
    let mut groups: Vec<Vec<&OrderRow<'a>>> = Vec::new();
    let mut group_of: HashMap<(&str, &str), usize> = HashMap::new();
    for row in rows {
        let (platform, shop, _) = row.key();
        let index = *group_of.entry((platform, shop)).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[index].push(row);
    }
    let mut chunks = Vec::new();
    for group in groups {
        let mut chunk: Vec<&OrderRow<'a>> = Vec::new();
        let mut bytes = 0;
        for row in group {
            if !chunk.is_empty() && (chunk.len() >= max_rows || bytes + row.size() > BYTES_PER_STATEMENT) {
                chunks.push(std::mem::take(&mut chunk));
                bytes = 0;
            }
            bytes += row.size();
            chunk.push(row);
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
    }
    chunks
}

impl Store {
    /// Writes a batch of orders with their items, then the cursors, in one
    /// transaction: all of it or, on any error, none of it.
    ///
    /// An order is written unless the database holds a newer version (a later
    /// `modified`); an equal `modified` overwrites, since a re-fetched copy of the
    /// same version may be more complete. A written order's items are replaced by
    /// the incoming ones; an order left out keeps its row and its items. Cursors are
    /// written whatever happened to the orders, so an empty page still advances its
    /// stream.
    ///
    /// Values are checked before anything is sent: text longer than its column
    /// (platform 64, shop 191, codes 64, SKU codes 191 characters), timestamps
    /// outside the years 0000 to 9999, and an oid that two lines of the batch share
    /// fail the batch with [`StoreError::InvalidValue`]. An oid stored under another
    /// order fails it with a constraint violation.
    ///
    /// Writers of the same shop may run at once: the newest version and its items
    /// win whatever the timing. A lock conflict (a MySQL deadlock, a busy SQLite
    /// file) fails the batch with a transient error ([`StoreError::is_transient`]);
    /// saving the batch again is safe.
    pub async fn save_orders(&self, orders: &[Order], cursors: &[Cursor]) -> Result<SaveOutcome, StoreError> {
        let rows = orders.iter().map(OrderRow::new).collect::<Result<Vec<_>, _>>()?;
        let cursor_values = cursors.iter().map(cursor_text).collect::<Result<Vec<_>, _>>()?;
        let (rows, superseded) = newest_per_key(rows);
        check_oids(&rows)?;
        let mut outcome = SaveOutcome { stale: superseded, ..SaveOutcome::default() };
        if rows.is_empty() && cursors.is_empty() {
            return Ok(outcome);
        }

        let now = timestamp_text(Utc::now());
        let mut tx = self.begin_write().await?;
        lock_shops(&mut tx, self.backend, rows.iter().map(|row| (row.key().0, row.key().1))).await?;
        let max_rows = ORDERS_PER_STATEMENT.min(dialect::max_binds(self.backend) / ORDER_COLUMNS.len());
        for chunk in statement_chunks(&rows, max_rows) {
            self.save_chunk(&mut tx, &chunk, &now, &mut outcome).await?;
        }
        save_cursors(&mut tx, self.backend, cursors, cursor_values, &now).await?;
        tx.commit().await.map_err(StoreError::db(format!("committing {} orders", rows.len())))?;
        Ok(outcome)
    }

    /// Writes one statement's worth of orders of one shop and their items.
    async fn save_chunk(
        &self,
        conn: &mut AnyConnection,
        chunk: &[&OrderRow<'_>],
        now: &str,
        outcome: &mut SaveOutcome,
    ) -> Result<(), StoreError> {
        let Some(first) = chunk.first() else { return Ok(()) };
        let (platform, shop) = (first.order.platform.as_str(), first.order.shop.as_str());
        let tids: Vec<i64> = chunk.iter().map(|row| row.order.tid).collect();
        let stored = read_versions(conn, self.backend, platform, shop, &tids, true).await?;

        let mut write: Vec<&OrderRow<'_>> = Vec::with_capacity(chunk.len());
        let mut absent: Vec<i64> = Vec::new();
        for row in chunk {
            match stored.get(&row.order.tid) {
                Some((version, _)) if version.as_str() > row.modified.as_str() => outcome.stale += 1,
                Some(_) => write.push(row),
                None => {
                    absent.push(row.order.tid);
                    write.push(row);
                }
            }
        }
        if write.is_empty() {
            return Ok(());
        }

        let upsert = dialect::upsert_many(
            self.backend,
            "orders",
            &ORDER_COLUMNS,
            &ORDER_KEY,
            Some(("modified", ColumnKind::Text)),
            write.len(),
        );
        let mut query = sqlx::query(&upsert);
        for row in &write {
            let order = row.order;
            query = query
                .bind(&order.platform)
                .bind(&order.shop)
                .bind(order.tid)
                .bind(&order.status)
                .bind(&order.order_type)
                .bind(&row.created)
                .bind(&row.modified)
                .bind(row.pay_time.as_deref())
                .bind(&row.payment)
                .bind(order.buyer_nick.as_deref())
                .bind(order.step_trade_status.as_deref())
                .bind(&row.raw)
                .bind(now);
        }
        query
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db(format!("upserting {} orders of {platform}/{shop}", write.len())))?;

        // The locking read cannot lock a row that does not exist. Where nothing else
        // keeps other writers out (MySQL below REPEATABLE READ), one may have inserted
        // a newer version of an absent order since, which the guarded upsert then
        // kept. Read those orders again (the upsert now holds their locks) to learn
        // whose version is stored, so that its items are not replaced by ours.
        let lost: HashSet<i64> = if absent.is_empty() {
            HashSet::new()
        } else {
            let now_stored = read_versions(conn, self.backend, platform, shop, &absent, true).await?;
            write
                .iter()
                .filter(|row| now_stored.get(&row.order.tid).is_some_and(|(v, _)| v.as_str() > row.modified.as_str()))
                .map(|row| row.order.tid)
                .collect()
        };
        write.retain(|row| !lost.contains(&row.order.tid));
        let inserted = absent.len() - lost.len();
        outcome.stale += lost.len();
        outcome.inserted += inserted;
        outcome.updated += write.len() - inserted;

        self.replace_items(conn, platform, shop, &write).await
    }

    /// Deletes the stored items of `rows` and inserts theirs.
    async fn replace_items(
        &self,
        conn: &mut AnyConnection,
        platform: &str,
        shop: &str,
        rows: &[&OrderRow<'_>],
    ) -> Result<(), StoreError> {
        let action = || format!("replacing the items of {} orders of {platform}/{shop}", rows.len());
        for part in rows.chunks(TIDS_PER_STATEMENT) {
            let sql = dialect::sql(
                self.backend,
                &format!(
                    "DELETE FROM order_items WHERE platform = ? AND shop = ? AND tid IN ({})",
                    dialect::in_list(part.len())
                ),
            );
            let mut query = sqlx::query(&sql).bind(platform).bind(shop);
            for row in part {
                query = query.bind(row.order.tid);
            }
            query.execute(&mut *conn).await.map_err(StoreError::db(action()))?;
        }

        let items: Vec<(i64, &ItemRow<'_>)> =
            rows.iter().flat_map(|row| row.items.iter().map(|item| (row.order.tid, item))).collect();
        let per_statement = dialect::max_binds(self.backend) / ITEM_COLUMNS.len();
        for part in items.chunks(per_statement) {
            let sql = dialect::insert_many(self.backend, "order_items", &ITEM_COLUMNS, part.len());
            let mut query = sqlx::query(&sql);
            for (tid, row) in part {
                let item = row.item;
                query = query
                    .bind(platform)
                    .bind(shop)
                    .bind(*tid)
                    .bind(item.oid)
                    .bind(item.num_iid)
                    .bind(item.sku_id.as_deref())
                    .bind(item.outer_sku_id.as_deref())
                    .bind(item.title.as_deref())
                    .bind(item.num)
                    .bind(&row.price)
                    .bind(&row.payment)
                    .bind(item.refund_status.as_deref())
                    .bind(item.refund_id);
            }
            query.execute(&mut *conn).await.map_err(StoreError::db(action()))?;
        }
        Ok(())
    }

    /// The position saved for a stream, or `None` when it never saved one (start
    /// from the stream's configured beginning).
    pub async fn load_cursor(
        &self,
        platform: &str,
        shop: &str,
        stream: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let sql =
            dialect::sql(self.backend, "SELECT value FROM sync_cursors WHERE platform = ? AND shop = ? AND stream = ?");
        let row: Option<(DbText,)> = sqlx::query_as(&sql)
            .bind(platform)
            .bind(shop)
            .bind(stream)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading cursor {stream} of {platform}/{shop}")))?;
        row.map(|(text,)| {
            serde_json::from_str(&text.0).map_err(|error| StoreError::InvalidValue {
                field: "sync_cursors.value".into(),
                reason: format!("cursor {stream} of {platform}/{shop}: {error}"),
            })
        })
        .transpose()
    }

    /// The stored version of each of `tids` the database holds; unknown tids are
    /// absent from the map. Lets a fetcher skip fetching what it already has.
    pub async fn order_versions(
        &self,
        platform: &str,
        shop: &str,
        tids: &[i64],
    ) -> Result<HashMap<i64, StoredVersion>, StoreError> {
        if tids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db(format!("reading order versions of {platform}/{shop}")))?;
        let stored = read_versions(&mut conn, self.backend, platform, shop, tids, false).await?;
        stored
            .into_iter()
            .map(|(tid, (modified, status))| {
                Ok((tid, StoredVersion { modified: parse_timestamp("orders.modified", &modified)?, status }))
            })
            .collect()
    }

    /// How many orders of a shop are in each status, by status name (byte order).
    pub async fn orders_summary(&self, platform: &str, shop: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT status, COUNT(*) FROM orders WHERE platform = ? AND shop = ? \
                 GROUP BY status ORDER BY status{}",
                dialect::sort_text(self.backend)
            ),
        );
        let rows: Vec<(DbText, i64)> = sqlx::query_as(&sql)
            .bind(platform)
            .bind(shop)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("counting orders of {platform}/{shop}")))?;
        rows.into_iter()
            .map(|(status, count)| {
                let count = u64::try_from(count).map_err(|_| StoreError::InvalidValue {
                    field: "orders".into(),
                    reason: format!("negative count {count}"),
                })?;
                Ok((status.0, count))
            })
            .collect()
    }

    /// Every order of a shop, by tid, with its number of items. Meant for tests and
    /// checks that compare the database with what the platform holds, not for large
    /// shops.
    pub async fn stored_orders(&self, platform: &str, shop: &str) -> Result<Vec<StoredOrder>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT o.tid, o.status, o.type, o.modified, o.payment, \
             (SELECT COUNT(*) FROM order_items i \
              WHERE i.platform = o.platform AND i.shop = o.shop AND i.tid = o.tid) \
             FROM orders o WHERE o.platform = ? AND o.shop = ? ORDER BY o.tid",
        );
        let rows: Vec<(i64, DbText, DbText, DbText, DbText, i64)> = sqlx::query_as(&sql)
            .bind(platform)
            .bind(shop)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading orders of {platform}/{shop}")))?;
        rows.into_iter()
            .map(|(tid, status, order_type, modified, payment, items)| {
                Ok(StoredOrder {
                    tid,
                    status: status.0,
                    order_type: order_type.0,
                    modified: parse_timestamp("orders.modified", &modified.0)?,
                    payment: payment.0,
                    items: usize::try_from(items).map_err(|_| StoreError::InvalidValue {
                        field: "order_items".into(),
                        reason: format!("order {tid}: negative count {items}"),
                    })?,
                })
            })
            .collect()
    }

    /// The stored items of one order, by oid.
    pub async fn order_items_of(&self, platform: &str, shop: &str, tid: i64) -> Result<Vec<OrderItem>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT oid, num_iid, sku_id, outer_sku_id, title, num, price, payment, refund_status, refund_id \
             FROM order_items WHERE platform = ? AND shop = ? AND tid = ? ORDER BY oid",
        );
        let rows: Vec<ItemDbRow> = sqlx::query_as(&sql)
            .bind(platform)
            .bind(shop)
            .bind(tid)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the items of order {tid} of {platform}/{shop}")))?;
        rows.into_iter()
            .map(|row| {
                let money =
                    |field: &str, text: DbText| text.0.parse::<Money>().map_err(|error| invalid(field, tid, error));
                Ok(OrderItem {
                    oid: row.oid,
                    num_iid: row.num_iid,
                    sku_id: row.sku_id.map(Into::into),
                    outer_sku_id: row.outer_sku_id.map(Into::into),
                    title: row.title.map(Into::into),
                    num: row.num,
                    price: money("order_items.price", row.price)?,
                    payment: money("order_items.payment", row.payment)?,
                    refund_status: row.refund_status.map(Into::into),
                    refund_id: row.refund_id,
                })
            })
            .collect()
    }

    /// How many orders of the shop were created in `[start, end)` (half-open, so
    /// adjacent windows count every order once), per the `created` column. What
    /// reconciliation compares with the platform's count for the same window.
    pub async fn count_orders_created(
        &self,
        platform: &str,
        shop: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT COUNT(*) FROM orders WHERE platform = ? AND shop = ? AND created >= ? AND created < ?",
        );
        let (count,): (i64,) = sqlx::query_as(&sql)
            .bind(platform)
            .bind(shop)
            .bind(timestamp_text(start))
            .bind(timestamp_text(end))
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::db(format!("counting orders of {platform}/{shop} created in a window")))?;
        u64::try_from(count)
            .map_err(|_| StoreError::InvalidValue { field: "orders".into(), reason: format!("negative count {count}") })
    }

    /// The tids of the shop's orders created in `[start, end)`, ascending. Lets
    /// reconciliation tell which of the platform's orders the store lacks.
    pub async fn tids_created(
        &self,
        platform: &str,
        shop: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT tid FROM orders WHERE platform = ? AND shop = ? AND created >= ? AND created < ? ORDER BY tid",
        );
        let rows: Vec<(i64,)> = sqlx::query_as(&sql)
            .bind(platform)
            .bind(shop)
            .bind(timestamp_text(start))
            .bind(timestamp_text(end))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading tids of {platform}/{shop} created in a window")))?;
        Ok(rows.into_iter().map(|(tid,)| tid).collect())
    }
}

#[derive(sqlx::FromRow)]
struct ItemDbRow {
    oid: i64,
    num_iid: Option<i64>,
    sku_id: Option<DbText>,
    outer_sku_id: Option<DbText>,
    title: Option<DbText>,
    num: i64,
    price: DbText,
    payment: DbText,
    refund_status: Option<DbText>,
    refund_id: Option<i64>,
}

/// The advisory lock key of a shop (see [`dialect::lock_key`]): FNV-1a over the
/// names, fixed so that every orderflow version and process agrees on it. Two shops
/// sharing a key merely take turns.
fn shop_lock_key(platform: &str, shop: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "orderflow.orders".bytes().chain([0]).chain(platform.bytes()).chain([0]).chain(shop.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// Makes the transaction `conn` take turns with other writers of the same shops
/// (see [`dialect::lock_key`]); a no-op where the backend needs none.
pub(super) async fn lock_shops<'a>(
    conn: &mut AnyConnection,
    backend: super::Backend,
    shops: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), StoreError> {
    let Some(lock) = dialect::lock_key(backend) else { return Ok(()) };
    // In one order, so that two batches spanning the same shops cannot each hold
    // the lock the other waits for.
    let mut keys: Vec<i64> = shops.map(|(platform, shop)| shop_lock_key(platform, shop)).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query(&lock)
            .bind(key)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("waiting for other writers of the same shop"))?;
    }
    Ok(())
}

/// Writes `cursors`, whose values [`cursor_text`] checked into `values`, inside
/// the transaction `conn` that writes what they cover.
pub(super) async fn save_cursors(
    conn: &mut AnyConnection,
    backend: super::Backend,
    cursors: &[Cursor],
    values: Vec<String>,
    now: &str,
) -> Result<(), StoreError> {
    let upsert = dialect::upsert(backend, "sync_cursors", &CURSOR_COLUMNS, &CURSOR_KEY, None);
    for (cursor, value) in cursors.iter().zip(values) {
        sqlx::query(&upsert)
            .bind(&cursor.platform)
            .bind(&cursor.shop)
            .bind(&cursor.stream)
            .bind(value)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db(format!(
                "saving cursor {} of {}/{}",
                cursor.stream, cursor.platform, cursor.shop
            )))?;
    }
    Ok(())
}

/// Checks a cursor and returns its value as JSON text.
pub(super) fn cursor_text(cursor: &Cursor) -> Result<String, StoreError> {
    let check = |field: &str, value: &str, max: usize| {
        let len = value.chars().count();
        if len > max {
            Err(StoreError::InvalidValue {
                field: field.to_owned(),
                reason: format!("cursor {}: {len} characters, at most {max} fit", cursor.stream),
            })
        } else {
            Ok(())
        }
    };
    check("sync_cursors.platform", &cursor.platform, PLATFORM_LEN)?;
    check("sync_cursors.shop", &cursor.shop, SHOP_LEN)?;
    check("sync_cursors.stream", &cursor.stream, STREAM_LEN)?;
    serde_json::to_string(&cursor.value).map_err(|error| StoreError::InvalidValue {
        field: "sync_cursors.value".into(),
        reason: format!("cursor {}: {error}", cursor.stream),
    })
}

/// The stored `modified` text and status of each of `tids` the database holds, in as many
/// statements as the list needs. With `lock`, the rows stay locked until the
/// transaction `conn` is in ends (see [`dialect::lock_rows`]).
async fn read_versions(
    conn: &mut AnyConnection,
    backend: super::Backend,
    platform: &str,
    shop: &str,
    tids: &[i64],
    lock: bool,
) -> Result<HashMap<i64, (String, String)>, StoreError> {
    let mut versions = HashMap::with_capacity(tids.len());
    for part in tids.chunks(TIDS_PER_STATEMENT) {
        let sql = dialect::sql(
            backend,
            &format!(
                "SELECT tid, modified, status FROM orders WHERE platform = ? AND shop = ? AND tid IN ({}){}",
                dialect::in_list(part.len()),
                if lock { dialect::lock_rows(backend) } else { "" }
            ),
        );
        let mut query = sqlx::query_as::<_, (i64, DbText, DbText)>(&sql).bind(platform).bind(shop);
        for tid in part {
            query = query.bind(*tid);
        }
        let rows = query
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db(format!("reading stored versions of orders of {platform}/{shop}")))?;
        versions.extend(rows.into_iter().map(|(tid, modified, status)| (tid, (modified.0, status.0))));
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn order(tid: i64, minute: u32, oids: &[i64]) -> Order {
        Order {
            platform: "taobao".into(),
            shop: "s1".into(),
            tid,
            status: "WAIT_SELLER_SEND_GOODS".into(),
            order_type: "fixed".into(),
            created: Utc.with_ymd_and_hms(2024, 5, 1, 8, 0, 0).unwrap(),
            modified: Utc.with_ymd_and_hms(2024, 5, 1, 8, minute, 0).unwrap(),
            pay_time: None,
            payment: Money(100),
            buyer_nick: None,
            step_trade_status: None,
            items: oids
                .iter()
                .map(|&oid| OrderItem {
                    oid,
                    num_iid: None,
                    sku_id: None,
                    outer_sku_id: None,
                    title: None,
                    num: 1,
                    price: Money(100),
                    payment: Money(100),
                    refund_status: None,
                    refund_id: None,
                })
                .collect(),
            raw: serde_json::json!({"tid": tid}),
        }
    }

    #[test]
    fn keeps_the_newest_copy_of_an_order() {
        let orders = [order(1, 5, &[]), order(2, 1, &[]), order(1, 9, &[]), order(1, 2, &[]), order(2, 1, &[7])];
        let rows = orders.iter().map(OrderRow::new).collect::<Result<Vec<_>, _>>().unwrap();
        let (kept, dropped) = newest_per_key(rows);
        assert_eq!(dropped, 3);
        let kept: Vec<(i64, &str, usize)> =
            kept.iter().map(|r| (r.order.tid, r.modified.as_str(), r.items.len())).collect();
        // Of equal versions the later one wins.
        assert_eq!(kept, [(1, "2024-05-01T08:09:00.000Z", 0), (2, "2024-05-01T08:01:00.000Z", 1)]);
    }

    #[test]
    fn refuses_an_oid_shared_by_two_lines() {
        fn rows(orders: &[Order]) -> Vec<OrderRow<'_>> {
            orders.iter().map(|o| OrderRow::new(o).unwrap()).collect()
        }
        assert!(check_oids(&rows(&[order(1, 0, &[10, 11]), order(2, 0, &[12])])).is_ok());
        let error = check_oids(&rows(&[order(1, 0, &[10]), order(2, 0, &[10])])).unwrap_err().to_string();
        assert!(error.contains("oid 10 also appears in order 1"), "{error}");
        let error = check_oids(&rows(&[order(1, 0, &[10, 10])])).unwrap_err().to_string();
        assert!(error.contains("appears twice"), "{error}");
    }

    #[test]
    fn refuses_values_that_would_not_fit() {
        let mut long = order(1, 0, &[]);
        long.platform = "p".repeat(65);
        let error = OrderRow::new(&long).err().unwrap().to_string();
        assert!(error.contains("orders.platform") && error.contains("65 characters"), "{error}");
        let mut far = order(1, 0, &[]);
        far.modified = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
        assert!(OrderRow::new(&far).is_err());
        // 191 multi-byte characters fit: the limit counts characters.
        let mut wide = order(1, 0, &[]);
        wide.shop = "店".repeat(191);
        assert!(OrderRow::new(&wide).is_ok());
    }

    #[test]
    fn chunks_by_shop_rows_and_bytes() {
        let mut orders: Vec<Order> = (0..7).map(|tid| order(tid, 0, &[])).collect();
        orders[3].shop = "s2".into();
        orders[6].raw = serde_json::Value::String("x".repeat(BYTES_PER_STATEMENT));
        let rows = orders.iter().map(|o| OrderRow::new(o).unwrap()).collect::<Vec<_>>();
        let chunks: Vec<Vec<i64>> =
            statement_chunks(&rows, 2).iter().map(|c| c.iter().map(|r| r.order.tid).collect()).collect();
        assert_eq!(chunks, [vec![0, 1], vec![2, 4], vec![5], vec![6], vec![3]]);
    }
}
