import { expect, test } from '@playwright/test';
import { flowFile, openFlow, save, selectNode, settled } from './helpers';

test('renaming a node on the canvas moves every input naming it; deleting one removes it and its inputs', async ({
  page,
}) => {
  const before = flowFile('example-orders');
  await openFlow(page, 'example-orders');

  await selectNode(page, 'vip');
  await page.getByTestId('node-id-input').fill('vip_tagged');
  await page.getByTestId('rename-button').click();
  await expect(page.getByTestId('node-vip_tagged')).toBeVisible();

  await selectNode(page, 'vip_buyers');
  await page.getByTestId('delete-node-button').click();
  await expect(page.getByTestId('node-vip_buyers')).toHaveCount(0);

  await settled(page);
  await expect(page.getByTestId('problem-item')).toHaveCount(0);
  await save(page);
  await expect(page.getByTestId('status')).toHaveText('Saved.');

  const expected = before
    .replace('  vip:\n', '  vip_tagged:\n')
    .replace('    input: vip\n    with:\n      condition', '    input: vip_tagged\n    with:\n      condition')
    .replace(/ {2}vip_buyers:\n(?: {4}.*\n)+/, '');
  expect(flowFile('example-orders')).toBe(expected);
});
