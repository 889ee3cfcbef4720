// In-band BMC setup requests in the database (server/db/schema/bmc-setups.ts). Read-once and single-verification
// are conditional UPDATEs (state = 'pending' → 'delivered', 'delivered' → 'verifying'): of two replicas (or two
// concurrent requests) exactly one gets the row back, the other gets nothing.
import { and, eq, inArray, isNotNull, lt } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { bmcSetups } from '../db/schema/index.ts';
import type { Clock } from '../clock.ts';
import type { SecretBox } from '../secrets.ts';

export type SetupState = 'pending' | 'delivered' | 'verifying' | 'verified' | 'failed' | 'expired';
const OPEN: SetupState[] = ['pending', 'delivered', 'verifying'];

type Row = typeof bmcSetups.$inferSelect;

/** A setup without its secrets. */
export interface SetupRecord {
  id: string;
  uuid: string;
  state: SetupState;
  redacted: string;
  expect: { address: string; port: number; username: string };
  requestedBy: string;
  requestedAt: Date;
  deliveredAt: Date | null;
  deliveredTo: { attemptId: number; address: string } | null;
  finishedAt: Date | null;
  message: string | null;
  /** the password is still held (until the setup ends) */
  holdsSecret: boolean;
}

const record = (r: Row): SetupRecord => ({
  id: r.id,
  uuid: r.nodeUuid,
  state: r.state as SetupState,
  redacted: r.summary.redacted,
  expect: r.summary.expect,
  requestedBy: r.requestedBy,
  requestedAt: r.requestedAt,
  deliveredAt: r.deliveredAt,
  deliveredTo: r.deliveredAttemptId !== null && r.deliveredAddress !== null ? { attemptId: r.deliveredAttemptId, address: r.deliveredAddress } : null,
  finishedAt: r.finishedAt,
  message: r.message,
  holdsSecret: r.passwordSealed !== null,
});

export function createBmcSetupStore(db: Db, { secrets, clock }: { secrets: SecretBox; clock: Clock }) {
  return {
    /** Stores a new request for the node, replacing its previous one; returns the replaced one if it was open. */
    async create<P extends { redacted: string; expect: SetupRecord['expect'] }>(s: { id: string; uuid: string; plan: P; password: string; requestedBy: string }): Promise<{ record: SetupRecord; replaced: SetupRecord | null }> {
      const planSealed = await secrets.encrypt(JSON.stringify(s.plan));
      const passwordSealed = await secrets.encrypt(s.password);
      const now = clock.now();
      const values = { id: s.id, state: 'pending', planSealed, passwordSealed, summary: { redacted: s.plan.redacted, expect: s.plan.expect }, requestedBy: s.requestedBy, requestedAt: now, deliveredAt: null, deliveredAttemptId: null, deliveredAddress: null, finishedAt: null, message: null };
      return db.transaction(async (tx) => {
        const [prev] = await tx.select().from(bmcSetups).where(eq(bmcSetups.nodeUuid, s.uuid)).for('update');
        const [row] = await tx.insert(bmcSetups).values({ nodeUuid: s.uuid, ...values }).onConflictDoUpdate({ target: bmcSetups.nodeUuid, set: values }).returning();
        return { record: record(row!), replaced: prev && OPEN.includes(prev.state as SetupState) ? record(prev) : null };
      });
    },

    /** The node's latest setup. An open one older than `ttlMs` becomes `expired` (its secrets dropped) first;
     * `expiredNow` says this call did it (the caller writes the event once). */
    async current(uuid: string, ttlMs: number): Promise<{ record: SetupRecord; expiredNow: boolean } | null> {
      const now = clock.now();
      const message = `not completed within ${Math.round(ttlMs / 60_000)} min`;
      const expired = await db
        .update(bmcSetups)
        .set({ state: 'expired', planSealed: null, passwordSealed: null, finishedAt: now, message })
        .where(and(eq(bmcSetups.nodeUuid, uuid), inArray(bmcSetups.state, OPEN), lt(bmcSetups.requestedAt, new Date(now.getTime() - ttlMs))))
        .returning();
      if (expired[0]) return { record: record(expired[0]), expiredNow: true };
      const [row] = await db.select().from(bmcSetups).where(eq(bmcSetups.nodeUuid, uuid));
      return row ? { record: record(row), expiredNow: false } : null;
    },

    /** Hands the pending plan out once: the first caller (on any replica) gets it, every other gets null. */
    async claim<P>(id: string, to: { attemptId: number; address: string }): Promise<{ record: SetupRecord; plan: P } | null> {
      const [row] = await db
        .update(bmcSetups)
        .set({ state: 'delivered', deliveredAt: clock.now(), deliveredAttemptId: to.attemptId, deliveredAddress: to.address })
        .where(and(eq(bmcSetups.id, id), eq(bmcSetups.state, 'pending'), isNotNull(bmcSetups.planSealed)))
        .returning();
      if (!row) return null;
      return { record: record(row), plan: JSON.parse(await secrets.decrypt(row.planSealed!)) as P };
    },

    /** Takes a delivered setup for verification, once, for the attempt and address it was delivered to; returns
     * the password, or null when another request took it (or it is not delivered to that attempt). */
    async startVerify(id: string, from: { attemptId: number; address: string }): Promise<string | null> {
      const [row] = await db
        .update(bmcSetups)
        .set({ state: 'verifying' })
        .where(and(eq(bmcSetups.id, id), eq(bmcSetups.state, 'delivered'), eq(bmcSetups.deliveredAttemptId, from.attemptId), eq(bmcSetups.deliveredAddress, from.address), isNotNull(bmcSetups.passwordSealed)))
        .returning();
      return row ? secrets.decrypt(row.passwordSealed!) : null;
    },

    /** Ends a setup; its plan and password are dropped. */
    async finish(id: string, state: 'verified' | 'failed', message: string): Promise<SetupRecord | null> {
      const [row] = await db.update(bmcSetups).set({ state, planSealed: null, passwordSealed: null, finishedAt: clock.now(), message }).where(eq(bmcSetups.id, id)).returning();
      return row ? record(row) : null;
    },
  };
}
export type BmcSetupStore = ReturnType<typeof createBmcSetupStore>;
