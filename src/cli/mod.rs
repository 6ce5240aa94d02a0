//! The `orderflow` command line. This is the one place that turns library
//! errors into reports (`anyhow`) and exit codes.

mod dead_letters;
mod demo;
mod dry_run;
mod error_chain;
mod progress;
mod status;
mod stock;
mod table;
mod term;
mod test;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Secret};
use crate::engine::{Engine, EngineOptions, RunReport};
use crate::flow::{self, CompileEnv, ConfigError, Flow};
use crate::nodes::{self, BuildContext, Registry};
use crate::platforms::Platforms;
use crate::script::{Limits, Sandbox};
use crate::server::editor::{self, Editor};
use crate::server::serve::{FlowEnv, ServeOptions, Server};
use crate::server::web::{self, WebState};
use crate::sim::{FaultKind, SimConfig, Simulator};
use crate::store::{NodeRunRecord, RunStatus, Store, StoreError, redact_url};

pub use error_chain::one_line as error_line;
use progress::RunProgress;
use table::{Align, Table};
pub use term::{LogFormat, init_logging};

/// orderflow keeps a merchant's own database in step with its shops: flows
/// of ready-made nodes, written in YAML, run on a schedule.
#[derive(Debug, Parser)]
#[command(name = "orderflow", version, about, long_about = None)]
pub struct Cli {
    /// The config file: database and shops.
    #[arg(long, global = true, default_value = "orderflow.yaml", env = "ORDERFLOW_CONFIG")]
    pub config: PathBuf,
    /// The database URL, overriding the config file's `database`.
    #[arg(long, global = true, env = "ORDERFLOW_DATABASE_URL", hide_env_values = true)]
    pub database: Option<String>,
    /// How log lines are written to stderr: `text`, or `json` (one object a
    /// line) for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "ORDERFLOW_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check flow files; print every mistake as path:line:col and exit 1 on any.
    Validate {
        /// Flow files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of flow files (for editors' YAML plugins).
    Schema,
    /// Draw a flow's graph.
    Graph {
        /// The flow file.
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
        format: GraphFormat,
    },
    /// Run a flow once, print a per-node summary; the exit code says how it went.
    Run {
        /// The flow file.
        file: PathBuf,
        /// Read the real shops but write nothing: a scratch database for
        /// every write, the real cursors read and never moved, no webhook
        /// sent; prints each node's counts and first records.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: listing pages each source reads (it still sends
        /// the window it is reading whole).
        #[arg(long, default_value_t = 3, requires = "dry_run", value_parser = clap::value_parser!(u64).range(1..))]
        pages: u64,
    },
    /// Run the flow tests of flows/tests (or PATH, a file or folder): each
    /// flow on its fixture records, no shop called, no webhook sent; a line
    /// per test, a diff per failure, exit 1 on any failure.
    Test {
        /// A test file, or a folder of them.
        #[arg(default_value = test::DEFAULT_TESTS)]
        path: PathBuf,
    },
    /// Run every flow in a folder on its trigger until SIGTERM or Ctrl-C;
    /// several processes on one PostgreSQL/MySQL database share the work.
    Serve {
        /// The folder of flow files (`*.yaml`); changed files are reloaded.
        #[arg(long)]
        flows: PathBuf,
        /// This process's name in the runs table and the leases; unique among
        /// the processes sharing a database. Default: `<host>-<pid>`.
        #[arg(long)]
        worker_id: Option<String>,
        /// How long a (flow, shop) lease lasts unless renewed; another process
        /// takes the shop over this long after this one dies.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        lease: Duration,
        /// How long running runs may finish after SIGTERM before they are cancelled.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        grace: Duration,
        /// Runs going on at once in this process; further due runs wait.
        #[arg(long, default_value_t = 8)]
        max_runs: usize,
        /// Where the web page and `/metrics` listen. Any address but a
        /// loopback one needs an access token in ORDERFLOW_WEB_TOKEN.
        #[arg(long, default_value = crate::server::web::DEFAULT_LISTEN)]
        listen: SocketAddr,
    },
    /// List recent runs with their per-node counts.
    Runs {
        /// Only this flow's runs.
        #[arg(long)]
        flow: Option<String>,
        /// How many runs.
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
    /// List the node types a flow can use (built-in and nodes/*.rhai).
    Nodes,
    /// Sync a simulated Tmall shop into SQLite with the example flows and
    /// print a summary: the whole product in one command, no shop needed.
    Demo {
        /// Orders in the simulated shop.
        #[arg(long, default_value_t = 3_000)]
        orders: usize,
        /// The simulator's seed: the same seed, the same shop.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Order changes per second while the backfill runs.
        #[arg(long, default_value_t = 20.0)]
        mutations_per_sec: f64,
    },
    /// Print the node reference of docs/flows.md, or rewrite it there.
    Docs {
        /// Rewrite the generated part of this file in place.
        #[arg(long, value_name = "FILE")]
        write: Option<PathBuf>,
    },
    /// Serve a simulated Taobao gateway with a generated shop, until Ctrl-C.
    Sim(SimArgs),
    /// Show what holds the shops back: bans, sessions to renew, circuit
    /// breakers, open alerts, open dead letters per flow, anomalous answers,
    /// recent reconciliations.
    Status,
    /// The records nodes set aside (dead letters): list them, show one,
    /// replay one after a fix, or discard one.
    DeadLetters(dead_letters::DeadLettersArgs),
    /// The merchant's inventory counts.
    #[command(subcommand)]
    Stock(stock::StockCommand),
    /// Say that a shop's seller authorised the app again (after its session
    /// in the config was renewed): its flows may call the platform again.
    Reauthorized {
        /// The shop's name in the config.
        shop: String,
    },
    /// Circuit breakers, by hand.
    #[command(subcommand)]
    Breaker(BreakerCommand),
}

/// `orderflow breaker …`.
#[derive(Debug, Subcommand)]
pub enum BreakerCommand {
    /// Close a shop's open circuit breakers: its next runs read the
    /// incremental channel again instead of pulling in full or pausing.
    Close {
        /// The shop's name in the config.
        shop: String,
        /// Only the breaker of this channel (as `orderflow status` shows it,
        /// e.g. `orders.increment`); every breaker of the shop when left out.
        #[arg(long)]
        channel: Option<String>,
    },
}

/// The exit code of `orderflow run` when the run ended `paused` (a long ban,
/// an open breaker between full pulls): nothing failed, but the shop is not
/// in step, so a scheduler must not take it for success. 0 is a succeeded
/// run, 1 any failure, 2 a command line clap refused.
pub const EXIT_PAUSED: u8 = 3;

/// `orderflow sim` options; see `docs/simulator.md`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Where to listen, e.g. 127.0.0.1:8848 (port 0 picks a free one).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Seeds the shop, its changes and its faults.
    #[arg(long, default_value_t = SimConfig::default().seed)]
    pub seed: u64,
    /// Orders in the generated history.
    #[arg(long, default_value_t = SimConfig::default().orders)]
    pub orders: usize,
    /// Days the history reaches back.
    #[arg(long, default_value_t = SimConfig::default().days)]
    pub days: u32,
    /// Live changes per second (new orders, payments, shipping, refunds, …).
    #[arg(long, default_value_t = 0.0)]
    pub mutations_per_sec: f64,
    /// Probability that a call gets a fault instead of its answer.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// The faults a faulted call draws from, comma-separated (default: all):
    /// remote_timeout, service_unavailable, bad_gateway, truncated,
    /// empty_body, missing_list, wrong_type, slow, trade_service_rejection.
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub fault_kinds: Vec<FaultKind>,
    /// How long a `slow` fault holds its answer back.
    #[arg(long, default_value_t = SimConfig::default().slow_answer.as_millis() as u64)]
    pub slow_answer_ms: u64,
    /// Expire the seller's session this many seconds after the start: from
    /// then on every call needing it gets code 27.
    #[arg(long, value_name = "SECS")]
    pub session_expires_in_secs: Option<u64>,
    /// Calls allowed per sliding minute; more get TOP's code 7 and a ban.
    #[arg(long, value_name = "CALLS_PER_MIN")]
    pub rate_limit: Option<u32>,
    /// Delay before every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

/// The SQLite file `orderflow demo` writes unless `--database` says otherwise.
const DEMO_DATABASE_FILE: &str = "orderflow-demo.db";

/// Graph output formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The simulator needs no config file or database.
    if let Command::Sim(args) = &cli.command {
        return run_sim(args).await;
    }
    let explicit_config = std::env::args().any(|a| a == "--config" || a.starts_with("--config="))
        || std::env::var_os("ORDERFLOW_CONFIG").is_some();
    let mut config = match Config::load(&cli.config, explicit_config) {
        Ok(config) => config,
        Err(errors) => {
            print_errors(&errors.0);
            return Ok(ExitCode::FAILURE);
        }
    };
    let cli_database = cli.database;
    if let Some(database) = &cli_database {
        config.database = database.clone();
    }
    let sandbox = Sandbox::new(Limits::default());
    let mut registry = Registry::builtin();
    let node_errors = nodes::custom::load_dir(&config.nodes_dir, &sandbox, &mut registry);

    match cli.command {
        Command::Validate { files } => {
            let mut failed = !node_errors.is_empty();
            print_errors(&node_errors);
            for file in &files {
                match compile(file, &config, &registry, &sandbox) {
                    Ok(flow) => {
                        println!("{}: ok, flow \"{}\" with {} node(s)", file.display(), flow.name, flow.nodes.len())
                    }
                    Err(errors) => {
                        print_errors(&errors);
                        failed = true;
                    }
                }
            }
            Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&flow::schema::flow_schema(&registry))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph { file, format } => {
            let flow = compile_or_report(&file, &config, &registry, &sandbox)?;
            let drawing = match format {
                GraphFormat::Dot => flow::render::dot(&flow),
                GraphFormat::Mermaid => flow::render::mermaid(&flow),
            };
            print!("{drawing}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { file, dry_run, pages } => {
            print_errors(&node_errors);
            let flow = compile_or_report(&file, &config, &registry, &sandbox)?;
            // The shops first: a missing secret must not leave a new database behind.
            let mut build = run_context(&file, &flow, &config, &sandbox)?;
            if dry_run {
                return dry_run::run(&flow, &config, &registry, &build, pages).await;
            }
            let store = connect(&config).await?;
            build.platforms.restore(&store).await?;
            let progress = RunProgress::for_run(&mut build, &flow.name);
            let engine = Engine::new(registry, build, store, EngineOptions::default());
            let cancel = CancellationToken::new();
            let on_ctrl_c = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    tracing::warn!("Interrupted: cancelling the run.");
                    on_ctrl_c.cancel();
                }
            });
            let report = engine.run(&flow, "manual", cancel).await?;
            if let Some(progress) = &progress {
                progress.finish();
            }
            print_report(&report);
            Ok(match report.status {
                RunStatus::Succeeded => ExitCode::SUCCESS,
                // It stopped on purpose and resumes where it left off, but
                // the database is not in step with the shop meanwhile.
                RunStatus::Paused => ExitCode::from(EXIT_PAUSED),
                _ => ExitCode::FAILURE,
            })
        }
        Command::Serve { flows, worker_id, lease, grace, max_runs, listen } => {
            print_errors(&node_errors);
            let store = connect(&config).await?;
            let leases = connect(&config).await?;
            // Flows are checked against stand-ins and run against the shops
            // that could be connected: one whose secret is missing fails the
            // runs of the flows using it, not the others.
            let build = check_context(&flows.join("flow.yaml"), &config, &sandbox);
            let mut connected = build.clone();
            connected.platforms = Platforms::for_serving(&config).context("connecting to the shops")?;
            connected.platforms.restore(&store).await?;
            let engine = Engine::new(registry.clone(), connected, store, EngineOptions::default());
            let worker_id = worker_id.unwrap_or_else(default_worker_id);
            let options = ServeOptions {
                flows_dir: flows,
                worker_id,
                lease,
                grace,
                poll_every: Duration::from_secs(2),
                max_runs,
            };
            let env = FlowEnv { registry, build, shops: config.shop_names() };
            let flows_dir = options.flows_dir.clone();
            let server = Server::new(options, env, engine, leases)?;
            let editor_token = std::env::var(editor::EDITOR_TOKEN_VAR).ok().map(Secret::new);
            let editor = Editor::new(&flows_dir, server.flow_env(), server.store().clone(), editor_token)
                .context("reading the flows folder for the editor")?
                .with_shops(config.clone());
            let page = WebState {
                store: server.store().clone(),
                catalog: server.catalog(),
                metrics: Some(crate::telemetry::install().context("installing the metrics recorder")?),
                token: std::env::var(web::TOKEN_VAR).ok().map(Secret::new),
                editor: Some(Arc::new(editor)),
            };
            let shutdown = CancellationToken::new();
            tokio::spawn(cancel_on_signal(shutdown.clone()));
            // The page is part of the service: one that cannot serve (a port
            // taken, no token on a public address) stops the whole process.
            let page_stopped = shutdown.clone();
            let page = tokio::spawn(async move {
                let served = web::serve_on(listen, page, page_stopped.clone()).await;
                page_stopped.cancel();
                served
            });
            server.run(shutdown.clone()).await?;
            shutdown.cancel();
            page.await.context("the web page task")??;
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs { flow, limit } => {
            let store = open_existing(&config).await?;
            let runs = store.recent_runs(flow.as_deref(), limit).await?;
            if runs.is_empty() {
                println!("no runs recorded in {}", redact_url(&config.database_url()?));
            }
            let left = Align::Left;
            let mut table = Table::headless(&[left, left, left, left, left, Align::Right, left, left]);
            for run in runs {
                let took =
                    run.finished_at.map(|f| format!("{:.1}s", (f - run.started_at).num_milliseconds() as f64 / 1000.0));
                // Shop and worker only for runs that have them (`serve` runs).
                let shop = run.shop.as_deref().map(|shop| format!("shop {shop}")).unwrap_or_default();
                let worker = run.worker.as_deref().map(|worker| format!("worker {worker}")).unwrap_or_default();
                table.row([
                    run.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    run.id.clone(),
                    run.status.as_str().to_owned(),
                    run.flow.clone(),
                    run.trigger.clone(),
                    took.unwrap_or_else(|| "running".into()),
                    shop,
                    worker,
                ]);
                if let Some(error) = &run.error {
                    table.note(format!("  error: {error}"));
                }
                let nodes = store.run_nodes(&run.id).await?;
                if !nodes.is_empty() {
                    for line in nodes_table(&nodes).render("  ").lines() {
                        table.note(line);
                    }
                }
            }
            print!("{}", table.render(""));
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { orders, seed, mutations_per_sec } => {
            let database = match cli_database {
                Some(database) => database,
                None => {
                    // The demo's own file, fresh each time: a new simulated
                    // shop must not meet the last one's orders.
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{DEMO_DATABASE_FILE}{suffix}"));
                    }
                    format!("sqlite://{DEMO_DATABASE_FILE}")
                }
            };
            demo::run(demo::DemoOptions { orders, seed, mutations_per_sec, database }).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Test { path } => {
            print_errors(&node_errors);
            test::run(&path, &config, &registry, &sandbox).await
        }
        Command::Nodes => {
            print_errors(&node_errors);
            let mut table = Table::headless(&[Align::Left, Align::Left]);
            for node_type in registry.iter() {
                let origin = node_type.script.as_ref().map(|p| format!("  ({})", p.display())).unwrap_or_default();
                table.row([node_type.name.clone(), format!("{}{origin}", node_type.summary)]);
            }
            print!("{}", table.render(""));
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim(args) => run_sim(&args).await,
        Command::Status => {
            let store = open_existing(&config).await?;
            status::print(&store).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DeadLetters(args) => {
            dead_letters::run(&args, &open_existing(&config).await?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stock(command) => {
            stock::run(&command, &connect(&config).await?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reauthorized { shop } => {
            let Some(shop_config) = config.shops.get(&shop) else {
                let known: Vec<&str> = config.shops.keys().map(String::as_str).collect();
                bail!("shop {shop:?} is not in {} (configured: {})", cli.config.display(), known.join(", "));
            };
            let store = open_existing(&config).await?;
            let platform = shop_config.platform.as_str();
            if store.clear_needs_reauth(platform, &shop).await? {
                let now = chrono::Utc::now();
                store.resolve_alert(crate::sync::NEEDS_REAUTH_ALERT, platform, &shop, None, now).await?;
                println!("shop {shop:?}: marked authorised again; its flows call the platform again");
            } else {
                println!("shop {shop:?} was not waiting for authorisation");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Breaker(BreakerCommand::Close { shop, channel }) => {
            let Some(shop_config) = config.shops.get(&shop) else {
                let known: Vec<&str> = config.shops.keys().map(String::as_str).collect();
                bail!("shop {shop:?} is not in {} (configured: {})", cli.config.display(), known.join(", "));
            };
            let store = open_existing(&config).await?;
            let platform = shop_config.platform.as_str();
            let closed = store.close_breakers(platform, &shop, channel.as_deref(), chrono::Utc::now()).await?;
            if closed.is_empty() {
                println!(
                    "shop {shop:?}: no open circuit breaker{}",
                    channel.map(|c| format!(" on {c}")).unwrap_or_default()
                );
            }
            for channel in closed {
                println!("shop {shop:?}: closed the circuit breaker of {channel}; the next run reads it again");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Docs { write } => {
            let generated = flow::reference::markdown(&Registry::builtin());
            match write {
                None => print!("{generated}"),
                Some(path) => {
                    let document =
                        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
                    let Some(updated) = flow::reference::splice(&document, &generated) else {
                        bail!("{} has no generated-reference markers", path.display());
                    };
                    std::fs::write(&path, updated).with_context(|| format!("writing {}", path.display()))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `<host>-<pid>`: unique among processes on one database as long as host
/// names are.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| "orderflow".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Cancels `shutdown` on Ctrl-C or (on Unix) SIGTERM, which is what service
/// managers and container runtimes send.
async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "Cannot listen for SIGTERM; Ctrl-C still stops serve.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("Shutdown requested.");
    shutdown.cancel();
}

async fn run_sim(args: &SimArgs) -> anyhow::Result<ExitCode> {
    let config = SimConfig {
        seed: args.seed,
        orders: args.orders,
        days: args.days,
        mutations_per_sec: args.mutations_per_sec,
        fault_rate: args.fault_rate,
        // No flag means every kind; clap cannot tell an empty list from none.
        fault_kinds: if args.fault_kinds.is_empty() { FaultKind::ALL.to_vec() } else { args.fault_kinds.clone() },
        slow_answer: Duration::from_millis(args.slow_answer_ms),
        rate_limit_per_min: args.rate_limit,
        latency: Duration::from_millis(args.latency_ms),
        ..SimConfig::default()
    };
    let sim = Simulator::start(config, args.listen).await.context("starting the simulator")?;
    println!("{}", sim.banner());
    if let Some(secs) = args.session_expires_in_secs {
        let at = i64::try_from(secs)
            .ok()
            .and_then(chrono::TimeDelta::try_seconds)
            .and_then(|after| chrono::Utc::now().checked_add_signed(after))
            .context("--session-expires-in-secs is too large")?;
        sim.expire_session_at(at);
        println!("The session expires at {} (UTC).", at.format("%Y-%m-%d %H:%M:%S"));
    }
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    sim.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// The context flow `file` is checked in: its folder, the sandbox, and a
/// stand-in per configured shop ([`Platforms::offline`]), so checking a flow
/// needs no secret.
fn check_context(file: &Path, config: &Config, sandbox: &Sandbox) -> BuildContext {
    let mut build = BuildContext::new(file.parent().map(Path::to_path_buf).unwrap_or_default(), sandbox.clone());
    build.platforms = Platforms::offline(config);
    build
}

/// The context `flow` (from `file`) runs in: connected to the shops it
/// calls, whose secrets are resolved now, and to no other.
fn run_context(file: &Path, flow: &Flow, config: &Config, sandbox: &Sandbox) -> anyhow::Result<BuildContext> {
    let mut build = check_context(file, config, sandbox);
    build.platforms = Platforms::for_shops(config, flow.shops_used()).context("connecting to the flow's shops")?;
    Ok(build)
}

/// Checks flow `file` (every error, with its position) without calling or
/// connecting to a shop: no secret is needed.
fn compile(file: &Path, config: &Config, registry: &Registry, sandbox: &Sandbox) -> Result<Flow, Vec<ConfigError>> {
    let build = check_context(file, config, sandbox);
    let shops = config.shop_names();
    let env = CompileEnv { registry, build: &build, shops: &shops };
    flow::compile_file(file, &env).map_err(|e| e.0)
}

fn compile_or_report(file: &Path, config: &Config, registry: &Registry, sandbox: &Sandbox) -> anyhow::Result<Flow> {
    compile(file, config, registry, sandbox).or_else(|errors| {
        print_errors(&errors);
        bail!("{} has {} error(s)", file.display(), errors.len())
    })
}

/// Opens the config's database, creating it (an SQLite file) if missing.
async fn connect(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url()?;
    // The store's error names the (redacted) URL already.
    Store::connect(&url).await.context("opening the database")
}

/// Opens the config's database for a command that reads what runs wrote:
/// a missing SQLite file (a mistyped path) is an error, not a new database.
async fn open_existing(config: &Config) -> anyhow::Result<Store> {
    let url = config.database_url()?;
    Store::open_existing(&url).await.map_err(|error| match error {
        // Names the path already.
        StoreError::NoDatabase { .. } => error.into(),
        error => anyhow::Error::new(error).context("opening the database"),
    })
}

fn print_errors(errors: &[ConfigError]) {
    for error in errors {
        eprintln!("{error}");
    }
}

fn print_report(report: &RunReport) {
    println!(
        "run {} of flow \"{}\": {} in {:.2}s",
        report.run_id,
        report.flow,
        report.status.as_str(),
        report.elapsed.as_secs_f64()
    );
    print!("{}", nodes_table(&report.nodes).render("  "));
    if let Some(error) = &report.error {
        println!("error: {error}");
    }
}

/// The per-node table of a run, a node's error under its row.
fn nodes_table(nodes: &[NodeRunRecord]) -> Table {
    let (left, right) = (Align::Left, Align::Right);
    let mut table = Table::new(&[
        ("node", left),
        ("type", left),
        ("status", left),
        ("in", right),
        ("out", right),
        ("errors", right),
    ]);
    for node in nodes {
        table.row([
            node.node_id.clone(),
            node.node_type.clone(),
            node.status.as_str().to_owned(),
            node.records_in.to_string(),
            node.records_out.to_string(),
            node.errors.to_string(),
        ]);
        if let Some(error) = &node.error {
            table.note(format!("  {error}"));
        }
    }
    table
}
