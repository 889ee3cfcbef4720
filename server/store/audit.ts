// The audit log of admin actions (server/db/schema/secrets.ts audit_log): who did what to what, when, with the
// state before and after, and from where (role, request id, source address). `audit()` is the one writer: call
// it with the transaction that makes the change, so the change and its record commit together.
//
// Routes (server/api/audit.ts `audited`) build an AuditIntent — who asks for which action on which target,
// from where — and hand it to the store function that makes the change; that function calls
// `writeAudit(tx, intent, {before, after}, at)` in its transaction. Changes made outside the database (a BMC
// power action, a blob upload) are recorded with their node event or by the route after they succeed. Exactly
// one row per successful request either way.
import { and, desc, eq, gte, lt, or, sql, type SQL } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { auditLog } from '../db/schema/index.ts';
import { pageOf, type Cursor } from '../contract/cursor.ts';
import type { Clock } from '../clock.ts';

export interface AuditEntry {
  actor: string;
  action: string;
  target?: string | null;
  before?: unknown;
  after?: unknown;
  /** the principal's role when the change was asked for */
  role?: string | null;
  requestId?: string | null;
  /** the client address (behind a trusted proxy: its X-Forwarded-For) */
  source?: string | null;
}

export type AuditRow = typeof auditLog.$inferSelect;

/** JSON-safe copy (Dates to ISO strings, undefined dropped) for the jsonb columns. */
const jsonValue = (v: unknown): unknown => (v === undefined || v === null ? null : JSON.parse(JSON.stringify(v)));

/** Records one admin action; `db` may be a transaction (drizzle's PgTransaction is a PgDatabase). */
export async function audit(db: Pick<Db, 'insert'>, entry: AuditEntry, at: Date): Promise<void> {
  await db.insert(auditLog).values({
    at,
    actor: entry.actor,
    action: entry.action,
    target: entry.target ?? null,
    before: jsonValue(entry.before),
    after: jsonValue(entry.after),
    role: entry.role ?? null,
    requestId: entry.requestId ?? null,
    source: entry.source ?? null,
  });
}

export interface AuditTarget {
  kind: string;
  id: string;
}

/** Who asks for which change, from where; the store adds before/after. `written` is set once the row is in. */
export interface AuditIntent {
  /** "api:<token name>" or "ui:<name>" */
  actor: string;
  role: string;
  action: string;
  target: AuditTarget;
  requestId: string | null;
  source: string | null;
  written?: boolean;
}

export interface AuditChange {
  before?: unknown;
  after?: unknown;
  /** a more precise action than the route knew (e.g. image.push.unchanged) */
  action?: string;
  /** the target once the change named it (a new token's id, a new data key) */
  target?: AuditTarget;
}

/**
 * Writes the intent's row in `tx` (the change's transaction) and marks the intent written. Without an intent (a
 * system actor, a test calling the store directly) it does nothing; a second call for the same intent is a
 * no-op: one request, one row.
 */
export async function writeAudit(tx: Pick<Db, 'insert'>, intent: AuditIntent | undefined, change: AuditChange, at: Date): Promise<void> {
  if (!intent || intent.written) return;
  const target = change.target ?? intent.target;
  await audit(tx, { actor: intent.actor, role: intent.role, action: change.action ?? intent.action, target: `${target.kind}:${target.id}`, before: change.before, after: change.after, requestId: intent.requestId, source: intent.source }, at);
  intent.written = true;
}

/**
 * For a store function that an admin route calls with an intent and that other callers (the CLI against the
 * database, tests, system start-up) call without one: the intent's row when there is one, else a row in the
 * caller's name with no request context. One row either way.
 */
export async function writeAuditAs(tx: Pick<Db, 'insert'>, intent: AuditIntent | undefined, fallback: { actor: string; action: string; target: AuditTarget }, change: AuditChange, at: Date): Promise<void> {
  if (intent) return writeAudit(tx, intent, change, at);
  const target = change.target ?? fallback.target;
  await audit(tx, { actor: fallback.actor, action: change.action ?? fallback.action, target: `${target.kind}:${target.id}`, before: change.before, after: change.after }, at);
}

export interface AuditFilter {
  /** "api:alice", or a bare name for any channel (api:alice, ui:alice) */
  actor?: string;
  /** exact action, or a prefix ending in "*" (node.* matches node.labels) */
  action?: string;
  /** kind:id exactly, or kind:* for every target of a kind */
  target?: string;
  since?: Date;
  before?: Cursor;
  limit?: number;
}

export function createAuditStore(db: Db, { clock }: { clock: Clock }) {
  const store = {
    record: (entry: AuditEntry) => audit(db, entry, clock.now()),
    /** A change made outside the database (a blob upload): its row in a transaction of its own. */
    recordIntent: (intent: AuditIntent, change: AuditChange = {}) => writeAudit(db, intent, change, clock.now()),
    /** newest first */
    async list({ target, limit = 100 }: { target?: string; limit?: number } = {}): Promise<AuditRow[]> {
      return (await store.page({ target, limit })).rows;
    },
    /** Newest first, keyset-paginated on (at, id). */
    async page(f: AuditFilter = {}): Promise<{ rows: AuditRow[]; nextCursor: string | null }> {
      const limit = f.limit ?? 100;
      const where: SQL[] = [];
      const prefix = (s: string) => (s.endsWith('*') ? s.slice(0, -1) : null);
      if (f.actor) where.push(f.actor.includes(':') ? eq(auditLog.actor, f.actor) : or(eq(auditLog.actor, f.actor), sql`split_part(${auditLog.actor}, ':', 2) = ${f.actor}`)!);
      if (f.action) where.push(prefix(f.action) !== null ? sql`starts_with(${auditLog.action}, ${prefix(f.action)})` : eq(auditLog.action, f.action));
      if (f.target) where.push(prefix(f.target) !== null ? sql`starts_with(${auditLog.target}, ${prefix(f.target)})` : eq(auditLog.target, f.target));
      if (f.since) where.push(gte(auditLog.at, f.since));
      if (f.before) where.push(or(lt(auditLog.at, f.before.at), and(eq(auditLog.at, f.before.at), lt(auditLog.id, f.before.id)))!);
      const rows = await db
        .select()
        .from(auditLog)
        .where(where.length ? and(...where) : undefined)
        .orderBy(desc(auditLog.at), desc(auditLog.id))
        .limit(limit + 1);
      return pageOf(rows, limit);
    },
  };
  return store;
}
export type AuditStore = ReturnType<typeof createAuditStore>;
