//! The store's one error type.

use sqlx::error::ErrorKind;

/// Everything that can go wrong in [`Store`](super::Store).
///
/// Messages are lowercase without a trailing period and never contain a password:
/// URLs are passed through [`redact_url`] before they are stored in an error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend the store supports.
    #[error("unsupported database url {url}: expected sqlite:, postgres://, mysql:// or mariadb://")]
    UnsupportedUrl {
        /// The URL, password replaced by `***`.
        url: String,
    },

    /// A command that reads what runs wrote was pointed at an SQLite file
    /// that does not exist (it is not created).
    #[error("no database at {path}; run a flow first or check `database:`")]
    NoDatabase {
        /// The file's path as the URL gives it.
        path: String,
    },

    /// The database could not be reached or refused the connection.
    #[error("could not connect to {url}")]
    Connect {
        /// The URL, password replaced by `***`.
        url: String,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },

    /// The schema migrations failed.
    #[error("could not migrate the {backend} database")]
    Migrate {
        /// `sqlite`, `postgres` or `mysql`.
        backend: &'static str,
        /// What the migrator reported.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A statement failed; `action` says what the store was doing, then the
    /// driver's own message (the constraint, the column), shown here once
    /// rather than as a separate cause.
    #[error("database error while {action}: {}", driver_message(driver))]
    Database {
        /// What the store was doing, e.g. `upserting rows into orders`.
        action: String,
        /// What the driver reported.
        driver: sqlx::Error,
    },

    /// A [`TableSpec`](super::TableSpec) is not usable; the message names what is wrong.
    #[error("invalid table spec: {0}")]
    InvalidSpec(String),

    /// A row passed to [`Store::upsert_rows`](super::Store::upsert_rows) does not
    /// match its table spec. Nothing of the batch was written.
    #[error("invalid row {index} for table {table}: {reason}")]
    InvalidRow {
        /// The table.
        table: String,
        /// Position of the row in the batch, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// A value cannot be stored or was stored in a shape the store cannot read back
    /// (an unknown status, a malformed timestamp, a count that does not fit).
    #[error("invalid value for {field}: {reason}")]
    InvalidValue {
        /// The column or field, e.g. `runs.status`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },

    /// [`Store::finish_run`](super::Store::finish_run) named a run that was never
    /// inserted.
    #[error("run {0} does not exist")]
    RunNotFound(String),

    /// A dead letter cannot be replayed or discarded; the message says why
    /// (no such letter, not open, not a record the store can save).
    #[error("dead letter {id}: {reason}")]
    DeadLetter {
        /// The letter's id.
        id: i64,
        /// Why not.
        reason: String,
    },
    /// A write of a run under a lease found the lease no longer its own: the
    /// process stalled past it and another worker took the (flow, shop) over.
    /// Nothing of the transaction was written, and no later write of the run
    /// can be.
    #[error(
        "fenced off: the lease of flow {flow} for shop {shop:?} was taken over ({}) since this run \
         claimed epoch {epoch}; its writes are refused",
        describe_holder(holder.as_ref())
    )]
    Fenced {
        /// The flow's name.
        flow: String,
        /// The shop, `""` for a flow without one.
        shop: String,
        /// The epoch of the run's lease.
        epoch: i64,
        /// Who holds the lease now, and at which epoch; `None` when the row
        /// is gone.
        holder: Option<(String, i64)>,
    },
}

fn describe_holder(holder: Option<&(String, i64)>) -> String {
    match holder {
        Some((worker, epoch)) => format!("now epoch {epoch}, claimed by {worker}"),
        None => "its row is gone".to_owned(),
    }
}

impl StoreError {
    /// Wraps a driver error with what the store was doing.
    pub(crate) fn db(action: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let action = action.into();
        move |driver| StoreError::Database { action, driver }
    }

    /// True when trying again later may succeed: the database was unreachable, the
    /// pool was exhausted, the connection broke, or the database reported a lock
    /// conflict (deadlock, serialization failure, busy SQLite file). False for
    /// constraint violations, syntax errors, invalid specs and rows: those fail the
    /// same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Connect { .. } => true,
            StoreError::Database { driver, .. } => is_transient_sqlx(driver),
            StoreError::Migrate { source, .. } => match source {
                sqlx::migrate::MigrateError::Execute(source) => is_transient_sqlx(source),
                _ => false,
            },
            StoreError::UnsupportedUrl { .. }
            | StoreError::NoDatabase { .. }
            | StoreError::InvalidSpec(_)
            | StoreError::InvalidRow { .. }
            | StoreError::InvalidValue { .. }
            | StoreError::RunNotFound(_)
            | StoreError::DeadLetter { .. }
            | StoreError::Fenced { .. } => false,
        }
    }

    /// True when the database rejected a write because it broke a constraint
    /// (unique or primary key, foreign key, NOT NULL, CHECK). Callers use this to
    /// turn a duplicate into a domain answer instead of a failure, the way
    /// realworld-axum-sqlx's `on_constraint` does.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            StoreError::Database { driver: sqlx::Error::Database(db), .. } => !matches!(db.kind(), ErrorKind::Other),
            _ => false,
        }
    }
}

/// What the driver said, without sqlx's "error returned from database" prefix,
/// naming the constraint when the database gives its name apart (PostgreSQL).
fn driver_message(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => match db.constraint() {
            Some(constraint) if !db.message().contains(constraint) => {
                format!("{} (constraint {constraint})", db.message())
            }
            _ => db.message().to_owned(),
        },
        other => other.to_string(),
    }
}

/// Driver errors worth retrying.
fn is_transient_sqlx(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            matches!(db.kind(), ErrorKind::Other) && db.code().is_some_and(|code| TRANSIENT_CODES.contains(&&*code))
        }
        _ => false,
    }
}

/// Database error codes that mean "conflict or overload, try again". The driver
/// reports SQLSTATE for PostgreSQL and MySQL, and the (extended) result code for SQLite.
const TRANSIENT_CODES: &[&str] = &[
    // SQLSTATE: serialization failure (also MySQL's deadlock), PostgreSQL deadlock,
    // lock not available, too many connections, admin/crash shutdown, cannot connect now.
    "40001", "40P01", "55P03", "53300", "57P01", "57P02", "57P03", "08000", "08003", "08006",
    // MySQL reports lock wait timeout (1205) as HY000, which is too broad to retry.
    // SQLite: SQLITE_BUSY, SQLITE_LOCKED and their extended codes.
    "5", "6", "261", "262", "517", "773",
];

/// Returns `url` with the password (in the authority or as a `password=` query
/// parameter) replaced by `***`, so that it can be logged or shown.
///
/// ```
/// use orderflow::store::redact_url;
/// assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
/// ```
pub fn redact_url(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match before_query.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            // The host cannot contain `@`, so the last one ends the user info even when
            // an unescaped `@` sits in the password.
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
                    None => format!("{scheme}://{userinfo}@{host}{path}"),
                },
                None => format!("{scheme}://{rest}"),
            }
        }
        None => before_query.to_owned(),
    };
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if is_secret_param(key) => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn is_secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "password" || key == "pass" || key == "pwd" || key.ends_with("password")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_authority_and_query() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("mysql://u:p@ss@h:3306/db"), "mysql://u:***@h:3306/db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=secret&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        for url in
            ["postgres://postgres@127.0.0.1:5432/test", "sqlite://data/orderflow.db", "sqlite::memory:", "mysql://h/db"]
        {
            assert_eq!(redact_url(url), url);
        }
    }
}
