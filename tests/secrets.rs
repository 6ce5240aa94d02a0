//! Commands that call no shop need none of its secrets; a run resolves the
//! secrets of the shops its flow calls and of no other; read-only commands
//! never create a database. Each runs the binary in an environment cleared
//! of everything but `PATH` and `HOME`, so a variable of the developer's
//! shell cannot make a test pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use orderflow::sim::{SimConfig, Simulator};
use orderflow::store::{RunStatus, Store};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The binary run from the repository with only `PATH`, `HOME` and `env`
/// in its environment.
fn orderflow(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command.args(args).current_dir(repo()).env_clear().env("RUST_LOG", "error");
    for name in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command.envs(env.iter().copied()).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn shipped_flows() -> Vec<PathBuf> {
    let mut flows: Vec<PathBuf> = std::fs::read_dir(repo().join("flows"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    flows.sort();
    flows
}

#[test]
fn every_shipped_flow_validates_with_no_secret_in_the_environment() {
    let flows = shipped_flows();
    assert!(flows.len() >= 10, "{flows:?}");
    let mut args = vec!["--config", "orderflow.example.yaml", "validate"];
    args.extend(flows.iter().map(|p| p.to_str().unwrap()));
    let out = orderflow(&args, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert_eq!(stdout.lines().filter(|line| line.contains(": ok, flow")).count(), flows.len(), "{stdout}");
}

#[test]
fn graph_schema_nodes_and_docs_need_no_secret() {
    let config = ["--config", "orderflow.example.yaml"];
    for command in [&["graph", "flows/multi-platform-incremental.yaml"][..], &["schema"], &["nodes"], &["docs"]] {
        let args: Vec<&str> = config.iter().chain(command).copied().collect();
        let out = orderflow(&args, &[]);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(!out.stdout.is_empty(), "{args:?} printed nothing");
    }
}

/// A config in a fresh folder with the example's two shops (same
/// references, same lines) pointed at `gateways` and a database in the
/// folder.
fn example_config(dir: &Path, taobao_gateway: &str, douyin_gateway: &str) -> PathBuf {
    let example = std::fs::read_to_string(repo().join("orderflow.example.yaml")).unwrap();
    let example = example
        .replace("database: sqlite://orderflow.db", &format!("database: sqlite://{}", dir.join("shop.db").display()))
        .replace("nodes_dir: nodes", &format!("nodes_dir: {}", repo().join("nodes").display()))
        .replace("http://127.0.0.1:8750/router/rest", taobao_gateway)
        .replace("http://127.0.0.1:8750/douyin", douyin_gateway)
        .replace("rate_limit_per_min: 100", "rate_limit_per_min: 100000");
    let path = dir.join("orderflow.yaml");
    std::fs::write(&path, example).unwrap();
    path
}

/// The 1-based line and column of the value `${name}` in `file`.
fn place_of(file: &Path, name: &str) -> (usize, usize) {
    let source = std::fs::read_to_string(file).unwrap();
    let reference = format!("${{{name}}}");
    source.lines().enumerate().find_map(|(index, line)| line.find(&reference).map(|col| (index + 1, col + 1))).unwrap()
}

#[test]
fn a_run_whose_shop_secret_is_unset_fails_naming_the_variable_and_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), "http://127.0.0.1:9/router/rest", "http://127.0.0.1:9/douyin");
    let config_arg = config.to_str().unwrap();
    let env = [("TOP_APP_KEY", "12345678"), ("TOP_APP_SECRET", "s3cr3t-value")];
    let out = orderflow(&["--config", config_arg, "run", "flows/taobao-incremental.yaml"], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let (line, col) = place_of(&config, "TOP_SESSION");
    let expected = format!("{}:{line}:{col}: ${{TOP_SESSION}} is not set", config.display());
    assert!(stderr.contains("shop \"tmall-main\" cannot be connected") && stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("DOUYIN"), "only the flow's shop is resolved: {stderr}");
    assert!(!stderr.contains("s3cr3t-value"), "{stderr}");
    assert!(!dir.path().join("shop.db").exists(), "the database is not even created");
}

#[test]
fn a_run_resolves_the_shops_its_nodes_name_too() {
    // multi-platform-incremental has no `shop:`; its fetch nodes name one each.
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), "http://127.0.0.1:9/router/rest", "http://127.0.0.1:9/douyin");
    let env = [("TOP_APP_KEY", "1"), ("TOP_APP_SECRET", "s"), ("TOP_SESSION", "s")];
    let out = orderflow(&["--config", config.to_str().unwrap(), "run", "flows/multi-platform-incremental.yaml"], &env);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("shop \"douyin-main\" cannot be connected"), "{stderr}");
    for name in ["DOUYIN_APP_KEY", "DOUYIN_APP_SECRET", "DOUYIN_ACCESS_TOKEN"] {
        let (line, col) = place_of(&config, name);
        assert!(stderr.contains(&format!(":{line}:{col}: ${{{name}}} is not set")), "{name}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taobao_flow_runs_with_only_the_top_secrets_set() {
    let sim_config = SimConfig { seed: 5, orders: 200, days: 10, ..SimConfig::default() };
    let sim = Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), &sim.gateway_url(), &sim.douyin_gateway_url());
    let config_arg = config.to_str().unwrap().to_owned();
    let secrets = sim_config.clone();
    let out = tokio::task::spawn_blocking(move || {
        let env = [
            ("TOP_APP_KEY", secrets.app_key.as_str()),
            ("TOP_APP_SECRET", secrets.app_secret.as_str()),
            ("TOP_SESSION", secrets.session.as_str()),
        ];
        orderflow(&["--config", &config_arg, "run", "flows/taobao-incremental.yaml"], &env)
    })
    .await
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("of flow \"taobao-incremental\": succeeded"), "{stdout}");
    assert!(sim.calls().by_method.get("taobao.trades.sold.increment.get").copied().unwrap_or(0) > 0);
    sim.shutdown().await;
}

#[test]
fn a_read_only_command_on_a_mistyped_sqlite_path_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo.db");
    let url = format!("sqlite://{}", typo.display());
    for command in [&["status"][..], &["runs"], &["dead-letters"], &["dead-letters", "--show", "1"]] {
        let args: Vec<&str> =
            ["--config", "orderflow.example.yaml", "--database", &url].iter().chain(command).copied().collect();
        let out = orderflow(&args, &[]);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!("no database at {}; run a flow first or check `database:`", typo.display())),
            "{args:?}: {stderr}"
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
}

#[test]
fn a_database_password_reference_is_resolved_only_by_commands_that_open_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("orderflow.yaml");
    let source = format!(
        "database: postgres://orderflow:${{DB_PASSWORD}}@127.0.0.1:9/orders\nnodes_dir: {}\n",
        repo().join("nodes").display()
    );
    std::fs::write(&config, source).unwrap();
    let config = config.to_str().unwrap();
    let validate = orderflow(&["--config", config, "validate", "flows/example-orders.yaml"], &[]);
    assert!(validate.status.success(), "{}", text(&validate.stderr));
    let status = orderflow(&["--config", config, "status"], &[]);
    assert_eq!(status.status.code(), Some(1));
    let stderr = text(&status.stderr);
    assert!(stderr.contains(&format!("{config}:1:11: ${{DB_PASSWORD}} is not set")), "{stderr}");
}

/// A flow reading the last day's changed orders of `shop` every minute.
fn sync_flow(name: &str, shop: &str) -> String {
    format!(
        "flow: {name}\nshop: {shop}\ntrigger:\n  every: 1m\nnodes:\n  changed:\n    use: fetch_increment\n    with: {{first_run: 1d, window: 1d, page_size: 100}}\n  save:\n    use: store_orders\n    input: changed\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_flows_of_the_shops_it_can_connect_and_fails_only_the_others() {
    let sim_config = SimConfig { seed: 6, orders: 100, days: 5, ..SimConfig::default() };
    let sim = Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = example_config(dir.path(), &sim.gateway_url(), &sim.douyin_gateway_url());
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    std::fs::write(flows.join("tmall.yaml"), sync_flow("tmall-sync", "tmall-main")).unwrap();
    std::fs::write(flows.join("douyin.yaml"), sync_flow("douyin-sync", "douyin-main")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    // Only the Taobao shop's secrets: the Douyin shop cannot be connected.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_orderflow"))
        .args(["--config", config.to_str().unwrap(), "serve", "--flows", flows.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "error")
        .env("TOP_APP_KEY", &sim_config.app_key)
        .env("TOP_APP_SECRET", &sim_config.app_secret)
        .env("TOP_SESSION", &sim_config.session)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let database = format!("sqlite://{}", dir.path().join("shop.db").display());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let finished = loop {
        assert!(std::time::Instant::now() < deadline, "serve finished no run of both flows");
        assert!(serve.try_wait().unwrap().is_none(), "serve stopped");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let Ok(store) = Store::open_existing(&database).await else { continue };
        let runs = store.recent_runs(None, 20).await.unwrap();
        let last = |flow: &str| runs.iter().find(|run| run.flow == flow && run.finished_at.is_some()).cloned();
        if let (Some(tmall), Some(douyin)) = (last("tmall-sync"), last("douyin-sync")) {
            break (tmall, douyin);
        }
    };
    serve.kill().unwrap();
    serve.wait().unwrap();
    sim.shutdown().await;

    let (tmall, douyin) = finished;
    assert_eq!(tmall.status, RunStatus::Succeeded, "{:?}", tmall.error);
    assert_eq!(douyin.status, RunStatus::Failed);
    let error = douyin.error.unwrap_or_default();
    let (line, col) = place_of(&config, "DOUYIN_ACCESS_TOKEN");
    let expected = format!("{}:{line}:{col}: ${{DOUYIN_ACCESS_TOKEN}} is not set", config.display());
    assert!(error.contains("shop \"douyin-main\" cannot be connected") && error.contains(&expected), "{error}");
}
