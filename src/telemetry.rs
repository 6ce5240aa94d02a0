//! The metrics orderflow reports, named in one place.
//!
//! Code records through the `metrics` facade with the functions below; with
//! no recorder installed (tests, `orderflow run`) they cost next to nothing.
//! `orderflow serve` installs a Prometheus recorder and serves `/metrics`.

use std::time::Duration;

/// API calls by platform, method and outcome (`ok` or the error class).
pub const API_CALLS: &str = "orderflow_api_calls_total";
/// API call latency, seconds, by platform and method.
pub const API_LATENCY: &str = "orderflow_api_call_duration_seconds";

/// Records one answered (or failed) platform API call. `outcome` is `ok` or
/// the error class (`remote`, `rate_limited`, `malformed_html`, …).
pub fn record_api_call(platform: &'static str, method: &str, outcome: &'static str, elapsed: Duration) {
    let method = method.to_owned();
    metrics::counter!(API_CALLS, "platform" => platform, "method" => method.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!(API_LATENCY, "platform" => platform, "method" => method).record(elapsed.as_secs_f64());
}
