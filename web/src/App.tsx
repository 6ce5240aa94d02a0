// The editor page: flows list and palette | canvas and problems | settings panel | YAML. The YAML text is
// the one source of truth: a visual edit rewrites it through the yaml Document, and the canvas is read
// back from it, so the two never disagree.
import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { ReactFlowProvider } from '@xyflow/react';
import { api, ApiError, editorName, setEditorName } from './api';
import Canvas from './components/Canvas';
import ConflictDialog from './components/ConflictDialog';
import NewFlowDialog from './components/NewFlowDialog';
import Palette from './components/Palette';
import ProblemsList from './components/ProblemsList';
import SettingsPanel from './components/SettingsPanel';
import VersionsDialog from './components/VersionsDialog';
import TestRunDialog from './components/TestRunDialog';
import RecordsPanel, { type RecordsTarget } from './components/RecordsPanel';
import type { TestRunReport } from './testRun';
import type { JumpTarget } from './components/YamlEditor';
import * as flow from './flowDoc';
import { I18nContext, loadLang, makeI18n, rememberLang, type Lang } from './i18n';
import type { Point } from './layout';
import { placeProblems, type PlacedProblem } from './problems';
import type { Catalog, Draft, FlowSummary, JsonSchema, NodeType, Problem, Template } from './types';

const YamlEditor = lazy(() => import('./components/YamlEditor'));

/** `/editor/flows/<name>` opens a flow. */
function flowFromPath(): string | null {
  const match = /\/flows\/([^/]+)\/?$/.exec(window.location.pathname);
  return match ? decodeURIComponent(match[1]) : null;
}

function editorPath(name: string | null): string {
  const base = import.meta.env.BASE_URL;
  return name ? `${base}flows/${encodeURIComponent(name)}` : base;
}

interface OpenFlow {
  name: string;
  /** The file version the text is based on; null for a flow not saved yet. */
  baseVersion: string | null;
  savedText: string;
  draft: Draft | null;
}

const VALIDATE_DELAY_MS = 300;

export default function App() {
  const [lang, setLang] = useState<Lang>(loadLang);
  const i18n = useMemo(() => makeI18n(lang), [lang]);
  const t = i18n.t;

  const [catalog, setCatalog] = useState<Catalog | null>(null);
  const [flows, setFlows] = useState<FlowSummary[]>([]);
  const [open, setOpen] = useState<OpenFlow | null>(null);
  const [text, setText] = useState('');
  const [problems, setProblems] = useState<Problem[]>([]);
  const [validating, setValidating] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const [status, setStatus] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [conflict, setConflict] = useState<{ version: string; yaml: string } | null>(null);
  const [dialog, setDialog] = useState<'new' | 'versions' | 'test-run' | null>(null);
  const [testRun, setTestRun] = useState<TestRunReport | null>(null);
  const [recordsOf, setRecordsOf] = useState<RecordsTarget | null>(null);
  const [jump, setJump] = useState<JumpTarget | null>(null);
  const [user, setUser] = useState(editorName);

  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = `orderflow · ${t.title}`;
  }, [lang, t.title]);

  // Stable across language switches: effects that depend on it (loading the flow) must not run again.
  const messages = useRef(t);
  messages.current = t;
  const fail = useCallback((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    const refused = error instanceof ApiError && (error.status === 401 || error.status === 403);
    setStatus({ kind: 'error', text: refused ? `${message} — ${messages.current.needsToken}` : message });
  }, []);

  const refreshFlows = useCallback(() => api.flows().then(setFlows, fail), [fail]);

  useEffect(() => {
    api.catalog().then(setCatalog, fail);
    refreshFlows();
  }, [fail, refreshFlows]);

  const load = useCallback(
    async (name: string) => {
      try {
        const file = await api.flow(name);
        setOpen({ name, baseVersion: file.version, savedText: file.yaml, draft: file.draft });
        // A flow saved only as a draft has no file yet: the draft is all there is to edit.
        setText(file.version === null && file.draft ? file.draft.yaml : file.yaml);
        setSelected(null);
        setStatus(null);
        setTestRun(null);
        setRecordsOf(null);
      } catch (error) {
        fail(error);
      }
    },
    [fail],
  );

  useEffect(() => {
    const name = flowFromPath();
    if (name) load(name);
    const onPop = () => {
      const popped = flowFromPath();
      if (popped) load(popped);
    };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, [load]);

  const dirty = open !== null && text !== open.savedText;
  useEffect(() => {
    if (!dirty) return;
    const warn = (event: BeforeUnloadEvent) => event.preventDefault();
    window.addEventListener('beforeunload', warn);
    return () => window.removeEventListener('beforeunload', warn);
  }, [dirty]);

  const openFlow = (name: string) => {
    if (dirty && !window.confirm(t.discardChanges)) return;
    window.history.pushState(null, '', editorPath(name));
    load(name);
  };

  // The canvas keeps the last model that parsed while the YAML is mid-edit and broken.
  const parsed = useMemo(() => flow.parseFlow(text), [text]);
  const lastGood = useRef(parsed.model);
  if (!parsed.syntaxError) lastGood.current = parsed.model;
  const model = lastGood.current;

  // Validation on the server, debounced; a late answer for older text is dropped.
  const validation = useRef(0);
  useEffect(() => {
    if (!open) return;
    const seq = ++validation.current;
    setValidating(true);
    const timer = window.setTimeout(() => {
      api.validate(text, open.name).then(
        (result) => {
          if (seq !== validation.current) return;
          setProblems(result.problems);
          setValidating(false);
        },
        (error) => {
          if (seq !== validation.current) return;
          setValidating(false);
          fail(error);
        },
      );
    }, VALIDATE_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [text, open, fail]);

  const placed: PlacedProblem[] = useMemo(() => {
    const list = parsed.syntaxError
      ? [{ ...parsed.syntaxError, message: `${t.syntaxError}: ${parsed.syntaxError.message}`, node: null, path: null }]
      : problems;
    return placeProblems(list, model.nodes, text);
  }, [parsed.syntaxError, problems, model.nodes, text, t.syntaxError]);

  const types = useMemo(() => new Map<string, NodeType>((catalog?.node_types ?? []).map((n) => [n.name, n])), [catalog]);
  const roles = useMemo(() => new Map([...types.values()].map((n) => [n.name, n.role])), [types]);

  // Edits read the latest text from a ref: deleting a node also deletes its edges in the same tick.
  const textRef = useRef(text);
  textRef.current = text;

  /** Applies a visual edit to the text; an edit the file refuses (a taken id, say) shows as a message. */
  const edit = useCallback(
    (change: (doc: ReturnType<typeof flow.parseFlowDoc>) => void) => {
      try {
        const next = flow.editFlow(textRef.current, change);
        textRef.current = next;
        setText(next);
      } catch (error) {
        fail(error);
      }
    },
    [fail],
  );

  const addNode = (type: string, at: Point, section: flow.Section) => {
    const doc = flow.parseFlowDoc(text);
    const id = flow.freshId(doc, type);
    edit((d) => {
      flow.addNode(d, section, id, type);
      flow.setPosition(d, id, at);
    });
    setSelected(id);
  };

  const save = async (draft: boolean, baseOverride?: string) => {
    if (!open) return;
    setStatus(null);
    try {
      const outcome = await api.save(open.name, text, baseOverride ?? open.baseVersion, draft);
      if (outcome.kind === 'saved') {
        if (!draft) setOpen({ ...open, baseVersion: outcome.version, savedText: text, draft: null });
        if (flowFromPath() !== open.name) window.history.pushState(null, '', editorPath(open.name));
        setStatus({ kind: 'ok', text: draft ? t.draftSaved : t.saved });
        refreshFlows();
      } else if (outcome.kind === 'conflict') {
        setConflict({ version: outcome.currentVersion, yaml: outcome.currentYaml });
      } else {
        setProblems(outcome.problems);
        setStatus({ kind: 'error', text: t.notSavedInvalid });
      }
    } catch (error) {
      fail(error);
    }
  };

  const createFlow = (name: string, template: Template | null) => {
    if (dirty && !window.confirm(t.discardChanges)) return;
    const initial = template ? flow.fromTemplate(template.yaml, name) : flow.blankFlow(name);
    setOpen({ name, baseVersion: null, savedText: '', draft: null });
    setText(initial);
    setSelected(null);
    setProblems([]);
    setDialog(null);
    setStatus(null);
  };

  const pickProblem = (problem: PlacedProblem) => {
    setJump({ line: problem.line, col: problem.col, seq: Date.now() });
    if (problem.nodes.length > 0) setSelected(problem.nodes[0]);
  };

  const switchLang = () => {
    const next = lang === 'zh' ? 'en' : 'zh';
    rememberLang(next);
    setLang(next);
  };

  const selectedNode = model.nodes.find((n) => n.id === selected) ?? null;
  const runs = useMemo(() => new Map((testRun?.nodes ?? []).map((n) => [n.id, n])), [testRun]);

  return (
    <I18nContext.Provider value={i18n}>
      <div className="app">
        <header className="topbar">
          <strong className="brand">orderflow · {t.title}</strong>
          <a href="/">{t.overview}</a>
          <button data-testid="new-flow-button" onClick={() => setDialog('new')}>
            {t.newFlow}
          </button>
          {open && (
            <>
              <span className="flow-title" data-testid="open-flow-name">
                {open.name}
                {dirty && <span className="dirty" title={t.unsaved}> ●</span>}
              </span>
              <button data-testid="save-draft-button" onClick={() => save(true)}>
                {t.saveDraft}
              </button>
              <button data-testid="save-button" className="primary" onClick={() => save(false)}>
                {t.save}
              </button>
              <button
                data-testid="auto-layout-button"
                disabled={!model.nodes.some((n) => n.position)}
                onClick={() => edit(flow.clearPositions)}
              >
                {t.layout}
              </button>
              <button data-testid="test-run-button" onClick={() => setDialog('test-run')}>
                {t.testRun}
              </button>
              {testRun && (
                <button data-testid="test-run-clear" onClick={() => (setTestRun(null), setRecordsOf(null))}>
                  {t.testRunClear}
                </button>
              )}
              {open.baseVersion && (
                <button data-testid="versions-button" onClick={() => setDialog('versions')}>
                  {t.versions}
                </button>
              )}
            </>
          )}
          <span className="spacer" />
          {status && (
            <span className={`status status-${status.kind}`} data-testid="status">
              {status.text}
            </span>
          )}
          <label className="user" title={t.yourName}>
            {t.savedBy}
            <input
              value={user}
              onChange={(e) => {
                setUser(e.target.value);
                setEditorName(e.target.value);
              }}
            />
          </label>
          <button data-testid="lang-switch" onClick={switchLang}>
            {t.language}
          </button>
        </header>
        <nav className="sidebar">
          <h2>{t.flows}</h2>
          <ul className="flow-list">
            {flows.map((f) => (
              <li key={f.name} className={open?.name === f.name ? 'active' : ''}>
                <a
                  href={editorPath(f.name)}
                  data-testid={`flow-link-${f.name}`}
                  onClick={(e) => {
                    e.preventDefault();
                    openFlow(f.name);
                  }}
                >
                  {f.name}
                </a>
                {!f.valid && <span className="error"> ✕</span>}
                {f.has_draft && <em className="hint"> {t.draft}</em>}
              </li>
            ))}
          </ul>
          {catalog && <Palette types={catalog.node_types} />}
        </nav>
        {open ? (
          <>
            <main className="center">
              {open.draft && open.draft.yaml !== text && (
                <div className="banner">
                  {i18n.format(t.draftAvailable, {
                    who: open.draft.saved_by,
                    when: new Date(open.draft.saved_at).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en'),
                  })}{' '}
                  <button data-testid="open-draft-button" onClick={() => setText(open.draft!.yaml)}>
                    {t.openDraft}
                  </button>
                </div>
              )}
              <ReactFlowProvider key={open.name}>
                <Canvas
                  nodes={model.nodes}
                  roles={roles}
                  problems={placed}
                  selected={selected}
                  onSelect={(id) => {
                    setSelected(id);
                    if (testRun) setRecordsOf(id ? { node: id } : null);
                  }}
                  runs={testRun ? runs : undefined}
                  onEdgeClick={(from, to) => testRun && setRecordsOf({ from, to })}
                  onMove={(id, at) => edit((d) => flow.setPosition(d, id, at))}
                  onConnect={(from, to) => edit((d) => flow.connect(d, from, to))}
                  onDisconnect={(from, to) =>
                    edit((d) => {
                      // Deleting a node deletes its edges too; those inputs went with the node.
                      if (flow.nodeIds(d).includes(to)) flow.disconnect(d, from, to);
                    })
                  }
                  onDelete={(ids) => {
                    edit((d) => ids.forEach((id) => flow.deleteNode(d, id)));
                    setSelected(null);
                  }}
                  onAdd={addNode}
                />
              </ReactFlowProvider>
              {testRun && recordsOf && (
                <RecordsPanel
                  report={testRun}
                  target={recordsOf}
                  inputs={'node' in recordsOf ? (model.nodes.find((n) => n.id === recordsOf.node)?.inputs ?? []) : []}
                  onClose={() => setRecordsOf(null)}
                />
              )}
              <ProblemsList problems={placed} validating={validating} onPick={pickProblem} />
            </main>
            <SettingsPanel
              model={model}
              selected={selectedNode}
              types={types}
              sharedDefs={(catalog?.flow_schema.$defs as JsonSchema | undefined) ?? {}}
              shops={catalog?.shops ?? []}
              problems={placed}
              onSettings={(previous, next) => selected && edit((d) => flow.setSettings(d, selected, previous, next))}
              onCommon={(previous, next) => selected && edit((d) => flow.setCommon(d, selected, previous, next))}
              onRename={(from, to) => {
                edit((d) => flow.renameNode(d, from, to));
                setSelected(to);
              }}
              onDelete={(id) => {
                edit((d) => flow.deleteNode(d, id));
                setSelected(null);
              }}
              onField={(key, previous, next) =>
                edit((d) => flow.setFlowField(d, key, previous, next, key === 'flow' || key === 'description'))
              }
            />
            <section className="yaml-pane">
              <Suspense fallback={<div data-testid="yaml-editor">…</div>}>
                <YamlEditor
                  value={text}
                  onChange={setText}
                  schema={catalog?.flow_schema ?? null}
                  problems={placed}
                  jump={jump}
                />
              </Suspense>
            </section>
          </>
        ) : (
          <main className="center empty">
            <p>{t.chooseFlow}</p>
          </main>
        )}
        {dialog === 'new' && (
          <NewFlowDialog existing={flows.map((f) => f.name)} onCreate={createFlow} onClose={() => setDialog(null)} />
        )}
        {dialog === 'versions' && open && (
          <VersionsDialog
            flow={open.name}
            current={text}
            onRestore={(yaml) => {
              setText(yaml);
              setDialog(null);
            }}
            onClose={() => setDialog(null)}
          />
        )}
        {dialog === 'test-run' && open && (
          <TestRunDialog
            flow={open.name}
            yaml={text}
            sources={model.nodes.filter((n) => roles.get(n.use) === 'source').map((n) => n.id)}
            onDone={(report) => {
              setTestRun(report);
              setDialog(null);
              setStatus({
                kind: report.status === 'succeeded' ? 'ok' : 'error',
                text: i18n.format(t.testRunDone, { status: report.status, ms: String(report.elapsed_ms) }),
              });
            }}
            onClose={() => setDialog(null)}
          />
        )}
        {conflict && (
          <ConflictDialog
            theirs={conflict.yaml}
            mine={text}
            onTakeTheirs={() => {
              if (open) setOpen({ ...open, baseVersion: conflict.version, savedText: conflict.yaml });
              setText(conflict.yaml);
              setConflict(null);
            }}
            onOverwrite={() => {
              if (open) setOpen({ ...open, baseVersion: conflict.version });
              const version = conflict.version;
              setConflict(null);
              save(false, version);
            }}
            onClose={() => setConflict(null)}
          />
        )}
      </div>
    </I18nContext.Provider>
  );
}
