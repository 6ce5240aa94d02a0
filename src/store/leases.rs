//! Leases: several `serve` processes on one database split the (flow, shop)
//! runs between them. A process runs a flow for a shop only while it holds
//! that pair's lease; it renews the lease while the run goes on and releases
//! it at the end. A process that dies stops renewing, and once the lease
//! expires another process claims it. Nothing but the database decides: one
//! conditional upsert per claim, on every backend, timed by the database's
//! clock ([`super::dialect::now_millis`]).
//!
//! Each claim bumps the row's `epoch` and writes a fresh token: the fence. A run
//! under a lease writes through a store [`fenced`](Store::fenced) by it, whose
//! every writing transaction first checks the row still carries them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;

use super::Store;
use super::dialect::{self, DbText};
use super::error::StoreError;

/// A lease this process holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The flow's name.
    pub flow: String,
    /// The shop, `""` for a flow without one.
    pub shop: String,
    /// The worker id of the holder (this process).
    pub holder: String,
    /// What this claim wrote; renewals and the release match on it, so a lease
    /// taken over in between is never touched by the old holder.
    pub token: String,
    /// How many times the row has been claimed, this claim included.
    pub epoch: i64,
}

/// A lease row as stored, for the page and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The flow's name.
    pub flow: String,
    /// The shop, `""` for a flow without one.
    pub shop: String,
    /// The worker that claimed it last.
    pub holder: String,
    /// How many times it has been claimed.
    pub epoch: i64,
    /// When it expires (expired: free); by the database's clock.
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    token: DbText,
    epoch: i64,
}

#[derive(sqlx::FromRow)]
struct LeaseRow {
    flow: DbText,
    shop: DbText,
    holder: DbText,
    epoch: i64,
    expires_at: i64,
}

fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Refuses with [`StoreError::Fenced`] unless the lease row still carries the
/// token and epoch of `lease`. With `lock`, the row stays locked until the
/// transaction `conn` is in ends, so that no claim can take it over before that
/// transaction commits (see [`dialect::lock_rows`]; SQLite's write transaction
/// holds the whole database).
pub(super) async fn check_fence(
    conn: &mut AnyConnection,
    backend: super::Backend,
    lease: &Lease,
    lock: bool,
) -> Result<(), StoreError> {
    let action = || format!("checking the lease of flow {} for shop {:?}", lease.flow, lease.shop);
    let sql = dialect::sql(
        backend,
        &format!(
            "SELECT holder, token, epoch FROM leases WHERE flow = ? AND shop = ?{}",
            if lock { dialect::lock_rows(backend) } else { "" }
        ),
    );
    let row: Option<(DbText, DbText, i64)> = sqlx::query_as(&sql)
        .bind(&lease.flow)
        .bind(&lease.shop)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::db(action()))?;
    match row {
        Some((_, token, epoch)) if token.0 == lease.token && epoch == lease.epoch => Ok(()),
        row => Err(StoreError::Fenced {
            flow: lease.flow.clone(),
            shop: lease.shop.clone(),
            epoch: lease.epoch,
            holder: row.map(|(holder, _, epoch)| (holder.0, epoch)),
        }),
    }
}

impl Store {
    /// This store, writing only while `lease` is held: every writing transaction
    /// is refused with [`StoreError::Fenced`] once another worker has claimed the
    /// lease. Reads are not fenced. What a run under a lease writes goes through
    /// such a store, so a process stalled past its lease commits nothing after
    /// another took its (flow, shop) over.
    pub fn fenced(&self, lease: Lease) -> Store {
        Store { fence: Some(Arc::new(lease)), ..self.clone() }
    }

    /// Whether the fence still holds, read outside any write: `Ok` for a store
    /// without one, [`StoreError::Fenced`] once the lease was taken over.
    pub async fn check_fence(&self) -> Result<(), StoreError> {
        let Some(lease) = &self.fence else { return Ok(()) };
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(StoreError::db(format!("checking the lease of flow {} for shop {:?}", lease.flow, lease.shop)))?;
        check_fence(&mut conn, self.backend, lease, false).await
    }

    /// Claims the lease of `flow` for `shop` for `holder`, for `ttl`, when no
    /// one holds it or its holder let it expire. `None`: another worker holds it.
    pub async fn claim_lease(
        &self,
        flow: &str,
        shop: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        let action = || format!("claiming the lease of flow {flow} for shop {shop:?}");
        let token = uuid::Uuid::now_v7().simple().to_string();
        sqlx::query(&dialect::claim_lease(self.backend))
            .bind(flow)
            .bind(shop)
            .bind(holder)
            .bind(&token)
            .bind(ttl_millis(ttl))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(action()))?;
        let read = dialect::sql(self.backend, "SELECT token, epoch FROM leases WHERE flow = ? AND shop = ?");
        let row = sqlx::query_as::<_, ClaimRow>(&read)
            .bind(flow)
            .bind(shop)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(action()))?;
        Ok(row.filter(|row| row.token.0 == token).map(|row| Lease {
            flow: flow.to_owned(),
            shop: shop.to_owned(),
            holder: holder.to_owned(),
            token,
            epoch: row.epoch,
        }))
    }

    /// Extends `lease` to `ttl` from now. `false`: it is no longer ours (it
    /// expired and another worker claimed it), and the run under it must stop.
    pub async fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<bool, StoreError> {
        let now = dialect::now_millis(self.backend);
        let sql = dialect::sql(
            self.backend,
            &format!("UPDATE leases SET expires_at = {now} + ? WHERE flow = ? AND shop = ? AND token = ?"),
        );
        let result = sqlx::query(&sql)
            .bind(ttl_millis(ttl))
            .bind(&lease.flow)
            .bind(&lease.shop)
            .bind(&lease.token)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(format!("renewing the lease of flow {} for shop {:?}", lease.flow, lease.shop)))?;
        // MySQL counts matched rows too (CLIENT_FOUND_ROWS), as the others do.
        Ok(result.rows_affected() == 1)
    }

    /// Gives `lease` up at once, so another worker need not wait for it to
    /// expire. A lease already taken over is left alone.
    pub async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let sql =
            dialect::sql(self.backend, "UPDATE leases SET expires_at = 0 WHERE flow = ? AND shop = ? AND token = ?");
        sqlx::query(&sql)
            .bind(&lease.flow)
            .bind(&lease.shop)
            .bind(&lease.token)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(format!("releasing the lease of flow {} for shop {:?}", lease.flow, lease.shop)))?;
        Ok(())
    }

    /// Every lease row, by flow and shop.
    pub async fn leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        let sql = "SELECT flow, shop, holder, epoch, expires_at FROM leases ORDER BY flow, shop";
        let rows = sqlx::query_as::<_, LeaseRow>(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading the leases"))?;
        rows.into_iter()
            .map(|row| {
                let expires_at =
                    DateTime::from_timestamp_millis(row.expires_at).ok_or_else(|| StoreError::InvalidValue {
                        field: "leases.expires_at".into(),
                        reason: format!("{} is not a time", row.expires_at),
                    })?;
                Ok(LeaseRecord {
                    flow: row.flow.into(),
                    shop: row.shop.into(),
                    holder: row.holder.into(),
                    epoch: row.epoch,
                    expires_at,
                })
            })
            .collect()
    }
}
