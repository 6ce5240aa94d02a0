import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { openFlow, selectNode } from './helpers';

const images = fileURLToPath(new URL('../../docs/images/', import.meta.url));

test('the editor in English and in Chinese, with the language switch remembered', async ({ page }) => {
  await openFlow(page, 'taobao-incremental', 'en');
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
