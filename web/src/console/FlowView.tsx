// `/flows/<name>`: the flow as `serve` runs it (facts, load errors), its graph with the last finished run's
// counts on each node, and its runs.
import type { ReactNode } from 'react';
import { Errors, FactsTable, fillNodes, Link, Status, useConsole } from './context';
import { formatTime } from './format';
import { editorHref, runHref } from './route';
import RunGraph from './RunGraph';
import RunsTable from './RunsTable';
import type { FlowPage, Graph, NodeRunRecord } from './types';

export default function FlowView({ data, editorBase }: { data: FlowPage; editorBase: string }) {
  const { t } = useConsole();
  const { flow } = data;
  const facts: [string, ReactNode][] = [[t.file, flow.file]];
  if (flow.description !== null) facts.push([t.description, flow.description]);
  if (flow.trigger !== null) facts.push([t.trigger, flow.trigger]);
  facts.push(
    [t.shops, flow.shops.join(', ')],
    [t.nextRun, formatTime(flow.next_run)],
    [t.runningNow, flow.running.join(', ')],
    [t.loaded, formatTime(flow.loaded_at)],
    [t.openDeadLetters, String(flow.open_dead_letters)],
  );
  return (
    <>
      <h2 id="flow-name">
        {t.flow} {flow.name}
      </h2>
      <p>
        <a href={editorHref(editorBase, flow.name)} data-testid="edit-flow">
          {t.editFlow}
        </a>
      </p>
      <FactsTable id="flow-facts" rows={facts} />
      {flow.errors.length > 0 && (
        <>
          <h2>{t.loadErrors}</h2>
          <Errors errors={flow.errors} />
        </>
      )}
      <h2>{t.graph}</h2>
      {data.graph ? (
        <>
          <p data-testid="graph-caption">
            {data.last_run
              ? fillNodes(t.lastRunCounts, {
                  run: <Link href={runHref(data.last_run.run.id)}>{data.last_run.run.id}</Link>,
                  status: <Status status={data.last_run.run.status} />,
                })
              : t.noFinishedRun}
          </p>
          <Graphs graph={data.graph} records={data.last_run?.nodes ?? []} />
        </>
      ) : (
        <p className="none" data-testid="never-validated">
          {t.neverValidated}
        </p>
      )}
      <h2>{t.recentRuns}</h2>
      <RunsTable runs={data.runs} withFlow={false} />
    </>
  );
}

/** The `nodes:` graph and, when it has some, the `errors:` graph apart. */
export function Graphs({ graph, records }: { graph: Graph; records: NodeRunRecord[] }) {
  const { t } = useConsole();
  const hasHandlers = graph.nodes.some((n) => n.section === 'errors');
  return (
    <>
      <RunGraph nodes={graph.nodes} records={records} section="nodes" />
      {hasHandlers && (
        <>
          <h3>{t.onFailure}</h3>
          <RunGraph nodes={graph.nodes} records={records} section="errors" />
        </>
      )}
    </>
  );
}
