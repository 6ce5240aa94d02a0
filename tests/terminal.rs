//! The command line on a terminal and off it: the progress bar under a
//! pseudo-terminal (util-linux `script`) and not when piped, colours only on
//! a terminal and never under `NO_COLOR`, JSON log lines for log shippers,
//! and a failed command's cause printed once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use orderflow::sim::{SimConfig, Simulator};

/// What only the progress bar prints.
const BAR_TEXT: &str = " orders stored · ";
/// What only a bar counting windows prints.
const WINDOWS_TEXT: &str = " windows · ";

/// A folder with a config whose shop is `gateway` (nothing listens at the
/// default), and the database beside it.
struct Setup {
    dir: tempfile::TempDir,
    /// The shop's app secret and session, which the config reads from the
    /// environment.
    secrets: [(&'static str, String); 2],
}

impl Setup {
    fn new(gateway: &str, sim: &SimConfig, rate_limit_per_min: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let nodes = Path::new(env!("CARGO_MANIFEST_DIR")).join("nodes");
        std::fs::write(
            dir.path().join("orderflow.yaml"),
            format!(
                "nodes_dir: \"{}\"\nshops:\n  tmall:\n    platform: taobao\n    gateway: {gateway}\n    app_key: \"{}\"\n    app_secret: ${{TEST_APP_SECRET}}\n    session: ${{TEST_SESSION}}\n    rate_limit_per_min: {rate_limit_per_min}\n",
                nodes.display(),
                sim.app_key,
            ),
        )
        .unwrap();
        Self { dir, secrets: [("TEST_APP_SECRET", sim.app_secret.clone()), ("TEST_SESSION", sim.session.clone())] }
    }

    fn offline() -> Self {
        Self::new("http://127.0.0.1:9/router/rest", &SimConfig::default(), 100)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `orderflow args…` in the repository, on this setup's config and database.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
        command
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("ORDERFLOW_CONFIG", self.path("orderflow.yaml"))
            .env("ORDERFLOW_DATABASE_URL", format!("sqlite://{}", self.path("test.db").display()))
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .env_remove("ORDERFLOW_LOG_FORMAT")
            .envs(self.secrets.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null());
        command
    }
}

/// Runs `command` with its stdout and stderr on a pseudo-terminal: what the
/// terminal showed, both streams together.
fn on_terminal(command: &Command) -> Output {
    let mut line = quote(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&quote(&arg.to_string_lossy()));
    }
    let mut script = Command::new("script");
    script.args(["-qfec", &line, "/dev/null"]).stdin(Stdio::null());
    if let Some(dir) = command.get_current_dir() {
        script.current_dir(dir);
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    script.output().expect("util-linux `script` runs")
}

fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether `text` holds an ANSI colour (SGR) sequence: ESC [ digits; m.
/// Cursor movements a bar redraws with are not colours.
fn has_colour(text: &str) -> bool {
    text.split('\x1b').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|rest| {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';')).unwrap_or(rest.len());
            rest[end..].starts_with('m')
        })
    })
}

#[test]
fn the_bar_shows_on_a_terminal_in_colour_unless_no_color_and_never_when_piped() {
    let setup = Setup::offline();
    let run = |no_color: bool| {
        let mut command = setup.command(&["run", "flows/example-orders.yaml"]);
        if no_color {
            command.env("NO_COLOR", "1");
        }
        command
    };

    let coloured = on_terminal(&run(false));
    let shown = text(&coloured.stdout);
    assert!(coloured.status.success(), "{shown}");
    assert!(shown.contains(BAR_TEXT), "the bar is drawn: {shown:?}");
    assert!(!shown.contains(WINDOWS_TEXT), "a flow with no windows counts none: {shown:?}");
    assert!(shown.contains("of flow \"example-orders\": succeeded"), "{shown:?}");
    assert!(has_colour(&shown), "a terminal gets colours: {shown:?}");

    let plain = on_terminal(&run(true));
    let shown = text(&plain.stdout);
    assert!(plain.status.success(), "{shown}");
    assert!(shown.contains(BAR_TEXT), "NO_COLOR keeps the bar: {shown:?}");
    assert!(!has_colour(&shown), "NO_COLOR: no colour: {shown:?}");

    let piped = run(false).output().unwrap();
    let (stdout, stderr) = (text(&piped.stdout), text(&piped.stderr));
    assert!(piped.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("of flow \"example-orders\": succeeded"), "{stdout}");
    assert!(!stderr.contains(BAR_TEXT) && !stdout.contains(BAR_TEXT), "no bar when piped: {stderr}");
    assert!(!stderr.contains('\x1b') && !stdout.contains('\x1b'), "no escape sequence when piped: {stderr:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_shows_its_windows_orders_calls_and_quota_waits_on_a_terminal() {
    let sim_config = SimConfig { orders: 60, days: 1, ..SimConfig::default() };
    let sim = Simulator::start(sim_config.clone(), ([127, 0, 0, 1], 0).into()).await.unwrap();
    // 40 calls a minute: 1.5 s between calls, a wait the bar shows.
    let setup = Setup::new(&sim.gateway_url(), &sim_config, 40);
    let flow = setup.path("backfill.yaml");
    std::fs::write(
        &flow,
        "flow: backfill\nshop: tmall\nnodes:\n  all: {use: fetch_full, with: {days: 2, page_size: 30}}\n  save: {use: store_orders, input: all}\n",
    )
    .unwrap();
    let command = setup.command(&["run", flow.to_str().unwrap()]);
    let shown = tokio::task::spawn_blocking(move || on_terminal(&command)).await.unwrap();
    let shown_text = text(&shown.stdout);
    assert!(shown.status.success(), "{shown_text}");
    assert!(shown_text.contains("backfill [") && shown_text.contains(WINDOWS_TEXT), "{shown_text:?}");
    assert!(shown_text.contains("60 orders stored"), "the last state stays on screen: {shown_text:?}");
    assert!(shown_text.contains(": rate limit"), "a quota wait is shown as such: {shown_text:?}");
    // The final line counts the windows read and every call that went out.
    let last = shown_text.rsplit('\r').find(|line| line.contains(WINDOWS_TEXT)).unwrap_or_default();
    let windows = last.split(WINDOWS_TEXT).next().and_then(|head| head.rsplit(' ').next()).unwrap_or_default();
    let (done, total) = windows.split_once('/').unwrap_or_default();
    assert!(done == total && done.parse::<u32>().is_ok_and(|n| n >= 2), "windows {windows:?} in {last:?}");
    let calls = sim.calls();
    assert!(last.contains(&format!("{} calls", calls.total)), "{calls:?} in {last:?}");
    sim.shutdown().await;
}

#[test]
fn json_logs_are_one_object_a_line() {
    let setup = Setup::offline();
    let mut command = setup.command(&["--log-format", "json", "run", "flows/example-orders.yaml"]);
    let out = command.env("RUST_LOG", "orderflow=debug").output().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "a debug run logs something");
    for line in lines {
        let event: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(event["level"].is_string() && event["fields"]["message"].is_string(), "{line}");
    }
    let env_set = setup
        .command(&["run", "flows/example-orders.yaml"])
        .env("ORDERFLOW_LOG_FORMAT", "json")
        .env("RUST_LOG", "orderflow=debug")
        .output()
        .unwrap();
    let first = text(&env_set.stderr).lines().next().map(str::to_owned).unwrap_or_default();
    assert!(serde_json::from_str::<serde_json::Value>(&first).is_ok(), "ORDERFLOW_LOG_FORMAT=json: {first}");
}

/// Each of `needles` occurs exactly once in `haystack`.
fn once(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert_eq!(haystack.matches(needle).count(), 1, "{needle:?} once in: {haystack}");
    }
}

#[test]
fn a_failed_command_prints_each_cause_once() {
    let setup = Setup::offline();
    let unreachable = setup
        .command(&["run", "flows/example-orders.yaml"])
        .env("ORDERFLOW_DATABASE_URL", "postgres://orderflow@127.0.0.1:9/nowhere")
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(1));
    let stderr = text(&unreachable.stderr);
    assert!(stderr.starts_with("error: opening the database: "), "{stderr}");
    once(&stderr, &["127.0.0.1:9", "Connection refused", "error:"]);

    let missing = setup.command(&["run", "flows/no-such-flow.yaml"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let stderr = text(&missing.stderr);
    once(&stderr, &["No such file", "error:"]);
}

/// The display column at which `needle` starts in `line`.
fn column_of(line: &str, needle: &str) -> usize {
    line.find(needle).map(|at| line[..at].chars().count()).unwrap_or_else(|| panic!("{needle:?} in {line:?}"))
}

#[tokio::test]
async fn runs_and_status_keep_their_columns_in_line_whatever_the_widths() {
    let setup = Setup::offline();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("flows/data/orders.jsonl");
    let flow = setup.path("long-ids.yaml");
    std::fs::write(
        &flow,
        format!(
            "flow: long-ids\nnodes:\n  orders_read_from_the_export_file: {{use: read_jsonl, with: {{path: \"{}\"}}}}\n  paid: {{use: filter, input: orders_read_from_the_export_file, with: {{condition: 'record.status != \"WAIT_BUYER_PAY\"'}}}}\n",
            data.display()
        ),
    )
    .unwrap();
    let run = setup.command(&["run", flow.to_str().unwrap()]).output().unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    let summary = text(&run.stdout);
    let rows: Vec<&str> = summary.lines().filter(|line| line.contains("succeeded")).collect();
    let nodes: Vec<&&str> = rows.iter().filter(|line| line.contains("read_jsonl") || line.contains("filter")).collect();
    assert_eq!(nodes.len(), 2, "{summary}");
    assert_eq!(column_of(nodes[0], "read_jsonl"), column_of(nodes[1], "filter"), "{summary}");
    assert_eq!(column_of(nodes[0], "succeeded"), column_of(nodes[1], "succeeded"), "{summary}");

    let store =
        orderflow::store::Store::connect(&format!("sqlite://{}", setup.path("test.db").display())).await.unwrap();
    let now = chrono::Utc::now();
    for (app_key, seconds) in [("1", 600), ("a-much-longer-app-key-20240501", 90)] {
        let ban = orderflow::store::AppBan {
            platform: "taobao".into(),
            app_key: app_key.into(),
            until: now + chrono::Duration::seconds(seconds),
            reason: "code 7 (App Call Limited)".into(),
        };
        store.save_ban(&ban, now).await.unwrap();
    }
    let status = setup.command(&["status"]).output().unwrap();
    let shown = text(&status.stdout);
    let bans: Vec<&str> = shown.lines().filter(|line| line.contains("banned until")).collect();
    assert_eq!(bans.len(), 2, "{shown}");
    for column in ["banned until", "code 7"] {
        assert_eq!(column_of(bans[0], column), column_of(bans[1], column), "{column}: {shown}");
    }
}

/// The last `chars` characters of `text`.
fn tail(text: &str, chars: usize) -> &str {
    &text[text.char_indices().rev().nth(chars).map_or(0, |(at, _)| at)..]
}

#[test]
fn the_demo_takes_each_bar_off_before_its_line_and_never_draws_over_a_line() {
    let setup = Setup::offline();
    let database = format!("sqlite://{}", setup.path("demo.db").display());
    let shown = on_terminal(&setup.command(&["demo", "--orders", "300", "--database", &database]));
    let output = text(&shown.stdout);
    assert!(shown.status.success(), "{output}");
    for line in [
        "backfill of tmall-main (taobao): 300 orders stored",
        "backfill of douyin-main (douyin)",
        "incremental (both shops, one graph)",
    ] {
        let at = output.find(line).unwrap_or_else(|| panic!("{line:?} in {output:?}"));
        // It starts a line of its own: no bar text before it.
        let before = &output[..at];
        let clean = ["\n", "\r\x1b[2K", "\r\x1b[2K\x1b[1A"].iter().any(|start| before.ends_with(start));
        assert!(clean, "{line:?} after {:?}", tail(before, 80));
        let rest = &output[at..];
        let end = rest.find("\r\n").unwrap_or_else(|| panic!("{line:?} ends its line: {rest:?}"));
        // A bar cleared after the line was printed would move the cursor up
        // onto it and erase it.
        let after = &rest[end + 2..];
        assert!(!after.starts_with("\x1b[1A") && !after.starts_with("\x1b[2K"), "{line:?} then {after:?}");
        assert!(!rest[..end].contains('\x1b'), "nothing drawn inside the line: {:?}", &rest[..end]);
    }
    assert!(output.contains(" orders stored · "), "the runs had bars: {output:?}");
}
