import { describe, expect, it } from 'vitest';
import { CONSOLE_MESSAGES, fill, statusName } from './messages';

describe('console messages', () => {
  it('has every English message in Chinese, and no Chinese message left empty', () => {
    const en = CONSOLE_MESSAGES.en;
    const zh = CONSOLE_MESSAGES.zh;
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    for (const [key, text] of Object.entries(zh)) if (typeof text === 'string') expect(text, key).not.toBe('');
  });

  it('keeps every placeholder of a message in its translation', () => {
    const placeholders = (text: string) => (text.match(/\{\w+\}/g) ?? []).sort();
    for (const [key, text] of Object.entries(CONSOLE_MESSAGES.en)) {
      if (typeof text !== 'string') continue;
      expect(placeholders(CONSOLE_MESSAGES.zh[key as keyof typeof CONSOLE_MESSAGES.zh] as string), key).toEqual(
        placeholders(text),
      );
    }
  });

  it('fills placeholders and names statuses in the language', () => {
    expect(fill(CONSOLE_MESSAGES.en.counts, { in: 3, out: 2, errors: 1 })).toBe('in 3 · out 2 · errors 1');
    expect(statusName(CONSOLE_MESSAGES.en, 'succeeded')).toBe('succeeded');
    expect(statusName(CONSOLE_MESSAGES.zh, 'succeeded')).toBe('成功');
    expect(statusName(CONSOLE_MESSAGES.zh, 'a-new-status')).toBe('a-new-status');
  });
});
