import { describe, expect, it } from 'vitest';
import { failures, formatDuration, formatSeconds, formatTime, nodeCounts, secondsLeft } from './format';

describe('console formatting', () => {
  it('writes times in UTC to the second, a dash when missing or unreadable', () => {
    expect(formatTime('2026-11-01T08:00:00.123456Z')).toBe('2026-11-01 08:00:00 UTC');
    expect(formatTime('2026-11-01T16:00:00+08:00')).toBe('2026-11-01 08:00:00 UTC');
    expect(formatTime(null)).toBe('—');
    expect(formatTime('not a time')).toBe('—');
  });

  it('writes spans the way the old pages did', () => {
    expect(formatSeconds(0.0421)).toBe('0.042 s');
    expect(formatSeconds(12.54)).toBe('12.5 s');
    expect(formatSeconds(200)).toBe('3 min 20 s');
    expect(formatSeconds(7500)).toBe('2 h 5 min');
    expect(formatDuration('2026-11-01T08:00:00Z', '2026-11-01T08:00:03.5Z')).toBe('3.500 s');
    expect(formatDuration('2026-11-01T08:00:00Z', null)).toBe('—');
  });

  it('counts what a ban has left and how many calls a breaker saw fail', () => {
    expect(secondsLeft('2026-11-01T09:00:00Z', '2026-11-01T08:59:30Z')).toBe(30);
    expect(secondsLeft('2026-11-01T08:00:00Z', '2026-11-01T08:59:30Z')).toBe(0);
    expect(failures('..x.x')).toEqual({ failed: 2, of: 5 });
    expect(failures('')).toEqual({ failed: 0, of: 0 });
  });

  it('gives a node its counts only when its run recorded it', () => {
    const record = {
      node_id: 'save',
      node_type: 'store',
      status: 'succeeded',
      records_in: 7,
      records_out: 5,
      errors: 2,
      started_at: null,
      finished_at: null,
      error: null,
    };
    expect(nodeCounts(record)).toEqual({ in: 7, out: 5, errors: 2 });
    expect(nodeCounts(undefined)).toBeNull();
  });
});
