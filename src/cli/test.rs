//! `orderflow test [PATH]`: runs the test files (`flows/tests/*.yaml`) of
//! flows on their fixtures in the sandbox (`src/harness/`): one line per
//! test, a diff per failure, exit code 1 on any failure. No shop is
//! connected and no webhook sent.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::{compile, print_errors};
use crate::config::Config;
use crate::harness::run_test;
use crate::harness::test_file::TestFile;
use crate::nodes::{BuildContext, Registry};
use crate::script::Sandbox;

/// Where `orderflow test` looks when given no path.
pub const DEFAULT_TESTS: &str = "flows/tests";

/// Tests passed and failed.
#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

/// Runs every test file at `path` (a file, or a folder of `*.yaml`).
pub async fn run(path: &Path, config: &Config, registry: &Registry, sandbox: &Sandbox) -> anyhow::Result<ExitCode> {
    let files = test_files(path)?;
    let mut tally = Tally::default();
    for file in &files {
        run_file(file, config, registry, sandbox, &mut tally).await?;
    }
    println!("{} passed, {} failed ({} file(s))", tally.passed, tally.failed, files.len());
    Ok(if tally.failed == 0 && !files.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn test_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).with_context(|| format!("reading the test folder {}", path.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let file = entry.with_context(|| format!("reading the test folder {}", path.display()))?.path();
        if file.is_file() && file.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{} holds no test file (*.yaml)", path.display());
    }
    Ok(files)
}

/// Runs one file's tests; a file that cannot be read, or whose flow does not
/// compile, counts as one failed test.
async fn run_file(
    path: &Path,
    config: &Config,
    registry: &Registry,
    sandbox: &Sandbox,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let file = match TestFile::load(path, sandbox) {
        Ok(file) => file,
        Err(errors) => {
            println!("FAIL {}: the test file has {} error(s)", path.display(), errors.0.len());
            print_errors(&errors.0);
            tally.failed += 1;
            return Ok(());
        }
    };
    let flow = match compile(&file.flow, config, registry, sandbox) {
        Ok(flow) => flow,
        Err(errors) => {
            println!("FAIL {}: its flow {} has {} error(s)", path.display(), file.flow.display(), errors.len());
            print_errors(&errors);
            tally.failed += 1;
            return Ok(());
        }
    };
    let wrong_nodes = file.check_nodes(&flow);
    if !wrong_nodes.is_empty() {
        println!("FAIL {}: the test file names {} unknown node(s)", path.display(), wrong_nodes.len());
        print_errors(&wrong_nodes);
        tally.failed += 1;
        return Ok(());
    }
    // No shop: a node that would call one must be given a fixture.
    let build = BuildContext::new(file.flow.parent().map(Path::to_path_buf).unwrap_or_default(), sandbox.clone());
    for test in &file.tests {
        let outcome = run_test(&flow, test, registry, &build).await?;
        if outcome.passed() {
            println!("ok   {}: {}", path.display(), test.name);
            tally.passed += 1;
        } else {
            println!("FAIL {}: {}", path.display(), test.name);
            for mismatch in &outcome.mismatches {
                println!("  {}:", mismatch.subject);
                for line in &mismatch.lines {
                    println!("    {line}");
                }
            }
            tally.failed += 1;
        }
    }
    Ok(())
}
