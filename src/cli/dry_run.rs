//! `orderflow run --dry-run FILE [--pages N]`: the flow against its real
//! shops, each source bounded to N pages, from the real cursors and under
//! the real bans, every write in a scratch database, no webhook sent; prints
//! what each node did and a few of its records.

use std::process::ExitCode;

use crate::config::Config;
use crate::flow::Flow;
use crate::harness::expect::compact;
use crate::harness::{SandboxOptions, SandboxReport, Scratch, dry_run, run_sandboxed};
use crate::nodes::{BuildContext, Registry};
use anyhow::Context;

use crate::store::{NodeRunRecord, RunStatus, Store, redact_url};

/// Records shown per node.
const SHOWN_PER_NODE: usize = 3;

/// Runs `flow` dry; `build` holds the real shops' connectors, not yet
/// restored from any database.
pub async fn run(
    flow: &Flow,
    config: &Config,
    registry: &Registry,
    build: &BuildContext,
    pages: u64,
) -> anyhow::Result<ExitCode> {
    let scratch = Scratch::new().await?;
    let database = config.database_url()?;
    println!(
        "dry run of flow \"{}\": at most {pages} page(s) per source; {} is only read, nothing is written to it",
        flow.name,
        redact_url(&database)
    );
    let copied = match read_only(&database) {
        Some(url) => {
            // The store's error names the (redacted) URL already.
            let real = Store::connect(&url).await.context("opening the database")?;
            let copied = dry_run::prepare(Some(&real), &scratch.store, flow, &build.platforms).await?;
            real.close().await;
            copied
        }
        None => {
            println!("  no database yet: the flow starts as on its first run");
            dry_run::prepare(None, &scratch.store, flow, &build.platforms).await?
        }
    };
    for cursor in &copied.cursors {
        println!("  resumes from {cursor}");
    }
    if copied.bans + copied.needs_reauth + copied.breakers > 0 {
        println!(
            "  honours {} ban(s), {} shop(s) to authorise again, {} circuit breaker(s)",
            copied.bans, copied.needs_reauth, copied.breakers
        );
    }
    let options =
        SandboxOptions { fixtures: Default::default(), sample: Some(SHOWN_PER_NODE), pages_per_source: Some(pages) };
    let report = run_sandboxed(flow, registry, build, &scratch, &options).await?;
    print(&report);
    Ok(match report.status {
        RunStatus::Succeeded => ExitCode::SUCCESS,
        RunStatus::Paused => ExitCode::from(super::EXIT_PAUSED),
        _ => ExitCode::FAILURE,
    })
}

/// The URL to read the real database through: a SQLite file opened
/// read-only (so that not even a checkpoint of its journal changes it), or
/// `None` when the file does not exist yet; other databases as they are
/// (the dry run only reads them).
fn read_only(url: &str) -> Option<String> {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return Some(url.to_owned());
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || !std::path::Path::new(path).exists() {
        return None;
    }
    let mut parameters: Vec<&str> = query.split('&').filter(|p| !p.is_empty() && !p.starts_with("mode=")).collect();
    parameters.push("mode=ro");
    Some(format!("sqlite://{path}?{}", parameters.join("&")))
}

fn print(report: &SandboxReport) {
    println!("{}: {} in {:.2}s", report.flow, report.status.as_str(), report.elapsed_ms as f64 / 1000.0);
    // The table `run` prints, so the two read alike.
    let table: Vec<NodeRunRecord> = report
        .nodes
        .iter()
        .map(|node| NodeRunRecord {
            node_id: node.id.clone(),
            node_type: node.node_type.clone(),
            status: node.status,
            records_in: node.records_in,
            records_out: node.records_out,
            errors: node.errors,
            started_at: None,
            finished_at: None,
            error: node.error.clone(),
        })
        .collect();
    print!("{}", super::nodes_table(&table).render("  "));
    for node in report.nodes.iter().filter(|n| !n.records.is_empty() || !n.rejected.is_empty()) {
        println!("  {} sent {} record(s), the first:", node.id, node.records_out);
        for record in &node.records {
            println!("      {}", compact(record));
        }
        for rejected in &node.rejected {
            println!("      set aside ({}): {}", rejected.reason, compact(&rejected.record));
        }
    }
    for webhook in &report.webhooks {
        println!("  {} would POST to {}: {}", webhook.node_id, webhook.url, compact(&webhook.body));
    }
    if let Some(error) = &report.error {
        println!("error: {error}");
    }
}
