// The flow file as a `yaml` Document: every visual edit is applied to the parsed document in place, so the
// user's comments, key order, quoting and blank lines survive; only the edited values change.
import YAML, { Document, isMap, isScalar, isSeq, isCollection, LineCounter, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';

/** The two node sections of a flow file. */
export type Section = 'nodes' | 'errors';

/** The top-level key where the editor keeps the node positions the user set (`node_id: [x, y]`). */
export const LAYOUT_KEY = 'x-layout';

/** The node keys the editor edits beside `with:`. */
export const COMMON_KEYS = ['when', 'retry', 'timeout', 'on_error'] as const;

export interface FlowNode {
  id: string;
  section: Section;
  use: string;
  inputs: string[];
  settings: Record<string, unknown>;
  common: Record<string, unknown>;
  position: [number, number] | null;
  /** Where the node's entry starts and ends in the source, for mapping problems and jumps. */
  range: [number, number];
}

export interface FlowModel {
  name: string;
  description: string;
  shop: string;
  trigger: Record<string, unknown>;
  nodes: FlowNode[];
}

export interface ParsedFlow {
  doc: Document.Parsed;
  model: FlowModel;
  /** The first YAML syntax error, 1-based, or null when the text parses. */
  syntaxError: { line: number; col: number; message: string } | null;
}

export function parseFlowDoc(src: string): Document.Parsed {
  return YAML.parseDocument(src, { keepSourceTokens: true, uniqueKeys: false });
}

export function parseFlow(src: string): ParsedFlow {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(src, { keepSourceTokens: true, uniqueKeys: false, lineCounter });
  const error = doc.errors[0];
  if (error) {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    return { doc, model: emptyModel(), syntaxError: { line, col, message: error.message.split('\n')[0] } };
  }
  return { doc, model: readModel(doc), syntaxError: null };
}

function emptyModel(): FlowModel {
  return { name: '', description: '', shop: '', trigger: {}, nodes: [] };
}

function asText(value: unknown): string {
  return typeof value === 'string' ? value : value == null ? '' : String(value);
}

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** The list of ids an `input:` value names (one id or a list). */
export function inputsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

export function readModel(doc: Document): FlowModel {
  const root = asRecord(doc.toJS());
  const layout = asRecord(root[LAYOUT_KEY]);
  const nodes: FlowNode[] = [];
  for (const section of ['nodes', 'errors'] as const) {
    const map = doc.get(section, true);
    if (!isMap(map)) continue;
    for (const pair of map.items) {
      if (!isScalar(pair.key)) continue;
      const id = String(pair.key.value);
      const body = asRecord((pair.value as YAML.Node | null)?.toJSON?.() ?? null);
      const common: Record<string, unknown> = {};
      for (const key of COMMON_KEYS) if (body[key] !== undefined) common[key] = body[key];
      const at = layout[id];
      const position =
        Array.isArray(at) && at.length === 2 && at.every((n) => typeof n === 'number') ? (at as [number, number]) : null;
      const end = (pair.value as YAML.Node | null)?.range?.[2] ?? pair.key.range?.[2] ?? 0;
      nodes.push({
        id,
        section,
        use: asText(body.use),
        inputs: inputsOf(body.input),
        settings: asRecord(body.with),
        common,
        position,
        range: [pair.key.range?.[0] ?? 0, end],
      });
    }
  }
  return {
    name: asText(root.flow),
    description: asText(root.description),
    shop: asText(root.shop),
    trigger: asRecord(root.trigger),
    nodes,
  };
}

/** The style of flow collections in the source: whether `{ a }` maps and `[ a ]` lists are padded. */
interface FlowPadding {
  maps: boolean;
  seqs: boolean;
}

function flowCollections(doc: Document): (YAMLMap | YAMLSeq)[] {
  const found: (YAMLMap | YAMLSeq)[] = [];
  YAML.visit(doc, {
    Map: (_, node) => void (node.flow && found.push(node)),
    Seq: (_, node) => void (node.flow && found.push(node)),
  });
  return found;
}

function detectPadding(doc: Document, src: string): FlowPadding {
  // Without an example in the file, the style of the shipped flows: `{ a: 1 }` and `[a, b]`.
  const padding: FlowPadding = { maps: true, seqs: false };
  const seen = { maps: false, seqs: false };
  for (const node of flowCollections(doc)) {
    const [start] = node.range ?? [0];
    const kind = isMap(node) ? 'maps' : 'seqs';
    if (seen[kind] || node.items.length === 0) continue;
    seen[kind] = true;
    padding[kind] = src[start + 1] === ' ';
  }
  return padding;
}

/** The `yaml` library pads every flow collection alike; put back the file's own style per kind. */
function restorePadding(text: string, padding: FlowPadding): string {
  if (padding.maps && padding.seqs) return text;
  const out = YAML.parseDocument(text);
  const cuts: number[] = [];
  for (const node of flowCollections(out)) {
    if (node.items.length === 0 || (isMap(node) ? padding.maps : padding.seqs)) continue;
    const [start, end] = node.range ?? [0, 0];
    const close = text.lastIndexOf(isMap(node) ? '}' : ']', end);
    if (text[start + 1] === ' ' && text[close - 1] === ' ') cuts.push(start + 1, close - 1);
  }
  let result = text;
  for (const at of cuts.sort((a, b) => b - a)) result = result.slice(0, at) + result.slice(at + 1);
  return result;
}

/** Whether block lists in the file are indented under their key (`key:\n  - a`) or not (`key:\n- a`). */
function detectIndentSeq(src: string): boolean {
  const match = /^( *)[^\s#-][^\n]*:[ \t]*\n\1( *)- /m.exec(src);
  return match ? match[2].length > 0 : true;
}

function detectIndent(src: string): number {
  const match = /^[^\s#][^\n]*:[ \t]*\n( +)\S/m.exec(src);
  return match ? match[1].length : 2;
}

/** Prints the document in the style of `original`, the text it was parsed from. */
export function printFlowDoc(doc: Document, original: string): string {
  const text = doc.toString({
    lineWidth: 0,
    indent: detectIndent(original),
    indentSeq: detectIndentSeq(original),
    flowCollectionPadding: true,
  });
  return restorePadding(text, detectPadding(doc, original));
}

/** Parses `src`, applies `change` to the document and prints it back in the file's own style. */
export function editFlow(src: string, change: (doc: Document.Parsed) => void): string {
  const doc = parseFlowDoc(src);
  if (doc.errors.length > 0) throw new Error(`the YAML does not parse: ${doc.errors[0].message}`);
  change(doc);
  return printFlowDoc(doc, src);
}

function sectionMap(doc: Document, section: Section, create: boolean): YAMLMap | null {
  const current = doc.get(section, true);
  if (isMap(current)) {
    // A blank flow starts as `nodes: {}`; the first node turns it into a block mapping.
    if (current.items.length === 0) current.flow = false;
    return current;
  }
  if (!create) return null;
  const map = new YAMLMap();
  doc.set(section, map);
  return map;
}

function findPair(map: YAMLMap, key: string): Pair<Scalar, unknown> | undefined {
  return map.items.find((pair) => isScalar(pair.key) && pair.key.value === key) as Pair<Scalar, unknown> | undefined;
}

function nodeMap(doc: Document, id: string): { section: Section; body: YAMLMap } | null {
  for (const section of ['nodes', 'errors'] as const) {
    const map = sectionMap(doc, section, false);
    const body = map && findPair(map, id)?.value;
    if (isMap(body)) return { section, body };
  }
  return null;
}

function requireNode(doc: Document, id: string): { section: Section; body: YAMLMap } {
  const found = nodeMap(doc, id);
  if (!found) throw new Error(`no node "${id}" in the flow`);
  return found;
}

/** Every id in use in either section (ids are unique across both). */
export function nodeIds(doc: Document): string[] {
  return (['nodes', 'errors'] as const).flatMap((section) => {
    const map = sectionMap(doc, section, false);
    return map ? map.items.filter((p) => isScalar(p.key)).map((p) => String((p.key as Scalar).value)) : [];
  });
}

/** The first free id made from a node type: `dedupe`, then `dedupe_2`, … */
export function freshId(doc: Document, type: string): string {
  const taken = new Set(nodeIds(doc));
  const base = type.replace(/[^a-z0-9_]/gi, '_').toLowerCase() || 'node';
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}_${n}`)) return `${base}_${n}`;
}

function layoutMap(doc: Document, create: boolean): YAMLMap | null {
  const current = doc.get(LAYOUT_KEY, true);
  if (isMap(current)) return current;
  if (!create) return null;
  const map = new YAMLMap();
  doc.set(LAYOUT_KEY, map);
  return map;
}

/** Keeps where the user put a node, under `x-layout:` as a flow list `[x, y]`. */
export function setPosition(doc: Document, id: string, [x, y]: [number, number]): void {
  const layout = layoutMap(doc, true)!;
  const point = new YAMLSeq();
  point.flow = true;
  point.items = [doc.createNode(Math.round(x)), doc.createNode(Math.round(y))];
  const pair = findPair(layout, id);
  if (pair) pair.value = point;
  else layout.add(doc.createPair(id, point));
}

/** Forgets every position the user set: the whole graph is laid out automatically again. */
export function clearPositions(doc: Document): void {
  doc.delete(LAYOUT_KEY);
}

/** Adds `id: {use: type}` at the end of a section (`input:` first when given). */
export function addNode(doc: Document, section: Section, id: string, type: string, input?: string): void {
  if (nodeIds(doc).includes(id)) throw new Error(`a node "${id}" is already in the flow`);
  const map = sectionMap(doc, section, true)!;
  const body = new YAMLMap();
  body.add(doc.createPair('use', type));
  if (input) body.add(doc.createPair('input', input));
  map.add(doc.createPair(id, body));
}

function removeInput(body: YAMLMap, from: string): void {
  const input = body.get('input', true);
  if (isScalar(input) && input.value === from) body.delete('input');
  else if (isSeq(input)) {
    input.items = input.items.filter((item) => !(isScalar(item) && item.value === from));
    if (input.items.length === 1) body.set('input', input.items[0]);
    else if (input.items.length === 0) body.delete('input');
  }
}

function everyNode(doc: Document): YAMLMap[] {
  return (['nodes', 'errors'] as const).flatMap((section) => {
    const map = sectionMap(doc, section, false);
    return map ? map.items.map((p) => p.value).filter(isMap) : [];
  });
}

/** Deletes a node, the inputs naming it and its position. */
export function deleteNode(doc: Document, id: string): void {
  const { section } = requireNode(doc, id);
  sectionMap(doc, section, false)!.delete(id);
  for (const body of everyNode(doc)) removeInput(body, id);
  const layout = layoutMap(doc, false);
  if (layout) {
    layout.delete(id);
    if (layout.items.length === 0) doc.delete(LAYOUT_KEY);
  }
}

/** Renames a node in place (its comments and place in the file stay); inputs and its position follow. */
export function renameNode(doc: Document, from: string, to: string): void {
  if (from === to) return;
  if (nodeIds(doc).includes(to)) throw new Error(`a node "${to}" is already in the flow`);
  const { section } = requireNode(doc, from);
  renameKey(sectionMap(doc, section, false)!, from, to);
  for (const body of everyNode(doc)) {
    const input = body.get('input', true);
    const items = isSeq(input) ? input.items : [input];
    for (const item of items) if (isScalar(item) && item.value === from) item.value = to;
  }
  const layout = layoutMap(doc, false);
  if (layout && findPair(layout, from)) renameKey(layout, from, to);
}

function renameKey(map: YAMLMap, from: string, to: string): void {
  const pair = findPair(map, from)!;
  pair.key.value = to;
}

/** Adds `from` to the inputs of `to`: one id stays a plain value, several become a flow list. */
export function connect(doc: Document, from: string, to: string): void {
  const { body } = requireNode(doc, to);
  requireNode(doc, from);
  const input: unknown = body.get('input', true);
  if (input === undefined || (isScalar(input) && (input.value == null || input.value === ''))) {
    body.set('input', doc.createNode(from));
  } else if (isScalar(input)) {
    if (input.value === from) return;
    const list = new YAMLSeq();
    list.flow = true;
    list.items = [input, doc.createNode(from)];
    body.set('input', list);
  } else if (isSeq(input)) {
    if (input.items.some((item) => isScalar(item) && item.value === from)) return;
    input.items.push(doc.createNode(from));
  }
}

export function disconnect(doc: Document, from: string, to: string): void {
  removeInput(requireNode(doc, to).body, from);
}

function plainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Writes `next` over `previous` at `path` key by key: unchanged keys are not touched (their comments and
 * style stay), removed keys are deleted, a changed list or scalar is replaced in the style it had.
 */
export function applyValue(doc: Document, path: (string | number)[], previous: unknown, next: unknown): void {
  if (sameValue(previous, next)) return;
  if (next === undefined || next === null || next === '') {
    if (doc.hasIn(path)) doc.deleteIn(path);
    pruneEmptyParents(doc, path.slice(0, -1));
    return;
  }
  const current = doc.getIn(path, true);
  if (plainObject(next) && isMap(current) && plainObject(previous)) {
    for (const key of new Set([...Object.keys(previous), ...Object.keys(next)])) {
      applyValue(doc, [...path, key], previous[key], next[key]);
    }
    return;
  }
  const created = doc.createNode(next);
  if (isCollection(created) && isCollection(current)) created.flow = current.flow;
  else if (isSeq(created)) created.flow = true;
  if (isScalar(current) && isScalar(created) && typeof current.value === typeof created.value) {
    current.value = created.value;
    return;
  }
  ensureParents(doc, path.slice(0, -1));
  doc.setIn(path, created);
}

function ensureParents(doc: Document, path: (string | number)[]): void {
  for (let depth = 1; depth <= path.length; depth++) {
    const prefix = path.slice(0, depth);
    const node = doc.getIn(prefix, true);
    if (!isMap(node)) doc.setIn(prefix, new YAMLMap());
  }
}

/** Removes `with:` (or a nested mapping) that a deletion left empty, but never a section or the root. */
function pruneEmptyParents(doc: Document, path: (string | number)[]): void {
  if (path.length < 3) return;
  const node = doc.getIn(path, true);
  if (isMap(node) && node.items.length === 0) {
    doc.deleteIn(path);
    pruneEmptyParents(doc, path.slice(0, -1));
  }
}

/** Sets a node's `with:` settings from a form's data. */
export function setSettings(doc: Document, id: string, previous: Record<string, unknown>, next: Record<string, unknown>) {
  const { section } = requireNode(doc, id);
  applyValue(doc, [section, id, 'with'], previous, next);
}

/** Sets a node's `when`, `retry`, `timeout`, `on_error` from a form's data. */
export function setCommon(doc: Document, id: string, previous: Record<string, unknown>, next: Record<string, unknown>) {
  const { section } = requireNode(doc, id);
  for (const key of COMMON_KEYS) applyValue(doc, [section, id, key], previous[key], next[key]);
}

/**
 * Sets a top-level key of the flow (`flow`, `description`, `shop`, `trigger`). A text field being retyped
 * keeps its key as `""` (so it keeps its place in the file) when `keepEmpty`; otherwise emptying removes it.
 */
export function setFlowField(doc: Document, key: string, previous: unknown, next: unknown, keepEmpty = false): void {
  const current = doc.get(key, true);
  if (next === '' && keepEmpty && isScalar(current)) {
    current.value = '';
    return;
  }
  if (current === undefined && next !== undefined && next !== '' && isMap(doc.contents)) {
    // A new key goes before the graph, where the shipped flows keep it, not after `nodes:`.
    const items = doc.contents.items;
    const graph = items.findIndex((pair) => isScalar(pair.key) && ['nodes', 'errors', LAYOUT_KEY].includes(String(pair.key.value)));
    items.splice(graph < 0 ? items.length : graph, 0, doc.createPair(key, next));
    return;
  }
  applyValue(doc, [key], previous, next);
}

/** The text of a new, empty flow. */
export function blankFlow(name: string): string {
  return `flow: ${name}\ndescription: ""\nnodes: {}\n`;
}

/** A template's text with its `flow:` name replaced by the new flow's. */
export function fromTemplate(yaml: string, name: string): string {
  return editFlow(yaml, (doc) => {
    const flow = doc.get('flow', true);
    if (isScalar(flow)) flow.value = name;
    else doc.set('flow', name);
  });
}
