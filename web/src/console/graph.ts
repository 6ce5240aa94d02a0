// A compiled flow's graph as the canvas wants it: nodes for the layout, edges for React Flow.
import type { Edge } from '@xyflow/react';
import type { FlowNode } from '../flowDoc';
import type { GraphNode } from './types';

/** The graph as the layout wants it: a compiled node has no settings or position to offer. */
export function asFlowNodes(nodes: GraphNode[]): FlowNode[] {
  return nodes.map((n) => ({
    id: n.id,
    section: n.section,
    use: n.use,
    inputs: n.inputs,
    settings: {},
    common: {},
    position: null,
    range: [0, 0],
  }));
}

/** Edges of the graph, id `<from>:<to>` (a node id has no colon), marked `conditional` (dashed) when the receiving node has
 * `when:`; the expression itself is shown on that node. */
export function graphEdges(nodes: GraphNode[]): Edge[] {
  const ids = new Set(nodes.map((n) => n.id));
  return nodes.flatMap((n) =>
    n.inputs
      .filter((from) => ids.has(from))
      .map((from) => ({
        id: `${from}:${n.id}`,
        source: from,
        target: n.id,
        className: n.when ? 'conditional' : undefined,
      })),
  );
}

