//! What the web page and `/metrics` read that no node needs: every cursor of a
//! stream (for the sync lag) and the latest restock suggestions.

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::{Cursor, RestockSuggestion, Store};

impl Store {
    /// The cursor of `stream` (e.g. `orders.increment`) of every shop that has
    /// one, by platform and shop.
    pub async fn cursors_of_stream(&self, stream: &str) -> Result<Vec<Cursor>, StoreError> {
        let text = dialect::sort_text(self.backend);
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT platform, shop, value FROM sync_cursors WHERE stream = ? ORDER BY platform{text}, shop{text}"
            ),
        );
        let rows: Vec<(DbText, DbText, DbText)> = sqlx::query_as(&sql)
            .bind(stream)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the cursors of {stream}")))?;
        rows.into_iter()
            .map(|(platform, shop, value)| {
                let value = serde_json::from_str(&value.0).map_err(|error| StoreError::InvalidValue {
                    field: "sync_cursors.value".into(),
                    reason: format!("cursor {stream} of {}/{}: {error}", platform.0, shop.0),
                })?;
                Ok(Cursor { platform: platform.into(), shop: shop.into(), stream: stream.to_owned(), value })
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
}
