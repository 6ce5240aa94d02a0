import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as flow from './flowDoc';

const flowsDir = fileURLToPath(new URL('../../flows/', import.meta.url));
const taobao = readFileSync(`${flowsDir}taobao-incremental.yaml`, 'utf8');

describe('flow file round trip', () => {
  it.each(readdirSync(flowsDir).filter((f) => f.endsWith('.yaml')))('%s prints back byte for byte', (file) => {
    const src = readFileSync(`${flowsDir}${file}`, 'utf8');
    expect(flow.editFlow(src, () => {})).toBe(src);
  });

  it('moves, changes, adds and renames in taobao-incremental with every comment and untouched key in place', () => {
    const before = flow.parseFlow(taobao).model;
    const changed = before.nodes.find((n) => n.id === 'changed')!;
    const out = flow.editFlow(taobao, (doc) => {
      flow.setPosition(doc, 'changed', [40.4, 80]);
      flow.setSettings(doc, 'changed', changed.settings, { ...changed.settings, page_size: 50 });
      flow.addNode(doc, 'nodes', 'audit', 'log', 'save');
      flow.renameNode(doc, 'fresh', 'unique');
    });
    const expected =
      taobao
        .replace('      page_size: 100\n', '      page_size: 50\n')
        .replace('  fresh:\n', '  unique:\n')
        .replaceAll('    input: fresh\n', '    input: unique\n')
        .replace('errors:\n', '  audit:\n    use: log\n    input: save\nerrors:\n') + 'x-layout:\n  changed: [40, 80]\n';
    expect(out).toBe(expected);
    const after = flow.parseFlow(out).model;
    expect(after.nodes.filter((n) => n.inputs.includes('unique')).map((n) => n.id)).toEqual(['to_ship', 'others']);
    expect(after.nodes.find((n) => n.id === 'changed')!.position).toEqual([40, 80]);
  });

  it('keeps the comment inside a setting block when a nested setting changes', () => {
    const out = flow.editFlow(taobao, (doc) =>
      flow.applyValue(doc, ['nodes', 'changed', 'with', 'breaker', 'failure_rate'], 5, 7),
    );
    expect(out).toBe(taobao.replace('        failure_rate: 5\n', '        failure_rate: 7\n'));
  });

  it('connects and disconnects inputs: one id stays plain, several become a flow list', () => {
    let src = flow.editFlow(taobao, (doc) => flow.connect(doc, 'changed', 'closed'));
    expect(src).toContain('    input: [save, changed]\n');
    src = flow.editFlow(src, (doc) => flow.disconnect(doc, 'save', 'closed'));
    expect(src).toContain('    input: changed\n    when: record.status == "TRADE_CLOSED"');
    src = flow.editFlow(src, (doc) => flow.disconnect(doc, 'to_ship', 'save'));
    expect(src).toContain('    input: others\n    retry:');
  });

  it('deletes a node with the inputs naming it and its position', () => {
    let src = flow.editFlow(taobao, (doc) => flow.setPosition(doc, 'others', [1, 2]));
    src = flow.editFlow(src, (doc) => flow.deleteNode(doc, 'others'));
    const model = flow.parseFlow(src).model;
    expect(model.nodes.map((n) => n.id)).not.toContain('others');
    expect(model.nodes.find((n) => n.id === 'save')!.inputs).toEqual(['to_ship']);
    expect(src).not.toContain('x-layout');
    expect(src).toContain('  # The warehouse needs the address of orders to ship');
  });

  it('removes a setting cleared in the form, and `with:` when it is left empty', () => {
    const src = flow.editFlow(taobao, (doc) =>
      flow.setSettings(doc, 'closed', { message: 'Order closed after payment.', fields: ['tid'] }, {}),
    );
    expect(src).toContain('  closed:\n    use: log\n    input: save\n    when: record.status == "TRADE_CLOSED"\nerrors:');
  });

  it('builds a flow from a blank one', () => {
    const src = flow.editFlow(flow.blankFlow('shop-sync'), (doc) => {
      flow.addNode(doc, 'nodes', 'changed', 'fetch_increment');
      flow.addNode(doc, 'nodes', 'fresh', 'dedupe');
      flow.connect(doc, 'changed', 'fresh');
      flow.setSettings(doc, 'changed', {}, { lookback: '5m' });
    });
    expect(src).toBe(
      'flow: shop-sync\ndescription: ""\nnodes:\n  changed:\n    use: fetch_increment\n    with:\n      lookback: 5m\n' +
        '  fresh:\n    use: dedupe\n    input: changed\n',
    );
  });

  it('puts a new flow key before the graph, and keeps a text field being retyped in its place', () => {
    let src = flow.editFlow(flow.blankFlow('x'), (doc) => flow.setFlowField(doc, 'trigger', undefined, { every: '5m' }));
    src = flow.editFlow(src, (doc) => flow.setFlowField(doc, 'description', '', '', true));
    expect(src).toBe('flow: x\ndescription: ""\ntrigger:\n  every: 5m\nnodes: {}\n');
    src = flow.editFlow(src, (doc) => flow.setFlowField(doc, 'trigger', { every: '5m' }, { every: '10m' }));
    expect(src).toContain('trigger:\n  every: 10m\nnodes:');
  });

  it('forgets every position for an automatic layout, leaving the rest of the file as it was', () => {
    const placed = flow.editFlow(taobao, (doc) => flow.setPosition(doc, 'save', [10, 20]));
    expect(flow.editFlow(placed, (doc) => flow.clearPositions(doc))).toBe(taobao);
  });

  it('refuses to rename onto an existing id and finds a fresh id per type', () => {
    const doc = flow.parseFlowDoc(taobao);
    expect(() => flow.renameNode(doc, 'fresh', 'save')).toThrow(/already/);
    expect(flow.freshId(doc, 'log')).toBe('log');
    flow.addNode(doc, 'nodes', 'log', 'log');
    expect(flow.freshId(doc, 'log')).toBe('log_2');
  });

  it('reads the errors lane and a syntax error', () => {
    const model = flow.parseFlow(taobao).model;
    expect(model.nodes.find((n) => n.id === 'report')!.section).toBe('errors');
    expect(flow.parseFlow('flow: x\nnodes: [\n').syntaxError).toMatchObject({ line: 3 });
  });
});
