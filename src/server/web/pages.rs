//! The three pages, rendered from what the handlers read: the overview, one
//! flow (its graph and runs) and one run (its nodes).
//!
//! Nothing here shows a node's `with:` settings or any config value: settings
//! may name the variables secrets come from, and the config holds secrets.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::graph_svg;
use super::health::Health;
use super::html::{cell, duration, escape, num, page, path_segment, raw, seconds, table, time};
use crate::flow::{Flow, Trigger};
use crate::server::catalog::FlowEntry;
use crate::store::{NodeRunRecord, RestockSuggestion, RunRecord};

/// What the overview shows.
pub struct Overview {
    /// The catalog's flows.
    pub flows: Vec<FlowEntry>,
    /// The latest runs of every flow.
    pub runs: Vec<RunRecord>,
    /// Bans, breakers, alerts, lags.
    pub health: Health,
    /// The latest restock suggestions.
    pub restock: Vec<RestockSuggestion>,
    /// How many dead letters each flow has open (`orderflow dead-letters`).
    pub open_dead_letters: HashMap<String, u64>,
}

/// `/`: flows, health, restock suggestions, recent runs.
pub fn overview(data: &Overview) -> String {
    let mut body = String::from("<h2>Flows</h2>");
    let flows: Vec<Vec<String>> = data
        .flows
        .iter()
        .map(|entry| {
            let name = entry.name();
            let running: Vec<&str> = entry.running.iter().map(String::as_str).collect();
            vec![
                raw(format!("<a class=\"flow-link\" href=\"/flows/{}\">{}</a>", path_segment(&name), escape(&name))),
                cell(&entry.file.display().to_string()),
                cell(&entry.flow.as_deref().map(trigger).unwrap_or_default()),
                cell(&entry.shops.join(", ")),
                cell(&time(entry.next_run)),
                cell(&if running.is_empty() { "no".to_owned() } else { running.join(", ") }),
                cell(&time(entry.loaded_at)),
                raw(errors(&entry.errors)),
                num(data.open_dead_letters.get(&name).copied().unwrap_or(0)),
            ]
        })
        .collect();
    body.push_str(&table(
        "flows",
        &["flow", "file", "trigger", "shops", "next run", "running now", "loaded", "load errors", "open dead letters"],
        &flows,
        "No flow is loaded.",
    ));
    body.push_str(&health(&data.health));
    body.push_str("<h2>Latest restock suggestions</h2>");
    body.push_str(&restock(&data.restock));
    body.push_str("<h2>Recent runs</h2>");
    body.push_str(&runs(&data.runs, true));
    page("overview", &body)
}

/// `/flows/{name}`: the flow's graph with its last run's counts, and its
/// runs. `last_run` is the latest finished run's node records.
pub fn flow(entry: &FlowEntry, runs_of_flow: &[RunRecord], last_run: Option<(&RunRecord, &[NodeRunRecord])>) -> String {
    let name = entry.name();
    let mut body = format!("<h2 id=\"flow-name\">Flow {}</h2>", escape(&name));
    let mut facts = vec![("file", entry.file.display().to_string())];
    if let Some(flow) = &entry.flow {
        facts.push(("description", flow.description.clone()));
        facts.push(("trigger", trigger(flow)));
    }
    facts.push(("shops", entry.shops.join(", ")));
    facts.push(("next run", time(entry.next_run)));
    facts.push(("running now", entry.running.iter().cloned().collect::<Vec<_>>().join(", ")));
    facts.push(("loaded", time(entry.loaded_at)));
    body.push_str("<table id=\"flow-facts\">");
    for (key, value) in facts {
        body.push_str(&format!("<tr><th>{}</th>{}</tr>", escape(key), cell(&value)));
    }
    body.push_str("</table>");
    if !entry.errors.is_empty() {
        body.push_str("<h2>Load errors</h2>");
        body.push_str(&errors(&entry.errors));
    }
    match &entry.flow {
        Some(flow) => {
            let caption = match last_run {
                Some((run, _)) => format!(
                    "Counts of the last finished run, <a href=\"/runs/{}\">{}</a> ({}).",
                    path_segment(&run.id),
                    escape(&run.id),
                    escape(run.status.as_str())
                ),
                None => "No finished run yet.".to_owned(),
            };
            body.push_str(&format!("<h2>Graph</h2><p>{caption}</p>"));
            body.push_str(&graphs(flow, last_run.map(|(_, nodes)| nodes).unwrap_or_default()));
        }
        None => body.push_str("<p class=\"none\">The file never validated: no graph to draw.</p>"),
    }
    body.push_str("<h2>Recent runs</h2>");
    body.push_str(&runs(runs_of_flow, false));
    page(&name, &body)
}

/// `/runs/{id}`: the run and each node's counts, timings and error; the
/// graph too when its flow is loaded.
pub fn run(run: &RunRecord, nodes: &[NodeRunRecord], flow: Option<&Flow>) -> String {
    let mut body = format!(
        "<h2>Run <span id=\"run-id\">{}</span></h2><table id=\"run-facts\">\
         <tr><th>flow</th><td><a href=\"/flows/{}\">{}</a></td></tr>\
         <tr><th>status</th><td id=\"run-status\" class=\"status-{status}\">{status}</td></tr>\
         <tr><th>trigger</th>{}</tr><tr><th>started</th>{}</tr><tr><th>finished</th>{}</tr>\
         <tr><th>duration</th>{}</tr><tr><th>error</th>{}</tr></table>",
        escape(&run.id),
        path_segment(&run.flow),
        escape(&run.flow),
        cell(&run.trigger),
        cell(&time(Some(run.started_at))),
        cell(&time(run.finished_at)),
        cell(&duration(Some(run.started_at), run.finished_at)),
        raw(run.error.as_deref().map(|e| format!("<span class=\"errors\">{}</span>", escape(e))).unwrap_or_default()),
        status = escape(run.status.as_str()),
    );
    body.push_str("<h2>Nodes</h2>");
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            vec![
                cell(&node.node_id),
                cell(&node.node_type),
                raw(format!("<span class=\"status-{0}\">{0}</span>", escape(node.status.as_str()))),
                num(node.records_in),
                num(node.records_out),
                num(node.errors),
                cell(&time(node.started_at)),
                cell(&time(node.finished_at)),
                num(duration(node.started_at, node.finished_at)),
                raw(node
                    .error
                    .as_deref()
                    .map(|e| format!("<span class=\"errors\">{}</span>", escape(e)))
                    .unwrap_or_default()),
            ]
        })
        .collect();
    body.push_str(&table(
        "run-nodes",
        &["node", "type", "status", "in", "out", "errors", "started", "finished", "took", "error"],
        &rows,
        "No node was recorded: the run has not finished.",
    ));
    if let Some(flow) = flow {
        body.push_str("<h2>Graph</h2>");
        body.push_str(&graphs(flow, nodes));
    }
    page(&format!("run {}", run.id), &body)
}

/// A page saying what was not found.
pub fn not_found(what: &str) -> String {
    page("not found", &format!("<h2>Not found</h2><p>{}</p>", escape(what)))
}

/// A page saying the database could not be read (the log has the details).
pub fn unavailable() -> String {
    page("error", "<h2>The database could not be read</h2><p>The server log has the details.</p>")
}

/// The flow's `nodes:` graph and, when it has some, its `errors:` graph.
fn graphs(flow: &Flow, counts: &[NodeRunRecord]) -> String {
    let by_id: HashMap<&str, &NodeRunRecord> = counts.iter().map(|n| (n.node_id.as_str(), n)).collect();
    let mut out = graph_svg::render(&flow.nodes, &by_id, "main");
    if !flow.error_nodes.is_empty() {
        out.push_str("<h2>On failure (<code>errors:</code>)</h2>");
        out.push_str(&graph_svg::render(&flow.error_nodes, &by_id, "errors"));
    }
    out
}

fn trigger(flow: &Flow) -> String {
    match &flow.trigger {
        Some(Trigger::Every(every)) => format!("every {}", humantime::format_duration(*every)),
        Some(Trigger::Cron { expression, timezone }) => format!("cron {expression} ({timezone})"),
        None => "manual".to_owned(),
    }
}

fn errors(errors: &[String]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let items: String = errors.iter().map(|e| format!("<li>{}</li>", escape(e))).collect();
    format!("<ul class=\"errors\">{items}</ul>")
}

fn runs(runs: &[RunRecord], with_flow: bool) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            let mut row = vec![raw(format!(
                "<a class=\"run-link\" href=\"/runs/{}\">{}</a>",
                path_segment(&run.id),
                escape(&run.id)
            ))];
            if with_flow {
                row.push(raw(format!("<a href=\"/flows/{}\">{}</a>", path_segment(&run.flow), escape(&run.flow))));
            }
            row.extend([
                cell(&run.trigger),
                raw(format!("<span class=\"run-status status-{0}\">{0}</span>", escape(run.status.as_str()))),
                cell(&time(Some(run.started_at))),
                num(duration(Some(run.started_at), run.finished_at)),
                raw(run
                    .error
                    .as_deref()
                    .map(|e| format!("<span class=\"errors\">{}</span>", escape(e)))
                    .unwrap_or_default()),
            ]);
            row
        })
        .collect();
    let headers: &[&str] = if with_flow {
        &["run", "flow", "trigger", "status", "started", "took", "error"]
    } else {
        &["run", "trigger", "status", "started", "took", "error"]
    };
    table("runs", headers, &rows, "No run yet.")
}

fn health(health: &Health) -> String {
    let mut body = String::from("<h2>Circuit breakers</h2>");
    let rows: Vec<Vec<String>> = health
        .breakers
        .iter()
        .map(|b| {
            let failed = b.outcomes.chars().filter(|c| *c == 'x').count();
            vec![
                cell(&b.platform),
                cell(&b.shop),
                cell(&b.channel),
                raw(format!("<span class=\"breaker-state\">{}</span>", escape(&b.state))),
                cell(&format!("{failed} of {}", b.outcomes.chars().count())),
                cell(&time(b.opened_at)),
                cell(&time(b.last_degraded_at)),
            ]
        })
        .collect();
    body.push_str(&table(
        "breakers",
        &["platform", "shop", "channel", "state", "recent failures", "opened", "last full pull"],
        &rows,
        "No breaker has recorded anything yet.",
    ));

    body.push_str("<h2>Rate-limit bans</h2>");
    let now = Utc::now();
    let rows: Vec<Vec<String>> = health
        .bans
        .iter()
        .map(|ban| {
            vec![
                cell(&ban.platform),
                cell(&ban.app_key),
                cell(&time(Some(ban.until))),
                cell(&seconds(((ban.until - now).num_milliseconds() as f64 / 1000.0).max(0.0))),
                cell(&ban.reason),
            ]
        })
        .collect();
    body.push_str(&table("bans", &["platform", "app key", "until", "left", "reason"], &rows, "No ban in force."));

    body.push_str("<h2>Shops to authorise again</h2>");
    let rows: Vec<Vec<String>> = health
        .reauth
        .iter()
        .map(|r| vec![cell(&r.platform), cell(&r.shop), cell(&time(Some(r.since))), cell(&r.reason)])
        .collect();
    body.push_str(&table("reauth", &["platform", "shop", "since", "reason"], &rows, "None."));

    body.push_str("<h2>Sync lag</h2>");
    let rows: Vec<Vec<String>> = health
        .lags
        .iter()
        .map(|lag| {
            vec![
                cell(&lag.platform),
                cell(&lag.shop),
                cell(&lag.stream),
                cell(&time(lag.until)),
                num(lag.seconds.map(seconds).unwrap_or_else(|| "—".to_owned())),
            ]
        })
        .collect();
    body.push_str(&table(
        "lags",
        &["platform", "shop", "stream", "synced up to", "lag"],
        &rows,
        "No incremental sync has run yet.",
    ));

    body.push_str("<h2>Open alerts</h2>");
    let rows: Vec<Vec<String>> = health
        .alerts
        .iter()
        .map(|a| {
            vec![
                cell(&a.kind),
                cell(&a.platform),
                cell(&a.shop),
                cell(&a.tid.map(|tid| tid.to_string()).unwrap_or_default()),
                cell(&time(Some(a.created_at))),
                cell(&a.detail),
            ]
        })
        .collect();
    body.push_str(&table("alerts", &["kind", "platform", "shop", "order", "since", "detail"], &rows, "No open alert."));
    body
}

fn restock(suggestions: &[RestockSuggestion]) -> String {
    let created: Option<DateTime<Utc>> = suggestions.iter().map(|s| s.created_at).max();
    let rows: Vec<Vec<String>> = suggestions
        .iter()
        .filter(|s| s.suggested > 0)
        .map(|s| {
            vec![
                cell(&s.shop),
                cell(&s.sku),
                num(s.suggested),
                num(s.available),
                num(s.on_order),
                num(format!("{:.1}", s.demand_over_lead)),
                cell(&s.model),
            ]
        })
        .collect();
    let mut out = match (suggestions.first(), created) {
        (Some(first), Some(at)) => format!(
            "<p>From run <a href=\"/runs/{}\">{}</a> at {}: the SKUs to reorder.</p>",
            path_segment(&first.run_id),
            escape(&first.run_id),
            escape(&time(Some(at)))
        ),
        _ => String::new(),
    };
    out.push_str(&table(
        "restock",
        &["shop", "SKU", "order", "available", "on order", "demand over lead time", "model"],
        &rows,
        if created.is_some() { "Nothing to reorder." } else { "No restock suggestion yet." },
    ));
    out
}
