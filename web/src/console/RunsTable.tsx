// A list of runs, newest first, each linked to its page.
import { DataTable, Link, Status, useConsole } from './context';
import { formatDuration, formatTime } from './format';
import { flowHref, runHref } from './route';
import type { RunRecord } from './types';

export default function RunsTable({ runs, withFlow }: { runs: RunRecord[]; withFlow: boolean }) {
  const { t } = useConsole();
  const headers = withFlow
    ? [t.run, t.flow, t.trigger, t.status, t.started, t.took, t.error]
    : [t.run, t.trigger, t.status, t.started, t.took, t.error];
  return (
    <DataTable
      id="runs"
      headers={headers}
      empty={t.noRun}
      rows={runs.map((run) => [
        <Link className="run-link" href={runHref(run.id)}>
          {run.id}
        </Link>,
        ...(withFlow ? [<Link href={flowHref(run.flow)}>{run.flow}</Link>] : []),
        run.trigger,
        <Status className="run-status" status={run.status} />,
        formatTime(run.started_at),
        formatDuration(run.started_at, run.finished_at),
        run.error ? <span className="errors">{run.error}</span> : '',
      ])}
    />
  );
}
