//! The circuit breaker of a shop's incremental channel: when too many of its
//! recent calls fail, the flow stops leaning on it and pulls the recent
//! period in full once in a while instead, then probes the channel again.
//!
//! The breaker follows the usual count-based design (as in Resilience4j):
//! `closed` counts the outcomes of the last `window` operations — a platform
//! call with all its retries, so a fault a retry recovered is no failure —
//! and opens when, with at least `min_calls` of them, the share that failed
//! after their retries passes `failure_rate`; `open` lasts `probe_after`, during which the flow makes a
//! full pull every `full_pull_every`; then `half_open` lets one run use the
//! channel again and closes if its calls were healthy, or opens again. The
//! state is stored after every run (table `breakers`), so it holds across
//! runs and processes; times come from the engine's clock, so tests can move
//! it.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{CallFailure, Span};
use crate::engine::node::ErrorClass;
use crate::store::BreakerRow;

/// `breaker:` of a node reading an incremental channel.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettings {
    /// Whether the breaker watches the channel at all.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// The share of operations (a call with its retries) that failed after
    /// their retries, in percent, above which the breaker opens.
    #[serde(default = "default_failure_rate")]
    #[schemars(range(min = 0.0, max = 100.0))]
    pub failure_rate: f64,
    /// How many of the latest operations the share is taken over.
    #[serde(default = "default_window")]
    #[schemars(range(min = 1, max = 1000))]
    pub window: u32,
    /// The fewest operations in the window before the share counts.
    #[serde(default = "default_min_calls")]
    #[schemars(range(min = 1))]
    pub min_calls: u32,
    /// While open, how often the recent period is pulled in full.
    #[serde(default = "default_full_pull_every")]
    pub full_pull_every: Span,
    /// How far back (by creation time) each full pull reaches.
    #[serde(default = "default_full_pull_period")]
    pub full_pull_period: Span,
    /// How long the breaker stays open before a run probes the channel.
    #[serde(default = "default_probe_after")]
    pub probe_after: Span,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            enabled: enabled(),
            failure_rate: default_failure_rate(),
            window: default_window(),
            min_calls: default_min_calls(),
            full_pull_every: default_full_pull_every(),
            full_pull_period: default_full_pull_period(),
            probe_after: default_probe_after(),
        }
    }
}

impl BreakerSettings {
    /// A breaker that never opens: a flow without `breaker:`.
    pub fn off() -> Self {
        Self { enabled: false, ..Self::default() }
    }
}

fn enabled() -> bool {
    true
}

fn default_failure_rate() -> f64 {
    5.0
}

fn default_window() -> u32 {
    100
}

fn default_min_calls() -> u32 {
    20
}

fn default_full_pull_every() -> Span {
    Span(Duration::from_secs(3600))
}

fn default_full_pull_period() -> Span {
    Span(Duration::from_secs(24 * 3600))
}

fn default_probe_after() -> Span {
    Span(Duration::from_secs(3600))
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// The channel is healthy and used.
    Closed,
    /// The channel failed too often; full pulls stand in for it.
    Open,
    /// One run tries the channel again.
    HalfOpen,
}

impl BreakerState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "open" => Self::Open,
            "half_open" => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run does with the channel, as the breaker decides at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Read the channel (closed, or half-open probing).
    Incremental,
    /// Pull the recent period in full instead.
    FullPull,
    /// Nothing until the next full pull, at this time.
    Wait(DateTime<Utc>),
}

/// One channel's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    /// The latest outcomes, oldest first; `true` is a failure.
    outcomes: VecDeque<bool>,
    opened_at: Option<DateTime<Utc>>,
    last_full_pull: Option<DateTime<Utc>>,
}

impl Breaker {
    /// A closed breaker with no history.
    pub fn new(settings: BreakerSettings) -> Self {
        Self { settings, state: BreakerState::Closed, outcomes: VecDeque::new(), opened_at: None, last_full_pull: None }
    }

    /// The breaker as stored, under (possibly changed) `settings`.
    pub fn from_row(settings: BreakerSettings, row: &BreakerRow) -> Self {
        let mut breaker = Self::new(settings);
        breaker.state = BreakerState::parse(&row.state);
        breaker.outcomes = row.outcomes.chars().map(|c| c == 'x').collect();
        breaker.trim();
        breaker.opened_at = row.opened_at;
        breaker.last_full_pull = row.last_degraded_at;
        breaker
    }

    /// The row to store for `platform`'s `shop` and `channel`.
    pub fn to_row(&self, platform: &str, shop: &str, channel: &str, now: DateTime<Utc>) -> BreakerRow {
        BreakerRow {
            platform: platform.to_owned(),
            shop: shop.to_owned(),
            channel: channel.to_owned(),
            state: self.state.as_str().to_owned(),
            outcomes: self.outcomes.iter().map(|failed| if *failed { 'x' } else { '.' }).collect(),
            opened_at: self.opened_at,
            last_degraded_at: self.last_full_pull,
            updated_at: now,
        }
    }

    /// The settings it runs under.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// The failure share of the window in percent, and the operations in it.
    pub fn failure_rate(&self) -> (f64, usize) {
        let calls = self.outcomes.len();
        let failed = self.outcomes.iter().filter(|failed| **failed).count();
        (if calls == 0 { 0.0 } else { failed as f64 * 100.0 / calls as f64 }, calls)
    }

    /// Decides what a run starting at `now` does.
    pub fn plan(&mut self, now: DateTime<Utc>) -> Plan {
        if !self.settings.enabled {
            return Plan::Incremental;
        }
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => Plan::Incremental,
            BreakerState::Open => {
                let opened = self.opened_at.unwrap_or(now);
                if now - opened >= self.settings.probe_after.chrono() {
                    self.state = BreakerState::HalfOpen;
                    self.outcomes.clear();
                    tracing::info!(state = %self.state, "Circuit breaker probes the incremental channel.");
                    return Plan::Incremental;
                }
                match self.last_full_pull {
                    Some(last) if now - last < self.settings.full_pull_every.chrono() => {
                        Plan::Wait(last + self.settings.full_pull_every.chrono())
                    }
                    _ => Plan::FullPull,
                }
            }
        }
    }

    /// Counts one operation's outcome, after its retries: a platform fault
    /// or anomalous answer that retries did not get past is a failure; an
    /// overloaded platform (the node halves its window and waits), bans,
    /// sessions and our own mistakes say nothing about the channel's health
    /// and are not counted.
    pub fn record<T>(&mut self, result: &Result<T, CallFailure>) {
        let failed = match result {
            Ok(_) => false,
            Err(CallFailure::Node(error)) if error.class == ErrorClass::Transient => true,
            Err(CallFailure::Overloaded(_) | CallFailure::Node(_)) => return,
        };
        self.outcomes.push_back(failed);
        self.trim();
    }

    fn trim(&mut self) {
        while self.outcomes.len() > self.settings.window.max(1) as usize {
            self.outcomes.pop_front();
        }
    }

    /// Opens the breaker when the window says so; true when it just opened.
    /// A half-open probe needs no minimum of calls: one bad sign reopens.
    pub fn trips(&mut self, now: DateTime<Utc>) -> bool {
        if !self.settings.enabled || self.state == BreakerState::Open {
            return false;
        }
        let (rate, calls) = self.failure_rate();
        let enough = self.state == BreakerState::HalfOpen || calls >= self.settings.min_calls as usize;
        if enough && rate > self.settings.failure_rate {
            tracing::warn!(from = %self.state, failure_rate = rate, calls,
                "Circuit breaker opens: the incremental channel fails too often; pulling the recent period in full instead.");
            self.state = BreakerState::Open;
            self.opened_at = Some(now);
            self.last_full_pull = None;
            return true;
        }
        false
    }

    /// Ends a run that used the channel: a healthy probe closes the breaker.
    pub fn finish(&mut self) {
        if self.state == BreakerState::HalfOpen {
            let (rate, calls) = self.failure_rate();
            if rate <= self.settings.failure_rate {
                tracing::info!(
                    failure_rate = rate,
                    calls,
                    "Circuit breaker closes: the incremental channel is healthy."
                );
                self.state = BreakerState::Closed;
                self.opened_at = None;
                self.last_full_pull = None;
            }
        }
    }

    /// Notes a full pull made at `now`.
    pub fn pulled_in_full(&mut self, now: DateTime<Utc>) {
        self.last_full_pull = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::engine::node::{Halt, NodeError};
    use crate::platforms::{ErrorKind, PlatformError};

    /// A call that still failed after its retries.
    fn fault() -> Result<(), CallFailure> {
        Err(CallFailure::Node(NodeError::transient("isp.top-remote-connection-timeout, after 7 attempts")))
    }

    fn hours(n: i64) -> chrono::Duration {
        chrono::Duration::hours(n)
    }

    #[test]
    fn it_opens_past_the_rate_pulls_hourly_probes_and_closes_when_healthy() {
        let t0 = Utc::now();
        let mut breaker = Breaker::new(BreakerSettings { min_calls: 20, ..BreakerSettings::default() });
        for i in 0..19 {
            breaker.record(&if i % 5 == 0 { fault() } else { Ok(()) });
        }
        assert!(!breaker.trips(t0), "19 calls are fewer than min_calls");
        breaker.record(&Ok(()));
        assert!(breaker.trips(t0), "4 failures in 20 calls is 20 %");
        assert_eq!(breaker.state(), BreakerState::Open);

        assert_eq!(breaker.plan(t0), Plan::FullPull);
        breaker.pulled_in_full(t0);
        assert_eq!(breaker.plan(t0 + chrono::Duration::minutes(30)), Plan::Wait(t0 + hours(1)));
        assert_eq!(breaker.plan(t0 + chrono::Duration::minutes(59)), Plan::Wait(t0 + hours(1)));
        // probe_after is also an hour: the next run probes instead.
        assert_eq!(breaker.plan(t0 + hours(1)), Plan::Incremental);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        breaker.record(&Ok(()));
        breaker.record(&fault());
        assert!(breaker.trips(t0 + hours(1)), "a failing probe reopens at once");
        assert_eq!(breaker.plan(t0 + hours(1)), Plan::FullPull, "reopened: a full pull is due");

        breaker.pulled_in_full(t0 + hours(1));
        assert_eq!(breaker.plan(t0 + hours(2)), Plan::Incremental);
        for _ in 0..5 {
            breaker.record(&Ok(()));
        }
        assert!(!breaker.trips(t0 + hours(2)));
        breaker.finish();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn overloads_bans_sessions_and_our_own_mistakes_do_not_count() {
        let mut breaker = Breaker::new(BreakerSettings { min_calls: 1, ..BreakerSettings::default() });
        breaker.record::<()>(&Err(CallFailure::Node(NodeError::halted(Halt::Paused, "banned"))));
        breaker.record::<()>(&Err(CallFailure::Node(NodeError::halted(Halt::NeedsReauth, "session"))));
        breaker.record::<()>(&Err(CallFailure::Node(NodeError::permanent("code 41 (Invalid Arguments)"))));
        breaker.record::<()>(&Err(CallFailure::Node(NodeError::cancelled())));
        breaker.record::<()>(&Err(CallFailure::Overloaded(PlatformError {
            kind: ErrorKind::Overloaded,
            method: "m".into(),
            message: "isv.trade-service-rejection".into(),
            request_id: None,
        })));
        assert_eq!(breaker.failure_rate(), (0.0, 0));
        breaker.record(&fault());
        assert_eq!(breaker.failure_rate(), (100.0, 1), "a call failed after its retries");
    }

    #[test]
    fn the_window_slides_and_survives_a_round_trip_through_the_store() {
        let settings = BreakerSettings { window: 10, min_calls: 10, ..BreakerSettings::default() };
        let mut breaker = Breaker::new(settings.clone());
        for _ in 0..3 {
            breaker.record(&fault());
        }
        for _ in 0..10 {
            breaker.record(&Ok(()));
        }
        assert_eq!(breaker.failure_rate(), (0.0, 10), "old failures slid out");
        breaker.record(&fault());
        let now = Utc::now();
        let row = breaker.to_row("taobao", "s", "orders.increment", now);
        assert_eq!(row.outcomes, ".........x");
        let back = Breaker::from_row(settings, &row);
        assert_eq!(back.failure_rate(), (10.0, 10));
        assert_eq!(back.state(), BreakerState::Closed);
    }

    #[test]
    fn a_disabled_breaker_never_opens() {
        let mut breaker = Breaker::new(BreakerSettings { enabled: false, min_calls: 1, ..BreakerSettings::default() });
        breaker.record(&fault());
        assert!(!breaker.trips(Utc::now()));
        assert_eq!(breaker.plan(Utc::now()), Plan::Incremental);
    }
}
