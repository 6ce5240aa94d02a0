// The side panel: the selected node's settings (a form from its schema, plus when/retry/timeout/on_error),
import { problemText } from '../problemText';
// or, with no node selected, the flow's own name, description, shop and trigger.
import { lazy, Suspense, useEffect, useState } from 'react';
import { COMMON_SCHEMA, formSchema } from '../catalog';
import type { FlowModel, FlowNode } from '../flowDoc';
import { type Lang, useI18n } from '../i18n';
import type { PlacedProblem } from '../problems';
import type { JsonSchema, NodeType } from '../types';

const SchemaForm = lazy(() => import('./SchemaForm'));

const ID_PATTERN = /^[a-z0-9_]+$/;

interface NodeProps {
  node: FlowNode;
  type: NodeType | undefined;
  /** The flow schema's `$defs`, which node schemas may refer to. */
  sharedDefs: JsonSchema;
  problems: PlacedProblem[];
  onSettings: (previous: Record<string, unknown>, next: Record<string, unknown>) => void;
  onCommon: (previous: Record<string, unknown>, next: Record<string, unknown>) => void;
  onRename: (to: string) => void;
  onDelete: () => void;
}

function fieldErrors(problems: PlacedProblem[], lang: Lang): Record<string, string[]> {
  const byField: Record<string, string[]> = {};
  for (const p of problems) if (p.field) (byField[p.field] ??= []).push(`${p.line}:${p.col} ${problemText(p.message, lang)}`);
  return byField;
}

function NodeSettings({ node, type, sharedDefs, problems, onSettings, onCommon, onRename, onDelete }: NodeProps) {
  const i18n = useI18n();
  const [newId, setNewId] = useState(node.id);
  useEffect(() => setNewId(node.id), [node.id]);
  const form = type ? formSchema(type, sharedDefs) : null;
  const errors = fieldErrors(problems, i18n.lang);
  const commonTitles = {
    when: { 'ui:title': 'when', 'ui:placeholder': 'record.status == "WAIT_SELLER_SEND_GOODS"' },
    timeout: { 'ui:title': 'timeout', 'ui:placeholder': '30s' },
    on_error: { 'ui:title': 'on_error' },
    retry: { 'ui:title': 'retry' },
  };
  const unplaced = problems.filter((p) => !p.field);
  return (
    <div className="node-settings">
      <h2>{i18n.t.settings}</h2>
      <label className="field">
        <span>{i18n.t.nodeId}</span>
        <span className="row">
          <input data-testid="node-id-input" value={newId} onChange={(e) => setNewId(e.target.value)} />
          <button
            disabled={newId === node.id || !ID_PATTERN.test(newId)}
            onClick={() => onRename(newId)}
            data-testid="rename-button"
          >
            {i18n.t.rename}
          </button>
        </span>
        {!ID_PATTERN.test(newId) && <span className="error">{i18n.t.invalidId}</span>}
      </label>
      <p>
        {i18n.t.nodeType}: <strong>{i18n.typeName(node.use)}</strong> <code>{node.use}</code>
      </p>
      {type && <p className="hint">{i18n.typeSummary(type)}</p>}
      {unplaced.map((p, n) => (
        <p key={n} className="error">
          {p.line}:{p.col} {problemText(p.message, i18n.lang)}
        </p>
      ))}
      <Suspense fallback={<p>…</p>}>
        {form && (
          <details open>
            <summary>{i18n.t.withSettings}</summary>
            {type!.secret_fields.length > 0 && <p className="hint">{i18n.t.secretsHidden}</p>}
            <SchemaForm
              testId="with-form"
              idPrefix="with"
              schema={form.schema}
              data={node.settings}
              fieldErrors={errors}
              onChange={(next) => onSettings(node.settings, next)}
            />
            {form.yamlOnly.length > 0 && (
              <p className="hint">
                {i18n.t.yamlOnly} {form.yamlOnly.join(', ')}
              </p>
            )}
          </details>
        )}
        <details open={Object.keys(node.common).length > 0}>
          <summary>{i18n.t.commonSettings}</summary>
          <SchemaForm
            testId="common-form"
            idPrefix="common"
            schema={COMMON_SCHEMA}
            uiSchema={commonTitles}
            data={node.common}
            fieldErrors={errors}
            onChange={(next) => onCommon(node.common, next)}
          />
        </details>
      </Suspense>
      <button className="danger" onClick={onDelete} data-testid="delete-node-button">
        {i18n.t.deleteNode}
      </button>
    </div>
  );
}

interface FlowProps {
  model: FlowModel;
  shops: string[];
  onField: (key: string, previous: unknown, next: unknown) => void;
}

function FlowSettings({ model, shops, onField }: FlowProps) {
  const i18n = useI18n();
  const trigger = model.trigger;
  const setTrigger = (key: string, value: string) => {
    const next: Record<string, unknown> = { ...trigger, [key]: value || undefined };
    // A trigger has one of `every` and `cron`; a time zone only goes with `cron`.
    if (key === 'every' && value) delete next.cron, delete next.timezone;
    if (key === 'cron' && value) delete next.every;
    onField('trigger', trigger, Object.values(next).some((v) => v !== undefined) ? next : undefined);
  };
  const text = (value: unknown) => (typeof value === 'string' ? value : '');
  return (
    <div className="flow-settings" data-testid="flow-panel">
      <h2>{i18n.t.flowPanel}</h2>
      <label className="field">
        <span>flow</span>
        <input value={model.name} onChange={(e) => onField('flow', model.name, e.target.value)} />
      </label>
      <label className="field">
        <span>{i18n.t.description}</span>
        <textarea
          data-testid="flow-description"
          value={model.description}
          onChange={(e) => onField('description', model.description, e.target.value)}
        />
      </label>
      <label className="field">
        <span>{i18n.t.shop}</span>
        <select data-testid="flow-shop" value={model.shop} onChange={(e) => onField('shop', model.shop, e.target.value)}>
          <option value="">—</option>
          {[...new Set([...shops, ...(model.shop ? [model.shop] : [])])].map((shop) => (
            <option key={shop} value={shop}>
              {shop}
            </option>
          ))}
        </select>
      </label>
      <label className="field">
        <span>{i18n.t.triggerEvery}</span>
        <input data-testid="trigger-every" value={text(trigger.every)} onChange={(e) => setTrigger('every', e.target.value)} />
      </label>
      <label className="field">
        <span>{i18n.t.triggerCron}</span>
        <input value={text(trigger.cron)} onChange={(e) => setTrigger('cron', e.target.value)} />
      </label>
      <label className="field">
        <span>{i18n.t.timezone}</span>
        <input
          value={text(trigger.timezone)}
          placeholder="Asia/Shanghai"
          onChange={(e) => setTrigger('timezone', e.target.value)}
        />
      </label>
    </div>
  );
}

interface Props {
  model: FlowModel;
  selected: FlowNode | null;
  types: Map<string, NodeType>;
  sharedDefs: JsonSchema;
  shops: string[];
  problems: PlacedProblem[];
  onSettings: NodeProps['onSettings'];
  onCommon: NodeProps['onCommon'];
  onRename: (from: string, to: string) => void;
  onDelete: (id: string) => void;
  onField: FlowProps['onField'];
}

export default function SettingsPanel(props: Props) {
  const { selected } = props;
  return (
    <aside className="settings-panel" data-testid="settings-panel">
      {selected ? (
        <NodeSettings
          key={selected.id}
          node={selected}
          type={props.types.get(selected.use)}
          sharedDefs={props.sharedDefs}
          problems={props.problems.filter((p) => p.nodes.includes(selected.id))}
          onSettings={props.onSettings}
          onCommon={props.onCommon}
          onRename={(to) => props.onRename(selected.id, to)}
          onDelete={() => props.onDelete(selected.id)}
        />
      ) : (
        <FlowSettings model={props.model} shops={props.shops} onField={props.onField} />
      )}
    </aside>
  );
}
