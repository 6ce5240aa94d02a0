//! What keeps a sync healthy when the platform misbehaves: rate-limit bans of app
//! keys, shops whose seller must authorise again, the persisted state of circuit
//! breakers, alerts for people, anomalous platform answers, and reconciliations of
//! the stored orders against the platform's counts.
//!
//! The store only keeps these records; the engine and the nodes decide what they
//! mean. None of them holds a secret: an app key is a public identifier, and no
//! session key or app secret is ever stored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::dialect::{self, DbText};
use super::error::StoreError;
use super::runs::{from_count, to_count};
use super::tables::ColumnKind;
use super::{Store, parse_timestamp, timestamp_text};

/// The longest values, in characters, of the columns MySQL keeps as VARCHAR (see
/// `migrations/mysql/0003_resilience.sql`). The store checks them on every backend
/// before writing, so MySQL never truncates and every backend behaves alike.
const PLATFORM_LEN: usize = 64;
const SHOP_LEN: usize = 191;
/// App keys, breaker channels, alert and anomaly kinds, API methods, run ids.
const NAME_LEN: usize = 64;
const STATE_LEN: usize = 32;
const OUTCOMES_LEN: usize = 1000;
/// Anomaly excerpts are cut to this many characters: enough to recognise an HTML
/// error page or a truncated body, small enough to keep thousands of them.
const EXCERPT_LEN: usize = 300;

/// Separates the parts of an alert's `open_key`: a control character no kind,
/// platform or shop name contains.
const KEY_SEPARATOR: char = '\u{1f}';

/// A rate-limit ban the platform put on an app key (TOP code 7), shared by every
/// shop using that key. Kept per key so that no shop of the key calls the platform
/// before the ban ends, whichever run hit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppBan {
    /// The platform's name (`taobao`); at most 64 characters.
    pub platform: String,
    /// The app key the ban applies to (not a secret); at most 64 characters.
    pub app_key: String,
    /// When the ban ends. Stored with millisecond precision (column `banned_until`).
    pub until: DateTime<Utc>,
    /// What the platform said, to show to people.
    pub reason: String,
}

/// A shop whose seller must authorise again (TOP code 26/27): its session is invalid
/// or expired, so calls for it fail until an operator renews the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reauth {
    /// The platform's name; at most 64 characters.
    pub platform: String,
    /// The shop's name in `orderflow.yaml`; at most 191 characters.
    pub shop: String,
    /// When it was first marked.
    pub since: DateTime<Utc>,
    /// Why it was first marked.
    pub reason: String,
}

/// The persisted state of one circuit breaker (per platform, shop and channel, e.g.
/// `orders.increment`), so that a breaker stays open across runs and restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerRow {
    /// The platform's name; at most 64 characters.
    pub platform: String,
    /// The shop's name; at most 191 characters.
    pub shop: String,
    /// What the breaker guards, e.g. `orders.increment`; at most 64 characters.
    pub channel: String,
    /// `closed`, `open` or `half_open`; the store does not interpret it. At most 32
    /// characters.
    pub state: String,
    /// The sliding window of recent outcomes, opaque text of at most 1000 characters.
    pub outcomes: String,
    /// When the breaker last opened, if it did.
    pub opened_at: Option<DateTime<Utc>>,
    /// When the platform last answered in a degraded way, if it did.
    pub last_degraded_at: Option<DateTime<Utc>>,
    /// When the row was written.
    pub updated_at: DateTime<Utc>,
}

/// An alert to raise for people (also used by business nodes: stalled parcels etc.).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAlert {
    /// What is wrong, e.g. `needs_reauth`, `stalled_parcel`; at most 64 characters.
    pub kind: String,
    /// The platform's name; at most 64 characters.
    pub platform: String,
    /// The shop's name; at most 191 characters.
    pub shop: String,
    /// The order it is about, if any.
    pub tid: Option<i64>,
    /// What people should know, in words.
    pub detail: String,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Its id, in the order alerts were raised.
    pub id: i64,
    /// What is wrong.
    pub kind: String,
    /// The platform's name.
    pub platform: String,
    /// The shop's name.
    pub shop: String,
    /// The order it is about, if any.
    pub tid: Option<i64>,
    /// What people should know.
    pub detail: String,
    /// When it was raised.
    pub created_at: DateTime<Utc>,
    /// When it was resolved; `None` while open.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// A platform answer of no known shape (an HTML page, an empty body, truncated JSON,
/// a missing list, a field of the wrong type, a sudden drop), to record as evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAnomaly {
    /// The run that got it, if any; at most 64 characters.
    pub run_id: Option<String>,
    /// The platform's name; at most 64 characters.
    pub platform: String,
    /// The shop's name; at most 191 characters.
    pub shop: String,
    /// The API method called, e.g. `taobao.trades.sold.increment.get`; at most 64
    /// characters.
    pub method: String,
    /// What was wrong, e.g. `html`, `empty_body`, `truncated_json`; at most 64
    /// characters.
    pub kind: String,
    /// The start of the answer. Cut to 300 characters when stored.
    pub excerpt: String,
}

/// An anomaly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    /// Its id, in the order anomalies were recorded.
    pub id: i64,
    /// The run that got it, if any.
    pub run_id: Option<String>,
    /// The platform's name.
    pub platform: String,
    /// The shop's name.
    pub shop: String,
    /// The API method called.
    pub method: String,
    /// What was wrong.
    pub kind: String,
    /// The start of the answer, at most 300 characters.
    pub excerpt: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// What one reconciliation of one time window found and did: how many orders created
/// in `[window_start, window_end)` the platform counts and the store holds, how many
/// were fetched again, and how many are still missing after that.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// The run that reconciled; at most 64 characters.
    pub run_id: String,
    /// The platform's name; at most 64 characters.
    pub platform: String,
    /// The shop's name; at most 191 characters.
    pub shop: String,
    /// The window's start, included.
    pub window_start: DateTime<Utc>,
    /// The window's end, excluded.
    pub window_end: DateTime<Utc>,
    /// Orders created in the window, per the platform.
    pub platform_count: u64,
    /// Orders created in the window, per the store, before refetching.
    pub stored_count: u64,
    /// Orders fetched again.
    pub refetched: u64,
    /// Orders the platform counts that the store still lacks.
    pub missing: u64,
}

/// Calls booked on an app key (see [`Store::book_calls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booking {
    /// How many calls were booked, one interval apart.
    pub calls: u32,
    /// How long from now the first may go.
    pub first_in: std::time::Duration,
}

#[derive(sqlx::FromRow)]
struct BanRow {
    platform: DbText,
    app_key: DbText,
    banned_until: DbText,
    reason: DbText,
}

impl TryFrom<BanRow> for AppBan {
    type Error = StoreError;

    fn try_from(row: BanRow) -> Result<Self, StoreError> {
        Ok(AppBan {
            until: parse_timestamp("app_bans.banned_until", &row.banned_until.0)?,
            platform: row.platform.into(),
            app_key: row.app_key.into(),
            reason: row.reason.into(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct ReauthRow {
    platform: DbText,
    shop: DbText,
    since: DbText,
    reason: DbText,
}

impl TryFrom<ReauthRow> for Reauth {
    type Error = StoreError;

    fn try_from(row: ReauthRow) -> Result<Self, StoreError> {
        Ok(Reauth {
            since: parse_timestamp("shop_reauth.since", &row.since.0)?,
            platform: row.platform.into(),
            shop: row.shop.into(),
            reason: row.reason.into(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct BreakerDbRow {
    platform: DbText,
    shop: DbText,
    channel: DbText,
    state: DbText,
    outcomes: DbText,
    opened_at: Option<DbText>,
    last_degraded_at: Option<DbText>,
    updated_at: DbText,
}

impl TryFrom<BreakerDbRow> for BreakerRow {
    type Error = StoreError;

    fn try_from(row: BreakerDbRow) -> Result<Self, StoreError> {
        Ok(BreakerRow {
            opened_at: row.opened_at.map(|t| parse_timestamp("breakers.opened_at", &t.0)).transpose()?,
            last_degraded_at: row
                .last_degraded_at
                .map(|t| parse_timestamp("breakers.last_degraded_at", &t.0))
                .transpose()?,
            updated_at: parse_timestamp("breakers.updated_at", &row.updated_at.0)?,
            platform: row.platform.into(),
            shop: row.shop.into(),
            channel: row.channel.into(),
            state: row.state.into(),
            outcomes: row.outcomes.into(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct AlertRow {
    id: i64,
    kind: DbText,
    platform: DbText,
    shop: DbText,
    tid: Option<i64>,
    detail: DbText,
    created_at: DbText,
    resolved_at: Option<DbText>,
}

impl TryFrom<AlertRow> for Alert {
    type Error = StoreError;

    fn try_from(row: AlertRow) -> Result<Self, StoreError> {
        Ok(Alert {
            id: row.id,
            created_at: parse_timestamp("alerts.created_at", &row.created_at.0)?,
            resolved_at: row.resolved_at.map(|t| parse_timestamp("alerts.resolved_at", &t.0)).transpose()?,
            kind: row.kind.into(),
            platform: row.platform.into(),
            shop: row.shop.into(),
            tid: row.tid,
            detail: row.detail.into(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct AnomalyRow {
    id: i64,
    run_id: Option<DbText>,
    platform: DbText,
    shop: DbText,
    method: DbText,
    kind: DbText,
    excerpt: DbText,
    created_at: DbText,
}

impl TryFrom<AnomalyRow> for Anomaly {
    type Error = StoreError;

    fn try_from(row: AnomalyRow) -> Result<Self, StoreError> {
        Ok(Anomaly {
            id: row.id,
            created_at: parse_timestamp("anomalies.created_at", &row.created_at.0)?,
            run_id: row.run_id.map(Into::into),
            platform: row.platform.into(),
            shop: row.shop.into(),
            method: row.method.into(),
            kind: row.kind.into(),
            excerpt: row.excerpt.into(),
        })
    }
}

#[derive(sqlx::FromRow)]
struct ReconciliationRow {
    run_id: DbText,
    platform: DbText,
    shop: DbText,
    window_start: DbText,
    window_end: DbText,
    platform_count: i64,
    stored_count: i64,
    refetched: i64,
    missing: i64,
}

impl TryFrom<ReconciliationRow> for Reconciliation {
    type Error = StoreError;

    fn try_from(row: ReconciliationRow) -> Result<Self, StoreError> {
        Ok(Reconciliation {
            window_start: parse_timestamp("reconciliations.window_start", &row.window_start.0)?,
            window_end: parse_timestamp("reconciliations.window_end", &row.window_end.0)?,
            platform_count: from_count("reconciliations.platform_count", row.platform_count)?,
            stored_count: from_count("reconciliations.stored_count", row.stored_count)?,
            refetched: from_count("reconciliations.refetched", row.refetched)?,
            missing: from_count("reconciliations.missing", row.missing)?,
            run_id: row.run_id.into(),
            platform: row.platform.into(),
            shop: row.shop.into(),
        })
    }
}

/// Refuses `value` when it has more than `max` characters (see [`PLATFORM_LEN`]).
pub(super) fn check_len(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    let len = value.chars().count();
    if len > max {
        Err(StoreError::InvalidValue {
            field: field.to_owned(),
            reason: format!("{len} characters, at most {max} fit"),
        })
    } else {
        Ok(())
    }
}

/// Refuses a platform or shop name that would not fit.
pub(super) fn check_shop(table: &str, platform: &str, shop: &str) -> Result<(), StoreError> {
    check_len(&format!("{table}.platform"), platform, PLATFORM_LEN)?;
    check_len(&format!("{table}.shop"), shop, SHOP_LEN)
}

/// The first `max` characters of `text`.
fn cut(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The `open_key` of an open alert: its kind, platform, shop and tid (empty for
/// none), separated by [`KEY_SEPARATOR`].
fn open_key(kind: &str, platform: &str, shop: &str, tid: Option<i64>) -> String {
    let tid = tid.map(|t| t.to_string()).unwrap_or_default();
    format!("{kind}{KEY_SEPARATOR}{platform}{KEY_SEPARATOR}{shop}{KEY_SEPARATOR}{tid}")
}

const BAN_COLUMNS: [&str; 5] = ["platform", "app_key", "banned_until", "reason", "updated_at"];
const BREAKER_COLUMNS: [&str; 8] =
    ["platform", "shop", "channel", "state", "outcomes", "opened_at", "last_degraded_at", "updated_at"];
const ALERT_SELECT: &str = "SELECT id, kind, platform, shop, tid, detail, created_at, resolved_at FROM alerts";
const ANOMALY_COLUMNS: [&str; 7] = ["run_id", "platform", "shop", "method", "kind", "excerpt", "created_at"];
const RECONCILIATION_COLUMNS: &str = "run_id, platform, shop, window_start, window_end, \
     platform_count, stored_count, refetched, missing";

impl Store {
    /// Records a rate-limit ban: inserts it, or updates the stored ban of the same
    /// (platform, app key), keeping the later `until` of the stored and the new one.
    /// A ban that ends earlier than the stored one changes nothing, since the longer
    /// ban is the one in force. `at` is when it was learnt.
    pub async fn save_ban(&self, ban: &AppBan, at: DateTime<Utc>) -> Result<(), StoreError> {
        check_len("app_bans.platform", &ban.platform, PLATFORM_LEN)?;
        check_len("app_bans.app_key", &ban.app_key, NAME_LEN)?;
        let sql = dialect::upsert(
            self.backend,
            "app_bans",
            &BAN_COLUMNS,
            &["platform", "app_key"],
            Some(("banned_until", ColumnKind::Text)),
        );
        let query = sqlx::query(&sql)
            .bind(&ban.platform)
            .bind(&ban.app_key)
            .bind(timestamp_text(ban.until))
            .bind(&ban.reason)
            .bind(timestamp_text(at));
        self.execute_write(query, format!("saving the ban of app key {} of {}", ban.app_key, ban.platform)).await?;
        Ok(())
    }

    /// The bans still in force at `now` (those whose `until` is after it), by
    /// platform and app key. Lets every run of every shop sharing a key wait out a
    /// ban another run hit.
    pub async fn active_bans(&self, now: DateTime<Utc>) -> Result<Vec<AppBan>, StoreError> {
        let text = dialect::sort_text(self.backend);
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT platform, app_key, banned_until, reason FROM app_bans WHERE banned_until > ? \
                 ORDER BY platform{text}, app_key{text}"
            ),
        );
        let rows = sqlx::query_as::<_, BanRow>(&sql)
            .bind(timestamp_text(now))
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading active bans"))?;
        rows.into_iter().map(AppBan::try_from).collect()
    }

    /// Books `calls` calls on `platform`'s `app_key`, `interval` apart, after
    /// every call booked before by any process on this database: the key's
    /// pace outlives the process, so one started (or restarted) a moment
    /// after another does not send a fresh allowance at once.
    ///
    /// One row per key holds when its next call may go, by the database's
    /// clock, so processes on hosts whose clocks disagree still keep one
    /// pace; a booking reads and moves it in one transaction.
    pub async fn book_calls(
        &self,
        platform: &str,
        app_key: &str,
        calls: u32,
        interval: std::time::Duration,
    ) -> Result<Booking, StoreError> {
        check_len("app_call_pace.platform", platform, PLATFORM_LEN)?;
        check_len("app_call_pace.app_key", app_key, NAME_LEN)?;
        let action = || format!("booking calls of app key {app_key} of {platform}");
        let span = i64::try_from(interval.as_millis().saturating_mul(u128::from(calls))).unwrap_or(i64::MAX);
        let mut tx = self.begin_write().await?;
        let insert = dialect::insert_ignore(self.backend, "app_call_pace", &["platform", "app_key", "next_call_ms"]);
        sqlx::query(&insert)
            .bind(platform)
            .bind(app_key)
            .bind(0_i64)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        let select = dialect::sql(
            self.backend,
            &format!(
                "SELECT next_call_ms, {} FROM app_call_pace WHERE platform = ? AND app_key = ?{}",
                dialect::now_millis(self.backend),
                dialect::lock_rows(self.backend)
            ),
        );
        let (next, now): (i64, i64) = sqlx::query_as(&select)
            .bind(platform)
            .bind(app_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        let first = next.max(now);
        let update =
            dialect::sql(self.backend, "UPDATE app_call_pace SET next_call_ms = ? WHERE platform = ? AND app_key = ?");
        sqlx::query(&update)
            .bind(first.saturating_add(span))
            .bind(platform)
            .bind(app_key)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(Booking { calls, first_in: std::time::Duration::from_millis((first - now).unsigned_abs()) })
    }

    /// Marks a shop as needing its seller to authorise again. Returns true when it
    /// was newly marked, false when it already was: the first `since` and reason are
    /// kept, since they say when the trouble began.
    pub async fn mark_needs_reauth(
        &self,
        platform: &str,
        shop: &str,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        check_shop("shop_reauth", platform, shop)?;
        let sql = dialect::insert_ignore(self.backend, "shop_reauth", &["platform", "shop", "since", "reason"]);
        let query = sqlx::query(&sql).bind(platform).bind(shop).bind(timestamp_text(at)).bind(reason);
        let result = self.execute_write(query, format!("marking {platform}/{shop} as needing authorisation")).await?;
        Ok(result.rows_affected() > 0)
    }

    /// Clears the mark of a shop (the operator renewed its session). Returns true
    /// when it was marked.
    pub async fn clear_needs_reauth(&self, platform: &str, shop: &str) -> Result<bool, StoreError> {
        let sql = dialect::sql(self.backend, "DELETE FROM shop_reauth WHERE platform = ? AND shop = ?");
        let result = sqlx::query(&sql)
            .bind(platform)
            .bind(shop)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(format!("clearing the authorisation mark of {platform}/{shop}")))?;
        Ok(result.rows_affected() > 0)
    }

    /// Every shop marked as needing authorisation, by platform and shop, so that
    /// runs skip them and people see which sellers to contact.
    pub async fn shops_needing_reauth(&self) -> Result<Vec<Reauth>, StoreError> {
        let text = dialect::sort_text(self.backend);
        let sql = format!("SELECT platform, shop, since, reason FROM shop_reauth ORDER BY platform{text}, shop{text}");
        let rows = sqlx::query_as::<_, ReauthRow>(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading shops needing authorisation"))?;
        rows.into_iter().map(Reauth::try_from).collect()
    }

    /// The stored state of one circuit breaker, or `None` when none was saved (a
    /// new breaker starts closed).
    pub async fn load_breaker(
        &self,
        platform: &str,
        shop: &str,
        channel: &str,
    ) -> Result<Option<BreakerRow>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT {} FROM breakers WHERE platform = ? AND shop = ? AND channel = ?",
                BREAKER_COLUMNS.join(", ")
            ),
        );
        let row = sqlx::query_as::<_, BreakerDbRow>(&sql)
            .bind(platform)
            .bind(shop)
            .bind(channel)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading breaker {channel} of {platform}/{shop}")))?;
        row.map(BreakerRow::try_from).transpose()
    }

    /// Saves the state of a circuit breaker, replacing the stored one, so that it
    /// survives the run and the process.
    pub async fn save_breaker(&self, row: &BreakerRow) -> Result<(), StoreError> {
        check_shop("breakers", &row.platform, &row.shop)?;
        check_len("breakers.channel", &row.channel, NAME_LEN)?;
        check_len("breakers.state", &row.state, STATE_LEN)?;
        check_len("breakers.outcomes", &row.outcomes, OUTCOMES_LEN)?;
        let sql = dialect::upsert(self.backend, "breakers", &BREAKER_COLUMNS, &["platform", "shop", "channel"], None);
        let query = sqlx::query(&sql)
            .bind(&row.platform)
            .bind(&row.shop)
            .bind(&row.channel)
            .bind(&row.state)
            .bind(&row.outcomes)
            .bind(row.opened_at.map(timestamp_text))
            .bind(row.last_degraded_at.map(timestamp_text))
            .bind(timestamp_text(row.updated_at));
        self.execute_write(query, format!("saving breaker {} of {}/{}", row.channel, row.platform, row.shop)).await?;
        Ok(())
    }

    /// Closes the stored breakers of `platform`'s `shop` (only its `channel` when
    /// given) that are not closed: state `closed`, no recorded outcomes, no open
    /// or full-pull times, so the next run reads its channel again. Returns the
    /// channels closed. For `orderflow breaker close` and for flows whose breaker
    /// was removed, whose stored state must neither act nor show.
    pub async fn close_breakers(
        &self,
        platform: &str,
        shop: &str,
        channel: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let action = || format!("closing the breakers of {platform}/{shop}");
        let only_channel = if channel.is_some() { " AND channel = ?" } else { "" };
        let mut tx = self.begin_write().await?;
        let select = dialect::sql(
            self.backend,
            &format!(
                "SELECT channel FROM breakers WHERE platform = ? AND shop = ?{only_channel} AND state <> 'closed'{}",
                dialect::lock_rows(self.backend)
            ),
        );
        let mut query = sqlx::query_as::<_, (DbText,)>(&select).bind(platform).bind(shop);
        if let Some(channel) = channel {
            query = query.bind(channel);
        }
        let channels: Vec<String> = query
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?
            .into_iter()
            .map(|(c,)| c.into())
            .collect();
        let update = dialect::sql(
            self.backend,
            "UPDATE breakers SET state = 'closed', outcomes = '', opened_at = NULL, last_degraded_at = NULL, \
             updated_at = ? WHERE platform = ? AND shop = ? AND channel = ?",
        );
        for channel in &channels {
            sqlx::query(&update)
                .bind(timestamp_text(at))
                .bind(platform)
                .bind(shop)
                .bind(channel)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(action()))?;
        }
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(channels)
    }

    /// Every stored circuit breaker, by platform, shop and channel, for status pages.
    pub async fn breakers(&self) -> Result<Vec<BreakerRow>, StoreError> {
        let text = dialect::sort_text(self.backend);
        let sql = format!(
            "SELECT {} FROM breakers ORDER BY platform{text}, shop{text}, channel{text}",
            BREAKER_COLUMNS.join(", ")
        );
        let rows = sqlx::query_as::<_, BreakerDbRow>(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading breakers"))?;
        rows.into_iter().map(BreakerRow::try_from).collect()
    }

    /// Raises an alert unless one of the same kind, platform, shop and tid is open.
    /// Returns its id when raised, `None` when one was already open.
    ///
    /// The database enforces "at most one open alert per key" (a unique index on
    /// `open_key`, which resolved alerts leave NULL), so processes raising the same
    /// alert at once store it once, without a read-then-write race.
    pub async fn raise_alert(&self, alert: &NewAlert, at: DateTime<Utc>) -> Result<Option<i64>, StoreError> {
        check_len("alerts.kind", &alert.kind, NAME_LEN)?;
        check_shop("alerts", &alert.platform, &alert.shop)?;
        let key = open_key(&alert.kind, &alert.platform, &alert.shop, alert.tid);
        let action = || format!("raising alert {} for {}/{}", alert.kind, alert.platform, alert.shop);

        // The id is read back inside the transaction: until it commits, the new row
        // holds the key, so no one can resolve it and raise another in between.
        let mut tx = self.begin_write().await?;
        let insert = dialect::insert_ignore(
            self.backend,
            "alerts",
            &["kind", "platform", "shop", "tid", "detail", "created_at", "open_key"],
        );
        let result = sqlx::query(&insert)
            .bind(&alert.kind)
            .bind(&alert.platform)
            .bind(&alert.shop)
            .bind(alert.tid)
            .bind(&alert.detail)
            .bind(timestamp_text(at))
            .bind(&key)
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(action()))?;
        if result.rows_affected() == 0 {
            tx.rollback().await.map_err(StoreError::db(action()))?;
            return Ok(None);
        }
        let select = dialect::sql(self.backend, "SELECT id FROM alerts WHERE open_key = ?");
        let (id,): (i64,) =
            sqlx::query_as(&select).bind(&key).fetch_one(&mut *tx).await.map_err(StoreError::db(action()))?;
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(Some(id))
    }

    /// Resolves the open alert of that kind, platform, shop and tid. Returns how many
    /// were resolved: 1, or 0 when none was open. The same alert may then be raised
    /// again.
    pub async fn resolve_alert(
        &self,
        kind: &str,
        platform: &str,
        shop: &str,
        tid: Option<i64>,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let sql = dialect::sql(self.backend, "UPDATE alerts SET resolved_at = ?, open_key = NULL WHERE open_key = ?");
        let query = sqlx::query(&sql).bind(timestamp_text(at)).bind(open_key(kind, platform, shop, tid));
        let result = self.execute_write(query, format!("resolving alert {kind} for {platform}/{shop}")).await?;
        Ok(result.rows_affected())
    }

    /// The open alert of that kind, platform, shop and tid, if one is open.
    pub async fn open_alert(
        &self,
        kind: &str,
        platform: &str,
        shop: &str,
        tid: Option<i64>,
    ) -> Result<Option<Alert>, StoreError> {
        let sql = dialect::sql(self.backend, &format!("{ALERT_SELECT} WHERE open_key = ?"));
        let row = sqlx::query_as::<_, AlertRow>(&sql)
            .bind(open_key(kind, platform, shop, tid))
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading the open alert {kind} for {platform}/{shop}")))?;
        row.map(Alert::try_from).transpose()
    }

    /// Every open alert, oldest first.
    pub async fn open_alerts(&self) -> Result<Vec<Alert>, StoreError> {
        let sql = format!("{ALERT_SELECT} WHERE open_key IS NOT NULL ORDER BY created_at, id");
        let rows = sqlx::query_as::<_, AlertRow>(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading open alerts"))?;
        rows.into_iter().map(Alert::try_from).collect()
    }

    /// Records anomalous platform answers, all or none. Each excerpt is cut to its
    /// first 300 characters (never inside a character) before storing.
    pub async fn record_anomalies(&self, anomalies: &[NewAnomaly], at: DateTime<Utc>) -> Result<(), StoreError> {
        for anomaly in anomalies {
            check_shop("anomalies", &anomaly.platform, &anomaly.shop)?;
            check_len("anomalies.method", &anomaly.method, NAME_LEN)?;
            check_len("anomalies.kind", &anomaly.kind, NAME_LEN)?;
            if let Some(run_id) = &anomaly.run_id {
                check_len("anomalies.run_id", run_id, NAME_LEN)?;
            }
        }
        if anomalies.is_empty() {
            return Ok(());
        }
        let action = || format!("recording {} anomalies", anomalies.len());
        let created_at = timestamp_text(at);
        let mut tx = self.begin_write().await?;
        for part in anomalies.chunks(dialect::max_binds(self.backend) / ANOMALY_COLUMNS.len()) {
            let sql = dialect::insert_many(self.backend, "anomalies", &ANOMALY_COLUMNS, part.len());
            let mut query = sqlx::query(&sql);
            for anomaly in part {
                query = query
                    .bind(anomaly.run_id.as_deref())
                    .bind(&anomaly.platform)
                    .bind(&anomaly.shop)
                    .bind(&anomaly.method)
                    .bind(&anomaly.kind)
                    .bind(cut(&anomaly.excerpt, EXCERPT_LEN))
                    .bind(&created_at);
            }
            query.execute(&mut *tx).await.map_err(StoreError::db(action()))?;
        }
        tx.commit().await.map_err(StoreError::db(action()))?;
        Ok(())
    }

    /// How many anomalies each (platform, shop, kind) has, ordered by platform, shop
    /// and kind.
    pub async fn anomaly_counts(&self) -> Result<Vec<(String, String, String, u64)>, StoreError> {
        let text = dialect::sort_text(self.backend);
        let sql = format!(
            "SELECT platform, shop, kind, COUNT(*) FROM anomalies GROUP BY platform, shop, kind \
             ORDER BY platform{text}, shop{text}, kind{text}"
        );
        let rows: Vec<(DbText, DbText, DbText, i64)> =
            sqlx::query_as(&sql).fetch_all(&self.pool).await.map_err(StoreError::db("counting anomalies"))?;
        rows.into_iter()
            .map(|(platform, shop, kind, count)| Ok((platform.0, shop.0, kind.0, from_count("anomalies", count)?)))
            .collect()
    }

    /// The latest `limit` anomalies, newest first.
    pub async fn recent_anomalies(&self, limit: u32) -> Result<Vec<Anomaly>, StoreError> {
        let sql = format!(
            "SELECT id, run_id, platform, shop, method, kind, excerpt, created_at FROM anomalies \
             ORDER BY created_at DESC, id DESC LIMIT {limit}"
        );
        let rows = sqlx::query_as::<_, AnomalyRow>(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("reading recent anomalies"))?;
        rows.into_iter().map(Anomaly::try_from).collect()
    }

    /// Records what a reconciliation of one window found and did. `at` is when.
    pub async fn record_reconciliation(&self, r: &Reconciliation, at: DateTime<Utc>) -> Result<(), StoreError> {
        check_len("reconciliations.run_id", &r.run_id, NAME_LEN)?;
        check_shop("reconciliations", &r.platform, &r.shop)?;
        let counts = [
            to_count("reconciliations.platform_count", r.platform_count)?,
            to_count("reconciliations.stored_count", r.stored_count)?,
            to_count("reconciliations.refetched", r.refetched)?,
            to_count("reconciliations.missing", r.missing)?,
        ];
        let sql = dialect::sql(
            self.backend,
            &format!(
                "INSERT INTO reconciliations ({RECONCILIATION_COLUMNS}, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
        );
        let mut query = sqlx::query(&sql)
            .bind(&r.run_id)
            .bind(&r.platform)
            .bind(&r.shop)
            .bind(timestamp_text(r.window_start))
            .bind(timestamp_text(r.window_end));
        for count in counts {
            query = query.bind(count);
        }
        let query = query.bind(timestamp_text(at));
        self.execute_write(query, format!("recording a reconciliation of {}/{}", r.platform, r.shop)).await?;
        Ok(())
    }

    /// The latest `limit` reconciliations of a shop, the newest window first.
    pub async fn reconciliations(
        &self,
        platform: &str,
        shop: &str,
        limit: u32,
    ) -> Result<Vec<Reconciliation>, StoreError> {
        let sql = dialect::sql(
            self.backend,
            &format!(
                "SELECT {RECONCILIATION_COLUMNS} FROM reconciliations WHERE platform = ? AND shop = ? \
                 ORDER BY window_start DESC, id DESC LIMIT {limit}"
            ),
        );
        let rows = sqlx::query_as::<_, ReconciliationRow>(&sql)
            .bind(platform)
            .bind(shop)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db(format!("reading reconciliations of {platform}/{shop}")))?;
        rows.into_iter().map(Reconciliation::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_character_boundaries() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("订单同步", 2), "订单");
        assert_eq!(cut(&"é".repeat(400), EXCERPT_LEN).chars().count(), EXCERPT_LEN);
    }

    #[test]
    fn open_keys_tell_a_missing_tid_from_any_tid() {
        assert_eq!(open_key("k", "taobao", "s1", None), "k\u{1f}taobao\u{1f}s1\u{1f}");
        assert_ne!(open_key("k", "taobao", "s1", None), open_key("k", "taobao", "s1", Some(0)));
    }
}
