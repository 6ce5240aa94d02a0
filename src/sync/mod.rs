//! The sync machinery the order and refund nodes share: orders and refunds as
//! records, the cursor streams they resume from, calling a platform with
//! classified retries (`call_platform`), durations written as `30m` in
//! settings; reading orders by creation time (`by_created`: backfills, full
//! pulls, reconcile) and windows by modification time (`by_modified`:
//! increments and refunds), the circuit breaker (`breaker`), and setting
//! aside the records a platform sent that cannot be read or stored
//! (`set_aside`).

pub mod breaker;
pub mod by_created;
pub mod by_modified;
pub mod progress;
pub mod set_aside;

pub use set_aside::{ListedBy, keep_readable, set_aside_unreadable};

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

use crate::activity::WaitReason;
use crate::engine::NodeContext;
use crate::engine::node::{Halt, NodeError};
use crate::platforms::guard::MAX_BANS_IN_A_ROW;
use crate::platforms::{Anomaly, ErrorKind, Order, Platform, PlatformError, Refund};
use crate::record::Record;
use crate::store::{AppBan, Cursor, NewAlert, NewAnomaly};

/// The cursor streams of `fetch_increment`, one per flow and node
/// ([`flow_stream`]): `{"modified_until": time}`. The stream of this very name
/// is the shop's handover point: where a completed backfill leaves the
/// increment, and where flows start that have no cursor of their own yet.
pub const INCREMENT_STREAM: &str = "orders.increment";
/// The cursor stream of `fetch_full`, one per shop: see `fetch_full`'s `Backfill`.
pub const FULL_STREAM: &str = "orders.full";
/// The cursor streams of `fetch_refunds`, one per flow and node
/// ([`flow_stream`]): `{"modified_until": time}`.
pub const REFUNDS_STREAM: &str = "refunds.increment";

/// The stream in which node `node_id` of `flow` keeps its position in
/// `base`, e.g. `orders.increment/taobao-incremental/changed`: each flow moves
/// only its own cursor, so two flows reading one shop never skip each
/// other's orders.
pub fn flow_stream(base: &str, flow: &str, node_id: &str) -> String {
    format!("{base}/{flow}/{node_id}")
}

/// The stream the running node commits its positions in `base` to, and
/// where it resumes: its own cursor, or before its flow's first committed
/// window, the shop's `base` cursor — the handover point of a completed
/// backfill, or the cursor every flow of the shop shared before each flow
/// had its own (so existing databases resume where they stood).
pub async fn resume_point(
    ctx: &NodeContext,
    platform: &dyn Platform,
    base: &str,
) -> Result<(String, Option<Json>), NodeError> {
    let stream = flow_stream(base, &ctx.flow, &ctx.node_id);
    if let Some(own) = ctx.store.load_cursor(platform.name(), platform.shop(), &stream).await? {
        return Ok((stream, Some(own)));
    }
    let shared = ctx.store.load_cursor(platform.name(), platform.shop(), base).await?;
    if let Some(until) = shared.as_ref().and_then(modified_until) {
        tracing::info!(node_id = %ctx.node_id, flow = %ctx.flow, shop = platform.shop(), %until,
            "No cursor of this flow yet: starting from the shop's {base} handover point.");
    }
    Ok((stream, shared))
}

/// A duration setting written as humans do: `90s`, `5m`, `1h 30m`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    /// The span as a signed chrono duration, for date arithmetic.
    pub fn chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(Span)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration such as 30m or 1h: {e}")))
    }
}

impl JsonSchema for Span {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as `90s`, `5m`, `1h 30m` or `1d`.",
            "pattern": "^\\s*[0-9]+\\s*[a-zA-Z]+(\\s*[0-9]+\\s*[a-zA-Z]+)*\\s*$"
        })
    }
}

/// An order as the record that travels between nodes.
pub fn order_record(order: &Order) -> Result<Record, NodeError> {
    serde_json::to_value(order)
        .ok()
        .and_then(Record::from_value)
        .ok_or_else(|| NodeError::permanent(format!("order {} could not be turned into a record", order.tid)))
}

/// A record back as an order; an error names the field at fault.
pub fn record_order(record: &Record) -> Result<Order, String> {
    let json = Json::Object(record.fields.clone());
    serde_path_to_error::deserialize(json).map_err(|e| {
        let tid = record.fields.get("tid").map(Json::to_string).unwrap_or_else(|| "?".into());
        format!("record (tid {tid}) is not an order: {} at `{}`", e.inner(), e.path())
    })
}

/// A refund as the record that travels between nodes.
pub fn refund_record(refund: &Refund) -> Result<Record, NodeError> {
    serde_json::to_value(refund)
        .ok()
        .and_then(Record::from_value)
        .ok_or_else(|| NodeError::permanent(format!("refund {} could not be turned into a record", refund.refund_id)))
}

/// A record back as a refund; an error names the field at fault.
pub fn record_refund(record: &Record) -> Result<Refund, String> {
    let json = Json::Object(record.fields.clone());
    serde_path_to_error::deserialize(json).map_err(|e| {
        let id = record.fields.get("refund_id").map(Json::to_string).unwrap_or_else(|| "?".into());
        format!("record (refund_id {id}) is not a refund: {} at `{}`", e.inner(), e.path())
    })
}

/// The cursor of `platform`'s `stream`, holding `value`.
pub fn cursor(platform: &dyn Platform, stream: &str, value: Json) -> Cursor {
    Cursor { platform: platform.name().to_owned(), shop: platform.shop().to_owned(), stream: stream.to_owned(), value }
}

/// The platform's clock, as far as a sync can trust it: now, to the whole
/// second, minus one second, so that no order can still be written into a
/// window that has already been read.
pub fn settled_now() -> DateTime<Utc> {
    let now = Utc::now();
    let whole = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    whole - chrono::Duration::seconds(1)
}

/// Reads the `modified_until` time of an increment cursor value.
pub fn modified_until(value: &Json) -> Option<DateTime<Utc>> {
    value.get("modified_until")?.as_str()?.parse().ok()
}

/// The longest rate-limit ban a call waits out, and the longest bans in a
/// row wait in all; past it (a daily quota, or a gateway that bans every
/// call anew) the run pauses, and its cursor resumes it on a later run.
pub const MAX_BAN_WAIT: Duration = Duration::from_secs(120);

/// Whether a ban of `ban` is waited out: it is short, and the bans met in a
/// row on the key (no call went through between them) are few and short —
/// else waiting would only bounce between bans for ever.
fn waits_out(platform: &dyn Platform, ban: Duration) -> bool {
    let streak = platform.guard().gate().ban_streak();
    ban <= MAX_BAN_WAIT && streak.bans < MAX_BANS_IN_A_ROW && streak.waited <= MAX_BAN_WAIT
}

/// A platform call that did not succeed, as the sync nodes handle it.
#[derive(Debug)]
pub enum CallFailure {
    /// The platform refuses queries this heavy for now
    /// (`isv.trade-service-rejection`): shrink the window and wait.
    Overloaded(PlatformError),
    /// Anything else, already classified for the engine.
    Node(NodeError),
}

impl From<CallFailure> for NodeError {
    fn from(failure: CallFailure) -> Self {
        match failure {
            // A caller that cannot shrink its query retries it as a whole.
            CallFailure::Overloaded(error) => NodeError::transient(error.to_string()),
            CallFailure::Node(error) => error,
        }
    }
}

impl From<NodeError> for CallFailure {
    fn from(error: NodeError) -> Self {
        Self::Node(error)
    }
}

/// Calls the platform, retrying with backoff and jitter only what passes by
/// itself: network errors, timeouts, the platform's own faults and answers
/// of no known shape; a short rate-limit ban after exactly the seconds the
/// platform gave, as long as the bans in a row stay few and short
/// ([`MAX_BANS_IN_A_ROW`], [`MAX_BAN_WAIT`]). Anomalous answers are stored
/// as they happen.
///
/// What retrying cannot fix returns at once: an overloaded platform to the
/// caller (who shrinks the query), a long ban and an expired session as a
/// halt of the run, stored so every later run and process knows (the
/// session also raises an alert), and the caller's own mistakes (arguments,
/// signature, permission) as permanent errors.
pub async fn call_platform<T, F, Fut>(ctx: &NodeContext, platform: &dyn Platform, mut call: F) -> Result<T, CallFailure>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PlatformError>>,
{
    use backon::{ExponentialBuilder, Retryable};

    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(6)
        .with_jitter();
    let anomalies = std::sync::Mutex::new(Vec::new());
    let attempts = (|| call())
        .retry(backoff)
        .when(|error| match error.kind {
            ErrorKind::RateLimited { ban } => waits_out(platform, ban),
            ErrorKind::Overloaded => false,
            kind => kind.is_retryable(),
        })
        .adjust(|error, delay| match error.kind {
            ErrorKind::RateLimited { ban } => Some(ban),
            _ => delay,
        })
        .notify(|error, delay| {
            if let ErrorKind::RateLimited { .. } = error.kind {
                remember_ban(ctx, platform, error);
                ctx.activity.waiting(delay, WaitReason::Ban);
            }
            if let ErrorKind::Malformed(anomaly) = error.kind {
                anomalies.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(anomaly_of(ctx, platform, error, anomaly));
            }
            tracing::warn!(node_id = %ctx.node_id, run_id = %ctx.run_id, %error, ?delay, "Platform call failed; retrying.");
        });
    let result = tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => return Err(NodeError::cancelled().into()),
        result = attempts => result,
    };
    let mut anomalies = anomalies.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(error) = &result {
        if let ErrorKind::Malformed(anomaly) = error.kind {
            anomalies.push(anomaly_of(ctx, platform, error, anomaly));
        }
    }
    if !anomalies.is_empty() {
        if let Err(error) = ctx.store.record_anomalies(&anomalies, Utc::now()).await {
            tracing::warn!(node_id = %ctx.node_id, %error, "Could not store {} anomalies.", anomalies.len());
        }
    }
    match result {
        Ok(value) => {
            platform.guard().gate().went_through();
            Ok(value)
        }
        Err(error) => Err(match error.kind {
            ErrorKind::Overloaded => CallFailure::Overloaded(error),
            ErrorKind::RateLimited { ban } => CallFailure::Node(pause_for_ban(ctx, platform, &error, ban).await?),
            ErrorKind::SessionExpired => CallFailure::Node(stop_for_reauth(ctx, platform, &error).await?),
            _ => CallFailure::Node(error.into()),
        }),
    }
}

/// Stores a ban this call waits out, so `orderflow status` and other
/// processes see it while it lasts; in the background, as the wait is
/// already running.
fn remember_ban(ctx: &NodeContext, platform: &dyn Platform, error: &PlatformError) {
    let guard = platform.guard();
    let Some(until) = guard.gate().banned_until() else { return };
    let ban = AppBan {
        platform: platform.name().to_owned(),
        app_key: guard.app_key().to_owned(),
        until,
        reason: error.message.clone(),
    };
    let store = ctx.store.clone();
    tokio::spawn(async move {
        if let Err(error) = store.save_ban(&ban, Utc::now()).await {
            tracing::warn!(%error, "Could not store the ban.");
        }
    });
}

fn anomaly_of(ctx: &NodeContext, platform: &dyn Platform, error: &PlatformError, anomaly: Anomaly) -> NewAnomaly {
    NewAnomaly {
        run_id: Some(ctx.run_id.clone()),
        platform: platform.name().to_owned(),
        shop: platform.shop().to_owned(),
        method: error.method.clone(),
        kind: anomaly.as_str().to_owned(),
        excerpt: error.message.clone(),
    }
}

/// Stores the app key's ban, so every process and later run waits it out
/// without calling, and halts this run: its cursors stay where they are.
async fn pause_for_ban(
    ctx: &NodeContext,
    platform: &dyn Platform,
    error: &PlatformError,
    ban: Duration,
) -> Result<NodeError, NodeError> {
    let guard = platform.guard();
    let until =
        guard.gate().banned_until().unwrap_or_else(|| Utc::now() + chrono::Duration::from_std(ban).unwrap_or_default());
    let streak = guard.gate().ban_streak();
    let why = if ban > MAX_BAN_WAIT {
        format!("banned by {} until {until} (rate limit)", platform.name())
    } else {
        format!(
            "banned by {} {} times in a row ({} s in all) without a call going through, now until {until} (rate limit)",
            platform.name(),
            streak.bans,
            streak.waited.as_secs()
        )
    };
    let stored = AppBan {
        platform: platform.name().to_owned(),
        app_key: guard.app_key().to_owned(),
        until,
        reason: format!("{why}: {}", error.message),
    };
    ctx.store.save_ban(&stored, Utc::now()).await?;
    Ok(NodeError::halted(
        Halt::Paused,
        format!(
            "the app key {} is {why}: the run stops here and resumes from its cursor on a later run ({error})",
            guard.app_key()
        ),
    ))
}

/// Marks the shop `needs_reauth` and raises one alert for it; its calls have
/// already stopped (see [`crate::platforms::guard::ShopGuard`]).
async fn stop_for_reauth(
    ctx: &NodeContext,
    platform: &dyn Platform,
    error: &PlatformError,
) -> Result<NodeError, NodeError> {
    let now = Utc::now();
    let reason = error.to_string();
    if ctx.store.mark_needs_reauth(platform.name(), platform.shop(), &reason, now).await? {
        let alert = NewAlert {
            kind: NEEDS_REAUTH_ALERT.to_owned(),
            platform: platform.name().to_owned(),
            shop: platform.shop().to_owned(),
            tid: None,
            detail: format!("The seller of shop {:?} must authorise the app again: {reason}", platform.shop()),
        };
        ctx.store.raise_alert(&alert, now).await?;
    }
    Ok(NodeError::halted(
        Halt::NeedsReauth,
        format!(
            "shop {:?} must be authorised again (its session was refused); its flows stop until `orderflow reauthorized {}` ({error})",
            platform.shop(),
            platform.shop()
        ),
    ))
}

/// Waits `wait` after the platform refused a query as too heavy
/// (`isv.trade-service-rejection`; TOP advises about three minutes).
pub async fn wait_out_overload(ctx: &NodeContext, error: &PlatformError, wait: Duration) -> Result<(), NodeError> {
    tracing::warn!(node_id = %ctx.node_id, run_id = %ctx.run_id, %error, wait = %Span(wait),
        "The platform refuses queries this heavy for now; waiting.");
    ctx.activity.waiting(wait, WaitReason::Overloaded);
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(NodeError::cancelled()),
        () = tokio::time::sleep(wait) => Ok(()),
    }
}

/// The default wait after an overloaded answer.
pub fn default_overload_wait() -> Span {
    Span(Duration::from_secs(180))
}

/// The alert kind raised when a shop's session is refused.
pub const NEEDS_REAUTH_ALERT: &str = "needs_reauth";

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::engine::node::ErrorClass;
    use crate::flow::OnError;
    use crate::nodes::testing::{FakeShop, node_ctx};
    use crate::platforms::taobao::error::ApiError;
    use crate::store::Store;

    /// A TOP refusal as the client reports it, the ban noted on the key.
    fn refused(shop: &FakeShop, body: Json) -> PlatformError {
        let error = ApiError::from_json(&body).into_platform_error("taobao.trades.sold.increment.get");
        shop.guard().observe(&error);
        error
    }

    #[tokio::test]
    async fn codes_4_and_8_are_waited_out_and_the_call_after_the_ban_goes_through() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ctx = node_ctx(&store, OnError::Fail);
        let shop = FakeShop::new([], None);
        for (code, msg) in [(4, "User Call Limited"), (8, "App Call Exceeds Limited Frequency")] {
            let attempts = AtomicU32::new(0);
            let started = Instant::now();
            let body =
                serde_json::json!({"code": code, "msg": msg, "sub_msg": "This ban will last for 1 more seconds"});
            let answer = call_platform(&ctx, shop.as_ref(), || async {
                if attempts.fetch_add(1, Ordering::SeqCst) == 0 { Err(refused(&shop, body.clone())) } else { Ok(code) }
            })
            .await;
            assert_eq!(answer.ok(), Some(code), "code {code} is waited out");
            assert_eq!(attempts.load(Ordering::SeqCst), 2, "one call into the ban, one after it");
            assert!(
                started.elapsed() >= Duration::from_secs(1),
                "the ban's second was waited: {:?}",
                started.elapsed()
            );
            assert_eq!(shop.guard().gate().ban_streak().bans, 0, "the call that went through ends the streak");
        }
    }

    #[tokio::test]
    async fn bans_in_a_row_pause_the_run_after_a_few() {
        let store = Store::connect("sqlite::memory:").await.unwrap();
        let ctx = node_ctx(&store, OnError::Fail);
        let shop = FakeShop::new([], None);
        let attempts = AtomicU32::new(0);
        let body = serde_json::json!({"code": 7, "msg": "App Call Limited", "sub_msg": "This ban will last for 1 more seconds"});
        let answer = call_platform(&ctx, shop.as_ref(), || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(refused(&shop, body.clone()))
        })
        .await;
        let Err(CallFailure::Node(error)) = answer else { panic!("a ban every call cannot succeed: {answer:?}") };
        assert_eq!(error.class, ErrorClass::Halted(Halt::Paused), "{error:?}");
        assert!(error.message.contains("4 times in a row"), "{}", error.message);
        assert_eq!(attempts.load(Ordering::SeqCst), MAX_BANS_IN_A_ROW, "bounded: no call after the last ban");
        let bans = store.active_bans(Utc::now()).await.unwrap();
        assert_eq!(bans.len(), 1, "the ban is recorded for later runs: {bans:?}");
        assert!(bans[0].reason.contains("in a row"), "{}", bans[0].reason);
    }

    #[tokio::test]
    async fn a_flow_resumes_from_its_own_cursor_else_from_the_shops() {
        use crate::nodes::testing::{FakeShop, node_ctx};
        let store = crate::store::Store::connect("sqlite::memory:").await.unwrap();
        let ctx = node_ctx(&store, crate::flow::OnError::Fail);
        let shop = FakeShop::new([], None);
        let value = |until: &str| serde_json::json!({ "modified_until": until });
        let save = |stream: &str, until: &str| {
            let cursor = cursor(shop.as_ref(), stream, value(until));
            let store = store.clone();
            async move { store.save_orders(&[], &[cursor]).await.unwrap() }
        };

        let (stream, start) = resume_point(&ctx, shop.as_ref(), INCREMENT_STREAM).await.unwrap();
        assert_eq!((stream.as_str(), start), ("orders.increment/test/under_test", None));
        save(INCREMENT_STREAM, "2026-11-01T00:00:00Z").await;
        save("orders.increment/other-flow/under_test", "2026-11-03T00:00:00Z").await;
        let (_, start) = resume_point(&ctx, shop.as_ref(), INCREMENT_STREAM).await.unwrap();
        assert_eq!(start, Some(value("2026-11-01T00:00:00Z")), "the shop's handover point, not another flow's");
        save(&stream, "2026-11-02T00:00:00Z").await;
        let (_, start) = resume_point(&ctx, shop.as_ref(), INCREMENT_STREAM).await.unwrap();
        assert_eq!(start, Some(value("2026-11-02T00:00:00Z")), "its own cursor");
    }

    #[test]
    fn spans_read_human_durations_and_refuse_the_rest() {
        let span: Span = serde_json::from_value(Json::from("1h 30m")).unwrap();
        assert_eq!(span.0, Duration::from_secs(5400));
        let error = serde_json::from_value::<Span>(Json::from("soon")).unwrap_err().to_string();
        assert!(error.contains("\"soon\" is not a duration"), "{error}");
    }
}
