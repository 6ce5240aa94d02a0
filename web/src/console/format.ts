// How the console writes times, spans and a node's counts: the same on every view, in both languages.
import type { NodeRunRecord } from './types';

/** A time to the second in UTC (`2026-11-01 08:00:00 UTC`), or a dash. */
export function formatTime(at: string | null | undefined): string {
  if (!at) return '—';
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return '—';
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A span of seconds as people read it: `0.042 s`, `12.5 s`, `3 min 20 s`, `2 h 5 min`. */
export function formatSeconds(secs: number): string {
  const whole = Math.round(secs);
  if (Math.abs(secs) < 10) return `${secs.toFixed(3)} s`;
  if (Math.abs(secs) < 60) return `${secs.toFixed(1)} s`;
  if (Math.abs(whole) < 3600) return `${Math.trunc(whole / 60)} min ${Math.abs(whole % 60)} s`;
  return `${Math.trunc(whole / 3600)} h ${Math.abs(Math.trunc((whole % 3600) / 60))} min`;
}

/** How long from `start` to `end`, or a dash when either is missing. */
export function formatDuration(start: string | null | undefined, end: string | null | undefined): string {
  if (!start || !end) return '—';
  return formatSeconds((new Date(end).getTime() - new Date(start).getTime()) / 1000);
}

/** Seconds from `now` to `until`, never below 0: how long a ban has left. */
export function secondsLeft(until: string, now: string): number {
  return Math.max(0, (new Date(until).getTime() - new Date(now).getTime()) / 1000);
}

/** How many of a breaker's recent calls failed (`x`), of how many. */
export function failures(outcomes: string): { failed: number; of: number } {
  const calls = [...outcomes];
  return { failed: calls.filter((c) => c === 'x').length, of: calls.length };
}

/** What a node on the graph says of its run: its counts, or null when the run did not record it. */
export function nodeCounts(record: NodeRunRecord | undefined): { in: number; out: number; errors: number } | null {
  return record ? { in: record.records_in, out: record.records_out, errors: record.errors } : null;
}
