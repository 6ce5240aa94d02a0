import { describe, expect, it } from 'vitest';
import { asFlowNodes, graphEdges } from './graph';
import type { GraphNode } from './types';

const node = (id: string, inputs: string[], when: string | null = null): GraphNode => ({
  id,
  use: 'log',
  role: inputs.length ? 'transform' : 'source',
  section: 'nodes',
  inputs,
  when,
});

describe('the read-only graph', () => {
  it('draws one edge per input between drawn nodes, dashed where the receiving node has when:', () => {
    const edges = graphEdges([node('orders', []), node('vip', ['orders']), node('vip_buyers', ['vip'], '"vip" in tags')]);
    expect(edges.map((e) => [e.id, e.source, e.target, e.className ?? null])).toEqual([
      ['orders:vip', 'orders', 'vip', null],
      ['vip:vip_buyers', 'vip', 'vip_buyers', 'conditional'],
    ]);
  });

  it('leaves out inputs from nodes not on this canvas (the other section)', () => {
    expect(graphEdges([node('report', ['nowhere'])])).toEqual([]);
  });

  it('gives the layout nodes with no position, so elk places every one', () => {
    const [laid] = asFlowNodes([node('vip', ['orders'])]);
    expect(laid).toMatchObject({ id: 'vip', use: 'log', inputs: ['orders'], position: null, section: 'nodes' });
  });
});
