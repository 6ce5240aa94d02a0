//! `orderflow test` and `orderflow run --dry-run` end to end: the shipped
//! flow tests pass with no shop and send no webhook, a broken expectation
//! fails with a diff naming the node and the field, every flow has a test,
//! and a dry run against the simulator leaves the real database untouched.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use orderflow::harness::{SandboxOptions, Scratch, run_sandboxed};
use orderflow::sim::{SimConfig, Simulator};
use orderflow::store::{NodeStatus, RunStatus};
use sha2::{Digest, Sha256};

mod support;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A local webhook receiver that counts the connections it is offered.
struct Listener {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                counted.fetch_add(1, Ordering::SeqCst);
                // Read what was sent so the sender is not left hanging.
                if let Ok(mut stream) = stream {
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                    let _ = stream.read(&mut [0; 4096]);
                }
            }
        });
        Self { url, connections }
    }
}

/// `orderflow test` with the example config, no database configured and the
/// webhook pointed at `listener`.
fn orderflow_test(args: &[&str], listener: &Listener) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_orderflow"))
        // No secret in the environment: a test connects no shop and signs
        // no webhook, so it needs none.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--config")
        .arg("orderflow.example.yaml")
        .arg("test")
        .args(args)
        .current_dir(root())
        // Where a test that wrote to the real database would leave it.
        .env("ORDERFLOW_DATABASE_URL", format!("sqlite://{}", dir.path().join("real.db").display()))
        .env("RUST_LOG", "error")
        .env("NOTIFY_URL", &listener.url)
        .output()
        .unwrap()
}

#[test]
fn the_shipped_flow_tests_pass_and_call_nothing() {
    let listener = Listener::start();
    let out = orderflow_test(&["flows/tests"], &listener);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    assert!(
        stdout.contains("ok   flows/tests/taobao-incremental.yaml: an order waiting to ship gets its detail"),
        "{stdout}"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(listener.connections.load(Ordering::SeqCst), 0, "a webhook was sent");
}

#[test]
fn a_flow_with_notify_is_tested_without_sending_anything() {
    let listener = Listener::start();
    let out = orderflow_test(&["flows/tests/logistics-alert.yaml"], &listener);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("ok   flows/tests/logistics-alert.yaml: a raised and a resolved alert"), "{stdout}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(listener.connections.load(Ordering::SeqCst), 0, "a webhook was sent");
}

#[test]
fn a_broken_expectation_fails_with_a_diff_naming_the_node_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("broken.yaml");
    let flow = root().join("flows/taobao-incremental.yaml");
    let orders = root().join("flows/tests/data/tmall-orders.jsonl");
    std::fs::write(
        &test,
        format!(
            "flow: {}\ntests:\n  - name: the closed order is expected finished\n    fixtures:\n      changed: {{file: {}}}\n      to_ship: []\n    expect:\n      closed:\n        contains: [{{tid: 4100000000000002, status: TRADE_FINISHED}}]\n      save: {{count: 5}}\n",
            flow.display(),
            orders.display()
        ),
    )
    .unwrap();
    let listener = Listener::start();
    let out = orderflow_test(&[test.to_str().unwrap()], &listener);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAIL ") && stdout.contains("the closed order is expected finished"), "{stdout}");
    assert!(stdout.contains("  node \"closed\":\n"), "{stdout}");
    assert!(
        stdout.contains(
            "nearest record sent (tid 4100000000000002) differs: field \"status\": expected \"TRADE_FINISHED\", got \"TRADE_CLOSED\""
        ),
        "{stdout}"
    );
    // The empty fixture of `to_ship` stands in for the detail call: the order
    // to ship is not stored.
    assert!(stdout.contains("  node \"save\":\n    expected 5 record(s) out, got 4"), "{stdout}");
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

#[test]
fn a_misspelled_node_in_a_test_file_is_named_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let test = dir.path().join("typo.yaml");
    let flow = root().join("flows/taobao-incremental.yaml");
    std::fs::write(
        &test,
        format!("flow: {}\ntests:\n  - name: typo\n    fixtures:\n      chnaged: []\n", flow.display()),
    )
    .unwrap();
    let out = orderflow_test(&[test.to_str().unwrap()], &Listener::start());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:5:7: flow \"taobao-incremental\" has no node \"chnaged\" (did you mean \"changed\"?)",
            test.display()
        )),
        "{stderr}"
    );
}

#[test]
fn every_shipped_flow_has_a_test() {
    let tests: Vec<String> = std::fs::read_dir(root().join("flows/tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let flows: Vec<PathBuf> = std::fs::read_dir(root().join("flows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(flows.len() >= 13);
    for flow in flows {
        let name = flow.file_name().unwrap().to_str().unwrap();
        let line = format!("flow: ../{name}\n");
        assert!(tests.iter().any(|t| t.contains(&line)), "flows/{name} has no test in flows/tests/");
    }
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_reads_the_shop_and_leaves_the_database_byte_identical() {
    let sim_config = SimConfig { orders: 300, days: 3, mutations_per_sec: 40.0, ..SimConfig::default() };
    let sim = Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("orderflow.yaml");
    std::fs::write(
        &config,
        format!(
            "nodes_dir: \"{}\"\nshops:\n  tmall-main:\n    platform: taobao\n    gateway: {}\n    app_key: \"{}\"\n    app_secret: ${{SIM_SECRET}}\n    session: ${{SIM_SESSION}}\n    rate_limit_per_min: 100000\n",
            root().join("nodes").display(),
            sim.gateway_url(),
            sim_config.app_key
        ),
    )
    .unwrap();
    let database = dir.path().join("real.db");
    let run = |args: Vec<String>| {
        let (config, database) = (config.clone(), database.clone());
        let (secret, session) = (sim_config.app_secret.clone(), sim_config.session.clone());
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_orderflow"))
                .arg("--config")
                .arg(&config)
                .args(&args)
                .current_dir(root())
                .env("ORDERFLOW_DATABASE_URL", format!("sqlite://{}", database.display()))
                .env("RUST_LOG", "error")
                .env("SIM_SECRET", secret)
                .env("SIM_SESSION", session)
                .output()
                .unwrap()
        })
    };
    let flow = "flows/taobao-incremental.yaml".to_owned();

    let real = run(vec!["run".into(), flow.clone()]).await.unwrap();
    assert!(real.status.success(), "{}{}", text(&real.stdout), text(&real.stderr));
    let before = sha256_of(&database);
    // The shop changes meanwhile: the lookback and the new changes give the
    // dry run orders to read.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let dry = run(vec!["run".into(), "--dry-run".into(), flow.clone(), "--pages".into(), "2".into()]).await.unwrap();
    let stdout = text(&dry.stdout);
    assert!(dry.status.success(), "{stdout}{}", text(&dry.stderr));
    assert!(stdout.contains("resumes from taobao/tmall-main orders.increment/taobao-incremental/changed"), "{stdout}");
    let changed_out: u64 = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("changed "))
        .and_then(|l| l.split_whitespace().nth(4)) // node, type, status, in, out
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count for `changed`: {stdout}"));
    assert!(changed_out > 0, "{stdout}");
    assert!(stdout.contains("\"tid\":"), "records are shown: {stdout}");
    assert_eq!(sha256_of(&database), before, "the dry run changed the real database");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_page_bound_stops_each_source_after_the_window_in_which_it_is_reached() {
    let sim = SimConfig { orders: 600, days: 2, ..SimConfig::default() };
    let rig = support::rig::Rig::new(sim, support::sqlite().await.store).await;
    // A day of history in hourly windows of 10-record pages: many pages in
    // all, a few per window.
    let flow = rig.flow(
        "bounded.yaml",
        "flow: bounded\nshop: tmall-main\nnodes:\n  changed: {use: fetch_increment, with: {first_run: 1d, window: 1h, page_size: 10}}\n  save: {use: store_orders, input: changed}\n",
    );
    let scratch = Scratch::new().await.unwrap();
    let before = rig.list_calls();
    let options = SandboxOptions { pages_per_source: Some(3), ..SandboxOptions::default() };
    let report = run_sandboxed(&flow, &rig.registry, &rig.build, &scratch, &options).await.unwrap();
    let bounded_calls = rig.list_calls() - before;
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    let changed = report.node("changed").unwrap();
    assert_eq!((changed.status, changed.error.as_deref()), (NodeStatus::Succeeded, None));
    assert!(changed.records_out > 0, "the bounded source sent what it read");
    assert_eq!(report.node("save").unwrap().records_in, changed.records_out);

    let scratch = Scratch::new().await.unwrap();
    let before = rig.list_calls();
    let whole = run_sandboxed(&flow, &rig.registry, &rig.build, &scratch, &SandboxOptions::default()).await.unwrap();
    let unbounded_calls = rig.list_calls() - before;
    assert!(whole.node("changed").unwrap().records_out > changed.records_out);
    // The window in which the third page was read is finished: a few pages
    // more, far fewer than the whole day's.
    assert!((3..=12).contains(&bounded_calls), "{bounded_calls} list calls for 3 pages");
    assert!(unbounded_calls > 4 * bounded_calls, "{unbounded_calls} list calls unbounded, {bounded_calls} bounded");
}
