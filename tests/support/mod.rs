//! Database helpers shared by the integration tests: one fresh, migrated [`Store`]
//! per available backend.
//!
//! SQLite is always available. PostgreSQL and MySQL/MariaDB join in when their
//! server URL is in the environment:
//!
//! ```text
//! ORDERFLOW_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test
//! ORDERFLOW_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test
//! ```
//!
//! Each call creates a new database `orderflow_t_<uuid>` on each server, so tests
//! run in parallel without seeing each other's rows. A variable that is set but
//! points at an unreachable server fails the test instead of skipping it, so CI
//! cannot pass by accident.

// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

pub mod rig;

use std::io::Write;
use std::sync::Once;

use orderflow::store::{Store, redact_url};
use sqlx::{Connection, Executor, MySqlConnection, PgConnection};

/// Server URL of the PostgreSQL used by the tests (any database on it will do).
pub const POSTGRES_URL_VAR: &str = "ORDERFLOW_TEST_POSTGRES_URL";
/// Server URL of the MySQL or MariaDB used by the tests.
pub const MYSQL_URL_VAR: &str = "ORDERFLOW_TEST_MYSQL_URL";

/// A migrated store on a database of its own. Call [`TestStore::cleanup`] at the end
/// of the test to drop the database (a panicking test leaves it behind; such
/// databases are all named `orderflow_t_…`).
pub struct TestStore {
    /// `sqlite`, `postgres` or `mysql`; put it in assertion messages.
    pub label: &'static str,
    /// The store under test.
    pub store: Store,
    /// The URL `store` was connected with, for connecting a second store to the
    /// same database.
    pub url: String,
    owner: Owner,
}

/// What has to be removed when the test is over.
enum Owner {
    /// The SQLite file lives in this directory, deleted on drop.
    TempDir(tempfile::TempDir),
    /// A database created on a server.
    Postgres {
        server_url: String,
        database: String,
    },
    MySql {
        server_url: String,
        database: String,
    },
}

impl TestStore {
    /// Closes the store and drops its database.
    pub async fn cleanup(self) {
        self.store.close().await;
        match self.owner {
            Owner::TempDir(dir) => drop(dir),
            Owner::Postgres { server_url, database } => {
                let mut conn = PgConnection::connect(&server_url)
                    .await
                    .unwrap_or_else(|e| panic!("reconnecting to drop {database}: {e}"));
                // FORCE: a pool connection may still be closing on the server side.
                conn.execute(&*format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                    .await
                    .unwrap_or_else(|e| panic!("dropping {database}: {e}"));
            }
            Owner::MySql { server_url, database } => {
                let mut conn = MySqlConnection::connect(&server_url)
                    .await
                    .unwrap_or_else(|e| panic!("reconnecting to drop {database}: {e}"));
                conn.execute(&*format!("DROP DATABASE IF EXISTS {database}"))
                    .await
                    .unwrap_or_else(|e| panic!("dropping {database}: {e}"));
            }
        }
    }
}

/// A fresh SQLite store, plus PostgreSQL and MySQL stores when their variables are
/// set. Prints one line per test binary for each backend it skips.
pub async fn test_stores() -> Vec<TestStore> {
    let mut stores = vec![sqlite().await];
    match std::env::var(POSTGRES_URL_VAR) {
        Ok(url) => stores.push(postgres(&url).await),
        Err(_) => skip_once(&POSTGRES_SKIPPED, "PostgreSQL", POSTGRES_URL_VAR),
    }
    match std::env::var(MYSQL_URL_VAR) {
        Ok(url) => stores.push(mysql(&url).await),
        Err(_) => skip_once(&MYSQL_SKIPPED, "MySQL", MYSQL_URL_VAR),
    }
    stores
}

static POSTGRES_SKIPPED: Once = Once::new();
static MYSQL_SKIPPED: Once = Once::new();

fn skip_once(once: &Once, name: &str, var: &str) {
    // Written to the real stderr, not through `eprintln!`, which the test harness
    // captures and only shows for failing tests.
    once.call_once(|| {
        let _ = writeln!(std::io::stderr(), "skipping {name} store tests: {var} is not set");
    });
}

/// A fresh SQLite file in a temporary directory.
pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("orderflow.db").display());
    let store = Store::connect(&url).await.unwrap_or_else(|e| panic!("connecting to {url}: {}", error_chain(&e)));
    TestStore { label: "sqlite", store, url, owner: Owner::TempDir(dir) }
}

/// A fresh database on the PostgreSQL server at `server_url`.
pub async fn postgres(server_url: &str) -> TestStore {
    let database = database_name();
    let mut conn = PgConnection::connect(server_url).await.unwrap_or_else(|e| {
        panic!("{POSTGRES_URL_VAR} is set but PostgreSQL at {} is unreachable: {e}", redact_url(server_url))
    });
    conn.execute(&*format!("CREATE DATABASE {database}"))
        .await
        .unwrap_or_else(|e| panic!("creating PostgreSQL database {database}: {e}"));
    let url = with_database(server_url, &database);
    let store = Store::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {}", redact_url(&url), error_chain(&e)));
    TestStore { label: "postgres", store, url, owner: Owner::Postgres { server_url: server_url.to_owned(), database } }
}

/// A fresh database on the MySQL server at `server_url`.
pub async fn mysql(server_url: &str) -> TestStore {
    let database = database_name();
    let mut conn = MySqlConnection::connect(server_url).await.unwrap_or_else(|e| {
        panic!("{MYSQL_URL_VAR} is set but MySQL at {} is unreachable: {e}", redact_url(server_url))
    });
    conn.execute(&*format!("CREATE DATABASE {database} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
        .await
        .unwrap_or_else(|e| panic!("creating MySQL database {database}: {e}"));
    let url = with_database(server_url, &database);
    let store = Store::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {}", redact_url(&url), error_chain(&e)));
    TestStore { label: "mysql", store, url, owner: Owner::MySql { server_url: server_url.to_owned(), database } }
}

fn database_name() -> String {
    format!("orderflow_t_{}", uuid::Uuid::now_v7().simple())
}

/// `url` with its database (the path) replaced by `database`; query kept.
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let path_start = head[authority_start..].find('/').map_or(head.len(), |i| authority_start + i);
    format!("{}/{database}{query}", &head[..path_start])
}

/// An error and all its causes on one line, for panic messages.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}
