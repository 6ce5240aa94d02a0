// The console: the read-only views of `orderflow serve` (overview, a flow, a run) at the addresses the
// server-rendered pages had. Moving between them changes the address without a reload; the view reads its
// data again every REFRESH_MS, as the old pages reloaded themselves.
import { useCallback, useEffect, useMemo, useState } from 'react';
import { ApiError } from '../api';
import { I18nContext, loadLang, makeI18n, rememberLang, type Lang } from '../i18n';
import { consoleApi } from './api';
import { ConsoleContext, Link } from './context';
import FlowView from './FlowView';
import { formatTime } from './format';
import { CONSOLE_MESSAGES, fill } from './messages';
import Overview from './Overview';
import { editorHref, parseRoute, type Route } from './route';
import RunView from './RunView';
import type { FlowPage, Overview as OverviewData, RunPage } from './types';

const REFRESH_MS = 15_000;

type Loaded =
  | { view: 'overview'; data: OverviewData }
  | { view: 'flow'; data: FlowPage }
  | { view: 'run'; data: RunPage };

function load(route: Route): Promise<Loaded> | null {
  switch (route.view) {
    case 'overview':
      return consoleApi.overview().then((data) => ({ view: 'overview', data }));
    case 'flow':
      return consoleApi.flow(route.name).then((data) => ({ view: 'flow', data }));
    case 'run':
      return consoleApi.run(route.id).then((data) => ({ view: 'run', data }));
    default:
      return null;
  }
}

export default function ConsoleApp({ editorBase }: { editorBase: string }) {
  const [lang, setLang] = useState<Lang>(loadLang);
  const i18n = useMemo(() => makeI18n(lang), [lang]);
  const t = CONSOLE_MESSAGES[lang];
  const [route, setRoute] = useState<Route>(() => parseRoute(window.location.pathname, editorBase));
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<{ status: number; message: string } | null>(null);
  const [readAt, setReadAt] = useState<string | null>(null);

  const navigate = useCallback(
    (href: string) => {
      const next = parseRoute(new URL(href, window.location.href).pathname, editorBase);
      if (next.view === 'editor') {
        window.location.assign(href);
        return;
      }
      window.history.pushState(null, '', href);
      setLoaded(null);
      setRoute(next);
    },
    [editorBase],
  );
  const context = useMemo(() => ({ t, navigate }), [t, navigate]);

  useEffect(() => {
    const onPop = () => {
      setLoaded(null);
      setRoute(parseRoute(window.location.pathname, editorBase));
    };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, [editorBase]);

  useEffect(() => {
    let current = true;
    const read = () => {
      const pending = load(route);
      if (!pending) return;
      pending.then(
        (result) => {
          if (!current) return;
          setLoaded(result);
          setError(null);
          setReadAt(new Date().toISOString());
        },
        (failure: unknown) => {
          if (!current) return;
          const status = failure instanceof ApiError ? failure.status : 0;
          setError({ status, message: failure instanceof Error ? failure.message : String(failure) });
        },
      );
    };
    read();
    const timer = window.setInterval(read, REFRESH_MS);
    return () => {
      current = false;
      window.clearInterval(timer);
    };
  }, [route]);

  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    const subject = route.view === 'flow' ? route.name : route.view === 'run' ? `${t.run} ${route.id}` : t.overview;
    document.title = `${subject} · orderflow`;
  }, [lang, route, t]);

  const switchLang = () => {
    const next: Lang = lang === 'en' ? 'zh' : 'en';
    rememberLang(next);
    setLang(next);
  };

  return (
    <I18nContext.Provider value={i18n}>
      <ConsoleContext.Provider value={context}>
        <div className="console">
          <header className="console-top">
            <h1>orderflow</h1>
            <nav>
              <Link href="/">{t.overview}</Link>
              {' · '}
              <a href={editorHref(editorBase)}>{t.editor}</a>
              {' · '}
              <a href="/metrics">{t.metrics}</a>
            </nav>
            <span className="none">{readAt && fill(t.asOf, { time: formatTime(readAt) })}</span>
            <span className="spacer" />
            <button data-testid="lang-switch" onClick={switchLang}>
              {i18n.t.language}
            </button>
          </header>
          <main data-testid="console-view" data-view={route.view}>
            {route.view === 'missing' && <p className="none">{t.notFound}</p>}
            {error && (
              <p className="errors" data-testid="console-error">
                {error.status === 401 ? t.refused : error.status === 404 ? `${t.notFound} ${error.message}` : error.message}
              </p>
            )}
            {!loaded && !error && route.view !== 'missing' && <p className="none">{t.loading}</p>}
            {loaded?.view === 'overview' && <Overview data={loaded.data} />}
            {loaded?.view === 'flow' && <FlowView data={loaded.data} editorBase={editorBase} />}
            {loaded?.view === 'run' && <RunView data={loaded.data} />}
          </main>
        </div>
      </ConsoleContext.Provider>
    </I18nContext.Provider>
  );
}
