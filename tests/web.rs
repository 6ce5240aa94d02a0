//! The console of `serve` (the front-end's overview, flow and run views and
//! their JSON): driven in headless Chromium (the graph of a known flow is
//! drawn with its nodes and counts, a finished run appears), the access
//! token, and no secret on any page or in any answer. Also the store queries
//! only the console reads, on every backend.
//!
//! Chromium (Debian's `chromium`) missing: the browser checks fail when `CI`
//! is set and are skipped with one line otherwise.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use orderflow::config::Secret;
use orderflow::engine::{Engine, EngineOptions, RunReport};
use orderflow::flow::{CompileEnv, Flow, compile_file};
use orderflow::nodes::{BuildContext, Registry};
use orderflow::script::{Limits, Sandbox};
use orderflow::server::catalog::Catalog;
use orderflow::server::web::{self, COOKIE, WebError, WebState};
use orderflow::sim::SimConfig;
use orderflow::store::{AppBan, Cursor, NewAlert, RestockSuggestion, RunFinish, RunStart, RunStatus, Store};
use orderflow::sync::INCREMENT_STREAM;
use serde_json::json;
use support::rig::{Rig, SHOP};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const CHROMIUM: &str = "/usr/bin/chromium";
const APP_SECRET: &str = "web-test-app-secret-5f1c0e";
const SESSION: &str = "web-test-session-9a7d44";
/// Virtual milliseconds the front-end gets to fetch, lay out and draw: below
/// its 15 s refresh, far above what a draw takes.
const RENDER_BUDGET_MS: u32 = 10_000;

/// The browser, or `None` (after one line on stderr) when it is missing and
/// this is not CI.
fn chromium() -> Option<&'static Path> {
    let path = Path::new(CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
    );
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipping the browser checks: {CHROMIUM} is not installed");
    None
}

/// The DOM Chromium builds from `url` once the front-end has fetched its data
/// and drawn (virtual time lets the page's scripts run ahead of the clock),
/// with every network feature a machine without internet would wait on
/// turned off. `lang` is the browser's language (`en-US`, `zh-CN`) as
/// `navigator.languages` gives it, which the console's language follows:
/// given always, so the English checks do not depend on the machine's locale.
async fn dump_dom(browser: &Path, url: &str, lang: &str) -> String {
    let profile = tempfile::tempdir().expect("profile directory");
    let mut child = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--accept-lang={lang}"))
        .args([&format!("--virtual-time-budget={RENDER_BUDGET_MS}"), "--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut dom = String::new();
    let read = async {
        use tokio::io::AsyncReadExt;
        stdout.read_to_string(&mut dom).await.expect("reading chromium's output");
        child.wait().await.expect("chromium ends")
    };
    let status = tokio::time::timeout(Duration::from_secs(60), read).await.expect("chromium ends within a minute");
    assert!(status.success(), "chromium failed on {url}: {status}");
    dom
}

/// Serves `state` on 127.0.0.1, port chosen by the system.
async fn start(state: WebState, shutdown: &CancellationToken) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = shutdown.clone();
    tokio::spawn(async move { web::serve(listener, state, shutdown).await.expect("serving") });
    addr
}

/// `flows/example-orders.yaml` as `orderflow run` compiles it (its paths
/// are relative to `flows/`, its custom node is in `nodes/`), run once.
async fn run_example_orders(store: &Store) -> (Flow, RunReport) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let build = BuildContext::new(root.join("flows"), Sandbox::new(Limits::default()));
    let mut registry = Registry::builtin();
    let errors = orderflow::nodes::custom::load_dir(&root.join("nodes"), &build.sandbox, &mut registry);
    assert!(errors.is_empty(), "nodes/: {errors:?}");
    let env = CompileEnv { registry: &registry, build: &build, shops: &BTreeSet::new() };
    let flow = compile_file(&root.join("flows/example-orders.yaml"), &env).expect("example-orders compiles");
    let engine = Engine::new(registry, build, store.clone(), EngineOptions::default());
    let report = engine.run(&flow, "test", CancellationToken::new()).await.expect("run recorded");
    assert_eq!(report.status, RunStatus::Succeeded, "{:?}", report.error);
    (flow, report)
}

fn catalog_of(flows: &[(&Flow, Vec<String>)]) -> Arc<Catalog> {
    let catalog = Arc::new(Catalog::default());
    for (flow, shops) in flows {
        catalog.update(&flow.file, |entry| {
            entry.flow = Some(Arc::new((*flow).clone()));
            entry.loaded_at = Some(Utc::now());
            entry.shops = shops.clone();
            entry.next_run = Some(Utc::now() + chrono::Duration::minutes(5));
        });
    }
    catalog
}

fn suggestion(run: &str, sku: &str, at: chrono::DateTime<Utc>) -> RestockSuggestion {
    RestockSuggestion {
        run_id: run.into(),
        platform: "taobao".into(),
        shop: "a-shop".into(),
        sku: sku.into(),
        model: "seasonal_naive".into(),
        mape_model: Some(0.2),
        mape_naive: None,
        forecast_7d: vec![1.0; 7],
        lead_time_days: 7,
        demand_over_lead: 7.0,
        safety_stock: 2,
        available: 1,
        on_order: 0,
        suggested: 8,
        created_at: at,
    }
}

/// What the graph's node `id` says of its run (`in 3 · out 2 · errors 0`,
/// `not run yet`) in `dom`.
fn node_counts<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("data-node=\"{id}\"")).unwrap_or_else(|| panic!("no node {id} drawn"));
    let marker = "class=\"graph-node-counts\">";
    let counts = start + dom[start..].find(marker).expect("the node shows counts") + marker.len();
    let end = dom[counts..].find("</div>").expect("counts end");
    &dom[counts..counts + end]
}

/// The edge `from` → `to` React Flow drew in `dom`: its `<g …>` tag.
fn edge<'a>(dom: &'a str, from: &str, to: &str) -> &'a str {
    let id = format!("data-id=\"{from}:{to}\"");
    let at = dom.find(&id).unwrap_or_else(|| panic!("edge {from} → {to} missing"));
    let start = dom[..at].rfind("<g").expect("edge group opens");
    &dom[start..at + id.len()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_draws_the_graph_and_lists_the_finished_run_and_no_page_shows_a_secret() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("web.db").display())).await.expect("store");
    let sim = SimConfig {
        seed: 5,
        orders: 300,
        days: 10,
        mutations_per_sec: 0.0,
        app_secret: APP_SECRET.to_owned(),
        session: SESSION.to_owned(),
        ..SimConfig::default()
    };
    let rig = Rig::new(sim, store.clone()).await;
    let incremental = rig.example("taobao-incremental.yaml");
    let synced = rig.run(&incremental).await;
    let (orders_flow, imported) = run_example_orders(&store).await;

    // What holds shops back, some of it written to look like markup.
    let now = Utc::now();
    let ban = AppBan {
        platform: "taobao".into(),
        app_key: "banned-key".into(),
        until: now + chrono::Duration::hours(1),
        reason: "over quota".into(),
    };
    store.save_ban(&ban, now).await.unwrap();
    let alert = NewAlert {
        kind: "stalled_parcel".into(),
        platform: "taobao".into(),
        shop: SHOP.into(),
        tid: Some(42),
        detail: "<script>alert(1)</script> no movement for 72 h".into(),
    };
    store.raise_alert(&alert, now).await.unwrap();
    store.record_restock_suggestions(&[suggestion("restock-run", "SKU-<b>7</b>", now)]).await.unwrap();

    let catalog = catalog_of(&[(&orders_flow, Vec::new()), (&incremental, vec![SHOP.to_owned()])]);
    // A file that never validated: its errors, and no graph.
    catalog.update(Path::new("flows/broken.yaml"), |entry| {
        entry.errors = vec!["flows/broken.yaml:4:10: unknown node type \"fetch_everything\"".to_owned()];
    });
    let shutdown = CancellationToken::new();
    let addr =
        start(WebState { store: store.clone(), catalog, metrics: None, token: None, editor: None }, &shutdown).await;
    let base = format!("http://{addr}");

    // Every page and every answer the views draw from: no secret of the
    // shop's config, no node setting.
    let http = reqwest::Client::new();
    let mut answers = HashMap::new();
    for path in [
        "/".to_owned(),
        "/flows/example-orders".to_owned(),
        "/flows/taobao-incremental".to_owned(),
        format!("/runs/{}", imported.run_id),
        format!("/runs/{}", synced.run_id),
        "/api/overview".to_owned(),
        "/api/flows/example-orders/runs".to_owned(),
        "/api/flows/taobao-incremental/runs".to_owned(),
        format!("/api/runs/{}", imported.run_id),
        format!("/api/runs/{}", synced.run_id),
    ] {
        let response = http.get(format!("{base}{path}")).send().await.expect("page answers");
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.expect("page body");
        for secret in [APP_SECRET, SESSION] {
            assert!(!body.contains(secret), "{path} shows a secret");
        }
        // Settings never reach a page: the flow's own threshold and column list.
        assert!(!body.contains("threshold") && !body.contains("vip_level"), "{path} shows node settings");
        answers.insert(path, body);
    }
    let overview: serde_json::Value = serde_json::from_str(&answers["/api/overview"]).expect("overview JSON");
    let lag = overview["lags"].as_array().expect("lags").iter().find(|lag| lag["shop"] == SHOP);
    let lag = lag.expect("the sync lag of the shop is listed");
    assert!(lag["stream"].as_str().unwrap().starts_with(INCREMENT_STREAM), "{lag}");
    assert_eq!(
        (&overview["bans"][0]["app_key"], &overview["bans"][0]["reason"]),
        (&json!("banned-key"), &json!("over quota"))
    );
    assert_eq!(overview["alerts"][0]["detail"], json!(alert.detail), "the alert is listed as raised");
    assert_eq!(overview["restock"][0]["sku"], json!("SKU-<b>7</b>"), "the restock suggestion is listed");
    let broken_entry = overview["flows"].as_array().unwrap().iter().find(|flow| flow["name"] == "broken");
    assert_eq!(
        broken_entry.expect("the broken file is listed")["errors"],
        json!(["flows/broken.yaml:4:10: unknown node type \"fetch_everything\""]),
        "the load error is listed"
    );
    let broken = http.get(format!("{base}/api/flows/broken/runs")).send().await.unwrap().text().await.unwrap();
    let broken: serde_json::Value = serde_json::from_str(&broken).expect("flow JSON");
    assert!(broken["graph"].is_null(), "no graph for a broken file: {broken}");
    let flow: serde_json::Value = serde_json::from_str(&answers["/api/flows/example-orders/runs"]).unwrap();
    assert_eq!(flow["last_run"]["run"]["id"], json!(imported.run_id), "the counts are the last finished run's");
    let status = |path: &str| {
        let response = http.get(format!("{base}{path}"));
        async move { response.send().await.expect("answers").status() }
    };
    for path in [
        "/flows/no-such-flow",
        "/runs/0190f000-0000-7000-8000-000000000000",
        "/api/flows/no-such-flow/runs",
        "/api/runs/0190f000-0000-7000-8000-000000000000",
    ] {
        assert_eq!(status(path).await, 404, "{path}");
    }

    let Some(browser) = chromium() else {
        shutdown.cancel();
        return;
    };
    // The flow's graph: every node with its run's counts, every edge, the
    // when: edge marked, the error handler apart.
    let dom = dump_dom(browser, &format!("{base}/flows/example-orders"), "en-US").await;
    assert!(dom.contains("data-testid=\"graph-nodes\""), "no graph drawn: {dom}");
    for node in ["orders", "vip", "paid", "save", "vip_buyers"] {
        let counts = imported.nodes.iter().find(|n| n.node_id == node).expect("node in the report");
        assert_eq!(
            node_counts(&dom, node),
            format!("in {} · out {} · errors {}", counts.records_in, counts.records_out, counts.errors),
            "node {node} shows other counts than its run"
        );
    }
    let saved = imported.nodes.iter().find(|n| n.node_id == "save").expect("save node");
    assert!(saved.records_in > 0, "the example imports orders");
    for (from, to) in [("orders", "vip"), ("vip", "paid"), ("paid", "save")] {
        assert!(!edge(&dom, from, to).contains("conditional"), "edge {from} → {to} is not conditional");
    }
    assert!(edge(&dom, "vip", "vip_buyers").contains("conditional"), "the when: edge is marked");
    assert!(dom.contains("data-testid=\"graph-errors\""), "the errors: graph is drawn apart");
    assert_eq!(node_counts(&dom, "report"), "not run yet", "the error handler did not run");
    assert!(dom.contains(&imported.run_id), "the graph names its run");

    // The overview lists both flows, what holds the shops back, and the
    // finished runs with their status; nothing from the store is markup.
    let dom = dump_dom(browser, &format!("{base}/"), "en-US").await;
    for run in [&imported, &synced] {
        let link = dom.find(&format!(">{}</a>", run.run_id)).unwrap_or_else(|| panic!("run {} not listed", run.run_id));
        let row_end = dom[link..].find("</tr>").expect("row ends");
        assert!(
            dom[link..link + row_end].contains("run-status status-succeeded\">succeeded"),
            "run {} status",
            run.run_id
        );
    }
    assert!(dom.contains("href=\"/flows/example-orders\"") && dom.contains("href=\"/flows/taobao-incremental\""));
    assert!(dom.contains(INCREMENT_STREAM) && dom.contains(SHOP), "the sync lag of the shop is listed");
    assert!(dom.contains("banned-key") && dom.contains("over quota"), "the ban is listed");
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt; no movement"), "the alert is listed, escaped");
    assert!(!dom.contains("<script>") && !dom.contains("<b>7"), "nothing from the store is markup");
    assert!(dom.contains("SKU-&lt;b&gt;7&lt;/b&gt;"), "the restock suggestion is listed");
    assert!(dom.contains("unknown node type \"fetch_everything\""), "the load error is listed");

    // The same overview for a browser in Chinese.
    let dom = dump_dom(browser, &format!("{base}/"), "zh-CN").await;
    assert!(dom.contains("<html lang=\"zh-CN\""), "the page says it is in Chinese");
    assert!(
        dom.contains("最近运行") && dom.contains("熔断器") && dom.contains("限流封禁"),
        "headings in Chinese: {dom}"
    );
    assert!(dom.contains("run-status status-succeeded\">成功"), "statuses in Chinese");

    // A file that never validated: its page says so and draws no graph.
    let dom = dump_dom(browser, &format!("{base}/flows/broken"), "en-US").await;
    assert!(dom.contains("never validated") && !dom.contains("data-testid=\"graph-nodes\""), "{dom}");

    // The run's page: one row per node with its timings.
    let dom = dump_dom(browser, &format!("{base}/runs/{}", synced.run_id), "en-US").await;
    assert!(dom.contains(&format!("<span id=\"run-id\">{}</span>", synced.run_id)), "{dom}");
    assert!(dom.contains("id=\"run-status\" class=\"status-succeeded\">succeeded"));
    for node in &synced.nodes {
        assert!(
            dom.contains(&format!("<td>{}</td><td>{}</td>", node.node_id, node.node_type)),
            "row of {}",
            node.node_id
        );
    }
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_a_token_is_required_and_checked() {
    let test = support::sqlite().await;
    let store = test.store.clone();
    let open = WebState {
        store: store.clone(),
        catalog: Arc::new(Catalog::default()),
        metrics: None,
        token: None,
        editor: None,
    };

    // No token: every address but loopback is refused, before binding.
    let refused = web::serve_on("0.0.0.0:0".parse().unwrap(), open.clone(), CancellationToken::new()).await;
    assert!(matches!(refused, Err(WebError::TokenRequired { .. })), "{refused:?}");
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("0.0.0.0:0") && message.contains(web::TOKEN_VAR), "{message}");
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let refused = web::serve(listener, open.clone(), CancellationToken::new()).await;
    assert!(matches!(refused, Err(WebError::TokenRequired { .. })), "{refused:?}");
    let empty = WebState { token: Some(Secret::new("")), ..open.clone() };
    let refused = web::serve_on("0.0.0.0:0".parse().unwrap(), empty, CancellationToken::new()).await;
    assert!(matches!(refused, Err(WebError::EmptyToken)), "{refused:?}");

    // With a token: nothing without it, everything with it.
    let token = "t0ken with spaces & symbols";
    let shutdown = CancellationToken::new();
    let addr = start(WebState { token: Some(Secret::new(token)), ..open }, &shutdown).await;
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    for path in ["/", "/flows/x", "/runs/x", "/metrics", "/nowhere", "/api/overview", "/api/runs/x"] {
        let response = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path} without a token");
        assert!(!response.text().await.unwrap().contains(token));
        let wrong = http.get(format!("{base}{path}")).bearer_auth("t0ken with spaces & symbolz").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
    }
    let with_header = http.get(format!("{base}/")).bearer_auth(token).send().await.unwrap();
    assert_eq!(with_header.status(), 200);
    assert!(with_header.headers().get("set-cookie").is_none(), "a header needs no cookie");

    let with_query = http.get(format!("{base}/")).query(&[("token", token)]).send().await.unwrap();
    assert_eq!(with_query.status(), 200);
    let cookie = with_query.headers().get("set-cookie").expect("a cookie for the links").to_str().unwrap().to_owned();
    assert!(cookie.starts_with(&format!("{COOKIE}=")) && cookie.contains("HttpOnly"), "{cookie}");
    assert!(!cookie.contains("t0ken"), "the cookie holds a digest, not the token: {cookie}");
    let pair = cookie.split(';').next().unwrap();
    let with_cookie = http.get(format!("{base}/flows/x")).header("cookie", pair).send().await.unwrap();
    assert_eq!(with_cookie.status(), 404, "the cookie lets the request reach the (missing) flow");
    let forged = http.get(format!("{base}/")).header("cookie", format!("{COOKIE}=00ff")).send().await.unwrap();
    assert_eq!(forged.status(), 401);

    // A browser given ?token= once follows the page: the front-end's own
    // requests carry the cookie.
    if let Some(browser) = chromium() {
        let query: String =
            reqwest::Url::parse_with_params("http://x/", [("token", token)]).unwrap().query().unwrap().to_owned();
        let dom = dump_dom(browser, &format!("{base}/?{query}"), "en-US").await;
        assert!(dom.contains("id=\"flows\""), "the page, not a 401: {dom}");
    }
    shutdown.cancel();
    test.cleanup().await;
}

/// A flow's cursor stream with a long flow name.
const LONG_STREAM: &str = "orders.increment/taobao-incremental-of-the-flagship-store-and-its-outlets/changed";

#[tokio::test]
async fn the_queries_of_the_page_on_every_backend() {
    for test in support::test_stores().await {
        let store = &test.store;
        let label = test.label;
        let at = Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap();

        store
            .insert_run(&RunStart {
                id: "run-a".into(),
                flow: "f".into(),
                trigger: "test".into(),
                started_at: at,
                shop: None,
                worker: None,
            })
            .await
            .unwrap();
        assert_eq!(store.run("run-a").await.unwrap().map(|r| r.status), Some(RunStatus::Running), "{label}");
        let finish = RunFinish {
            id: "run-a".into(),
            status: RunStatus::Failed,
            finished_at: at + chrono::Duration::seconds(3),
            error: Some("node \"x\": broke".into()),
            nodes: Vec::new(),
        };
        store.finish_run(&finish).await.unwrap();
        let run = store.run("run-a").await.unwrap().expect("recorded");
        assert_eq!((run.status, run.error.as_deref()), (RunStatus::Failed, Some("node \"x\": broke")), "{label}");
        assert!(store.run("run-b").await.unwrap().is_none(), "{label}");

        let cursor = |shop: &str, stream: &str, until: &str| Cursor {
            platform: "taobao".into(),
            shop: shop.into(),
            stream: stream.into(),
            value: json!({"modified_until": until}),
        };
        store
            .save_orders(
                &[],
                &[
                    // Longer than the 64 characters streams held before.
                    cursor("b-shop", LONG_STREAM, "2026-11-01T07:00:00Z"),
                    cursor("a-shop", "orders.increment/sync/changed", "2026-11-01T07:30:00Z"),
                    cursor("a-shop", "orders.increment/presale/changed", "2026-11-01T07:20:00Z"),
                    // The handover point of a backfill is no flow's position.
                    cursor("a-shop", INCREMENT_STREAM, "2026-10-01T00:00:00Z"),
                    cursor("a-shop", "orders.full", "2026-10-01T00:00:00Z"),
                ],
            )
            .await
            .unwrap();
        let cursors = store.flow_cursors(INCREMENT_STREAM).await.unwrap();
        let streams: Vec<(&str, &str)> = cursors.iter().map(|c| (c.shop.as_str(), c.stream.as_str())).collect();
        assert_eq!(
            streams,
            [
                ("a-shop", "orders.increment/presale/changed"),
                ("a-shop", "orders.increment/sync/changed"),
                ("b-shop", LONG_STREAM)
            ],
            "{label}"
        );
        assert_eq!(cursors[1].value, json!({"modified_until": "2026-11-01T07:30:00Z"}), "{label}");

        assert!(store.latest_restock_suggestions().await.unwrap().is_empty(), "{label}");
        let made = |run: &str, sku: &str, minutes: i64| suggestion(run, sku, at + chrono::Duration::minutes(minutes));
        store.record_restock_suggestions(&[made("old", "A", 0), made("old", "B", 0)]).await.unwrap();
        store.record_restock_suggestions(&[made("new", "C", 60)]).await.unwrap();
        let latest = store.latest_restock_suggestions().await.unwrap();
        let skus: Vec<(&str, &str)> = latest.iter().map(|s| (s.run_id.as_str(), s.sku.as_str())).collect();
        assert_eq!(skus, [("new", "C")], "{label}");
        test.cleanup().await;
    }
}
