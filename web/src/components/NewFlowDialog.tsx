import { useEffect, useState } from 'react';
import { api } from '../api';
import { useI18n } from '../i18n';
import type { Template } from '../types';

/** A flow name as the server accepts it (it is the file name too). */
export const FLOW_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

interface Props {
  existing: string[];
  onCreate: (name: string, template: Template | null) => void;
  onClose: () => void;
}

export default function NewFlowDialog({ existing, onCreate, onClose }: Props) {
  const i18n = useI18n();
  const [name, setName] = useState('');
  const [templates, setTemplates] = useState<Template[]>([]);
  useEffect(() => {
    api.templates().then(setTemplates, () => setTemplates([]));
  }, []);
  const valid = FLOW_NAME.test(name) && !existing.includes(name);
  return (
    <div className="dialog-backdrop">
      <div className="dialog" role="dialog" data-testid="new-flow-dialog">
        <h2>{i18n.t.newFlow}</h2>
        <label className="field">
          <span>
            {i18n.t.flowName} <span className="hint">({i18n.t.flowNameHint})</span>
          </span>
          <input data-testid="flow-name-input" value={name} onChange={(e) => setName(e.target.value)} autoFocus />
        </label>
        <div className="row">
          <button disabled={!valid} onClick={() => onCreate(name, null)} data-testid="blank-flow-button">
            {i18n.t.blank}
          </button>
          <button onClick={onClose}>{i18n.t.cancel}</button>
        </div>
        <h3>{i18n.t.templates}</h3>
        <ul className="templates">
          {templates.map((template) => (
            <li key={template.name}>
              <button disabled={!valid} data-testid={`template-${template.name}`} onClick={() => onCreate(name, template)}>
                {template.name}
              </button>{' '}
              <span className="hint">{template.description}</span>
            </li>
          ))}
        </ul>
      </div>
    </div>
  );
}
