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
pub mod set_aside;

pub use set_aside::{ListedBy, keep_readable, set_aside_unreadable};

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

use crate::engine::NodeContext;
use crate::engine::node::{Halt, NodeError};
use crate::platforms::{Anomaly, ErrorKind, Order, Platform, PlatformError, Refund};
use crate::record::Record;
use crate::store::{AppBan, Cursor, NewAlert, NewAnomaly};

/// The cursor stream of `fetch_increment`: `{"modified_until": time}`.
pub const INCREMENT_STREAM: &str = "orders.increment";
/// The cursor stream of `fetch_full`: see `fetch_full`'s `Backfill`.
pub const FULL_STREAM: &str = "orders.full";
/// The cursor stream of `fetch_refunds`: `{"modified_until": time}`.
pub const REFUNDS_STREAM: &str = "refunds.increment";

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

/// The longest rate-limit ban a call waits out; a longer one (a daily
/// quota) pauses the run, whose cursor then resumes it on a later run.
pub const MAX_BAN_WAIT: Duration = Duration::from_secs(120);

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
/// platform gave. Anomalous answers are stored as they happen.
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
            ErrorKind::RateLimited { ban } => ban <= MAX_BAN_WAIT,
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
        Ok(value) => Ok(value),
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
    let stored = AppBan {
        platform: platform.name().to_owned(),
        app_key: guard.app_key().to_owned(),
        until,
        reason: error.message.clone(),
    };
    ctx.store.save_ban(&stored, Utc::now()).await?;
    Ok(NodeError::halted(
        Halt::Paused,
        format!(
            "the app key {} is banned by {} until {until} (rate limit): the run stops here and resumes from its cursor on a later run ({error})",
            guard.app_key(),
            platform.name()
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
    use super::*;

    #[test]
    fn spans_read_human_durations_and_refuse_the_rest() {
        let span: Span = serde_json::from_value(Json::from("1h 30m")).unwrap();
        assert_eq!(span.0, Duration::from_secs(5400));
        let error = serde_json::from_value::<Span>(Json::from("soon")).unwrap_err().to_string();
        assert!(error.contains("\"soon\" is not a duration"), "{error}");
    }
}
