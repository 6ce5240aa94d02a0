//! What every platform call passes first: the app key's rate limit and ban,
//! shared by every shop, flow and node of the process that uses that key, and
//! the shop's session.
//!
//! Platforms count calls and ban per app key (TOP's code 7 can last hours),
//! so the limiter and the ban live in one [`AppGate`] per key, and each shop's
//! [`ShopGuard`] points at its key's gate. A ban or an expired session is
//! known before the next call, so no call goes out into it: calling into a
//! ban prolongs it, and calling with a dead session only adds failures.
//!
//! The limit holds in every sliding minute, as the platform counts it: calls
//! are spaced evenly ([`Pace`]) with no burst, and the spacing is kept where
//! every process on the key sees it — Redis when configured, else the
//! database (`app_call_pace`, booked a few calls at a time), else only this
//! process's own `governor` limiter.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::shared::{Redis, SharedLimit, Turn};
use super::{ErrorKind, PlatformError};
use crate::activity::{Activity, Reporter, WaitReason};
use crate::store::Store;

/// How calls on one app key are spaced so that no sliding minute holds more
/// than `per_minute` of them, whenever it starts.
///
/// A token bucket with a burst (`governor`'s default quota) lets a fresh
/// process send a whole minute's allowance at once and then the next minute's
/// at the steady rate, close to twice the limit in the first minute; a
/// gateway counting a sliding minute bans it. Here every call has its own
/// time, one `interval` after the one before, and `per_minute` calls span 61
/// seconds: a call may go up to [`LATENESS`] after its time (a booked call
/// waits for a free caller) and the gateway's clock may see it a little
/// later or earlier still, and no minute holds more than `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// The time between two calls' times.
    pub interval: Duration,
    /// Calls booked in the database per write (about five seconds' worth).
    pub block: u32,
}

/// The span `per_minute` calls' times take: the minute platforms count
/// over, and a second to spare for lateness and jitter.
const SPAN: Duration = Duration::from_secs(61);
/// The longest a call may go after its time: half of [`SPAN`]'s spare
/// second, the other half for network jitter. A call missed by more is
/// dropped, as made later it could crowd the calls after it.
pub const LATENESS: Duration = Duration::from_millis(500);
/// How many seconds' worth of calls one booking in the database holds: a
/// write every few seconds at most, and little time lost when a process ends
/// with calls booked and unused.
const BOOKING_SPAN: Duration = Duration::from_secs(5);
/// Bans in a row (no call went through between them) a run waits out.
pub const MAX_BANS_IN_A_ROW: u32 = 4;

impl Pace {
    /// The pace of `per_minute` calls a minute.
    pub fn per_minute(per_minute: NonZeroU32) -> Self {
        let calls = per_minute.get();
        // Rounded up: `calls - 1` intervals must not fall short of the span.
        // One call a minute has no second call to space from.
        let gaps = u128::from(calls.saturating_sub(1).max(1));
        let interval = Duration::from_nanos(u64::try_from(SPAN.as_nanos().div_ceil(gaps)).unwrap_or(u64::MAX));
        let block = (BOOKING_SPAN.as_secs_f64() / interval.as_secs_f64()).floor().clamp(1.0, f64::from(calls)) as u32;
        Self { interval, block }
    }

    /// The same pace for `governor`: one call per interval, no burst.
    fn quota(self) -> Quota {
        Quota::with_period(self.interval.max(Duration::from_nanos(1)))
            .expect("the interval is not zero")
            .allow_burst(NonZeroU32::MIN)
    }
}

/// Calls booked in the database and not made yet: the `next` of `calls`
/// times, `first` and then one interval apart.
#[derive(Debug, Default)]
struct Booked {
    first: Option<Instant>,
    next: u32,
    calls: u32,
}

/// The bans met on a key since a call last went through.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BanStreak {
    /// How many bans began.
    pub bans: u32,
    /// How long they lasted in all.
    pub waited: Duration,
}

/// The rate limit and the ban of one app key on one platform.
///
/// With Redis configured, the limit and the ban are shared by every process
/// on the key (see `shared.rs`); without it, the database the process keeps
/// its runs in books the calls ([`Platforms::restore`](super::Platforms::restore)
/// hands it over); the process's own `governor` limiter takes over while
/// neither can be reached.
pub struct AppGate {
    platform: &'static str,
    app_key: String,
    pace: Pace,
    limiter: DefaultDirectRateLimiter,
    shared: Option<Arc<SharedLimit>>,
    /// Whether the fall-back to the own limiter was logged already.
    shared_failing: AtomicBool,
    /// The database that books the key's calls for every process.
    ledger: OnceLock<Store>,
    /// Calls booked in the ledger and not made yet; the lock also makes the
    /// callers of this process take them in turn.
    booked: tokio::sync::Mutex<Booked>,
    /// Whether the fall-back from the ledger was logged already.
    ledger_failing: AtomicBool,
    banned_until: Mutex<Option<DateTime<Utc>>>,
    streak: Mutex<BanStreak>,
    /// Where the calls let through and the quota waits are reported.
    activity: OnceLock<Reporter>,
}

impl AppGate {
    fn new(platform: &'static str, app_key: &str, per_minute: NonZeroU32, redis: Option<&Arc<Redis>>) -> Self {
        let pace = Pace::per_minute(per_minute);
        Self {
            platform,
            app_key: app_key.to_owned(),
            pace,
            limiter: RateLimiter::direct(pace.quota()),
            shared: redis.map(|redis| Arc::new(SharedLimit::new(redis.clone(), platform, app_key, pace))),
            shared_failing: AtomicBool::new(false),
            ledger: OnceLock::new(),
            booked: tokio::sync::Mutex::new(Booked::default()),
            ledger_failing: AtomicBool::new(false),
            banned_until: Mutex::new(None),
            streak: Mutex::new(BanStreak::default()),
            activity: OnceLock::new(),
        }
    }

    /// The key's pace.
    pub fn pace(&self) -> Pace {
        self.pace
    }

    /// Books this key's calls in `store` from now on, so that processes
    /// before and after this one, and beside it, keep one pace together
    /// (without Redis). The first store given stays.
    pub fn keep_calls_in(&self, store: &Store) {
        let _ = self.ledger.set(store.clone());
    }

    /// Reports the calls let through and the quota waits of this key to
    /// `reporter` from now on (a progress bar). The first reporter given stays.
    pub fn report_to(&self, reporter: &Reporter) {
        let _ = self.activity.set(reporter.clone());
    }

    /// Reports that the next call waits `wait` for the key's pace.
    fn pacing(&self, wait: Duration) {
        if let Some(reporter) = self.activity.get() {
            reporter.waiting(wait, WaitReason::RateLimit);
        }
    }

    /// Waits for the key's next call: the shared limiter's turn when there
    /// is one (learning of bans other processes saw), else a call booked in
    /// the database, else the own limiter.
    async fn wait_turn(&self) {
        if let Some(shared) = &self.shared {
            loop {
                match shared.turn().await {
                    Ok(Turn::Go) => {
                        self.shared_failing.store(false, Ordering::Relaxed);
                        return;
                    }
                    Ok(Turn::Wait(wait)) => {
                        self.pacing(wait);
                        tokio::time::sleep(wait).await;
                    }
                    Ok(Turn::Banned(until)) => {
                        self.note_ban(until);
                        return;
                    }
                    Err(error) => {
                        if !self.shared_failing.swap(true, Ordering::Relaxed) {
                            tracing::warn!(platform = self.platform, app_key = %self.app_key, redis = shared.host(),
                                error = ?error.kind(), "Redis cannot be reached: this process limits its own calls until it can.");
                        }
                        break;
                    }
                }
            }
        }
        if let Some(ledger) = self.ledger.get() {
            if self.booked_turn(ledger).await {
                return;
            }
        }
        // Asking first costs a clock read, so only when someone listens.
        if self.activity.get().is_some_and(Reporter::is_listening) {
            match self.limiter.check() {
                Ok(()) => return,
                Err(not_until) => self.pacing(not_until.wait_time_from(DefaultClock::default().now())),
            }
        }
        self.limiter.until_ready().await;
    }

    /// Waits for the next call booked in the database, booking a block when
    /// none is left; false when the database cannot book.
    ///
    /// A booked call is made at its time, or up to [`LATENESS`] after it; calls missed by more are dropped, since made later they
    /// could crowd the calls booked after them, by any process.
    async fn booked_turn(&self, ledger: &Store) -> bool {
        let mut booked = self.booked.lock().await;
        loop {
            if let Some(first) = booked.first {
                let now = Instant::now();
                let interval = self.pace.interval;
                // The first call whose time is not too long past.
                let missed = now.checked_duration_since(first + LATENESS).map_or(0, |late| {
                    u32::try_from(late.as_nanos().div_ceil(interval.as_nanos().max(1))).unwrap_or(u32::MAX)
                });
                let next = booked.next.max(missed);
                if next < booked.calls {
                    booked.next = next + 1;
                    let at = first + interval * next;
                    self.pacing(at.saturating_duration_since(now));
                    tokio::time::sleep_until(at.into()).await;
                    return true;
                }
            }
            match ledger.book_calls(self.platform, &self.app_key, self.pace.block, self.pace.interval).await {
                Ok(booking) => {
                    self.ledger_failing.store(false, Ordering::Relaxed);
                    *booked = Booked { first: Some(Instant::now() + booking.first_in), next: 0, calls: booking.calls };
                }
                Err(error) => {
                    if !self.ledger_failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(platform = self.platform, app_key = %self.app_key, %error,
                            "The database cannot book calls: this process limits its own calls until it can.");
                    }
                    return false;
                }
            }
        }
    }

    /// When the ban ends, while one lasts.
    pub fn banned_until(&self) -> Option<DateTime<Utc>> {
        let until = *lock(&self.banned_until);
        until.filter(|until| *until > Utc::now())
    }

    /// Bans the key until `until` (a later ban already known wins), and tells
    /// the other processes through Redis when it is configured. True when
    /// this starts a ban rather than restating the one in force, so it is
    /// logged once.
    pub fn ban_until(&self, until: DateTime<Utc>) -> bool {
        if let (Some(shared), Ok(runtime)) = (&self.shared, tokio::runtime::Handle::try_current()) {
            let shared = shared.clone();
            runtime.spawn(async move {
                if let Err(error) = shared.ban_until(until).await {
                    tracing::warn!(redis = shared.host(), error = ?error.kind(), "Could not share the ban through Redis.");
                }
            });
        }
        self.note_ban(until)
    }

    /// Bans the key in this process only; a ban that starts (rather than
    /// restates the one in force) extends the streak.
    fn note_ban(&self, until: DateTime<Utc>) -> bool {
        let mut banned = lock(&self.banned_until);
        let now = Utc::now();
        let in_force = banned.filter(|current| *current > now);
        *banned = Some(in_force.map_or(until, |current| current.max(until)));
        let new = in_force.is_none();
        if new {
            let mut streak = lock(&self.streak);
            streak.bans += 1;
            streak.waited += (until - now).to_std().unwrap_or_default();
            tracing::warn!(platform = self.platform, app_key = %self.app_key, %until, bans_in_a_row = streak.bans,
                "The platform banned this app key (rate limit); every call on it pauses until the ban ends.");
        }
        new
    }

    /// The bans met since a call on the key last went through.
    pub fn ban_streak(&self) -> BanStreak {
        *lock(&self.streak)
    }

    /// Notes that a call went through: the bans before it were waited out.
    pub fn went_through(&self) {
        *lock(&self.streak) = BanStreak::default();
    }
}

/// One shop's way through its app key's gate, and its session state.
pub struct ShopGuard {
    gate: Arc<AppGate>,
    shop: String,
    needs_reauth: Mutex<Option<String>>,
}

impl ShopGuard {
    /// A guard with a gate of its own (a shop alone on its app key, tests).
    pub fn standalone(platform: &'static str, app_key: &str, shop: &str, per_minute: NonZeroU32) -> Self {
        Self::on(Arc::new(AppGate::new(platform, app_key, per_minute, None)), shop)
    }

    fn on(gate: Arc<AppGate>, shop: &str) -> Self {
        Self { gate, shop: shop.to_owned(), needs_reauth: Mutex::new(None) }
    }

    /// The app key's gate.
    pub fn gate(&self) -> &AppGate {
        &self.gate
    }

    /// The app key this shop calls with.
    pub fn app_key(&self) -> &str {
        &self.gate.app_key
    }

    /// Waits for the rate limiter; refuses, without calling, while the app
    /// key is banned or the shop's session is known to be dead.
    pub async fn admit(&self, method: &str) -> Result<(), PlatformError> {
        self.refuse(method)?;
        self.gate.wait_turn().await;
        // A call that finished while this one waited may have found a ban.
        self.refuse(method)?;
        if let Some(reporter) = self.gate.activity.get() {
            reporter.report(|| Activity::Called);
        }
        Ok(())
    }

    fn refuse(&self, method: &str) -> Result<(), PlatformError> {
        if let Some(reason) = self.needs_reauth() {
            return Err(PlatformError {
                kind: ErrorKind::SessionExpired,
                method: method.to_owned(),
                message: format!("not called: shop {:?} must be authorised again ({reason})", self.shop),
                request_id: None,
            });
        }
        if let Some(until) = self.gate.banned_until() {
            let left = (until - Utc::now()).to_std().unwrap_or_default();
            return Err(PlatformError {
                kind: ErrorKind::RateLimited { ban: left.max(Duration::from_millis(1)) },
                method: method.to_owned(),
                message: format!(
                    "not called: the app key {} is banned until {until} ({} s left)",
                    self.gate.app_key,
                    left.as_secs_f64().ceil()
                ),
                request_id: None,
            });
        }
        Ok(())
    }

    /// Learns from a failed call: a rate-limit ban closes the gate for
    /// every shop on the key, an expired session stops this shop's calls.
    pub fn observe(&self, error: &PlatformError) {
        match error.kind {
            ErrorKind::RateLimited { ban } => {
                self.gate.ban_until(Utc::now() + chrono::Duration::from_std(ban).unwrap_or(chrono::Duration::MAX));
            }
            ErrorKind::SessionExpired => self.mark_needs_reauth(&error.message),
            _ => {}
        }
    }

    /// Why the shop must be authorised again, once its session was refused.
    pub fn needs_reauth(&self) -> Option<String> {
        lock(&self.needs_reauth).clone()
    }

    /// Stops the shop's calls until its seller authorises again (also used
    /// to restore the state a previous process stored).
    pub fn mark_needs_reauth(&self, reason: &str) {
        let mut state = lock(&self.needs_reauth);
        if state.is_none() {
            tracing::error!(shop = %self.shop, reason,
                "The platform refused the shop's session: the seller must authorise again; its calls stop.");
            *state = Some(reason.to_owned());
        }
    }
}

/// The gates of a process, one per platform and app key.
#[derive(Default)]
pub struct Gates {
    gates: HashMap<(&'static str, String), Arc<AppGate>>,
}

impl Gates {
    /// Gates for `keys` (platform, app key → the lowest calls per minute any
    /// shop on that key allows: the platform counts the key, not the shop).
    pub fn new(keys: BTreeMap<(&'static str, String), NonZeroU32>) -> Self {
        Self::shared(keys, None)
    }

    /// Like [`Gates::new`], the limits and bans shared through `redis` with
    /// every process using it.
    pub fn shared(keys: BTreeMap<(&'static str, String), NonZeroU32>, redis: Option<&Arc<Redis>>) -> Self {
        let gates = keys
            .into_iter()
            .map(|((platform, app_key), per_minute)| {
                let gate = Arc::new(AppGate::new(platform, &app_key, per_minute, redis));
                ((platform, app_key), gate)
            })
            .collect();
        Self { gates }
    }

    /// A guard for `shop` on the gate of `platform`'s `app_key`, or one of
    /// its own when the key was not given to [`Gates::new`].
    pub fn guard(&self, platform: &'static str, app_key: &str, shop: &str, per_minute: NonZeroU32) -> ShopGuard {
        match self.gates.get(&(platform, app_key.to_owned())) {
            Some(gate) => ShopGuard::on(gate.clone(), shop),
            None => ShopGuard::standalone(platform, app_key, shop, per_minute),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("not zero")
    }

    fn gates() -> Gates {
        Gates::new(BTreeMap::from([(("taobao", "key-1".to_owned()), per_minute(600))]))
    }

    #[tokio::test]
    async fn a_ban_on_one_shop_closes_the_gate_for_every_shop_on_its_key() {
        let gates = gates();
        let (a, b) = (
            gates.guard("taobao", "key-1", "a", per_minute(600)),
            gates.guard("taobao", "key-1", "b", per_minute(600)),
        );
        let other = gates.guard("taobao", "key-2", "c", per_minute(600));
        a.observe(&PlatformError {
            kind: ErrorKind::RateLimited { ban: Duration::from_secs(3600) },
            method: "m".into(),
            message: "code 7".into(),
            request_id: None,
        });
        let refused = b.admit("m").await.expect_err("same key, banned");
        assert!(
            matches!(refused.kind, ErrorKind::RateLimited { ban } if ban > Duration::from_secs(3590)),
            "{refused:?}"
        );
        assert!(refused.message.starts_with("not called"), "{}", refused.message);
        assert!(other.admit("m").await.is_ok(), "another key is not banned");
        assert!(!a.gate().ban_until(Utc::now() + chrono::Duration::seconds(10)), "a shorter ban changes nothing");
        assert!(a.gate().banned_until().is_some_and(|until| until > Utc::now() + chrono::Duration::seconds(3590)));
    }

    #[tokio::test]
    async fn an_expired_session_stops_only_its_shop() {
        let gates = gates();
        let (a, b) = (
            gates.guard("taobao", "key-1", "a", per_minute(600)),
            gates.guard("taobao", "key-1", "b", per_minute(600)),
        );
        a.observe(&PlatformError {
            kind: ErrorKind::SessionExpired,
            method: "m".into(),
            message: "code 27 (Invalid session)".into(),
            request_id: None,
        });
        let refused = a.admit("m").await.expect_err("dead session");
        assert_eq!(refused.kind, ErrorKind::SessionExpired);
        assert!(refused.message.contains("code 27"), "{}", refused.message);
        assert!(b.admit("m").await.is_ok());
    }

    #[tokio::test]
    async fn shops_on_one_key_share_its_pace_with_no_burst() {
        let gates = Gates::new(BTreeMap::from([(("taobao", "key-1".to_owned()), per_minute(120))]));
        let (a, b) = (
            gates.guard("taobao", "key-1", "a", per_minute(120)),
            gates.guard("taobao", "key-1", "b", per_minute(120)),
        );
        // 120 a minute are 60 s / 119 apart: the first call goes at once, the
        // next (from the other shop) only half a second later.
        a.admit("m").await.expect("first");
        let second = tokio::time::timeout(Duration::from_millis(200), b.admit("m")).await;
        assert!(second.is_err(), "no burst, whichever shop calls");
    }

    #[tokio::test]
    async fn the_gate_reports_each_call_let_through_and_a_wait_for_its_pace() {
        use crate::activity::Collect;
        // 40 a minute: about 1.56 s between calls, a wait worth showing.
        let guard = ShopGuard::standalone("taobao", "key-1", "a", per_minute(40));
        let (reporter, sink) = Collect::reporter();
        guard.gate().report_to(&reporter);
        guard.admit("m").await.expect("first");
        guard.admit("m").await.expect("second");
        let reports = sink.taken();
        assert_eq!(reports.len(), 3, "{reports:?}");
        assert_eq!((&reports[0], &reports[2]), (&Activity::Called, &Activity::Called));
        let Activity::Waiting { until, reason: WaitReason::RateLimit } = reports[1] else { panic!("{reports:?}") };
        let left = until - Utc::now();
        assert!(left <= chrono::Duration::milliseconds(100), "reported before the wait, over after it: {left}");
        let refused = ShopGuard::standalone("taobao", "key-2", "b", per_minute(40));
        refused.gate().report_to(&reporter);
        refused.gate().ban_until(Utc::now() + chrono::Duration::hours(1));
        assert!(refused.admit("m").await.is_err());
        assert_eq!(sink.taken().len(), 3, "a call refused before it goes out is no call");
    }

    #[test]
    fn a_pace_fits_the_limit_into_any_minute_with_a_margin() {
        const MINUTE: Duration = Duration::from_secs(60);
        for calls in [2, 20, 100, 6000] {
            let pace = Pace::per_minute(per_minute(calls));
            assert!(pace.interval * (calls - 1) >= SPAN, "{calls}: {pace:?}");
            assert!(pace.interval * (calls - 1) < SPAN + Duration::from_millis(1), "{calls}: no slower than needed");
            // The most call times in a minute that may all go in it, late
            // ones included: no more than the limit, with jitter to spare.
            let fit = (MINUTE + LATENESS).as_nanos() / pace.interval.as_nanos() + 1;
            assert!(fit <= u128::from(calls), "{calls}: {fit} calls fit a minute: {pace:?}");
            assert!(pace.block == 1 || pace.interval * pace.block <= BOOKING_SPAN, "{calls}: {pace:?}");
        }
        assert_eq!(Pace::per_minute(per_minute(100)).block, 8, "about five seconds' worth");
        assert!(Pace::per_minute(per_minute(1)).interval > MINUTE);
    }

    #[tokio::test]
    async fn a_process_started_after_another_keeps_its_pace_through_the_database() {
        let store = Store::connect("sqlite::memory:").await.expect("in-memory SQLite");
        // A second apart: a call may be half a second late, a fresh allowance
        // would be a whole interval early.
        let limit = per_minute(60);
        let interval = Pace::per_minute(limit).interval;
        let mut calls = Vec::new();
        // Two processes one after the other on one database, as a restart.
        for _ in 0..2 {
            let gates = Gates::new(BTreeMap::from([(("taobao", "key-1".to_owned()), limit)]));
            let guard = gates.guard("taobao", "key-1", "a", limit);
            guard.gate().keep_calls_in(&store);
            for _ in 0..3 {
                guard.admit("m").await.expect("no ban");
                calls.push(Instant::now());
            }
        }
        // A call may go up to `LATENESS` after its booked time, never before:
        // any n + 1 calls span at least n intervals less that.
        // A fresh allowance would send the second process's first call at once.
        for (i, first) in calls.iter().enumerate() {
            for (n, later) in calls[i + 1..].iter().enumerate() {
                let span = *later - *first;
                let least = (interval * (n as u32 + 1)).saturating_sub(LATENESS);
                assert!(span >= least, "calls {i} and {}: {span:?} apart, at least {least:?} expected", i + n + 1);
            }
        }
    }
}
