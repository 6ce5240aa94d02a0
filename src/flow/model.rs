//! A checked flow, ready to run.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;

use super::yaml::Pos;
use crate::nodes::Role;
use crate::script::Condition;

/// A flow that passed validation.
#[derive(Debug, Clone)]
pub struct Flow {
    /// `flow:`, its name; runs are recorded under it.
    pub name: String,
    /// `description:`.
    pub description: String,
    /// The file it came from.
    pub file: PathBuf,
    /// `trigger:`, when it runs on a schedule.
    pub trigger: Option<Trigger>,
    /// `shop:`, the shop (from the config) it runs against.
    pub shop: Option<String>,
    /// `shops:`, the shops a scheduled flow runs for, one run per shop
    /// (`all` resolved to every shop of the config); empty when the flow
    /// names one `shop:` or none.
    pub shops: Vec<String>,
    /// `trigger: overlap:`, what a fire does while the last run of the same
    /// flow and shop is still going.
    pub overlap: Overlap,
    /// `trigger: catch_up:`, how far back a fire missed while no process
    /// ran still gets its one catch-up run; `None` skips missed fires.
    pub catch_up: Option<Duration>,
    /// `nodes:`, in an order where every node comes after its inputs.
    pub nodes: Vec<NodeSpec>,
    /// `errors:`, run when the flow fails; in the same order.
    pub error_nodes: Vec<NodeSpec>,
}

/// When a flow runs by itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// `every: 5m`.
    Every(Duration),
    /// `cron: "0 3 * * *"`, in `timezone` (default Asia/Shanghai).
    Cron {
        /// The cron expression, as written.
        expression: String,
        /// The time zone it is read in.
        timezone: chrono_tz::Tz,
    },
}

/// `overlap:` of a trigger: a fire that comes while the same flow is still
/// running for the same shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// The fire is skipped (and logged); the next one runs as usual.
    #[default]
    Skip,
    /// The fire waits and runs once right after the current run; fires
    /// while one already waits are skipped.
    Queue,
}

impl Overlap {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
        }
    }

    /// Every spelling, for messages and the schema.
    pub const NAMES: [&'static str; 2] = ["skip", "queue"];
}

impl Flow {
    /// The shops a scheduled run is made for: each of `shops:`, or else the
    /// one `shop:` (or none).
    pub fn run_shops(&self) -> Vec<Option<String>> {
        if self.shops.is_empty() { vec![self.shop.clone()] } else { self.shops.iter().cloned().map(Some).collect() }
    }

    /// Every shop a run of the flow may call: its `shop:` or `shops:`, and
    /// the `shop` setting of any of its nodes. What `run` connects to, and
    /// resolves the secrets of.
    pub fn shops_used(&self) -> std::collections::BTreeSet<&str> {
        let settings = self.nodes.iter().chain(&self.error_nodes).map(|node| &node.settings);
        let named = settings.filter_map(|settings| settings.get("shop").and_then(Json::as_str));
        self.shop.iter().chain(&self.shops).map(String::as_str).chain(named).collect()
    }

    /// This flow as run for `shop`: nodes without a `shop` setting are
    /// built against it, and the run is recorded under it.
    pub fn for_shop(&self, shop: Option<String>) -> Flow {
        Flow { shop, ..self.clone() }
    }
}

/// One node of a checked flow.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Its id (the key under `nodes:`).
    pub id: String,
    /// Where it is declared.
    pub pos: Pos,
    /// `use:`.
    pub type_name: String,
    /// Source or transform.
    pub role: Role,
    /// `with:`, as JSON, checked against the node type's schema.
    pub settings: Json,
    /// `input:`, the upstream node ids.
    pub inputs: Vec<String>,
    /// `when:`, which records the node receives.
    pub when: Option<When>,
    /// `retry:`.
    pub retry: Retry,
    /// `timeout:`, per batch for transforms, for the whole node for sources.
    pub timeout: Option<Duration>,
    /// `on_error:`.
    pub on_error: OnError,
}

/// A compiled `when:` expression.
#[derive(Clone)]
pub struct When {
    /// The expression as written.
    pub source: String,
    /// Its compiled form.
    pub condition: Condition,
}

impl std::fmt::Debug for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("When").field(&self.source).finish()
    }
}

/// `retry:` of a node: how often and how patiently a retryable failure is
/// tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all, including the first (1 = no retry).
    pub attempts: u32,
    /// The first wait; it doubles each time, with jitter.
    pub backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 1, backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(60) }
    }
}

/// `on_error:` of a node: what a failure that retries did not cure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Fail the run and cancel every other node (the default).
    #[default]
    Fail,
    /// Drop the failing records (or stop the failing source), count the
    /// errors and go on; the run ends `partial`.
    Skip,
    /// Like `skip`, but store each failing record with its reason in
    /// `dead_letters`.
    DeadLetter,
}

impl OnError {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::Fail => "fail",
            OnError::Skip => "skip",
            OnError::DeadLetter => "dead_letter",
        }
    }

    /// Every spelling, for messages and the schema.
    pub const NAMES: [&'static str; 3] = ["fail", "skip", "dead_letter"];
}
