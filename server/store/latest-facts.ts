// Each node's latest facts, as the fleet-wide checks read them (the firmware report, the cabling check). One query
// for both, so "latest" means the same everywhere: the newest collected_at, then the highest id (two registrations
// in the same millisecond), the order nodes.latestFacts and the retention job use too.
import { desc, eq, type SQL } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { facts } from '../db/schema/index.ts';

export interface LatestFacts<T> {
  facts: T;
  collectedAt: Date;
}

/**
 * The part `pick` selects of every node's latest facts document (or of one node's, with `uuid`), keyed by node:
 * one statement (DISTINCT ON). `pick` is a jsonb expression over facts.facts — a check reads a few sections, and a
 * fleet of thousands would otherwise pull megabytes of disk and LLDP facts it never looks at.
 */
export async function latestFactsByNode<T>(db: Db, pick: SQL<T>, { uuid }: { uuid?: string } = {}): Promise<Map<string, LatestFacts<T>>> {
  const rows = await db
    .selectDistinctOn([facts.nodeUuid], { nodeUuid: facts.nodeUuid, collectedAt: facts.collectedAt, picked: pick })
    .from(facts)
    .where(uuid ? eq(facts.nodeUuid, uuid) : undefined)
    .orderBy(facts.nodeUuid, desc(facts.collectedAt), desc(facts.id));
  return new Map(rows.map((r) => [r.nodeUuid, { facts: r.picked, collectedAt: r.collectedAt }]));
}
