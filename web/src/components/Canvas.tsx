// The flow as a graph: drag nodes in from the palette, wire an output to an input (`input:`), move, delete.
import { problemText } from '../problemText';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  Background,
  Controls,
  Handle,
  Position,
  ReactFlow,
  applyNodeChanges,
  useReactFlow,
  type Connection,
  type Edge,
  type Node,
  type NodeChange,
  type NodeProps,
} from '@xyflow/react';
import type { FlowNode, Section } from '../flowDoc';
import { useI18n } from '../i18n';
import { layoutFlow, NODE_HEIGHT, NODE_WIDTH, type Layout, type Point } from '../layout';
import { edgeHasProblem, problemsByNode, type PlacedProblem } from '../problems';
import type { NodeRun } from '../testRun';
import type { NodeRole } from '../types';
import { DRAG_TYPE } from './Palette';

interface FlowNodeData extends Record<string, unknown> {
  id: string;
  type: string;
  role: NodeRole;
  problems: PlacedProblem[];
  /** What the node did in the last test run. */
  run?: NodeRun;
}

function FlowNodeView({ data, selected }: NodeProps<Node<FlowNodeData>>) {
  const i18n = useI18n();
  const bad = data.problems.length > 0;
  return (
    <div
      className={`flow-node role-${data.role}${bad ? ' has-problem' : ''}${selected ? ' selected' : ''}`}
      data-testid={`node-${data.id}`}
      title={data.problems.map((p) => `${p.line}:${p.col} ${problemText(p.message, i18n.lang)}`).join('\n')}
    >
      {data.role !== 'source' && (
        <Handle type="target" position={Position.Left} data-testid={`handle-in-${data.id}`} />
      )}
      <div className="flow-node-id">{data.id}</div>
      <div className="flow-node-type">{i18n.typeName(data.type)}</div>
      {bad && <div className="flow-node-badge">{data.problems.length}</div>}
      {data.run && (
        <div
          className={`flow-node-count${data.run.error || data.run.errors > 0 ? ' error' : ''}`}
          data-testid={`node-count-${data.id}`}
          title={data.run.error ?? undefined}
        >
          {i18n.format(i18n.t.testRunCounts, { in: String(data.run.records_in), out: String(data.run.records_out) })}
          {data.run.elapsed_ms !== null && ` · ${data.run.elapsed_ms} ms`}
        </div>
      )}
      <Handle type="source" position={Position.Right} data-testid={`handle-out-${data.id}`} />
    </div>
  );
}

function LaneView() {
  const i18n = useI18n();
  return <div className="errors-lane">{i18n.t.errorsLane}</div>;
}

const nodeTypes = { flow: FlowNodeView, lane: LaneView };

const LANE_ID = '__errors_lane';

interface Props {
  nodes: FlowNode[];
  roles: Map<string, NodeRole>;
  problems: PlacedProblem[];
  selected: string | null;
  onSelect: (id: string | null) => void;
  onMove: (id: string, at: Point) => void;
  onConnect: (from: string, to: string) => void;
  onDisconnect: (from: string, to: string) => void;
  onDelete: (ids: string[]) => void;
  onAdd: (type: string, at: Point, section: Section) => void;
  /** The last test run's nodes, by id. */
  runs?: Map<string, NodeRun>;
  onEdgeClick?: (from: string, to: string) => void;
}

export default function Canvas(props: Props) {
  const { nodes, roles, problems, selected, runs } = props;
  const { screenToFlowPosition, fitView } = useReactFlow();
  const [layout, setLayout] = useState<Layout | null>(null);

  // Laid out again when the graph's shape or a kept position changes, not on every keystroke (a new
  // `nodes` array comes with each edit of a setting): `shape` stands for `nodes` here.
  const shape = JSON.stringify(nodes.map((n) => [n.id, n.section, n.inputs, n.position]));
  const latestNodes = useRef(nodes);
  latestNodes.current = nodes;
  useEffect(() => {
    let current = true;
    layoutFlow(latestNodes.current).then((result) => current && setLayout(result));
    return () => {
      current = false;
    };
  }, [shape]);

  // Fitted once the first layout is there, and when the first node arrives on a blank canvas; not after
  // every edit, which would move the view under the user's hand.
  const hasLayout = layout !== null;
  const isEmpty = nodes.length === 0;
  useEffect(() => {
    // After React Flow has measured the nodes it was just given.
    if (hasLayout) window.setTimeout(() => fitView({ padding: 0.15, maxZoom: 1 }), 50);
  }, [hasLayout, isEmpty, fitView]);

  const byNode = useMemo(() => problemsByNode(problems), [problems]);

  const computed = useMemo((): Node[] => {
    if (!layout) return [];
    const flowNodes: Node<FlowNodeData>[] = nodes.map((n) => {
      const [x, y] = layout.positions.get(n.id) ?? [0, 0];
      return {
        id: n.id,
        type: 'flow',
        position: { x, y },
        selected: n.id === selected,
        data: {
          id: n.id,
          type: n.use,
          role: roles.get(n.use) ?? 'transform',
          problems: byNode.get(n.id) ?? [],
          run: runs?.get(n.id),
        },
      };
    });
    const xs = [...layout.positions.values()].map(([x]) => x);
    const lane: Node = {
      id: LANE_ID,
      type: 'lane',
      position: { x: Math.min(0, ...xs) - 40, y: layout.laneTop },
      data: {},
      draggable: false,
      selectable: false,
      deletable: false,
      connectable: false,
      zIndex: -1,
      style: { width: Math.max(...xs, 600) - Math.min(0, ...xs) + NODE_WIDTH + 80, height: NODE_HEIGHT * 3 },
    };
    return [lane, ...flowNodes];
  }, [layout, nodes, roles, byNode, selected, runs]);

  const [rfNodes, setRfNodes] = useState<Node[]>(computed);
  useEffect(() => setRfNodes(computed), [computed]);

  const edges = useMemo((): Edge[] => {
    const ids = new Set(nodes.map((n) => n.id));
    return nodes.flatMap((n) =>
      n.inputs
        .filter((from) => ids.has(from))
        .map((from) => ({
          id: `${from}->${n.id}`,
          source: from,
          target: n.id,
          className: edgeHasProblem(problems, from, n.id) ? 'edge-problem' : undefined,
          label: runs?.get(from) ? String(runs.get(from)!.records_out) : undefined,
        })),
    );
  }, [nodes, problems, runs]);

  const onNodesChange = useCallback(
    (changes: NodeChange[]) => setRfNodes((current) => applyNodeChanges(changes, current)),
    [],
  );

  const onDrop = (event: React.DragEvent) => {
    const type = event.dataTransfer.getData(DRAG_TYPE);
    if (!type) return;
    event.preventDefault();
    const at = screenToFlowPosition({ x: event.clientX, y: event.clientY });
    const section: Section = layout && at.y >= layout.laneTop ? 'errors' : 'nodes';
    props.onAdd(type, [at.x - NODE_WIDTH / 2, at.y - NODE_HEIGHT / 2], section);
  };

  return (
    <div
      className="canvas"
      data-testid="canvas"
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = 'move';
      }}
      onDrop={onDrop}
    >
      <ReactFlow
        nodes={rfNodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onNodeClick={(_, node) => node.id !== LANE_ID && props.onSelect(node.id)}
        onPaneClick={() => props.onSelect(null)}
        onEdgeClick={(_, edge) => props.onEdgeClick?.(edge.source, edge.target)}
        onNodeDragStop={(_, node) => node.id !== LANE_ID && props.onMove(node.id, [node.position.x, node.position.y])}
        onConnect={(c: Connection) => c.source && c.target && props.onConnect(c.source, c.target)}
        onNodesDelete={(deleted) => props.onDelete(deleted.map((n) => n.id).filter((id) => id !== LANE_ID))}
        onEdgesDelete={(deleted) => deleted.forEach((e) => props.onDisconnect(e.source, e.target))}
        deleteKeyCode={['Delete', 'Backspace']}
        proOptions={{ hideAttribution: true }}
        minZoom={0.2}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}
