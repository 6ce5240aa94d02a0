import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { parse } from 'yaml';
import { connect, dropNode, flowFile, openEditor, save, selectNode, settled } from './helpers';

test('builds fetch_increment → dedupe → store_orders by drag and drop on a blank canvas; the saved file validates and syncs the shop', async ({
  page,
}) => {
  // Fixed names keep the screenshots (which show the flows list) the same from run to run; tests/editor.rs
  // serves a fresh copy of flows/ each time.
  const name = 'canvas-built';
  await openEditor(page);
  await page.getByTestId('new-flow-button').click();
  await page.getByTestId('flow-name-input').fill(name);
  await page.getByTestId('blank-flow-button').click();

  await page.getByTestId('flow-description').fill('Built on the canvas.');
  await page.getByTestId('flow-shop').selectOption({ index: 1 });
  await page.getByTestId('trigger-every').fill('5m');

  const canvas = (await page.getByTestId('canvas').boundingBox())!;
  const row = canvas.height / 3;
  await dropNode(page, 'fetch_increment', canvas.width * 0.15, row);
  await expect(page.getByTestId('node-fetch_increment')).toBeVisible();
  await dropNode(page, 'dedupe', canvas.width * 0.5, row);
  await expect(page.getByTestId('node-dedupe')).toBeVisible();
  await dropNode(page, 'store_orders', canvas.width * 0.85, row);
  await expect(page.getByTestId('node-store_orders')).toBeVisible();

  await connect(page, 'fetch_increment', 'dedupe');
  await connect(page, 'dedupe', 'store_orders');

  await selectNode(page, 'fetch_increment');
  await page.locator('#with_lookback').fill('5m');
  await page.locator('#with_window').fill('30m');
  await page.locator('#with_page_size').fill('100');
  await page.locator('#with_first_run').fill('3d');
  await selectNode(page, 'store_orders');
  await page.getByText('When, retry, timeout, on error').click();
  await page.locator('#common_retry_attempts').fill('3');

  await settled(page);
  await expect(page.getByTestId('problem-item')).toHaveCount(0);
  await save(page);
  await expect(page.getByTestId('status')).toHaveText('Saved.');

  const saved = parse(flowFile(name));
  expect(saved.flow).toBe(name);
  expect(saved.trigger).toEqual({ every: '5m' });
  expect(Object.keys(saved.nodes)).toEqual(['fetch_increment', 'dedupe', 'store_orders']);
  expect(saved.nodes.fetch_increment).toMatchObject({
    use: 'fetch_increment',
    with: { lookback: '5m', window: '30m', page_size: 100, first_run: '3d' },
  });
  expect(saved.nodes.dedupe).toMatchObject({ use: 'dedupe', input: 'fetch_increment' });
  expect(saved.nodes.store_orders).toMatchObject({ use: 'store_orders', input: 'dedupe', retry: { attempts: 3 } });
  expect(Object.keys(saved['x-layout'])).toEqual(['fetch_increment', 'dedupe', 'store_orders']);

  // tests/editor.rs gives the binary and a configuration whose shop is the simulator.
  const bin = process.env.ORDERFLOW_BIN;
  const config = process.env.ORDERFLOW_CONFIG;
  if (bin && config) {
    const file = join(process.env.ORDERFLOW_FLOWS_DIR!, `${name}.yaml`);
    expect(execFileSync(bin, ['--config', config, 'validate', file], { encoding: 'utf8' })).toContain(': ok,');
    const report = execFileSync(bin, ['--config', config, 'run', file], { encoding: 'utf8' });
    expect(report).toMatch(/succeeded/);
    expect(recordsOut(report).get('store_orders')).toBeGreaterThan(0);
  }
});

/** The per-node table `orderflow run` prints: node id → records out. */
function recordsOut(report: string): Map<string, number> {
  const rows = report.split('\n').map((line) => line.trim().split(/\s+/));
  return new Map(rows.filter((r) => r.length === 6 && /^\d+$/.test(r[4])).map((r) => [r[0], Number(r[4])]));
}
