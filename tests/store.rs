//! The store suite, run against every backend `support::test_stores` provides:
//! SQLite always, PostgreSQL and MySQL/MariaDB when their URL variables are set.

mod support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use orderflow::platforms::{Money, Order, OrderItem};
use orderflow::store::{
    ColumnKind, ColumnSpec, DeadLetter, DeadLetterState, NodeRunRecord, NodeStatus, RunFinish, RunStart, RunStatus,
    SqlValue, Store, StoreError, TableSpec, redact_url,
};
use serde_json::{Value, json};
use support::{error_chain, test_stores};

/// A timestamp with whole milliseconds, as the store keeps them.
fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 8, minute, 0).unwrap() + Duration::milliseconds(123)
}

fn run_start(id: &str, flow: &str, minute: u32) -> RunStart {
    RunStart {
        id: id.into(),
        flow: flow.into(),
        trigger: "schedule".into(),
        started_at: at(minute),
        shop: None,
        worker: None,
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    for ts in test_stores().await {
        let label = ts.label;
        ts.store
            .insert_run(&run_start("r1", "daily", 0))
            .await
            .unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        // A second and third connect see an up-to-date schema and keep the data. On
        // MySQL the third one spells the scheme `mariadb://`.
        let urls = [ts.url.clone(), ts.url.replacen("mysql://", "mariadb://", 1)];
        for url in &urls {
            let again = Store::connect(url).await.unwrap_or_else(|e| panic!("{label}: reconnect: {}", error_chain(&e)));
            assert_eq!(again.backend(), ts.store.backend(), "{label}");
            let runs = again.recent_runs(None, 10).await.unwrap();
            assert_eq!(runs.len(), 1, "{label}: data survives reconnect");
            again.close().await;
        }
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn runs_round_trip() {
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        store.insert_run(&run_start("r1", "daily", 0)).await.unwrap();
        store.insert_run(&run_start("r3", "daily", 20)).await.unwrap();
        store.insert_run(&run_start("r2", "daily", 10)).await.unwrap();
        store.insert_run(&run_start("o1", "other", 30)).await.unwrap();

        let duplicate = store.insert_run(&run_start("r1", "daily", 0)).await;
        let duplicate = duplicate.expect_err("a duplicate run id is rejected");
        assert!(duplicate.is_constraint_violation(), "{label}: {duplicate:?}");
        assert!(!duplicate.is_transient(), "{label}: {duplicate:?}");

        let nodes = vec![
            NodeRunRecord {
                node_id: "fetch".into(),
                node_type: "fetch_increment".into(),
                status: NodeStatus::Succeeded,
                records_in: 0,
                records_out: 1_234_567_890_123,
                errors: 0,
                started_at: Some(at(10)),
                finished_at: Some(at(11)),
                error: None,
            },
            NodeRunRecord {
                node_id: "store".into(),
                node_type: "store".into(),
                status: NodeStatus::Failed,
                records_in: 1_234_567_890_123,
                records_out: 17,
                errors: 3,
                started_at: Some(at(10)),
                finished_at: Some(at(12)),
                error: Some("row 3: «bad» value\nsecond line".into()),
            },
            NodeRunRecord {
                node_id: "alert".into(),
                node_type: "notify".into(),
                status: NodeStatus::Skipped,
                records_in: 0,
                records_out: 0,
                errors: 0,
                started_at: None,
                finished_at: None,
                error: None,
            },
        ];
        let finish = RunFinish {
            id: "r2".into(),
            status: RunStatus::Partial,
            finished_at: at(12),
            error: Some("3 records dead-lettered".into()),
            nodes: nodes.clone(),
        };
        store.finish_run(&finish).await.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        // Reporting again overwrites instead of failing on the node keys.
        store.finish_run(&finish).await.unwrap_or_else(|e| panic!("{label}: second finish: {}", error_chain(&e)));

        let daily = store.recent_runs(Some("daily"), 10).await.unwrap();
        let ids: Vec<&str> = daily.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r3", "r2", "r1"], "{label}: newest first");
        let r2 = &daily[1];
        assert_eq!(r2.flow, "daily", "{label}");
        assert_eq!(r2.trigger, "schedule", "{label}");
        assert_eq!(r2.status, RunStatus::Partial, "{label}");
        assert_eq!(r2.started_at, at(10), "{label}");
        assert_eq!(r2.finished_at, Some(at(12)), "{label}");
        assert_eq!(r2.error.as_deref(), Some("3 records dead-lettered"), "{label}");
        assert_eq!(daily[0].status, RunStatus::Running, "{label}");
        assert_eq!(daily[0].finished_at, None, "{label}");
        assert_eq!(daily[0].error, None, "{label}");

        let all = store.recent_runs(None, 2).await.unwrap();
        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["o1", "r3"], "{label}: limit across flows");
        assert!(store.recent_runs(Some("none"), 5).await.unwrap().is_empty(), "{label}");

        let stored = store.run_nodes("r2").await.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        assert_eq!(stored, nodes, "{label}: nodes round trip in order");
        assert!(store.run_nodes("r1").await.unwrap().is_empty(), "{label}");

        let missing = store.finish_run(&RunFinish { id: "nope".into(), ..finish.clone() }).await;
        assert!(matches!(missing, Err(StoreError::RunNotFound(ref id)) if id == "nope"), "{label}: {missing:?}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn finish_run_is_one_transaction() {
    for ts in test_stores().await {
        let label = ts.label;
        ts.store.insert_run(&run_start("r1", "daily", 0)).await.unwrap();
        let node = NodeRunRecord {
            node_id: "fetch".into(),
            node_type: "fetch_full".into(),
            status: NodeStatus::Succeeded,
            records_in: 1,
            records_out: 1,
            errors: 0,
            started_at: None,
            finished_at: None,
            error: None,
        };
        // The second node cannot be stored (its count does not fit a BIGINT), so
        // neither the status nor the first node may be written.
        let result = ts
            .store
            .finish_run(&RunFinish {
                id: "r1".into(),
                status: RunStatus::Succeeded,
                finished_at: at(1),
                error: None,
                nodes: vec![node.clone(), NodeRunRecord { node_id: "store".into(), records_in: u64::MAX, ..node }],
            })
            .await;
        assert!(result.is_err(), "{label}");
        let runs = ts.store.recent_runs(None, 1).await.unwrap();
        assert_eq!(runs[0].status, RunStatus::Running, "{label}");
        assert!(ts.store.run_nodes("r1").await.unwrap().is_empty(), "{label}");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn dead_letters_round_trip() {
    // Taobao tids exceed 2^53, where f64 stops being exact.
    let big_tid: i64 = (1 << 60) + 7;
    let record = json!({
        "tid": big_tid,
        "oid": u64::MAX,
        "payment": "200.07",
        "buyer_nick": "小明 \"quoted\" \\ back",
        "orders": {"order": [{"oid": 1, "num": 2}, {"oid": 2, "refund": null}]},
        "paid": true,
        "ratio": 0.25,
        "_tags": ["vip"]
    });
    for ts in test_stores().await {
        let label = ts.label;
        let letters = vec![
            DeadLetter {
                run_id: "r1".into(),
                flow: "daily".into(),
                node_id: "store".into(),
                record: record.clone(),
                reason: "column status is Integer but the value is text".into(),
                created_at: at(5),
            },
            DeadLetter {
                run_id: "r1".into(),
                flow: "daily".into(),
                node_id: "script".into(),
                record: json!([1, "two", null]),
                reason: "not an object".into(),
                created_at: at(6),
            },
        ];
        for letter in &letters {
            ts.store.insert_dead_letter(letter).await.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        }
        ts.store.insert_dead_letter(&DeadLetter { run_id: "r2".into(), ..letters[0].clone() }).await.unwrap();

        let stored = ts.store.dead_letters("r1").await.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        assert_eq!(stored, letters, "{label}: oldest first, JSON intact");
        assert_eq!(stored[0].record["tid"].as_i64(), Some(big_tid), "{label}");
        assert_eq!(stored[0].record["oid"].as_u64(), Some(u64::MAX), "{label}");
        let keys: Vec<&String> = stored[0].record.as_object().unwrap().keys().collect();
        let expected: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(keys, expected, "{label}: key order kept");
        assert!(ts.store.dead_letters("r3").await.unwrap().is_empty(), "{label}");
        ts.cleanup().await;
    }
}

/// Orders keyed by (shop, tid), guarded by `modified`, with every column kind.
fn orders_spec() -> TableSpec {
    TableSpec::new(
        "shop_orders",
        vec![
            ColumnSpec::new("shop", ColumnKind::Text),
            ColumnSpec::new("tid", ColumnKind::Integer),
            ColumnSpec::new("status", ColumnKind::Text),
            ColumnSpec::new("payment", ColumnKind::Real),
            ColumnSpec::new("presale", ColumnKind::Boolean),
            ColumnSpec::new("raw", ColumnKind::Json),
            ColumnSpec::new("modified", ColumnKind::Text),
        ],
        vec!["shop".into(), "tid".into()],
        Some("modified".into()),
    )
    .unwrap()
}

fn order(tid: i64, status: &str, presale: bool, modified: Option<&str>) -> Vec<SqlValue> {
    vec![
        "shop1".into(),
        tid.into(),
        status.into(),
        200.07.into(),
        presale.into(),
        json!({"tid": tid, "status": status}).to_string().into(),
        modified.into(),
    ]
}

fn order_json(tid: i64, status: &str, presale: bool, modified: Option<&str>) -> Value {
    json!({
        "shop": "shop1",
        "tid": tid,
        "status": status,
        "payment": 200.07,
        "presale": presale,
        "raw": {"tid": tid, "status": status},
        "modified": modified,
    })
}

async fn rows(store: &Store, spec: &TableSpec, label: &str) -> Vec<Value> {
    store
        .fetch_all(spec)
        .await
        .unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)))
        .into_iter()
        .map(Value::Object)
        .collect()
}

#[tokio::test]
async fn upsert_inserts_then_updates() {
    let spec = orders_spec();
    let big = (1i64 << 60) + 7;
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        store.ensure_table(&spec).await.unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        // Twice: IF NOT EXISTS.
        store.ensure_table(&spec).await.unwrap();
        store
            .upsert_rows(
                &spec,
                &[
                    order(big, "WAIT_SELLER_SEND_GOODS", true, Some("2024-05-01 08:00:00")),
                    order(1, "WAIT_BUYER_PAY", false, None),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        assert_eq!(
            rows(store, &spec, label).await,
            [
                order_json(1, "WAIT_BUYER_PAY", false, None),
                order_json(big, "WAIT_SELLER_SEND_GOODS", true, Some("2024-05-01 08:00:00")),
            ],
            "{label}: ordered by key, typed values"
        );

        store.upsert_rows(&spec, &[order(big, "TRADE_FINISHED", false, Some("2024-05-02 08:00:00"))]).await.unwrap();
        let mut null_row = order(2, "TRADE_CLOSED", false, None);
        null_row[2] = SqlValue::Null;
        null_row[3] = SqlValue::Null;
        null_row[4] = SqlValue::Null;
        null_row[5] = SqlValue::Null;
        store.upsert_rows(&spec, &[null_row]).await.unwrap();
        assert_eq!(
            rows(store, &spec, label).await,
            [
                order_json(1, "WAIT_BUYER_PAY", false, None),
                json!({"shop": "shop1", "tid": 2, "status": null, "payment": null,
                       "presale": null, "raw": null, "modified": null}),
                order_json(big, "TRADE_FINISHED", false, Some("2024-05-02 08:00:00")),
            ],
            "{label}: updated in place, NULLs of every kind"
        );
        store.upsert_rows(&spec, &[]).await.unwrap();
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn newer_than_never_goes_back_in_time() {
    let spec = orders_spec();
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        store.ensure_table(&spec).await.unwrap();
        let t1 = Some("2024-05-01T08:00:00.000Z");
        let t2 = Some("2024-05-01T09:00:00.000Z");
        let t3 = Some("2024-05-01T10:00:00.000Z");

        store.upsert_rows(&spec, &[order(7, "PAID", false, t2)]).await.unwrap();
        // Older data arriving late is ignored, silently.
        store
            .upsert_rows(&spec, &[order(7, "WAIT_BUYER_PAY", true, t1)])
            .await
            .unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        assert_eq!(
            rows(store, &spec, label).await,
            [order_json(7, "PAID", false, t2)],
            "{label}: older row must not win"
        );
        // Same `modified`: accepted (re-writing the same data changes nothing).
        store.upsert_rows(&spec, &[order(7, "PAID_AGAIN", true, t2)]).await.unwrap();
        assert_eq!(
            rows(store, &spec, label).await,
            [order_json(7, "PAID_AGAIN", true, t2)],
            "{label}: equal is accepted"
        );
        // Newer wins, including the guard column itself; and within one batch the
        // later, newer row wins while an older one after it is ignored.
        store
            .upsert_rows(
                &spec,
                &[order(7, "SHIPPED", false, t3), order(7, "STALE", true, t1), order(8, "NEW", false, t1)],
            )
            .await
            .unwrap();
        assert_eq!(
            rows(store, &spec, label).await,
            [order_json(7, "SHIPPED", false, t3), order_json(8, "NEW", false, t1)],
            "{label}: newer is accepted"
        );
        // A stored NULL guard is replaced by anything.
        store.upsert_rows(&spec, &[order(9, "A", false, None)]).await.unwrap();
        store.upsert_rows(&spec, &[order(9, "B", false, t1)]).await.unwrap();
        let all = rows(store, &spec, label).await;
        assert_eq!(all[2], order_json(9, "B", false, t1), "{label}: NULL is replaced");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn a_bad_row_rolls_back_the_whole_batch() {
    let spec = orders_spec();
    for ts in test_stores().await {
        let label = ts.label;
        let store = &ts.store;
        store.ensure_table(&spec).await.unwrap();
        let t1 = Some("2024-05-01T08:00:00.000Z");
        let t2 = Some("2024-05-01T09:00:00.000Z");
        store.upsert_rows(&spec, &[order(1, "OLD", false, t1)]).await.unwrap();
        let before = rows(store, &spec, label).await;

        // The database rejects the third row (NULL in a key column) after it has
        // accepted the first two; nothing of the batch may remain.
        let mut null_key = order(3, "NULL_KEY", false, t2);
        null_key[0] = SqlValue::Null;
        let error = store
            .upsert_rows(&spec, &[order(1, "UPDATED", false, t2), order(2, "NEW", false, t2), null_key])
            .await
            .expect_err("a NULL key is rejected");
        assert!(matches!(error, StoreError::Database { .. }), "{label}: {error:?}");
        assert!(error.is_constraint_violation(), "{label}: {error:?}");
        assert!(!error.is_transient(), "{label}: {error:?}");
        assert!(error.to_string().contains("row 2"), "{label}: the message names the row: {error}");
        assert_eq!(rows(store, &spec, label).await, before, "{label}: rolled back");

        // A value of the wrong kind (text in an integer column) is caught before
        // anything is sent, on every backend alike.
        let mut wrong_kind = order(4, "X", false, t2);
        wrong_kind[1] = "not a number".into();
        let error = store
            .upsert_rows(&spec, &[order(2, "NEW", false, t2), wrong_kind])
            .await
            .expect_err("text in an integer column is rejected");
        assert!(matches!(error, StoreError::InvalidRow { index: 1, .. }), "{label}: {error:?}");
        assert_eq!(rows(store, &spec, label).await, before, "{label}: nothing written");
        ts.cleanup().await;
    }
}

#[tokio::test]
async fn key_only_tables_and_unvalidated_specs() {
    for ts in test_stores().await {
        let label = ts.label;
        let spec =
            TableSpec::new("seen", vec![ColumnSpec::new("id", ColumnKind::Text)], vec!["id".into()], None).unwrap();
        ts.store.ensure_table(&spec).await.unwrap();
        ts.store
            .upsert_rows(&spec, &[vec!["a".into()], vec!["a".into()], vec!["A".into()]])
            .await
            .unwrap_or_else(|e| panic!("{label}: {}", error_chain(&e)));
        assert_eq!(
            rows(&ts.store, &spec, label).await,
            [json!({"id": "A"}), json!({"id": "a"})],
            "{label}: keys compare byte for byte"
        );

        // The fields are public, so the store validates again before building SQL.
        let sneaky = TableSpec { name: "seen\"; DROP TABLE runs; --".into(), ..spec.clone() };
        let error = ts.store.ensure_table(&sneaky).await.expect_err("rejected");
        assert!(matches!(error, StoreError::InvalidSpec(_)), "{label}: {error:?}");
        assert!(ts.store.recent_runs(None, 1).await.is_ok(), "{label}");
        ts.cleanup().await;
    }
}

#[test]
fn table_spec_rejects_bad_identifiers_and_keys() {
    let columns = || vec![ColumnSpec::new("tid", ColumnKind::Integer), ColumnSpec::new("modified", ColumnKind::Text)];
    let error =
        TableSpec::new("orders; drop table x", columns(), vec!["tid".into()], None).expect_err("injection in the name");
    assert!(error.to_string().contains("table name"), "{error}");

    let error = TableSpec::new("shop_orders", columns(), vec!["oid".into()], None).expect_err("key not among columns");
    assert!(error.to_string().contains("key column oid"), "{error}");

    let error = TableSpec::new("shop_orders", columns(), vec![], None).expect_err("empty key");
    assert!(error.to_string().contains("empty key"), "{error}");

    let error = TableSpec::new("shop_orders", columns(), vec!["tid".into()], Some("mod".into()))
        .expect_err("unknown newer_than");
    assert!(error.to_string().contains("newer_than column mod"), "{error}");

    let error = TableSpec::new("shop_orders", vec![ColumnSpec::new("a b", ColumnKind::Text)], vec!["a b".into()], None)
        .expect_err("space in a column name");
    assert!(error.to_string().contains("column name"), "{error}");
}

#[tokio::test]
async fn urls_never_show_passwords() {
    assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    // A failed connection names the server without the password. Port 1 refuses.
    let error = Store::connect("postgres://u:secret@127.0.0.1:1/db").await.expect_err("nothing listens on port 1");
    let shown = format!("{} / {:?}", error_chain(&error), error);
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("u:***@127.0.0.1:1"), "{shown}");
    assert!(error.is_transient(), "{shown}");

    let error = Store::connect("redis://u:secret@h/0").await.expect_err("unsupported");
    assert!(!error.to_string().contains("secret"), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn in_memory_sqlite_keeps_its_data() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.insert_run(&run_start("r1", "daily", 0)).await.unwrap();
    // A second query must reach the same (only) connection.
    assert_eq!(store.recent_runs(None, 5).await.unwrap().len(), 1);
}

#[tokio::test]
async fn every_requested_backend_is_under_test() {
    let stores = test_stores().await;
    let labels: Vec<&str> = stores.iter().map(|ts| ts.label).collect();
    let mut expected = vec!["sqlite"];
    if std::env::var(support::POSTGRES_URL_VAR).is_ok() {
        expected.push("postgres");
    }
    if std::env::var(support::MYSQL_URL_VAR).is_ok() {
        expected.push("mysql");
    }
    assert_eq!(labels, expected);
    for ts in stores {
        let backend = ts.store.backend().as_str();
        assert_eq!(backend, ts.label);
        ts.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_opening_a_new_sqlite_file_at_once_all_migrate_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("new.db").display());
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::connect(&url).await })
        })
        .collect();
    for store in opening {
        store.await.unwrap().unwrap_or_else(|e| panic!("{}", error_chain(&e)));
    }
}

/// An order of shop `s` modified at `minute`, one line per oid.
fn synced_order(tid: i64, minute: u32, oids: &[i64]) -> Order {
    Order {
        platform: "taobao".into(),
        shop: "s".into(),
        tid,
        status: "WAIT_SELLER_SEND_GOODS".into(),
        order_type: "fixed".into(),
        created: at(0),
        modified: at(minute),
        pay_time: None,
        payment: Money(100),
        buyer_nick: None,
        step_trade_status: None,
        items: oids
            .iter()
            .map(|&oid| OrderItem {
                oid,
                num_iid: None,
                sku_id: None,
                outer_sku_id: None,
                title: None,
                num: 1,
                price: Money(100),
                payment: Money(100),
                refund_status: None,
                refund_id: None,
            })
            .collect(),
        raw: json!({"tid": tid}),
    }
}

#[tokio::test]
async fn dead_letters_are_set_aside_once_and_replayed_after_a_fix() {
    for ts in test_stores().await {
        let (label, store) = (ts.label, &ts.store);
        let letter = |run: &str, record: Value, reason: &str| DeadLetter {
            run_id: run.into(),
            flow: "sync".into(),
            node_id: "save".into(),
            record,
            reason: reason.into(),
            created_at: at(5),
        };
        // Order 3's line 103 is held by order 99, stored before.
        store.save_orders(&[synced_order(99, 1, &[103])], &[]).await.unwrap();
        let error = store.save_orders(&[synced_order(3, 2, &[103])], &[]).await.expect_err("oid 103 is held");
        let message = error.to_string();
        assert!(error.is_constraint_violation() && !error.is_transient(), "{label}: {error:?}");
        assert!(
            ["UNIQUE constraint failed: order_items", "duplicate key value", "Duplicate entry"]
                .iter()
                .any(|driver| message.contains(driver)),
            "{label}: the driver's message is shown: {message}"
        );

        let bad_order = serde_json::to_value(synced_order(3, 2, &[103])).unwrap();
        let body = json!({"tid": -5, "status": 7});
        assert!(store.insert_dead_letter(&letter("r1", bad_order.clone(), &message)).await.unwrap(), "{label}");
        assert!(store.insert_dead_letter(&letter("r1", body.clone(), "tid -5")).await.unwrap(), "{label}");
        assert!(
            !store.insert_dead_letter(&letter("r2", body.clone(), "tid -5")).await.unwrap(),
            "{label}: the same record, still open, is not stored again"
        );
        let other_flow = DeadLetter { flow: "other".into(), ..letter("r2", body.clone(), "tid -5") };
        assert!(store.insert_dead_letter(&other_flow).await.unwrap(), "{label}: another flow's letter is its own");

        let open = store.list_dead_letters(Some("sync"), Some(DeadLetterState::Open), 10).await.unwrap();
        let ids: Vec<i64> = open.iter().map(|l| l.id).collect();
        assert_eq!(open.len(), 2, "{label}: {open:?}");
        assert!(ids[0] > ids[1], "{label}: newest first");
        let (body_id, order_id) = (ids[0], ids[1]);
        assert_eq!(store.list_dead_letters(None, None, 1).await.unwrap().len(), 1, "{label}: limit");
        let counts = store.open_dead_letters_per_flow().await.unwrap();
        assert_eq!(counts, [("other".to_owned(), 1), ("sync".to_owned(), 2)], "{label}");

        let refused = store.replay_dead_letter(order_id, at(9)).await.expect_err("oid 103 is still held");
        assert!(refused.is_constraint_violation(), "{label}: {refused}");
        assert_eq!(store.dead_letter(order_id).await.unwrap().unwrap().state, DeadLetterState::Open, "{label}");
        let not_an_order = store.replay_dead_letter(body_id, at(9)).await.expect_err("a platform body");
        assert!(matches!(not_an_order, StoreError::DeadLetter { .. }), "{label}: {not_an_order}");

        // The fix: order 99's newer version no longer holds oid 103.
        store.save_orders(&[synced_order(99, 3, &[199])], &[]).await.unwrap();
        let outcome = store.replay_dead_letter(order_id, at(10)).await.unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(outcome.inserted, 1, "{label}");
        let replayed = store.dead_letter(order_id).await.unwrap().unwrap();
        assert_eq!((replayed.state, replayed.settled_at), (DeadLetterState::Replayed, Some(at(10))), "{label}");
        let again = store.replay_dead_letter(order_id, at(11)).await.expect_err("replayed already");
        assert!(again.to_string().contains("replayed already"), "{label}: {again}");

        store.discard_dead_letter(body_id, at(12)).await.unwrap();
        assert_eq!(store.dead_letter(body_id).await.unwrap().unwrap().state, DeadLetterState::Discarded, "{label}");
        assert!(
            store.insert_dead_letter(&letter("r3", body.clone(), "tid -5")).await.unwrap(),
            "{label}: once discarded, the record comes back if it is met again"
        );
        assert_eq!(
            store.open_dead_letters_per_flow().await.unwrap(),
            [("other".to_owned(), 1), ("sync".to_owned(), 1)]
        );
        ts.cleanup().await;
    }
}
