//! What the web page, `/metrics` and `orderflow status` read that no node
//! needs: every flow's cursor of a stream (for the sync lag), the latest
//! restock suggestions and the open dead letters of each flow.

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::{Cursor, RestockSuggestion, Store};

impl Store {
    /// Every flow's cursor of the stream `base` (e.g. `orders.increment`):
    /// the streams `<base>/<flow>/<node>`, by platform, shop and stream. The
    /// shop's own `base` row, a backfill's handover point, is not one.
    pub async fn flow_cursors(&self, base: &str) -> Result<Vec<Cursor>, StoreError> {
        let text = dialect::sort_text(self.backend);
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT platform, shop, stream, value FROM sync_cursors WHERE stream LIKE ? \
                 ORDER BY platform{text}, shop{text}, stream{text}"
            ),
        );
        let rows: Vec<(DbText, DbText, DbText, DbText)> = sqlx::query_as(&sql)
            .bind(format!("{base}/%"))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the cursors of {base}")))?;
        rows.into_iter()
            .map(|(platform, shop, stream, value)| {
                let value = serde_json::from_str(&value.0).map_err(|error| StoreError::InvalidValue {
                    field: "sync_cursors.value".into(),
                    reason: format!("cursor {} of {}/{}: {error}", stream.0, platform.0, shop.0),
                })?;
                Ok(Cursor { platform: platform.into(), shop: shop.into(), stream: stream.into(), value })
            })
            .collect()
    }

    /// The suggestions of the latest run that stored any, by SKU; empty when
    /// no run did.
    pub async fn latest_restock_suggestions(&self) -> Result<Vec<RestockSuggestion>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            "SELECT run_id FROM restock_suggestions ORDER BY created_at DESC, id DESC LIMIT 1",
        );
        let latest: Option<(DbText,)> = sqlx::query_as(&sql)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db("reading the latest restock run"))?;
        match latest {
            Some((run_id,)) => self.restock_suggestions(&run_id.0).await,
            None => Ok(Vec::new()),
        }
    }

    /// How many dead letters each flow has open, by flow name (byte order);
    /// flows with none are left out.
    pub async fn open_dead_letters_per_flow(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = format!(
            "SELECT flow, COUNT(*) FROM dead_letters WHERE state = 'open' GROUP BY flow ORDER BY flow{}",
            dialect::sort_text(self.backend)
        );
        let rows: Vec<(DbText, i64)> = sqlx::query_as(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("counting the open dead letters of each flow"))?;
        Ok(rows.into_iter().map(|(flow, count)| (flow.0, u64::try_from(count).unwrap_or_default())).collect())
    }
}
