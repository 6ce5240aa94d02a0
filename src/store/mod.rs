//! The SQL store: run records, dead letters, orders with their items, refunds,
//! sync cursors, the resilience records (bans, re-authorisations, breakers, alerts,
//! anomalies, reconciliations), inventory, restock suggestions, parcel checks and
//! notification deliveries, the versions of flow files saved through the editor,
//! and the user tables flows write into.
//!
//! One code path serves SQLite, PostgreSQL and MySQL/MariaDB through sqlx's `Any`
//! driver. Queries are checked at run time, so building needs no database. Every
//! difference between the backends lives in `dialect.rs`.
//!
//! The `Any` driver only carries basic types, so timestamps are stored as text in
//! one fixed UTC format ([`timestamp_text`]) that sorts like time, and JSON is
//! stored as text.

mod dead_letters;
mod dialect;
mod error;
mod flow_versions;
mod health;
mod leases;
mod logistics;
mod monitor;
mod orders;
mod refunds;
mod restock;
mod runs;
mod stock;
mod tables;

use std::str::FromStr;
use std::sync::{Arc, Once};

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyQueryResult};
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};

pub use dead_letters::{DeadLetter, DeadLetterState, StoredDeadLetter};
pub use error::{StoreError, redact_url};
pub use flow_versions::FlowVersion;
pub use health::{Alert, Anomaly, AppBan, Booking, BreakerRow, NewAlert, NewAnomaly, Reauth, Reconciliation};
pub use leases::{Lease, LeaseRecord};
pub use logistics::{DELIVERY_KEY_LEN, OrderStatus, ParcelCheck};
pub use orders::{Cursor, SaveOutcome, StoredOrder, StoredVersion};
pub use restock::RestockSuggestion;
pub use runs::{NodeRunRecord, NodeStatus, RunFinish, RunRecord, RunStart, RunStatus};
pub use stock::{AppliedStock, Freeze, FreezeState, Movement, MovementKind, OrderLine, StockChange, StockLevel};
pub use tables::{ColumnKind, ColumnSpec, SqlValue, TableSpec};

/// The format of every stored timestamp: UTC, milliseconds, e.g.
/// `2024-05-01T08:00:00.000Z`. Fixed width, so text order is time order.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// `t` as the store writes it (see [`TIMESTAMP_FORMAT`]). Use it for timestamp
/// columns of user tables too, so that `newer_than` compares them correctly.
pub fn timestamp_text(t: DateTime<Utc>) -> String {
    t.format(TIMESTAMP_FORMAT).to_string()
}

/// Reads a timestamp written by [`timestamp_text`].
pub(crate) fn parse_timestamp(field: &str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.fZ").map(|t| t.and_utc()).map_err(|error| {
        StoreError::InvalidValue { field: field.to_owned(), reason: format!("{text:?} is not a timestamp: {error}") }
    })
}

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");
static MYSQL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/mysql");

/// Connections per pool for the server backends, and for an SQLite file (SQLite
/// allows one writer at a time anyway; the rest serve readers).
const MAX_CONNECTIONS: u32 = 10;
const MAX_SQLITE_CONNECTIONS: u32 = 4;

/// How often opening an SQLite file retries setting it up while another
/// process is doing the same.
const PREPARE_RETRIES: u32 = 5;

/// The database behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, a file or in memory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Backend {
    /// `sqlite`, `postgres` or `mysql`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }

    fn migrator(&self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
            Backend::MySql => &MYSQL_MIGRATIONS,
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection pool to a migrated orderflow database. Cheap to clone: clones share
/// the pool.
///
/// A store [`fenced`](Store::fenced) by a lease writes only while that lease is
/// its holder's: every writing transaction first checks, inside itself, that the
/// lease row still carries the claim's token and epoch, and locks the row until it
/// commits ([`Store::begin_write`]).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    fence: Option<Arc<Lease>>,
}

impl Store {
    /// Connects and brings the schema up to date.
    ///
    /// Accepts `sqlite://path` or `sqlite:path` (the file and its directory are
    /// created if missing), `sqlite::memory:` (a private database that lives as long
    /// as the store; the pool holds exactly one connection), `postgres://…` or
    /// `postgresql://…`, and `mysql://…` (`mariadb://…` is accepted as MySQL).
    /// Errors show the URL with its password replaced by `***`.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Self::open(url, true).await
    }

    /// Like [`Store::connect`], for commands that read what runs wrote
    /// (`runs`, `status`, `dead-letters`): an SQLite file that does not exist
    /// is [`StoreError::NoDatabase`], so a mistyped path is reported instead
    /// of answered from a new, empty database. An existing database of an
    /// older orderflow is still migrated: the commands read it with the
    /// current schema.
    pub async fn open_existing(url: &str) -> Result<Store, StoreError> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> Result<Store, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let target = Target::parse(url, create)?;
        let connect_error = |source| StoreError::Connect { url: redact_url(url), source };
        if let Some(dir) = &target.create_dir {
            std::fs::create_dir_all(dir).map_err(|e| connect_error(sqlx::Error::Io(e)))?;
        }

        let options = if target.in_memory {
            // Every connection to `:memory:` is a different database, so keep one
            // connection and never let the pool close it.
            AnyPoolOptions::new().min_connections(1).max_connections(1).idle_timeout(None).max_lifetime(None)
        } else if target.backend == Backend::Sqlite {
            AnyPoolOptions::new().max_connections(MAX_SQLITE_CONNECTIONS).after_release(|conn, _| {
                Box::pin(async move {
                    // A future dropped while its `BEGIN IMMEDIATE` ran (a node's
                    // `timeout:`, a run dropped mid-write) hands the connection
                    // back inside a transaction nobody owns, holding the write
                    // lock: every other writer then fails "database is locked".
                    // A ROLLBACK that succeeds has found one; the connection is
                    // closed rather than lent out again (sqlx still counts the
                    // transaction as open on it).
                    Ok(sqlx::query("ROLLBACK").execute(&mut *conn).await.is_err())
                })
            })
        } else {
            AnyPoolOptions::new().max_connections(MAX_CONNECTIONS)
        };
        if target.backend != Backend::Sqlite {
            // One direct attempt first: the pool retries refused connections until its
            // acquire timeout (30 s), which is right for a running server but leaves
            // someone who mistyped a URL waiting for nothing.
            let probe = AnyConnection::connect(&target.url).await.map_err(connect_error)?;
            probe.close().await.map_err(connect_error)?;
        }
        let pool = options.connect(&target.url).await.map_err(connect_error)?;

        let mut attempt = 0;
        while let Err(error) = Self::prepare(&pool, &target).await {
            // SQLite has no migration lock: processes opening a new file at
            // once race (busy, or a migration another just recorded); the
            // next pass finds the work done.
            if target.backend != Backend::Sqlite || attempt == PREPARE_RETRIES {
                return Err(error);
            }
            attempt += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt))).await;
        }
        tracing::debug!(backend = target.backend.as_str(), url = %redact_url(url), "Store connected.");
        Ok(Store { pool, backend: target.backend, fence: None })
    }

    /// Sets the connection up and brings the schema up to date.
    async fn prepare(pool: &AnyPool, target: &Target) -> Result<(), StoreError> {
        for statement in dialect::after_connect(target.backend, target.in_memory) {
            sqlx::query(statement).execute(pool).await.map_err(StoreError::db("preparing the database"))?;
        }
        target
            .backend
            .migrator()
            .run(pool)
            .await
            .map_err(|source| StoreError::Migrate { backend: target.backend.as_str(), source })
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that writes. Used by every writer a node calls, so
    /// this is where a fenced store checks its lease ([`Store::fenced`]): the
    /// transaction reads the lease row with a lock held until it ends, and is
    /// refused with [`StoreError::Fenced`] when another worker claimed the lease
    /// since. A claim waits for the lock, so no takeover can come between the
    /// check and the commit. See [`dialect::begin_write`] for how it begins.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let begun = match dialect::begin_write(self.backend) {
            Some(statement) => self.pool.begin_with(statement).await,
            None => self.pool.begin().await,
        };
        let mut tx = begun.map_err(StoreError::db("starting a write transaction"))?;
        if let Some(lease) = &self.fence {
            leases::check_fence(&mut tx, self.backend, lease, true).await?;
        }
        Ok(tx)
    }

    /// Runs one writing statement: on its own, or, in a fenced store, in a
    /// transaction of [`Store::begin_write`]. `action` names it in errors.
    async fn execute_write<'q>(
        &self,
        query: Query<'q, Any, AnyArguments<'q>>,
        action: impl Into<String>,
    ) -> Result<AnyQueryResult, StoreError> {
        let action = action.into();
        if self.fence.is_none() {
            return query.execute(&self.pool).await.map_err(StoreError::db(action));
        }
        let mut tx = self.begin_write().await?;
        let result = query.execute(&mut *tx).await.map_err(StoreError::db(action.clone()))?;
        tx.commit().await.map_err(StoreError::db(action))?;
        Ok(result)
    }

    /// Closes every connection and waits until they are closed. Clones of the store
    /// stop working too. Needed before dropping a PostgreSQL or MySQL database the
    /// store is connected to.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

// Written by hand so that no connection detail (which could hold a password) is
// ever printed.
impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .field("fence", &self.fence.as_ref().map(|lease| (&lease.flow, &lease.shop, lease.epoch)))
            .finish_non_exhaustive()
    }
}

/// A database URL, sorted out.
struct Target {
    backend: Backend,
    /// The URL handed to sqlx.
    url: String,
    in_memory: bool,
    /// For SQLite files: the directory to create first.
    create_dir: Option<std::path::PathBuf>,
}

impl Target {
    /// `create`: whether a missing SQLite file is created (else it is
    /// [`StoreError::NoDatabase`]).
    fn parse(url: &str, create: bool) -> Result<Target, StoreError> {
        let unsupported = || StoreError::UnsupportedUrl { url: redact_url(url) };
        let scheme = url.split_once(':').map(|(s, _)| s).ok_or_else(unsupported)?;
        let rest = &url[scheme.len()..];
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Self::sqlite(url, create),
            "postgres" | "postgresql" => {
                Ok(Target { backend: Backend::Postgres, url: url.to_owned(), in_memory: false, create_dir: None })
            }
            "mysql" | "mariadb" => {
                Ok(Target { backend: Backend::MySql, url: format!("mysql{rest}"), in_memory: false, create_dir: None })
            }
            _ => Err(unsupported()),
        }
    }

    fn sqlite(url: &str, create: bool) -> Result<Target, StoreError> {
        let (head, query) = match url.split_once('?') {
            Some((head, query)) => (head, Some(query)),
            None => (url, None),
        };
        let path = head.strip_prefix("sqlite://").or_else(|| head.strip_prefix("sqlite:")).unwrap_or(head);
        let in_memory =
            path == ":memory:" || path.is_empty() || query.is_some_and(|q| q.split('&').any(|p| p == "mode=memory"));
        if in_memory {
            return Ok(Target { backend: Backend::Sqlite, url: url.to_owned(), in_memory, create_dir: None });
        }
        if !create && !std::path::Path::new(path).is_file() {
            return Err(StoreError::NoDatabase { path: path.to_owned() });
        }
        // `mode=rwc` creates the file when it is missing, `rw` does not (the
        // file may go between the check above and the open); respect an
        // explicit mode.
        let mode = if create { "rwc" } else { "rw" };
        let url = match query {
            Some(q) if q.split('&').any(|p| p.starts_with("mode=")) => url.to_owned(),
            Some(_) => format!("{url}&mode={mode}"),
            None => format!("{url}?mode={mode}"),
        };
        let create_dir = std::path::Path::new(path)
            .parent()
            .filter(|dir| create && !dir.as_os_str().is_empty() && !dir.exists())
            .map(ToOwned::to_owned);
        Ok(Target { backend: Backend::Sqlite, url, in_memory, create_dir })
    }
}

impl FromStr for Backend {
    type Err = StoreError;

    /// `sqlite`, `postgres` (or `postgresql`), `mysql` (or `mariadb`).
    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(StoreError::InvalidValue { field: "backend".into(), reason: format!("unknown backend {s:?}") }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_out_urls() {
        let t = Target::parse("sqlite://data/x.db", true).unwrap();
        assert_eq!(t.backend, Backend::Sqlite);
        assert_eq!(t.url, "sqlite://data/x.db?mode=rwc");
        assert!(!t.in_memory);

        let t = Target::parse("sqlite::memory:", false).unwrap();
        assert!(t.in_memory);
        assert_eq!(t.url, "sqlite::memory:");

        let t = Target::parse("mariadb://root@h:3306/db", false).unwrap();
        assert_eq!(t.backend, Backend::MySql);
        assert_eq!(t.url, "mysql://root@h:3306/db");

        assert_eq!(Target::parse("postgresql://h/db", false).unwrap().backend, Backend::Postgres);
        let error = Target::parse("redis://u:secret@h", true).err().unwrap().to_string();
        assert!(!error.contains("secret"), "{error}");
    }

    #[tokio::test]
    async fn a_connection_handed_back_inside_a_transaction_never_keeps_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("x.db").display())).await.unwrap();
        // What a future dropped while its `BEGIN IMMEDIATE` ran leaves: a
        // pooled connection inside a transaction no `Transaction` owns.
        let mut leaked = store.pool.acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *leaked).await.unwrap();
        drop(leaked);
        // Every other connection can write at once (a held lock would make
        // this wait out the busy timeout and fail "database is locked").
        let begun = tokio::time::timeout(std::time::Duration::from_secs(3), async {
            let mut others = Vec::new();
            for _ in 0..MAX_SQLITE_CONNECTIONS {
                others.push(store.pool.acquire().await.unwrap());
            }
            for other in &mut others {
                sqlx::query("BEGIN IMMEDIATE").execute(&mut **other).await.unwrap();
                sqlx::query("ROLLBACK").execute(&mut **other).await.unwrap();
            }
        })
        .await;
        assert!(begun.is_ok(), "a connection kept the write lock");
    }

    #[tokio::test]
    async fn opening_an_existing_database_creates_no_file_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let typo = dir.path().join("typo/orderflow.db");
        let error = Store::open_existing(&format!("sqlite://{}", typo.display())).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("no database at {}; run a flow first or check `database:`", typo.display())
        );
        assert!(!typo.parent().unwrap().exists(), "neither the file nor its folder is created");

        let file = dir.path().join("orderflow.db");
        let url = format!("sqlite://{}", file.display());
        drop(Store::connect(&url).await.unwrap());
        let store = Store::open_existing(&url).await.unwrap();
        assert!(store.recent_runs(None, 1).await.unwrap().is_empty(), "the existing database is read");
    }

    #[test]
    fn timestamps_round_trip_at_millisecond_precision() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T08:00:00.123456Z").unwrap().with_timezone(&Utc);
        let text = timestamp_text(t);
        assert_eq!(text, "2024-05-01T08:00:00.123Z");
        let back = parse_timestamp("t", &text).unwrap();
        assert_eq!(back.timestamp_millis(), t.timestamp_millis());
    }
}
