import { expect, test } from '@playwright/test';
import { connect, flowFile, openFlow, save, selectNode, settled } from './helpers';

test('a wrong setting and a cycle made on the canvas show on their nodes and in problems with line:col; the invalid flow is not saved', async ({
  page,
}) => {
  const before = flowFile('taobao-incremental');
  await openFlow(page, 'taobao-incremental');
  await expect(page.getByTestId('problem-item')).toHaveCount(0);

  // A wrong setting: a page size the platform does not allow (1 to 100).
  await selectNode(page, 'changed');
  await page.locator('#with_page_size').fill('500');
  // A cycle: save feeds fresh, which feeds save.
  await connect(page, 'save', 'fresh');
  await settled(page);

  const items = page.getByTestId('problem-item');
  const setting = page.locator('[data-testid="problem-item"][data-nodes="changed"]');
  await expect(setting).toHaveCount(1);
  await expect(setting).toHaveText(/^\d+:\d+changed/);
  const cycle = items.filter({ hasText: 'cycle' });
  await expect(cycle).toHaveText(/^\d+:\d+/);
  await expect(cycle).toHaveAttribute('data-nodes', /\bfresh\b.*\bsave\b/);
  await expect(page.getByTestId('node-changed')).toHaveClass(/has-problem/);
  for (const id of ['fresh', 'save']) await expect(page.getByTestId(`node-${id}`)).toHaveClass(/has-problem/);
  await expect(page.getByTestId('node-report')).not.toHaveClass(/has-problem/);

  // The problem's line:col leads to the YAML: clicking it puts the cursor on that line.
  await setting.click();
  await expect(page.locator('.cm-activeLine')).toContainText('page_size: 500');

  await save(page);
  await expect(page.getByTestId('status')).toContainText('Not saved');
  expect(flowFile('taobao-incremental')).toBe(before);

  // Kept as a draft instead: the file stays as it was, and the next editor is offered the draft.
  await page.getByTestId('save-draft-button').click();
  await expect(page.getByTestId('status')).toContainText('Draft saved');
  expect(flowFile('taobao-incremental')).toBe(before);
  const next = await page.context().newPage();
  await openFlow(next, 'taobao-incremental');
  await next.getByTestId('open-draft-button').click();
  await expect(next.locator('.cm-content')).toContainText('page_size: 500');
});
