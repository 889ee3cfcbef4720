// latestFactsByNode (store/latest-facts.ts) on a migrated PGlite: per node the newest collected_at wins, the higher id
// breaks a tie of the same instant, the projection is what comes back, and `uuid` narrows it to one node.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from 'drizzle-orm';
import { createTestDb } from '../../test/fakes/db.ts';
import type { DbHandle } from '../db/index.ts';
import { facts, nodes } from '../db/schema/index.ts';
import { latestFactsByNode } from './latest-facts.ts';

const A = '00000000-0000-4000-8000-00000000fa01';
const B = '00000000-0000-4000-8000-00000000fa02';
const C = '00000000-0000-4000-8000-00000000fa03';
const at = (s: string) => new Date(`2026-12-01T${s}Z`);
let db: DbHandle;

beforeAll(async () => {
  db = await createTestDb();
  await db.db.insert(nodes).values([A, B, C].map((uuid) => ({ uuid, state: 'ready' })));
  // inserted out of order: ids do not follow collected_at
  await db.db.insert(facts).values([
    { nodeUuid: A, collectedAt: at('10:00:00'), facts: { n: 'a-new', disks: ['big'] } },
    { nodeUuid: A, collectedAt: at('09:00:00'), facts: { n: 'a-old' } },
    { nodeUuid: B, collectedAt: at('08:00:00'), facts: { n: 'b-first' } },
    { nodeUuid: B, collectedAt: at('08:00:00'), facts: { n: 'b-second' } },
  ]);
  // C has no facts yet
});
afterAll(async () => {
  await db?.close();
});

const onlyN = sql<{ n: string }>`jsonb_build_object('n', ${facts.facts}->'n')`;

it('every node with facts: the newest row, the higher id on a tie, only the projected part', async () => {
  const got = await latestFactsByNode(db.db, onlyN);
  expect([...got.keys()].sort()).toEqual([A, B]);
  expect(got.get(A)).toEqual({ facts: { n: 'a-new' }, collectedAt: at('10:00:00') });
  expect(got.get(B)).toEqual({ facts: { n: 'b-second' }, collectedAt: at('08:00:00') });
});

it('one node', async () => {
  expect([...(await latestFactsByNode(db.db, onlyN, { uuid: A })).entries()]).toEqual([[A, { facts: { n: 'a-new' }, collectedAt: at('10:00:00') }]]);
  expect((await latestFactsByNode(db.db, onlyN, { uuid: C })).size).toBe(0);
});
