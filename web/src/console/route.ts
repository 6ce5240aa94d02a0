// The console's routes. The server answers the same front-end at `/`, `/flows/<name>` and `/runs/<id>`
// (the old server-rendered pages' addresses, so bookmarks keep working); the editor lives under `/editor/`.

export type Route =
  | { view: 'overview' }
  | { view: 'flow'; name: string }
  | { view: 'run'; id: string }
  | { view: 'editor' }
  | { view: 'missing' };

/** The view a path shows. `editorBase` is the editor's base (`/editor/`). */
export function parseRoute(pathname: string, editorBase: string): Route {
  if (pathname === editorBase.replace(/\/$/, '') || pathname.startsWith(editorBase)) return { view: 'editor' };
  if (pathname === '/' || pathname === '') return { view: 'overview' };
  const flow = /^\/flows\/([^/]+)\/?$/.exec(pathname);
  if (flow) return { view: 'flow', name: decodeURIComponent(flow[1]) };
  const run = /^\/runs\/([^/]+)\/?$/.exec(pathname);
  if (run) return { view: 'run', id: decodeURIComponent(run[1]) };
  return { view: 'missing' };
}

/** The console's address of a flow's page. */
export function flowHref(name: string): string {
  return `/flows/${encodeURIComponent(name)}`;
}

/** The console's address of a run's page. */
export function runHref(id: string): string {
  return `/runs/${encodeURIComponent(id)}`;
}

/** The editor's address of a flow (`<base>flows/<name>`). */
export function editorHref(editorBase: string, name?: string): string {
  return name ? `${editorBase}flows/${encodeURIComponent(name)}` : editorBase;
}
