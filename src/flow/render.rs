//! Drawing a flow's graph as Graphviz DOT or Mermaid.

use super::model::{Flow, NodeSpec};

/// The flow as a Graphviz `digraph`.
pub fn dot(flow: &Flow) -> String {
    let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n", escape(&flow.name));
    for (section, nodes) in [("", &flow.nodes), ("errors", &flow.error_nodes)] {
        for node in nodes {
            let style = if section.is_empty() { "" } else { ", color=red" };
            out.push_str(&format!(
                "  \"{}\" [label=\"{}\\n({})\"{style}];\n",
                escape(&node.id),
                escape(&node.id),
                escape(&node.type_name)
            ));
        }
        for node in nodes {
            for input in &node.inputs {
                let label = edge_label(node).map(|w| format!(" [label=\"{}\"]", escape(&w))).unwrap_or_default();
                out.push_str(&format!("  \"{}\" -> \"{}\"{label};\n", escape(input), escape(&node.id)));
            }
        }
    }
    out.push_str("}\n");
    out
}

/// The flow as a Mermaid `flowchart`.
pub fn mermaid(flow: &Flow) -> String {
    let mut out = String::from("flowchart LR\n");
    for node in flow.nodes.iter().chain(&flow.error_nodes) {
        out.push_str(&format!(
            "  {}[\"{}<br/>({})\"]\n",
            mermaid_id(&node.id),
            mermaid_text(&node.id),
            mermaid_text(&node.type_name)
        ));
    }
    for node in flow.nodes.iter().chain(&flow.error_nodes) {
        for input in &node.inputs {
            match edge_label(node) {
                Some(when) => out.push_str(&format!(
                    "  {} -->|\"{}\"| {}\n",
                    mermaid_id(input),
                    mermaid_text(&when),
                    mermaid_id(&node.id)
                )),
                None => out.push_str(&format!("  {} --> {}\n", mermaid_id(input), mermaid_id(&node.id))),
            }
        }
    }
    out
}

fn edge_label(node: &NodeSpec) -> Option<String> {
    node.when.as_ref().map(|w| format!("when {}", w.source))
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Mermaid ids must be plain words; node ids are already snake_case keys but
/// may contain other characters, which are replaced.
fn mermaid_id(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect()
}

fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;")
}
