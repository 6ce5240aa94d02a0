//! `POST /api/test-run`: the editor's test run (`docs/editor.md`). The flow
//! being edited runs once in the sandbox of [`crate::harness`]: every write
//! goes to a scratch database, no webhook is sent, and the answer is the
//! [`SandboxReport`] (each node's counts, a sample of its records, its
//! rejects with their reason and its time; the webhooks held back).
//!
//! - `mode: "shop"`: sources read the configured shop, each for a few
//!   listing pages, through connectors made for this run alone (so their
//!   call booking goes to the scratch database), starting from the flow's
//!   real cursors and under the real bans ([`dry_run::prepare`], which only
//!   reads the real database);
//! - `mode: "fixtures"`: no shop is connected; the nodes named in
//!   `fixtures` send the records given instead, as in `orderflow test`.
//!
//! A test run spends the shop's quota, so it is a write (editor token, CSRF
//! header); one runs at a time per flow, for at most [`TIME_LIMIT`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use serde_json::Value as JsonValue;

use super::Editor;
use super::api::ApiError;
use super::files::{FlowName, MAX_FLOW_BYTES};
use super::problems;
use crate::flow::CompileEnv;
use crate::harness::{
    HarnessError, SandboxOptions, SandboxReport, Scratch, dry_run, record_from_fixture, run_sandboxed,
};
use crate::nodes::BuildContext;
use crate::platforms::Platforms;

/// How long a test run may take before it is stopped.
pub const TIME_LIMIT: Duration = Duration::from_secs(60);
/// Records kept per node (sent, and rejected) in the answer.
const SAMPLE: usize = 20;
/// Listing pages per source in shop mode, unless the request says.
const DEFAULT_PAGES: u64 = 2;
/// The most listing pages per source a request may ask for.
const MAX_PAGES: u64 = 10;

/// Where a test run's sources read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// The configured shop, a few pages per source.
    Shop,
    /// Records the user gave, per node; no shop.
    Fixtures,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TestRunBody {
    yaml: String,
    /// The flow's file name, for relative paths and messages; "untitled"
    /// when absent.
    name: Option<String>,
    mode: Mode,
    pages: Option<u64>,
    /// Records standing in for nodes, by node id (fixture shape: fields,
    /// tags under `_tags`).
    #[serde(default)]
    fixtures: BTreeMap<String, Vec<JsonValue>>,
}

/// The flows with a test run going on.
#[derive(Default)]
pub(super) struct Running(Mutex<BTreeSet<String>>);

/// A flow's place in [`Running`], given up on drop.
struct Slot<'a> {
    running: &'a Running,
    flow: String,
}

impl Running {
    /// The flow's slot, `None` while another test run of it goes on.
    fn claim(&self, flow: &str) -> Option<Slot<'_>> {
        let mut running = self.0.lock().unwrap_or_else(|e| e.into_inner());
        running.insert(flow.to_owned()).then(|| Slot { running: self, flow: flow.to_owned() })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.running.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.flow);
    }
}

pub(super) async fn test_run(
    State(editor): State<Arc<Editor>>,
    body: Result<Json<TestRunBody>, JsonRejection>,
) -> Result<Json<SandboxReport>, ApiError> {
    let Json(body) = body?;
    if body.yaml.len() > MAX_FLOW_BYTES {
        return Err(ApiError::TooLarge);
    }
    let pages = body.pages.unwrap_or(DEFAULT_PAGES);
    if !(1..=MAX_PAGES).contains(&pages) {
        return Err(ApiError::BadRequest(format!("pages must be 1 to {MAX_PAGES}, not {pages}")));
    }
    let name = FlowName::parse(body.name.as_deref().unwrap_or("untitled"))?;
    let options = SandboxOptions {
        fixtures: fixtures(body.fixtures)?,
        sample: Some(SAMPLE),
        pages_per_source: (body.mode == Mode::Shop).then_some(pages),
    };
    let file = name.file_in(&editor.flows_dir);
    let compiler = editor.clone();
    let compiled = tokio::task::spawn_blocking(move || {
        let env = &compiler.env;
        let compile_env = CompileEnv { registry: &env.registry, build: &env.build, shops: &env.shops };
        problems::compile_flow(&file, &body.yaml, &compile_env)
    })
    .await
    .map_err(|error| ApiError::Failed(format!("the flow could not be compiled: {error}")))?;
    let flow = compiled.map_err(ApiError::Invalid)?;

    let Some(_slot) = editor.test_runs.claim(&flow.name) else {
        return Err(ApiError::Busy(format!("a test run of flow \"{}\" is going on already", flow.name)));
    };
    let scratch = Scratch::new().await.map_err(harness_error)?;
    let env = &editor.env;
    let build = match body.mode {
        Mode::Fixtures => BuildContext::new(env.build.flow_dir.clone(), env.build.sandbox.clone()),
        Mode::Shop => {
            let Some(config) = &editor.shops else {
                return Err(ApiError::BadRequest("this server connects no shop: test with fixtures".to_owned()));
            };
            // Connectors of this run alone: `prepare` books their calls in the scratch database.
            let platforms = Platforms::for_serving(config)
                .map_err(|error| ApiError::Failed(format!("the shops cannot be connected: {error}")))?;
            dry_run::prepare(Some(&editor.store), &scratch.store, &flow, &platforms).await?;
            BuildContext { platforms, ..env.build.clone() }
        }
    };
    let run = run_sandboxed(&flow, &env.registry, &build, &scratch, &options);
    let report = tokio::time::timeout(TIME_LIMIT, run)
        .await
        .map_err(|_| ApiError::Failed(format!("the test run was stopped after {}s", TIME_LIMIT.as_secs())))?
        .map_err(harness_error)?;
    Ok(Json(report))
}

/// The fixture records as records, or which one is not a record.
fn fixtures(given: BTreeMap<String, Vec<JsonValue>>) -> Result<BTreeMap<String, Vec<crate::record::Record>>, ApiError> {
    given
        .into_iter()
        .map(|(node, values)| {
            let records = values
                .into_iter()
                .enumerate()
                .map(|(index, value)| {
                    record_from_fixture(value).ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "fixture record {} of node \"{node}\" is not an object (with `_tags` a list of strings)",
                            index + 1
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok((node, records))
        })
        .collect()
}

/// What the browser is told when the sandbox refuses the flow.
fn harness_error(error: HarnessError) -> ApiError {
    match error {
        HarnessError::Unbuildable { .. } | HarnessError::UnknownNode { .. } => ApiError::Unrunnable(error.to_string()),
        HarnessError::Store(error) => ApiError::Store(error),
        HarnessError::Scratch(_) | HarnessError::Engine(_) => {
            tracing::error!(%error, "A test run could not be made.");
            ApiError::Failed("the test run could not be made; the server's log says why".to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_test_run_per_flow_at_a_time() {
        let running = Running::default();
        let first = running.claim("orders").expect("free");
        assert!(running.claim("orders").is_none());
        assert!(running.claim("refunds").is_some(), "another flow is not held up");
        drop(first);
        assert!(running.claim("orders").is_some(), "free again once the run ends");
    }

    #[test]
    fn fixture_records_must_be_objects() {
        let good = BTreeMap::from([("src".to_owned(), vec![json!({"tid": 1, "_tags": ["vip"]})])]);
        let records = fixtures(good).unwrap();
        assert_eq!(records["src"][0].tags.iter().collect::<Vec<_>>(), ["vip"]);
        let bad = BTreeMap::from([("src".to_owned(), vec![json!({"tid": 1}), json!(7)])]);
        let message = fixtures(bad).unwrap_err().to_string();
        assert!(message.starts_with("fixture record 2 of node \"src\" is not an object"), "{message}");
    }
}
