import { expect, test } from '@playwright/test';
import { connect, dropNode, flowFile, openFlow, save, selectNode, settled } from './helpers';

/** Whether `part` appears in `whole` in order (other lines may sit between). */
function inOrder(part: string[], whole: string[]): boolean {
  let at = 0;
  for (const line of whole) if (at < part.length && line === part[at]) at++;
  return at === part.length;
}

test('moves, changes and adds on taobao-incremental: every comment and untouched key stays where it was', async ({
  page,
}) => {
  const before = flowFile('taobao-incremental');
  await openFlow(page, 'taobao-incremental');

  // Move a node.
  const box = (await page.getByTestId('node-closed').boundingBox())!;
  await page.mouse.move(box.x + 40, box.y + 15);
  await page.mouse.down();
  await page.mouse.move(box.x + 40, box.y + 135, { steps: 8 });
  await page.mouse.up();

  // Change a setting.
  await selectNode(page, 'changed');
  await page.locator('#with_page_size').fill('50');

  // Add a node and wire it.
  const canvas = (await page.getByTestId('canvas').boundingBox())!;
  await dropNode(page, 'log', canvas.width - 120, 60);
  await expect(page.getByTestId('node-log')).toBeVisible();
  await connect(page, 'save', 'log');

  await settled(page);
  await save(page);
  await expect(page.getByTestId('status')).toHaveText('Saved.');

  const after = flowFile('taobao-incremental');
  const beforeLines = before.split('\n');
  const afterLines = after.split('\n');
  const comments = beforeLines.filter((l) => l.trimStart().startsWith('#'));
  expect(comments.length).toBeGreaterThan(5);
  expect(afterLines.filter((l) => l.trimStart().startsWith('#'))).toEqual(comments);
  // Every line but the changed one is still there, in the same order; the file starts as it did.
  const untouched = beforeLines.filter((l) => l !== '      page_size: 100');
  expect(inOrder(untouched, afterLines)).toBe(true);
  expect(after.startsWith(before.slice(0, before.indexOf('      page_size: 100')))).toBe(true);
  expect(after).toContain('      page_size: 50\n');
  expect(after).toMatch(/\n {2}log:\n {4}use: log\n {4}input: save\n/);
  expect(after).toMatch(/\nx-layout:\n(?: {2}\w+: \[-?\d+, -?\d+\]\n)*? {2}closed: \[-?\d+, -?\d+\]\n/);
});
