// `/runs/<id>`: the run, each node's counts, timings and error, and its flow's graph with those counts.
import { DataTable, FactsTable, Link, Status, useConsole } from './context';
import { formatDuration, formatTime } from './format';
import { Graphs } from './FlowView';
import { flowHref } from './route';
import type { RunPage } from './types';

export default function RunView({ data }: { data: RunPage }) {
  const { t } = useConsole();
  const { run, nodes } = data;
  return (
    <>
      <h2>
        {t.runTitle} <span id="run-id">{run.id}</span>
      </h2>
      <FactsTable
        id="run-facts"
        rows={[
          [t.flow, <Link href={flowHref(run.flow)}>{run.flow}</Link>],
          [t.status, <Status id="run-status" status={run.status} />],
          [t.trigger, run.trigger],
          [t.shop, run.shop ?? ''],
          [t.started, formatTime(run.started_at)],
          [t.finished, formatTime(run.finished_at)],
          [t.duration, formatDuration(run.started_at, run.finished_at)],
          [t.error, run.error ? <span className="errors">{run.error}</span> : ''],
        ]}
      />
      <h2>{t.nodes}</h2>
      <DataTable
        id="run-nodes"
        headers={[t.node, t.type, t.status, t.in, t.out, t.errors, t.started, t.finished, t.took, t.error]}
        empty={t.noNodeRecorded}
        rows={nodes.map((node) => [
          node.node_id,
          node.node_type,
          <Status status={node.status} />,
          node.records_in,
          node.records_out,
          node.errors,
          formatTime(node.started_at),
          formatTime(node.finished_at),
          formatDuration(node.started_at, node.finished_at),
          node.error ? <span className="errors">{node.error}</span> : '',
        ])}
      />
      {data.graph && (
        <>
          <h2>{t.graph}</h2>
          <Graphs graph={data.graph} records={nodes} />
        </>
      )}
    </>
  );
}
