// The cabling plan (issue 16 item 5): load (replace the whole plan in one transaction, audited), list, the plans
// a node may fall under, and the nodes with the LLDP part of their latest facts. The only cabling code that
// touches drizzle; the rules are in server/domain/cabling.ts.
import { and, asc, desc, eq, inArray, ne, or, sql } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { cablingPlans, facts, nodes } from '../db/schema/index.ts';
import { cablingKey, type CablingPolicy, type StoredCablingPlan } from '../domain/cabling.ts';
import type { CablingPlanEntry } from '../domain/cabling-document.ts';
import { systemClock, type Clock } from '../clock.ts';
import { writeAudit, type AuditIntent } from './audit.ts';
import { latestFactsByNode } from './latest-facts.ts';

export interface CablingPlanRecord extends StoredCablingPlan {
  source: string | null;
  loadedAt: Date;
  loadedBy: string;
}

/** A node as the cabling check needs it: identity, labels and the system, NIC and LLDP part of its latest facts. */
export interface CablingNode {
  uuid: string;
  hostname: string | null;
  state: string;
  labels: Record<string, string>;
  facts: Record<string, unknown> | null;
  factsAt: Date | null;
}

type PlanRow = typeof cablingPlans.$inferSelect;
const toRecord = (r: PlanRow): CablingPlanRecord => ({ scope: r.scope as 'node' | 'rack', key: r.key, policy: r.policy as CablingPolicy, links: r.links, source: r.source, loadedAt: r.loadedAt, loadedBy: r.loadedBy });
/** what the check reads of a facts document */
const SLIM = sql<Record<string, unknown>>`jsonb_strip_nulls(jsonb_build_object('system', ${facts.facts}->'system', 'nics', ${facts.facts}->'nics', 'lldp', ${facts.facts}->'lldp'))`;
/** rows per INSERT: 8 parameters each stays far below PostgreSQL's 65,535 */
const CHUNK = 1000;

export function createCablingStore(db: Db, { clock = systemClock }: { clock?: Clock } = {}) {
  return {
    /** Replaces the whole plan with `entries` (one transaction; the audit row names how many plans before and after). */
    async replace(entries: readonly CablingPlanEntry[], { actor, source = null, audit }: { actor: string; source?: string | null; audit?: AuditIntent }): Promise<{ plans: number; links: number; replaced: number; loadedAt: Date }> {
      const now = clock.now();
      return db.transaction(async (tx) => {
        const before = await tx.select({ scope: cablingPlans.scope, n: sql<number>`count(*)::int` }).from(cablingPlans).groupBy(cablingPlans.scope);
        await tx.delete(cablingPlans);
        const rows = entries.map((e) => ({ scope: e.scope, key: e.key, keyNorm: cablingKey(e.key), policy: e.policy, links: e.links, source, loadedAt: now, loadedBy: actor }));
        for (let i = 0; i < rows.length; i += CHUNK) await tx.insert(cablingPlans).values(rows.slice(i, i + CHUNK));
        const count = (scope: string) => entries.filter((e) => e.scope === scope).length;
        const links = entries.reduce((n, e) => n + e.links.length, 0);
        await writeAudit(tx, audit, { before: Object.fromEntries(before.map((b) => [b.scope, Number(b.n)])), after: { node: count('node'), rack: count('rack'), links, source } }, now);
        return { plans: rows.length, links, replaced: before.reduce((n, b) => n + Number(b.n), 0), loadedAt: now };
      });
    },

    async list(): Promise<CablingPlanRecord[]> {
      return (await db.select().from(cablingPlans).orderBy(asc(cablingPlans.scope), asc(cablingPlans.keyNorm))).map(toRecord);
    },

    /** The plans keyed by any of these (normalised, server/domain/cabling.ts planKeys): one statement. */
    async plansFor(keys: { node: string[]; rack: string | null }): Promise<StoredCablingPlan[]> {
      const conds = [];
      if (keys.node.length) conds.push(and(eq(cablingPlans.scope, 'node'), inArray(cablingPlans.keyNorm, keys.node)));
      if (keys.rack) conds.push(and(eq(cablingPlans.scope, 'rack'), eq(cablingPlans.keyNorm, keys.rack)));
      if (!conds.length) return [];
      return (await db.select().from(cablingPlans).where(or(...conds))).map(toRecord);
    },

    /** The system, NIC and LLDP part of one node's latest facts (null before its first registration): one statement. */
    async latestFacts(uuid: string): Promise<Record<string, unknown> | null> {
      const [row] = await db
        .select({ slim: SLIM })
        .from(facts)
        .where(eq(facts.nodeUuid, uuid))
        .orderBy(desc(facts.collectedAt), desc(facts.id))
        .limit(1);
      return row?.slim ?? null;
    },

    /** Nodes (all but retired, or one) with the part of their latest facts the check reads. */
    async nodes({ uuid }: { uuid?: string } = {}): Promise<CablingNode[]> {
      const nodeRows = await db
        .select({ uuid: nodes.uuid, hostname: nodes.hostname, state: nodes.state, labels: nodes.labels })
        .from(nodes)
        .where(uuid ? eq(nodes.uuid, uuid) : ne(nodes.state, 'retired'))
        .orderBy(asc(nodes.uuid));
      if (nodeRows.length === 0) return [];
      const latest = await latestFactsByNode(db, SLIM, { uuid });
      return nodeRows.map((n) => ({ ...n, labels: n.labels ?? {}, facts: latest.get(n.uuid)?.facts ?? null, factsAt: latest.get(n.uuid)?.collectedAt ?? null }));
    },
  };
}

export type CablingStore = ReturnType<typeof createCablingStore>;
