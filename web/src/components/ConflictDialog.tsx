import { useI18n } from '../i18n';
import LineDiff from './LineDiff';

interface Props {
  theirs: string;
  mine: string;
  onTakeTheirs: () => void;
  onOverwrite: () => void;
  onClose: () => void;
}

/** Shown when a save was refused because the file changed since it was opened. */
export default function ConflictDialog({ theirs, mine, onTakeTheirs, onOverwrite, onClose }: Props) {
  const i18n = useI18n();
  return (
    <div className="dialog-backdrop">
      <div className="dialog wide" role="dialog">
        <h2>{i18n.t.conflictTitle}</h2>
        <p className="hint">{i18n.t.conflictHelp}</p>
        <LineDiff before={theirs} after={mine} testId="conflict-diff" />
        <div className="row">
          <button onClick={onTakeTheirs} data-testid="take-theirs-button">
            {i18n.t.takeTheirs}
          </button>
          <button className="danger" onClick={onOverwrite} data-testid="overwrite-button">
            {i18n.t.overwrite}
          </button>
          <button onClick={onClose}>{i18n.t.cancel}</button>
        </div>
      </div>
    </div>
  );
}
