// A flow's graph, read-only, on the same React Flow canvas and elk layout as the editor: each node shows
// its id, type, `when:` and the counts a run recorded for it; edges into a `when:` node are dashed;
// `errors:` handlers on a canvas apart.
import { useEffect, useMemo, useState } from 'react';
import { Background, Controls, Handle, Position, ReactFlow, type Node, type NodeProps } from '@xyflow/react';
import { useI18n } from '../i18n';
import { layoutFlow, NODE_HEIGHT, type Layout } from '../layout';
import { useConsole } from './context';
import { nodeCounts } from './format';
import { asFlowNodes, graphEdges } from './graph';
import { fill } from './messages';
import type { GraphNode, NodeRunRecord } from './types';

interface CountedNodeData extends Record<string, unknown> {
  node: GraphNode;
  record: NodeRunRecord | undefined;
}

function CountedNode({ data }: NodeProps<Node<CountedNodeData>>) {
  const { t } = useConsole();
  const i18n = useI18n();
  const counts = nodeCounts(data.record);
  const status = data.record?.status ?? 'not_run';
  return (
    <div
      className={`flow-node graph-node role-${data.node.role} status-${status}`}
      data-testid={`graph-node-${data.node.id}`}
      data-node={data.node.id}
      title={data.record?.error ?? undefined}
    >
      {data.node.role !== 'source' && <Handle type="target" position={Position.Left} isConnectable={false} />}
      <div className="flow-node-id">{data.node.id}</div>
      <div className="flow-node-type">{i18n.typeName(data.node.use)}</div>
      {data.node.when && <div className="graph-node-when">{fill(t.when, { expression: data.node.when })}</div>}
      <div className="graph-node-counts">{counts ? fill(t.counts, counts) : t.notRunYet}</div>
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
}

const nodeTypes = { counted: CountedNode };

/** A node here is taller than the editor's (its counts and `when:` below the type): the editor's layout
 * leaves NODE_HEIGHT plus a gap per row, so rows are spread by this much to keep the gap. */
const COUNTED_NODE_HEIGHT = 100;
const ROW_STRETCH = (COUNTED_NODE_HEIGHT + 30) / (NODE_HEIGHT + 30);

export default function RunGraph(props: { nodes: GraphNode[]; records: NodeRunRecord[]; section: 'nodes' | 'errors' }) {
  const members = useMemo(() => props.nodes.filter((n) => n.section === props.section), [props.nodes, props.section]);
  const [layout, setLayout] = useState<Layout | null>(null);
  useEffect(() => {
    let current = true;
    // Each section is laid out on its own canvas: both go through the layout's main lane.
    layoutFlow(asFlowNodes(members).map((n) => ({ ...n, section: 'nodes' }))).then(
      (result) => current && setLayout(result),
    );
    return () => {
      current = false;
    };
  }, [members]);

  const byId = useMemo(() => new Map(props.records.map((r) => [r.node_id, r])), [props.records]);
  const nodes = useMemo(
    (): Node<CountedNodeData>[] =>
      layout
        ? members.map((node) => {
            const [x, y] = layout.positions.get(node.id) ?? [0, 0];
            const position = { x, y: y * ROW_STRETCH };
            return { id: node.id, type: 'counted', position, data: { node, record: byId.get(node.id) } };
          })
        : [],
    [layout, members, byId],
  );
  const edges = useMemo(() => graphEdges(members), [members]);
  const bottom = layout ? Math.max(0, ...[...layout.positions.values()].map(([, y]) => y * ROW_STRETCH)) : 0;

  return (
    <div
      className={`run-graph graph-${props.section}`}
      data-testid={`graph-${props.section}`}
      style={{ height: Math.min(560, Math.max(180, bottom + COUNTED_NODE_HEIGHT + 80)) }}
    >
      {layout && (
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          nodesDraggable={false}
          nodesConnectable={false}
          elementsSelectable={false}
          fitView
          fitViewOptions={{ padding: 0.15, maxZoom: 1 }}
          proOptions={{ hideAttribution: true }}
          minZoom={0.2}
        >
          <Background />
          <Controls showInteractive={false} />
        </ReactFlow>
      )}
    </div>
  );
}
