//! Browser automation for the pages that have no API: one headless Chromium
//! per process, driven over the DevTools protocol (`chromiumoxide`), and the
//! steps a `browser` node declares (see `docs/rpa.md`).
//!
//! The browser is started on first use and shared by every node of the
//! process, one tab per node run; a browser that died (its process ended,
//! or the runtime that drove it is gone) is started again on the next use.
//! No step evaluates a script written in the flow: the steps only find
//! elements by CSS selector, click them, type into them and read their text.

mod steps;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::browser::{Browser, BrowserConfig};
use futures::StreamExt;
use tokio::sync::Mutex;

pub use steps::{Extract, Field, FieldType, Fill, Paginate, Run, Step, WaitFor, WhenPresent, run_steps};

/// Where Debian's `chromium` package installs the browser.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// What can go wrong driving the browser. Messages never hold a filled-in
/// value: a secret is named by its `${VAR}` reference only.
#[derive(Debug, thiserror::Error)]
pub enum RpaError {
    /// No browser at the configured path.
    #[error("chromium is not installed at {0}: install it with `apt-get install chromium` (or set `chromium:`)")]
    ChromiumMissing(PathBuf),
    /// The browser would not start or stopped answering.
    #[error("the browser could not be started: {0}")]
    Launch(String),
    /// A step failed; `step` says which (`steps[2] click "button.login"`).
    #[error("step {step} failed on {url}: {reason}")]
    Step { step: String, url: String, reason: String },
    /// A step took longer than its timeout.
    #[error("step {step} timed out after {after:?} on {url}")]
    Timeout { step: String, url: String, after: Duration },
    /// A `${VAR}` a `fill` needs is not set.
    #[error("step {step}: ${{{name}}} is not set in the environment")]
    MissingSecret { step: String, name: String },
}

/// The process's one browser, started on first use.
fn shared() -> &'static Mutex<Option<Arc<Browser>>> {
    static BROWSER: OnceLock<Mutex<Option<Arc<Browser>>>> = OnceLock::new();
    BROWSER.get_or_init(|| Mutex::new(None))
}

/// How long a dead browser may take to say it is dead.
const ALIVE_CHECK: Duration = Duration::from_secs(5);

/// A new tab in the shared browser, starting the browser (again) when it is
/// not running.
pub async fn new_page(chromium: &Path) -> Result<Page, RpaError> {
    let mut slot = shared().lock().await;
    if let Some(browser) = slot.as_ref() {
        let alive = tokio::time::timeout(ALIVE_CHECK, browser.version()).await.is_ok_and(|v| v.is_ok());
        if !alive {
            tracing::info!("The browser stopped; starting it again.");
            *slot = None;
        }
    }
    let browser = match slot.as_ref() {
        Some(browser) => browser.clone(),
        None => {
            let browser = Arc::new(launch(chromium).await?);
            *slot = Some(browser.clone());
            browser
        }
    };
    browser.new_page("about:blank").await.map_err(|e| RpaError::Launch(e.to_string()))
}

async fn launch(chromium: &Path) -> Result<Browser, RpaError> {
    if !chromium.is_file() {
        return Err(RpaError::ChromiumMissing(chromium.to_path_buf()));
    }
    // Each browser gets its own profile folder: two processes never share one.
    let profile = std::env::temp_dir().join(format!("orderflow-chromium-{}", uuid::Uuid::now_v7()));
    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .user_data_dir(&profile)
        .no_sandbox()
        .launch_timeout(Duration::from_secs(30))
        .build()
        .map_err(RpaError::Launch)?;
    let (browser, mut handler) = Browser::launch(config).await.map_err(|e| RpaError::Launch(e.to_string()))?;
    // The handler carries every message between the browser and its pages;
    // when it ends, the browser is found dead on the next use.
    tokio::spawn(async move { while handler.next().await.is_some() {} });
    Ok(browser)
}
