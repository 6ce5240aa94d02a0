import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { openEditor, save, selectNode, settled } from './helpers';

const images = fileURLToPath(new URL('../../docs/images/', import.meta.url));

test('the editor in English and in Chinese, with the language switch remembered', async ({ page }) => {
  // A saved copy of the shipped taobao-incremental (the templates are the flows as shipped): the other
  // specs edit the flow itself.
  await openEditor(page, '', 'en');
  await page.getByTestId('new-flow-button').click();
  await page.getByTestId('flow-name-input').fill('taobao-tour');
  await page.getByTestId('template-taobao-incremental').click();
  await settled(page);
  await save(page);
  await expect(page.getByTestId('status')).toHaveText('Saved.');
  await selectNode(page, 'changed');
  await expect(page.getByTestId('lang-switch')).toHaveText('中文');
  await expect(page.getByTestId('save-button')).toHaveText('Save');
  await page.screenshot({ path: `${images}editor-en.png` });

  await page.getByTestId('lang-switch').click();
  await expect(page.getByTestId('lang-switch')).toHaveText('English');
  await expect(page.getByTestId('save-button')).toHaveText('保存');
  await expect(page.getByTestId('palette-item-fetch_increment')).toContainText('增量拉取订单');
  // Switching keeps the open flow and its selection (nothing is reloaded).
  await expect(page.getByTestId('node-id-input')).toHaveValue('changed');
  await page.screenshot({ path: `${images}editor-zh.png` });

  await page.reload();
  await expect(page.getByTestId('save-button')).toHaveText('保存');
});
