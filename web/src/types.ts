// The editor's HTTP contract (docs/editor.md): the JSON the server sends and takes.

export type NodeRole = 'source' | 'transform';
export type NodeGroup = 'sources' | 'sync' | 'business' | 'generic' | 'custom';

/** A JSON Schema as the server sends it; the editor reads only a few keys itself. */
export type JsonSchema = Record<string, unknown>;

export interface NodeType {
  name: string;
  role: NodeRole;
  group: NodeGroup;
  summary: string;
  description: string;
  schema: JsonSchema;
  example: string;
  outputs: unknown[] | null;
  secret_fields: string[];
}

export interface Catalog {
  node_types: NodeType[];
  flow_schema: JsonSchema;
  shops: string[];
}

export interface FlowSummary {
  name: string;
  description: string | null;
  shop: string | null;
  valid: boolean;
  /** Null for a flow that exists only as a draft. */
  version: string | null;
  has_draft: boolean;
}

export interface Draft {
  yaml: string;
  version: string;
  saved_by: string;
  saved_at: string;
}

export interface FlowFile {
  name: string;
  /** Empty, with a null version, for a flow that exists only as a draft. */
  yaml: string;
  version: string | null;
  draft: Draft | null;
}

export interface Template {
  name: string;
  description: string | null;
  yaml: string;
}

export interface Problem {
  line: number;
  col: number;
  message: string;
  node: string | null;
  path: (string | number)[] | null;
}

export interface ValidateResult {
  ok: boolean;
  problems: Problem[];
  graph: unknown;
}

export interface VersionEntry {
  version: string;
  saved_by: string;
  role: string;
  saved_at: string;
  draft: boolean;
}
