import { useState } from 'react';
import { useI18n } from '../i18n';
import { parseFixture, runTest, type TestRunMode, type TestRunReport } from '../testRun';

interface Props {
  flow: string;
  yaml: string;
  /** The ids of the flow's source nodes, each given a fixture box. */
  sources: string[];
  onDone: (report: TestRunReport) => void;
  onClose: () => void;
}

/** Asks how to test-run the flow being edited (the shop, a few pages; or pasted records) and runs it. */
export default function TestRunDialog({ flow, yaml, sources, onDone, onClose }: Props) {
  const { t } = useI18n();
  const [mode, setMode] = useState<TestRunMode>('shop');
  const [pages, setPages] = useState(2);
  const [fixtures, setFixtures] = useState<Record<string, string>>({});
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const start = async () => {
    setError(null);
    for (const [node, text] of Object.entries(fixtures)) {
      try {
        parseFixture(text);
      } catch (e) {
        setError(`${node}: ${(e as Error).message}`);
        return;
      }
    }
    setRunning(true);
    try {
      onDone(await runTest({ yaml, name: flow, mode, pages, fixtures }));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setRunning(false);
    }
  };

  return (
    <div className="dialog-backdrop">
      <div className="dialog" role="dialog" data-testid="test-run-dialog">
        <h2>{t.testRun}</h2>
        <p className="hint">{t.testRunHelp}</p>
        <label>
          <input type="radio" checked={mode === 'shop'} onChange={() => setMode('shop')} data-testid="test-run-mode-shop" />{' '}
          {t.testRunShop}
        </label>
        {mode === 'shop' && (
          <label className="field">
            {t.testRunPages}{' '}
            <input
              type="number"
              min={1}
              max={10}
              value={pages}
              data-testid="test-run-pages"
              onChange={(e) => setPages(Math.min(10, Math.max(1, Number(e.target.value) || 1)))}
            />
          </label>
        )}
        <label>
          <input
            type="radio"
            checked={mode === 'fixtures'}
            onChange={() => setMode('fixtures')}
            data-testid="test-run-mode-fixtures"
          />{' '}
          {t.testRunFixtures}
        </label>
        {mode === 'fixtures' &&
          sources.map((id) => (
            <label key={id} className="field">
              {id}
              <textarea
                rows={4}
                data-testid={`fixture-${id}`}
                placeholder='{"tid": "1", "status": "WAIT_SELLER_SEND_GOODS"}'
                value={fixtures[id] ?? ''}
                onChange={(e) => setFixtures({ ...fixtures, [id]: e.target.value })}
              />
            </label>
          ))}
        {error && (
          <p className="error" data-testid="test-run-error">
            {error}
          </p>
        )}
        <div className="dialog-buttons">
          <button onClick={onClose}>{t.cancel}</button>
          <button className="primary" data-testid="test-run-start" disabled={running} onClick={start}>
            {running ? t.testRunRunning : t.testRunStart}
          </button>
        </div>
      </div>
    </div>
  );
}
