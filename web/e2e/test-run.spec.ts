import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { flowFile, openFlow, settled } from './helpers';

const images = fileURLToPath(new URL('../../docs/images/', import.meta.url));

// The flow is renamed in the editor (not saved): a flow with no cursor yet starts a day back
// (`first_run`), and day-wide windows put the simulator's orders in two pages. tests/editor.rs then
// checks that the real database holds no run and no cursor of `taobao-tryout`.
test('a test run against the simulated shop shows counts and records on the canvas, and saves nothing', async ({
  page,
}) => {
  const shipped = flowFile('taobao-incremental');
  await openFlow(page, 'taobao-incremental');
  await page.getByTestId('flow-panel').locator('input').first().fill('taobao-tryout');
  await page.getByTestId('node-changed').locator('.flow-node-id').click();
  await page.locator('#with_window').fill('1d');
  await settled(page);

  await page.getByTestId('test-run-button').click();
  await expect(page.getByTestId('test-run-mode-shop')).toBeChecked();
  await page.getByTestId('test-run-pages').fill('2');
  await page.getByTestId('test-run-start').click();
  await expect(page.getByTestId('test-run-dialog')).toBeHidden({ timeout: 60_000 });
  await expect(page.getByTestId('status')).toContainText('Test run succeeded');

  await expect(page.getByTestId('node-count-changed')).toHaveText(/^in 0 · out [1-9]\d* · \d+ ms$/);
  const out = (await page.getByTestId('node-count-changed').textContent())!.match(/out (\d+)/)![1];
  await expect(page.getByTestId('node-count-fresh')).toContainText(`in ${out} · out ${out}`);
  await expect(page.getByTestId('node-count-save')).toContainText(`in ${out} ·`);

  // A node's records: what its inputs sent, and what it sent on.
  await page.getByTestId('node-save').locator('.flow-node-id').click();
  const panel = page.getByTestId('records-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByTestId('records-in')).toContainText('"tid"');
  await expect(panel.getByTestId('records-in')).toContainText('from others');
  await expect(panel.getByTestId('records-out')).toContainText('"tid"');
  await page.screenshot({ path: `${images}editor-test-run.png` });

  // In Chinese too.
  await page.getByTestId('lang-switch').click();
  await expect(page.getByTestId('node-count-changed')).toContainText('输入 0 · 输出');
  await page.getByTestId('lang-switch').click();

  // Nothing was saved: the file is as shipped (the database side is checked by tests/editor.rs).
  expect(flowFile('taobao-incremental')).toBe(shipped);
});

test('a test run on pasted records: a line that is not JSON is named, then the records flow through', async ({
  page,
}) => {
  await openFlow(page, 'example-orders');
  await page.getByTestId('test-run-button').click();
  await page.getByTestId('test-run-mode-fixtures').click();
  await page.getByTestId('fixture-orders').fill('{"tid": 1, "status": "WAIT_BUYER_PAY"}\n{"tid": 2');
  await page.getByTestId('test-run-start').click();
  await expect(page.getByTestId('test-run-error')).toContainText('orders: line 2');

  await page
    .getByTestId('fixture-orders')
    .fill('{"tid": 1, "status": "WAIT_BUYER_PAY", "payment": 5}\n{"tid": 2, "status": "TRADE_FINISHED", "payment": 20}');
  await page.getByTestId('test-run-start').click();
  await expect(page.getByTestId('test-run-dialog')).toBeHidden({ timeout: 60_000 });
  await expect(page.getByTestId('node-count-orders')).toContainText('in 0 · out 2');
  await expect(page.getByTestId('node-count-paid')).toContainText('in 2 · out 1');
  await page.getByTestId('node-paid').locator('.flow-node-id').click();
  await expect(page.getByTestId('records-panel').getByTestId('records-out')).toContainText('"TRADE_FINISHED"');
  await expect(page.getByTestId('records-panel').getByTestId('records-out')).not.toContainText('"WAIT_BUYER_PAY"');
});
