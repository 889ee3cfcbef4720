// The audit log of admin actions (server/db/schema/secrets.ts audit_log): who did what to what, when, with the
// state before and after. `audit()` is the one writer: call it with the transaction that makes the change, so
// the change and its record commit together.
import { desc, eq } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { auditLog } from '../db/schema/index.ts';
import type { Clock } from '../clock.ts';

export interface AuditEntry {
  actor: string;
  action: string;
  target?: string | null;
  before?: unknown;
  after?: unknown;
}

export type AuditRow = typeof auditLog.$inferSelect;

/** Records one admin action; `db` may be a transaction (drizzle's PgTransaction is a PgDatabase). */
export async function audit(db: Pick<Db, 'insert'>, entry: AuditEntry, at: Date): Promise<void> {
  await db.insert(auditLog).values({ at, actor: entry.actor, action: entry.action, target: entry.target ?? null, before: entry.before ?? null, after: entry.after ?? null });
}

export function createAuditStore(db: Db, { clock }: { clock: Clock }) {
  return {
    record: (entry: AuditEntry) => audit(db, entry, clock.now()),
    /** newest first */
    async list({ target, limit = 100 }: { target?: string; limit?: number } = {}): Promise<AuditRow[]> {
      const q = db.select().from(auditLog);
      return (target ? q.where(eq(auditLog.target, target)) : q).orderBy(desc(auditLog.at), desc(auditLog.id)).limit(limit);
    },
  };
}
export type AuditStore = ReturnType<typeof createAuditStore>;
