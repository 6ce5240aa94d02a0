// The palette's view of `/api/catalog`: node types grouped in a fixed order, each with its form schema.
import type { JsonSchema, NodeGroup, NodeType } from './types';

export const GROUP_ORDER: NodeGroup[] = ['sources', 'sync', 'business', 'generic', 'custom'];

export interface PaletteGroup {
  group: NodeGroup;
  types: NodeType[];
}

/** Node types by group in GROUP_ORDER, by name within a group; empty groups left out. */
export function groupCatalog(types: NodeType[]): PaletteGroup[] {
  return GROUP_ORDER.map((group) => ({
    group,
    types: types.filter((t) => t.group === group).sort((a, b) => a.name.localeCompare(b.name)),
  })).filter((g) => g.types.length > 0);
}

/** Keeps the node types whose name or summary contains `query` (either language's summary). */
export function filterTypes(types: NodeType[], query: string, localSummary: (t: NodeType) => string): NodeType[] {
  const needle = query.trim().toLowerCase();
  if (!needle) return types;
  return types.filter((t) =>
    [t.name, t.summary, localSummary(t)].some((text) => text.toLowerCase().includes(needle)),
  );
}

/**
 * The schema the settings form renders: secret fields are taken out (a secret never reaches the page, it
 * comes from the environment), and so are fields without a type a form can edit (they stay editable in YAML).
 */
export function formSchema(type: NodeType, sharedDefs: JsonSchema = {}): { schema: JsonSchema; yamlOnly: string[] } {
  const defs = { ...sharedDefs, ...((type.schema.$defs as JsonSchema | undefined) ?? {}) };
  const properties: Record<string, JsonSchema> = {};
  for (const [key, property] of Object.entries((type.schema.properties as Record<string, JsonSchema> | undefined) ?? {})) {
    properties[key] = resolve(property, defs, 0);
  }
  const yamlOnly: string[] = [];
  for (const [key, property] of Object.entries(properties)) {
    if (type.secret_fields.includes(key)) delete properties[key];
    else if (!isFormEditable(property)) {
      yamlOnly.push(key);
      delete properties[key];
    }
  }
  const required = ((type.schema.required as string[] | undefined) ?? []).filter((key) => key in properties);
  // The node's description is in the palette and the panel already; the form shows only the fields.
  const { $schema: _schema, $defs: _defs, description: _description, title: _title, ...rest } = type.schema;
  void _schema, void _defs, void _description, void _title;
  return { schema: { ...rest, type: 'object', properties, required }, yamlOnly };
}

const MAX_REF_DEPTH = 8;

/**
 * Inlines `$ref: "#/$defs/X"` (the node schemas share definitions such as `Duration` with the flow schema)
 * and turns an optional value's `anyOf: [T, null]` into `T`, so the form shows T's own field.
 */
function resolve(schema: JsonSchema, defs: JsonSchema, depth: number): JsonSchema {
  if (depth > MAX_REF_DEPTH) return schema;
  const { $ref, ...rest } = schema;
  if (typeof $ref === 'string' && $ref.startsWith('#/$defs/')) {
    const target = defs[$ref.slice('#/$defs/'.length)] as JsonSchema | undefined;
    if (target) return resolve({ ...target, ...rest }, defs, depth + 1);
  }
  const anyOf = schema.anyOf as JsonSchema[] | undefined;
  if (Array.isArray(anyOf)) {
    const notNull = anyOf.filter((branch) => branch.type !== 'null');
    if (notNull.length === 1) {
      const { anyOf: _anyOf, ...own } = schema;
      void _anyOf;
      return resolve({ ...notNull[0], ...own }, defs, depth + 1);
    }
  }
  if (schema.type === 'object' && schema.properties) {
    const properties = Object.fromEntries(
      Object.entries(schema.properties as Record<string, JsonSchema>).map(([k, v]) => [k, resolve(v, defs, depth + 1)]),
    );
    return { ...schema, properties };
  }
  return schema;
}

function isFormEditable(property: JsonSchema): boolean {
  const type = property.type;
  if (Array.isArray(type)) return type.some((t) => t !== 'null');
  if (typeof type === 'string') return true;
  return Array.isArray(property.enum) || Array.isArray(property.anyOf) || Array.isArray(property.oneOf);
}

/** The form of the keys every node has beside `with:`. */
export const COMMON_SCHEMA: JsonSchema = {
  type: 'object',
  properties: {
    when: { type: 'string' },
    timeout: { type: 'string' },
    on_error: { type: 'string', enum: ['fail', 'skip', 'dead_letter'] },
    retry: {
      type: 'object',
      properties: {
        attempts: { type: 'integer', minimum: 1, maximum: 100 },
        backoff: { type: 'string' },
        max_backoff: { type: 'string' },
      },
    },
  },
};
