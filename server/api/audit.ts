// The audit log over HTTP (issue 17 item 6), and the one helper every mutating admin route uses to write it.
//   GET /api/v1/audit?actor=&action=&target=&since=&limit=&before=   (admin)  newest first, cursor-paginated
// Admin only: the log names every principal, where they called from, and the before/after of BMC and baseline
// changes; an operator sees what they need in node timelines and channel history.
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { CursorParam } from '../contract/cursor.ts';
import type { AuditChange, AuditIntent, AuditRow, AuditStore, AuditTarget } from '../store/audit.ts';
import { AppError } from '../errors.ts';
import { principalOf, type createAdminAuth } from './auth.ts';
import { clientAddressOf } from './trusted.ts';
import type { RouteDoc } from './openapi.ts';
import { parseWith } from './validate.ts';

const AUDIT_STORE = 'auditStore';

/** Middleware (app.ts): makes the audit store reachable from every route, whichever area mounted it. With
 * `ifMissing`, an area's own store is used only when no app above provided one (an area app mounted alone). */
export function provideAudit(store: AuditStore, { ifMissing = false } = {}) {
  return async function auditStore(c: Context, next: () => Promise<void>) {
    if (!ifMissing || !c.get(AUDIT_STORE as never)) c.set(AUDIT_STORE as never, store as never);
    await next();
  };
}

function auditStoreOf(c: Context): AuditStore {
  const s = c.get(AUDIT_STORE as never) as AuditStore | undefined;
  if (!s) throw new AppError(500, 'internal', 'the audit store is not wired (createApp provides it)');
  return s;
}

/** Who asks for `action` on `target`, from where: hand it to the store function that makes the change. */
export function auditIntent(c: Context, action: string, target: AuditTarget): AuditIntent {
  const p = principalOf(c);
  // the same actor names as node events and image history: api:<token name>, ui:<name> for dashboard forms
  const via = c.req.path.startsWith('/ui/') ? 'ui' : 'api';
  return { actor: `${via}:${p.name}`, role: p.role, action, target, requestId: (c.get('requestId' as never) as string | undefined) ?? null, source: clientAddressOf(c) };
}

/**
 * Runs a mutating route's work with an audit intent. The store function writes the row inside its own
 * transaction; if the work changed nothing in the database (a BMC power action, a repeated idempotent request),
 * the row is written afterwards from `change(result)`. A failed request writes no row. Exactly one row per
 * successful request either way.
 */
export async function audited<T>(c: Context, action: string, target: AuditTarget, work: (audit: AuditIntent) => Promise<T>, change?: (result: T) => AuditChange): Promise<T> {
  const intent = auditIntent(c, action, target);
  const result = await work(intent);
  if (!intent.written) await auditStoreOf(c).recordIntent(intent, change?.(result) ?? {});
  return result;
}

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
