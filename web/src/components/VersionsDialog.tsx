import { useEffect, useState } from 'react';
import { api } from '../api';
import { useI18n } from '../i18n';
import type { VersionEntry } from '../types';
import LineDiff from './LineDiff';

interface Props {
  flow: string;
  current: string;
  onRestore: (yaml: string) => void;
  onClose: () => void;
}

/** The flow's saved versions, newest first: who, when, a diff with the editor's text, restore. */
export default function VersionsDialog({ flow, current, onRestore, onClose }: Props) {
  const i18n = useI18n();
  const [versions, setVersions] = useState<VersionEntry[] | null>(null);
  const [shown, setShown] = useState<{ version: string; yaml: string } | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api.versions(flow).then(setVersions, (e: Error) => setError(e.message));
  }, [flow]);

  const show = (version: string) =>
    api.version(flow, version).then(({ yaml }) => setShown({ version, yaml }), (e: Error) => setError(e.message));

  return (
    <div className="dialog-backdrop">
      <div className="dialog wide" role="dialog" data-testid="versions-dialog">
        <h2>
          {i18n.t.versions}: {flow}
        </h2>
        {error && <p className="error">{error}</p>}
        <ul className="versions">
          {(versions ?? []).map((v) => (
            <li key={`${v.version}-${v.saved_at}`} data-testid="version-item">
              <code>{v.version.slice(0, 12)}</code> {new Date(v.saved_at).toLocaleString(i18n.lang === 'zh' ? 'zh-CN' : 'en')}{' '}
              {i18n.t.by} {v.saved_by} ({v.role}) {v.draft && <em>{i18n.t.draft}</em>}
              <button onClick={() => show(v.version)}>{i18n.t.showDiff}</button>
            </li>
          ))}
        </ul>
        {shown && (
          <>
            <LineDiff before={current} after={shown.yaml} testId="version-diff" />
            <button onClick={() => onRestore(shown.yaml)} data-testid="restore-button">
              {i18n.t.restore} {shown.version.slice(0, 12)}
            </button>
          </>
        )}
        <div className="row">
          <button onClick={onClose}>{i18n.t.close}</button>
        </div>
      </div>
    </div>
  );
}
