//! The `browser` node against the simulator's seller back office: the
//! example flow `flows/backoffice-orders-rpa.yaml` stores the shop's orders
//! (signing in once: a second run reuses the browser's session), a selector
//! that stopped matching fails the run naming its step, and the back
//! office's password appears in no log, error or database byte.
//!
//! Chromium (Debian's `chromium`) missing: the test fails when `CI` is set
//! and is skipped with one line otherwise.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use orderflow::sim::{BACKOFFICE_PASSWORD, BACKOFFICE_USER, SimConfig};
use orderflow::store::RunStatus;
use support::rig::Rig;
use tracing_subscriber::fmt::MakeWriter;

const CHROMIUM: &str = "/usr/bin/chromium";
const FLOW: &str = "backoffice-orders-rpa.yaml";

fn chromium_present() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{CHROMIUM} is missing: install Debian's chromium package");
    let _ = writeln!(std::io::stderr(), "skipping the browser tests: {CHROMIUM} is not installed");
    false
}

/// Every log line of the test, at every level of orderflow's.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

// One test, so that setting the environment races with no other thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_back_office_flow_stores_the_shops_orders_signs_in_once_and_a_stale_selector_names_its_step() {
    if !chromium_present() {
        return;
    }
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("orderflow=trace,info")
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let store = support::sqlite().await;
    let sim = SimConfig { seed: 16, orders: 130, days: 30, mutations_per_sec: 0.0, ..SimConfig::default() };
    let rig = Rig::new(sim, store.store.clone()).await;
    // SAFETY: the only test of this binary sets them before any other thread
    // of its own reads the environment.
    unsafe {
        std::env::set_var("BACKOFFICE_URL", format!("http://{}", rig.sim.addr()));
        std::env::set_var("BACKOFFICE_USER", BACKOFFICE_USER);
        std::env::set_var("BACKOFFICE_PASSWORD", BACKOFFICE_PASSWORD);
    }

    // The list's three pages (50 a page) become the orders table.
    let report = rig.run(&rig.example(FLOW)).await;
    assert_eq!(report.nodes.iter().find(|n| n.node_id == "pages").map(|n| n.records_out), Some(130));
    let truth = rig.sim.truth().orders;
    let stored: BTreeMap<i64, _> =
        store.store.stored_orders("taobao", "backoffice").await.unwrap().into_iter().map(|o| (o.tid, o)).collect();
    assert_eq!(stored.len(), truth.len());
    for order in &truth {
        let row = stored.get(&order.tid).unwrap_or_else(|| panic!("order {} is missing", order.tid));
        assert_eq!(
            (&row.status, &row.order_type, row.modified, &row.payment),
            (&order.status, &order.order_type, order.modified, &order.payment),
            "order {}",
            order.tid
        );
    }

    assert_eq!(rig.sim.backoffice_logins(), 1, "the first run signs in");

    // The browser still holds the session: the next run signs in zero times.
    rig.run(&rig.example(FLOW)).await;
    assert_eq!(rig.sim.backoffice_logins(), 1, "the second run reuses the session");
    assert_eq!(store.store.stored_orders("taobao", "backoffice").await.unwrap().len(), truth.len());

    // The back office renamed a column's class: the run fails at the step.
    let source = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("flows").join(FLOW)).unwrap();
    let stale = rig.flow(FLOW, &source.replace("selector: .buyer }", "selector: .buyer-name }"));
    let report = rig.run_any(&stale).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap_or_default();
    assert!(
        error.contains("step steps[3].paginate.steps[0] extract \"table.orders tbody tr\" failed on http://")
            && error.contains("/backoffice/orders: row 1: field `buyer_nick`: no element matches \".buyer-name\""),
        "{error}"
    );

    // The password is in no log line, error or byte of the database.
    assert!(!error.contains(BACKOFFICE_PASSWORD));
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logged.contains("backoffice-orders-rpa"), "the logs were captured");
    assert!(!logged.contains(BACKOFFICE_PASSWORD), "the password was logged");
    let database = store.url.trim_start_matches("sqlite://").to_owned();
    for file in [database.clone(), format!("{database}-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            let needle = BACKOFFICE_PASSWORD.as_bytes();
            assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{file} holds the password");
        }
    }
}
