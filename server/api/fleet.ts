// The fleet as a whole (issue 12 §3): is automatic repair running, and when did the controller last look?
//   GET  /api/v1/fleet          (viewer)    breaker, control-plane liveness, nodes by state, recent fleet events
//   POST /api/v1/fleet/resume   (operator)  close the circuit breaker: automatic repair starts again (audited)
// State lives in the database (fleet_control), so every replica answers the same.
import { Hono } from 'hono';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import type { BreakerState, FleetEventRow, Liveness } from '../store/fleet.ts';
import type { NodeStore } from '../store/nodes.ts';
import { principalOf } from './auth.ts';
import { audited } from './audit-context.ts';
import type { AuditIntent } from '../store/audit.ts';
import type { Mount, RequireRole } from './app.ts';
import type { RouteDoc } from './openapi.ts';
import { jsonBody } from './validate.ts';

export const ResumeRequest = z.strictObject({
  /** what the operator found and fixed; kept in the audit trail */
  reason: z.string().min(1).max(1024).optional(),
});

export const FLEET_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/fleet', summary: 'Fleet status: circuit breaker, controller liveness, nodes by state, recent fleet events', tag: 'fleet', auth: 'viewer' },
  { method: 'post', path: '/api/v1/fleet/resume', summary: 'Close the circuit breaker: automatic repair resumes (audited)', tag: 'fleet', auth: 'operator', request: ResumeRequest },
];

/** What the routes need of the fleet controller (server/fleet/controller.ts provides it). */
export interface FleetControl {
  breaker(): Promise<BreakerState>;
  resume(actor: string, reason: string, audit?: AuditIntent): Promise<BreakerState | null>;
  store: { liveness(): Promise<Liveness>; fleetEvents(o?: { limit?: number }): Promise<FleetEventRow[]> };
}

export function fleetMount({ fleet, nodes }: { fleet: FleetControl; nodes: Pick<NodeStore, 'countByState'> }) {
  return (requireRole: RequireRole): Mount => {
    const app = new Hono();
    app.get('/api/v1/fleet', requireRole('viewer'), async (c) => {
      const [breaker, liveness, counts, events] = await Promise.all([fleet.breaker(), fleet.store.liveness(), nodes.countByState(), fleet.store.fleetEvents({ limit: 20 })]);
      return c.json({ degraded: breaker.open, breaker, liveness, nodes: counts, events });
    });
    app.post('/api/v1/fleet/resume', requireRole('operator'), async (c) => {
      const body = await jsonBody(c, ResumeRequest);
      const actor = `api:${principalOf(c).name}`;
      const breaker = await audited(c, 'fleet.resume', { kind: 'fleet', id: 'breaker' }, async (audit) => {
        const b = await fleet.resume(actor, body.reason ?? `resumed by ${actor}`, audit);
        // nothing changed: a refused request writes no audit row
        if (!b) throw new AppError(409, 'breaker_closed', 'the circuit breaker is not open: automatic repair is already running');
        return b;
      });
      return c.json({ degraded: false, breaker });
    });
    return { at: '/', app, docs: FLEET_ROUTES };
  };
}
