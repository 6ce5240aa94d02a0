//! A dry run's scratch database, set up from the real one: the flow starts
//! where its real cursors stand and honours the real bans, while every write
//! (cursors, orders, runs, call pace, anomalies) lands in the scratch
//! database. The real database is only read.

use chrono::Utc;
use serde::Serialize;

use crate::flow::Flow;
use crate::platforms::Platforms;
use crate::store::{Cursor, Store, StoreError};
use crate::sync::{FULL_STREAM, INCREMENT_STREAM, REFUNDS_STREAM, flow_stream};

/// What was copied from the real database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Copied {
    /// The cursors the flow's nodes resume from.
    pub cursors: Vec<String>,
    /// Bans in force on the flow's app keys.
    pub bans: usize,
    /// Shops waiting for their seller to authorise again.
    pub needs_reauth: usize,
    /// Circuit breaker states.
    pub breakers: usize,
}

/// Copies from `real` into `scratch` what the flow's nodes read to decide
/// where to start and whether to call (the cursors of its shops' streams,
/// bans, refused sessions, breakers), and hands `platforms` the scratch
/// database for its bans and call booking. With no real database yet
/// (`None`), copies nothing. Call before the run; `platforms` must not have
/// been restored from another store (its call ledger is set once).
pub async fn prepare(
    real: Option<&Store>,
    scratch: &Store,
    flow: &Flow,
    platforms: &Platforms,
) -> Result<Copied, StoreError> {
    let copied = match real {
        Some(real) => copy(real, scratch, flow, platforms).await?,
        None => Copied::default(),
    };
    platforms.restore(scratch).await?;
    Ok(copied)
}

async fn copy(real: &Store, scratch: &Store, flow: &Flow, platforms: &Platforms) -> Result<Copied, StoreError> {
    let mut copied = Copied::default();
    let shops = flow_shops(flow);
    let mut cursors = Vec::new();
    for shop in &shops {
        let Some(platform) = platforms.get(shop) else { continue };
        for stream in streams(flow) {
            if let Some(value) = real.load_cursor(platform.name(), shop, &stream).await? {
                copied.cursors.push(format!("{}/{shop} {stream}", platform.name()));
                cursors.push(Cursor { platform: platform.name().to_owned(), shop: shop.clone(), stream, value });
            }
        }
    }
    scratch.save_orders(&[], &cursors).await?;

    let now = Utc::now();
    for ban in real.active_bans(now).await? {
        scratch.save_ban(&ban, now).await?;
        copied.bans += 1;
    }
    for reauth in real.shops_needing_reauth().await?.into_iter().filter(|r| shops.contains(&r.shop)) {
        scratch.mark_needs_reauth(&reauth.platform, &reauth.shop, &reauth.reason, reauth.since).await?;
        copied.needs_reauth += 1;
    }
    for breaker in real.breakers().await?.into_iter().filter(|b| shops.contains(&b.shop)) {
        scratch.save_breaker(&breaker).await?;
        copied.breakers += 1;
    }
    Ok(copied)
}

/// The shops the flow's nodes call: the flow's `shop:` and any node's `shop`
/// setting.
fn flow_shops(flow: &Flow) -> Vec<String> {
    let mut shops: Vec<String> = flow.shop.iter().cloned().collect();
    for spec in flow.nodes.iter().chain(&flow.error_nodes) {
        if let Some(shop) = spec.settings.get("shop").and_then(|s| s.as_str())
            && !shops.iter().any(|known| known == shop)
        {
            shops.push(shop.to_owned());
        }
    }
    shops
}

/// Every stream a node of `flow` may resume from: the shop-wide ones and
/// each node's own (see `sync::resume_point`).
fn streams(flow: &Flow) -> Vec<String> {
    let mut streams = Vec::new();
    for base in [INCREMENT_STREAM, FULL_STREAM, REFUNDS_STREAM] {
        streams.push(base.to_owned());
        streams.extend(flow.nodes.iter().map(|spec| flow_stream(base, &flow.name, &spec.id)));
    }
    streams
}
