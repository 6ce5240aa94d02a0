//! `logistics_alert`: raises an alert for a parcel that stopped moving, and
//! resolves it once the parcel moves or the order is received.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::{
    BuildContext, BuildError, Built, Fields, NodeContext, NodeError, NodeKind, Output, Role, Shape, Transform,
};
use crate::clock::Clock;
use crate::platforms::{ParcelTrace, Platform};
use crate::record::{Batch, Record};
use crate::store::{NewAlert, ParcelCheck};
use crate::sync::{self, Span};

/// The alert kind this node raises.
pub const PARCEL_STALLED: &str = "parcel_stalled";

/// Watches the parcels of shipped orders and raises a `parcel_stalled`
/// alert when one has not moved for `stall_after`.
///
/// Input: order records with `tid` and `status` (from `stored_orders`, or
/// orders after `store_orders`). For an order in one of `shipped_statuses`
/// whose trace was last read longer than `recheck_after` ago (or never), it
/// reads the parcel trace (one platform call, under the app key's rate limit
/// and the sync nodes' retries) and stores when it did. A parcel not signed
/// for whose newest event is older than `stall_after` raises the alert (at
/// most one open per order); otherwise, the parcels having moved or been
/// signed for, the order's open alert is resolved. An order in any other
/// status (received, closed) has its open alert resolved without a call. At
/// the end of the run, open alerts of orders the database now holds in
/// another status are resolved too, so an order that left the source's
/// statuses does not keep its alert. A trace with no event yet decides
/// nothing.
///
/// Output: only alerts, never the orders. One record per order found stalled
/// (`state: raised`; `new` is false when the alert was already open, which
/// lets `notify` deliver an alert whose first delivery a crash lost; it skips
/// what it delivered) and one per alert resolved (`state: resolved`), with
/// `kind`, `platform`, `shop`, `tid`, `detail` and `alert_id`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogisticsAlertSettings {
    /// The shop, as named in `orderflow.yaml`; defaults to the flow's `shop:`.
    #[serde(default)]
    pub shop: Option<String>,
    /// How long a parcel may go without a new event before it counts as
    /// stalled.
    #[serde(default = "default_stall_after")]
    pub stall_after: Span,
    /// How long after its last check an order's trace is read again; keeps
    /// hourly runs from spending a call per shipped order every hour.
    #[serde(default = "default_recheck_after")]
    pub recheck_after: Span,
    /// The statuses of orders shipped and not yet received, whose parcels
    /// are watched.
    #[serde(default = "default_shipped_statuses")]
    pub shipped_statuses: Vec<String>,
}

fn default_stall_after() -> Span {
    Span(std::time::Duration::from_secs(72 * 3600))
}

fn default_recheck_after() -> Span {
    Span(std::time::Duration::from_secs(6 * 3600))
}

fn default_shipped_statuses() -> Vec<String> {
    vec!["WAIT_BUYER_CONFIRM_GOODS".to_owned(), "SELLER_CONSIGNED_PART".to_owned()]
}

/// The `logistics_alert` node type.
pub struct LogisticsAlert;

impl NodeKind for LogisticsAlert {
    const TYPE: &'static str = "logistics_alert";
    const ROLE: Role = Role::Transform;
    type Settings = LogisticsAlertSettings;

    fn example() -> &'static str {
        "stalled:\n  use: logistics_alert\n  input: shipped\n  with:\n    stall_after: 72h\n    recheck_after: 6h\n"
    }

    /// The alerts raised or resolved, not the orders.
    fn output() -> Output {
        let text = || Shape::of_type("string");
        Output::Records(
            Fields::default()
                .field("kind", text(), "What the alert is about: `parcel_stalled`.")
                .field("platform", text(), "The platform's name (`taobao`).")
                .field("shop", text(), "The shop's name in `orderflow.yaml`.")
                .field("tid", Shape::of_type("integer"), "The order whose parcel it is.")
                .field("detail", text(), "What is wrong, in words for customer service.")
                .field("alert_id", Shape::of_type("integer"), "The alert's id in `alerts`.")
                .field("state", text(), "`raised` or `resolved`.")
                .field("new", Shape::of_type("boolean"), "Whether this run raised it (false: raised before)."),
        )
    }

    fn build(settings: LogisticsAlertSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        Ok(Built::Transform(Box::new(LogisticsAlertNode {
            platform: ctx.platform(settings.shop.as_deref())?,
            clock: ctx.clock.clone(),
            stall_after: settings.stall_after.chrono(),
            recheck_after: settings.recheck_after.chrono(),
            shipped: settings.shipped_statuses,
        })))
    }
}

struct LogisticsAlertNode {
    platform: Arc<dyn Platform>,
    clock: Clock,
    stall_after: chrono::Duration,
    recheck_after: chrono::Duration,
    shipped: Vec<String>,
}

/// What one trace read says.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// No event yet: nothing to decide.
    Unknown,
    /// Every parcel moved lately or was signed for.
    Moving,
    /// A parcel has not moved for too long: the alert's detail.
    Stalled(String),
}

/// The newest event of any parcel.
fn newest_event(traces: &[ParcelTrace]) -> Option<DateTime<Utc>> {
    traces.iter().filter_map(|t| t.steps.iter().map(|s| s.time).max()).max()
}

fn signed(trace: &ParcelTrace) -> bool {
    trace.steps.last().is_some_and(|s| s.action.as_deref() == Some("SIGN"))
        || trace.status.as_deref().is_some_and(|s| s.contains("签收"))
}

/// Judges an order's parcels at `now`: the stalest parcel not signed for
/// decides.
fn judge(tid: i64, traces: &[ParcelTrace], now: DateTime<Utc>, stall_after: chrono::Duration) -> Verdict {
    let stalest = traces
        .iter()
        .filter(|t| !signed(t))
        .filter_map(|t| t.steps.iter().max_by_key(|s| s.time).map(|step| (t, step)))
        .min_by_key(|(_, step)| step.time);
    match stalest {
        Some((trace, step)) if now - step.time > stall_after => {
            let age = chrono::Duration::minutes((now - step.time).num_minutes()).to_std().unwrap_or_default();
            Verdict::Stalled(format!(
                "Parcel {} ({}) of order {tid} has not moved for {}: its last event, at {}, was {:?}.",
                trace.out_sid,
                trace.company_name.as_deref().unwrap_or("unknown carrier"),
                humantime::format_duration(age),
                step.time.format("%Y-%m-%d %H:%M UTC"),
                step.description,
            ))
        }
        _ if newest_event(traces).is_none() => Verdict::Unknown,
        _ => Verdict::Moving,
    }
}

impl LogisticsAlertNode {
    fn alert_record(&self, tid: i64, detail: &str, alert_id: i64, state: &str, new: bool) -> Option<Record> {
        Record::from_value(json!({
            "kind": PARCEL_STALLED,
            "platform": self.platform.name(),
            "shop": self.platform.shop(),
            "tid": tid,
            "detail": detail,
            "alert_id": alert_id,
            "state": state,
            "new": new,
        }))
    }

    /// Resolves the order's open alert, if any; its record when it did.
    async fn resolve(&self, ctx: &NodeContext, tid: i64, now: DateTime<Utc>) -> Result<Option<Record>, NodeError> {
        let (name, shop) = (self.platform.name(), self.platform.shop());
        let Some(open) = ctx.store.open_alert(PARCEL_STALLED, name, shop, Some(tid)).await? else { return Ok(None) };
        if ctx.store.resolve_alert(PARCEL_STALLED, name, shop, Some(tid), now).await? == 0 {
            return Ok(None);
        }
        Ok(self.alert_record(tid, &open.detail, open.id, "resolved", false))
    }

    /// Reads the order's trace, stores the check, raises or resolves.
    async fn check(&self, ctx: &NodeContext, tid: i64) -> Result<Option<Record>, NodeError> {
        let platform = self.platform.as_ref();
        let traces = sync::call_platform(ctx, platform, || platform.parcel_trace(tid)).await?;
        let now = self.clock.now();
        let out = match judge(tid, &traces, now, self.stall_after) {
            Verdict::Unknown => None,
            Verdict::Moving => self.resolve(ctx, tid, now).await?,
            Verdict::Stalled(detail) => {
                let alert = NewAlert {
                    kind: PARCEL_STALLED.to_owned(),
                    platform: platform.name().to_owned(),
                    shop: platform.shop().to_owned(),
                    tid: Some(tid),
                    detail,
                };
                match ctx.store.raise_alert(&alert, now).await? {
                    Some(id) => self.alert_record(tid, &alert.detail, id, "raised", true),
                    None => ctx
                        .store
                        .open_alert(PARCEL_STALLED, platform.name(), platform.shop(), Some(tid))
                        .await?
                        .and_then(|open| self.alert_record(tid, &open.detail, open.id, "raised", false)),
                }
            }
        };
        // Stored last: a batch that fails before this point reads the trace
        // again when retried, instead of skipping the order until the next
        // recheck.
        let check = ParcelCheck {
            platform: platform.name().to_owned(),
            shop: platform.shop().to_owned(),
            tid,
            checked_at: now,
            newest_event_at: newest_event(&traces),
        };
        ctx.store.save_parcel_check(&check).await?;
        Ok(out)
    }
}

fn tid_and_status(record: &Record) -> Result<(i64, &str), NodeError> {
    let tid = record.fields.get("tid").and_then(Json::as_i64);
    let status = record.fields.get("status").and_then(Json::as_str);
    match (tid, status) {
        (Some(tid), Some(status)) => Ok((tid, status)),
        _ => Err(NodeError::permanent("a record without a numeric `tid` and a `status` is not an order")),
    }
}

#[async_trait]
impl Transform for LogisticsAlertNode {
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError> {
        let (name, shop) = (self.platform.name(), self.platform.shop());
        let mut shipped = Vec::new();
        let mut out = Vec::new();
        for record in &batch {
            let (tid, status) = tid_and_status(record)?;
            if self.shipped.iter().any(|s| s == status) {
                shipped.push(tid);
            } else {
                out.extend(self.resolve(ctx, tid, self.clock.now()).await?);
            }
        }
        let checks = ctx.store.parcel_checks(name, shop, &shipped).await?;
        let due = self.clock.now() - self.recheck_after;
        for tid in shipped {
            if checks.get(&tid).is_some_and(|c| c.checked_at > due) {
                continue;
            }
            out.extend(self.check(ctx, tid).await?);
        }
        Ok(out)
    }

    async fn finish(&mut self, ctx: &NodeContext) -> Result<Batch, NodeError> {
        let (name, shop) = (self.platform.name(), self.platform.shop());
        let open: Vec<i64> = ctx
            .store
            .open_alerts()
            .await?
            .into_iter()
            .filter(|a| a.kind == PARCEL_STALLED && a.platform == name && a.shop == shop)
            .filter_map(|a| a.tid)
            .collect();
        let stored = ctx.store.order_versions(name, shop, &open).await?;
        let mut out = Vec::new();
        for tid in open {
            if stored.get(&tid).is_some_and(|v| !self.shipped.contains(&v.status)) {
                out.extend(self.resolve(ctx, tid, self.clock.now()).await?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::platforms::TraceStep;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn trace(times: &[&str], last_action: &str) -> ParcelTrace {
        let steps = times
            .iter()
            .enumerate()
            .map(|(i, t)| TraceStep {
                time: at(t),
                description: format!("step {i}"),
                action: Some(if i + 1 == times.len() { last_action } else { "TRANSPORT" }.to_owned()),
            })
            .collect();
        ParcelTrace { out_sid: "SF123".into(), company_name: Some("顺丰速运".into()), status: None, steps }
    }

    #[tokio::test]
    async fn received_orders_resolve_their_alert_without_a_call_and_the_end_sweeps_the_rest() {
        use crate::nodes::testing::{FakeShop, assert_output, fake_order, run_transform_in};
        use crate::store::Store;

        let store = Store::connect("sqlite::memory:").await.unwrap();
        let now = chrono::Utc::now();
        let alert = |tid| NewAlert {
            kind: PARCEL_STALLED.into(),
            platform: "taobao".into(),
            shop: "s".into(),
            tid: Some(tid),
            detail: format!("parcel of {tid}"),
        };
        let first = store.raise_alert(&alert(1), now).await.unwrap().unwrap();
        let second = store.raise_alert(&alert(2), now).await.unwrap().unwrap();
        // Order 2 was received since: the database says so, no record comes.
        let received = crate::platforms::Order { status: "TRADE_FINISHED".into(), ..fake_order(2, (now, now)) };
        store.save_orders(&[received], &[]).await.unwrap();

        let shop = FakeShop::new([], None);
        let settings: LogisticsAlertSettings = serde_json::from_value(json!({"shop": "s"})).unwrap();
        let Built::Transform(node) = LogisticsAlert::build(settings, &shop.context()).unwrap() else {
            panic!("a transform")
        };
        // The fake shop fails every trace call: none is made.
        let input = vec![json!({"tid": 1, "status": "TRADE_CLOSED"})];
        let out = run_transform_in(&store, node, input.clone()).await.unwrap();
        assert_output(&LogisticsAlert::output(), &input, &out);
        let states: Vec<(i64, i64, &str)> = out
            .iter()
            .map(|r| (r["tid"].as_i64().unwrap(), r["alert_id"].as_i64().unwrap(), r["state"].as_str().unwrap()))
            .collect();
        assert_eq!(states, vec![(1, first, "resolved"), (2, second, "resolved")]);
        assert_eq!(out[0]["detail"], "parcel of 1");
        assert!(store.open_alerts().await.unwrap().is_empty());
    }

    #[test]
    fn the_stalest_unsigned_parcel_decides() {
        let now = at("2026-11-24T08:00:00Z");
        let limit = chrono::Duration::hours(72);
        let stalled = trace(&["2026-11-19T08:00:00Z", "2026-11-20T07:30:00Z"], "TRANSPORT");
        let Verdict::Stalled(detail) = judge(7, std::slice::from_ref(&stalled), now, limit) else { panic!("stalled") };
        assert!(detail.contains("SF123") && detail.contains("顺丰速运") && detail.contains("order 7"), "{detail}");
        assert!(detail.contains("4days 30m") && detail.contains("step 1"), "{detail}");

        let moving = trace(&["2026-11-23T08:00:00Z"], "TRANSPORT");
        assert_eq!(judge(7, std::slice::from_ref(&moving), now, limit), Verdict::Moving);
        let signed_long_ago = trace(&["2026-11-01T08:00:00Z"], "SIGN");
        assert_eq!(judge(7, &[signed_long_ago], now, limit), Verdict::Moving);
        assert!(matches!(judge(7, &[moving, stalled], now, limit), Verdict::Stalled(_)));
        assert_eq!(judge(7, &[], now, limit), Verdict::Unknown);
    }
}
