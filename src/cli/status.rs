//! `orderflow status`: what holds the shops back, from the database, so it
//! shows the state every process and run left behind.

use chrono::Utc;

use super::table::{Align, Table};
use crate::store::Store;

/// Prints bans, shops to authorise again, breakers, open alerts, open dead
/// letters per flow, anomaly counts and the latest reconciliations.
pub async fn print(store: &Store) -> anyhow::Result<()> {
    let (left, right) = (Align::Left, Align::Right);
    let now = Utc::now();

    let mut bans = Table::headless(&[left, left, left, right, left]);
    for ban in store.active_bans(now).await? {
        let seconds_left = (ban.until - now).num_seconds();
        bans.row([
            ban.platform,
            format!("app key {}", ban.app_key),
            format!("banned until {}", ban.until),
            format!("{seconds_left} s left"),
            ban.reason,
        ]);
    }
    section("rate-limit bans", &bans, "none");

    let mut reauth = Table::headless(&[left, left, left, left]);
    for shop in store.shops_needing_reauth().await? {
        reauth.row([shop.platform, format!("shop {:?}", shop.shop), format!("since {}", shop.since), shop.reason]);
        reauth.note(format!("after renewing its session: orderflow reauthorized {}", shop.shop));
    }
    section("shops to authorise again", &reauth, "none");

    let mut breakers = Table::headless(&[left, left, left, left, left]);
    for row in store.breakers().await? {
        let failed = row.outcomes.chars().filter(|c| *c == 'x').count();
        let calls = row.outcomes.chars().count();
        let opened = row.opened_at.map(|at| format!(", opened {at}")).unwrap_or_default();
        let pulled = row.last_degraded_at.map(|at| format!(", last full pull {at}")).unwrap_or_default();
        breakers.row([
            row.platform,
            format!("shop {:?}", row.shop),
            row.channel,
            row.state,
            format!("({failed} of the last {calls} calls failed{opened}{pulled})"),
        ]);
    }
    section("circuit breakers", &breakers, "none yet");

    let mut alerts = Table::headless(&[left, left, left, left, left, left]);
    for alert in store.open_alerts().await? {
        let tid = alert.tid.map(|tid| format!("order {tid}")).unwrap_or_default();
        alerts.row([
            format!("[{}]", alert.kind),
            alert.platform,
            format!("shop {:?}", alert.shop),
            tid,
            format!("since {}", alert.created_at),
            alert.detail,
        ]);
    }
    section("open alerts", &alerts, "none");

    let mut letters = Table::headless(&[left, right, left]);
    for (flow, count) in store.open_dead_letters_per_flow().await? {
        letters.row([
            format!("flow {flow}"),
            count.to_string(),
            format!("(orderflow dead-letters --open --flow {flow})"),
        ]);
    }
    section("open dead letters", &letters, "none");

    let mut anomalies = Table::headless(&[left, left, right, left]);
    for (platform, shop, kind, count) in store.anomaly_counts().await? {
        anomalies.row([platform, format!("shop {shop:?}"), format!("{count} ×"), kind]);
    }
    section("anomalous answers", &anomalies, "none");
    Ok(())
}

/// `title: none` for an empty table, else the title and the table indented.
fn section(title: &str, table: &Table, none: &str) {
    if table.is_empty() {
        println!("{title}: {none}");
    } else {
        println!("{title}:");
        print!("{}", table.render("  "));
    }
}
