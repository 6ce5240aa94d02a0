//! The Rhai sandbox that runs ops staff's custom steps and `when:` filters.
//!
//! Scripts are written by people, not vetted code, so every run is bounded:
//! operations, wall-clock time, data sizes, call depth and expression depth.
//! Rhai's core has no file or network access and none is registered here;
//! `eval` and `import` are disabled so a script is exactly what was reviewed;
//! `sleep`, which no time limit can interrupt, fails; `print` and `debug`
//! output is capped per call.

pub mod convert;
pub mod fields;
pub mod header;

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{AST, Array, Dynamic, Engine, EvalAltResult, ParseError, ParseErrorType, Position, Scope};
use serde_json::Value;

use crate::record::Record;

pub use convert::{dynamic_to_json, fields_to_map, json_to_dynamic, map_to_fields};
pub use fields::{FieldUse, Place, ScriptFields, Step};
pub use header::{NodeHeader, SettingDecl, SettingKind, parse_header};

/// Resource limits for every script run by one [`Sandbox`].
///
/// Rhai treats 0 as "unlimited" for the counters; `max_duration` of zero means
/// every run times out at its first check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Rhai operations per call (roughly: expressions evaluated).
    pub max_operations: u64,
    /// Bytes in any one string.
    pub max_string_size: usize,
    /// Elements in arrays (counted across nested arrays).
    pub max_array_size: usize,
    /// Entries in object maps (counted across nested maps).
    pub max_map_size: usize,
    /// Nested function calls, which bounds recursion.
    pub max_call_levels: usize,
    /// Nesting depth of expressions, checked when compiling.
    pub max_expr_depth: usize,
    /// Wall-clock time per call.
    pub max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 1_000_000,
            max_string_size: 1024 * 1024,
            max_array_size: 100_000,
            max_map_size: 10_000,
            max_call_levels: 64,
            max_expr_depth: 64,
            max_duration: Duration::from_secs(5),
        }
    }
}

/// What went wrong with a script, so callers can tell a bug in the script from
/// a script that merely ran into its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptErrorKind {
    /// The script (or node header) does not parse, or uses an undefined variable.
    Compile,
    /// The script failed while running (bad types, `throw`, wrong result, …).
    Runtime,
    /// The script exceeded [`Limits::max_operations`].
    OperationLimit,
    /// The script exceeded [`Limits::max_duration`].
    Timeout,
    /// A string, array or map grew past its limit, or calls nested past
    /// [`Limits::max_call_levels`].
    SizeLimit,
}

/// An error compiling or running a script, with the script position where known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", position_prefix(*.line, *.column))]
pub struct ScriptError {
    /// The class of error.
    pub kind: ScriptErrorKind,
    /// 1-based line in the script, if known.
    pub line: Option<usize>,
    /// 1-based column in the script, if known.
    pub column: Option<usize>,
    /// Lowercase description, without the position.
    pub message: String,
}

fn position_prefix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

impl ScriptError {
    /// An error without a position.
    pub fn new(kind: ScriptErrorKind, message: impl Into<String>) -> Self {
        Self { kind, line: None, column: None, message: message.into() }
    }

    fn at(mut self, pos: Position) -> Self {
        self.line = pos.line();
        self.column = pos.position();
        self
    }
}

/// A compiled script (statements), cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct Script {
    ast: Arc<AST>,
}

impl Script {
    /// The record fields the script reads and sets.
    pub fn fields(&self) -> ScriptFields {
        ScriptFields::of(&self.ast)
    }
}

/// A compiled `when:` expression, cheap to clone and share between threads.
#[derive(Debug, Clone)]
pub struct Condition {
    ast: Arc<AST>,
}

impl Condition {
    /// The record fields the expression reads.
    pub fn fields(&self) -> ScriptFields {
        ScriptFields::of(&self.ast)
    }
}

/// A configured Rhai engine plus its limits; clones share the engine.
#[derive(Clone)]
pub struct Sandbox {
    engine: Arc<Engine>,
    limits: Limits,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("limits", &self.limits).finish_non_exhaustive()
    }
}

thread_local! {
    // The engine is shared by all threads, but each thread runs one script at
    // a time, so the deadline of the current call lives with the thread.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    // Bytes of `print`/`debug` output the current call has logged.
    static PRINTED: Cell<usize> = const { Cell::new(0) };
}

/// Sets the thread's deadline for one call and restores the previous one on
/// drop, so an early return or panic cannot leave a stale deadline behind. The
/// outermost call also starts a fresh print budget; a nested call spends its
/// caller's.
struct CallGuard {
    previous: Option<Instant>,
}

impl CallGuard {
    fn start(max: Duration) -> Self {
        let ours = Instant::now().checked_add(max);
        let previous = DEADLINE.get();
        if previous.is_none() {
            PRINTED.set(0);
        }
        // A nested call must not extend the deadline of the call around it.
        let effective = match (previous, ours) {
            (Some(p), Some(o)) => Some(p.min(o)),
            (p, o) => p.or(o),
        };
        DEADLINE.set(effective);
        Self { previous }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        DEADLINE.set(self.previous);
    }
}

/// What may still be logged of one `print`/`debug` message in this call: at
/// most [`MAX_PRINT_LINE`] bytes of it, and nothing once the call has logged
/// [`MAX_PRINT_PER_CALL`]. Each message also counts a line's overhead, so a
/// loop of empty prints is bounded too.
fn within_print_budget(text: &str) -> Option<String> {
    const LINE_OVERHEAD: usize = 64;
    let used = PRINTED.get();
    if used >= MAX_PRINT_PER_CALL {
        return None;
    }
    let mut cut = text.len().min(MAX_PRINT_LINE).min(MAX_PRINT_PER_CALL - used);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let spent = used + cut + LINE_OVERHEAD;
    PRINTED.set(spent);
    let mut logged = text[..cut].to_owned();
    if cut < text.len() {
        logged.push_str(&format!(" … ({} more bytes not logged)", text.len() - cut));
    }
    if spent >= MAX_PRINT_PER_CALL {
        logged.push_str(&format!(
            " (this call's print output reached its limit of {} KiB; later prints are dropped)",
            MAX_PRINT_PER_CALL / 1024
        ));
    }
    Some(logged)
}

/// How many operations pass between clock reads; reading the clock on every
/// operation would cost more than most scripts do.
const CLOCK_CHECK_EVERY: u64 = 256;

const SCRIPT_TARGET: &str = "orderflow::script";

/// Symbols a script may not use, refused when the flow is loaded: they would
/// run code nobody reviewed.
const DISABLED: &[&str] = &["eval", "import"];

const SLEEP_REFUSED: &str = "`sleep` is not allowed in scripts: it would hold the worker past every time limit";

/// The longest single `print`/`debug` message logged; the rest is cut.
const MAX_PRINT_LINE: usize = 1024;

/// The most `print`/`debug` output one script call may log: a script printing
/// in a loop fills the log, not the disk.
const MAX_PRINT_PER_CALL: usize = 16 * 1024;

impl Sandbox {
    /// A sandbox enforcing `limits` on every script it compiles and runs.
    pub fn new(limits: Limits) -> Sandbox {
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits.max_operations)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_max_call_levels(limits.max_call_levels)
            .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
            .set_strict_variables(true)
            .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
        // `import` would also fail at run time through the dummy resolver;
        // disabling it reports the mistake when the flow is loaded instead.
        for symbol in DISABLED {
            engine.disable_symbol(*symbol);
        }
        // Rhai's `sleep` blocks the worker thread where neither the time
        // limit nor the node's `timeout:` can interrupt it (limits are checked
        // between operations, and a sleep is one). It is a function, not a
        // symbol, so it is replaced by one that refuses.
        engine.register_fn("sleep", |_: rhai::INT| -> Result<(), Box<EvalAltResult>> { Err(SLEEP_REFUSED.into()) });
        engine.register_fn("sleep", |_: rhai::FLOAT| -> Result<(), Box<EvalAltResult>> { Err(SLEEP_REFUSED.into()) });
        engine.on_progress(|ops| {
            if ops % CLOCK_CHECK_EVERY != 0 {
                return None;
            }
            let deadline = DEADLINE.get()?;
            (Instant::now() >= deadline).then(|| Dynamic::from("time limit"))
        });
        engine.on_print(|text| {
            if let Some(text) = within_print_budget(text) {
                tracing::info!(target: SCRIPT_TARGET, "{text}");
            }
        });
        engine.on_debug(|text, source, pos| {
            if let Some(text) = within_print_budget(text) {
                tracing::debug!(target: SCRIPT_TARGET, source, line = pos.line(), "{text}");
            }
        });
        Sandbox { engine: Arc::new(engine), limits }
    }

    /// The limits this sandbox enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A whole script (statements).
    ///
    /// `record`, `tags` and `settings` are known variables; any other
    /// undeclared variable is a compile error.
    pub fn compile_script(&self, source: &str) -> Result<Script, ScriptError> {
        let scope = compile_scope(&["record", "tags", "settings"]);
        let ast = self
            .engine
            .compile_with_scope(&scope, source)
            .map_err(|e| self.parse_error(e, &["record", "tags", "settings"]))?;
        Ok(Script { ast: Arc::new(ast) })
    }

    /// A single expression for `when:` filters, e.g. `record.status == "PAID" && "vip" in tags`.
    pub fn compile_condition(&self, source: &str) -> Result<Condition, ScriptError> {
        let scope = compile_scope(&["record", "tags"]);
        let ast = self
            .engine
            .compile_expression_with_scope(&scope, source)
            .map_err(|e| self.parse_error(e, &["record", "tags"]))?;
        Ok(Condition { ast: Arc::new(ast) })
    }

    /// A non-bool result is a runtime error that says what type it got.
    pub fn eval_condition(&self, condition: &Condition, record: &Record) -> Result<bool, ScriptError> {
        let mut scope = Scope::new();
        scope.push_constant_dynamic("record", Dynamic::from_map(fields_to_map(&record.fields)));
        scope.push_constant_dynamic("tags", tags_to_dynamic(record));
        let result = self.eval(&mut scope, &condition.ast)?;
        result.as_bool().map_err(|_| {
            ScriptError::new(
                ScriptErrorKind::Runtime,
                format!("a condition must give true or false, but this one gave a {}", type_label(&result)),
            )
        })
    }

    /// Runs the script once for one record.
    ///
    /// Scope: `record` (object map of the fields), `tags` (array of strings,
    /// the record's tags, which the script may push to / remove from),
    /// `settings` (constant map; the node's settings).
    ///
    /// Result: `()` or `true` → the (possibly changed) record with its
    /// (possibly changed) tags; `false` → dropped (empty vec); a map → that one
    /// record replaces it (tags kept); an array of maps → each emitted (tags
    /// kept); anything else → runtime error naming the type.
    ///
    /// Fields the input record had keep their original order in the output.
    pub fn run_record(&self, script: &Script, record: Record, settings: &Value) -> Result<Vec<Record>, ScriptError> {
        let original_order: Vec<String> = record.fields.keys().cloned().collect();
        let mut scope = Scope::new();
        scope.push_dynamic("tags", tags_to_dynamic(&record));
        scope.push_dynamic("record", Dynamic::from_map(fields_to_map(&record.fields)));
        drop(record);
        let settings = match settings {
            Value::Null => Dynamic::from_map(rhai::Map::new()),
            other => json_to_dynamic(other),
        };
        scope.push_constant_dynamic("settings", settings);

        let result = self.eval(&mut scope, &script.ast)?.flatten();
        let tags = scope_tags(&scope)?;
        self.check_sizes(&result)?;
        let to_record = |map: &rhai::Map| -> Result<Record, ScriptError> {
            let fields = reorder(map_to_fields(map)?, &original_order);
            Ok(Record { fields, tags: tags.clone() })
        };

        if result.is_unit() || result.as_bool() == Ok(true) {
            let current = scope.get("record").map(Dynamic::flatten_clone).unwrap_or(Dynamic::UNIT);
            self.check_sizes(&current)?;
            let map = current.read_lock::<rhai::Map>().ok_or_else(|| {
                ScriptError::new(
                    ScriptErrorKind::Runtime,
                    format!("`record` must stay an object map, but the script made it a {}", type_label(&current)),
                )
            })?;
            return Ok(vec![to_record(&map)?]);
        }
        if result.as_bool() == Ok(false) {
            return Ok(Vec::new());
        }
        if let Some(map) = result.read_lock::<rhai::Map>() {
            return Ok(vec![to_record(&map)?]);
        }
        if let Some(items) = result.read_lock::<Array>() {
            return items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let item = item.flatten_clone();
                    match item.read_lock::<rhai::Map>() {
                        Some(map) => to_record(&map),
                        None => Err(ScriptError::new(
                            ScriptErrorKind::Runtime,
                            format!(
                                "a script may return an array only of object maps, but element {i} is a {}",
                                type_label(&item)
                            ),
                        )),
                    }
                })
                .collect();
        }
        Err(ScriptError::new(
            ScriptErrorKind::Runtime,
            format!(
                "a script must end with nothing, true, false, an object map or an array of object maps, but this one gave a {}",
                type_label(&result)
            ),
        ))
    }

    /// Runs the script once for one record and returns what it ends with, as
    /// JSON (for templates that build a message from a record). The scope is
    /// [`Sandbox::run_record`]'s; changes to `record` and `tags` are dropped.
    pub fn run_value(&self, script: &Script, record: &Record, settings: &Value) -> Result<Value, ScriptError> {
        let mut scope = Scope::new();
        scope.push_dynamic("tags", tags_to_dynamic(record));
        scope.push_dynamic("record", Dynamic::from_map(fields_to_map(&record.fields)));
        let settings = match settings {
            Value::Null => Dynamic::from_map(rhai::Map::new()),
            other => json_to_dynamic(other),
        };
        scope.push_constant_dynamic("settings", settings);
        let result = self.eval(&mut scope, &script.ast)?.flatten();
        self.check_sizes(&result)?;
        convert::dynamic_to_json(&result)
    }

    fn eval(&self, scope: &mut Scope, ast: &AST) -> Result<Dynamic, ScriptError> {
        let _call = CallGuard::start(self.limits.max_duration);
        // A panic inside the engine is a bug in Rhai, not in the flow; it
        // must fail this one record instead of taking the worker down.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.engine.eval_ast_with_scope::<Dynamic>(scope, ast)
        }));
        match outcome {
            Ok(result) => result.map_err(|e| self.eval_error(&e)),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(ScriptError::new(
                    ScriptErrorKind::Runtime,
                    format!("the script engine failed internally: {detail}"),
                ))
            }
        }
    }

    /// Rhai does not check sizes when a script assigns through an index or
    /// property (`m[k] = v`), so a map can outgrow its limit unnoticed; the
    /// data a script hands back is checked once more here.
    fn check_sizes(&self, value: &Dynamic) -> Result<(), ScriptError> {
        let (arrays, maps, strings) = convert::data_sizes(value);
        let limits = &self.limits;
        let exceeded = |size: usize, max: usize| max > 0 && size > max;
        let detail = if exceeded(strings, limits.max_string_size) {
            format!("strings grew past the limit of {} bytes", limits.max_string_size)
        } else if exceeded(arrays, limits.max_array_size) {
            format!("arrays grew past the limit of {} elements", limits.max_array_size)
        } else if exceeded(maps, limits.max_map_size) {
            format!("object maps grew past the limit of {} entries", limits.max_map_size)
        } else {
            return Ok(());
        };
        Err(ScriptError::new(ScriptErrorKind::SizeLimit, format!("script exceeded a size limit: {detail}")))
    }

    fn parse_error(&self, err: ParseError, known: &[&str]) -> ScriptError {
        let ParseError(kind, pos) = err;
        let message = match *kind {
            ParseErrorType::VariableUndefined(name) => {
                let hint = known
                    .iter()
                    .filter(|k| strsim::damerau_levenshtein(k, &name) <= 2)
                    .min_by_key(|k| strsim::damerau_levenshtein(k, &name))
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
                format!("undefined variable `{name}`{hint}")
            }
            ParseErrorType::ExprTooDeep => {
                format!("expression nested deeper than the limit of {} levels", self.limits.max_expr_depth)
            }
            ParseErrorType::Reserved(word) if DISABLED.contains(&word.as_str()) => {
                format!("`{word}` is not allowed in scripts")
            }
            ParseErrorType::BadInput(rhai::LexError::ImproperSymbol(word, _)) if DISABLED.contains(&word.as_str()) => {
                format!("`{word}` is not allowed in scripts")
            }
            other => lower_first(&other.to_string()),
        };
        ScriptError::new(ScriptErrorKind::Compile, message).at(pos)
    }

    fn eval_error(&self, err: &EvalAltResult) -> ScriptError {
        let inner = err.unwrap_inner();
        let pos = if inner.position().is_none() { err.position() } else { inner.position() };
        let limits = &self.limits;
        let (kind, message) = match inner {
            EvalAltResult::ErrorTooManyOperations(_) => (
                ScriptErrorKind::OperationLimit,
                format!(
                    "script exceeded its limit of {} operations (is there an endless loop?)",
                    limits.max_operations
                ),
            ),
            EvalAltResult::ErrorTerminated(..) => (
                ScriptErrorKind::Timeout,
                format!(
                    "script exceeded its time limit of {} (is there an endless loop?)",
                    humantime::format_duration(limits.max_duration)
                ),
            ),
            EvalAltResult::ErrorStackOverflow(_) => (
                ScriptErrorKind::SizeLimit,
                format!(
                    "script exceeded its limit of {} nested function calls (is there endless recursion?)",
                    limits.max_call_levels
                ),
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) => {
                let what = what.to_lowercase();
                let detail = if what.contains("string") {
                    format!("a string grew past the limit of {} bytes", limits.max_string_size)
                } else if what.contains("array") {
                    format!("arrays grew past the limit of {} elements", limits.max_array_size)
                } else if what.contains("map") {
                    format!("object maps grew past the limit of {} entries", limits.max_map_size)
                } else {
                    format!("{what} too large")
                };
                (ScriptErrorKind::SizeLimit, format!("script exceeded a size limit: {detail}"))
            }
            EvalAltResult::ErrorParsing(kind, _) => (ScriptErrorKind::Compile, lower_first(&kind.to_string())),
            EvalAltResult::ErrorRuntime(value, _) => {
                let thrown = value.clone().into_string().unwrap_or_else(|_| value.to_string());
                (ScriptErrorKind::Runtime, format!("script threw: {thrown}"))
            }
            other => {
                let text = other.to_string();
                let suffix = format!(" ({})", other.position());
                let text = text.strip_suffix(suffix.as_str()).unwrap_or(&text);
                (ScriptErrorKind::Runtime, lower_first(text))
            }
        };
        let message = match err {
            EvalAltResult::ErrorInFunctionCall(name, ..) => {
                format!("{message} (in function `{name}`)")
            }
            _ => message,
        };
        ScriptError::new(kind, message).at(pos)
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

/// A scope that only declares names, so strict-variables mode knows them at
/// compile time. The variables are deliberately not constants: the optimizer
/// would fold a constant's placeholder value into the script.
fn compile_scope(names: &[&str]) -> Scope<'static> {
    let mut scope = Scope::new();
    for name in names {
        scope.push_dynamic(*name, Dynamic::UNIT);
    }
    scope
}

fn tags_to_dynamic(record: &Record) -> Dynamic {
    Dynamic::from_array(record.tags.iter().map(|t| Dynamic::from(t.clone())).collect())
}

fn scope_tags(scope: &Scope) -> Result<std::collections::BTreeSet<String>, ScriptError> {
    let tags = scope.get("tags").map(Dynamic::flatten_clone).unwrap_or(Dynamic::UNIT);
    let items = tags.read_lock::<Array>().ok_or_else(|| {
        ScriptError::new(
            ScriptErrorKind::Runtime,
            format!("`tags` must stay an array of strings, but the script made it a {}", type_label(&tags)),
        )
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, tag)| {
            tag.clone().into_string().map_err(|_| {
                ScriptError::new(
                    ScriptErrorKind::Runtime,
                    format!("`tags` must hold only strings, but element {i} is a {}", type_label(tag)),
                )
            })
        })
        .collect()
}

/// Rhai maps are sorted by key; putting the record's original keys back in
/// their original order keeps output columns and logs stable for people.
fn reorder(mut fields: serde_json::Map<String, Value>, original: &[String]) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::with_capacity(fields.len());
    for key in original {
        if let Some(v) = fields.shift_remove(key) {
            out.insert(key.clone(), v);
        }
    }
    out.extend(fields);
    out
}

/// A type name for error messages, in the words a script author uses.
pub(crate) fn type_label(value: &Dynamic) -> &'static str {
    match value.type_name() {
        "()" => "nothing (())",
        "bool" => "boolean",
        "i64" | "i32" => "integer",
        "f64" | "f32" => "float",
        "string" => "string",
        "char" => "character",
        "map" => "object map",
        "array" => "array",
        "blob" => "BLOB",
        "Fn" => "function pointer",
        "timestamp" => "timestamp",
        other if other.contains("Range") => "range",
        _ => "value of an unsupported type",
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        // Leave acronyms such as "AST" alone.
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => {
            first.to_lowercase().chain(text[first.len_utf8()..].chars()).collect()
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(value: Value) -> Record {
        Record::from_value(value).unwrap()
    }

    fn run(src: &str, record: Value) -> Result<Vec<Record>, ScriptError> {
        let sb = Sandbox::default();
        let script = sb.compile_script(src)?;
        sb.run_record(&script, rec(record), &json!({}))
    }

    #[test]
    fn unit_result_keeps_the_changed_record_and_tags() {
        let out = run(r#"record.status = "DONE"; tags.push("seen");"#, json!({"tid": 1, "status": "PAID"})).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(Value::Object(out[0].fields.clone()), json!({"tid": 1, "status": "DONE"}));
        assert!(out[0].tags.contains("seen"));
    }

    #[test]
    fn a_record_captured_by_a_closure_is_still_returned() {
        let out = run("let a = || record.a; record.b = a.call() + 1;", json!({"a": 1})).unwrap();
        assert_eq!(Value::Object(out[0].fields.clone()), json!({"a": 1, "b": 2}));
    }

    #[test]
    fn field_order_of_the_input_is_kept() {
        let out = run("record.a = 1; record.extra = 2;", json!({"z": 0, "a": 0, "m": 0})).unwrap();
        let keys: Vec<&String> = out[0].fields.keys().collect();
        assert_eq!(keys, ["z", "a", "m", "extra"]);
    }

    #[test]
    fn true_keeps_false_drops() {
        assert_eq!(run("true", json!({"a": 1})).unwrap().len(), 1);
        assert!(run("false", json!({"a": 1})).unwrap().is_empty());
        assert!(run("if record.a == 1 { return false; } record.b = 2;", json!({"a": 1})).unwrap().is_empty());
    }

    #[test]
    fn tags_can_be_removed() {
        let sb = Sandbox::default();
        let script = sb.compile_script(r#"tags.retain(|t| t != "old"); tags.push("new");"#).unwrap();
        let mut r = rec(json!({"a": 1}));
        r.tags.insert("old".into());
        r.tags.insert("keep".into());
        let out = sb.run_record(&script, r, &json!({})).unwrap();
        let tags: Vec<&str> = out[0].tags.iter().map(String::as_str).collect();
        assert_eq!(tags, ["keep", "new"]);
    }

    #[test]
    fn a_map_replaces_the_record_and_keeps_tags() {
        let sb = Sandbox::default();
        let script = sb.compile_script(r#"#{ id: record.tid, kind: "x" }"#).unwrap();
        let mut r = rec(json!({"tid": 4611686018427387905_i64}));
        r.tags.insert("vip".into());
        let out = sb.run_record(&script, r, &json!({})).unwrap();
        assert_eq!(Value::Object(out[0].fields.clone()), json!({"id": 4611686018427387905_i64, "kind": "x"}));
        assert!(out[0].tags.contains("vip"));
    }

    #[test]
    fn an_array_of_maps_emits_each() {
        let input = json!({"tid": 7, "lines": [{"sku": "a"}, {"sku": "b"}]});
        for src in [
            "let out = []; for l in record.lines { out.push(#{ tid: record.tid, sku: l.sku }); } out",
            // A closure capturing `record` makes it a shared value in the scope.
            "let tid = || record.tid; let out = []; for l in record.lines { out.push(#{ tid: tid.call(), sku: l.sku }); } out",
        ] {
            let out = run(src, input.clone()).unwrap();
            assert_eq!(out.len(), 2, "{src}");
            assert_eq!(out[1].get("sku"), Some(&json!("b")));
            assert_eq!(out[1].get("tid"), Some(&json!(7)));
        }
    }

    #[test]
    fn other_results_are_errors_naming_the_type() {
        let err = run("42", json!({})).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Runtime);
        assert!(err.message.contains("integer"), "{err}");
        let err = run(r#"[#{a: 1}, "x"]"#, json!({})).unwrap_err();
        assert!(err.message.contains("element 1 is a string"), "{err}");
        let err = run("record = 5;", json!({})).unwrap_err();
        assert!(err.message.contains("`record`") && err.message.contains("integer"), "{err}");
        let err = run("tags.push(3);", json!({})).unwrap_err();
        assert!(err.message.contains("`tags`") && err.message.contains("integer"), "{err}");
    }

    #[test]
    fn settings_are_readable_and_constant() {
        let sb = Sandbox::default();
        let script = sb.compile_script("record.limit = settings.limit;").unwrap();
        let out = sb.run_record(&script, rec(json!({})), &json!({"limit": 5})).unwrap();
        assert_eq!(out[0].get("limit"), Some(&json!(5)));
        let script = sb.compile_script("settings.limit = 6;").unwrap();
        let err = sb.run_record(&script, rec(json!({})), &json!({"limit": 5})).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Runtime);
        assert_eq!(err.line, Some(1), "{err}");
    }

    #[test]
    fn conditions_evaluate_to_bool() {
        let sb = Sandbox::default();
        let c = sb.compile_condition(r#"record.status == "PAID" && "vip" in tags"#).unwrap();
        let mut r = rec(json!({"status": "PAID"}));
        assert!(!sb.eval_condition(&c, &r).unwrap());
        r.tags.insert("vip".into());
        assert!(sb.eval_condition(&c, &r).unwrap());
    }

    #[test]
    fn a_non_bool_condition_is_a_runtime_error_naming_the_type() {
        let sb = Sandbox::default();
        let c = sb.compile_condition("record.status").unwrap();
        let err = sb.eval_condition(&c, &rec(json!({"status": "PAID"}))).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Runtime);
        assert!(err.message.contains("string"), "{err}");
    }

    #[test]
    fn a_condition_is_one_expression() {
        let sb = Sandbox::default();
        assert_eq!(sb.compile_condition("let x = 1; x").unwrap_err().kind, ScriptErrorKind::Compile);
        // Conditions see no settings.
        assert_eq!(sb.compile_condition("settings.x").unwrap_err().kind, ScriptErrorKind::Compile);
    }

    #[test]
    fn typo_in_a_variable_fails_at_compile_time_with_its_line() {
        let sb = Sandbox::default();
        let err = sb.compile_script("let a = 1;\nrecrod.x = 2;").unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Compile);
        assert_eq!((err.line, err.column), (Some(2), Some(1)));
        assert!(err.message.contains("recrod") && err.message.contains("did you mean `record`"), "{err}");
        assert!(err.to_string().starts_with("line 2, column 1: undefined variable"), "{err}");
        assert!(sb.compile_script("record.x = 2;").is_ok());
        assert!(sb.compile_condition("recrod.x == 1").is_err());
    }

    #[test]
    fn runtime_errors_carry_line_and_column() {
        let err = run("let a = 1;\nlet b = 2;\nlet c = record.x + [];", json!({"x": 1})).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Runtime);
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.column.is_some());
        let err = run("\n  throw \"bad order\";", json!({})).unwrap_err();
        assert_eq!(err.to_string(), "line 2, column 3: script threw: bad order");
    }

    #[test]
    fn errors_inside_functions_point_into_the_function() {
        let err = run("fn f(x) {\n  x + []\n}\nf(1);", json!({})).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Runtime);
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.contains("in function `f`"), "{err}");
    }

    #[test]
    fn endless_loop_hits_the_operation_limit_quickly() {
        let started = Instant::now();
        let err = run("let i = 0;\nloop { i += 1; }", json!({})).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::OperationLimit);
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("limit of 1000000 operations (is there an endless loop?)"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // The process is alive and the sandbox still usable.
        assert_eq!(run("true", json!({})).unwrap().len(), 1);
    }

    #[test]
    fn wall_clock_limit_stops_a_script() {
        let sb =
            Sandbox::new(Limits { max_operations: 0, max_duration: Duration::from_millis(100), ..Limits::default() });
        let script = sb.compile_script("loop { }").unwrap();
        let started = Instant::now();
        let err = sb.run_record(&script, rec(json!({})), &json!({})).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Timeout, "{err}");
        assert!(err.message.contains("100ms"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        // The deadline is per call: the next call gets a fresh one.
        assert!(DEADLINE.get().is_none());
        let c = sb.compile_condition("true").unwrap();
        assert!(sb.eval_condition(&c, &rec(json!({}))).unwrap());
    }

    #[test]
    fn size_limits_stop_growing_data() {
        let limits = Limits { max_string_size: 1000, max_array_size: 100, max_map_size: 50, ..Limits::default() };
        let sb = Sandbox::new(limits);
        for (src, what) in [
            (r#"let s = "x"; loop { s += s; }"#, "string"),
            ("let a = []; loop { a.push(1); }", "array"),
            ("let m = #{}; let i = 0; loop { m.set(`k${i}`, i); i += 1; }", "map"),
            // Index assignment escapes Rhai's own check; the result check catches it.
            ("for i in 0..60 { record[`k${i}`] = i; }", "map"),
            ("let s = []; for i in 0..60 { s.push(#{ a: i }); } s", "map"),
        ] {
            let script = sb.compile_script(src).unwrap();
            let err = sb.run_record(&script, rec(json!({})), &json!({})).unwrap_err();
            assert_eq!(err.kind, ScriptErrorKind::SizeLimit, "{src}: {err}");
            assert!(err.message.contains(what), "{err}");
        }
    }

    #[test]
    fn call_depth_is_limited() {
        let err = run("fn f(n) { f(n + 1) }\nf(0)", json!({})).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::SizeLimit, "{err}");
        assert!(err.message.contains("64 nested function calls"), "{err}");
    }

    #[test]
    fn expression_depth_is_limited_at_compile_time() {
        let sb = Sandbox::default();
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        let err = sb.compile_script(&deep).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Compile);
        assert!(err.message.contains("limit of 64"), "{err}");
        assert!(sb.compile_condition(&deep).is_err());
        let shallow = format!("{}1{}", "(".repeat(10), ")".repeat(10));
        assert!(sb.compile_script(&shallow).is_ok());
    }

    #[test]
    fn eval_is_disabled() {
        let sb = Sandbox::default();
        let err = sb.compile_script(r#"eval("record.x = 1")"#).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Compile, "{err}");
        assert_eq!(err.to_string(), "line 1, column 1: `eval` is not allowed in scripts");
    }

    #[test]
    fn imports_are_refused() {
        let sb = Sandbox::default();
        let err = sb.compile_script(r#"import "x" as x;"#).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Compile, "{err}");
        assert!(err.message.contains("`import` is not allowed"), "{err}");
        assert_eq!(err.line, Some(1));
    }

    /// What the script logs through `print`/`debug` while `f` runs.
    fn logged(f: impl FnOnce()) -> String {
        use std::io::Write;
        use std::sync::Mutex;

        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(buf.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn print_and_debug_go_to_tracing() {
        let out = logged(|| {
            run(r#"print("hello from print"); debug("hello from debug");"#, json!({})).unwrap();
        });
        assert!(out.contains("INFO") && out.contains("hello from print"), "{out}");
        assert!(out.contains("DEBUG") && out.contains("hello from debug"), "{out}");
        assert!(out.contains(SCRIPT_TARGET), "{out}");
    }

    #[test]
    fn print_output_is_capped_per_line_and_per_call() {
        // 50 prints of 100 KB: 5 MB asked for, at most the call's budget logged.
        let script = r#"let big = ""; big.pad(100000, "x"); for i in 0..50 { print(big); debug(big); }"#;
        let out = logged(|| {
            run(script, json!({})).unwrap();
        });
        assert!(out.len() < MAX_PRINT_PER_CALL + 4096, "logged {} bytes", out.len());
        assert!(out.contains("more bytes not logged"), "a long line says it was cut");
        assert_eq!(out.matches("later prints are dropped").count(), 1, "the cap is announced once");
        // The next call has a budget of its own.
        let next = logged(|| {
            run(r#"print("after the cap")"#, json!({})).unwrap();
        });
        assert!(next.contains("after the cap"), "{next}");
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let text = "订单".repeat(MAX_PRINT_LINE);
        PRINTED.set(0);
        let logged = within_print_budget(&text).unwrap();
        let kept = logged.split(" … (").next().unwrap();
        assert!(kept.len() <= MAX_PRINT_LINE && kept.chars().all(|c| c == '订' || c == '单'), "{kept}");
    }

    #[test]
    fn sleep_fails_at_once_instead_of_holding_the_worker() {
        let started = Instant::now();
        for source in ["sleep(100);", "record.x = 1; sleep(0.5);"] {
            let err = run(source, json!({})).unwrap_err();
            assert_eq!(err.kind, ScriptErrorKind::Runtime, "{source}: {err}");
            assert!(err.message.contains("`sleep` is not allowed in scripts"), "{source}: {err}");
        }
        assert!(started.elapsed() < Duration::from_secs(5), "sleep must not sleep: {:?}", started.elapsed());
    }

    #[test]
    fn large_ids_pass_through_a_script_unchanged() {
        let out =
            run("record.copy = record.tid; record.next = record.tid + 1;", json!({"tid": 4611686018427387905_i64}))
                .unwrap();
        assert_eq!(out[0].get("copy"), Some(&json!(4611686018427387905_i64)));
        assert_eq!(out[0].get("next"), Some(&json!(4611686018427387906_i64)));
    }

    #[test]
    fn script_and_sandbox_are_shareable_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Sandbox>();
        assert_send_sync::<Script>();
        assert_send_sync::<Condition>();
        let sb = Sandbox::default();
        let script = sb.compile_script("record.n += 1;").unwrap();
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (sb, script) = (sb.clone(), script.clone());
                std::thread::spawn(move || sb.run_record(&script, rec(json!({"n": i})), &json!({})).unwrap())
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap()[0].get("n"), Some(&json!(i + 1)));
        }
    }

    const TAG_VIP: &str = include_str!("../../nodes/tag_vip.rhai");

    fn run_tag_vip(record: Value, with: Value) -> Result<Vec<Record>, ScriptError> {
        let header = parse_header(TAG_VIP)?;
        let Value::Object(with) = with else { unreachable!() };
        let settings = header.settings_with_defaults(&with);
        let sb = Sandbox::default();
        let script = sb.compile_script(TAG_VIP)?;
        sb.run_record(&script, rec(record), &settings)
    }

    #[test]
    fn tag_vip_node_has_the_documented_header() {
        let header = parse_header(TAG_VIP).unwrap();
        assert_eq!(header.summary, "Tags buyers whose order payment reaches a threshold as VIP.");
        let names: Vec<&str> = header.settings.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["threshold", "tag"]);
        assert_eq!(header.settings[0].kind, SettingKind::Number);
        assert_eq!(header.settings_schema()["properties"]["tag"]["default"], "vip");
        assert_eq!(header.adds, [("vip_level".to_owned(), SettingKind::Integer)]);
    }

    #[test]
    fn tag_vip_tags_orders_above_the_threshold() {
        let tid = 4611686018427387905_i64;
        let out = run_tag_vip(json!({"tid": tid, "payment": "1200.50"}), json!({})).unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].tags.contains("vip"));
        assert_eq!(out[0].get("vip_level"), Some(&json!(1)));
        assert_eq!(out[0].get("tid"), Some(&json!(tid)));
        assert_eq!(out[0].get("payment"), Some(&json!("1200.50")));

        let out = run_tag_vip(json!({"payment": 2500}), json!({"threshold": 1000, "tag": "gold"})).unwrap();
        assert!(out[0].tags.contains("gold") && !out[0].tags.contains("vip"));
        assert_eq!(out[0].get("vip_level"), Some(&json!(2)));

        let out = run_tag_vip(json!({"payment": 100.5}), json!({"threshold": 99.5})).unwrap();
        assert_eq!(out[0].get("vip_level"), Some(&json!(1)));
    }

    #[test]
    fn tag_vip_passes_orders_below_the_threshold_unchanged() {
        for payment in [json!("999.99"), json!(999), json!(null)] {
            let input = json!({"tid": 1, "payment": payment});
            let out = run_tag_vip(input.clone(), json!({})).unwrap();
            assert_eq!(out, vec![rec(input)]);
        }
        let out = run_tag_vip(json!({"tid": 1}), json!({})).unwrap();
        assert_eq!(out, vec![rec(json!({"tid": 1}))]);
    }

    #[test]
    fn tag_vip_reports_bad_payments_with_a_line() {
        let err = run_tag_vip(json!({"payment": [1]}), json!({})).unwrap_err();
        assert_eq!(err.kind, ScriptErrorKind::Runtime);
        assert!(err.message.contains("payment must be a number"), "{err}");
        assert!(err.line.is_some(), "{err}");
        let err = run_tag_vip(json!({"payment": 5}), json!({"threshold": 0})).unwrap_err();
        assert!(err.message.contains("threshold"), "{err}");
    }

    #[test]
    fn display_without_position_is_just_the_message() {
        let err = ScriptError::new(ScriptErrorKind::Runtime, "boom");
        assert_eq!(err.to_string(), "boom");
    }
}
