// The client of the editor's HTTP API. Every write carries the CSRF header the server requires and the
// editor's name for the history; the token travels as the login cookie (or a Bearer header set by a test).
import type { Catalog, FlowFile, FlowSummary, Problem, Template, ValidateResult, VersionEntry } from './types';

const USER_KEY = 'orderflow.user';

/** The name recorded beside each saved version; asked once and kept in this browser. */
export function editorName(): string {
  return localStorage.getItem(USER_KEY) || 'editor';
}

export function setEditorName(name: string): void {
  localStorage.setItem(USER_KEY, name.trim() || 'editor');
}

/** A refused request: its status and the server's `{"error": …}` message, with the body for 409/422. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** What a save can come back with besides success. */
export type SaveOutcome =
  | { kind: 'saved'; version: string }
  | { kind: 'conflict'; currentVersion: string; currentYaml: string }
  | { kind: 'invalid'; problems: Problem[] };

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') {
    headers['X-Orderflow-Csrf'] = '1';
    // The header must be ISO-8859-1: a Chinese name travels percent-encoded.
    headers['X-Orderflow-User'] = encodeURIComponent(editorName());
  }
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const details = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
    const message = typeof details.error === 'string' ? details.error : text || response.statusText;
    throw new ApiError(response.status, message, details);
  }
  return json as T;
}

/** The API lives beside the editor: `/editor/` is served by the same origin as `/api/`. */
const API = '/api';

export const api = {
  catalog: () => request<Catalog>('GET', `${API}/catalog`),
  flows: () => request<FlowSummary[]>('GET', `${API}/flows`),
  flow: (name: string) => request<FlowFile>('GET', `${API}/flows/${encodeURIComponent(name)}`),
  templates: () => request<Template[]>('GET', `${API}/templates`),
  validate: (yaml: string, name?: string) => request<ValidateResult>('POST', `${API}/validate`, { yaml, name }),
  testRun: (body: { yaml: string; name: string; mode: string; pages: number; fixtures: Record<string, unknown[]> }) =>
    request<import('./testRun').TestRunReport>('POST', `${API}/test-run`, body),
  versions: (name: string) => request<VersionEntry[]>('GET', `${API}/flows/${encodeURIComponent(name)}/versions`),
  version: (name: string, version: string) =>
    request<{ version: string; yaml: string }>(
      'GET',
      `${API}/flows/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`,
    ),

  /** Saves the flow (or its draft) on top of `baseVersion`; `null` creates a new file. */
  async save(name: string, yaml: string, baseVersion: string | null, draft: boolean): Promise<SaveOutcome> {
    try {
      const { version } = await request<{ version: string }>('PUT', `${API}/flows/${encodeURIComponent(name)}`, {
        yaml,
        base_version: baseVersion,
        draft,
      });
      return { kind: 'saved', version };
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        return {
          kind: 'conflict',
          currentVersion: String(error.body.current_version ?? ''),
          currentYaml: String(error.body.current_yaml ?? ''),
        };
      }
      if (error instanceof ApiError && error.status === 422 && Array.isArray(error.body.problems)) {
        return { kind: 'invalid', problems: error.body.problems as Problem[] };
      }
      throw error;
    }
  },
};
