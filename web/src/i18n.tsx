// The page in 简体中文 and English: a small dictionary, the language from the browser or the switch.
import { createContext, useContext } from 'react';
import type { NodeGroup, NodeType } from './types';

export type Lang = 'en' | 'zh';

const en = {
  title: 'Flow editor',
  flows: 'Flows',
  overview: 'Overview',
  newFlow: 'New flow',
  blank: 'Blank canvas',
  templates: 'From a template',
  flowName: 'Flow name',
  flowNameHint: 'lower-case letters, digits, - and _',
  cancel: 'Cancel',
  save: 'Save',
  saveDraft: 'Save draft',
  saved: 'Saved.',
  draftSaved: 'Draft saved; the running flow is unchanged.',
  notSavedInvalid: 'Not saved: the flow has problems. Fix them, or save a draft.',
  unsaved: 'Unsaved changes',
  palette: 'Nodes',
  search: 'Search nodes',
  groups: { sources: 'Sources', sync: 'Sync', business: 'Business', generic: 'Generic', custom: 'Custom' },
  dragHint: 'Drag a node onto the canvas.',
  errorsLane: 'errors: handlers that run when a run fails',
  settings: 'Settings',
  nodeId: 'Node id',
  rename: 'Rename',
  deleteNode: 'Delete node',
  nodeType: 'Type',
  withSettings: 'Settings (with:)',
  commonSettings: 'When, retry, timeout, on error',
  yamlOnly: 'Edit in the YAML:',
  secretsHidden: 'Secrets are not shown: they come from the environment or the secrets file.',
  flowPanel: 'Flow',
  description: 'Description',
  shop: 'Shop',
  triggerEvery: 'Run every (e.g. 5m)',
  triggerCron: 'Cron (e.g. 0 3 * * *)',
  timezone: 'Time zone',
  problems: 'Problems',
  noProblems: 'No problems.',
  validating: 'Checking…',
  problemsServerLanguage: 'Messages from the server are in English.',
  conflictTitle: 'Someone else saved this flow meanwhile',
  conflictHelp: 'Lines marked − are theirs (the saved file), + are yours.',
  takeTheirs: 'Take theirs',
  overwrite: 'Overwrite with mine',
  versions: 'Versions',
  draft: 'draft',
  restore: 'Restore',
  showDiff: 'Diff with the editor',
  close: 'Close',
  by: 'by',
  yourName: 'Your name (kept in history)',
  savedBy: 'Saved as',
  syntaxError: 'YAML syntax error',
  needsToken: 'Saving needs the editor token: open the page with ?token=<ORDERFLOW_EDITOR_TOKEN> once.',
  draftAvailable: 'A draft saved by {who} at {when} exists.',
  openDraft: 'Open the draft',
  layout: 'Auto layout',
  chooseFlow: 'Choose a flow on the left, or start a new one.',
  invalidId: 'An id is lower-case letters, digits and _.',
  discardChanges: 'Leave this flow? Its unsaved changes are lost.',
  testRun: 'Test run',
  testRunHelp: 'Runs the flow as edited without touching the real database or cursors: writes go to a scratch database, no webhook is sent.',
  testRunShop: 'Read the configured shop',
  testRunPages: 'Pages per source (1–10)',
  testRunFixtures: 'Use records I paste (JSON array or one object per line) for these sources',
  testRunStart: 'Run',
  testRunRunning: 'Running…',
  testRunCounts: 'in {in} · out {out}',
  testRunInput: 'Input records',
  testRunFrom: 'from {node}',
  testRunOutput: 'Output records',
  testRunEdge: 'Records on this edge',
  testRunNone: 'No records.',
  testRunRejected: 'Rejected, with the reason',
  testRunWebhooks: 'Webhooks held back',
  testRunWouldPost: 'Would POST to {url}:',
  testRunDone: 'Test run {status} in {ms} ms: click a node or an edge to see its records.',
  testRunClear: 'Hide test run',
  language: '中文',
};

type Dict = typeof en;

const zh: Dict = {
  title: '流程编辑器',
  flows: '流程',
  overview: '总览',
  newFlow: '新建流程',
  blank: '空白画布',
  templates: '从模板新建',
  flowName: '流程名称',
  flowNameHint: '小写字母、数字、- 和 _',
  cancel: '取消',
  save: '保存',
  saveDraft: '保存草稿',
  saved: '已保存。',
  draftSaved: '草稿已保存；正在运行的流程未改变。',
  notSavedInvalid: '未保存：流程有问题。请先修正，或保存为草稿。',
  unsaved: '有未保存的修改',
  palette: '节点',
  search: '搜索节点',
  groups: { sources: '数据源', sync: '同步', business: '业务', generic: '通用', custom: '自定义' },
  dragHint: '把节点拖到画布上。',
  errorsLane: 'errors：运行失败时执行的处理节点',
  settings: '设置',
  nodeId: '节点 ID',
  rename: '重命名',
  deleteNode: '删除节点',
  nodeType: '类型',
  withSettings: '参数（with:）',
  commonSettings: '条件、重试、超时、出错处理',
  yamlOnly: '请在 YAML 中编辑：',
  secretsHidden: '密钥不会显示：它们来自环境变量或密钥文件。',
  flowPanel: '流程',
  description: '说明',
  shop: '店铺',
  triggerEvery: '运行间隔（如 5m）',
  triggerCron: 'Cron 表达式（如 0 3 * * *）',
  timezone: '时区',
  problems: '问题',
  noProblems: '没有问题。',
  validating: '检查中…',
  problemsServerLanguage: '常见的错误信息已译为中文；其余保留服务器的英文原文（悬停可见原文）。',
  conflictTitle: '其他人已保存了这个流程',
  conflictHelp: '标 − 的行是对方的（已保存的文件），标 + 的行是你的。',
  takeTheirs: '采用对方的版本',
  overwrite: '用我的版本覆盖',
  versions: '历史版本',
  draft: '草稿',
  restore: '恢复',
  showDiff: '与编辑器对比',
  close: '关闭',
  by: '保存者',
  yourName: '你的名字（记录在历史中）',
  savedBy: '保存人',
  syntaxError: 'YAML 语法错误',
  needsToken: '保存需要编辑令牌：请用 ?token=<ORDERFLOW_EDITOR_TOKEN> 打开一次本页面。',
  draftAvailable: '{who} 于 {when} 保存了一份草稿。',
  openDraft: '打开草稿',
  layout: '自动布局',
  chooseFlow: '从左侧选择一个流程，或新建一个。',
  invalidId: 'ID 只能包含小写字母、数字和 _。',
  discardChanges: '离开这个流程？未保存的修改将丢失。',
  testRun: '试运行',
  testRunHelp: '按当前编辑的内容运行流程，不会改动真实数据库和游标：写入进入临时数据库，不发送任何 Webhook。',
  testRunShop: '读取已配置的店铺',
  testRunPages: '每个来源的页数（1–10）',
  testRunFixtures: '这些来源改用我粘贴的记录（JSON 数组或每行一个对象）',
  testRunStart: '运行',
  testRunRunning: '运行中…',
  testRunCounts: '输入 {in} · 输出 {out}',
  testRunInput: '输入记录',
  testRunFrom: '来自 {node}',
  testRunOutput: '输出记录',
  testRunEdge: '这条连线上的记录',
  testRunNone: '没有记录。',
  testRunRejected: '被拒绝的记录及原因',
  testRunWebhooks: '未发送的 Webhook',
  testRunWouldPost: '将会 POST 到 {url}：',
  testRunDone: '试运行{status}，用时 {ms} 毫秒：点击节点或连线查看记录。',
  testRunClear: '隐藏试运行结果',
  language: 'English',
};

export const DICTIONARIES: Record<Lang, Dict> = { en, zh };

/** Chinese names and summaries of the built-in node types; the catalog gives the English ones. */
const NODE_ZH: Record<string, [string, string]> = {
  fetch_increment: ['增量拉取订单', '按修改时间拉取上次同步以来变化的订单，存储时推进游标。'],
  fetch_full: ['全量拉取订单', '按创建时间回补最近若干天的全部订单（首次初始化或增量通道不可信时）。'],
  fetch_detail: ['拉取订单详情', '只在流程需要而列表未返回的字段时调用订单详情接口，带缓存。'],
  fetch_refunds: ['增量拉取退款', '拉取上次同步以来变化的退款单，存储时推进游标。'],
  tmc_messages: ['消息通道', '读取平台推送的订单消息，作为增量同步的备份通道。'],
  read_jsonl: ['读取 JSONL 文件', '从 JSON Lines 文件读取记录（测试和导入用）。'],
  stored_orders: ['读取已存订单', '从数据库读取已保存的订单。'],
  dedupe: ['去重', '丢弃本次运行或数据库中已有相同或更新版本的记录。'],
  store: ['写入数据库', '幂等地写入 SQL 表，旧数据永不覆盖新数据。'],
  store_orders: ['保存订单', '把订单幂等地写入 orders 表，并在同一事务中提交游标。'],
  store_refunds: ['保存退款', '把退款单幂等地写入数据库，并在同一事务中提交游标。'],
  stock_freeze: ['预售冻结库存', '预售订单预占库存，关闭或退款时释放。'],
  logistics_alert: ['物流停滞预警', '已发货订单的物流轨迹长时间无更新时提醒客服。'],
  restock_suggest: ['补货建议', '按 SKU 预测未来销量并生成采购建议。'],
  reconcile: ['对账', '每晚比对平台与数据库的每日订单数，重新拉取不一致的时间窗。'],
  filter: ['过滤', '只保留满足条件表达式的记录。'],
  log: ['写日志', '把记录的字段写入日志。'],
  notify: ['通知（Webhook）', '把记录发送到 Webhook。'],
  script: ['脚本', '用 Rhai 脚本读取、修改、过滤和标记记录（沙箱执行）。'],
};

export interface I18n {
  lang: Lang;
  t: Dict;
  group: (group: NodeGroup) => string;
  /** The node type's display name: Chinese when known, else its name. */
  typeName: (type: string) => string;
  typeSummary: (type: NodeType) => string;
  format: (text: string, values: Record<string, string>) => string;
}

export function makeI18n(lang: Lang): I18n {
  const t = DICTIONARIES[lang];
  return {
    lang,
    t,
    group: (group) => t.groups[group],
    typeName: (type) => (lang === 'zh' ? (NODE_ZH[type]?.[0] ?? type) : type),
    typeSummary: (type) => (lang === 'zh' ? (NODE_ZH[type.name]?.[1] ?? type.summary) : type.summary),
    format: (text, values) => text.replace(/\{(\w+)\}/g, (_, key: string) => values[key] ?? ''),
  };
}

const LANG_KEY = 'orderflow.lang';

/** The remembered choice, else the browser's language. */
export function initialLang(stored: string | null, browser: readonly string[]): Lang {
  if (stored === 'en' || stored === 'zh') return stored;
  return browser.some((l) => l.toLowerCase().startsWith('zh')) ? 'zh' : 'en';
}

export function loadLang(): Lang {
  return initialLang(localStorage.getItem(LANG_KEY), navigator.languages ?? [navigator.language]);
}

export function rememberLang(lang: Lang): void {
  localStorage.setItem(LANG_KEY, lang);
}

export const I18nContext = createContext<I18n>(makeI18n('en'));

export function useI18n(): I18n {
  return useContext(I18nContext);
}
