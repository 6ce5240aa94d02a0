import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError } from './api';

const store = new Map<string, string>();

beforeEach(() => {
  vi.stubGlobal('localStorage', {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
  });
});
afterEach(() => {
  vi.unstubAllGlobals();
  store.clear();
});

function respond(status: number, body: unknown) {
  const fetchMock = vi.fn(async () => new Response(JSON.stringify(body), { status }));
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

describe('api', () => {
  it('sends a save with the CSRF header, the editor name and the base version', async () => {
    store.set('orderflow.user', '小王');
    const fetchMock = respond(200, { version: 'abc' });
    await expect(api.save('shop-sync', 'flow: x\n', 'v1', false)).resolves.toEqual({ kind: 'saved', version: 'abc' });
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe('/api/flows/shop-sync');
    expect(init.method).toBe('PUT');
    expect(init.headers).toMatchObject({ 'X-Orderflow-Csrf': '1', 'X-Orderflow-User': '%E5%B0%8F%E7%8E%8B' });
    expect(JSON.parse(init.body as string)).toEqual({ yaml: 'flow: x\n', base_version: 'v1', draft: false });
  });

  it('turns a 409 into a conflict with the current text', async () => {
    respond(409, { error: 'changed', current_version: 'v2', current_yaml: 'flow: theirs\n' });
    await expect(api.save('x', 'flow: mine\n', 'v1', false)).resolves.toEqual({
      kind: 'conflict',
      currentVersion: 'v2',
      currentYaml: 'flow: theirs\n',
    });
  });

  it('turns a 422 into the problems, and other refusals into an ApiError with the server message', async () => {
    const problem = { line: 1, col: 1, message: 'bad', node: null, path: null };
    respond(422, { error: 'invalid', problems: [problem] });
    await expect(api.save('x', 'y', null, false)).resolves.toEqual({ kind: 'invalid', problems: [problem] });
    respond(403, { error: 'set ORDERFLOW_EDITOR_TOKEN' });
    const refused = api.save('x', 'y', null, false);
    await expect(refused).rejects.toBeInstanceOf(ApiError);
    await expect(refused).rejects.toThrow('set ORDERFLOW_EDITOR_TOKEN');
  });

  it('reads without write headers', async () => {
    const fetchMock = respond(200, []);
    await api.flows();
    const [, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(init.headers).not.toHaveProperty('X-Orderflow-Csrf');
  });
});
