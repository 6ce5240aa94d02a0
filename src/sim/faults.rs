//! What goes wrong on the way: injected faults (every kind of broken answer
//! a real gateway or the proxies in front of it send) and the app's call
//! quota with its bans.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A fault served instead of a call's answer; `docs/simulator.md` shows each
/// one's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// `code 15`, `isp.top-remote-connection-timeout`: the platform's
    /// backend timed out.
    RemoteTimeout,
    /// HTTP 503 with a short plain-text body, as a load balancer sends when
    /// the gateway is overloaded.
    ServiceUnavailable,
    /// HTTP 502 with an HTML page, as a proxy in front of the gateway sends.
    BadGateway,
    /// The real answer, cut off in the middle.
    Truncated,
    /// HTTP 200 with no body at all.
    EmptyBody,
    /// A success whose records are gone: a list method's list key (`trades`,
    /// `refunds`, …) is removed while `total_results` or `has_next` still say
    /// what the real answer said; a single-record method's record key
    /// (`trade`, `refund`) is removed, and the other methods' body is emptied.
    MissingList,
    /// The real answer with a field of the wrong type: a list's records
    /// (`trades.trade`, `refunds.refund`) or a single record (`trade`,
    /// `refund`) as their JSON text, an empty list's count or one field of
    /// another body (`tid` as `"#3900…"`, money as `{"amount": "200.07"}`,
    /// other text as an object, a nested object as its JSON text).
    WrongType,
    /// The real answer, after [`SimConfig::slow_answer`](super::SimConfig::slow_answer):
    /// a client with a shorter timeout times out.
    Slow,
    /// `code 15`, `isv.trade-service-rejection`: the trade service refuses
    /// a client that had too many timed-out requests. Only the trade list
    /// methods get it; the other methods get [`FaultKind::RemoteTimeout`].
    TradeServiceRejection,
}

impl FaultKind {
    /// Every kind, in declaration order: the default of
    /// [`SimConfig::fault_kinds`](super::SimConfig::fault_kinds).
    pub const ALL: [FaultKind; 9] = [
        FaultKind::RemoteTimeout,
        FaultKind::ServiceUnavailable,
        FaultKind::BadGateway,
        FaultKind::Truncated,
        FaultKind::EmptyBody,
        FaultKind::MissingList,
        FaultKind::WrongType,
        FaultKind::Slow,
        FaultKind::TradeServiceRejection,
    ];

    /// The snake_case name `--fault-kinds` and [`CallStats::by_fault`](super::CallStats::by_fault) use.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::RemoteTimeout => "remote_timeout",
            FaultKind::ServiceUnavailable => "service_unavailable",
            FaultKind::BadGateway => "bad_gateway",
            FaultKind::Truncated => "truncated",
            FaultKind::EmptyBody => "empty_body",
            FaultKind::MissingList => "missing_list",
            FaultKind::WrongType => "wrong_type",
            FaultKind::Slow => "slow",
            FaultKind::TradeServiceRejection => "trade_service_rejection",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that is none of [`FaultKind::ALL`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind {0:?} (expected one of: {names})", names = FaultKind::ALL.map(FaultKind::name).join(", "))]
pub struct UnknownFaultKind(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFaultKind;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        FaultKind::ALL.into_iter().find(|kind| kind.name() == text).ok_or_else(|| UnknownFaultKind(text.to_owned()))
    }
}

/// Sets the fault stream apart from the shop's streams.
const FAULT_STREAM: u64 = 0x6661_756c_7473;

/// Decides which calls fail and how, from a seeded stream: the same calls in
/// the same order fail the same way.
#[derive(Debug)]
pub(crate) struct Faults {
    rate: f64,
    /// Rates that replace `rate` for one method.
    method_rates: BTreeMap<String, f64>,
    /// Drawn from uniformly; a kind listed twice comes twice as often, and
    /// an empty list serves no faults.
    kinds: Vec<FaultKind>,
    rng: ChaCha8Rng,
}

impl Faults {
    /// Faults of `kinds` at `rate` (a probability per call, clamped to 0–1).
    pub(crate) fn new(seed: u64, rate: f64, kinds: &[FaultKind]) -> Self {
        Self {
            rate: clamp_rate(rate),
            method_rates: BTreeMap::new(),
            kinds: kinds.to_vec(),
            rng: ChaCha8Rng::seed_from_u64(seed ^ FAULT_STREAM),
        }
    }

    /// Changes the rate of the methods without their own.
    pub(crate) fn set_rate(&mut self, rate: f64) {
        self.rate = clamp_rate(rate);
    }

    /// Gives `method` its own rate, or with `None` takes it back to the
    /// common one.
    pub(crate) fn set_method_rate(&mut self, method: &str, rate: Option<f64>) {
        match rate {
            Some(rate) => self.method_rates.insert(method.to_owned(), clamp_rate(rate)),
            None => self.method_rates.remove(method),
        };
    }

    /// Changes the kinds faulted calls draw from.
    pub(crate) fn set_kinds(&mut self, kinds: &[FaultKind]) {
        self.kinds = kinds.to_vec();
    }

    /// The fault for the next call of `method`, if it gets one.
    pub(crate) fn roll(&mut self, method: &str) -> Option<FaultKind> {
        let rate = self.method_rates.get(method).copied().unwrap_or(self.rate);
        // Calls that cannot fail draw nothing, so a method without faults
        // leaves the other methods' sequence as it would be without it.
        if rate <= 0.0 || self.kinds.is_empty() || !self.rng.random_bool(rate) {
            return None;
        }
        Some(self.kinds[self.rng.random_range(0..self.kinds.len())])
    }

    /// A number from the fault stream below `n` (at least 1), for choices
    /// inside a fault such as which field gets the wrong type.
    pub(crate) fn pick(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n.max(1))
    }
}

fn clamp_rate(rate: f64) -> f64 {
    if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) }
}

/// The quota window TOP counts calls over.
const WINDOW: Duration = Duration::from_secs(60);

/// The app's call quota: at most `per_min` calls in any sliding minute. The
/// call over the quota starts a ban that lasts until the window has room
/// again; every call during a ban is refused with the seconds left.
#[derive(Debug)]
pub(crate) struct Limiter {
    per_min: Option<u32>,
    calls: VecDeque<Instant>,
    banned_until: Option<Instant>,
    /// Bans every call anew for this long, however slowly they come.
    ban_every_call: Option<Duration>,
}

impl Limiter {
    /// A quota of `per_min` calls a minute; `None` for no quota.
    pub(crate) fn new(per_min: Option<u32>) -> Self {
        Self { per_min, calls: VecDeque::new(), banned_until: None, ban_every_call: None }
    }

    /// Admits a call at `now`, or refuses it with how long the ban still
    /// lasts.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.banned_until {
            if until > now {
                return Err(until - now);
            }
            self.banned_until = None;
        }
        if let Some(ban) = self.ban_every_call {
            self.banned_until = Some(now + ban);
            return Err(ban);
        }
        let Some(per_min) = self.per_min else { return Ok(()) };
        while self.calls.front().is_some_and(|at| now.duration_since(*at) >= WINDOW) {
            self.calls.pop_front();
        }
        if self.calls.len() >= per_min as usize {
            let until = self.calls.front().map_or(now + WINDOW, |oldest| *oldest + WINDOW);
            let until = until.max(now + Duration::from_secs(1));
            self.banned_until = Some(until);
            return Err(until - now);
        }
        self.calls.push_back(now);
        Ok(())
    }

    /// Whether a ban is in force at `now` (the call that goes over the quota
    /// only starts one).
    pub(crate) fn banned_at(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|until| until > now)
    }

    /// Bans the app for `duration` from `now`, as if over its quota.
    pub(crate) fn ban_for(&mut self, duration: Duration, now: Instant) {
        self.banned_until = Some(now + duration);
    }

    /// From now on, answers every call with a new ban of `ban` (one that
    /// comes during a ban is told the time left), as a gateway whose quota
    /// never recovers; `None` ends it.
    pub(crate) fn ban_every_call(&mut self, ban: Option<Duration>) {
        self.ban_every_call = ban;
    }
}

/// Whole seconds left of a ban, as TOP writes them (rounded up, at least 1).
pub(crate) fn ban_seconds(left: Duration) -> u64 {
    (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quota_bans_until_the_window_has_room() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(Some(3));
        for s in 0..3 {
            assert!(limiter.admit(t0 + Duration::from_secs(s)).is_ok());
        }
        assert!(!limiter.banned_at(t0 + Duration::from_secs(10)), "full, but no ban yet");
        let left = limiter.admit(t0 + Duration::from_secs(10)).expect_err("over the quota");
        assert_eq!(ban_seconds(left), 50);
        assert!(limiter.banned_at(t0 + Duration::from_secs(10)), "the call over the quota started one");
        let left = limiter.admit(t0 + Duration::from_millis(30_500)).expect_err("still banned");
        assert_eq!(ban_seconds(left), 30);
        assert!(limiter.admit(t0 + Duration::from_secs(60)).is_ok(), "the oldest call left the window");
    }

    #[test]
    fn a_manual_ban_holds_without_a_quota() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(None);
        limiter.ban_for(Duration::from_secs(5), t0);
        assert_eq!(limiter.admit(t0 + Duration::from_secs(1)).map_err(ban_seconds), Err(4));
        assert!(!limiter.banned_at(t0 + Duration::from_secs(5)));
        assert!(limiter.admit(t0 + Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn a_gateway_that_bans_every_call_bans_each_one_anew() {
        let t0 = Instant::now();
        let mut limiter = Limiter::new(None);
        limiter.ban_every_call(Some(Duration::from_secs(2)));
        assert_eq!(limiter.admit(t0).map_err(ban_seconds), Err(2));
        assert_eq!(limiter.admit(t0 + Duration::from_secs(1)).map_err(ban_seconds), Err(1), "the ban in force");
        assert_eq!(limiter.admit(t0 + Duration::from_secs(5)).map_err(ban_seconds), Err(2), "after it, a new one");
        limiter.ban_every_call(None);
        assert!(limiter.admit(t0 + Duration::from_secs(8)).is_ok());
    }

    const LIST: &str = "taobao.trades.sold.increment.get";

    #[test]
    fn faults_follow_the_rate_and_draw_every_kind() {
        let mut never = Faults::new(1, 0.0, &FaultKind::ALL);
        assert!((0..1000).all(|_| never.roll(LIST).is_none()));
        let mut always = Faults::new(1, 1.0, &FaultKind::ALL);
        let kinds: Vec<FaultKind> = (0..500).filter_map(|_| always.roll(LIST)).collect();
        assert_eq!(kinds.len(), 500);
        for kind in FaultKind::ALL {
            assert!(kinds.contains(&kind), "{kind}");
        }
        let mut none = Faults::new(1, 1.0, &[]);
        assert!((0..100).all(|_| none.roll(LIST).is_none()), "no kinds, no faults");
    }

    #[test]
    fn one_seed_gives_one_sequence_of_faults() {
        let run = |seed| {
            let mut faults = Faults::new(seed, 0.5, &FaultKind::ALL);
            (0..200).map(|_| faults.roll(LIST)).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn a_method_rate_overrides_the_common_rate_for_that_method_only() {
        let mut faults = Faults::new(3, 0.0, &[FaultKind::EmptyBody]);
        faults.set_method_rate(LIST, Some(1.0));
        assert!((0..100).all(|_| faults.roll(LIST) == Some(FaultKind::EmptyBody)));
        assert!((0..100).all(|_| faults.roll("taobao.trade.fullinfo.get").is_none()));
        faults.set_rate(1.0);
        faults.set_method_rate(LIST, Some(0.0));
        assert!((0..100).all(|_| faults.roll(LIST).is_none()));
        faults.set_method_rate(LIST, None);
        assert_eq!(faults.roll(LIST), Some(FaultKind::EmptyBody), "back to the common rate");
    }

    #[test]
    fn kinds_are_named_in_snake_case_and_parse_back() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.name().parse::<FaultKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        assert_eq!(" remote_timeout".parse::<FaultKind>(), Ok(FaultKind::RemoteTimeout));
        let error = "RemoteTimeout".parse::<FaultKind>().expect_err("not a name");
        assert!(error.to_string().contains("remote_timeout, service_unavailable"), "{error}");
    }
}
