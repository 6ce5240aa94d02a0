//! What every platform call passes first: the app key's rate limit and ban,
//! shared by every shop, flow and node of the process that uses that key, and
//! the shop's session.
//!
//! Platforms count calls and ban per app key (TOP's code 7 can last hours),
//! so the limiter and the ban live in one [`AppGate`] per key, and each shop's
//! [`ShopGuard`] points at its key's gate. A ban or an expired session is
//! known before the next call, so no call goes out into it: calling into a
//! ban prolongs it, and calling with a dead session only adds failures.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::shared::{Redis, SharedLimit, Turn};
use super::{ErrorKind, PlatformError};

/// The rate limit and the ban of one app key on one platform.
///
/// With Redis configured, the limit and the ban are shared by every process
/// on the key (see `shared.rs`); the process's own `governor` limiter takes
/// over while Redis cannot be reached.
pub struct AppGate {
    platform: &'static str,
    app_key: String,
    limiter: DefaultDirectRateLimiter,
    shared: Option<Arc<SharedLimit>>,
    /// Whether the fall-back to the own limiter was logged already.
    shared_failing: AtomicBool,
    banned_until: Mutex<Option<DateTime<Utc>>>,
}

impl AppGate {
    fn new(platform: &'static str, app_key: &str, per_minute: NonZeroU32, redis: Option<&Arc<Redis>>) -> Self {
        Self {
            platform,
            app_key: app_key.to_owned(),
            limiter: RateLimiter::direct(Quota::per_minute(per_minute)),
            shared: redis.map(|redis| Arc::new(SharedLimit::new(redis.clone(), platform, app_key, per_minute.get()))),
            shared_failing: AtomicBool::new(false),
            banned_until: Mutex::new(None),
        }
    }

    /// Waits for the key's next call: the shared limiter's turn when there
    /// is one (learning of bans other processes saw), else the own limiter.
    async fn wait_turn(&self) {
        if let Some(shared) = &self.shared {
            loop {
                match shared.turn().await {
                    Ok(Turn::Go) => {
                        self.shared_failing.store(false, Ordering::Relaxed);
                        return;
                    }
                    Ok(Turn::Wait(wait)) => tokio::time::sleep(wait).await,
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
        self.limiter.until_ready().await;
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

    /// Bans the key in this process only.
    fn note_ban(&self, until: DateTime<Utc>) -> bool {
        let mut banned = lock(&self.banned_until);
        let now = Utc::now();
        let in_force = banned.filter(|current| *current > now);
        *banned = Some(in_force.map_or(until, |current| current.max(until)));
        let new = in_force.is_none();
        if new {
            tracing::warn!(platform = self.platform, app_key = %self.app_key, %until,
                "The platform banned this app key (rate limit); every call on it pauses until the ban ends.");
        }
        new
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
        self.refuse(method)
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
    async fn shops_on_one_key_share_its_rate() {
        let gates = Gates::new(BTreeMap::from([(("taobao", "key-1".to_owned()), per_minute(2))]));
        let (a, b) =
            (gates.guard("taobao", "key-1", "a", per_minute(2)), gates.guard("taobao", "key-1", "b", per_minute(2)));
        // The quota's burst is its per-minute count: two calls go at once,
        // a third (from the other shop) must wait for the next cell.
        a.admit("m").await.expect("first");
        b.admit("m").await.expect("second");
        let third = tokio::time::timeout(Duration::from_millis(200), a.admit("m")).await;
        assert!(third.is_err(), "the key's quota is spent, whichever shop calls");
    }
}
