import { expect, test } from '@playwright/test';
import { flowFile, openEditor, openFlow, save, settled } from './helpers';

test('two editors save the same flow: the second is refused and shown the diff', async ({ browser }) => {
  const name = 'two-editors';
  const first = await (await browser.newContext()).newPage();
  await openEditor(first);
  await first.getByTestId('new-flow-button').click();
  await first.getByTestId('flow-name-input').fill(name);
  await first.getByTestId('template-example-orders').click();
  await settled(first);
  await save(first);
  await expect(first.getByTestId('status')).toHaveText('Saved.');

  const second = await (await browser.newContext()).newPage();
  await openFlow(second, name);

  await first.getByTestId('flow-description').fill('First editor was here.');
  await settled(first);
  await save(first);
  await expect(first.getByTestId('status')).toHaveText('Saved.');

  await second.getByTestId('flow-description').fill('Second editor was here.');
  await settled(second);
  await save(second);
  const diff = second.getByTestId('conflict-diff');
  await expect(diff).toBeVisible();
  await expect(diff.locator('.diff-removed')).toContainText('First editor was here.');
  await expect(diff.locator('.diff-added')).toContainText('Second editor was here.');
  expect(flowFile(name)).toContain('First editor was here.');

  // Taking theirs puts the saved text in the editor; a save then goes through on top of it.
  await second.getByTestId('take-theirs-button').click();
  await expect(second.getByTestId('flow-description')).toHaveValue('First editor was here.');

  // Both saves are in the history, newest first; an older one can be compared and restored.
  await second.getByTestId('versions-button').click();
  const entries = second.getByTestId('version-item');
  await expect(entries).toHaveCount(2);
  await expect(entries.first()).toContainText('playwright');
  await entries.last().getByRole('button').click();
  await expect(second.getByTestId('version-diff').locator('.diff-removed')).toContainText('First editor was here.');
  await second.getByTestId('restore-button').click();
  await expect(second.getByTestId('flow-description')).not.toHaveValue('First editor was here.');
});
