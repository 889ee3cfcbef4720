// The replicas table (server/db/schema/fleet.ts): presence of every control-plane replica, for GET /api/v1/cluster.
import { desc, eq, lt } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { replicas } from '../db/schema/index.ts';
import { createFenceStore, type EpochState } from './fence.ts';

export type ReplicaRow = typeof replicas.$inferSelect;
export type ReplicaPresence = Omit<ReplicaRow, 'lastSeen' | 'leader'>;

export function createReplicaStore(db: Db) {
  return {
    /** this replica is alive (and leads or not) at `now` */
    async upsert(r: ReplicaPresence, { now, leader }: { now: Date; leader: boolean }): Promise<void> {
      const row = { ...r, lastSeen: now, leader };
      await db.insert(replicas).values(row).onConflictDoUpdate({ target: replicas.id, set: { hostname: r.hostname, url: r.url, version: r.version, schemaVersion: r.schemaVersion, lastSeen: now, leader } });
    },
    async list(): Promise<ReplicaRow[]> {
      return db.select().from(replicas).orderBy(desc(replicas.lastSeen), replicas.id);
    },
    /** a replica that stops cleanly leaves the table (a peer that vanished without this is a silent one) */
    async remove(id: string): Promise<void> {
      await db.delete(replicas).where(eq(replicas.id, id));
    },
    /** forget replicas not seen since `before` */
    async prune(before: Date): Promise<number> {
      return (await db.delete(replicas).where(lt(replicas.lastSeen, before)).returning({ id: replicas.id })).length;
    },
    /** the current leader epoch and its holder */
    epoch: (): Promise<EpochState> => createFenceStore(db).current(),
  };
}

export type ReplicaStore = ReturnType<typeof createReplicaStore>;
