// Queries on the fleet tables (server/db/schema/fleet.ts). ARCHITECTURE.md keeps drizzle in server/store/;
// this file lives here only because that folder belongs to another engineer today — it is self-contained and
// can move to server/store/fleet.ts unchanged.
import { and, desc, eq, gte, inArray, isNull, lte, sql } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { events, fleetControl, fleetEvents, fleetRebuilds, fleetWebhookDeliveries, nodes } from '../db/schema/index.ts';
import type { RebuildRecord } from '../domain/rebuild.ts';
import { writeAudit, type AuditIntent } from './audit.ts';

export type WebhookDelivery = typeof fleetWebhookDeliveries.$inferSelect;
export type FleetControlRow = typeof fleetControl.$inferSelect;
export type FleetEventRow = typeof fleetEvents.$inferSelect;

const CONTROL_ID = 'fleet';

/** The fleet-wide circuit breaker as every replica sees it (issue 12 §3). imgsafe's rollback gate asks `breaker()`. */
export interface BreakerState {
  open: boolean;
  openedAt: Date | null;
  reason: string | null;
  /** what tripped it: scope ('fleet' or a rack value), failures, population, share, windowSeconds */
  data: Record<string, unknown> | null;
  /** failures before this never count toward the breaker again */
  resumedAt: Date | null;
  resumedBy: string | null;
}

/** The control plane's liveness, as the leader last wrote it. */
export interface Liveness {
  lastTickAt: Date | null;
  leaderId: string | null;
  leaderSince: Date | null;
  /** start of the current continuous observation window: no heartbeat verdict counts time before it */
  observedSince: Date | null;
}

const breakerOf = (r: FleetControlRow | undefined): BreakerState => ({
  open: r?.breakerOpen ?? false,
  openedAt: r?.breakerOpenedAt ?? null,
  reason: r?.breakerReason ?? null,
  data: r?.breakerData ?? null,
  resumedAt: r?.breakerResumedAt ?? null,
  resumedBy: r?.breakerResumedBy ?? null,
});
const livenessOf = (r: FleetControlRow | undefined): Liveness => ({ lastTickAt: r?.lastTickAt ?? null, leaderId: r?.leaderId ?? null, leaderSince: r?.leaderSince ?? null, observedSince: r?.observedSince ?? null });

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/**
 * Peer replicas that stopped reporting (paused, cut off from the database, crashed) within the hold: a heartbeat one
 * of them acknowledged, or one the load balancer still queues on it, may never reach the database, so the leader
 * judges no heartbeat while they are silent (server/fleet/controller.ts).
 */
export interface PeerHold {
  silent: { id: string; silentMs: number }[];
  holdMs: number;
  /** write the fleet event (the hold begins, or another replica joins it) */
  announce: boolean;
}

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
    async startRebuild(r: { nodeUuid: string; attempt: number; rack: string | null; failedAt: Date; startedAt: Date; reason: string; step?: string }): Promise<number> {
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
    /** attempt 0 of a repair loop: the ladder's confirm step looked at the BMC (outcome confirmed | confirmed-off) */
    async recordConfirm(r: { nodeUuid: string; failedAt: Date; at: Date; outcome: 'confirmed' | 'confirmed-off'; reason: string }): Promise<number> {
      const [row] = await db
        .insert(fleetRebuilds)
        .values({ nodeUuid: r.nodeUuid, attempt: 0, rack: null, failedAt: r.failedAt, startedAt: r.at, finishedAt: r.at, outcome: r.outcome, reason: r.reason, step: 'confirm' })
        .returning({ id: fleetRebuilds.id });
      return row!.id;
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

    // ---- control-plane liveness (issue 12 §1) ----

    async liveness(): Promise<Liveness> {
      const [row] = await db.select().from(fleetControl).where(eq(fleetControl.id, CONTROL_ID));
      return livenessOf(row);
    },

    /**
     * The leader starts a tick: under the row lock, decide whether the observation window continues. It starts
     * afresh (observedSince = now) when this leader is new (another process led, or this process just started:
     * every process has its own leaderId) or when the last successful tick is older than maxGapMs (the process,
     * its timers or the database were away). Returns the window and why it restarted, if it did.
     */
    async beginTick({ leaderId, now, maxGapMs, hold }: { leaderId: string; now: Date; maxGapMs: number; hold?: PeerHold | null }): Promise<Liveness & { restarted: null | { why: 'first' | 'leader' | 'gap' | 'peer'; gapMs: number | null; previousLeader: string | null } }> {
      return db.transaction(async (tx) => {
        await tx.insert(fleetControl).values({ id: CONTROL_ID }).onConflictDoNothing();
        const [row] = await tx.select().from(fleetControl).where(eq(fleetControl.id, CONTROL_ID)).for('update');
        const gapMs = row?.lastTickAt ? now.getTime() - row.lastTickAt.getTime() : null;
        let why: 'first' | 'leader' | 'gap' | 'peer' | null = null;
        if (!row?.lastTickAt || !row.observedSince) why = 'first';
        else if (row.leaderId !== leaderId) why = 'leader';
        else if (gapMs! > maxGapMs) why = 'gap';
        else if (hold) why = 'peer';
        const observedSince = why ? now : row!.observedSince!;
        const leaderSince = row?.leaderId === leaderId && row.leaderSince ? row.leaderSince : now;
        await tx.update(fleetControl).set({ lastTickAt: now, leaderId, leaderSince, observedSince }).where(eq(fleetControl.id, CONTROL_ID));
        // a peer hold restarts the window at every tick it lasts; its event is written once, when it begins
        if (why && (why !== 'peer' || hold?.announce)) {
          const secs = gapMs === null ? null : Math.round(gapMs / 1000);
          const reason =
            why === 'first'
              ? 'first controller tick on this database: observation starts now'
              : why === 'leader'
                ? `leader changed (${row!.leaderId ?? 'none'} → ${leaderId}; last tick ${secs} s ago): heartbeats are judged again after a grace period`
                : why === 'gap'
                  ? `no controller tick for ${secs} s (bound ${Math.round(maxGapMs / 1000)} s): the control plane was away; heartbeats are judged again after a grace period`
                  : `replica ${hold!.silent.map((p) => `${p.id} (silent ${Math.round(p.silentMs / 1000)} s)`).join(', ')} stopped reporting: heartbeats it took may not be written, so none is judged until it is back or ${Math.round(hold!.holdMs / 1000)} s have passed, then after a grace period`;
          await insertFleetEvent(tx, { at: now, kind: why === 'leader' ? 'leader' : 'gap', reason, actor: leaderId, data: { gapMs, previousLeader: row?.leaderId ?? null, ...(why === 'peer' ? { silentReplicas: hold!.silent.map((p) => p.id) } : {}) } });
        }
        return { lastTickAt: now, leaderId, leaderSince, observedSince, restarted: why ? { why, gapMs, previousLeader: row?.leaderId ?? null } : null };
      });
    },

    /** end of a successful tick: the next tick measures its gap from here */
    async endTick({ leaderId, now }: { leaderId: string; now: Date }): Promise<void> {
      await db.update(fleetControl).set({ lastTickAt: now }).where(and(eq(fleetControl.id, CONTROL_ID), eq(fleetControl.leaderId, leaderId)));
    },

    // ---- the fleet-wide circuit breaker (issue 12 §3) ----

    /** Open or closed, for every replica (GET /api/v1/fleet, the UI banner, the image rollback gate). */
    async breaker(): Promise<BreakerState> {
      const [row] = await db.select().from(fleetControl).where(eq(fleetControl.id, CONTROL_ID));
      return breakerOf(row);
    },

    /**
     * Fleet-made failures of active nodes (distinct nodes) since `since`, with each node's rack label and whether it
     * is still not active, plus the active nodes per rack: the breaker's inputs.
     */
    async breakerInputs({ since, rackLabel, actor }: { since: Date; rackLabel: string; actor: string }) {
      const rack = sql<string | null>`${nodes.labels} ->> ${rackLabel}`;
      const failures = await db
        .selectDistinctOn([events.nodeUuid], { uuid: events.nodeUuid, rack, state: nodes.state })
        .from(events)
        .innerJoin(nodes, eq(nodes.uuid, events.nodeUuid))
        .where(and(eq(events.kind, 'transition'), eq(events.toState, 'failed'), eq(events.fromState, 'active'), eq(events.actor, actor), gte(events.at, since)))
        .orderBy(events.nodeUuid);
      const active = await db
        .select({ rack, n: sql<number>`count(*)::int` })
        .from(nodes)
        .where(eq(nodes.state, 'active'))
        // by position: the label key is a bound parameter, and $1 in the select list is not "$3 in group by"
        .groupBy(sql`1`);
      return { failures, active: active.map((a) => ({ rack: a.rack, n: Number(a.n) })) };
    },

    /** Opens the breaker unless it is open already (one replica, one tick wins); true when this call opened it. */
    async openBreaker({ at, reason, data, actor }: { at: Date; reason: string; data: Record<string, unknown>; actor: string }): Promise<boolean> {
      return db.transaction(async (tx) => {
        await tx.insert(fleetControl).values({ id: CONTROL_ID }).onConflictDoNothing();
        const opened = await tx
          .update(fleetControl)
          .set({ breakerOpen: true, breakerOpenedAt: at, breakerReason: reason, breakerData: data })
          .where(and(eq(fleetControl.id, CONTROL_ID), eq(fleetControl.breakerOpen, false)))
          .returning({ id: fleetControl.id });
        if (!opened.length) return false;
        await insertFleetEvent(tx, { at, kind: 'breaker-open', reason, actor, data });
        return true;
      });
    },

    /** An operator resumes automatic repair; null when the breaker was not open. Audited in fleet_events. */
    async resumeBreaker({ at, actor, reason, audit }: { at: Date; actor: string; reason: string; audit?: AuditIntent }): Promise<BreakerState | null> {
      return db.transaction(async (tx) => {
        const [row] = await tx.select().from(fleetControl).where(eq(fleetControl.id, CONTROL_ID)).for('update');
        if (!row?.breakerOpen) return null;
        const [updated] = await tx
          .update(fleetControl)
          .set({ breakerOpen: false, breakerResumedAt: at, breakerResumedBy: actor })
          .where(eq(fleetControl.id, CONTROL_ID))
          .returning();
        await insertFleetEvent(tx, { at, kind: 'breaker-resume', reason, actor, data: { openedAt: row.breakerOpenedAt?.toISOString() ?? null, openReason: row.breakerReason } });
        await writeAudit(tx, audit, { before: breakerOf(row), after: { ...breakerOf(updated), reason } }, at);
        return breakerOf(updated);
      });
    },

    /**
     * Breaker episodes overlapping [since, now] for the image gates (server/images/pipeline.ts FleetBreaker.spans):
     * each from the start of the window whose failures tripped it to the resume (null while open).
     */
    async breakerSpans(since: Date): Promise<{ from: Date; to: Date | null }[]> {
      const rows = await db
        .select()
        .from(fleetEvents)
        .where(inArray(fleetEvents.kind, ['breaker-open', 'breaker-resume']))
        .orderBy(fleetEvents.id);
      const spans: { from: Date; to: Date | null }[] = [];
      for (const r of rows) {
        if (r.kind === 'breaker-open') {
          const windowSeconds = typeof r.data?.windowSeconds === 'number' ? r.data.windowSeconds : 0;
          spans.push({ from: new Date(r.at.getTime() - windowSeconds * 1000), to: null });
        } else if (spans.length && spans.at(-1)!.to === null) spans.at(-1)!.to = r.at;
      }
      return spans.filter((x) => x.to === null || x.to >= since);
    },

    async fleetEvents({ limit = 50 }: { limit?: number } = {}): Promise<FleetEventRow[]> {
      return db.select().from(fleetEvents).orderBy(desc(fleetEvents.id)).limit(limit);
    },

    // ---- what the heartbeat handler asks (issue 12 §2) ----

    /** The transition that made the node failed (the latest into `failed`): its cause and actor. */
    async lastFailure(nodeUuid: string): Promise<{ at: Date; actor: string; cause: string | null; reason: string | null } | null> {
      const [row] = await db
        .select({ at: events.at, actor: events.actor, data: events.data, reason: events.reason })
        .from(events)
        .where(and(eq(events.nodeUuid, nodeUuid), eq(events.kind, 'transition'), eq(events.toState, 'failed')))
        .orderBy(desc(events.id))
        .limit(1);
      if (!row) return null;
      const cause = row.data && typeof row.data.cause === 'string' ? row.data.cause : null;
      return { at: row.at, actor: row.actor, cause, reason: row.reason };
    },

    /** Whether the node has an event with data.note = note at or after `since` (so a note is written once). */
    async hasNote(nodeUuid: string, note: string, since: Date): Promise<boolean> {
      const [row] = await db
        .select({ id: events.id })
        .from(events)
        .where(and(eq(events.nodeUuid, nodeUuid), gte(events.at, since), sql`${events.data} ->> 'note' = ${note}`))
        .limit(1);
      return !!row;
    },
  };
}

async function insertFleetEvent(tx: Tx, e: { at: Date; kind: string; reason: string; actor: string; data?: Record<string, unknown> | null }): Promise<void> {
  await tx.insert(fleetEvents).values({ at: e.at, kind: e.kind, reason: e.reason, actor: e.actor, data: e.data ?? null });
}

export type FleetStore = ReturnType<typeof createFleetStore>;
