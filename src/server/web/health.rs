//! What holds the shops back, read from the store once for the overview page
//! and for the gauges of `/metrics` alike.

use chrono::{DateTime, Utc};

use crate::store::{Alert, AppBan, BreakerRow, Reauth, Store, StoreError};
use crate::sync::{INCREMENT_STREAM, REFUNDS_STREAM, modified_until};

/// How far one flow's incremental stream of a shop got: each flow has its
/// own, so a flow that stopped shows its own lag.
#[derive(Debug, Clone)]
pub struct Lag {
    /// The platform's name.
    pub platform: String,
    /// The shop's name.
    pub shop: String,
    /// The flow's stream: `orders.increment/<flow>/<node>` or
    /// `refunds.increment/<flow>/<node>`.
    pub stream: String,
    /// The end of the last synced window; `None` when the cursor holds none.
    pub until: Option<DateTime<Utc>>,
    /// Seconds from `until` to now (0 when `until` is ahead of the clock).
    pub seconds: Option<f64>,
}

/// Bans, shops to authorise again, breakers, open alerts and sync lags.
#[derive(Debug, Clone)]
pub struct Health {
    /// Bans in force.
    pub bans: Vec<AppBan>,
    /// Shops whose seller must authorise again.
    pub reauth: Vec<Reauth>,
    /// Every stored breaker.
    pub breakers: Vec<BreakerRow>,
    /// Open alerts.
    pub alerts: Vec<Alert>,
    /// The incremental stream of every flow and shop that has one.
    pub lags: Vec<Lag>,
}

impl Health {
    /// Reads it all as of `now`.
    pub async fn load(store: &Store, now: DateTime<Utc>) -> Result<Self, StoreError> {
        let mut lags = Vec::new();
        for stream in [INCREMENT_STREAM, REFUNDS_STREAM] {
            for cursor in store.flow_cursors(stream).await? {
                let until = modified_until(&cursor.value);
                let seconds = until.map(|until| ((now - until).num_milliseconds() as f64 / 1000.0).max(0.0));
                lags.push(Lag { platform: cursor.platform, shop: cursor.shop, stream: cursor.stream, until, seconds });
            }
        }
        Ok(Self {
            bans: store.active_bans(now).await?,
            reauth: store.shops_needing_reauth().await?,
            breakers: store.breakers().await?,
            alerts: store.open_alerts().await?,
            lags,
        })
    }
}
