// Puts each validation problem on the node, field or edge it belongs to.
import type { FlowNode } from './flowDoc';
import type { Problem } from './types';

export interface PlacedProblem extends Problem {
  /** The nodes to mark: the problem's own node, or every node of a cycle. */
  nodes: string[];
  /** The `with:` setting (or common key) the problem is about, when the path names one. */
  field: string | null;
  /** Whether the problem is a cycle: the edges between its nodes are marked. */
  cycle: boolean;
}

/** The 0-based offset of a 1-based line and column in `src`. */
export function offsetOf(src: string, line: number, col: number): number {
  let offset = 0;
  for (let l = 1; l < line; l++) {
    const next = src.indexOf('\n', offset);
    if (next < 0) return src.length;
    offset = next + 1;
  }
  return Math.min(offset + Math.max(col - 1, 0), src.length);
}

const CYCLE = /cycle: (.+)$/;

/** The ids a cycle message names: `the nodes form a cycle: a -> b -> a`. */
export function cycleIds(message: string, known: Set<string>): string[] {
  const match = CYCLE.exec(message);
  if (!match) return [];
  return [...new Set(match[1].split('->').map((s) => s.trim()))].filter((id) => known.has(id));
}

function nodeAt(nodes: FlowNode[], offset: number): FlowNode | undefined {
  return nodes.find((n) => n.range[0] <= offset && offset < n.range[1]);
}

export function placeProblems(problems: Problem[], nodes: FlowNode[], src: string): PlacedProblem[] {
  const known = new Set(nodes.map((n) => n.id));
  return problems.map((problem) => {
    const path = problem.path ?? [];
    const inNodeSection = (path[0] === 'nodes' || path[0] === 'errors') && typeof path[1] === 'string';
    const cycle = cycleIds(problem.message, known);
    let owner = problem.node ?? (inNodeSection ? (path[1] as string) : null);
    if (!owner && cycle.length === 0) owner = nodeAt(nodes, offsetOf(src, problem.line, problem.col))?.id ?? null;
    const ownNodes = cycle.length > 0 ? cycle : owner && known.has(owner) ? [owner] : [];
    const key = inNodeSection ? path[2] : undefined;
    const field = key === 'with' && typeof path[3] === 'string' ? path[3] : typeof key === 'string' && key !== 'with' ? key : null;
    return {
      ...problem,
      nodes: ownNodes,
      field,
      cycle: cycle.length > 0,
    };
  });
}

/** Problems by node id, for the badges on the canvas. */
export function problemsByNode(placed: PlacedProblem[]): Map<string, PlacedProblem[]> {
  const byNode = new Map<string, PlacedProblem[]>();
  for (const problem of placed) {
    for (const id of problem.nodes) byNode.set(id, [...(byNode.get(id) ?? []), problem]);
  }
  return byNode;
}

/** Whether the edge `from` → `to` carries a problem: an input of `to` is wrong, or both ends are in a cycle. */
export function edgeHasProblem(placed: PlacedProblem[], from: string, to: string): boolean {
  return placed.some((p) =>
    p.cycle ? p.nodes.includes(from) && p.nodes.includes(to) : p.field === 'input' && p.nodes.includes(to),
  );
}
