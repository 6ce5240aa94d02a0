//! What restock suggestions read and write: daily sales per SKU from the
//! stored orders, and the `restock_suggestions` table.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::health::check_len;
use super::{Store, parse_timestamp, timestamp_text};

const NAME_LEN: usize = 64;
const SHOP_LEN: usize = 191;
const SKU_LEN: usize = 191;

/// Order statuses whose lines never sold: closed before payment or after a
/// full refund.
const CLOSED_STATUSES: [&str; 2] = ["TRADE_CLOSED", "TRADE_CLOSED_BY_TAOBAO"];
/// Refund states that leave a line sold: no refund, or one the buyer or the
/// shop closed. Any other state (in progress or succeeded) takes it out.
const KEPT_REFUND_STATUSES: [&str; 2] = ["NO_REFUND", "CLOSED"];

const SUGGESTION_COLUMNS: &str = "run_id, platform, shop, sku, model, mape_model, mape_naive, forecast_7d, \
     lead_time_days, demand_over_lead, safety_stock, available, on_order, suggested, created_at";

/// One SKU's restock suggestion from one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestockSuggestion {
    /// The run that computed it.
    pub run_id: String,
    /// The platform's name (`taobao`).
    pub platform: String,
    /// The shop's name in `orderflow.yaml`.
    pub shop: String,
    /// The SKU: the merchant's `outer_sku_id`, else the platform's `sku_id`.
    pub sku: String,
    /// The forecasting model chosen (`naive`, `seasonal_mean`, `holt_winters`).
    pub model: String,
    /// The chosen model's back-test MAPE in percent, if it had one.
    pub mape_model: Option<f64>,
    /// The naive baseline's back-test MAPE in percent, if it had one.
    pub mape_naive: Option<f64>,
    /// Units forecast for each of the next 7 days.
    pub forecast_7d: Vec<f64>,
    /// Days until an order placed now arrives.
    pub lead_time_days: i64,
    /// Units forecast to sell over the lead time.
    pub demand_over_lead: f64,
    /// Units kept against forecast error.
    pub safety_stock: i64,
    /// Units that can still be sold (on hand minus frozen).
    pub available: i64,
    /// Units suppliers are bringing.
    pub on_order: i64,
    /// Units to order: max(0, ceil(demand + safety − available − on order)).
    pub suggested: i64,
    /// When it was computed.
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SaleRow {
    created: DbText,
    outer_sku_id: Option<DbText>,
    sku_id: Option<DbText>,
    num: i64,
}

#[derive(sqlx::FromRow)]
struct SuggestionRow {
    run_id: DbText,
    platform: DbText,
    shop: DbText,
    sku: DbText,
    model: DbText,
    mape_model: Option<f64>,
    mape_naive: Option<f64>,
    forecast_7d: DbText,
    lead_time_days: i64,
    demand_over_lead: f64,
    safety_stock: i64,
    available: i64,
    on_order: i64,
    suggested: i64,
    created_at: DbText,
}

impl TryFrom<SuggestionRow> for RestockSuggestion {
    type Error = StoreError;

    fn try_from(row: SuggestionRow) -> Result<Self, StoreError> {
        let forecast: String = row.forecast_7d.into();
        let forecast_7d = serde_json::from_str(&forecast).map_err(|error| StoreError::InvalidValue {
            field: "restock_suggestions.forecast_7d".into(),
            reason: format!("{forecast:?} is not a JSON array of numbers: {error}"),
        })?;
        let created_at: String = row.created_at.into();
        Ok(Self {
            run_id: row.run_id.into(),
            platform: row.platform.into(),
            shop: row.shop.into(),
            sku: row.sku.into(),
            model: row.model.into(),
            mape_model: row.mape_model,
            mape_naive: row.mape_naive,
            forecast_7d,
            lead_time_days: row.lead_time_days,
            demand_over_lead: row.demand_over_lead,
            safety_stock: row.safety_stock,
            available: row.available,
            on_order: row.on_order,
            suggested: row.suggested,
            created_at: parse_timestamp("restock_suggestions.created_at", &created_at)?,
        })
    }
}

/// Midnight starting `date` in `timezone`, in UTC. A zone that skips
/// midnight starts the day at its first instant.
fn midnight(timezone: chrono_tz::Tz, date: NaiveDate) -> DateTime<Utc> {
    let local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    timezone
        .from_local_datetime(&local)
        .earliest()
        .unwrap_or_else(|| timezone.from_utc_datetime(&local))
        .with_timezone(&Utc)
}

impl Store {
    /// Units sold per SKU per day of a shop, for the `days` days from
    /// `first_day` (days in `timezone`): index 0 is `first_day`. Counts the
    /// `num` of every order line except lines of closed orders
    /// (`TRADE_CLOSED`, `TRADE_CLOSED_BY_TAOBAO`) and lines with a refund in
    /// progress or succeeded. An order's day is the day it was created. Only
    /// SKUs that sold in the range appear.
    ///
    /// The rows are bucketed here rather than in SQL: the three backends
    /// spell "the date of this text timestamp in that zone" three ways, and
    /// the rows (one per line) are few enough to read.
    pub async fn daily_sales(
        &self,
        platform: &str,
        shop: &str,
        timezone: chrono_tz::Tz,
        first_day: NaiveDate,
        days: u32,
    ) -> Result<BTreeMap<String, Vec<u64>>, StoreError> {
        let start = midnight(timezone, first_day);
        let end = midnight(timezone, first_day + chrono::Days::new(u64::from(days)));
        let sql = dialect::sql(
            self.backend,
            "SELECT o.created, i.outer_sku_id, i.sku_id, i.num FROM order_items i \
             JOIN orders o ON o.platform = i.platform AND o.shop = i.shop AND o.tid = i.tid \
             WHERE o.platform = ? AND o.shop = ? AND o.created >= ? AND o.created < ? \
             AND o.status <> ? AND o.status <> ? \
             AND (i.refund_status IS NULL OR i.refund_status = ? OR i.refund_status = ?)",
        );
        let rows = sqlx::query_as::<_, SaleRow>(&sql)
            .bind(platform)
            .bind(shop)
            .bind(timestamp_text(start))
            .bind(timestamp_text(end))
            .bind(CLOSED_STATUSES[0])
            .bind(CLOSED_STATUSES[1])
            .bind(KEPT_REFUND_STATUSES[0])
            .bind(KEPT_REFUND_STATUSES[1])
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the daily sales of {platform}/{shop}")))?;
        let mut sales: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for row in rows {
            let sku = [row.outer_sku_id, row.sku_id].into_iter().flatten().map(String::from).find(|s| !s.is_empty());
            // A line without any SKU (a product without variants and no
            // merchant code) cannot be restocked by SKU.
            let Some(sku) = sku else { continue };
            let created: String = row.created.into();
            let created = parse_timestamp("orders.created", &created)?;
            let day = (created.with_timezone(&timezone).date_naive() - first_day).num_days();
            let Some(day) = usize::try_from(day).ok().filter(|d| *d < days as usize) else { continue };
            let series = sales.entry(sku).or_insert_with(|| vec![0; days as usize]);
            series[day] += u64::try_from(row.num).unwrap_or(0);
        }
        Ok(sales)
    }

    /// Stores one run's suggestions, replacing any the same run stored for
    /// the same shop before (a retried run writes them again). One
    /// transaction.
    pub async fn record_restock_suggestions(&self, suggestions: &[RestockSuggestion]) -> Result<(), StoreError> {
        for s in suggestions {
            check_len("restock_suggestions.run_id", &s.run_id, NAME_LEN)?;
            check_len("restock_suggestions.platform", &s.platform, NAME_LEN)?;
            check_len("restock_suggestions.shop", &s.shop, SHOP_LEN)?;
            check_len("restock_suggestions.sku", &s.sku, SKU_LEN)?;
            check_len("restock_suggestions.model", &s.model, NAME_LEN)?;
        }
        let mut tx = self.begin_write().await?;
        let delete = dialect::sql(
            self.backend,
            "DELETE FROM restock_suggestions WHERE run_id = ? AND platform = ? AND shop = ?",
        );
        let mut cleared = std::collections::HashSet::new();
        for s in suggestions {
            if cleared.insert((&s.run_id, &s.platform, &s.shop)) {
                sqlx::query(&delete)
                    .bind(&s.run_id)
                    .bind(&s.platform)
                    .bind(&s.shop)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db("clearing a run's restock suggestions"))?;
            }
        }
        let insert = dialect::sql(
            self.backend,
            &format!(
                "INSERT INTO restock_suggestions ({SUGGESTION_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
        );
        for s in suggestions {
            let forecast = serde_json::to_string(&s.forecast_7d).map_err(|error| StoreError::InvalidValue {
                field: "restock_suggestions.forecast_7d".into(),
                reason: error.to_string(),
            })?;
            sqlx::query(&insert)
                .bind(&s.run_id)
                .bind(&s.platform)
                .bind(&s.shop)
                .bind(&s.sku)
                .bind(&s.model)
                .bind(s.mape_model)
                .bind(s.mape_naive)
                .bind(forecast)
                .bind(s.lead_time_days)
                .bind(s.demand_over_lead)
                .bind(s.safety_stock)
                .bind(s.available)
                .bind(s.on_order)
                .bind(s.suggested)
                .bind(timestamp_text(s.created_at))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(format!("recording the restock suggestion of SKU {:?}", s.sku)))?;
        }
        tx.commit().await.map_err(StoreError::db("recording restock suggestions"))
    }

    /// The suggestions one run stored, by SKU.
    pub async fn restock_suggestions(&self, run_id: &str) -> Result<Vec<RestockSuggestion>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            &format!("SELECT {SUGGESTION_COLUMNS} FROM restock_suggestions WHERE run_id = ? ORDER BY sku"),
        );
        let rows = sqlx::query_as::<_, SuggestionRow>(&sql)
            .bind(run_id)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the restock suggestions of run {run_id}")))?;
        rows.into_iter().map(RestockSuggestion::try_from).collect()
    }
}
