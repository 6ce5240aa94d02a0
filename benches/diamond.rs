//! Diamond flow throughput and peak memory.
//!
//! `a: read_jsonl → b: filter, c: script → d: log` over N generated order
//! records. The claim under test: peak memory does not grow with N, because
//! every edge is a bounded channel. Each size runs in a fresh child process
//! (this binary re-executed with `ORDERFLOW_BENCH_CHILD=<n>`), so its peak RSS
//! (`VmHWM`) is its own and not inherited from a smaller run.
//!
//! `cargo bench --bench diamond`; `ORDERFLOW_BENCH_SIZES=10000,50000` overrides
//! the sizes (default 100,000 and 1,000,000).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

use orderflow::engine::{Engine, EngineOptions};
use orderflow::flow::{CompileEnv, compile};
use orderflow::nodes::{BuildContext, Registry};
use orderflow::script::{Limits, Sandbox};
use orderflow::store::{RunStatus, Store};
use tokio_util::sync::CancellationToken;

const CHILD_VAR: &str = "ORDERFLOW_BENCH_CHILD";
const SIZES_VAR: &str = "ORDERFLOW_BENCH_SIZES";
const DEFAULT_SIZES: [u64; 2] = [100_000, 1_000_000];
/// The prefix of the one line a child prints for its parent.
const RESULT_PREFIX: &str = "BENCH_RESULT";

const FLOW: &str = "\
flow: diamond
nodes:
  a: {use: read_jsonl, with: {path: in.jsonl}}
  b: {use: filter, input: a, with: {condition: 'record.n % 2 == 0'}}
  c: {use: script, input: a, with: {source: 'record.c = record.n * 2;'}}
  d: {use: log, input: [b, c], with: {level: debug}}
";

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and maybe a filter): arguments are ignored.
    match std::env::var(CHILD_VAR) {
        Ok(n) => match n.parse() {
            Ok(n) => child(n),
            Err(_) => {
                eprintln!("{CHILD_VAR}={n} is not a record count");
                ExitCode::FAILURE
            }
        },
        Err(_) => parent(),
    }
}

/// Runs every size in its own process and prints the table.
fn parent() -> ExitCode {
    let sizes: Vec<u64> = match std::env::var(SIZES_VAR) {
        Ok(list) => match list.split(',').map(|s| s.trim().replace('_', "").parse()).collect() {
            Ok(sizes) => sizes,
            Err(_) => {
                eprintln!("{SIZES_VAR}={list}: expected comma-separated record counts");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => DEFAULT_SIZES.to_vec(),
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };

    let mut rows = Vec::new();
    for &n in &sizes {
        let output = match Command::new(&exe).env(CHILD_VAR, n.to_string()).output() {
            Ok(output) => output,
            Err(e) => {
                eprintln!("cannot run the child for {n}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let row = stdout.lines().find_map(|line| line.strip_prefix(RESULT_PREFIX)).and_then(parse_row);
        match (output.status.success(), row) {
            (true, Some(row)) => rows.push(row),
            _ => {
                eprintln!("the child for {n} records failed ({}):", output.status);
                eprint!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
                return ExitCode::FAILURE;
            }
        }
    }

    println!("diamond flow (a: read_jsonl -> b: filter, c: script -> d: log), one fresh process per size");
    println!("{:>10} {:>10} {:>12} {:>14} {:>14}", "records", "elapsed s", "records/s", "peak RSS MiB", "d records_in");
    for row in &rows {
        println!(
            "{:>10} {:>10.2} {:>12.0} {:>14.1} {:>14}",
            row.records,
            row.elapsed_s,
            row.records as f64 / row.elapsed_s,
            row.peak_kib as f64 / 1024.0,
            row.d_in
        );
    }
    if let [first, .., last] = rows.as_slice() {
        println!(
            "peak RSS ratio {} / {} records: {:.2}",
            last.records,
            first.records,
            last.peak_kib as f64 / first.peak_kib as f64
        );
    }
    ExitCode::SUCCESS
}

struct Row {
    records: u64,
    elapsed_s: f64,
    peak_kib: u64,
    d_in: u64,
}

/// Parses ` records=… elapsed_s=… peak_kib=… d_in=…`.
fn parse_row(line: &str) -> Option<Row> {
    let mut fields = line.split_whitespace().filter_map(|kv| kv.split_once('='));
    let mut take = |key: &str| fields.find(|(k, _)| *k == key).map(|(_, v)| v.to_owned());
    let records = take("records")?.parse().ok()?;
    let elapsed_s = take("elapsed_s")?.parse().ok()?;
    let peak_kib = take("peak_kib")?.parse().ok()?;
    let d_in = take("d_in")?.parse().ok()?;
    Some(Row { records, elapsed_s, peak_kib, d_in })
}

/// Generates `n` records, runs the flow once, checks it and prints one line.
fn child(n: u64) -> ExitCode {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("cannot make a temp dir: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = generate(&dir.path().join("in.jsonl"), n) {
        eprintln!("cannot write the input: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (elapsed_s, d_in) = match runtime.block_on(run(dir.path(), n)) {
        Ok(result) => result,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(peak_kib) = peak_rss_kib() else {
        eprintln!("cannot read VmHWM from /proc/self/status");
        return ExitCode::FAILURE;
    };
    println!("{RESULT_PREFIX} records={n} elapsed_s={elapsed_s} peak_kib={peak_kib} d_in={d_in}");
    ExitCode::SUCCESS
}

/// Writes `n` order-like records (~200 bytes each) without holding them.
fn generate(path: &Path, n: u64) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    for i in 0..n {
        writeln!(
            out,
            r#"{{"n":{i},"tid":"{tid}","status":"WAIT_SELLER_SEND_GOODS","payment":"{yuan}.{fen:02}","buyer_nick":"buyer{buyer}","created":"2025-06-01 12:00:00","items":[{{"sku_id":{sku},"num":{num}}}]}}"#,
            tid = 3_000_000_000_000_000u64 + i,
            yuan = i % 1000,
            fen = i % 100,
            buyer = i % 9973,
            sku = 500_000_000_000u64 + i % 5000,
            num = 1 + i % 3,
        )?;
    }
    out.flush()
}

/// Runs the diamond flow over `dir/in.jsonl`; returns (seconds, records d received).
async fn run(dir: &Path, n: u64) -> Result<(f64, u64), String> {
    let store = Store::connect(&format!("sqlite://{}", dir.join("bench.db").display()))
        .await
        .map_err(|e| format!("cannot open the store: {e}"))?;
    let build = BuildContext::new(dir, Sandbox::new(Limits::default()));
    let registry = Registry::builtin();
    let shops = BTreeSet::new();
    let env = CompileEnv { registry: &registry, build: &build, shops: &shops };
    let flow = compile(Path::new("diamond.yaml"), FLOW, &env).map_err(|e| format!("the flow does not compile: {e}"))?;
    let engine = Engine::new(registry.clone(), build, store, EngineOptions::default());

    let started = Instant::now();
    let report =
        engine.run(&flow, "bench", CancellationToken::new()).await.map_err(|e| format!("the run failed: {e}"))?;
    let elapsed_s = started.elapsed().as_secs_f64();

    if report.status != RunStatus::Succeeded {
        return Err(format!("the run ended {:?}: {:?}", report.status, report.error));
    }
    let d_in = report.nodes.iter().find(|node| node.node_id == "d").map(|node| node.records_in).unwrap_or(0);
    let expected = n + n.div_ceil(2);
    if d_in != expected {
        return Err(format!("d received {d_in} records, expected {expected}"));
    }
    Ok((elapsed_s, d_in))
}

/// The process's peak resident set size (`VmHWM`), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
