// Browser tests of the editor against a running `orderflow serve` (tests/editor.rs starts one):
//   ORDERFLOW_EDITOR_URL   the server, with or without `/editor` (default http://127.0.0.1:8080)
//   ORDERFLOW_EDITOR_TOKEN the editor token, sent as a Bearer header with every request
//   ORDERFLOW_FLOWS_DIR    the flows folder the server edits, read back by the specs
//   CHROMIUM               the browser (default Debian's /usr/bin/chromium)
import { defineConfig } from '@playwright/test';

const server = (process.env.ORDERFLOW_EDITOR_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const token = process.env.ORDERFLOW_EDITOR_TOKEN;

export default defineConfig({
  testDir: 'e2e',
  // The specs share one server and its flows folder: one at a time.
  workers: 1,
  fullyParallel: false,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  use: {
    baseURL: `${server.endsWith('/editor') ? server : `${server}/editor`}/`,
    viewport: { width: 1600, height: 900 },
    extraHTTPHeaders: token ? { Authorization: `Bearer ${token}` } : {},
    launchOptions: { executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium' },
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
});
