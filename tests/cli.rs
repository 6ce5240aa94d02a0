//! The `orderflow` binary end to end: validation messages (golden files),
//! running the example flows into a fresh SQLite database, `runs`, `graph`,
//! `schema`, and the generated node reference in docs/flows.md.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use orderflow::store::{AppBan, BreakerRow, ColumnKind, ColumnSpec, Store, TableSpec};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    /// A fresh folder with a config that names the repository's `nodes/`.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nodes = Path::new(env!("CARGO_MANIFEST_DIR")).join("nodes");
        std::fs::write(dir.path().join("orderflow.yaml"), format!(
            "nodes_dir: \"{}\"\nshops:\n  tmall:\n    platform: taobao\n    gateway: http://127.0.0.1:9/router/rest\n    app_key: \"1\"\n    app_secret: ${{TEST_APP_SECRET}}\n    session: ${{TEST_SESSION}}\n",
            nodes.display()
        )).unwrap();
        Self { dir }
    }

    fn database(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("test.db").display())
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_orderflow"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("ORDERFLOW_DATABASE_URL", self.database())
            .env("ORDERFLOW_CONFIG", self.dir.path().join("orderflow.yaml"))
            .env("RUST_LOG", "error")
            .env("TEST_APP_SECRET", "not-a-real-secret")
            .env("TEST_SESSION", "not-a-real-session")
            .output()
            .unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Compares `actual` with the golden file; `UPDATE_GOLDEN=1` rewrites it.
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(actual, expected, "{} differs (UPDATE_GOLDEN=1 rewrites it)", path.display());
}

#[test]
fn five_mistakes_give_five_errors_at_their_positions() {
    let cli = Cli::new();
    let out = cli.run(&["validate", "tests/fixtures/five-mistakes.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 5, "{stderr}");
    golden("five-mistakes.expected", &stderr);
}

#[test]
fn graph_mistakes_name_the_cycle_the_shop_and_the_missing_setting() {
    let cli = Cli::new();
    let out = cli.run(&["validate", "tests/fixtures/graph-mistakes.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    golden("graph-mistakes.expected", &text(&out.stderr));
}

#[test]
fn every_example_flow_validates() {
    let flows: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("flows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    assert!(flows.len() >= 2);
    // Against the example config, which the flows' comments tell users to use.
    let cli = Cli::new();
    let mut args = vec!["--config".to_owned(), "orderflow.example.yaml".to_owned(), "validate".to_owned()];
    args.extend(flows.iter().map(|p| p.display().to_string()));
    let out = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ORDERFLOW_DATABASE_URL", cli.database())
        .env("TOP_APP_KEY", "12345678")
        .env("TOP_APP_SECRET", "not-a-real-secret")
        .env("TOP_SESSION", "not-a-real-session")
        .env("DOUYIN_APP_KEY", "87654321")
        .env("DOUYIN_APP_SECRET", "not-a-real-secret")
        .env("DOUYIN_ACCESS_TOKEN", "not-a-real-token")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
}

fn imported_orders() -> TableSpec {
    let columns = [
        ("buyer_nick", ColumnKind::Text),
        ("created", ColumnKind::Text),
        ("modified", ColumnKind::Text),
        ("payment", ColumnKind::Real),
        ("status", ColumnKind::Text),
        ("tid", ColumnKind::Integer),
        ("type", ColumnKind::Text),
        ("vip_level", ColumnKind::Integer),
    ];
    let columns = columns.iter().map(|(name, kind)| ColumnSpec { name: (*name).into(), kind: *kind }).collect();
    TableSpec::new("imported_orders", columns, vec!["tid".into()], Some("modified".into())).unwrap()
}

#[tokio::test]
async fn the_example_flow_runs_and_reruns_without_duplicating_a_row() {
    let cli = Cli::new();
    let first = cli.run(&["run", "flows/example-orders.yaml"]);
    assert!(first.status.success(), "{}{}", text(&first.stdout), text(&first.stderr));
    let summary = text(&first.stdout);
    assert!(summary.contains("of flow \"example-orders\": succeeded"), "{summary}");
    assert!(summary.contains("orders") && summary.contains("read_jsonl"), "{summary}");

    let source =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/data/orders.jsonl")).unwrap();
    let paid = source
        .lines()
        .filter(|l| !l.contains("\"WAIT_BUYER_PAY\"") && !l.contains("\"TRADE_CLOSED_BY_TAOBAO\""))
        .count();
    let second = cli.run(&["run", "flows/example-orders.yaml"]);
    assert!(second.status.success());

    let store = Store::connect(&cli.database()).await.unwrap();
    let rows = store.fetch_all(&imported_orders()).await.unwrap();
    assert_eq!(rows.len(), paid, "one row per paid order, after two runs");
    assert!(rows.iter().any(|r| r["vip_level"].as_i64().is_some_and(|l| l >= 1)), "the Rhai node tagged VIPs");
    assert!(rows.iter().all(|r| r["tid"].as_i64().is_some_and(|t| t > 1 << 53)), "ids above 2^53 kept exactly");

    let runs = cli.run(&["runs", "--flow", "example-orders"]);
    let listing = text(&runs.stdout);
    assert_eq!(listing.matches("succeeded  example-orders").count(), 2, "{listing}");
    assert!(listing.contains("save"), "{listing}");
}

#[test]
fn an_endless_script_fails_the_run_with_exit_code_1_and_is_recorded() {
    let cli = Cli::new();
    let flow = cli.dir.path().join("spin.yaml");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/data/orders.jsonl");
    std::fs::write(
        &flow,
        format!(
            "flow: spin\nnodes:\n  orders: {{use: read_jsonl, with: {{path: \"{}\"}}}}\n  spin: {{use: script, input: orders, with: {{source: 'loop {{}}'}}}}\n",
            data.display()
        ),
    )
    .unwrap();
    let out = cli.run(&["run", flow.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("error: node \"spin\": script failed:"), "{stdout}");
    let runs = text(&cli.run(&["runs"]).stdout);
    assert!(runs.contains("failed") && runs.contains("spin"), "{runs}");
}

#[test]
fn graph_draws_dot_and_mermaid() {
    let cli = Cli::new();
    let dot = text(&cli.run(&["graph", "flows/example-orders.yaml", "--format", "dot"]).stdout);
    assert!(dot.starts_with("digraph \"example-orders\""), "{dot}");
    assert!(dot.contains("\"vip\" -> \"paid\";"), "{dot}");
    let mermaid = text(&cli.run(&["graph", "flows/example-orders.yaml"]).stdout);
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert!(mermaid.contains("  paid --> save"), "{mermaid}");
}

#[test]
fn schema_describes_every_node_type() {
    let cli = Cli::new();
    let out = cli.run(&["schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names = &schema["$defs"]["node"]["properties"]["use"]["enum"];
    for name in ["read_jsonl", "filter", "script", "store", "log", "tag_vip"] {
        assert!(names.as_array().unwrap().iter().any(|n| n == name), "{name} missing from {names}");
    }
}

#[test]
fn the_node_reference_in_docs_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/flows.md");
    let document = std::fs::read_to_string(&path).unwrap();
    let generated = orderflow::flow::reference::markdown(&orderflow::nodes::Registry::builtin());
    let expected = orderflow::flow::reference::splice(&document, &generated).expect("markers in docs/flows.md");
    assert!(document == expected, "docs/flows.md is out of date: run `cargo run -- docs --write docs/flows.md`");
}

#[test]
fn stock_import_names_the_bad_line_and_writes_nothing() {
    let cli = Cli::new();
    let bad = cli.dir.path().join("counts.csv");
    std::fs::write(&bad, "sku,on_hand,on_order\nA-1,5,0\nB-2,many,0\n").unwrap();
    let out = cli.run(&["stock", "import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{}:3: column 2 (on_hand)", bad.display())), "{stderr}");
    assert!(stderr.contains("nothing imported"), "{stderr}");

    let good = cli.dir.path().join("counts.json");
    std::fs::write(&good, r#"[{"sku": "A-1", "on_hand": 5}, {"sku": "B-2", "on_hand": 2, "on_order": 7}]"#).unwrap();
    let out = cli.run(&["stock", "import", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("imported 2 SKUs") && stdout.contains("7 on order"), "{stdout}");
}

#[tokio::test]
async fn a_paused_run_exits_with_its_own_code_and_a_breaker_closes_by_hand() {
    let cli = Cli::new();
    let store = Store::connect(&cli.database()).await.unwrap();
    let now = chrono::Utc::now();
    // An earlier process met a daily quota's ban on the shop's app key.
    let ban = AppBan {
        platform: "taobao".into(),
        app_key: "1".into(),
        until: now + chrono::Duration::hours(3),
        reason: "code 7 (App Call Limited)".into(),
    };
    store.save_ban(&ban, now).await.unwrap();
    let flow = cli.dir.path().join("backfill.yaml");
    std::fs::write(
        &flow,
        "flow: backfill\nshop: tmall\nnodes:\n  all: {use: fetch_full, with: {days: 1}}\n  save: {use: store_orders, input: all}\n",
    )
    .unwrap();
    let out = cli.run(&["run", flow.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "paused: {}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("paused"), "{}", text(&out.stdout));

    let open = BreakerRow {
        platform: "taobao".into(),
        shop: "tmall".into(),
        channel: "orders.increment".into(),
        state: "open".into(),
        outcomes: "xx".into(),
        opened_at: Some(now),
        last_degraded_at: None,
        updated_at: now,
    };
    store.save_breaker(&open).await.unwrap();
    let out = cli.run(&["breaker", "close", "tmall", "--channel", "orders.increment"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("closed the circuit breaker of orders.increment"), "{}", text(&out.stdout));
    let row = store.load_breaker("taobao", "tmall", "orders.increment").await.unwrap().expect("stored");
    assert_eq!(row.state, "closed");
    let unknown = cli.run(&["breaker", "close", "nowhere"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(text(&unknown.stderr).contains("shop \"nowhere\" is not in"), "{}", text(&unknown.stderr));
}
