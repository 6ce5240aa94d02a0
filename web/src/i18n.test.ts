import { describe, expect, it } from 'vitest';
import { DICTIONARIES, initialLang, makeI18n } from './i18n';

function keysOf(value: object, prefix = ''): string[] {
  return Object.entries(value).flatMap(([k, v]) =>
    typeof v === 'object' ? keysOf(v, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

describe('i18n', () => {
  it('has every English message in Chinese, none left empty', () => {
    expect(keysOf(DICTIONARIES.zh)).toEqual(keysOf(DICTIONARIES.en));
    for (const key of keysOf(DICTIONARIES.zh)) {
      const value = key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], DICTIONARIES.zh);
      expect(value, key).not.toBe('');
    }
  });

  it('chooses the remembered language, else the browser language', () => {
    expect(initialLang(null, ['zh-CN', 'en'])).toBe('zh');
    expect(initialLang(null, ['en-US'])).toBe('en');
    expect(initialLang('en', ['zh-CN'])).toBe('en');
    expect(initialLang('fr', ['zh-TW'])).toBe('zh');
  });

  it('names built-in node types in Chinese and keeps unknown ones', () => {
    const zh = makeI18n('zh');
    expect(zh.typeName('dedupe')).toBe('去重');
    expect(zh.typeName('tag_vip')).toBe('tag_vip');
    expect(makeI18n('en').typeName('dedupe')).toBe('dedupe');
    expect(zh.format(zh.t.draftAvailable, { who: 'a', when: 'b' })).toBe('a 于 b 保存了一份草稿。');
  });
});
