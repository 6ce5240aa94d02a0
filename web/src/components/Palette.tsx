import { useState } from 'react';
import { filterTypes, groupCatalog } from '../catalog';
import { useI18n } from '../i18n';
import type { NodeType } from '../types';

/** The drag payload: the node type's name. */
export const DRAG_TYPE = 'application/x-orderflow-node';

export default function Palette({ types }: { types: NodeType[] }) {
  const i18n = useI18n();
  const [query, setQuery] = useState('');
  const groups = groupCatalog(filterTypes(types, query, i18n.typeSummary));
  return (
    <aside className="palette">
      <h2>{i18n.t.palette}</h2>
      <input
        className="palette-search"
        type="search"
        placeholder={i18n.t.search}
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      <p className="hint">{i18n.t.dragHint}</p>
      {groups.map(({ group, types: inGroup }) => (
        <section key={group}>
          <h3>{i18n.group(group)}</h3>
          {inGroup.map((type) => (
            <div
              key={type.name}
              className={`palette-item role-${type.role}`}
              data-testid={`palette-item-${type.name}`}
              draggable
              onDragStart={(e) => {
                e.dataTransfer.setData(DRAG_TYPE, type.name);
                e.dataTransfer.effectAllowed = 'move';
              }}
              title={type.description || type.summary}
            >
              <div className="palette-name">
                {i18n.typeName(type.name)}
                {i18n.lang === 'zh' && i18n.typeName(type.name) !== type.name && <code>{type.name}</code>}
              </div>
              <div className="palette-summary">{i18n.typeSummary(type)}</div>
            </div>
          ))}
        </section>
      ))}
    </aside>
  );
}
