// Automatic layout with elkjs: nodes the user has not placed get a left-to-right layered position; the
// `errors:` handlers get their own lane below the main graph.
import type { FlowNode } from './flowDoc';

export const NODE_WIDTH = 160;
export const NODE_HEIGHT = 56;
/** The gap between the main graph and the errors lane. */
export const LANE_GAP = 80;

export type Point = [number, number];

interface ElkNode {
  id: string;
  x?: number;
  y?: number;
  width?: number;
  height?: number;
  children?: ElkNode[];
  edges?: { id: string; sources: string[]; targets: string[] }[];
  layoutOptions?: Record<string, string>;
}

interface Elk {
  layout: (graph: ElkNode) => Promise<ElkNode>;
}

let elk: Promise<Elk> | null = null;

function loadElk(): Promise<Elk> {
  elk ??= import('elkjs/lib/elk.bundled.js').then(({ default: ELK }) => new ELK() as unknown as Elk);
  return elk;
}

async function layered(nodes: FlowNode[]): Promise<Map<string, Point>> {
  const ids = new Set(nodes.map((n) => n.id));
  const graph: ElkNode = {
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.spacing.nodeNode': '30',
      'elk.layered.spacing.nodeNodeBetweenLayers': '50',
    },
    children: nodes.map((n) => ({ id: n.id, width: NODE_WIDTH, height: NODE_HEIGHT })),
    edges: nodes.flatMap((n) =>
      n.inputs.filter((i) => ids.has(i)).map((i) => ({ id: `${i}->${n.id}`, sources: [i], targets: [n.id] })),
    ),
  };
  const result = await (await loadElk()).layout(graph);
  return new Map((result.children ?? []).map((c) => [c.id, [c.x ?? 0, c.y ?? 0] as Point]));
}

export interface Layout {
  positions: Map<string, Point>;
  /** Where the errors lane starts (its top y). */
  laneTop: number;
}

/** Positions for every node: the user's from `x-layout`, elk's for the rest. */
export async function layoutFlow(nodes: FlowNode[]): Promise<Layout> {
  const main = nodes.filter((n) => n.section === 'nodes');
  const handlers = nodes.filter((n) => n.section === 'errors');
  const positions = await layered(main);
  for (const n of main) if (n.position) positions.set(n.id, n.position);
  const bottom = Math.max(0, ...main.map((n) => (positions.get(n.id)?.[1] ?? 0) + NODE_HEIGHT));
  const laneTop = bottom + LANE_GAP;
  const lane = await layered(handlers);
  for (const n of handlers) {
    const [x, y] = lane.get(n.id) ?? [0, 0];
    positions.set(n.id, n.position ?? [x, laneTop + 40 + y]);
  }
  return { positions, laneTop };
}
