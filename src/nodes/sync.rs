//! What the order-sync nodes share: orders as records, the cursor streams
//! they resume from, and durations written as `30m` in settings.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer};
use serde_json::Value as Json;

use super::NodeError;
use crate::platforms::{Order, Platform};
use crate::record::Record;
use crate::store::Cursor;

/// The cursor stream of `fetch_increment`: `{"modified_until": time}`.
pub const INCREMENT_STREAM: &str = "orders.increment";
/// The cursor stream of `fetch_full`: see `fetch_full`'s `Backfill`.
pub const FULL_STREAM: &str = "orders.full";

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
/// quota) ends the run, whose cursor then resumes it on a later run.
pub const MAX_BAN_WAIT: Duration = Duration::from_secs(120);

/// Calls the platform, retrying what passes by itself: the platform's own
/// faults and malformed answers with backoff and jitter, a rate-limit ban
/// after exactly the seconds the platform gave. Other errors (session,
/// signature, arguments) return at once: retrying cannot fix them.
pub async fn call_platform<T, F, Fut>(ctx: &super::NodeContext, mut call: F) -> Result<T, NodeError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::platforms::PlatformError>>,
{
    use backon::{ExponentialBuilder, Retryable};

    use crate::platforms::ErrorKind;

    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(10))
        .with_max_times(6)
        .with_jitter();
    let attempts = (|| call())
        .retry(backoff)
        .when(|error| match error.kind {
            ErrorKind::RateLimited { ban } => ban <= MAX_BAN_WAIT,
            kind => kind.is_retryable(),
        })
        .adjust(|error, delay| match error.kind {
            ErrorKind::RateLimited { ban } => Some(ban),
            _ => delay,
        })
        .notify(|error, delay| {
            tracing::warn!(node_id = %ctx.node_id, run_id = %ctx.run_id, %error, ?delay, "Platform call failed; retrying.");
        });
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(NodeError::cancelled()),
        result = attempts => result.map_err(NodeError::from),
    }
}

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
