import { describe, expect, it } from 'vitest';
import { parseFixture } from './testRun';

describe('parseFixture', () => {
  it('reads a JSON array, JSON lines, and nothing', () => {
    expect(parseFixture('[{"tid": "1"}, {"tid": "2"}]')).toEqual([{ tid: '1' }, { tid: '2' }]);
    expect(parseFixture('{"tid": "1"}\n\n  {"tid": "2"}  \n')).toEqual([{ tid: '1' }, { tid: '2' }]);
    expect(parseFixture('  \n')).toEqual([]);
  });

  it('names the line that is not JSON', () => {
    expect(() => parseFixture('{"tid": "1"}\n{tid: 2}')).toThrow(/^line 2: /);
  });
});
