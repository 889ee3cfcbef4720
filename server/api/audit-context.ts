// The audit context of a request (issue 17 item 6): the audit store reachable from every route, and the helpers
// a mutating route uses to hand the store function an intent (who, role, request id, source) and to make sure
// exactly one audit row is written per successful request. The GET route is in server/api/audit.ts.
import type { Context } from 'hono';
import type { AuditChange, AuditIntent, AuditStore, AuditTarget } from '../store/audit.ts';
import { AppError } from '../errors.ts';
import { principalOf } from './auth.ts';
import { clientAddressOf } from './trusted.ts';

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
