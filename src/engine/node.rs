//! The contract every node keeps: the `Source` and `Transform` traits, how a
//! node fails (`NodeError`, its `ErrorClass`), what building one needs
//! (`BuildContext`, `BuildError`), and the `Registry` of node types. The node
//! types themselves are in `src/nodes/`; the engine only knows this contract.
//!
//! # The node contract
//!
//! - A node MUST only `send().await` on its bounded output (through
//!   [`Emitter::emit`] or by returning a batch); it never buffers without
//!   bound, so a slow downstream node slows its upstream instead of filling
//!   memory.
//! - Processing the same input twice MUST be harmless (idempotent writes),
//!   because a retried batch or a re-run window is processed again.
//! - A transform's `process` SHOULD be atomic for its batch: either its side
//!   effects all happen or none do (one transaction per batch), so a failed
//!   batch can be retried or split record by record.
//! - A node MUST return promptly once the run's cancellation token fires; the
//!   executor drops in-flight futures at that point.
//! - A source that can resume reports its position with
//!   [`Emitter::emit_through`]: the cursor travels behind the records it
//!   covers, through every path to the sinks, and a sink commits it with them
//!   (see [`Transform::process_through`]). A transform that holds records back
//!   across batches would let a cursor overtake them, so none does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;

use crate::activity::Reporter;
use crate::clock::Clock;
use crate::platforms::{Platform, Platforms};
use crate::record::Batch;
use crate::script::Sandbox;
use crate::store::Cursor;

use super::output::{Output, Typing};
use super::{Emitter, NodeContext};

/// Whether a node type reads from upstream nodes or produces records itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Produces records; takes no `input`.
    Source,
    /// Receives batches from its `input` nodes and returns batches.
    Transform,
}

/// A node that produces records (a file, a platform API).
#[async_trait]
pub trait Source: Send {
    /// Emits every record through `out`; returns when there is nothing more.
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError>;
}

/// A node that turns incoming batches into outgoing ones (filters, scripts,
/// sinks that pass their records on).
#[async_trait]
pub trait Transform: Send {
    /// Processes one batch and returns what goes downstream.
    async fn process(&mut self, batch: Batch, ctx: &NodeContext) -> Result<Batch, NodeError>;

    /// Processes a batch after which a source reached the positions in
    /// `cursors` (the batch may be empty). A node that writes records durably
    /// overrides this to commit the cursors in the same transaction as the
    /// records, so a crash never leaves a cursor past unsaved records. Either
    /// way the executor passes the cursors downstream afterwards.
    async fn process_through(
        &mut self,
        batch: Batch,
        _cursors: &[Cursor],
        ctx: &NodeContext,
    ) -> Result<Batch, NodeError> {
        if batch.is_empty() { Ok(batch) } else { self.process(batch, ctx).await }
    }

    /// Called once after the last batch, for nodes that hold state to flush.
    async fn finish(&mut self, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        Ok(Vec::new())
    }
}

/// A node ready to run.
pub enum Built {
    /// See [`Source`].
    Source(Box<dyn Source>),
    /// See [`Transform`].
    Transform(Box<dyn Transform>),
}

/// How a node failed, which decides whether it is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A passing fault (network, lock, timeout): worth retrying.
    Transient,
    /// Retrying cannot help (bad data, a script error, a missing table).
    Permanent,
    /// The run was cancelled while the node worked.
    Cancelled,
    /// The node stopped the run on purpose: the platform cannot be called
    /// for now, or the run may no longer write. Never retried, never skipped or dead-lettered record by
    /// record (the records are not at fault); cursors stay at the last
    /// window committed.
    Halted(Halt),
}

/// Why a node halted its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// Waiting is the cure (a rate-limit ban longer than a run waits, an open
    /// circuit breaker): the run ends `paused`, a later run goes on.
    Paused,
    /// A person must act (the seller must authorise again): the run fails.
    NeedsReauth,
    /// Another worker took the run's lease over (this process stalled past
    /// it): the run may write nothing more, so it stops and fails.
    LeaseLost,
}

/// A node's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NodeError {
    /// Whether a retry can help.
    pub class: ErrorClass,
    /// What went wrong, lowercase, naming the record or setting involved.
    pub message: String,
}

impl NodeError {
    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Transient, message: message.into() }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Permanent, message: message.into() }
    }

    /// The run was cancelled.
    pub fn cancelled() -> Self {
        Self { class: ErrorClass::Cancelled, message: "cancelled".into() }
    }

    /// The run must stop for now; see [`Halt`].
    pub fn halted(halt: Halt, message: impl Into<String>) -> Self {
        Self { class: ErrorClass::Halted(halt), message: message.into() }
    }

    /// Whether the node stopped the run on purpose or the run was cancelled:
    /// either way the records are not at fault.
    pub fn stops_run(&self) -> bool {
        matches!(self.class, ErrorClass::Cancelled | ErrorClass::Halted(_))
    }

    /// Whether a retry can help.
    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Transient
    }
}

impl From<crate::store::StoreError> for NodeError {
    fn from(error: crate::store::StoreError) -> Self {
        if matches!(error, crate::store::StoreError::Fenced { .. }) {
            Self::halted(Halt::LeaseLost, error.to_string())
        } else if error.is_transient() {
            Self::transient(error.to_string())
        } else {
            Self::permanent(error.to_string())
        }
    }
}

impl From<crate::platforms::PlatformError> for NodeError {
    fn from(error: crate::platforms::PlatformError) -> Self {
        if error.kind.is_retryable() { Self::transient(error.to_string()) } else { Self::permanent(error.to_string()) }
    }
}

/// What building a node needs besides its settings.
#[derive(Clone)]
pub struct BuildContext {
    /// The folder of the flow file: relative paths in settings start here.
    pub flow_dir: PathBuf,
    /// The shared Rhai sandbox.
    pub sandbox: Sandbox,
    /// The configured shops' platform connectors.
    pub platforms: Platforms,
    /// The flow's `shop:`, which platform nodes use unless they name another.
    pub shop: Option<String>,
    /// The clock schedules are decided by (circuit breakers).
    pub clock: Clock,
    /// Where the run's nodes report what they are doing (a progress bar);
    /// nowhere by default.
    pub activity: Reporter,
    /// `None` for a real run. In a sandboxed run (`src/harness/`), where
    /// the effects outside the database go: `notify` posts nothing and
    /// records what it would have sent, files nodes write land in a scratch
    /// folder ([`BuildContext::resolve_output`]).
    pub sandboxed: Option<Sandboxed>,
}

/// What a sandboxed run holds back from the world outside its scratch
/// database.
#[derive(Debug, Clone)]
pub struct Sandboxed {
    /// The webhooks `notify` nodes would have sent.
    pub webhooks: HeldWebhooks,
    /// Where the files nodes write go instead of their configured place.
    pub output_dir: PathBuf,
}

/// A webhook a sandboxed run did not send.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeldWebhook {
    /// The `notify` node.
    pub node_id: String,
    /// Where it would have gone, with no secret: `$VAR` for a URL from the
    /// environment, the flow file's URL without its query otherwise.
    pub url: String,
    /// The record's delivery key.
    pub delivery_key: String,
    /// The body: the JSON object, or the text as a JSON string.
    pub body: Json,
}

/// The webhooks held back during a sandboxed run, shared by its nodes.
#[derive(Debug, Clone, Default)]
pub struct HeldWebhooks(Arc<std::sync::Mutex<Vec<HeldWebhook>>>);

impl HeldWebhooks {
    /// Records one webhook not sent.
    pub fn hold(&self, webhook: HeldWebhook) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(webhook);
    }

    /// Everything held so far, in order.
    pub fn all(&self) -> Vec<HeldWebhook> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl BuildContext {
    /// A context for flows in `flow_dir`, with no shops configured.
    pub fn new(flow_dir: impl Into<PathBuf>, sandbox: Sandbox) -> Self {
        Self {
            flow_dir: flow_dir.into(),
            sandbox,
            platforms: Platforms::default(),
            shop: None,
            clock: Clock::system(),
            activity: Reporter::default(),
            sandboxed: None,
        }
    }

    /// The platform connector of the node's `shop` setting, or else of the
    /// flow's `shop:`.
    pub fn platform(&self, shop: Option<&str>) -> Result<Arc<dyn Platform>, BuildError> {
        let Some(name) = shop.or(self.shop.as_deref()) else {
            return Err(BuildError::setting("shop", "no shop: set `shop:` on the flow or `shop` on the node"));
        };
        self.platforms.get(name).ok_or_else(|| match self.platforms.unavailable(name) {
            Some(why) => BuildError::setting("shop", why),
            None => {
                let known: Vec<&str> = self.platforms.names().collect();
                let message = format!("shop \"{name}\" is not configured (configured: {})", known.join(", "));
                BuildError::setting("shop", message)
            }
        })
    }

    /// A path from a setting, resolved against the flow file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() { path.to_path_buf() } else { self.flow_dir.join(path) }
    }

    /// A path from a setting naming a file the node writes: resolved as
    /// [`Self::resolve`] does, except in a sandboxed run, where it is the
    /// file's name in the run's scratch folder.
    pub fn resolve_output(&self, path: &Path) -> PathBuf {
        match &self.sandboxed {
            Some(sandboxed) => sandboxed.output_dir.join(path.file_name().unwrap_or(path.as_os_str())),
            None => self.resolve(path),
        }
    }
}

/// A settings problem found while building a node (beyond what the schema
/// catches), pointing at a setting and optionally at a place in a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    /// The setting at fault (e.g. `source`), for the error's position.
    pub setting: Option<String>,
    /// A position inside a script: the file (None = inline in the setting)
    /// and the 1-based line and column there.
    pub script: Option<ScriptPlace>,
    /// What is wrong.
    pub message: String,
}

/// Where inside a script a build error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptPlace {
    /// The script file, or `None` for inline source in the flow file.
    pub file: Option<PathBuf>,
    /// 1-based line within the script.
    pub line: usize,
    /// 1-based column within the script.
    pub col: usize,
}

impl BuildError {
    /// An error about one setting.
    pub fn setting(setting: &str, message: impl Into<String>) -> Self {
        Self { setting: Some(setting.to_owned()), script: None, message: message.into() }
    }
}

/// The settings struct and constructor of a built-in node type.
pub trait NodeKind {
    /// The `use:` name, snake_case.
    const TYPE: &'static str;
    /// Whether it reads input.
    const ROLE: Role;
    /// Its `with:` settings; doc comments become docs and schema.
    type Settings: DeserializeOwned + JsonSchema;
    /// A complete node entry in YAML, shown in the docs and parsed by a test.
    fn example() -> &'static str;
    /// Builds a runnable node from checked settings.
    fn build(settings: Self::Settings, ctx: &BuildContext) -> Result<Built, BuildError>;
    /// What it sends downstream, whatever its settings: shown in the docs,
    /// the schema and the editor, and checked by the node's tests against
    /// what it really emits.
    fn output() -> Output;
    /// The record fields it reads with these settings (conditions, column
    /// names, scripts), and its output when the settings decide it (a
    /// script's): what `validate` checks against the upstream nodes.
    fn typing(_settings: &Self::Settings, _ctx: &BuildContext) -> Result<Typing, BuildError> {
        Ok(Typing::output(Self::output()))
    }
}

type BuildFn = dyn Fn(&Json, &BuildContext) -> Result<Built, BuildError> + Send + Sync;
type TypingFn = dyn Fn(&Json, &BuildContext) -> Result<Typing, BuildError> + Send + Sync;

/// One node type as the registry knows it.
#[derive(Clone)]
pub struct NodeType {
    /// The `use:` name.
    pub name: String,
    /// Source or transform.
    pub role: Role,
    /// One line.
    pub summary: String,
    /// Longer prose, may be empty.
    pub description: String,
    /// JSON Schema of `with:`.
    pub schema: Json,
    /// A YAML example of a node entry.
    pub example: String,
    /// Where it comes from: `None` for built-ins, the `.rhai` file otherwise.
    pub script: Option<PathBuf>,
    /// What it sends downstream, whatever its settings.
    pub output: Output,
    build: Arc<BuildFn>,
    typing: Arc<TypingFn>,
}

impl fmt::Debug for NodeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeType").field("name", &self.name).field("role", &self.role).finish_non_exhaustive()
    }
}

impl NodeType {
    /// Describes a built-in node type from its [`NodeKind`].
    pub fn of<K: NodeKind + 'static>() -> Self {
        let schema = serde_json::to_value(schemars::schema_for!(K::Settings)).unwrap_or(Json::Null);
        // schemars puts the struct's doc comment in `description` (its
        // `title` is the type name): the first paragraph is the summary.
        let doc = schema.get("description").and_then(Json::as_str).unwrap_or_default();
        let (summary, description) = split_doc(doc);
        Self {
            name: K::TYPE.to_owned(),
            role: K::ROLE,
            summary,
            description,
            schema,
            example: K::example().to_owned(),
            script: None,
            output: K::output(),
            build: Arc::new(|settings, ctx| K::build(parse_settings::<K>(settings)?, ctx)),
            typing: Arc::new(|settings, ctx| K::typing(&parse_settings::<K>(settings)?, ctx)),
        }
    }

    /// A node type backed by any constructor (Rhai nodes, test doubles).
    pub fn custom(
        name: impl Into<String>,
        role: Role,
        summary: impl Into<String>,
        schema: Json,
        build: impl Fn(&Json, &BuildContext) -> Result<Built, BuildError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            role,
            summary: summary.into(),
            description: String::new(),
            schema,
            example: String::new(),
            script: None,
            output: Output::Open,
            build: Arc::new(build),
            typing: Arc::new(|_, _| Ok(Typing::output(Output::Open))),
        }
    }

    /// Declares what the type sends (`output`) and what it reads with given
    /// settings (`typing`); a [`NodeType::custom`] type is open until then.
    #[must_use]
    pub fn typed(
        mut self,
        output: Output,
        typing: impl Fn(&Json, &BuildContext) -> Result<Typing, BuildError> + Send + Sync + 'static,
    ) -> Self {
        self.output = output;
        self.typing = Arc::new(typing);
        self
    }

    /// Builds a node from settings already checked against [`Self::schema`].
    pub fn build(&self, settings: &Json, ctx: &BuildContext) -> Result<Built, BuildError> {
        (self.build)(settings, ctx)
    }

    /// What a node of this type reads and sends with `settings` (already
    /// checked against [`Self::schema`]).
    pub fn typing(&self, settings: &Json, ctx: &BuildContext) -> Result<Typing, BuildError> {
        (self.typing)(settings, ctx)
    }
}

fn parse_settings<K: NodeKind>(settings: &Json) -> Result<K::Settings, BuildError> {
    serde_json::from_value::<K::Settings>(settings.clone()).map_err(|e| BuildError {
        setting: None,
        script: None,
        message: e.to_string(),
    })
}

fn split_doc(doc: &str) -> (String, String) {
    let mut parts = doc.splitn(2, "\n\n");
    let summary = parts.next().unwrap_or_default().replace('\n', " ");
    (summary, parts.next().unwrap_or_default().trim().to_owned())
}

/// Every node type a flow may `use`, by name.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: BTreeMap<String, NodeType>,
}

impl Registry {
    /// Adds or replaces a node type.
    pub fn add(&mut self, node_type: NodeType) {
        self.types.insert(node_type.name.clone(), node_type);
    }

    /// The node type called `name`.
    pub fn get(&self, name: &str) -> Option<&NodeType> {
        self.types.get(name)
    }

    /// All node types, by name.
    pub fn iter(&self) -> impl Iterator<Item = &NodeType> {
        self.types.values()
    }

    /// All names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }
}
