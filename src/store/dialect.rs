//! Every difference between SQLite, PostgreSQL and MySQL/MariaDB that the store
//! needs, in one place: placeholders, identifier quoting, column types, upserts, and
//! the few ways the `Any` driver hands values back differently.
//!
//! The rest of the store writes portable SQL with `?` placeholders and unquoted
//! fixed identifiers, and asks this module for anything that differs.

use sqlx::any::{AnyArguments, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::{Arguments, Decode, Row, Type};

use super::Backend;
use super::tables::{ColumnKind, SqlValue, TableSpec};

/// The SQL text for `backend`: portable `?` placeholders become `$1, $2, …` on
/// PostgreSQL. The store's own SQL holds no string literals, so every `?` is a
/// placeholder.
pub(crate) fn sql(backend: Backend, portable: &str) -> String {
    match backend {
        Backend::Sqlite | Backend::MySql => portable.to_owned(),
        Backend::Postgres => {
            let mut out = String::with_capacity(portable.len() + 8);
            let mut n = 0;
            for c in portable.chars() {
                if c == '?' {
                    n += 1;
                    out.push('$');
                    out.push_str(&n.to_string());
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

/// The database's clock, in whole milliseconds since 1970, as an SQL expression.
/// Leases are timed by it so that workers on hosts whose clocks disagree still
/// agree on when a lease expires. Constant within one statement on every backend.
pub(crate) fn now_millis(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        Backend::Postgres => "CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)",
        Backend::MySql => "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)",
    }
}

/// Claims the lease row of a (flow, shop) when it is free or expired, in one
/// statement: arguments `flow, shop, holder, token, ttl_ms`. Whether this claim won
/// is read back afterwards (the row carries the winner's token): MySQL reports the
/// same affected-row count for "inserted" and "left alone" under the
/// `CLIENT_FOUND_ROWS` flag sqlx sets.
pub(crate) fn claim_lease(backend: Backend) -> String {
    let now = now_millis(backend);
    let insert =
        format!("INSERT INTO leases (flow, shop, holder, token, epoch, expires_at) VALUES (?, ?, ?, ?, 1, {now} + ?)");
    let sql = match backend {
        Backend::Sqlite | Backend::Postgres => format!(
            "{insert} ON CONFLICT (flow, shop) DO UPDATE SET holder = excluded.holder, token = excluded.token, \
             epoch = leases.epoch + 1, expires_at = excluded.expires_at WHERE leases.expires_at <= {now}"
        ),
        // Assignments see the values assigned before them, so `expires_at`, which
        // every condition reads, is assigned last.
        Backend::MySql => format!(
            "{insert} ON DUPLICATE KEY UPDATE \
             holder = IF(expires_at <= {now}, VALUES(holder), holder), \
             token = IF(expires_at <= {now}, VALUES(token), token), \
             epoch = IF(expires_at <= {now}, epoch + 1, epoch), \
             expires_at = IF(expires_at <= {now}, VALUES(expires_at), expires_at)"
        ),
    };
    self::sql(backend, &sql)
}

/// `count` portable placeholders separated by commas.
fn placeholders(count: usize) -> String {
    vec!["?"; count].join(", ")
}

/// A quoted identifier. Callers pass only names that [`TableSpec`] validated
/// (`[A-Za-z_][A-Za-z0-9_]*`), so no escaping is needed.
pub(crate) fn quote(backend: Backend, ident: &str) -> String {
    match backend {
        Backend::Sqlite | Backend::Postgres => format!("\"{ident}\""),
        Backend::MySql => format!("`{ident}`"),
    }
}

/// Statements run once right after connecting, before migrations.
pub(crate) fn after_connect(backend: Backend, in_memory: bool) -> &'static [&'static str] {
    match backend {
        // WAL lets readers (the web page) run while a flow writes. It is stored in the
        // file, so setting it once per connect is enough; an in-memory database has no
        // journal to switch.
        Backend::Sqlite if !in_memory => &["PRAGMA journal_mode = WAL"],
        _ => &[],
    }
}

/// The column type for `kind`. `is_key` matters on MySQL only, where TEXT cannot be
/// part of a primary key.
fn column_type(backend: Backend, kind: ColumnKind, is_key: bool) -> &'static str {
    match (backend, kind) {
        (Backend::Sqlite, ColumnKind::Text | ColumnKind::Json) => "TEXT",
        (Backend::Sqlite, ColumnKind::Integer | ColumnKind::Boolean) => "INTEGER",
        (Backend::Sqlite, ColumnKind::Real) => "REAL",

        // JSON stays TEXT: the `Any` driver can only bind text, and PostgreSQL will not
        // cast a text parameter into a JSONB column implicitly.
        (Backend::Postgres, ColumnKind::Text | ColumnKind::Json) => "TEXT",
        (Backend::Postgres, ColumnKind::Integer) => "BIGINT",
        (Backend::Postgres, ColumnKind::Real) => "DOUBLE PRECISION",
        (Backend::Postgres, ColumnKind::Boolean) => "BOOLEAN",

        // 191 utf8mb4 characters fit the oldest InnoDB index limit (767 bytes).
        (Backend::MySql, ColumnKind::Text) if is_key => "VARCHAR(191)",
        (Backend::MySql, ColumnKind::Text) => "TEXT",
        (Backend::MySql, ColumnKind::Json) => "LONGTEXT",
        (Backend::MySql, ColumnKind::Integer) => "BIGINT",
        (Backend::MySql, ColumnKind::Real) => "DOUBLE",
        // BOOLEAN is TINYINT(1) on MySQL, which the `Any` driver refuses to read.
        (Backend::MySql, ColumnKind::Boolean) => "SMALLINT",
    }
}

/// `CREATE TABLE IF NOT EXISTS` for a validated spec, the key as primary key.
pub(crate) fn create_table(backend: Backend, spec: &TableSpec) -> String {
    let mut defs: Vec<String> = spec
        .columns
        .iter()
        .map(|column| {
            let is_key = spec.key.contains(&column.name);
            let ty = column_type(backend, column.kind, is_key);
            // Explicit NOT NULL: SQLite would otherwise accept NULL in a primary key.
            let null = if is_key { " NOT NULL" } else { "" };
            format!("{} {ty}{null}", quote(backend, &column.name))
        })
        .collect();
    defs.push(format!("PRIMARY KEY ({})", quote_list(backend, &spec.key)));
    let options = match backend {
        // Byte-wise collation: keys compare exactly as on the other backends.
        Backend::MySql => " ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
        Backend::Sqlite | Backend::Postgres => "",
    };
    format!("CREATE TABLE IF NOT EXISTS {} ({}){options}", quote(backend, &spec.name), defs.join(", "))
}

/// `SELECT` of every column of a validated spec, ordered by its key.
pub(crate) fn select_all(backend: Backend, spec: &TableSpec) -> String {
    let columns: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
    let order: Vec<String> = spec
        .key
        .iter()
        .map(|k| {
            let kind = spec.column(k).map_or(ColumnKind::Text, |c| c.kind);
            format!("{}{}", quote(backend, k), text_order(backend, kind))
        })
        .collect();
    format!(
        "SELECT {} FROM {} ORDER BY {}",
        quote_list(backend, &columns),
        quote(backend, &spec.name),
        order.join(", ")
    )
}

/// One-row upsert into `table`: insert, or on a key conflict overwrite the non-key
/// columns. With `newer_than`, an existing row is overwritten only when its value in
/// that column is NULL or `<=` the incoming one. Text compares byte for byte on every
/// backend (see [`text_order`]).
pub(crate) fn upsert(
    backend: Backend,
    table: &str,
    columns: &[&str],
    key: &[&str],
    newer_than: Option<(&str, ColumnKind)>,
) -> String {
    upsert_many(backend, table, columns, key, newer_than, 1)
}

/// [`upsert`] of `rows` rows in one statement; the arguments are bound row after
/// row. No two rows may share a key: PostgreSQL refuses to update a row twice in one
/// statement.
pub(crate) fn upsert_many(
    backend: Backend,
    table: &str,
    columns: &[&str],
    key: &[&str],
    newer_than: Option<(&str, ColumnKind)>,
    rows: usize,
) -> String {
    let t = quote(backend, table);
    let insert =
        format!("INSERT INTO {t} ({}) VALUES {}", quote_list(backend, columns), value_rows(columns.len(), rows));
    let mut updated: Vec<&str> = columns.iter().copied().filter(|c| !key.contains(c)).collect();
    let sql = match backend {
        Backend::Sqlite | Backend::Postgres => {
            if updated.is_empty() {
                format!("{insert} ON CONFLICT ({}) DO NOTHING", quote_list(backend, key))
            } else {
                let set: Vec<String> = updated
                    .iter()
                    .map(|c| {
                        let c = quote(backend, c);
                        format!("{c} = excluded.{c}")
                    })
                    .collect();
                let guard = match newer_than {
                    Some((g, kind)) => {
                        let g = quote(backend, g);
                        let collate = text_order(backend, kind);
                        format!(" WHERE {t}.{g} IS NULL OR {t}.{g} <= excluded.{g}{collate}")
                    }
                    None => String::new(),
                };
                format!("{insert} ON CONFLICT ({}) DO UPDATE SET {}{guard}", quote_list(backend, key), set.join(", "))
            }
        }
        Backend::MySql => {
            if updated.is_empty() {
                // A no-op assignment is MySQL's spelling of DO NOTHING. Every column is
                // a key column here, so the first column will do.
                match columns.first() {
                    Some(k) => {
                        let k = quote(backend, k);
                        format!("{insert} ON DUPLICATE KEY UPDATE {k} = {k}")
                    }
                    None => insert,
                }
            } else {
                // MySQL evaluates assignments left to right and later ones see the
                // already-assigned values, so the guard column must be assigned last
                // or the guards after it would compare against the new value.
                if let Some((g, _)) = newer_than
                    && let Some(pos) = updated.iter().position(|c| *c == g)
                {
                    let guard_column = updated.remove(pos);
                    updated.push(guard_column);
                }
                let set: Vec<String> = updated
                    .iter()
                    .map(|c| {
                        let c = quote(backend, c);
                        // The tables are created utf8mb4_bin, so text already
                        // compares byte for byte.
                        match newer_than {
                            Some((g, _)) => {
                                let g = quote(backend, g);
                                format!("{c} = IF({g} IS NULL OR {g} <= VALUES({g}), VALUES({c}), {c})")
                            }
                            None => format!("{c} = VALUES({c})"),
                        }
                    })
                    .collect();
                format!("{insert} ON DUPLICATE KEY UPDATE {}", set.join(", "))
            }
        }
    };
    self::sql(backend, &sql)
}

/// A multi-row `INSERT` of `rows` rows into `table`; the arguments are bound row
/// after row.
pub(crate) fn insert_many(backend: Backend, table: &str, columns: &[&str], rows: usize) -> String {
    let sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        quote(backend, table),
        quote_list(backend, columns),
        value_rows(columns.len(), rows)
    );
    self::sql(backend, &sql)
}

/// A one-row `INSERT` into `table` that inserts nothing, without failing, when the
/// row would break a unique or primary key; the statement then affects no row. On
/// MySQL this is `INSERT IGNORE`, which also turns some other errors (a too-long
/// value, a NULL in a NOT NULL column) into warnings: callers check their values
/// before writing. (`ON DUPLICATE KEY UPDATE k = k` would not do: with the
/// `CLIENT_FOUND_ROWS` flag sqlx sets, it reports the existing row as affected.)
pub(crate) fn insert_ignore(backend: Backend, table: &str, columns: &[&str]) -> String {
    let t = quote(backend, table);
    let (verb, tail) = match backend {
        Backend::Sqlite | Backend::Postgres => ("INSERT", " ON CONFLICT DO NOTHING"),
        Backend::MySql => ("INSERT IGNORE", ""),
    };
    let sql =
        format!("{verb} INTO {t} ({}) VALUES {}{tail}", quote_list(backend, columns), value_rows(columns.len(), 1));
    self::sql(backend, &sql)
}

/// `(?, ?), (?, ?)`: `rows` groups of `columns` placeholders.
fn value_rows(columns: usize, rows: usize) -> String {
    let row = format!("({})", placeholders(columns));
    vec![row; rows.max(1)].join(", ")
}

/// `count` placeholders for an `IN (…)` list. Callers keep `count` under
/// [`max_binds`] and above zero (`IN ()` is a syntax error outside SQLite).
pub(crate) fn in_list(count: usize) -> String {
    placeholders(count)
}

/// The most placeholders one statement may carry: SQLite's
/// `SQLITE_MAX_VARIABLE_NUMBER` (32766 since 3.32), and the 16-bit parameter count of
/// the PostgreSQL and MySQL protocols.
pub(crate) fn max_binds(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 32_766,
        Backend::Postgres | Backend::MySql => 65_535,
    }
}

/// The statement that opens a transaction which reads and then writes. SQLite's
/// plain `BEGIN` is deferred: it takes the write lock only at the first write, and
/// if another connection committed since the transaction's first read, that write
/// fails at once (`SQLITE_BUSY_SNAPSHOT`) instead of waiting. `BEGIN IMMEDIATE` takes
/// the lock up front, waiting up to the busy timeout, so what the transaction reads
/// stays true until it commits. `None`: the backend's default `BEGIN`.
pub(crate) fn begin_write(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Sqlite => Some("BEGIN IMMEDIATE"),
        Backend::Postgres | Backend::MySql => None,
    }
}

/// The suffix that makes a `SELECT` inside a transaction lock the rows it reads until
/// the transaction ends, so that they cannot change between the read and the write
/// that depends on it. SQLite has no row locks, and needs none after
/// [`begin_write`]: the transaction holds the database's only write lock.
pub(crate) fn lock_rows(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres | Backend::MySql => " FOR UPDATE",
    }
}

/// A statement, taking one bound 64-bit key, that makes transactions writing the same
/// key take turns until they end. The locking read of [`lock_rows`] cannot lock a row
/// that does not exist yet, so on PostgreSQL two writers could both find an order
/// absent and both believe they inserted it; a transaction-scoped advisory lock per
/// shop rules that out. SQLite needs none (one writer at a time), and MySQL's locking
/// read also locks the gap where an absent row would go (under its default
/// REPEATABLE READ).
pub(crate) fn lock_key(backend: Backend) -> Option<String> {
    match backend {
        Backend::Postgres => Some(sql(backend, "SELECT pg_advisory_xact_lock(?)")),
        Backend::Sqlite | Backend::MySql => None,
    }
}

/// The suffix that makes `ORDER BY` of a text column byte-wise (see [`text_order`]).
pub(crate) fn sort_text(backend: Backend) -> &'static str {
    text_order(backend, ColumnKind::Text)
}

/// The suffix that makes a comparison or sort of a `kind` column byte-wise. SQLite
/// compares text as bytes already and MySQL tables are created `utf8mb4_bin`, but a
/// PostgreSQL database sorts by its locale (e.g. `en_US` puts `a` before `B`).
fn text_order(backend: Backend, kind: ColumnKind) -> &'static str {
    match (backend, kind) {
        (Backend::Postgres, ColumnKind::Text) => " COLLATE \"C\"",
        _ => "",
    }
}

fn quote_list<S: AsRef<str>>(backend: Backend, idents: &[S]) -> String {
    idents.iter().map(|i| quote(backend, i.as_ref())).collect::<Vec<_>>().join(", ")
}

/// Binds `value` for a column of `kind`. NULLs are bound with the column's type
/// (PostgreSQL rejects a text-typed NULL in a BIGINT column), and booleans become
/// 0/1 where the column is an integer.
pub(crate) fn bind(
    backend: Backend,
    args: &mut AnyArguments<'_>,
    kind: ColumnKind,
    value: &SqlValue,
) -> Result<(), BoxDynError> {
    match value {
        SqlValue::Null => match kind {
            ColumnKind::Text | ColumnKind::Json => args.add(None::<String>),
            ColumnKind::Integer => args.add(None::<i64>),
            ColumnKind::Real => args.add(None::<f64>),
            ColumnKind::Boolean if backend == Backend::Postgres => args.add(None::<bool>),
            ColumnKind::Boolean => args.add(None::<i64>),
        },
        SqlValue::Text(text) => args.add(text.clone()),
        SqlValue::Integer(i) if kind == ColumnKind::Real => args.add(*i as f64),
        SqlValue::Integer(i) => args.add(*i),
        SqlValue::Real(r) => args.add(*r),
        SqlValue::Bool(b) if backend == Backend::Postgres => args.add(*b),
        SqlValue::Bool(b) => args.add(i64::from(*b)),
    }
}

/// Reads column `index` of `row` as a value of `kind`, as JSON: booleans stored as
/// 0/1 come back as `true`/`false`, JSON text comes back parsed.
pub(crate) fn read_json(row: &AnyRow, index: usize, kind: ColumnKind) -> Result<serde_json::Value, BoxDynError> {
    use serde_json::Value;
    Ok(match kind {
        ColumnKind::Text => row.try_get::<Option<DbText>, _>(index)?.map_or(Value::Null, |t| Value::String(t.0)),
        ColumnKind::Json => match row.try_get::<Option<DbText>, _>(index)? {
            Some(text) => serde_json::from_str(&text.0)?,
            None => Value::Null,
        },
        ColumnKind::Integer => row.try_get::<Option<i64>, _>(index)?.map_or(Value::Null, Value::from),
        ColumnKind::Real => row.try_get::<Option<f64>, _>(index)?.map_or(Value::Null, Value::from),
        ColumnKind::Boolean => match row.try_get::<Option<bool>, _>(index) {
            Ok(b) => b.map_or(Value::Null, Value::Bool),
            // SQLite and MySQL hand back the 0/1 integer the column holds.
            Err(_) => row.try_get::<Option<i64>, _>(index)?.map_or(Value::Null, |i| Value::Bool(i != 0)),
        },
    })
}

/// A text column as the `Any` driver returns it. MySQL reports TEXT and LONGTEXT
/// columns as blobs, so a plain `String` cannot read them; this accepts both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbText(pub(crate) String);

impl Type<sqlx::Any> for DbText {
    fn type_info() -> AnyTypeInfo {
        <String as Type<sqlx::Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        matches!(ty.kind(), AnyTypeInfoKind::Text | AnyTypeInfoKind::Blob)
    }
}

impl<'r> Decode<'r, sqlx::Any> for DbText {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        match <String as Decode<sqlx::Any>>::decode(value.clone()) {
            Ok(text) => Ok(DbText(text)),
            Err(_) => {
                let bytes = <Vec<u8> as Decode<sqlx::Any>>::decode(value)?;
                Ok(DbText(String::from_utf8(bytes)?))
            }
        }
    }
}

impl From<DbText> for String {
    fn from(text: DbText) -> String {
        text.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered() {
        assert_eq!(
            sql(Backend::Postgres, "UPDATE runs SET a = ?, b = ? WHERE id = ?"),
            "UPDATE runs SET a = $1, b = $2 WHERE id = $3"
        );
        assert_eq!(sql(Backend::MySql, "a = ?"), "a = ?");
    }

    #[test]
    fn mysql_upsert_assigns_guard_column_last() {
        let sql = upsert(
            Backend::MySql,
            "orders",
            &["tid", "modified", "status"],
            &["tid"],
            Some(("modified", ColumnKind::Text)),
        );
        let status = sql.find("`status` = IF").expect("status assignment");
        let modified = sql.find("`modified` = IF").expect("modified assignment");
        assert!(status < modified, "{sql}");
    }

    #[test]
    fn multi_row_statements_number_every_placeholder() {
        assert_eq!(
            insert_many(Backend::Postgres, "t", &["a", "b"], 2),
            "INSERT INTO \"t\" (\"a\", \"b\") VALUES ($1, $2), ($3, $4)"
        );
        let sql = upsert_many(Backend::MySql, "t", &["k", "v"], &["k"], None, 3);
        assert_eq!(
            sql,
            "INSERT INTO `t` (`k`, `v`) VALUES (?, ?), (?, ?), (?, ?) ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)"
        );
        assert_eq!(in_list(3), "?, ?, ?");
        assert_eq!(lock_key(Backend::Postgres).as_deref(), Some("SELECT pg_advisory_xact_lock($1)"));
    }

    #[test]
    fn insert_ignore_skips_key_conflicts() {
        assert_eq!(
            insert_ignore(Backend::Postgres, "t", &["a", "b"]),
            "INSERT INTO \"t\" (\"a\", \"b\") VALUES ($1, $2) ON CONFLICT DO NOTHING"
        );
        assert_eq!(insert_ignore(Backend::MySql, "t", &["a"]), "INSERT IGNORE INTO `t` (`a`) VALUES (?)");
    }

    #[test]
    fn postgres_upsert_guards_with_where() {
        let sql =
            upsert(Backend::Postgres, "orders", &["tid", "modified"], &["tid"], Some(("modified", ColumnKind::Text)));
        assert_eq!(
            sql,
            "INSERT INTO \"orders\" (\"tid\", \"modified\") VALUES ($1, $2) \
             ON CONFLICT (\"tid\") DO UPDATE SET \"modified\" = excluded.\"modified\" \
             WHERE \"orders\".\"modified\" IS NULL OR \"orders\".\"modified\" <= excluded.\"modified\" COLLATE \"C\""
        );
    }
}
