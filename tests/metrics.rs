//! `/metrics` scraped through the router after syncing a simulated shop, and
//! parsed as Prometheus text: the counters equal what the simulator counted,
//! the histograms have real cumulative buckets, the gauges come from the
//! store. Also: the Grafana dashboard only queries metrics that exist.
//!
//! The recorder is process-global, so this binary installs it once and only
//! one test in it calls a platform.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::Utc;
use orderflow::server::catalog::Catalog;
use orderflow::server::web::{self, WebState};
use orderflow::sim::SimConfig;
use orderflow::store::{AppBan, BreakerRow, NewAlert, Store};
use orderflow::sync::{INCREMENT_STREAM, flow_stream};
use orderflow::telemetry;
use support::rig::{Rig, SHOP};
use tokio_util::sync::CancellationToken;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape: the samples and the `# TYPE` and `# HELP` of each family.
#[derive(Debug, Default)]
struct Scrape {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
    helps: BTreeSet<String>,
}

impl Scrape {
    /// Parses the Prometheus text exposition format (0.0.4), failing on any
    /// line it cannot read.
    fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
                scrape.types.insert(name.to_owned(), kind.to_owned());
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, _) = rest.split_once(' ').unwrap_or_else(|| panic!("bad HELP line {line:?}"));
                scrape.helps.insert(name.to_owned());
            } else if line.starts_with('#') {
                continue;
            } else {
                scrape.samples.push(parse_sample(line));
            }
        }
        for sample in &scrape.samples {
            let family = family(&sample.name);
            assert!(scrape.types.contains_key(family), "sample {} has no # TYPE", sample.name);
        }
        scrape
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect()
    }

    /// The one sample of `name` with `labels` (and maybe others).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.find(name, labels);
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }

    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).iter().map(|s| s.value).sum()
    }

    /// Checks the histogram `name` with `labels`: buckets in increasing
    /// `le`, counts never decreasing, the last `+Inf` equal to `_count`.
    /// Returns the finite bounds and the count.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> (Vec<f64>, f64) {
        assert_eq!(self.types.get(name).map(String::as_str), Some("histogram"), "{name} is a histogram");
        let buckets = self.find(&format!("{name}_bucket"), labels);
        assert!(buckets.len() > 1, "{name}{labels:?} has buckets");
        let mut previous = (f64::NEG_INFINITY, 0.0);
        let mut bounds = Vec::new();
        for bucket in &buckets {
            let le = bucket.labels.get("le").expect("bucket has le");
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse::<f64>().expect("le is a number") };
            assert!(bound > previous.0, "{name}: le {le} after {}", previous.0);
            assert!(bucket.value >= previous.1, "{name}: le {le} holds fewer than the bucket before");
            if bound.is_finite() {
                bounds.push(bound);
            }
            previous = (bound, bucket.value);
        }
        assert_eq!(previous.0, f64::INFINITY, "{name}: the last bucket is +Inf");
        let count = self.value(&format!("{name}_count"), labels);
        assert_eq!(previous.1, count, "{name}: +Inf equals _count");
        assert!(self.find(&format!("{name}_sum"), labels).len() == 1, "{name} has a _sum");
        (bounds, count)
    }
}

fn family(sample: &str) -> &str {
    ["_bucket", "_count", "_sum"].iter().find_map(|suffix| sample.strip_suffix(suffix)).unwrap_or(sample)
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample {line:?}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
    };
    let Some((name, labels)) = series.split_once('{') else {
        return Sample { name: series.to_owned(), labels: BTreeMap::new(), value };
    };
    let mut rest = labels.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels in {line:?}"));
    let mut map = BTreeMap::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad label in {line:?}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("bad escape in {line:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unclosed label value in {line:?}"),
            }
        };
        map.insert(key.trim_start_matches(',').to_owned(), value);
        rest = after[end + 1..].trim_start_matches(',');
    }
    Sample { name: name.to_owned(), labels: map, value }
}

async fn scrape(base: &str) -> Scrape {
    let response = reqwest::get(format!("{base}/metrics")).await.expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let kind = response.headers().get("content-type").expect("content type").to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    Scrape::parse(&response.text().await.expect("body"))
}

const LIST: &str = "taobao.trades.sold.get";
const INCREMENT: &str = "taobao.trades.sold.increment.get";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_a_sync_counts_what_the_simulator_answered() {
    let handle = telemetry::install().expect("the recorder installs");
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("m.db").display())).await.expect("store");
    let sim = SimConfig { seed: 3, orders: 400, days: 10, mutations_per_sec: 0.0, ..SimConfig::default() };
    let rig = Rig::new(sim, store.clone()).await;
    let backfill = rig.flow(
        "backfill.yaml",
        &format!("flow: backfill\nshop: {SHOP}\nnodes:\n  all: {{use: fetch_full, with: {{days: 12}}}}\n  save: {{use: store_orders, input: all}}\n"),
    );
    let backfilled = rig.run(&backfill).await;
    let synced = rig.run(&rig.example("taobao-incremental.yaml")).await;

    // What the store holds besides: a ban, an open breaker, two alerts.
    let now = Utc::now();
    let ban = AppBan {
        platform: "taobao".into(),
        app_key: "banned-key".into(),
        until: now + chrono::Duration::hours(1),
        reason: "quota".into(),
    };
    store.save_ban(&ban, now).await.unwrap();
    store
        .save_breaker(&BreakerRow {
            platform: "taobao".into(),
            shop: "other-shop".into(),
            channel: INCREMENT_STREAM.into(),
            state: "open".into(),
            outcomes: "xxxxx".into(),
            opened_at: Some(now),
            last_degraded_at: None,
            updated_at: now,
        })
        .await
        .unwrap();
    for tid in [1, 2] {
        let alert = NewAlert {
            kind: "stalled_parcel".into(),
            platform: "taobao".into(),
            shop: SHOP.into(),
            tid: Some(tid),
            detail: "no movement".into(),
        };
        store.raise_alert(&alert, now).await.unwrap();
    }

    let state = WebState {
        store: store.clone(),
        catalog: Arc::new(Catalog::default()),
        metrics: Some(handle),
        token: None,
        editor: None,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(web::serve(listener, state, shutdown.clone()));
    let metrics = scrape(&base).await;

    // API calls: exactly what the simulator answered, method by method.
    let calls = rig.sim.calls();
    assert_eq!(calls.rejected + calls.faulted + calls.banned, 0, "{calls:?}");
    for method in [LIST, INCREMENT] {
        let ok = metrics.value(telemetry::API_CALLS, &[("platform", "taobao"), ("method", method), ("outcome", "ok")]);
        assert!(ok > 0.0, "{method} was called");
        assert_eq!(ok, calls.method(method) as f64, "{method}");
        let (bounds, count) = metrics.histogram(telemetry::API_LATENCY, &[("platform", "taobao"), ("method", method)]);
        assert_eq!(bounds, telemetry::API_LATENCY_BUCKETS, "{method}: the configured buckets");
        assert_eq!(count, ok, "{method}: one latency sample per call");
    }
    assert_eq!(metrics.sum(telemetry::API_CALLS, &[]), calls.total as f64, "every call is counted once");

    // Runs: one sample per finished run, with its status.
    for (flow, report) in [("backfill", &backfilled), ("taobao-incremental", &synced)] {
        assert_eq!(metrics.value(telemetry::RUNS, &[("flow", flow), ("status", "succeeded")]), 1.0, "{flow}");
        let (bounds, count) = metrics.histogram(telemetry::RUN_DURATION, &[("flow", flow)]);
        assert_eq!(bounds, telemetry::RUN_DURATION_BUCKETS);
        assert_eq!(count, 1.0, "{flow}");
        let took = metrics.value(&format!("{}_sum", telemetry::RUN_DURATION), &[("flow", flow)]);
        assert!(took > 0.0 && took <= report.elapsed.as_secs_f64() + 0.5, "{flow}: {took} s, ran {:?}", report.elapsed);
    }

    // Orders: every order of the shop at least once; at most what reached the
    // store nodes (stale copies are not counted).
    let stored = metrics.value(telemetry::ORDERS_STORED, &[("platform", "taobao"), ("shop", SHOP)]);
    let reached: u64 = [&backfilled, &synced]
        .iter()
        .flat_map(|r| r.nodes.iter().filter(|n| n.node_type == "store_orders"))
        .map(|n| n.records_in)
        .sum();
    let orders = rig.sim.truth().orders.len() as f64;
    assert!(stored >= orders && stored <= reached as f64, "{stored} stored, {orders} orders, {reached} reached");

    // Gauges from the store.
    let stream = flow_stream(INCREMENT_STREAM, "taobao-incremental", "changed");
    let lag = metrics.value(telemetry::SYNC_LAG, &[("platform", "taobao"), ("shop", SHOP), ("stream", &stream)]);
    assert!((0.0..600.0).contains(&lag), "the increment ran up to a few seconds ago: lag {lag} s");
    assert_eq!(metrics.value(telemetry::BREAKER_STATE, &[("shop", "other-shop")]), 2.0, "open is 2");
    assert_eq!(metrics.value(telemetry::APP_BANNED, &[("app_key", "banned-key")]), 1.0);
    assert_eq!(metrics.value(telemetry::OPEN_ALERTS, &[("kind", "stalled_parcel")]), 2.0);
    for name in telemetry::ALL {
        if name != telemetry::NEEDS_REAUTH {
            assert!(metrics.helps.contains(name), "{name} is described");
        }
    }

    // A resolved alert and an ended ban drop out on the next scrape.
    store.resolve_alert("stalled_parcel", "taobao", SHOP, Some(1), now).await.unwrap();
    let metrics = scrape(&base).await;
    assert_eq!(metrics.value(telemetry::OPEN_ALERTS, &[("kind", "stalled_parcel")]), 1.0);
    store.resolve_alert("stalled_parcel", "taobao", SHOP, Some(2), now).await.unwrap();
    let metrics = scrape(&base).await;
    assert_eq!(metrics.value(telemetry::OPEN_ALERTS, &[("kind", "stalled_parcel")]), 0.0, "no stale value left");
    shutdown.cancel();
}

#[test]
fn the_parser_reads_escaped_labels() {
    let sample = parse_sample(r#"m{a="x\"y",b="1\\2",c="line\nnext"} 3.5"#);
    assert_eq!(sample.name, "m");
    assert_eq!(sample.labels["a"], "x\"y");
    assert_eq!(sample.labels["b"], "1\\2");
    assert_eq!(sample.labels["c"], "line\nnext");
    assert_eq!(sample.value, 3.5);
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_orderflow_reports() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the dashboard exists")).expect("valid JSON");
    let datasource = dashboard["templating"]["list"]
        .as_array()
        .expect("templating variables")
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(datasource["query"], "prometheus");
    let name = datasource["name"].as_str().expect("variable name");

    let known: BTreeSet<&str> = telemetry::ALL.into_iter().collect();
    let mut queried = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().expect("a panel title");
        assert_eq!(panel["datasource"]["uid"], format!("${{{name}}}"), "{title}: uses the datasource variable");
        let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title}: targets"));
        assert!(!targets.is_empty(), "{title}: queries something");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or_else(|| panic!("{title}: expr"));
            let names: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("orderflow_"))
                .collect();
            assert!(!names.is_empty(), "{title}: {expr} names no orderflow metric");
            for metric in names {
                let family = family(metric);
                assert!(known.contains(family), "{title}: {metric} is not a metric orderflow reports");
                queried.insert(family.to_owned());
            }
        }
    }
    for required in [telemetry::API_CALLS, telemetry::API_LATENCY, telemetry::SYNC_LAG] {
        assert!(queried.contains(required), "no panel shows {required}");
    }
    assert_eq!(queried.len(), known.len(), "every metric has a panel: {queried:?}");
}
