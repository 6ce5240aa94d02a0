// The console's reads (viewer permission): src/server/web/console.rs.
import { request } from '../api';
import type { FlowPage, Overview, RunPage } from './types';

export const consoleApi = {
  overview: () => request<Overview>('GET', '/api/overview'),
  flow: (name: string) => request<FlowPage>('GET', `/api/flows/${encodeURIComponent(name)}/runs`),
  run: (id: string) => request<RunPage>('GET', `/api/runs/${encodeURIComponent(id)}`),
};
