//! `orderflow status`: what holds the shops back, from the database, so it
//! shows the state every process and run left behind.

use chrono::Utc;

use crate::store::Store;

/// Prints bans, shops to authorise again, breakers, open alerts, open dead
/// letters per flow, anomaly counts and the latest reconciliations.
pub async fn print(store: &Store) -> anyhow::Result<()> {
    let now = Utc::now();
    let bans = store.active_bans(now).await?;
    println!("rate-limit bans: {}", if bans.is_empty() { "none" } else { "" });
    for ban in bans {
        let left = (ban.until - now).num_seconds();
        println!(
            "  {} app key {}: banned until {} ({left} s left): {}",
            ban.platform, ban.app_key, ban.until, ban.reason
        );
    }
    let reauth = store.shops_needing_reauth().await?;
    println!("shops to authorise again: {}", if reauth.is_empty() { "none" } else { "" });
    for shop in reauth {
        println!("  {} shop {:?} since {}: {}", shop.platform, shop.shop, shop.since, shop.reason);
        println!("    after renewing its session: orderflow reauthorized {}", shop.shop);
    }
    let breakers = store.breakers().await?;
    println!("circuit breakers: {}", if breakers.is_empty() { "none yet" } else { "" });
    for row in breakers {
        let failed = row.outcomes.chars().filter(|c| *c == 'x').count();
        let calls = row.outcomes.chars().count();
        let opened = row.opened_at.map(|at| format!(", opened {at}")).unwrap_or_default();
        let pulled = row.last_degraded_at.map(|at| format!(", last full pull {at}")).unwrap_or_default();
        println!(
            "  {} shop {:?} {}: {} ({failed} of the last {calls} calls failed{opened}{pulled})",
            row.platform, row.shop, row.channel, row.state
        );
    }
    let alerts = store.open_alerts().await?;
    println!("open alerts: {}", if alerts.is_empty() { "none" } else { "" });
    for alert in alerts {
        let tid = alert.tid.map(|tid| format!(" order {tid}")).unwrap_or_default();
        println!(
            "  [{}] {} shop {:?}{tid} since {}: {}",
            alert.kind, alert.platform, alert.shop, alert.created_at, alert.detail
        );
    }
    let letters = store.open_dead_letters_per_flow().await?;
    println!("open dead letters: {}", if letters.is_empty() { "none" } else { "" });
    for (flow, count) in letters {
        println!("  flow {flow}: {count} (orderflow dead-letters --open --flow {flow})");
    }
    let anomalies = store.anomaly_counts().await?;
    println!("anomalous answers: {}", if anomalies.is_empty() { "none" } else { "" });
    for (platform, shop, kind, count) in anomalies {
        println!("  {platform} shop {shop:?}: {count} × {kind}");
    }
    Ok(())
}
