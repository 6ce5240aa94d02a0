//! The merchant's inventory: on hand, frozen by presale orders, on order; and the
//! freezes of presale order lines with the movements they make.
//!
//! A freeze is one row of `stock_freezes` per order line, keyed by (platform, shop,
//! oid). [`Store::apply_stock_changes`] moves it `frozen` → `released` or `deducted`
//! only from `frozen`, by a conditional write whose affected-row count says whether
//! this call made the move. That is what makes applying a change twice, or from two
//! runs at once, count once: the database decides who wins, not a read beforehand.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::health::{check_len, check_shop};
use super::{Store, parse_timestamp, timestamp_text};

/// The longest SKU the `stock` table keeps (a key on MySQL).
const SKU_LEN: usize = 191;

/// One SKU's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockLevel {
    /// The SKU: the merchant's `outer_sku_id`, else the platform's `sku_id`.
    pub sku: String,
    /// Units in the warehouse.
    pub on_hand: i64,
    /// Units reserved by presale orders not shipped yet.
    #[serde(default)]
    pub frozen: i64,
    /// Units suppliers are bringing.
    #[serde(default)]
    pub on_order: i64,
}

impl StockLevel {
    /// What can still be sold: on hand minus frozen.
    pub fn available(&self) -> i64 {
        self.on_hand - self.frozen
    }
}

#[derive(sqlx::FromRow)]
struct StockRow {
    sku: DbText,
    on_hand: i64,
    frozen: i64,
    on_order: i64,
}

impl Store {
    /// Sets `on_hand` and `on_order` of each SKU from a count (an import),
    /// keeping what presale orders froze; new SKUs start with nothing frozen.
    /// One transaction: a bad row leaves the table as it was.
    pub async fn import_stock(&self, levels: &[StockLevel], at: DateTime<Utc>) -> Result<(), StoreError> {
        for level in levels {
            check_len("stock.sku", &level.sku, SKU_LEN)?;
            if level.on_hand < 0 || level.on_order < 0 {
                return Err(StoreError::InvalidValue {
                    field: "stock".into(),
                    reason: format!("SKU {:?}: on_hand and on_order cannot be negative", level.sku),
                });
            }
        }
        let sql = dialect::upsert(self.backend, "stock", &["sku", "on_hand", "on_order", "updated_at"], &["sku"], None);
        let mut tx = self.pool.begin().await.map_err(StoreError::db("importing stock"))?;
        for level in levels {
            sqlx::query(&sql)
                .bind(&level.sku)
                .bind(level.on_hand)
                .bind(level.on_order)
                .bind(timestamp_text(at))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(format!("importing the stock of SKU {:?}", level.sku)))?;
        }
        tx.commit().await.map_err(StoreError::db("importing stock"))
    }

    /// Every SKU's stock, by SKU.
    pub async fn stock_levels(&self) -> Result<HashMap<String, StockLevel>, StoreError> {
        let rows = sqlx::query_as::<_, StockRow>("SELECT sku, on_hand, frozen, on_order FROM stock")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading stock"))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let sku: String = row.sku.into();
                (sku.clone(), StockLevel { sku, on_hand: row.on_hand, frozen: row.frozen, on_order: row.on_order })
            })
            .collect())
    }
}

/// One order line, as the freezes know it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrderLine {
    /// The platform's name (`taobao`).
    pub platform: String,
    /// The shop's name in `orderflow.yaml`.
    pub shop: String,
    /// The order's id.
    pub tid: i64,
    /// The line's id: a line freezes at most once.
    pub oid: i64,
}

/// A change to an order line's freeze, for [`Store::apply_stock_changes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StockChange {
    /// Reserve `quantity` units of `sku` for the line, unless it froze before
    /// (whatever its state now: a released line does not freeze again).
    Freeze {
        /// The line.
        line: OrderLine,
        /// The SKU the line takes.
        sku: String,
        /// Units; more than zero.
        quantity: i64,
    },
    /// Give the line's frozen units back (refunded, closed). Only from `frozen`.
    Release(OrderLine),
    /// The line shipped: its frozen units leave the warehouse. Only from `frozen`.
    Deduct(OrderLine),
}

impl StockChange {
    /// The line it changes.
    pub fn line(&self) -> &OrderLine {
        match self {
            StockChange::Freeze { line, .. } | StockChange::Release(line) | StockChange::Deduct(line) => line,
        }
    }
}

/// Where a line's freeze stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FreezeState {
    /// Its units are reserved.
    Frozen,
    /// Its units were given back.
    Released,
    /// Its units shipped.
    Deducted,
}

impl FreezeState {
    /// The word stored in `stock_freezes.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            FreezeState::Frozen => "frozen",
            FreezeState::Released => "released",
            FreezeState::Deducted => "deducted",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        [FreezeState::Frozen, FreezeState::Released, FreezeState::Deducted]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| invalid("stock_freezes.state", format!("unknown state {text:?}")))
    }
}

/// What a movement did to `stock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MovementKind {
    /// Added to `frozen`.
    Freeze,
    /// Took from `frozen`.
    Release,
    /// Took from `frozen` and `on_hand`.
    Deduct,
}

impl MovementKind {
    /// The word stored in `stock_movements.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Freeze => "freeze",
            MovementKind::Release => "release",
            MovementKind::Deduct => "deduct",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        [MovementKind::Freeze, MovementKind::Release, MovementKind::Deduct]
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| invalid("stock_movements.kind", format!("unknown kind {text:?}")))
    }
}

impl fmt::Display for MovementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `stock_freezes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freeze {
    /// The line.
    pub line: OrderLine,
    /// The SKU it froze.
    pub sku: String,
    /// The units it froze.
    pub quantity: i64,
    /// Where it stands.
    pub state: FreezeState,
}

/// One row of `stock_movements`: a change a freeze made to `stock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// The line.
    pub line: OrderLine,
    /// The SKU.
    pub sku: String,
    /// What it did.
    pub kind: MovementKind,
    /// Units, always positive; `kind` says which way.
    pub quantity: i64,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The run that made it, if a run did.
    pub run_id: Option<String>,
}

/// What [`Store::apply_stock_changes`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedStock {
    /// The movements made, in the order of the changes; a change that found
    /// its line in another state made none.
    pub movements: Vec<Movement>,
    /// SKUs a freeze met that `stock` did not hold: each got a row with
    /// nothing on hand, so the reservation is kept and the count shows
    /// negative availability until stock is imported.
    pub new_skus: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct FreezeRow {
    platform: DbText,
    shop: DbText,
    tid: i64,
    oid: i64,
    sku: DbText,
    quantity: i64,
    state: DbText,
}

#[derive(sqlx::FromRow)]
struct MovementRow {
    platform: DbText,
    shop: DbText,
    tid: i64,
    oid: i64,
    sku: DbText,
    kind: DbText,
    quantity: i64,
    created_at: DbText,
    run_id: Option<DbText>,
}

fn invalid(field: &str, reason: String) -> StoreError {
    StoreError::InvalidValue { field: field.to_owned(), reason }
}

/// The longest run id `stock_movements` keeps (a VARCHAR on MySQL).
const RUN_ID_LEN: usize = 64;

const FREEZE_COLUMNS: [&str; 9] =
    ["platform", "shop", "tid", "oid", "sku", "quantity", "state", "created_at", "updated_at"];
const MOVEMENT_COLUMNS: [&str; 9] =
    ["platform", "shop", "tid", "oid", "sku", "kind", "quantity", "created_at", "run_id"];

impl Store {
    /// Applies `changes` in one transaction and returns the movements they made.
    ///
    /// Idempotent and safe against concurrent runs: a freeze inserts its line's
    /// row only if there is none (insert-ignore on the key), a release or
    /// deduction moves the row only from `frozen` (a conditional update); only a
    /// write that changed a row moves stock. Two runs applying the same change at
    /// once therefore move stock once: the second waits on the first's row lock
    /// and then finds nothing to do. `frozen` and `on_hand` never go below zero
    /// (an import may have set `on_hand` below what later ships).
    ///
    /// Rows are locked in one order (freeze rows by line, then stock rows by
    /// SKU) so that two calls cannot deadlock on each other; a lock conflict the
    /// database still reports fails the call with a transient error, and calling
    /// again is safe.
    pub async fn apply_stock_changes(
        &self,
        changes: &[StockChange],
        run_id: Option<&str>,
    ) -> Result<AppliedStock, StoreError> {
        for change in changes {
            let line = change.line();
            check_shop("stock_freezes", &line.platform, &line.shop)?;
            if let StockChange::Freeze { sku, quantity, .. } = change {
                check_len("stock_freezes.sku", sku, SKU_LEN)?;
                if *quantity <= 0 {
                    return Err(invalid(
                        "stock_freezes.quantity",
                        format!("line {}: {quantity} units cannot be frozen", line.oid),
                    ));
                }
            }
        }
        if let Some(run_id) = run_id {
            check_len("stock_movements.run_id", run_id, RUN_ID_LEN)?;
        }
        if changes.is_empty() {
            return Ok(AppliedStock::default());
        }
        let now = Utc::now();
        let now_text = timestamp_text(now);
        // Stable: the changes of one line keep their order (a freeze, then its release).
        let mut ordered: Vec<(usize, &StockChange)> = changes.iter().enumerate().collect();
        ordered.sort_by(|a, b| a.1.line().cmp(b.1.line()));

        let mut tx = self.begin_write().await?;
        let insert_freeze = dialect::insert_ignore(self.backend, "stock_freezes", &FREEZE_COLUMNS);
        let transition = dialect::sql(
            self.backend,
            "UPDATE stock_freezes SET state = ?, updated_at = ? \
             WHERE platform = ? AND shop = ? AND oid = ? AND state = ?",
        );
        let read_freeze = dialect::sql(
            self.backend,
            "SELECT platform, shop, tid, oid, sku, quantity, state FROM stock_freezes \
             WHERE platform = ? AND shop = ? AND oid = ?",
        );
        let mut made: Vec<(usize, Movement)> = Vec::new();
        for (index, change) in ordered {
            let line = change.line();
            let movement = |line: OrderLine, sku: String, kind, quantity| Movement {
                line,
                sku,
                kind,
                quantity,
                created_at: now,
                run_id: run_id.map(str::to_owned),
            };
            match change {
                StockChange::Freeze { sku, quantity, .. } => {
                    let inserted = sqlx::query(&insert_freeze)
                        .bind(&line.platform)
                        .bind(&line.shop)
                        .bind(line.tid)
                        .bind(line.oid)
                        .bind(sku)
                        .bind(*quantity)
                        .bind(FreezeState::Frozen.as_str())
                        .bind(&now_text)
                        .bind(&now_text)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db(format!("freezing line {}", line.oid)))?;
                    if inserted.rows_affected() == 1 {
                        made.push((index, movement(line.clone(), sku.clone(), MovementKind::Freeze, *quantity)));
                    }
                }
                StockChange::Release(_) | StockChange::Deduct(_) => {
                    let (state, kind) = match change {
                        StockChange::Deduct(_) => (FreezeState::Deducted, MovementKind::Deduct),
                        _ => (FreezeState::Released, MovementKind::Release),
                    };
                    let moved = sqlx::query(&transition)
                        .bind(state.as_str())
                        .bind(&now_text)
                        .bind(&line.platform)
                        .bind(&line.shop)
                        .bind(line.oid)
                        .bind(FreezeState::Frozen.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db(format!(
                            "moving the freeze of line {} to {}",
                            line.oid,
                            state.as_str()
                        )))?;
                    if moved.rows_affected() == 1 {
                        // The row is ours until commit: what it froze is what goes back.
                        let row = sqlx::query_as::<_, FreezeRow>(&read_freeze)
                            .bind(&line.platform)
                            .bind(&line.shop)
                            .bind(line.oid)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(StoreError::db(format!("reading the freeze of line {}", line.oid)))?;
                        let freeze = Freeze::try_from(row)?;
                        made.push((index, movement(freeze.line, freeze.sku, kind, freeze.quantity)));
                    }
                }
            }
        }

        // Net change per SKU, applied in SKU order (see the lock order above).
        let mut deltas: BTreeMap<&str, (i64, i64, bool)> = BTreeMap::new();
        for (_, m) in &made {
            let entry = deltas.entry(m.sku.as_str()).or_default();
            match m.kind {
                MovementKind::Freeze => {
                    entry.0 += m.quantity;
                    entry.2 = true;
                }
                MovementKind::Release => entry.0 -= m.quantity,
                MovementKind::Deduct => {
                    entry.0 -= m.quantity;
                    entry.1 -= m.quantity;
                }
            }
        }
        let insert_stock =
            dialect::insert_ignore(self.backend, "stock", &["sku", "on_hand", "frozen", "on_order", "updated_at"]);
        let update_stock = dialect::sql(
            self.backend,
            "UPDATE stock SET \
             frozen = CASE WHEN frozen + ? < 0 THEN 0 ELSE frozen + ? END, \
             on_hand = CASE WHEN on_hand + ? < 0 THEN 0 ELSE on_hand + ? END, \
             updated_at = ? WHERE sku = ?",
        );
        let mut new_skus = Vec::new();
        for (sku, (frozen, on_hand, froze)) in deltas {
            if froze {
                let created = sqlx::query(&insert_stock)
                    .bind(sku)
                    .bind(0_i64)
                    .bind(0_i64)
                    .bind(0_i64)
                    .bind(&now_text)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(format!("adding SKU {sku:?} to stock")))?;
                if created.rows_affected() == 1 {
                    new_skus.push(sku.to_owned());
                }
            }
            sqlx::query(&update_stock)
                .bind(frozen)
                .bind(frozen)
                .bind(on_hand)
                .bind(on_hand)
                .bind(&now_text)
                .bind(sku)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(format!("moving the stock of SKU {sku:?}")))?;
        }

        made.sort_by_key(|(index, _)| *index);
        let insert_movement = dialect::insert_many(self.backend, "stock_movements", &MOVEMENT_COLUMNS, 1);
        for (_, m) in &made {
            sqlx::query(&insert_movement)
                .bind(&m.line.platform)
                .bind(&m.line.shop)
                .bind(m.line.tid)
                .bind(m.line.oid)
                .bind(&m.sku)
                .bind(m.kind.as_str())
                .bind(m.quantity)
                .bind(&now_text)
                .bind(m.run_id.as_deref())
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(format!("recording the {} of line {}", m.kind, m.line.oid)))?;
        }
        tx.commit().await.map_err(StoreError::db("committing stock changes"))?;
        Ok(AppliedStock { movements: made.into_iter().map(|(_, m)| m).collect(), new_skus })
    }

    /// The movements of a shop's orders, oldest first: of order `tid`, or of
    /// every order when `None`.
    pub async fn stock_movements(
        &self,
        platform: &str,
        shop: &str,
        tid: Option<i64>,
    ) -> Result<Vec<Movement>, StoreError> {
        let filter = if tid.is_some() { " AND tid = ?" } else { "" };
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT platform, shop, tid, oid, sku, kind, quantity, created_at, run_id FROM stock_movements \
                 WHERE platform = ? AND shop = ?{filter} ORDER BY id"
            ),
        );
        let mut query = sqlx::query_as::<_, MovementRow>(&sql).bind(platform).bind(shop);
        if let Some(tid) = tid {
            query = query.bind(tid);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(StoreError::db("reading stock movements"))?;
        rows.into_iter()
            .map(|row| {
                Ok(Movement {
                    line: OrderLine {
                        platform: row.platform.into(),
                        shop: row.shop.into(),
                        tid: row.tid,
                        oid: row.oid,
                    },
                    sku: row.sku.into(),
                    kind: MovementKind::parse(&row.kind.0)?,
                    quantity: row.quantity,
                    created_at: parse_timestamp("stock_movements.created_at", &row.created_at.0)?,
                    run_id: row.run_id.map(Into::into),
                })
            })
            .collect()
    }

    /// The freezes of a shop's order lines, by line: of order `tid`, or of every
    /// order when `None`.
    pub async fn freezes_of(&self, platform: &str, shop: &str, tid: Option<i64>) -> Result<Vec<Freeze>, StoreError> {
        let filter = if tid.is_some() { " AND tid = ?" } else { "" };
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT platform, shop, tid, oid, sku, quantity, state FROM stock_freezes \
                 WHERE platform = ? AND shop = ?{filter} ORDER BY oid"
            ),
        );
        let mut query = sqlx::query_as::<_, FreezeRow>(&sql).bind(platform).bind(shop);
        if let Some(tid) = tid {
            query = query.bind(tid);
        }
        let rows = query.fetch_all(&self.pool).await.map_err(StoreError::db("reading stock freezes"))?;
        rows.into_iter().map(Freeze::try_from).collect()
    }
}

impl TryFrom<FreezeRow> for Freeze {
    type Error = StoreError;

    fn try_from(row: FreezeRow) -> Result<Self, StoreError> {
        Ok(Freeze {
            line: OrderLine { platform: row.platform.into(), shop: row.shop.into(), tid: row.tid, oid: row.oid },
            sku: row.sku.into(),
            quantity: row.quantity,
            state: FreezeState::parse(&row.state.0)?,
        })
    }
}
