//! `script`: a Rhai step that can change, drop, emit and tag records.

use std::path::PathBuf;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::{
    BuildContext, BuildError, Built, Fields, NodeContext, NodeError, NodeKind, Output, Role, ScriptPlace, Shape,
    Transform, Typing,
};
use crate::record::Batch;
use crate::script::{Sandbox, Script as CompiledScript, ScriptError};

/// Runs a Rhai script once per record.
///
/// The script sees `record` (the fields, a map it may change), `tags` (an
/// array of strings it may push to or remove from) and `settings`. It ends
/// with `()` or `true` to pass the record on, `false` to drop it, a map to
/// replace it, or an array of maps to emit several records. Scripts run in a
/// sandbox: an operation limit (so `loop {}` ends with an error), string,
/// array and map size limits, a time limit, and no file, network, `eval` or
/// module access.
///
/// Validation reads the script: the fields it reads must reach it, and the
/// nodes after it may read the fields it assigns (`record.x = …`) or names
/// in `adds`. A script that builds object maps (`#{…}`) or uses `record` as
/// a whole makes records validation cannot know, so the fields read after it
/// are not checked.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptSettings {
    /// A `.rhai` file, relative to the flow file's folder. Give this or
    /// `source`.
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The script itself, inline. Give this or `file`.
    #[serde(default)]
    pub source: Option<String>,
    /// Values the script reads as `settings`.
    #[serde(default)]
    pub settings: Map<String, Json>,
    /// Fields the script adds to records in ways validation cannot see
    /// (`record[name] = …`), so that nodes after it may read them. Fields it
    /// assigns as `record.x = …` are seen without this.
    #[serde(default)]
    pub adds: Vec<String>,
}

/// The `script` node type.
pub struct Script;

impl NodeKind for Script {
    const TYPE: &'static str = "script";
    const ROLE: Role = Role::Transform;
    type Settings = ScriptSettings;

    fn example() -> &'static str {
        "enrich:\n  use: script\n  input: orders\n  with:\n    source: |\n      record.paid = record.status != \"WAIT_BUYER_PAY\";\n      if record.paid { tags.push(\"paid\"); }\n"
    }

    fn build(settings: ScriptSettings, ctx: &BuildContext) -> Result<Built, BuildError> {
        let (script, _) = compile_settings(&settings, ctx)?;
        Ok(Built::Transform(Box::new(RhaiTransform {
            script,
            sandbox: ctx.sandbox.clone(),
            settings: Json::Object(settings.settings),
        })))
    }

    /// What a script sends depends on it: see [`Typing::script_output`].
    fn output() -> Output {
        Output::Open
    }

    fn typing(settings: &ScriptSettings, ctx: &BuildContext) -> Result<Typing, BuildError> {
        let (script, file) = compile_settings(settings, ctx)?;
        let fields = script.fields();
        let declared = settings
            .adds
            .iter()
            .fold(Fields::default(), |declared, name| declared.field(name, Shape::Any, "Declared in `adds`."));
        let setting = if file.is_some() { "file" } else { "source" };
        Ok(Typing { reads: Vec::new(), output: Typing::script_output(&fields, declared) }
            .reading_script(setting, file, &fields))
    }
}

/// The script of a `script` node's settings, compiled, and its file when it
/// has one.
fn compile_settings(
    settings: &ScriptSettings,
    ctx: &BuildContext,
) -> Result<(CompiledScript, Option<PathBuf>), BuildError> {
    let (source, file, setting) = match (&settings.file, &settings.source) {
        (Some(file), None) => {
            let path = ctx.resolve(file);
            let source = std::fs::read_to_string(&path)
                .map_err(|e| BuildError::setting("file", format!("cannot read {}: {e}", path.display())))?;
            (source, Some(path), "file")
        }
        (None, Some(source)) => (source.clone(), None, "source"),
        (Some(_), Some(_)) => {
            return Err(BuildError::setting("file", "give either \"file\" or \"source\", not both"));
        }
        (None, None) => return Err(BuildError::setting("", "a script needs \"file\" or \"source\"")),
    };
    Ok((compile(&ctx.sandbox, &source, file.clone(), setting)?, file))
}

/// Compiles a script, turning a compile error into a [`BuildError`] that
/// points into the script.
pub(crate) fn compile(
    sandbox: &Sandbox,
    source: &str,
    file: Option<PathBuf>,
    setting: &str,
) -> Result<CompiledScript, BuildError> {
    sandbox.compile_script(source).map_err(|error| BuildError {
        setting: Some(setting.to_owned()),
        script: error.line.map(|line| ScriptPlace { file: file.clone(), line, col: error.column.unwrap_or(1) }),
        message: format!("the script does not compile: {}", error.message),
    })
}

/// A compiled script applied to every record; shared by `script` and the
/// node types defined by `nodes/*.rhai`.
pub(crate) struct RhaiTransform {
    pub(crate) script: CompiledScript,
    pub(crate) sandbox: Sandbox,
    pub(crate) settings: Json,
}

#[async_trait]
impl Transform for RhaiTransform {
    async fn process(&mut self, batch: Batch, _ctx: &NodeContext) -> Result<Batch, NodeError> {
        let script = self.script.clone();
        let sandbox = self.sandbox.clone();
        let settings = self.settings.clone();
        // Scripts are CPU work bounded by the sandbox's limits; keep them off
        // the async workers so other nodes keep moving meanwhile.
        let result = tokio::task::spawn_blocking(move || -> Result<Batch, ScriptError> {
            let mut out = Vec::with_capacity(batch.len());
            for record in batch {
                out.extend(sandbox.run_record(&script, record, &settings)?);
            }
            Ok(out)
        })
        .await
        .map_err(|e| NodeError::permanent(format!("the script task failed: {e}")))?;
        result.map_err(|error| NodeError::permanent(format!("script failed: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::testing::{assert_output, build_ctx, run_transform};
    use serde_json::json;

    fn build(source: &str) -> Result<Built, BuildError> {
        let settings =
            ScriptSettings { file: None, source: Some(source.into()), settings: Map::new(), adds: Vec::new() };
        Script::build(settings, &build_ctx())
    }

    #[tokio::test]
    async fn changes_drops_and_emits_records() {
        let Ok(Built::Transform(node)) = build(
            "if record.n == 1 { return false; }\nif record.n == 2 { return [#{n: 20}, #{n: 21}]; }\nrecord.seen = true;",
        ) else {
            panic!("a transform")
        };
        let out = run_transform(node, vec![json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]).await.unwrap();
        assert_eq!(out, vec![json!({"n": 20}), json!({"n": 21}), json!({"n": 3, "seen": true})]);
    }

    #[tokio::test]
    async fn what_a_script_sets_or_declares_is_its_output_and_what_it_reads_is_listed() {
        let source = "record.vip_level = record.n * 2;\nrecord[settings.name] = 1;";
        let settings = ScriptSettings {
            file: None,
            source: Some(source.into()),
            settings: Map::from_iter([("name".to_owned(), json!("band"))]),
            adds: vec!["band".into()],
        };
        let typing = Script::typing(&settings, &build_ctx()).unwrap();
        let Output::Received(added) = &typing.output else { panic!("records pass on: {:?}", typing.output) };
        assert_eq!(added.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["vip_level", "band"]);
        let read: Vec<String> = typing
            .reads
            .iter()
            .map(|read| match read {
                crate::nodes::FieldRead::Script { setting, read, .. } => format!("{setting}: {:?}", read.steps[0].0),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(read, ["source: Field(\"n\")"]);

        let Built::Transform(node) = Script::build(settings, &build_ctx()).unwrap() else { panic!("a transform") };
        let input = vec![json!({"n": 1, "other": true})];
        let out = run_transform(node, input.clone()).await.unwrap();
        assert_eq!(out, [json!({"n": 1, "other": true, "vip_level": 2, "band": 1})]);
        assert_output(&typing.output, &input, &out);
        let reshaping = ScriptSettings { source: Some("#{ total: record.n }".into()), ..settings_of("") };
        assert_eq!(Script::typing(&reshaping, &build_ctx()).unwrap().output, Output::Open);
    }

    fn settings_of(source: &str) -> ScriptSettings {
        ScriptSettings { file: None, source: Some(source.into()), settings: Map::new(), adds: Vec::new() }
    }

    #[tokio::test]
    async fn an_endless_loop_is_stopped_with_a_clear_error() {
        let Ok(Built::Transform(node)) = build("loop {}") else { panic!("a transform") };
        let error = run_transform(node, vec![json!({"n": 1})]).await.unwrap_err();
        assert!(error.message.contains("operations"), "{}", error.message);
    }

    #[test]
    fn compile_errors_point_into_the_script() {
        let Err(error) = build("let x = 1;\nlet = ;") else { panic!("should not build") };
        assert_eq!(error.script.as_ref().map(|p| p.line), Some(2));
    }

    #[test]
    fn file_and_source_together_are_refused() {
        let settings = ScriptSettings {
            file: Some("a.rhai".into()),
            source: Some("1".into()),
            settings: Map::new(),
            adds: Vec::new(),
        };
        assert!(Script::build(settings, &build_ctx()).is_err());
    }
}
