//! The merchant's inventory: on hand, frozen by presale orders, on order.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::health::check_len;
use super::{Store, timestamp_text};

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
