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
export function formSchema(type: NodeType): { schema: JsonSchema; yamlOnly: string[] } {
  const properties = { ...((type.schema.properties as Record<string, JsonSchema> | undefined) ?? {}) };
  const yamlOnly: string[] = [];
  for (const [key, property] of Object.entries(properties)) {
    if (type.secret_fields.includes(key)) delete properties[key];
    else if (!isFormEditable(property)) {
      yamlOnly.push(key);
      delete properties[key];
    }
  }
  const required = ((type.schema.required as string[] | undefined) ?? []).filter((key) => key in properties);
  const { $schema: _ignored, ...rest } = type.schema;
  void _ignored;
  return { schema: { ...rest, type: 'object', properties, required }, yamlOnly };
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
