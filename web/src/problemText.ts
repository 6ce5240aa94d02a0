import type { Lang } from './i18n';

/**
 * The server's validation messages in the page's language. The server writes
 * them in English (the same text as `orderflow validate`); for Chinese the
 * common shapes are rewritten here, phrase by phrase, and anything not known
 * stays English, so a message is never lost, only left untranslated.
 */
const ZH_PATTERNS: Array<[RegExp, string]> = [
  [/^records reaching "([^"]+)" have no field "([^"]+)"/, '流入节点 "$1" 的记录没有字段 "$2"'],
  [/^"([^"]+)" is not a known "([^"]+)" of records reaching "([^"]+)"/, '"$1" 不是流入节点 "$3" 的记录的已知 "$2" 值'],
  [/^node "([^"]+)": unknown node type "([^"]+)"/, '节点 "$1"：未知的节点类型 "$2"'],
  [/^node "([^"]+)": unknown input "([^"]+)"/, '节点 "$1"：未知的输入 "$2"'],
  [/^node "([^"]+)": input "([^"]+)" is listed twice/, '节点 "$1"：输入 "$2" 重复列出'],
  [/^node "([^"]+)": a (\S+) node needs an input/, '节点 "$1"：$2 节点需要一个输入'],
  [/^node "([^"]+)": a (\S+) node produces records and takes no input/, '节点 "$1"：$2 节点自己产生记录，不接受输入'],
  [/^node "([^"]+)": "when" does not compile: /, '节点 "$1"："when" 无法编译：'],
  [/^node "([^"]+)" has no "use"/, '节点 "$1" 缺少 "use"'],
  [/^unknown key "([^"]+)" in node "([^"]+)"/, '节点 "$2" 中有未知的键 "$1"'],
  [/^unknown key "([^"]+)" in /, '未知的键 "$1"，位于 '],
  [/^the nodes form a cycle: /, '节点构成了环：'],
  [/^missing key "([^"]+)"/, '缺少键 "$1"'],
  [/^unknown shop "([^"]+)"/, '未知的店铺 "$1"'],
  [/^unknown time zone "([^"]+)"/, '未知的时区 "$1"'],
  [/^node "([^"]+)": /, '节点 "$1"：'],
];

const ZH_PHRASES: Array<[RegExp, string]> = [
  [/ \(did you mean "([^"]+)"\?\)/g, '（是否想写 "$1"？）'],
  [/; expected /g, '；应为 '],
  [/ is not a duration /g, ' 不是时长 '],
  [/ is required/g, ' 是必填项'],
];

/** `message` in `lang`; English is returned as it is. */
export function problemText(message: string, lang: Lang): string {
  if (lang === 'en') return message;
  let text = message;
  for (const [pattern, replacement] of ZH_PATTERNS) {
    if (pattern.test(text)) {
      text = text.replace(pattern, replacement);
      break;
    }
  }
  for (const [pattern, replacement] of ZH_PHRASES) text = text.replace(pattern, replacement);
  return text;
}
