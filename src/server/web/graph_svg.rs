//! A flow's graph as inline SVG, laid out on the server: no script, no
//! external library, so the page draws without internet.
//!
//! Layers run left to right; a node's layer is the longest path to it from a
//! source, so every edge points rightwards. Within a layer, nodes are ordered
//! by the mean row of their inputs (one barycentre sweep), which removes most
//! crossings in flows of this size.

use std::collections::HashMap;
use std::fmt::Write;

use super::html::escape;
use crate::flow::NodeSpec;
use crate::store::NodeRunRecord;

const BOX_WIDTH: usize = 200;
const BOX_HEIGHT: usize = 66;
const COLUMN_PITCH: usize = 270;
const ROW_PITCH: usize = 88;
const MARGIN: usize = 16;
/// Longer ids and type names are cut (the whole text is in the box's title).
const MAX_LABEL: usize = 24;

/// Draws `nodes` (a flow's `nodes:` or `errors:`) as an `<svg>` of class
/// `graph {class}`, each node a `<g class="node" data-node="id">` showing
/// its id, type and, from `last_run`, its records in and out and errors;
/// each edge a `<g class="edge" data-from=".." data-to="..">`. Settings are
/// never shown: they may name secrets' variables.
pub fn render(nodes: &[NodeSpec], last_run: &HashMap<&str, &NodeRunRecord>, class: &str) -> String {
    let layers = layers(nodes);
    let rows_max = layers.iter().map(Vec::len).max().unwrap_or(0);
    let width = 2 * MARGIN + layers.len().saturating_sub(1) * COLUMN_PITCH + BOX_WIDTH;
    let height = 2 * MARGIN + rows_max.saturating_sub(1) * ROW_PITCH + BOX_HEIGHT;
    let mut place: HashMap<&str, (usize, usize)> = HashMap::new();
    for (layer, members) in layers.iter().enumerate() {
        // Short layers are centred on the tallest.
        let offset = (rows_max - members.len()) * ROW_PITCH / 2;
        for (row, &index) in members.iter().enumerate() {
            place.insert(nodes[index].id.as_str(), (MARGIN + layer * COLUMN_PITCH, MARGIN + offset + row * ROW_PITCH));
        }
    }

    let marker = format!("arrow-{class}");
    let mut svg = format!(
        "<svg class=\"graph {class}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\">\
         <defs><marker id=\"{marker}\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" \
         markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\"/></marker></defs>"
    );
    for node in nodes {
        let Some(&(x2, y2)) = place.get(node.id.as_str()) else { continue };
        for input in &node.inputs {
            let Some(&(x1, y1)) = place.get(input.as_str()) else { continue };
            let (x1, y1, x2, y2) = (x1 + BOX_WIDTH, y1 + BOX_HEIGHT / 2, x2, y2 + BOX_HEIGHT / 2);
            let bend = (x2.saturating_sub(x1)) / 2;
            let (conditional, title) = match &node.when {
                Some(when) => (" conditional", format!("<title>when {}</title>", escape(&when.source))),
                None => ("", String::new()),
            };
            let _ = write!(
                svg,
                "<g class=\"edge{conditional}\" data-from=\"{}\" data-to=\"{}\">{title}\
                 <path d=\"M {x1} {y1} C {} {y1}, {} {y2}, {x2} {y2}\" marker-end=\"url(#{marker})\"/></g>",
                escape(input),
                escape(&node.id),
                x1 + bend,
                x2 - bend,
            );
        }
    }
    for node in nodes {
        let Some(&(x, y)) = place.get(node.id.as_str()) else { continue };
        let run = last_run.get(node.id.as_str());
        // The node's error, if its run recorded one, shows on hover.
        let error = run.and_then(|run| run.error.as_deref()).map(|e| format!(": {}", escape(e))).unwrap_or_default();
        let (status, counts) = match run {
            Some(run) => (
                run.status.as_str(),
                format!("in {} · out {} · errors {}", run.records_in, run.records_out, run.errors),
            ),
            None => ("not_run", "not run yet".to_owned()),
        };
        let _ = write!(
            svg,
            "<g class=\"node status-{status}\" data-node=\"{id}\" data-type=\"{kind}\" transform=\"translate({x} {y})\">\
             <title>{id} ({kind}): {status}{error}</title>\
             <rect width=\"{BOX_WIDTH}\" height=\"{BOX_HEIGHT}\" rx=\"6\"/>\
             <text class=\"id\" x=\"10\" y=\"20\">{short_id}</text>\
             <text class=\"type\" x=\"10\" y=\"38\">{short_kind}</text>\
             <text class=\"counts\" x=\"10\" y=\"56\">{counts}</text></g>",
            id = escape(&node.id),
            kind = escape(&node.type_name),
            short_id = escape(&shorten(&node.id)),
            short_kind = escape(&shorten(&node.type_name)),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The nodes' indexes by layer, each layer in drawing order.
fn layers(nodes: &[NodeSpec]) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let inputs: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| n.inputs.iter().filter_map(|input| index.get(input.as_str()).copied()).collect())
        .collect();
    // Compiled flows list nodes after their inputs, so one pass settles every
    // layer; the passes after it only guard against another order. A compiled
    // flow has no cycle, so the longest path has fewer than `nodes.len()` edges.
    let mut layer = vec![0usize; nodes.len()];
    for _ in 0..nodes.len() {
        let mut changed = false;
        for (i, ins) in inputs.iter().enumerate() {
            let deepest = ins.iter().map(|&input| layer[input] + 1).max().unwrap_or(0);
            if deepest > layer[i] {
                layer[i] = deepest.min(nodes.len());
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let depth = layer.iter().max().map_or(0, |deepest| deepest + 1);
    let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
    for (i, &l) in layer.iter().enumerate() {
        layers[l].push(i);
    }
    let mut row = vec![0f64; nodes.len()];
    for members in &mut layers {
        let centre = |i: usize| {
            let ins = &inputs[i];
            if ins.is_empty() { i as f64 } else { ins.iter().map(|&input| row[input]).sum::<f64>() / ins.len() as f64 }
        };
        let mut keyed: Vec<(f64, usize)> = members.iter().map(|&i| (centre(i), i)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *members = keyed.into_iter().map(|(_, i)| i).collect();
        for (position, &i) in members.iter().enumerate() {
            row[i] = position as f64;
        }
    }
    layers
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_LABEL {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(MAX_LABEL - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::yaml::Pos;
    use crate::flow::{OnError, Retry};
    use crate::nodes::Role;
    use crate::store::NodeStatus;

    fn spec(id: &str, inputs: &[&str]) -> NodeSpec {
        NodeSpec {
            id: id.to_owned(),
            pos: Pos::new(1, 1),
            type_name: "filter".to_owned(),
            role: if inputs.is_empty() { Role::Source } else { Role::Transform },
            settings: serde_json::json!({"secret_env": "DO_NOT_SHOW"}),
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
            when: None,
            retry: Retry::default(),
            timeout: None,
            on_error: OnError::Fail,
        }
    }

    #[test]
    fn a_layer_is_the_longest_path_from_a_source() {
        // a → b → c, and a → c directly: c sits after b, not beside it.
        let nodes = [spec("a", &[]), spec("b", &["a"]), spec("c", &["a", "b"]), spec("d", &[])];
        let layers = layers(&nodes);
        assert_eq!(layers, vec![vec![0, 3], vec![1], vec![2]]);
    }

    #[test]
    fn nodes_follow_their_inputs_rows() {
        // Sources x (row 0) and y (row 1); y's child must be drawn above x's
        // child only if it came first — here x's child is listed last, yet
        // is drawn first because its input is higher.
        let nodes = [spec("x", &[]), spec("y", &[]), spec("from_y", &["y"]), spec("from_x", &["x"])];
        assert_eq!(layers(&nodes)[1], vec![3, 2]);
    }

    #[test]
    fn boxes_show_counts_and_escape_text_but_never_settings() {
        let nodes = [spec("read", &[]), spec("<save>", &["read"])];
        let record = NodeRunRecord {
            node_id: "read".into(),
            node_type: "filter".into(),
            status: NodeStatus::Succeeded,
            records_in: 0,
            records_out: 42,
            errors: 1,
            started_at: None,
            finished_at: None,
            error: Some("bad <line> 3".into()),
        };
        let last = HashMap::from([("read", &record)]);
        let svg = render(&nodes, &last, "main");
        assert!(svg.contains("data-node=\"read\""), "{svg}");
        assert!(svg.contains("in 0 · out 42 · errors 1"), "{svg}");
        assert!(svg.contains("data-node=\"&lt;save&gt;\""), "{svg}");
        assert!(svg.contains("data-from=\"read\" data-to=\"&lt;save&gt;\""), "{svg}");
        assert!(svg.contains("<title>read (filter): succeeded: bad &lt;line&gt; 3</title>"), "{svg}");
        assert!(svg.contains("not run yet"), "{svg}");
        assert!(!svg.contains("<save>"), "{svg}");
        assert!(!svg.contains("DO_NOT_SHOW"), "{svg}");
    }
}
