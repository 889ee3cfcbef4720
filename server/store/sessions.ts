// Dashboard sessions (server/db/schema/sessions.ts). Only hashes are stored; expiry is decided against the clock
// the caller passes, so tests move time by hand.
import { and, desc, eq, gt, lte, notInArray } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { uiSessions } from '../db/schema/index.ts';
import type { Clock } from '../clock.ts';

export type UiSession = typeof uiSessions.$inferSelect;

export function createSessionStore(db: Db, { clock }: { clock: Clock }) {
  return {
    /** Stores a new session, drops expired ones and keeps at most `keepPerCredential` newest sessions per token
     * (a token holder who logs in in a loop cannot grow the table without bound). One transaction. */
    async create(s: { idHash: string; principalName: string; role: string; credentialHash: string; ttlMs: number; keepPerCredential: number }): Promise<UiSession> {
      const now = clock.now();
      return db.transaction(async (tx) => {
        await tx.delete(uiSessions).where(lte(uiSessions.expiresAt, now));
        const [row] = await tx
          .insert(uiSessions)
          .values({ idHash: s.idHash, principalName: s.principalName, role: s.role, credentialHash: s.credentialHash, createdAt: now, expiresAt: new Date(now.getTime() + s.ttlMs) })
          .returning();
        const keep = tx
          .select({ idHash: uiSessions.idHash })
          .from(uiSessions)
          .where(eq(uiSessions.credentialHash, s.credentialHash))
          .orderBy(desc(uiSessions.createdAt), desc(uiSessions.idHash))
          .limit(s.keepPerCredential);
        await tx.delete(uiSessions).where(and(eq(uiSessions.credentialHash, s.credentialHash), notInArray(uiSessions.idHash, keep)));
        return row!;
      });
    },
    /** The live session with this id hash, or null (unknown or expired). */
    async get(idHash: string): Promise<UiSession | null> {
      const [row] = await db
        .select()
        .from(uiSessions)
        .where(and(eq(uiSessions.idHash, idHash), gt(uiSessions.expiresAt, clock.now())))
        .limit(1);
      return row ?? null;
    },
    async delete(idHash: string): Promise<void> {
      await db.delete(uiSessions).where(eq(uiSessions.idHash, idHash));
    },
  };
}
export type SessionStore = ReturnType<typeof createSessionStore>;
