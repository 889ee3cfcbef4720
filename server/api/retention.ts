// Retention over HTTP (issue 17 item 5):
//   GET /api/v1/retention   (admin)   the retention settings, the last run (any replica: it is in fleet_control),
//                                     and when the next one is due
// The job itself runs on the leader (server/fleet/retention.ts).
import { Hono } from 'hono';
import type { Retention } from '../fleet/retention.ts';
import type { Mount, RequireRole } from './app.ts';
import type { RouteDoc } from './openapi.ts';

export const RETENTION_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/retention', summary: 'Retention settings (days kept per table, batch size, interval), the last pruning run (rows per table, duration, backlog) and when the next is due', tag: 'retention', auth: 'admin' },
];

export function retentionMount({ retention }: { retention: Pick<Retention, 'status'> }) {
  return (requireRole: RequireRole): Mount => {
    const app = new Hono();
    app.get('/api/v1/retention', requireRole('admin'), async (c) => c.json(await retention.status()));
    return { at: '/', app, docs: RETENTION_ROUTES };
  };
}
