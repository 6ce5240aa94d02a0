import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Page } from '@playwright/test';

/** The text of a flow file in the folder the server edits. */
export function flowFile(name: string): string {
  const dir = process.env.ORDERFLOW_FLOWS_DIR;
  if (!dir) throw new Error('set ORDERFLOW_FLOWS_DIR to the flows folder the server edits');
  return readFileSync(join(dir, `${name}.yaml`), 'utf8');
}

/** Opens the editor in `lang`, at `path` under /editor/. */
export async function openEditor(page: Page, path = '', lang: 'en' | 'zh' = 'en'): Promise<void> {
  await page.addInitScript((chosen) => {
    if (!localStorage.getItem('orderflow.lang')) localStorage.setItem('orderflow.lang', chosen);
    localStorage.setItem('orderflow.user', 'playwright');
  }, lang);
  await page.goto(path);
  await expect(page.getByTestId('palette-item-dedupe')).toBeVisible();
}

export async function openFlow(page: Page, name: string, lang: 'en' | 'zh' = 'en'): Promise<void> {
  await openEditor(page, `flows/${name}`, lang);
  await expect(page.locator('[data-testid^="node-"]').first()).toBeVisible();
  await settled(page);
}

/** Waits until the last edit has been validated by the server. */
export async function settled(page: Page): Promise<void> {
  await page.waitForTimeout(400);
  await expect(page.getByTestId('problems')).not.toContainText(/Checking|检查中/);
}

/** Drags a node type from the palette onto the canvas at (x, y) of the canvas. */
export async function dropNode(page: Page, type: string, x: number, y: number): Promise<void> {
  await page
    .getByTestId(`palette-item-${type}`)
    .dragTo(page.getByTestId('canvas'), { targetPosition: { x, y } });
}

/** Wires `from`'s output to `to`'s input by dragging between their handles. */
export async function connect(page: Page, from: string, to: string): Promise<void> {
  const source = await page.getByTestId(`handle-out-${from}`).boundingBox();
  const target = await page.getByTestId(`handle-in-${to}`).boundingBox();
  if (!source || !target) throw new Error(`handles of ${from} → ${to} are not on screen`);
  await page.mouse.move(source.x + source.width / 2, source.y + source.height / 2);
  await page.mouse.down();
  await page.mouse.move(target.x + target.width / 2, target.y + target.height / 2, { steps: 10 });
  await page.mouse.up();
}

/** Clicks a node to show its settings (on its title, away from the handles). */
export async function selectNode(page: Page, id: string): Promise<void> {
  await page.getByTestId(`node-${id}`).locator('.flow-node-id').click();
  await expect(page.getByTestId('node-id-input')).toHaveValue(id);
}

export async function save(page: Page): Promise<void> {
  await page.getByTestId('save-button').click();
}
