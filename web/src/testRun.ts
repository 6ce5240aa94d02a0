// The editor's test run (`POST /api/test-run`): what it sends, what it answers, and how the canvas reads it.
import { api } from './api';

export type TestRunMode = 'shop' | 'fixtures';

export interface RejectedRecord {
  record: unknown;
  reason: string;
}

/** What one node did in the sandbox (the server's `NodeReport`). */
export interface NodeRun {
  id: string;
  node_type: string;
  fixture: boolean;
  status: string;
  records_in: number;
  records_out: number;
  errors: number;
  elapsed_ms: number | null;
  error: string | null;
  records: unknown[];
  rejected: RejectedRecord[];
}

export interface HeldWebhook {
  node_id: string;
  url: string;
  delivery_key: string;
  body: unknown;
}

/** The server's `SandboxReport`. */
export interface TestRunReport {
  flow: string;
  status: string;
  error: string | null;
  elapsed_ms: number;
  nodes: NodeRun[];
  webhooks: HeldWebhook[];
}

export interface TestRunRequest {
  yaml: string;
  name: string;
  mode: TestRunMode;
  pages: number;
  /** Fixture text per node id: a JSON array, or one JSON object per line. */
  fixtures: Record<string, string>;
}

/** Records pasted as a JSON array, one object, or JSON lines; throws naming the line that is not JSON. */
export function parseFixture(text: string): unknown[] {
  const trimmed = text.trim();
  if (!trimmed) return [];
  if (trimmed.startsWith('[')) return JSON.parse(trimmed) as unknown[];
  return trimmed
    .split('\n')
    .map((line, index) => [line.trim(), index + 1] as const)
    .filter(([line]) => line)
    .map(([line, number]) => {
      try {
        return JSON.parse(line) as unknown;
      } catch (error) {
        throw new Error(`line ${number}: ${(error as Error).message}`);
      }
    });
}

export function runTest(request: TestRunRequest): Promise<TestRunReport> {
  const fixtures: Record<string, unknown[]> = {};
  if (request.mode === 'fixtures') {
    for (const [node, text] of Object.entries(request.fixtures)) {
      if (text.trim()) fixtures[node] = parseFixture(text);
    }
  }
  return api.testRun({ yaml: request.yaml, name: request.name, mode: request.mode, pages: request.pages, fixtures });
}

