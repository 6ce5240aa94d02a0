import { describe, expect, it } from 'vitest';
import { editorHref, flowHref, parseRoute, runHref } from './route';

describe('console routes', () => {
  it('keeps the old pages’ addresses', () => {
    expect(parseRoute('/', '/editor/')).toEqual({ view: 'overview' });
    expect(parseRoute('/flows/taobao-incremental', '/editor/')).toEqual({ view: 'flow', name: 'taobao-incremental' });
    expect(parseRoute('/runs/0190f000-0000-7000-8000-000000000000/', '/editor/')).toEqual({
      view: 'run',
      id: '0190f000-0000-7000-8000-000000000000',
    });
    expect(parseRoute('/nowhere/else', '/editor/')).toEqual({ view: 'missing' });
  });

  it('leaves everything under the editor’s base to the editor', () => {
    expect(parseRoute('/editor/', '/editor/')).toEqual({ view: 'editor' });
    expect(parseRoute('/editor', '/editor/')).toEqual({ view: 'editor' });
    expect(parseRoute('/editor/flows/runs', '/editor/')).toEqual({ view: 'editor' });
  });

  it('links round-trip names any file system or URL would mangle', () => {
    for (const name of ['a/b?c d', '店铺', '50%']) {
      expect(parseRoute(flowHref(name), '/editor/')).toEqual({ view: 'flow', name });
      expect(parseRoute(runHref(name), '/editor/')).toEqual({ view: 'run', id: name });
    }
    expect(editorHref('/editor/', 'x y')).toBe('/editor/flows/x%20y');
    expect(editorHref('/editor/')).toBe('/editor/');
  });
});
