//! `browser`: records read from web pages by a headless Chromium.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{
    BuildContext, BuildError, Built, Emitter, Fields, NodeError, NodeKind, Output, Role, Shape, Source, Typing,
};
use crate::record::Record;
use crate::rpa::{self, DEFAULT_CHROMIUM, FieldType, RpaError, Run, Step};

/// Drives a headless Chromium through declared steps, for the pages that
/// have no API (a seller back office), and emits the records its `extract`
/// steps read. See docs/rpa.md.
///
/// The steps: `open` (a URL), `fill` (`selector`, `value`; a password only
/// as a `${NAME}` reference to an environment variable, never shown),
/// `click` (a selector), `wait_for` (`selector` or `text`, `timeout_secs`),
/// `extract` (`rows`: the repeated element; `fields`: per field a `selector`
/// inside the row and a `type`: `text`, `integer` or `number`; texts are
/// trimmed), `paginate` (`next`, `max_pages`, `steps` run on each page),
/// `when_present` (`selector`, `steps` run only when it is on the page: the
/// sign-in, skipped while the browser holds a session) and `screenshot` (a
/// PNG path). A step that finds nothing fails the run naming
/// the step, its selector and the page's address. One browser serves the
/// whole process, one tab per run; no step runs a script in the page.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BrowserSettings {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// How long one step may take, in seconds (a `wait_for` may set its own).
    #[serde(default = "default_step_timeout")]
    #[schemars(range(min = 1))]
    pub step_timeout_secs: u64,
    /// The most records one run reads; more fail the run.
    #[serde(default = "default_max_records")]
    #[schemars(range(min = 1))]
    pub max_records: usize,
    /// The Chromium program (Debian's `chromium` package by default).
    #[serde(default)]
    pub chromium: Option<PathBuf>,
}

fn default_step_timeout() -> u64 {
    15
}

fn default_max_records() -> usize {
    100_000
}

/// The `browser` node type.
pub struct BrowserNode;

impl NodeKind for BrowserNode {
    const TYPE: &'static str = "browser";
    const ROLE: Role = Role::Source;
    type Settings = BrowserSettings;

    fn example() -> &'static str {
        "orders:\n  use: browser\n  with:\n    steps:\n      - open: http://127.0.0.1:8080/backoffice/login\n      \
         - fill: { selector: \"#username\", value: \"${BACKOFFICE_USER}\" }\n      \
         - fill: { selector: \"#password\", value: \"${BACKOFFICE_PASSWORD}\" }\n      \
         - click: \"button[type=submit]\"\n      - wait_for: { selector: table.orders }\n      \
         - paginate:\n          next: a.next\n          max_pages: 50\n          steps:\n            \
         - extract:\n                rows: table.orders tbody tr\n                fields:\n                  \
         tid: { selector: .tid, type: integer }\n                  status: { selector: .status }\n"
    }

    /// Its records' fields are those its `extract` steps name: known only
    /// from the settings ([`NodeKind::typing`]).
    fn output() -> Output {
        Output::Open
    }

    fn typing(settings: &BrowserSettings, _ctx: &BuildContext) -> Result<Typing, BuildError> {
        let mut fields = Fields::default();
        extracted_fields(&settings.steps, &mut fields);
        Ok(Typing::output(Output::Records(fields)))
    }

    fn build(settings: BrowserSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        if settings.steps.is_empty() {
            return Err(BuildError::setting("steps", "give at least one step"));
        }
        let mut problems = Vec::new();
        for (i, step) in settings.steps.iter().enumerate() {
            step.check(&format!("steps[{i}]"), &mut problems);
        }
        if let Some((at, problem)) = problems.into_iter().next() {
            return Err(BuildError::setting("steps", format!("{at}: {problem}")));
        }
        Ok(Built::Source(Box::new(BrowserSource {
            chromium: settings.chromium.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM)),
            flow_dir: ctx.flow_dir.clone(),
            settings,
        })))
    }
}

/// The fields of every `extract` step, nested ones included; an empty cell
/// is `null` whatever the type.
fn extracted_fields(steps: &[Step], fields: &mut Fields) {
    for step in steps {
        match step {
            Step::Extract(extract) => {
                for (name, field) in &extract.fields {
                    let json_type = match field.field_type {
                        FieldType::Text => "string",
                        FieldType::Integer => "integer",
                        FieldType::Number => "number",
                    };
                    let shape = Shape::Value { types: vec![json_type.to_owned(), "null".to_owned()], values: &[] };
                    *fields = std::mem::take(fields).field(name, shape, "read from the page by `extract`");
                }
            }
            Step::Paginate(paginate) => extracted_fields(&paginate.steps, fields),
            Step::WhenPresent(when) => extracted_fields(&when.steps, fields),
            Step::Open(_) | Step::Fill(_) | Step::Click(_) | Step::WaitFor(_) | Step::Screenshot(_) => {}
        }
    }
}

struct BrowserSource {
    settings: BrowserSettings,
    chromium: PathBuf,
    flow_dir: PathBuf,
}

#[async_trait]
impl Source for BrowserSource {
    async fn run(&mut self, out: &mut Emitter<'_>) -> Result<(), NodeError> {
        let page = rpa::new_page(&self.chromium).await.map_err(node_error)?;
        let mut run = Run {
            page: &page,
            step_timeout: Duration::from_secs(self.settings.step_timeout_secs),
            max_records: self.settings.max_records,
            flow_dir: &self.flow_dir,
            records: Vec::new(),
        };
        let ran = rpa::run_steps(&mut run, &self.settings.steps, "").await;
        let records = std::mem::take(&mut run.records);
        // The tab goes whatever happened: the browser outlives the run.
        if let Err(error) = page.close().await {
            tracing::debug!(%error, "Closing the browser tab failed.");
        }
        ran.map_err(node_error)?;
        let batch_size = out.ctx().batch_size.max(1);
        let mut records = records.into_iter().map(Record::new).peekable();
        while records.peek().is_some() {
            out.emit(records.by_ref().take(batch_size).collect()).await?;
        }
        Ok(())
    }
}

fn node_error(error: RpaError) -> NodeError {
    match error {
        RpaError::Launch(_) | RpaError::Timeout { .. } => NodeError::transient(error.to_string()),
        _ => NodeError::permanent(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::testing::build_ctx;

    fn settings(yaml: &str) -> BrowserSettings {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_example_parses_and_builds() {
        let example: serde_json::Value = serde_saphyr::from_str(BrowserNode::example()).unwrap();
        let with: BrowserSettings = serde_json::from_value(example["orders"]["with"].clone()).unwrap();
        assert_eq!(with.steps.len(), 6);
        assert!(BrowserNode::build(with, &build_ctx()).is_ok());
    }

    #[test]
    fn its_records_have_the_fields_its_extract_steps_name_even_nested() {
        let example: serde_json::Value = serde_saphyr::from_str(BrowserNode::example()).unwrap();
        let with: BrowserSettings = serde_json::from_value(example["orders"]["with"].clone()).unwrap();
        let typing = BrowserNode::typing(&with, &build_ctx()).unwrap();
        let Output::Records(fields) = typing.output else { panic!("records of its own") };
        assert_eq!(fields.names().collect::<Vec<_>>(), ["status", "tid"]);
        assert_eq!(fields.get("tid").unwrap().shape.label(), "integer or null");
    }

    #[test]
    fn a_wait_for_needs_exactly_one_of_selector_and_text() {
        let with = settings(
            "steps:\n  - paginate:\n      next: a\n      max_pages: 2\n      steps:\n        - wait_for: {}\n",
        );
        let Err(error) = BrowserNode::build(with, &build_ctx()) else { panic!("refused") };
        assert_eq!(error.setting.as_deref(), Some("steps"));
        assert_eq!(error.message, "steps[0].paginate.steps[0].wait_for: give exactly one of `selector` and `text`");
    }

    #[test]
    fn a_malformed_reference_is_refused_at_build() {
        let with = settings("steps:\n  - fill: { selector: '#p', value: '${PASS' }\n");
        let Err(error) = BrowserNode::build(with, &build_ctx()) else { panic!("refused") };
        assert!(error.message.starts_with("steps[0].fill.value: "), "{}", error.message);
    }

    /// What `validate` says of a flow whose one node has these steps.
    fn validate(steps: &str) -> Vec<String> {
        let registry = crate::nodes::Registry::builtin();
        let env = crate::flow::CompileEnv {
            registry: &registry,
            build: &build_ctx(),
            shops: &std::collections::BTreeSet::new(),
        };
        let yaml = format!("flow: f\nnodes:\n  pages:\n    use: browser\n    with:\n      steps:\n{steps}");
        match crate::flow::compile(std::path::Path::new("f.yaml"), &yaml, &env) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn validate_points_at_a_mistyped_step_and_a_wrong_field_type() {
        let errors = validate(
            "        - clik: a.next\n        - extract: { rows: tr, fields: { tid: { selector: td, type: integr } } }\n",
        );
        assert_eq!(
            errors,
            [
                "f.yaml:7:11: node \"pages\": setting \"steps[0]\" has the key \"clik\" (did you mean \"click\"?); \
                 expected one of \"open\", \"fill\", \"click\", \"wait_for\", \"extract\", \"paginate\", \"screenshot\" or \"when_present\"",
                "f.yaml:8:69: node \"pages\": setting \"steps[1].extract.fields.tid.type\" has the string \"integr\"; \
                 expected \"text\" or \"integer\" or \"number\"",
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_chromium_is_named_with_how_to_install_it() {
        let error = rpa::new_page(std::path::Path::new("/nonexistent/chromium")).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "chromium is not installed at /nonexistent/chromium: install it with `apt-get install chromium` (or set `chromium:`)"
        );
    }
}
