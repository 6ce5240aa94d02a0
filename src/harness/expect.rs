//! Checks a test's expectations against what a sandboxed run did, and says
//! what differs in words an ops person can act on: per node, the records
//! missing, the records not expected, and for a missing record the fields
//! by which the nearest record sent differs.

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::test_file::{Expectation, TestCase};
use super::{SandboxReport, record_from_fixture};
use crate::script::Sandbox;

/// Records shown per kind of difference; the rest are counted.
const SHOWN: usize = 5;
/// Characters of a record shown in a line.
const RECORD_WIDTH: usize = 200;

/// Something a test expected that did not happen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The node it is about, or `run` for how the run ended, or `webhooks`.
    pub subject: String,
    /// What differs, one line each.
    pub lines: Vec<String>,
}

/// Every expectation of `test` that `report` does not meet; empty when the
/// test passes.
pub fn check(test: &TestCase, report: &SandboxReport, sandbox: &Sandbox) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    if report.status != test.status {
        let mut line = format!("expected the run to end {}, it ended {}", test.status.as_str(), report.status.as_str());
        if let Some(error) = &report.error {
            line.push_str(&format!(": {error}"));
        }
        mismatches.push(Mismatch { subject: "run".into(), lines: vec![line] });
    }
    for (node_id, expectation) in &test.expect {
        // A node missing from the report never ran (an error handler of a
        // run that did not fail): it sent nothing.
        let (records, counts) = match report.node(node_id) {
            Some(node) => (
                node.records.as_slice(),
                Counts { out: node.records_out, received: node.records_in, rejected: node.rejected.len() as u64 },
            ),
            None => (&[][..], Counts::default()),
        };
        let lines = check_records(expectation, records, counts, sandbox);
        if !lines.is_empty() {
            mismatches.push(Mismatch { subject: format!("node \"{node_id}\""), lines });
        }
    }
    if let Some(expectation) = &test.webhooks {
        let sent: Vec<Json> = report.webhooks.iter().map(|w| serde_json::to_value(w).unwrap_or(Json::Null)).collect();
        let sent_count = sent.len() as u64;
        let lines =
            check_records(expectation, &sent, Counts { out: sent_count, received: sent_count, rejected: 0 }, sandbox);
        if !lines.is_empty() {
            mismatches.push(Mismatch { subject: "webhooks".into(), lines });
        }
    }
    mismatches
}

/// A node's record counts.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    out: u64,
    received: u64,
    rejected: u64,
}

/// The differences between `expectation` and a node's `records` (all it
/// sent) and `counts`.
fn check_records(expectation: &Expectation, records: &[Json], counts: Counts, sandbox: &Sandbox) -> Vec<String> {
    let mut lines = Vec::new();
    let checks = [
        (expectation.count, counts.out, "out"),
        (expectation.received, counts.received, "received"),
        (expectation.rejected, counts.rejected, "skipped or set aside"),
    ];
    for (expected, got, what) in checks {
        if let Some(expected) = expected
            && expected != got
        {
            lines.push(format!("expected {expected} record(s) {what}, got {got}"));
        }
    }
    if let Some(expected) = &expectation.records {
        if expectation.ordered {
            lines.extend(ordered_diff(expected, records));
        } else {
            lines.extend(unordered_diff(expected, records, Match::Exact));
        }
    }
    if let Some(wanted) = &expectation.contains {
        lines.extend(unordered_diff(wanted, records, Match::Subset));
    }
    if let Some((source, condition)) = &expectation.each {
        let failing: Vec<String> = records
            .iter()
            .filter(|record| {
                let Some(record) = record_from_fixture((*record).clone()) else { return true };
                !matches!(sandbox.eval_condition(condition, &record), Ok(true))
            })
            .map(compact)
            .collect();
        lines.extend(shown(&failing, &format!("does not meet `each: {source}`:")));
    }
    lines
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Match {
    /// Every field equal, none more or fewer.
    Exact,
    /// The expected fields equal; others ignored.
    Subset,
}

/// Whether `actual` is `expected` (exact), or has every field `expected`
/// lists, nested objects included, at the same value (subset).
fn matches(expected: &Json, actual: &Json, how: Match) -> bool {
    match (how, expected, actual) {
        (Match::Subset, Json::Object(wanted), Json::Object(got)) => {
            wanted.iter().all(|(field, value)| got.get(field).is_some_and(|v| matches(value, v, how)))
        }
        _ => same(expected, actual),
    }
}

/// JSON equality in which numbers compare by value (`1` and `1.0` alike),
/// as YAML writes them one way and records may carry them the other.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Json::Array(x), Json::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Pairs each expected record with a distinct record sent; reports the
/// unpaired on both sides (only the expected ones for a subset match).
fn unordered_diff(expected: &[Json], actual: &[Json], how: Match) -> Vec<String> {
    let mut used = vec![false; actual.len()];
    let mut missing = Vec::new();
    for wanted in expected {
        match (0..actual.len()).find(|&i| !used[i] && matches(wanted, &actual[i], how)) {
            Some(i) => used[i] = true,
            None => missing.push(wanted),
        }
    }
    let unexpected: Vec<&Json> = actual.iter().zip(&used).filter(|(_, used)| !**used).map(|(a, _)| a).collect();
    let mut lines = Vec::new();
    let label = if how == Match::Subset { "no record matches" } else { "missing" };
    for wanted in missing.iter().take(SHOWN) {
        lines.push(format!("{label} {}", compact(wanted)));
        // The nearest candidate: among those not paired, or any for a subset.
        let pool: Vec<&Json> = if how == Match::Exact { unexpected.clone() } else { actual.iter().collect() };
        if let Some((nearest, differences)) = nearest(wanted, &pool, how) {
            lines.push(format!("    nearest record sent ({}) differs: {}", identify(nearest), differences.join("; ")));
        }
    }
    if missing.len() > SHOWN {
        lines.push(format!("… and {} more not sent", missing.len() - SHOWN));
    }
    if how == Match::Exact {
        let unexpected: Vec<String> = unexpected.iter().map(|r| compact(r)).collect();
        lines.extend(shown(&unexpected, "unexpected"));
    }
    lines
}

fn ordered_diff(expected: &[Json], actual: &[Json]) -> Vec<String> {
    let mut lines = Vec::new();
    for (index, (wanted, got)) in expected.iter().zip(actual).enumerate() {
        if !same(wanted, got) {
            let differences = field_differences(wanted, got, Match::Exact);
            lines.push(format!("record {} differs: {}", index + 1, differences.join("; ")));
        }
    }
    if expected.len() != actual.len() {
        lines.push(format!("expected {} record(s) in order, got {}", expected.len(), actual.len()));
    }
    lines
}

/// The record of `pool` sharing most field values with `wanted`, and how
/// they differ.
fn nearest<'a>(wanted: &Json, pool: &[&'a Json], how: Match) -> Option<(&'a Json, Vec<String>)> {
    let Json::Object(fields) = wanted else { return None };
    let shared =
        |candidate: &Json| fields.iter().filter(|(k, v)| candidate.get(k).is_some_and(|w| matches(v, w, how))).count();
    let best = pool.iter().copied().max_by_key(|candidate| shared(candidate))?;
    (shared(best) > 0).then(|| (best, field_differences(wanted, best, how)))
}

/// `"status": expected "A", got "B"` for each field that differs.
fn field_differences(wanted: &Json, got: &Json, how: Match) -> Vec<String> {
    let empty = Map::new();
    let wanted_fields = wanted.as_object().unwrap_or(&empty);
    let got_fields = got.as_object().unwrap_or(&empty);
    let mut differences = Vec::new();
    for (field, value) in wanted_fields {
        match got_fields.get(field) {
            None => differences.push(format!("field \"{field}\": expected {}, absent", short(value))),
            Some(other) if !matches(value, other, how) => {
                differences.push(format!("field \"{field}\": expected {}, got {}", short(value), short(other)))
            }
            Some(_) => {}
        }
    }
    if how == Match::Exact {
        for (field, value) in got_fields.iter().filter(|(f, _)| !wanted_fields.contains_key(*f)) {
            differences.push(format!("field \"{field}\": not expected, got {}", short(value)));
        }
    }
    differences
}

/// A record's identity in a line: its `tid`, `refund_id`, `sku` or
/// `alert_id` when it has one, else the record itself.
fn identify(record: &Json) -> String {
    ["tid", "refund_id", "sku", "alert_id", "delivery_key"]
        .iter()
        .find_map(|field| record.get(field).map(|v| format!("{field} {}", short(v))))
        .unwrap_or_else(|| compact(record))
}

fn shown(items: &[String], label: &str) -> Vec<String> {
    let mut lines: Vec<String> = items.iter().take(SHOWN).map(|item| format!("{label} {item}")).collect();
    if items.len() > SHOWN {
        lines.push(format!("… and {} more", items.len() - SHOWN));
    }
    lines
}

fn short(value: &Json) -> String {
    truncated(value.to_string(), 60)
}

/// A record as one line of JSON, cut at [`RECORD_WIDTH`] characters.
pub(crate) fn compact(record: &Json) -> String {
    truncated(record.to_string(), RECORD_WIDTH)
}

fn truncated(text: String, width: usize) -> String {
    if text.chars().count() <= width { text } else { format!("{}…", text.chars().take(width).collect::<String>()) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::script::Limits;

    fn expectation(source: &str) -> Expectation {
        let sandbox = Sandbox::new(Limits::default());
        let file = format!("flow: ../example-orders.yaml\ntests:\n  - name: t\n    expect:\n      n: {source}\n");
        let path = std::path::Path::new("flows/tests/t.yaml");
        let mut parsed =
            super::super::test_file::TestFile::parse(path, &file, &sandbox).unwrap_or_else(|e| panic!("{e}"));
        parsed.tests.remove(0).expect.remove(0).1
    }

    fn diff(source: &str, records: &[Json]) -> Vec<String> {
        let sandbox = Sandbox::new(Limits::default());
        let counts = Counts { out: records.len() as u64, received: records.len() as u64, rejected: 0 };
        check_records(&expectation(source), records, counts, &sandbox)
    }

    #[test]
    fn exact_records_match_in_any_order_and_numbers_by_value() {
        let got = [json!({"tid": 2, "payment": 5.0}), json!({"tid": 1, "payment": 3})];
        assert!(diff("{records: [{tid: 1, payment: 3.0}, {tid: 2, payment: 5}]}", &got).is_empty());
        assert_eq!(
            diff("{records: [{tid: 1, payment: 3.0}, {tid: 2, payment: 5}], ordered: true}", &got),
            [
                "record 1 differs: field \"tid\": expected 1, got 2; field \"payment\": expected 3.0, got 5.0",
                "record 2 differs: field \"tid\": expected 2, got 1; field \"payment\": expected 5, got 3",
            ]
        );
    }

    #[test]
    fn a_missing_record_names_the_field_that_differs_in_the_nearest_one() {
        let got = [json!({"tid": 1, "status": "TRADE_CLOSED", "buyer": "a"})];
        assert_eq!(
            diff("{records: [{tid: 1, status: WAIT_SELLER_SEND_GOODS, buyer: a}]}", &got),
            [
                r#"missing {"tid":1,"status":"WAIT_SELLER_SEND_GOODS","buyer":"a"}"#,
                r#"    nearest record sent (tid 1) differs: field "status": expected "WAIT_SELLER_SEND_GOODS", got "TRADE_CLOSED""#,
                r#"unexpected {"tid":1,"status":"TRADE_CLOSED","buyer":"a"}"#,
            ]
        );
        assert_eq!(
            diff("{contains: [{tid: 1, status: WAIT_SELLER_SEND_GOODS}]}", &got),
            [
                r#"no record matches {"tid":1,"status":"WAIT_SELLER_SEND_GOODS"}"#,
                r#"    nearest record sent (tid 1) differs: field "status": expected "WAIT_SELLER_SEND_GOODS", got "TRADE_CLOSED""#,
            ]
        );
        assert!(diff("{contains: [{status: TRADE_CLOSED}], count: 1}", &got).is_empty());
    }

    #[test]
    fn counts_and_conditions_are_checked() {
        let got = [json!({"tid": 1, "_tags": ["vip"]}), json!({"tid": 2})];
        assert_eq!(diff("{count: 1}", &got), ["expected 1 record(s) out, got 2"]);
        assert!(diff("{each: 'record.tid > 0'}", &got).is_empty());
        assert_eq!(diff("{each: '\"vip\" in tags'}", &got), [r#"does not meet `each: "vip" in tags`: {"tid":2}"#]);
    }
}
