import { describe, expect, it } from 'vitest';
import { filterTypes, formSchema, groupCatalog } from './catalog';
import type { NodeType } from './types';

function nodeType(name: string, group: NodeType['group'], extra: Partial<NodeType> = {}): NodeType {
  return {
    name,
    group,
    role: group === 'sources' ? 'source' : 'transform',
    summary: `${name} summary`,
    description: '',
    schema: { type: 'object', properties: {} },
    example: '',
    outputs: null,
    secret_fields: [],
    ...extra,
  };
}

describe('catalog', () => {
  it('groups node types in the fixed group order, by name, without empty groups', () => {
    const groups = groupCatalog([
      nodeType('tag_vip', 'custom'),
      nodeType('store_orders', 'sync'),
      nodeType('fetch_increment', 'sources'),
      nodeType('dedupe', 'sync'),
      nodeType('log', 'generic'),
    ]);
    expect(groups.map((g) => [g.group, g.types.map((t) => t.name)])).toEqual([
      ['sources', ['fetch_increment']],
      ['sync', ['dedupe', 'store_orders']],
      ['generic', ['log']],
      ['custom', ['tag_vip']],
    ]);
  });

  it('filters by name or either language of the summary', () => {
    const types = [nodeType('dedupe', 'sync'), nodeType('log', 'generic')];
    expect(filterTypes(types, 'DED', () => '').map((t) => t.name)).toEqual(['dedupe']);
    expect(filterTypes(types, '日志', (t) => (t.name === 'log' ? '写日志' : '')).map((t) => t.name)).toEqual(['log']);
  });

  it('leaves secret fields out of the form, and fields a form cannot edit to the YAML', () => {
    const { schema, yamlOnly } = formSchema(
      nodeType('notify', 'generic', {
        schema: {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          type: 'object',
          properties: { url: { type: 'string' }, secret: { type: 'string' }, breaker: {} },
          required: ['url', 'secret'],
        },
        secret_fields: ['secret'],
      }),
    );
    expect(Object.keys(schema.properties as object)).toEqual(['url']);
    expect(schema.required).toEqual(['url']);
    expect(schema.$schema).toBeUndefined();
    expect(yamlOnly).toEqual(['breaker']);
  });

  it('inlines shared definitions and optional values so their fields show in the form', () => {
    const defs = {
      Duration: { type: 'string', pattern: '^[0-9]+[a-z]+$' },
      Breaker: { type: 'object', properties: { window: { $ref: '#/$defs/Duration' } } },
      LogLevel: { oneOf: [{ const: 'info' }, { const: 'error' }] },
    };
    const { schema, yamlOnly } = formSchema(
      nodeType('fetch_increment', 'sources', {
        schema: {
          type: 'object',
          properties: {
            lookback: { description: 'How far back.', $ref: '#/$defs/Duration' },
            breaker: { anyOf: [{ $ref: '#/$defs/Breaker' }, { type: 'null' }] },
            level: { $ref: '#/$defs/LogLevel' },
          },
        },
      }),
      defs,
    );
    const properties = schema.properties as Record<string, Record<string, unknown>>;
    expect(properties.lookback).toEqual({ type: 'string', pattern: '^[0-9]+[a-z]+$', description: 'How far back.' });
    expect(properties.breaker).toMatchObject({ type: 'object', properties: { window: { type: 'string' } } });
    expect(properties.level.oneOf).toHaveLength(2);
    expect(yamlOnly).toEqual([]);
  });
});
