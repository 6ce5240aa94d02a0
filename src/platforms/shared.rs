//! What several orderflow processes share through Redis, when `redis:` is
//! configured: the rate limit and the ban of each app key (the platform
//! counts calls per key, whichever process makes them) and the detail cache
//! (`detail_cache.rs`).
//!
//! Redis is an optimisation and a politeness, never a dependency of
//! correctness: when it cannot be reached, each process falls back on its own
//! limiter and cache and says so in the log. The URL may hold a password, so
//! only its host is ever printed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

use crate::config::Secret;

/// A Redis server shared by the processes of one deployment.
pub struct Redis {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    host: String,
    prefix: String,
}

/// Why the configured Redis cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("redis at {host}: {message}")]
pub struct RedisConfigError {
    /// The server's host and port (never the password).
    pub host: String,
    /// What is wrong.
    pub message: String,
}

impl Redis {
    /// Opens (lazily: the first use connects) the server at `url`; every key
    /// orderflow writes starts with `prefix`.
    pub fn open(url: &Secret, prefix: &str) -> Result<Self, RedisConfigError> {
        let host = reqwest::Url::parse(url.expose())
            .ok()
            .and_then(|parsed| Some(format!("{}:{}", parsed.host_str()?, parsed.port().unwrap_or(6379))))
            .unwrap_or_else(|| "an unreadable URL".to_owned());
        let client = redis::Client::open(url.expose()).map_err(|_| RedisConfigError {
            host: host.clone(),
            message: "the URL is not a redis:// or rediss:// URL".to_owned(),
        })?;
        Ok(Self { client, connection: OnceCell::new(), host, prefix: prefix.to_owned() })
    }

    /// The server's host and port, for logs.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `prefix` + `name`.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The shared connection, which reconnects by itself after a failure.
    pub(crate) async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let connection = self.connection.get_or_try_init(|| self.client.get_connection_manager()).await?;
        Ok(connection.clone())
    }
}

/// Whether a call may go now, as the shared limiter says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Go.
    Go,
    /// Ask again after this long.
    Wait(Duration),
    /// Another process saw the key banned until then.
    Banned(DateTime<Utc>),
}

/// One app key's rate limit and ban, kept in Redis for every process: a GCRA
/// limiter (one timestamp per key, the "theoretical arrival time") at the
/// key's [`Pace`](super::guard::Pace) — one call per interval, no burst — so
/// every process together keeps under the limit in any sliding minute, and a
/// process that starts (or starts again) inherits the pace the others set.
pub(crate) struct SharedLimit {
    redis: std::sync::Arc<Redis>,
    rate_key: String,
    ban_key: String,
    interval_ms: u64,
}

/// Checks the ban, then admits a call if the key's arrival time allows it,
/// atomically; answers `{0}` (go), `{1, wait_ms}` or `{2, banned_until_ms}`.
const ADMIT_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local banned = tonumber(redis.call('GET', KEYS[2]) or '0')
if banned > now then return {2, banned} end
local interval = tonumber(ARGV[1])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
if tat > now then return {1, tat - now} end
redis.call('SET', KEYS[1], tat + interval, 'PX', tat + interval - now + 1000)
return {0, 0}
";

/// Sets the ban unless a later one is already set.
const BAN_SCRIPT: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000
local until_ms = tonumber(ARGV[1])
if until_ms > current and until_ms > now then
  redis.call('SET', KEYS[1], until_ms, 'PX', until_ms - now)
end
return 0
";

impl SharedLimit {
    /// The limit of `platform`'s `app_key`, at `pace`.
    pub(crate) fn new(redis: std::sync::Arc<Redis>, platform: &str, app_key: &str, pace: super::guard::Pace) -> Self {
        // Whole milliseconds, rounded up so the pace is never faster.
        let interval_ms = u64::try_from(pace.interval.as_micros().div_ceil(1000)).unwrap_or(u64::MAX).max(1);
        Self {
            rate_key: redis.key(&format!("rate:{platform}:{app_key}")),
            ban_key: redis.key(&format!("ban:{platform}:{app_key}")),
            interval_ms,
            redis,
        }
    }

    /// The server's host, for logs.
    pub(crate) fn host(&self) -> &str {
        self.redis.host()
    }

    /// Asks for one call's turn.
    pub(crate) async fn turn(&self) -> Result<Turn, redis::RedisError> {
        let mut connection = self.redis.connection().await?;
        let (code, value): (u8, i64) = redis::Script::new(ADMIT_SCRIPT)
            .key(&self.rate_key)
            .key(&self.ban_key)
            .arg(self.interval_ms)
            .invoke_async(&mut connection)
            .await?;
        Ok(match code {
            0 => Turn::Go,
            2 => DateTime::from_timestamp_millis(value).map_or(Turn::Go, Turn::Banned),
            _ => Turn::Wait(Duration::from_millis(value.max(1).unsigned_abs())),
        })
    }

    /// Tells every process the key is banned until `until`.
    pub(crate) async fn ban_until(&self, until: DateTime<Utc>) -> Result<(), redis::RedisError> {
        let mut connection = self.redis.connection().await?;
        redis::Script::new(BAN_SCRIPT)
            .key(&self.ban_key)
            .arg(until.timestamp_millis())
            .invoke_async::<i64>(&mut connection)
            .await?;
        Ok(())
    }
}
