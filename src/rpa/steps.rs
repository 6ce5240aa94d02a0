//! The steps a `browser` node declares and how each runs on a page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::element::Element;
use chromiumoxide::page::ScreenshotParams;
use futures::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::RpaError;

/// One thing the browser does, in the order written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Opens a URL in the tab and waits until it has loaded; `${NAME}` is
    /// replaced by the environment variable `NAME` (the back office's
    /// address).
    Open(String),
    /// Types a value into the field a CSS selector finds.
    Fill(Fill),
    /// Clicks the element a CSS selector finds.
    Click(String),
    /// Waits until an element or a text appears on the page.
    WaitFor(WaitFor),
    /// Turns each element a selector finds into one record.
    Extract(Extract),
    /// Runs its steps on each page, then clicks `next` while it is enabled.
    Paginate(Paginate),
    /// Saves a PNG of the whole page, relative to the flow file's folder.
    Screenshot(PathBuf),
    /// Runs its steps only when an element is on the page now: the sign-in
    /// steps, run only when the sign-in form shows (the browser still holds
    /// the session of an earlier run otherwise).
    WhenPresent(WhenPresent),
}

/// A `when_present` step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WhenPresent {
    /// The CSS selector looked for, without waiting (`#password`).
    pub selector: String,
    /// The steps run when it is there.
    pub steps: Vec<Step>,
}

/// A `fill` step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Fill {
    /// The CSS selector of the field.
    pub selector: String,
    /// What to type. `${NAME}` is replaced by the environment variable
    /// `NAME` when the step runs; a password field only takes a value that
    /// is a reference, so that no password is ever written in a flow. The
    /// typed value never appears in a log or an error.
    pub value: String,
}

/// A `wait_for` step: give `selector` or `text`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitFor {
    /// A CSS selector that must match an element.
    #[serde(default)]
    pub selector: Option<String>,
    /// A text the page must show.
    #[serde(default)]
    pub text: Option<String>,
    /// How long to wait, in seconds (the node's `step_timeout_secs` unless
    /// given).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_secs: Option<u64>,
}

/// An `extract` step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Extract {
    /// The CSS selector of the repeated element: one record per match
    /// (`table.orders tbody tr`).
    pub rows: String,
    /// The record's fields: each a selector inside the row and a type.
    pub fields: BTreeMap<String, Field>,
    /// Whether a page with no row is fine. By default it fails the step: a
    /// selector that stopped matching must not read as "no orders".
    #[serde(default)]
    pub allow_empty: bool,
}

/// One field of an extracted record.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// The CSS selector of the element inside the row whose text is read.
    pub selector: String,
    /// How the trimmed text is read; an empty text is `null` whatever the type.
    #[serde(default, rename = "type")]
    pub field_type: FieldType,
}

/// How a field's text becomes a value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// The text as it is (trimmed).
    #[default]
    Text,
    /// A whole number (`1,234` is read as 1234).
    Integer,
    /// A decimal number (`¥1,234.50` is not: write the selector around the
    /// digits).
    Number,
}

/// A `paginate` step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Paginate {
    /// The CSS selector of the "next page" control. The pages end when it is
    /// missing, or has a `disabled` or `aria-disabled="true"` attribute.
    pub next: String,
    /// The most pages read. A next page still enabled after these fails the
    /// step rather than leave records out unseen.
    #[schemars(range(min = 1))]
    pub max_pages: u32,
    /// The steps run on each page (usually one `extract`).
    pub steps: Vec<Step>,
}

impl Step {
    /// The step's name and target, as errors show it: `click "a.next"`.
    /// Never a filled-in value.
    fn describe(&self) -> String {
        match self {
            Step::Open(url) => format!("open {url:?}"),
            Step::Fill(fill) => format!("fill {:?}", fill.selector),
            Step::Click(selector) => format!("click {selector:?}"),
            Step::WaitFor(wait) => match (&wait.selector, &wait.text) {
                (Some(selector), _) => format!("wait_for {selector:?}"),
                (None, text) => format!("wait_for text {:?}", text.as_deref().unwrap_or_default()),
            },
            Step::Extract(extract) => format!("extract {:?}", extract.rows),
            Step::Paginate(paginate) => format!("paginate {:?}", paginate.next),
            Step::Screenshot(path) => format!("screenshot {:?}", path.display().to_string()),
            Step::WhenPresent(when) => format!("when_present {:?}", when.selector),
        }
    }

    /// What is wrong with the step that the schema cannot say, by setting
    /// path under `at` (`steps[2].wait_for`).
    pub fn check(&self, at: &str, problems: &mut Vec<(String, String)>) {
        match self {
            Step::WaitFor(wait) if wait.selector.is_some() == wait.text.is_some() => {
                problems.push((format!("{at}.wait_for"), "give exactly one of `selector` and `text`".into()));
            }
            Step::Open(url) => {
                if let Err(reason) = references(url) {
                    problems.push((format!("{at}.open"), reason));
                }
            }
            Step::Fill(fill) => {
                if let Err(reason) = references(&fill.value) {
                    problems.push((format!("{at}.fill.value"), reason));
                }
            }
            Step::Extract(extract) if extract.fields.is_empty() => {
                problems.push((format!("{at}.extract.fields"), "name at least one field".into()));
            }
            Step::Paginate(Paginate { steps, .. }) | Step::WhenPresent(WhenPresent { steps, .. }) => {
                let kind = if matches!(self, Step::Paginate(_)) { "paginate" } else { "when_present" };
                if steps.is_empty() {
                    problems.push((format!("{at}.{kind}.steps"), "give at least one step".into()));
                }
                for (i, step) in steps.iter().enumerate() {
                    step.check(&format!("{at}.{kind}.steps[{i}]"), problems);
                }
            }
            _ => {}
        }
    }
}

/// The names of the `${NAME}` references in `text`, or why one is malformed.
fn references(text: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "a `${` is not closed by `}`".to_owned())?;
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{name}}}` is not a variable name (letters, digits and `_`)"));
        }
        names.push(name);
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// `text` with each `${NAME}` replaced by the environment's value.
fn resolve(text: &str, step: &str) -> Result<String, RpaError> {
    let mut resolved = text.to_owned();
    let names =
        references(text).map_err(|reason| RpaError::Step { step: step.to_owned(), url: String::new(), reason })?;
    for name in names {
        let value = std::env::var(name)
            .map_err(|_| RpaError::MissingSecret { step: step.to_owned(), name: name.to_owned() })?;
        resolved = resolved.replace(&format!("${{{name}}}"), &value);
    }
    Ok(resolved)
}

/// A node's run of its steps on one tab: the limits, and the records read so
/// far.
pub struct Run<'a> {
    /// The tab.
    pub page: &'a Page,
    /// How long one step may take.
    pub step_timeout: Duration,
    /// The most records the run may read.
    pub max_records: usize,
    /// Where relative screenshot paths start.
    pub flow_dir: &'a Path,
    /// The records extracted, in page order.
    pub records: Vec<Map<String, Json>>,
}

/// How often `wait_for` and a page change are looked for.
const POLL: Duration = Duration::from_millis(100);

/// Runs `steps` in order; `prefix` places them in the settings
/// (`steps[3].paginate.`) for errors.
pub fn run_steps<'r, 'a: 'r>(
    run: &'r mut Run<'a>,
    steps: &'r [Step],
    prefix: &'r str,
) -> BoxFuture<'r, Result<(), RpaError>> {
    Box::pin(async move {
        for (i, step) in steps.iter().enumerate() {
            let label = format!("{prefix}steps[{i}] {}", step.describe());
            match step {
                Step::WhenPresent(when) => {
                    let present = tokio::time::timeout(run.step_timeout, run.page.find_element(when.selector.as_str()))
                        .await
                        .is_ok_and(|found| found.is_ok());
                    if present {
                        run_steps(run, &when.steps, &format!("{prefix}steps[{i}].when_present.")).await?;
                    }
                }
                Step::Paginate(paginate) => {
                    paginate_pages(run, paginate, &format!("{prefix}steps[{i}].paginate."), &label).await?
                }
                _ => {
                    let limit = match step {
                        Step::WaitFor(WaitFor { timeout_secs: Some(secs), .. }) => Duration::from_secs(*secs),
                        _ => run.step_timeout,
                    };
                    match tokio::time::timeout(limit, run_one(run, step, &label)).await {
                        Ok(result) => result?,
                        Err(_) => {
                            return Err(RpaError::Timeout {
                                step: label,
                                url: current_url(run.page).await,
                                after: limit,
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    })
}

async fn run_one(run: &mut Run<'_>, step: &Step, label: &str) -> Result<(), RpaError> {
    let page = run.page;
    let failed =
        |reason: String| async move { RpaError::Step { step: label.to_owned(), url: current_url(page).await, reason } };
    match step {
        Step::Open(url) => {
            let url = resolve(url, label)?;
            if let Err(error) = page.goto(url).await {
                return Err(failed(error.to_string()).await);
            }
        }
        Step::Fill(fill) => {
            let field = find(page, &fill.selector).await.map_err(|e| (e, ()));
            let field = match field {
                Ok(field) => field,
                Err((reason, ())) => return Err(failed(reason).await),
            };
            let is_password =
                field.attribute("type").await.ok().flatten().is_some_and(|t| t.eq_ignore_ascii_case("password"));
            if is_password && !fill.value.contains("${") {
                return Err(failed(
                    "a password field takes only a `${NAME}` reference, never a value written in the flow".into(),
                )
                .await);
            }
            let value = resolve(&fill.value, label)?;
            let typed = async { field.click().await?.type_str(&value).await.map(|_| ()) }.await;
            if let Err(error) = typed {
                return Err(failed(format!("cannot type into the field: {error}")).await);
            }
        }
        Step::Click(selector) => {
            let clicked = match find(page, selector).await {
                Ok(element) => element.click().await.map(|_| ()).map_err(|e| format!("cannot click it: {e}")),
                Err(reason) => Err(reason),
            };
            if let Err(reason) = clicked {
                return Err(failed(reason).await);
            }
        }
        Step::WaitFor(wait) => loop {
            let seen = match (&wait.selector, &wait.text) {
                (Some(selector), _) => page.find_element(selector.as_str()).await.is_ok(),
                (None, Some(text)) => page_text(page).await.is_some_and(|shown| shown.contains(text.as_str())),
                (None, None) => true,
            };
            if seen {
                break;
            }
            tokio::time::sleep(POLL).await;
        },
        Step::Extract(extract) => {
            let read = read_rows(run, extract).await;
            if let Err(reason) = read {
                return Err(failed(reason).await);
            }
        }
        Step::Screenshot(path) => {
            let path = run.flow_dir.join(path);
            let params = ScreenshotParams::builder().full_page(true).build();
            if let Err(error) = page.save_screenshot(params, &path).await {
                return Err(failed(format!("cannot save {}: {error}", path.display())).await);
            }
        }
        Step::Paginate(_) | Step::WhenPresent(_) => unreachable!("run_steps runs the steps that hold steps itself"),
    }
    Ok(())
}

/// Runs the paginated steps on each page and moves on while `next` is
/// enabled, up to `max_pages`.
async fn paginate_pages(run: &mut Run<'_>, paginate: &Paginate, prefix: &str, label: &str) -> Result<(), RpaError> {
    for page_number in 1..=paginate.max_pages {
        run_steps(run, &paginate.steps, prefix).await?;
        let next = match run.page.find_element(paginate.next.as_str()).await {
            Ok(next) => next,
            Err(_) => return Ok(()),
        };
        if is_disabled(&next).await {
            return Ok(());
        }
        if page_number == paginate.max_pages {
            break;
        }
        let before = current_url(run.page).await;
        let moved = async {
            next.click().await.map_err(|e| format!("cannot click it: {e}"))?;
            // The next page is loaded when the address has changed and the
            // navigation it started has ended.
            while current_url(run.page).await == before {
                tokio::time::sleep(POLL).await;
            }
            run.page.wait_for_navigation().await.map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        };
        match tokio::time::timeout(run.step_timeout, moved).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(RpaError::Step { step: label.to_owned(), url: before, reason }),
            Err(_) => return Err(RpaError::Timeout { step: label.to_owned(), url: before, after: run.step_timeout }),
        }
    }
    Err(RpaError::Step {
        step: label.to_owned(),
        url: current_url(run.page).await,
        reason: format!("the next page is still enabled after max_pages ({})", paginate.max_pages),
    })
}

async fn is_disabled(element: &Element) -> bool {
    let disabled = element.attribute("disabled").await.ok().flatten().is_some();
    let aria = element.attribute("aria-disabled").await.ok().flatten().is_some_and(|v| v == "true");
    disabled || aria
}

/// One record per row the rows selector finds.
async fn read_rows(run: &mut Run<'_>, extract: &Extract) -> Result<(), String> {
    let rows = run.page.find_elements(extract.rows.as_str()).await.unwrap_or_default();
    if rows.is_empty() && !extract.allow_empty {
        return Err(format!("no element matches {:?}", extract.rows));
    }
    for (n, row) in rows.iter().enumerate() {
        if run.records.len() >= run.max_records {
            return Err(format!("more than max_records ({}) records", run.max_records));
        }
        let mut record = Map::new();
        for (name, field) in &extract.fields {
            let cell = row
                .find_element(field.selector.as_str())
                .await
                .map_err(|_| format!("row {}: field `{name}`: no element matches {:?}", n + 1, field.selector))?;
            let text = cell.inner_text().await.map_err(|e| format!("row {}: field `{name}`: {e}", n + 1))?;
            let value = typed(text.as_deref().unwrap_or_default().trim(), field.field_type)
                .map_err(|reason| format!("row {}: field `{name}`: {reason}", n + 1))?;
            record.insert(name.clone(), value);
        }
        run.records.push(record);
    }
    Ok(())
}

/// `text` (already trimmed) read as `field_type`.
fn typed(text: &str, field_type: FieldType) -> Result<Json, String> {
    if text.is_empty() {
        return Ok(Json::Null);
    }
    let digits = || text.replace(',', "");
    match field_type {
        FieldType::Text => Ok(Json::String(text.to_owned())),
        FieldType::Integer => {
            digits().parse::<i64>().map(Json::from).map_err(|_| format!("{text:?} is not a whole number"))
        }
        FieldType::Number => digits()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number)
            .ok_or_else(|| format!("{text:?} is not a number")),
    }
}

async fn find(page: &Page, selector: &str) -> Result<Element, String> {
    page.find_element(selector).await.map_err(|_| format!("no element matches {selector:?}"))
}

async fn page_text(page: &Page) -> Option<String> {
    page.find_element("body").await.ok()?.inner_text().await.ok().flatten()
}

async fn current_url(page: &Page) -> String {
    page.url().await.ok().flatten().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_trimmed_text_typed_and_empty_is_null() {
        assert_eq!(typed("1,234", FieldType::Integer), Ok(Json::from(1234)));
        assert_eq!(typed("3000000000000000123", FieldType::Integer), Ok(Json::from(3_000_000_000_000_000_123_i64)));
        assert_eq!(typed("12.50", FieldType::Number), Ok(serde_json::json!(12.5)));
        assert_eq!(typed("", FieldType::Integer), Ok(Json::Null));
        assert!(typed("abc", FieldType::Integer).unwrap_err().contains("\"abc\" is not a whole number"));
    }

    #[test]
    fn references_are_named_and_malformed_ones_refused() {
        assert_eq!(references("${USER}-${PASS_1}"), Ok(vec!["USER", "PASS_1"]));
        assert!(references("${oops").is_err());
        assert!(references("${a b}").is_err());
    }

    #[test]
    fn a_missing_variable_is_named_and_its_value_never_shown() {
        let error = resolve("${ORDERFLOW_RPA_SURELY_UNSET}", "steps[1] fill \"#password\"").unwrap_err();
        assert_eq!(
            error.to_string(),
            "step steps[1] fill \"#password\": ${ORDERFLOW_RPA_SURELY_UNSET} is not set in the environment"
        );
    }
}
