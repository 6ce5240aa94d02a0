import { useI18n } from '../i18n';
import type { TestRunReport } from '../testRun';

/** What the panel shows: one node, or the edge between two (the records that crossed it). */
export type RecordsTarget = { node: string } | { from: string; to: string };

interface Props {
  report: TestRunReport;
  target: RecordsTarget;
  /** The ids of the node's inputs (`input:`), whose output is its input. */
  inputs: string[];
  onClose: () => void;
}

function Records({ records }: { records: unknown[] }) {
  return (
    <ol className="records">
      {records.map((record, index) => (
        <li key={index}>
          <pre>{JSON.stringify(record, null, 2)}</pre>
        </li>
      ))}
    </ol>
  );
}

/** A node's input and output records in the last test run (n8n-like), its rejects and held webhooks. */
export default function RecordsPanel({ report, target, inputs: inputIds, onClose }: Props) {
  const { t, format } = useI18n();
  const nodeId = 'node' in target ? target.node : target.to;
  const node = report.nodes.find((n) => n.id === nodeId);
  // A node's input is what its inputs sent; an edge carries what its source sent.
  const inputs = 'node' in target ? report.nodes.filter((n) => inputIds.includes(n.id)) : [];
  const sent = 'node' in target ? node?.records : report.nodes.find((n) => n.id === target.from)?.records;
  const webhooks = report.webhooks.filter((w) => w.node_id === nodeId);
  const title = 'node' in target ? target.node : `${target.from} → ${target.to}`;
  return (
    <aside className="records-panel" data-testid="records-panel">
      <header>
        <strong>{title}</strong>
        {node && <span className="hint"> {format(t.testRunCounts, { in: String(node.records_in), out: String(node.records_out) })}</span>}
        <button onClick={onClose}>{t.close}</button>
      </header>
      {node?.error && <p className="error">{node.error}</p>}
      {'node' in target && inputs.length > 0 && (
        <section data-testid="records-in">
          <h3>{t.testRunInput}</h3>
          {inputs.map((input) => (
            <div key={input.id}>
              {inputs.length > 1 && <h4>{format(t.testRunFrom, { node: input.id })}</h4>}
              <Records records={input.records} />
            </div>
          ))}
        </section>
      )}
      <section data-testid="records-out">
        <h3>{'node' in target ? t.testRunOutput : t.testRunEdge}</h3>
        {sent && sent.length > 0 ? <Records records={sent} /> : <p className="hint">{t.testRunNone}</p>}
      </section>
      {node && node.rejected.length > 0 && (
        <section data-testid="records-rejected">
          <h3>{t.testRunRejected}</h3>
          <ol className="records">
            {node.rejected.map((r, index) => (
              <li key={index}>
                <strong className="error">{r.reason}</strong>
                <pre>{JSON.stringify(r.record, null, 2)}</pre>
              </li>
            ))}
          </ol>
        </section>
      )}
      {webhooks.length > 0 && (
        <section data-testid="records-webhooks">
          <h3>{t.testRunWebhooks}</h3>
          {webhooks.map((w, index) => (
            <div key={index}>
              <p>{format(t.testRunWouldPost, { url: w.url })}</p>
              <pre>{JSON.stringify(w.body, null, 2)}</pre>
            </div>
          ))}
        </section>
      )}
    </aside>
  );
}

