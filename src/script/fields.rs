//! Which record fields a compiled script reads and which it sets, found by
//! walking its syntax tree (never by matching its text), so validation can
//! check them against the fields the upstream nodes emit.
//!
//! A read is a chain rooted at the `record` variable: `record.status`,
//! `record["status"]`, `record.items[0].outer_sku_id`. An assignment to
//! `record.x` (or `record["x"]`) sets `x`. A comparison of a read with string
//! literals (`==`, `!=`, `in [...]`) keeps the literals, so known values
//! (order statuses) can be checked too.

use std::collections::HashMap;

use rhai::{AST, ASTNode, Expr, Position, Stmt};

/// One step of a path into a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// A field of an object map: `.name` or `["name"]`.
    Field(String),
    /// An element of an array: `[0]`, `[i]`.
    Item,
}

/// A 1-based line and column in the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// A path into `record` the script reads, each step with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldUse {
    /// The steps, outermost first; never empty.
    pub steps: Vec<(Step, Place)>,
    /// String literals the value is compared with (`==`, `!=`, `in [...]`).
    pub compared_to: Vec<(String, Place)>,
}

/// What a script does with the fields of `record`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptFields {
    /// The fields read, in the order they appear.
    pub reads: Vec<FieldUse>,
    /// The top-level fields the script assigns (`record.x = …`), in order.
    pub sets: Vec<String>,
    /// Whether the script may hand back records of another shape: it builds
    /// an object map (`#{…}`), or uses `record` as a whole value (copies it,
    /// passes it to a function, assigns to it), which the walk cannot follow.
    pub may_reshape: bool,
}

impl ScriptFields {
    /// Walks `ast`, function bodies included.
    pub(crate) fn of(ast: &AST) -> Self {
        let mut walk = Walk::default();
        ast.walk(&mut |path: &[ASTNode]| {
            walk.visit(path);
            true
        });
        walk.fields.reads.retain(|read| !read.steps.is_empty());
        walk.fields
    }
}

#[derive(Default)]
struct Walk {
    fields: ScriptFields,
    /// Literals waiting for the chain they are compared with, by the chain's
    /// address: a comparison is visited before its arguments.
    comparisons: HashMap<*const Expr, Vec<(String, Place)>>,
}

const RECORD: &str = "record";

impl Walk {
    fn visit(&mut self, path: &[ASTNode]) {
        let expr = match path.last() {
            Some(ASTNode::Expr(expr)) => expr,
            // A call standing as a statement (a whole `when:` such as
            // `record.status in [...]`) is a statement, not an expression.
            Some(ASTNode::Stmt(Stmt::FnCall(call, _))) => return self.note_comparison(&call.name, &call.args),
            _ => return,
        };
        let parent = path.len().checked_sub(2).and_then(|i| path.get(i));
        match expr {
            Expr::FnCall(call, _) => self.note_comparison(&call.name, &call.args),
            Expr::Map(..) => self.fields.may_reshape = true,
            Expr::DynamicConstant(value, _) if value.is_map() => self.fields.may_reshape = true,
            Expr::Dot(chain, ..) | Expr::Index(chain, ..) if is_record(&chain.lhs) => {
                let is_index = matches!(expr, Expr::Index(..));
                let steps = steps(is_index, &chain.rhs);
                match parent {
                    Some(ASTNode::Stmt(Stmt::Assignment(assignment))) if std::ptr::eq(&assignment.1.lhs, *expr) => {
                        if let Some((Step::Field(name), _)) = steps.first() {
                            if !self.fields.sets.contains(name) {
                                self.fields.sets.push(name.clone());
                            }
                        }
                    }
                    _ => {
                        let compared_to = self.comparisons.remove(&(*expr as *const Expr)).unwrap_or_default();
                        self.fields.reads.push(FieldUse { steps, compared_to });
                    }
                }
            }
            Expr::Variable(..) if is_record(expr) => {
                let used_whole = match parent {
                    Some(ASTNode::Expr(Expr::Dot(chain, ..) | Expr::Index(chain, ..))) => {
                        !std::ptr::eq(&chain.lhs, *expr)
                    }
                    // `"x" in record` asks whether a field exists.
                    Some(ASTNode::Expr(Expr::FnCall(call, _))) => call.name != "contains",
                    _ => true,
                };
                self.fields.may_reshape |= used_whole;
            }
            _ => {}
        }
    }

    /// Remembers the string literals a record chain is compared with.
    fn note_comparison(&mut self, name: &str, args: &[Expr]) {
        let (chain, literals) = match (name, args) {
            ("==" | "!=", [left, right]) if is_record_chain(left) => (left, literals(right)),
            ("==" | "!=", [left, right]) if is_record_chain(right) => (right, literals(left)),
            // `a in b` is `contains(b, a)`.
            ("contains", [list @ (Expr::Array(..) | Expr::DynamicConstant(..)), value]) if is_record_chain(value) => {
                (value, literals(list))
            }
            _ => return,
        };
        if !literals.is_empty() {
            self.comparisons.entry(chain as *const Expr).or_default().extend(literals);
        }
    }
}

fn is_record(expr: &Expr) -> bool {
    matches!(expr, Expr::Variable(variable, _, _) if variable.1 == RECORD && variable.2.is_empty())
}

fn is_record_chain(expr: &Expr) -> bool {
    matches!(expr, Expr::Dot(chain, ..) | Expr::Index(chain, ..) if is_record(&chain.lhs))
}

/// The string literals of `expr`: one string, or the strings of an array
/// (which the optimizer may have folded into one constant, losing each
/// string's own place).
fn literals(expr: &Expr) -> Vec<(String, Place)> {
    match expr {
        Expr::StringConstant(text, pos) => vec![(text.to_string(), place(*pos))],
        Expr::Array(items, _) => items.iter().flat_map(literals).collect(),
        Expr::DynamicConstant(value, pos) => match value.read_lock::<rhai::Array>() {
            Some(items) => {
                items.iter().filter_map(|item| item.clone().into_string().ok()).map(|s| (s, place(*pos))).collect()
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The steps of the chain right of `record`: `rest` is accessed by index
/// when `is_index`, else by property. Rhai nests chains to the right:
/// `record.a[0].b` is `Dot(record, Index(a, Dot(0, b)))`. The walk stops at
/// a method call or at an index it cannot name (`record[key]`).
fn steps(mut is_index: bool, mut rest: &Expr) -> Vec<(Step, Place)> {
    let mut steps = Vec::new();
    loop {
        let (head, next) = match rest {
            Expr::Dot(chain, ..) => (&chain.lhs, Some((false, &chain.rhs))),
            Expr::Index(chain, ..) => (&chain.lhs, Some((true, &chain.rhs))),
            other => (other, None),
        };
        let step = match (is_index, head) {
            (false, Expr::Property(property, pos)) => (Step::Field(property.2.to_string()), place(*pos)),
            (true, Expr::StringConstant(name, pos)) => (Step::Field(name.to_string()), place(*pos)),
            (true, Expr::IntegerConstant(_, pos)) => (Step::Item, place(*pos)),
            (true, index) if !matches!(index, Expr::StringConstant(..) | Expr::Variable(..)) => {
                (Step::Item, place(index.position()))
            }
            _ => return steps,
        };
        steps.push(step);
        match next {
            Some((index, expr)) => (is_index, rest) = (index, expr),
            None => return steps,
        }
    }
}

fn place(pos: Position) -> Place {
    Place { line: pos.line().unwrap_or(1), col: pos.position().unwrap_or(1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Sandbox;

    fn names(fields: &ScriptFields) -> Vec<String> {
        fields
            .reads
            .iter()
            .map(|read| {
                read.steps
                    .iter()
                    .map(|(step, place)| match step {
                        Step::Field(name) => format!("{name}@{}:{}", place.line, place.col),
                        Step::Item => format!("[]@{}:{}", place.line, place.col),
                    })
                    .collect::<Vec<_>>()
                    .join(".")
            })
            .collect()
    }

    #[test]
    fn a_condition_reads_each_field_at_its_place_with_the_strings_it_is_compared_to() {
        let sandbox = Sandbox::default();
        let condition = sandbox
            .compile_condition(r#"record.stauts == "TRADE_FINISHED" && record["type"] != "step" && "vip" in tags"#)
            .unwrap();
        let fields = condition.fields();
        assert_eq!(names(&fields), ["stauts@1:8", "type@1:45"]);
        assert_eq!(fields.reads[0].compared_to, [("TRADE_FINISHED".to_owned(), Place { line: 1, col: 18 })]);
        assert_eq!(fields.reads[1].compared_to, [("step".to_owned(), Place { line: 1, col: 56 })]);
        assert!(!fields.may_reshape);
    }

    #[test]
    fn nested_reads_and_in_lists_are_followed() {
        let sandbox = Sandbox::default();
        let condition = sandbox
            .compile_condition(
                r#"record.items[0].outer_sku_id == "A" || record.status in ["WAIT_BUYER_PAY", "TRADE_CLOSED"]"#,
            )
            .unwrap();
        let fields = condition.fields();
        assert_eq!(names(&fields), ["items@1:8.[]@1:14.outer_sku_id@1:17", "status@1:47"]);
        let statuses: Vec<&str> = fields.reads[1].compared_to.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(statuses, ["WAIT_BUYER_PAY", "TRADE_CLOSED"]);
    }

    #[test]
    fn a_script_sets_what_it_assigns_and_reshapes_only_when_it_builds_or_copies_records() {
        let sandbox = Sandbox::default();
        let script = sandbox
            .compile_script("let n = record.payment;\nrecord.vip_level = 2;\nrecord.count += 1;\nif \"x\" in record { record.remove(\"x\"); }")
            .unwrap();
        let fields = script.fields();
        assert_eq!(names(&fields), ["payment@1:16"]);
        assert_eq!(fields.sets, ["vip_level", "count"]);
        assert!(!fields.may_reshape, "reading, setting and `in record` keep the record's shape");
        for reshaping in ["#{ a: record.a }", "let copy = record; copy", "fn f(r) { r } f(record)"] {
            assert!(sandbox.compile_script(reshaping).unwrap().fields().may_reshape, "{reshaping}");
        }
    }
}
