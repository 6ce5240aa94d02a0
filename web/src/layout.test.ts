import { describe, expect, it } from 'vitest';
import type { FlowNode } from './flowDoc';
import { layoutFlow, NODE_HEIGHT, NODE_WIDTH } from './layout';

function node(id: string, inputs: string[] = [], extra: Partial<FlowNode> = {}): FlowNode {
  return { id, section: 'nodes', use: 'log', inputs, settings: {}, common: {}, position: null, range: [0, 0], ...extra };
}

describe('layout', () => {
  it('lays out unplaced nodes left to right along their inputs and keeps the positions the user set', async () => {
    const { positions } = await layoutFlow([
      node('fetch'),
      node('fresh', ['fetch']),
      node('save', ['fresh'], { position: [900, -40] }),
    ]);
    expect(positions.get('fresh')![0]).toBeGreaterThanOrEqual(positions.get('fetch')![0] + NODE_WIDTH);
    expect(positions.get('save')).toEqual([900, -40]);
  });

  it('puts the errors handlers in a lane below every main node', async () => {
    const { positions, laneTop } = await layoutFlow([
      node('fetch', [], { position: [0, 300] }),
      node('report', [], { section: 'errors' }),
    ]);
    expect(laneTop).toBeGreaterThanOrEqual(300 + NODE_HEIGHT);
    expect(positions.get('report')![1]).toBeGreaterThan(laneTop);
  });
});
