import { describe, expect, it } from 'vitest';
import { problemText } from './problemText';

describe('problemText', () => {
  it('leaves English as the server wrote it', () => {
    const message = 'records reaching "keep" have no field "stauts" (did you mean "status"?)';
    expect(problemText(message, 'en')).toBe(message);
  });

  it('rewrites a misspelled field, its suggestion included, in Chinese', () => {
    expect(problemText('records reaching "keep" have no field "stauts" (did you mean "status"?)', 'zh')).toBe(
      '流入节点 "keep" 的记录没有字段 "stauts"（是否想写 "status"？）',
    );
  });

  it('rewrites a cycle and an unknown input, keeping the names', () => {
    expect(problemText('the nodes form a cycle: a → b → a', 'zh')).toBe('节点构成了环：a → b → a');
    expect(problemText('node "save": unknown input "fresh2" (did you mean "fresh"?)', 'zh')).toBe(
      '节点 "save"：未知的输入 "fresh2"（是否想写 "fresh"？）',
    );
  });

  it('keeps the rest of a message it only partly knows', () => {
    expect(problemText('node "w": "with.window" is zero; expected a duration such as "30m"', 'zh')).toBe(
      '节点 "w"："with.window" is zero；应为 a duration such as "30m"',
    );
  });
});
