// The console's JSON (src/server/web/console.rs): what the overview, a flow's page and a run's page show.
// Never a node's settings: a node is its id, type, role, inputs and `when:`.

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'partial' | 'cancelled' | 'paused' | string;
export type NodeStatus = 'succeeded' | 'failed' | 'skipped' | 'cancelled' | 'paused' | string;

export interface RunRecord {
  id: string;
  flow: string;
  trigger: string;
  status: RunStatus;
  started_at: string;
  finished_at: string | null;
  error: string | null;
  shop: string | null;
  worker: string | null;
}

export interface NodeRunRecord {
  node_id: string;
  node_type: string;
  status: NodeStatus;
  records_in: number;
  records_out: number;
  errors: number;
  started_at: string | null;
  finished_at: string | null;
  error: string | null;
}

export interface FlowFacts {
  name: string;
  file: string;
  description: string | null;
  trigger: string | null;
  shops: string[];
  next_run: string | null;
  running: string[];
  loaded_at: string | null;
  errors: string[];
  open_dead_letters: number;
}

export interface GraphNode {
  id: string;
  use: string;
  role: 'source' | 'transform';
  section: 'nodes' | 'errors';
  inputs: string[];
  when: string | null;
}

export interface Graph {
  nodes: GraphNode[];
}

export interface Breaker {
  platform: string;
  shop: string;
  channel: string;
  state: string;
  /** One character per recent call of the channel: `x` failed. */
  outcomes: string;
  opened_at: string | null;
  last_degraded_at: string | null;
}

export interface Ban {
  platform: string;
  app_key: string;
  until: string;
  reason: string;
}

export interface Reauth {
  platform: string;
  shop: string;
  since: string;
  reason: string;
}

export interface Lag {
  platform: string;
  shop: string;
  stream: string;
  until: string | null;
  seconds: number | null;
}

export interface Alert {
  id: number;
  kind: string;
  platform: string;
  shop: string;
  tid: number | null;
  detail: string;
  created_at: string;
}

export interface RestockSuggestion {
  run_id: string;
  shop: string;
  sku: string;
  model: string;
  suggested: number;
  available: number;
  on_order: number;
  demand_over_lead: number;
  created_at: string;
}

export interface Overview {
  now: string;
  flows: FlowFacts[];
  breakers: Breaker[];
  bans: Ban[];
  reauth: Reauth[];
  lags: Lag[];
  alerts: Alert[];
  restock: RestockSuggestion[];
  runs: RunRecord[];
}

export interface RecordedRun {
  run: RunRecord;
  nodes: NodeRunRecord[];
}

export interface FlowPage {
  flow: FlowFacts;
  graph: Graph | null;
  runs: RunRecord[];
  last_run: RecordedRun | null;
}

export interface RunPage extends RecordedRun {
  graph: Graph | null;
}
