// The audit log over HTTP (issue 17 item 6); the helpers routes write it with are in server/api/audit-context.ts.
//   GET /api/v1/audit?actor=&action=&target=&since=&limit=&before=   (admin)  newest first, cursor-paginated
// Admin only: the log names every principal, where they called from, and the before/after of BMC and baseline
// changes; an operator sees what they need in node timelines and channel history.
import { Hono } from 'hono';
import { z } from 'zod';
import { CursorParam } from '../contract/cursor.ts';
import type { AuditRow, AuditStore } from '../store/audit.ts';
import type { createAdminAuth } from './auth.ts';
import type { RouteDoc } from './openapi.ts';
import { parseWith } from './validate.ts';

const Name = z.string().min(1).max(256);
export const AuditQuery = z.strictObject({
  actor: Name.optional(),
  /** exact action, or a prefix: node.* */
  action: z.string().regex(/^[a-z0-9.*-]{1,128}$/, 'actions are dotted words like node.labels; end with * for a prefix').optional(),
  /** kind:id (node:4c4c…), or kind:* */
  target: z.string().regex(/^[a-z-]+:\S{1,200}$/, 'targets are kind:id, e.g. node:4c4c4544-0042-3510-8052-b4c04f4e4d32 or image:*').optional(),
  since: z.iso.datetime({ offset: true }).transform((s) => new Date(s)).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  before: CursorParam.optional(),
});

export const AUDIT_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/audit', summary: 'Audit log of admin and operator changes, newest first (filters: actor, action or prefix.*, target kind:id or kind:*, since; cursor: before=nextCursor)', tag: 'audit', auth: 'admin' },
];

const view = (r: AuditRow) => ({
  id: r.id,
  at: r.at.toISOString(),
  actor: r.actor,
  role: r.role,
  action: r.action,
  target: r.target,
  before: r.before,
  after: r.after,
  requestId: r.requestId,
  source: r.source,
});

export function auditRoutes(store: AuditStore, requireRole: ReturnType<typeof createAdminAuth>): Hono {
  const app = new Hono();
  app.get('/audit', requireRole('admin'), async (c) => {
    const q = parseWith(AuditQuery, c.req.query());
    const page = await store.page({ actor: q.actor, action: q.action, target: q.target, since: q.since, before: q.before, limit: q.limit ?? 100 });
    return c.json({ entries: page.rows.map(view), nextCursor: page.nextCursor });
  });
  return app;
}
