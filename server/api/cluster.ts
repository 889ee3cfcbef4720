// The control plane's replicas (issue 14 item 6):
//   GET /api/v1/cluster   (viewer)   every replica (up or gone), the leader and its epoch
// Presence rows are upserted by every replica each fleet tick (server/fleet/controller.ts), so any replica answers
// the same. The view itself is pure (server/domain/cluster.ts).
import { Hono } from 'hono';
import type { Clock } from '../clock.ts';
import { clusterView } from '../domain/cluster.ts';
import type { ReplicaStore } from '../store/replicas.ts';
import type { Mount, RequireRole } from './app.ts';
import type { RouteDoc } from './openapi.ts';

export const CLUSTER_ROUTES: RouteDoc[] = [{ method: 'get', path: '/api/v1/cluster', summary: 'Control-plane replicas (up or gone), the current leader and its epoch', tag: 'cluster', auth: 'viewer' }];

export function clusterMount({ replicas, clock, goneAfterMs }: { replicas: Pick<ReplicaStore, 'list' | 'epoch'>; clock: Clock; goneAfterMs: number }) {
  return (requireRole: RequireRole): Mount => {
    const app = new Hono();
    app.get('/api/v1/cluster', requireRole('viewer'), async (c) => {
      const [rows, epoch] = await Promise.all([replicas.list(), replicas.epoch()]);
      return c.json(clusterView({ rows, epoch, now: clock.now(), goneAfterMs }));
    });
    return { at: '/', app, docs: CLUSTER_ROUTES };
  };
}
