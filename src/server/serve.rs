//! The `serve` runtime: loads a folder of flows into the [`Catalog`], runs
//! each (flow, shop) on its trigger under a lease, reloads changed files, and
//! shuts down gracefully.
//!
//! One loop owns every [`Slot`] and the set of running runs, so "at most one
//! run per (flow, shop) in this process" needs no lock. Across processes the
//! lease decides ([`crate::store::Store::claim_lease`]): a fire whose lease
//! another worker holds is skipped here, since that worker is running it.
//!
//! The folder is polled (every [`ServeOptions::poll_every`]) rather than
//! watched: a poll of a few small files costs nothing, needs no
//! file-watcher crate and behaves the same on every filesystem (network
//! mounts and container volumes included, where change events get lost).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::catalog::Catalog;
use super::scheduler::{Decision, FireKind, Schedule, Slot};
use crate::engine::Engine;
use crate::flow::{CompileEnv, Flow, compile};
use crate::nodes::{BuildContext, Registry};
use crate::store::{Lease, Store, StoreError};

/// How `serve` behaves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The folder of flow files (`*.yaml`).
    pub flows_dir: PathBuf,
    /// This process's name in `runs.worker` and `leases.holder`; unique among
    /// the processes sharing a database.
    pub worker_id: String,
    /// How long a lease lasts unless renewed (renewed every third of it).
    pub lease: Duration,
    /// How long running runs may go on after a shutdown signal before they
    /// are cancelled.
    pub grace: Duration,
    /// How often the folder is checked for changed files.
    pub poll_every: Duration,
    /// How many runs go on at once in this process; further fires wait (and
    /// their slots count as running). Bounds the load after a start, when
    /// every shop is due at once, and keeps database connections free for
    /// renewing leases.
    pub max_runs: usize,
}

/// Why `serve` could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The flows folder cannot be listed.
    #[error("reading the flows folder {path}: {source}")]
    FlowsDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The lease is too short to renew in time.
    #[error("the lease must be at least 3s, not {0:?}")]
    LeaseTooShort(Duration),
    /// The store failed where the runtime cannot go on without it.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What flows are compiled against.
pub struct FlowEnv {
    /// The node types.
    pub registry: Registry,
    /// Paths, sandbox and platform connectors; `flow_dir` is the flows folder.
    pub build: BuildContext,
    /// The shops of the config.
    pub shops: BTreeSet<String>,
}

/// A running `serve`: what the page and `/metrics` read while it runs.
pub struct Server {
    options: ServeOptions,
    /// Shared with the editor, which compiles flows the way `serve` loads them.
    env: Arc<FlowEnv>,
    engine: Engine,
    /// Leases go through a pool of their own, so that renewals never wait
    /// behind busy runs for a connection (and lose the lease meanwhile).
    leases: Store,
    permits: Arc<Semaphore>,
    catalog: Arc<Catalog>,
}

/// One flow for one shop, in one process.
type SlotKey = (PathBuf, Option<String>);

struct SlotState {
    slot: Slot,
    flow: Arc<Flow>,
}

/// What a run task needs besides its flow.
#[derive(Clone)]
struct RunContext {
    engine: Engine,
    leases: Store,
    permits: Arc<Semaphore>,
    worker: String,
    ttl: Duration,
    /// Cancelled at shutdown: a run not started yet is not started.
    shutdown: CancellationToken,
    /// Cancelled when the grace period is over: running runs stop.
    cancel_runs: CancellationToken,
}

/// The run tasks going on, and the slot each is for.
#[derive(Default)]
struct Runs {
    tasks: JoinSet<SlotKey>,
    keys: HashMap<tokio::task::Id, SlotKey>,
}

impl Runs {
    fn spawn(&mut self, context: &RunContext, flow: Arc<Flow>, key: SlotKey, kind: FireKind) {
        let handle = self.tasks.spawn(run_under_lease(context.clone(), flow, key.clone(), kind));
        self.keys.insert(handle.id(), key);
    }

    /// The slot of the next task to end; `None` when none runs. A task that
    /// panicked still frees its slot (its run row stays `running`).
    async fn join_next(&mut self) -> Option<SlotKey> {
        match self.tasks.join_next_with_id().await? {
            Ok((id, key)) => {
                self.keys.remove(&id);
                Some(key)
            }
            Err(error) => {
                let key = self.keys.remove(&error.id()).unwrap_or_default();
                tracing::error!(flow = %key.0.display(), shop = key.1.as_deref().unwrap_or_default(), %error,
                    "A run task failed.");
                Some(key)
            }
        }
    }
}

impl Server {
    /// A server for the flows in `options.flows_dir`, running them through
    /// `engine` (whose store holds the runs), with leases in `leases` (the
    /// same database, another pool).
    pub fn new(options: ServeOptions, env: FlowEnv, engine: Engine, leases: Store) -> Result<Self, ServeError> {
        if options.lease < Duration::from_secs(3) {
            return Err(ServeError::LeaseTooShort(options.lease));
        }
        let engine = engine.with_worker(options.worker_id.clone());
        let permits = Arc::new(Semaphore::new(options.max_runs.max(1)));
        Ok(Self { options, env: Arc::new(env), engine, leases, permits, catalog: Arc::default() })
    }

    /// What flows are compiled against here (the editor validates with it).
    pub fn flow_env(&self) -> Arc<FlowEnv> {
        self.env.clone()
    }

    /// The loaded flows, as the page shows them.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    /// The store runs and leases are kept in.
    pub fn store(&self) -> &Store {
        self.engine.store()
    }

    /// Runs until `shutdown` is cancelled, then stops starting runs, gives the
    /// running ones the grace period, cancels the rest and returns once every
    /// run is recorded.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ServeError> {
        let mut sources: BTreeMap<PathBuf, String> = BTreeMap::new();
        let mut slots: HashMap<SlotKey, SlotState> = HashMap::new();
        let mut runs = Runs::default();
        let context = RunContext {
            engine: self.engine.clone(),
            leases: self.leases.clone(),
            permits: self.permits.clone(),
            worker: self.options.worker_id.clone(),
            ttl: self.options.lease,
            shutdown: shutdown.clone(),
            cancel_runs: CancellationToken::new(),
        };
        self.reload(&mut sources, &mut slots).await?;
        tracing::info!(worker = %self.options.worker_id, flows = sources.len(), dir = %self.options.flows_dir.display(),
            "Serving.");

        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_poll = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(key) = runs.join_next() => {
                    // A slot whose file or shop went away meanwhile is simply gone.
                    if let Some(state) = slots.get_mut(&key)
                        && let Some(kind) = state.slot.finished()
                    {
                        runs.spawn(&context, state.flow.clone(), key, kind);
                    }
                }
                _ = tick.tick() => {
                    if last_poll.elapsed() >= self.options.poll_every {
                        last_poll = tokio::time::Instant::now();
                        if let Err(error) = self.reload(&mut sources, &mut slots).await {
                            tracing::error!(%error, "Reloading the flows failed; the loaded ones go on.");
                        }
                    }
                    let now = Utc::now();
                    let keys: Vec<SlotKey> = slots.keys().cloned().collect();
                    for key in keys {
                        self.poll(&key, now, &mut slots, &mut runs, &context);
                    }
                    self.publish(&slots);
                }
            }
        }

        tracing::info!(running = runs.tasks.len(), grace = ?self.options.grace,
            "Shutting down: no new runs; the running ones may finish.");
        let drained =
            tokio::time::timeout(self.options.grace, async { while runs.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(running = runs.tasks.len(), "Grace period over: cancelling the runs still going.");
            context.cancel_runs.cancel();
            while runs.join_next().await.is_some() {}
        }
        tracing::info!("Stopped.");
        Ok(())
    }

    /// Acts on what the slot of `key` says at `now`.
    fn poll(
        &self,
        key: &SlotKey,
        now: DateTime<Utc>,
        slots: &mut HashMap<SlotKey, SlotState>,
        runs: &mut Runs,
        context: &RunContext,
    ) {
        let Some(state) = slots.get_mut(key) else { return };
        let shop = key.1.as_deref().unwrap_or_default();
        match state.slot.poll(now) {
            None => {}
            Some(Decision::Start(kind)) => runs.spawn(context, state.flow.clone(), key.clone(), kind),
            Some(Decision::Skipped(fire)) => {
                tracing::info!(flow = %state.flow.name, shop, %fire, "Fire skipped: the last run is still going.")
            }
            Some(Decision::Queued(fire)) => {
                tracing::info!(flow = %state.flow.name, shop, %fire, "Fire queued: it runs when the last run ends.")
            }
        }
    }

    /// Loads new and changed flow files, forgets deleted ones. A file that
    /// does not validate keeps its last good version running.
    async fn reload(
        &self,
        sources: &mut BTreeMap<PathBuf, String>,
        slots: &mut HashMap<SlotKey, SlotState>,
    ) -> Result<(), ServeError> {
        let files = flow_files(&self.options.flows_dir)?;
        for gone in sources.keys().filter(|file| !files.contains_key(*file)).cloned().collect::<Vec<_>>() {
            tracing::info!(file = %gone.display(), "Flow file removed: its flow is no longer scheduled.");
            sources.remove(&gone);
            slots.retain(|(file, _), _| *file != gone);
            self.catalog.remove(&gone);
        }
        for (file, source) in files {
            if sources.get(&file) == Some(&source) {
                continue;
            }
            let env = CompileEnv { registry: &self.env.registry, build: &self.env.build, shops: &self.env.shops };
            let compiled = compile(&file, &source, &env);
            sources.insert(file.clone(), source);
            match compiled {
                Ok(flow) => self.swap_in(&file, Arc::new(flow), slots).await?,
                Err(errors) => {
                    let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                    let keeps = self.catalog.get(&file).and_then(|entry| entry.flow).is_some();
                    for error in &errors {
                        tracing::error!(%error, "Flow file does not validate.");
                    }
                    if keeps {
                        tracing::warn!(file = %file.display(), "The last valid version of the flow keeps running.");
                    }
                    self.catalog.update(&file, |entry| entry.errors = errors);
                }
            }
        }
        Ok(())
    }

    /// Makes `flow` the running version of `file`: one slot per shop, keeping
    /// the state of slots that stay.
    async fn swap_in(
        &self,
        file: &Path,
        flow: Arc<Flow>,
        slots: &mut HashMap<SlotKey, SlotState>,
    ) -> Result<(), ServeError> {
        let schedule = match Schedule::of(&flow) {
            None => None,
            Some(Ok(schedule)) => Some(schedule),
            Some(Err(error)) => {
                self.catalog.update(file, |entry| entry.errors = vec![format!("{}: {error}", file.display())]);
                return Ok(());
            }
        };
        let shops = flow.run_shops();
        let last_starts: HashMap<Option<String>, DateTime<Utc>> =
            self.engine.store().last_run_starts(&flow.name).await?.into_iter().collect();
        let old_flow = slots.iter().find(|((f, _), _)| f == file).map(|(_, state)| state.flow.clone());
        slots.retain(|(f, shop), _| f != file || (schedule.is_some() && shops.contains(shop)));
        if let Some(schedule) = &schedule {
            let now = Utc::now();
            for shop in &shops {
                let key = (file.to_path_buf(), shop.clone());
                let last = last_starts.get(shop).copied();
                match slots.get_mut(&key) {
                    Some(state) => {
                        let same_trigger = old_flow.as_ref().is_some_and(|old| {
                            old.trigger == flow.trigger && old.overlap == flow.overlap && old.catch_up == flow.catch_up
                        });
                        if !same_trigger {
                            state.slot.reschedule(schedule.clone(), last, now);
                        }
                        state.flow = flow.clone();
                    }
                    None => {
                        let slot = Slot::new(schedule.clone(), last, now);
                        slots.insert(key, SlotState { slot, flow: flow.clone() });
                    }
                }
            }
        }
        tracing::info!(flow = %flow.name, file = %file.display(), shops = shops.len(), scheduled = schedule.is_some(),
            "Flow loaded.");
        let shop_names = shops.into_iter().flatten().collect();
        self.catalog.update(file, |entry| {
            entry.flow = Some(flow);
            entry.errors.clear();
            entry.loaded_at = Some(Utc::now());
            entry.shops = shop_names;
        });
        Ok(())
    }

    /// Writes each flow's next fire and running shops to the catalog.
    fn publish(&self, slots: &HashMap<SlotKey, SlotState>) {
        let mut by_file: BTreeMap<&Path, (Option<DateTime<Utc>>, BTreeSet<String>)> = BTreeMap::new();
        for ((file, shop), state) in slots {
            let (next, running) = by_file.entry(file.as_path()).or_default();
            if let Some(fire) = state.slot.next_fire() {
                *next = Some(next.map_or(fire, |n| n.min(fire)));
            }
            if state.slot.is_running() {
                running.insert(shop.clone().unwrap_or_default());
            }
        }
        for (file, (next, running)) in by_file {
            self.catalog.update(file, |entry| {
                entry.next_run = next;
                entry.running = running;
            });
        }
    }
}

/// The `*.yaml` files of `dir` and their text. A file that cannot be read
/// now (being written) is left for the next poll.
fn flow_files(dir: &Path) -> Result<BTreeMap<PathBuf, String>, ServeError> {
    let listing = std::fs::read_dir(dir).map_err(|source| ServeError::FlowsDir { path: dir.to_path_buf(), source })?;
    let mut files = BTreeMap::new();
    for entry in listing.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "yaml") && path.is_file() {
            match std::fs::read_to_string(&path) {
                Ok(source) => {
                    files.insert(path, source);
                }
                Err(error) => tracing::warn!(file = %path.display(), %error, "Flow file unreadable; trying again."),
            }
        }
    }
    Ok(files)
}

/// Runs `flow` for the shop of `key` once a run permit is free and this
/// worker can claim the lease, renewing it every third of its length; a lease
/// lost to another worker cancels the run, and fences its writes meanwhile
/// ([`Engine::run_fenced`]). The lease is released only after
/// the run is recorded finished, so runs of one (flow, shop) never overlap in
/// the runs table. Returns `key` for the loop to mark the slot finished.
async fn run_under_lease(context: RunContext, flow: Arc<Flow>, key: SlotKey, kind: FireKind) -> SlotKey {
    let shop = key.1.as_deref().unwrap_or_default();
    let permit = tokio::select! {
        () = context.shutdown.cancelled() => return key,
        permit = context.permits.clone().acquire_owned() => permit,
    };
    let Ok(_permit) = permit else { return key };
    if context.shutdown.is_cancelled() {
        return key;
    }
    let lease = match context.leases.claim_lease(&flow.name, shop, &context.worker, context.ttl).await {
        Ok(Some(lease)) => lease,
        Ok(None) => {
            tracing::debug!(flow = %flow.name, shop, "Another worker holds the lease: the fire is left to it.");
            return key;
        }
        Err(error) => {
            tracing::error!(flow = %flow.name, shop, %error, "Claiming the lease failed; the fire is skipped.");
            return key;
        }
    };
    let run_cancel = context.cancel_runs.child_token();
    let renewer = tokio::spawn(keep_renewed(context.leases.clone(), lease.clone(), context.ttl, run_cancel.clone()));
    let result =
        context.engine.run_fenced(&flow.for_shop(key.1.clone()), kind.as_str(), run_cancel, lease.clone()).await;
    renewer.abort();
    if let Err(error) = result {
        tracing::error!(flow = %flow.name, shop, %error, "The run could not be recorded.");
    }
    if let Err(error) = context.leases.release_lease(&lease).await {
        tracing::warn!(flow = %flow.name, shop, %error, "Releasing the lease failed; it expires by itself.");
    }
    key
}

/// Renews `lease` every third of `ttl` until aborted. Cancels `run` when the
/// lease was taken over, or when renewals kept failing until it expired.
async fn keep_renewed(store: Store, lease: Lease, ttl: Duration, run: CancellationToken) {
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(ttl / 3).await;
        match store.renew_lease(&lease, ttl).await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => {
                tracing::error!(flow = %lease.flow, shop = %lease.shop, "Lease lost to another worker: cancelling the run.");
                run.cancel();
                return;
            }
            Err(error) if last_renewed.elapsed() >= ttl => {
                tracing::error!(flow = %lease.flow, shop = %lease.shop, %error,
                    "Lease expired while it could not be renewed: cancelling the run.");
                run.cancel();
                return;
            }
            Err(error) => tracing::warn!(flow = %lease.flow, shop = %lease.shop, %error, "Renewing the lease failed."),
        }
    }
}
