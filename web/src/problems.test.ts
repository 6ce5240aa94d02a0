import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseFlow } from './flowDoc';
import { cycleIds, edgeHasProblem, offsetOf, placeProblems, problemsByNode } from './problems';

const src = readFileSync(fileURLToPath(new URL('../../flows/taobao-incremental.yaml', import.meta.url)), 'utf8');
const nodes = parseFlow(src).model.nodes;

describe('problem placement', () => {
  it('uses the node and the with-path the server gives', () => {
    const [placed] = placeProblems(
      [{ line: 17, col: 7, message: 'unknown setting "windw"', node: 'changed', path: ['nodes', 'changed', 'with', 'windw'] }],
      nodes,
      src,
    );
    expect(placed).toMatchObject({ nodes: ['changed'], field: 'windw', cycle: false });
  });

  it('falls back to the node whose entry holds the line and column', () => {
    const line = src.split('\n').findIndex((l) => l.includes('needs: [receiver_address]')) + 1;
    const [placed] = placeProblems([{ line, col: 7, message: 'x', node: null, path: null }], nodes, src);
    expect(placed.nodes).toEqual(['to_ship']);
    const [top] = placeProblems([{ line: 7, col: 1, message: 'x', node: null, path: null }], nodes, src);
    expect(top.nodes).toEqual([]);
  });

  it('puts a cycle on every node of it and on the edges between them', () => {
    const message = 'the nodes form a cycle: fresh -> others -> save -> fresh';
    expect(cycleIds(message, new Set(['fresh', 'others', 'save']))).toEqual(['fresh', 'others', 'save']);
    const placed = placeProblems([{ line: 28, col: 3, message, node: 'fresh', path: ['nodes', 'fresh'] }], nodes, src);
    expect([...problemsByNode(placed).keys()].sort()).toEqual(['fresh', 'others', 'save']);
    expect(edgeHasProblem(placed, 'fresh', 'others')).toBe(true);
    expect(edgeHasProblem(placed, 'changed', 'fresh')).toBe(false);
  });

  it('marks the edges into a node whose input is wrong', () => {
    const placed = placeProblems(
      [{ line: 46, col: 12, message: 'no node "x"', node: 'save', path: ['nodes', 'save', 'input'] }],
      nodes,
      src,
    );
    expect(placed[0].field).toBe('input');
    expect(edgeHasProblem(placed, 'others', 'save')).toBe(true);
    expect(edgeHasProblem(placed, 'fresh', 'others')).toBe(false);
  });

  it('converts line and column to an offset', () => {
    expect(offsetOf('ab\ncd\n', 2, 2)).toBe(4);
    expect(offsetOf('ab', 9, 1)).toBe(2);
  });
});
