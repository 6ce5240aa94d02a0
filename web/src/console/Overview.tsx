// `/`: flows, what holds the shops back (breakers, bans, shops to authorise again, sync lag, open alerts),
// the latest restock suggestions and the recent runs.
import { DataTable, Errors, fillNodes, Link, useConsole } from './context';
import { failures, formatSeconds, formatTime, secondsLeft } from './format';
import { fill } from './messages';
import { flowHref, runHref } from './route';
import RunsTable from './RunsTable';
import type { Overview as OverviewData } from './types';

export default function Overview({ data }: { data: OverviewData }) {
  const { t } = useConsole();
  const restockAt = data.restock.map((s) => s.created_at).sort().pop();
  const toReorder = data.restock.filter((s) => s.suggested > 0);
  return (
    <>
      <h2>{t.flows}</h2>
      <DataTable
        id="flows"
        headers={[t.flow, t.file, t.trigger, t.shops, t.nextRun, t.runningNow, t.loaded, t.loadErrors, t.openDeadLetters]}
        empty={t.noFlow}
        rows={data.flows.map((flow) => [
          <Link className="flow-link" href={flowHref(flow.name)}>
            {flow.name}
          </Link>,
          flow.file,
          flow.trigger ?? '',
          flow.shops.join(', '),
          formatTime(flow.next_run),
          flow.running.length ? flow.running.join(', ') : t.no,
          formatTime(flow.loaded_at),
          <Errors errors={flow.errors} />,
          flow.open_dead_letters,
        ])}
      />

      <h2>{t.breakers}</h2>
      <DataTable
        id="breakers"
        headers={[t.platform, t.shop, t.channel, t.state, t.recentFailures, t.opened, t.lastFullPull]}
        empty={t.noBreaker}
        rows={data.breakers.map((b) => [
          b.platform,
          b.shop,
          b.channel,
          <span className="breaker-state">{b.state}</span>,
          fill(t.failuresOf, failures(b.outcomes)),
          formatTime(b.opened_at),
          formatTime(b.last_degraded_at),
        ])}
      />

      <h2>{t.bans}</h2>
      <DataTable
        id="bans"
        headers={[t.platform, t.appKey, t.until, t.left, t.reason]}
        empty={t.noBan}
        rows={data.bans.map((ban) => [
          ban.platform,
          ban.app_key,
          formatTime(ban.until),
          formatSeconds(secondsLeft(ban.until, data.now)),
          ban.reason,
        ])}
      />

      <h2>{t.reauth}</h2>
      <DataTable
        id="reauth"
        headers={[t.platform, t.shop, t.since, t.reason]}
        empty={t.none}
        rows={data.reauth.map((r) => [r.platform, r.shop, formatTime(r.since), r.reason])}
      />

      <h2>{t.lags}</h2>
      <DataTable
        id="lags"
        headers={[t.platform, t.shop, t.stream, t.syncedUpTo, t.lag]}
        empty={t.noLag}
        rows={data.lags.map((lag) => [
          lag.platform,
          lag.shop,
          lag.stream,
          formatTime(lag.until),
          lag.seconds === null ? '—' : formatSeconds(lag.seconds),
        ])}
      />

      <h2>{t.alerts}</h2>
      <DataTable
        id="alerts"
        headers={[t.kind, t.platform, t.shop, t.order, t.since, t.detail]}
        empty={t.noAlert}
        rows={data.alerts.map((a) => [a.kind, a.platform, a.shop, a.tid ?? '', formatTime(a.created_at), a.detail])}
      />

      <h2>{t.restock}</h2>
      {data.restock.length > 0 && (
        <p>
          {fillNodes(t.restockFrom, {
            run: <Link href={runHref(data.restock[0].run_id)}>{data.restock[0].run_id}</Link>,
            time: formatTime(restockAt),
          })}
        </p>
      )}
      <DataTable
        id="restock"
        headers={[t.shop, t.sku, t.toOrder, t.available, t.onOrder, t.demandOverLead, t.model]}
        empty={data.restock.length > 0 ? t.nothingToReorder : t.noRestock}
        rows={toReorder.map((s) => [
          s.shop,
          s.sku,
          s.suggested,
          s.available,
          s.on_order,
          s.demand_over_lead.toFixed(1),
          s.model,
        ])}
      />

      <h2>{t.recentRuns}</h2>
      <RunsTable runs={data.runs} withFlow />
    </>
  );
}
