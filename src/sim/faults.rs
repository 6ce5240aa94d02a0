//! What goes wrong on the way: injected faults (a remote timeout, a proxy's
//! HTML error page, a body cut short) and the app's call quota with its bans.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A fault served instead of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// `code 15`, `isp.top-remote-connection-timeout`: the platform's
    /// backend timed out.
    RemoteTimeout,
    /// HTTP 502 with an HTML page, as a proxy in front of the gateway sends.
    BadGateway,
    /// The real answer, cut off in the middle.
    Truncated,
}

/// Sets the fault stream apart from the shop's streams.
const FAULT_STREAM: u64 = 0x6661_756c_7473;

/// Decides which calls fail, from a seeded stream: the same calls in the same
/// order fail the same way.
#[derive(Debug)]
pub(crate) struct Faults {
    rate: f64,
    rng: ChaCha8Rng,
}

impl Faults {
    /// Faults at `rate` (a probability per call, clamped to 0–1).
    pub(crate) fn new(seed: u64, rate: f64) -> Self {
        Self { rate: clamp_rate(rate), rng: ChaCha8Rng::seed_from_u64(seed ^ FAULT_STREAM) }
    }

    /// Changes the rate.
    pub(crate) fn set_rate(&mut self, rate: f64) {
        self.rate = clamp_rate(rate);
    }

    /// The fault for the next call, if it gets one.
    pub(crate) fn roll(&mut self) -> Option<Fault> {
        if self.rate <= 0.0 || !self.rng.random_bool(self.rate) {
            return None;
        }
        Some(match self.rng.random_range(0..3) {
            0 => Fault::RemoteTimeout,
            1 => Fault::BadGateway,
            _ => Fault::Truncated,
        })
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
}

impl Limiter {
    /// A quota of `per_min` calls a minute; `None` for no quota.
    pub(crate) fn new(per_min: Option<u32>) -> Self {
        Self { per_min, calls: VecDeque::new(), banned_until: None }
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

    /// Bans the app for `duration` from `now`, as if over its quota.
    pub(crate) fn ban_for(&mut self, duration: Duration, now: Instant) {
        self.banned_until = Some(now + duration);
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
        let left = limiter.admit(t0 + Duration::from_secs(10)).expect_err("over the quota");
        assert_eq!(ban_seconds(left), 50);
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
        assert!(limiter.admit(t0 + Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn faults_follow_the_rate() {
        let mut never = Faults::new(1, 0.0);
        assert!((0..1000).all(|_| never.roll().is_none()));
        let mut always = Faults::new(1, 1.0);
        let kinds: Vec<Fault> = (0..300).filter_map(|_| always.roll()).collect();
        assert_eq!(kinds.len(), 300);
        for kind in [Fault::RemoteTimeout, Fault::BadGateway, Fault::Truncated] {
            assert!(kinds.contains(&kind));
        }
    }
}
