// Operator data hygiene (issue 17 item 5) in the node store: events newest first with a keyset cursor that stays
// stable while events arrive, and facts stored only when they change. PGlite.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';
import { createNodeStore, type NodeStore } from './nodes.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { sampleFacts } from '../../test/fakes/app.ts';

const U = '4157a000-0000-4000-8000-000000000001';
let db: DbHandle;
let nodes: NodeStore;
const clock = new FakeClock(new Date('2026-06-01T00:00:00Z'));

beforeAll(async () => {
  db = await createTestDb();
  nodes = createNodeStore(db.db, { clock });
  await nodes.enroll(U, {}, 'test');
});
afterAll(async () => db?.close());

it('pages events newest first; events inserted between pages neither repeat nor shift a page', async () => {
  for (let i = 0; i < 25; i++) {
    clock.advance(1000);
    await nodes.addEvent(U, { kind: 'phase', reason: `e${i}`, actor: 'test' });
  }
  // two events in the same millisecond: the id breaks the tie
  await nodes.addEvent(U, { kind: 'phase', reason: 'same-ms-a', actor: 'test' });
  await nodes.addEvent(U, { kind: 'phase', reason: 'same-ms-b', actor: 'test' });
  const first = await nodes.eventsPage(U, { limit: 10 });
  expect(first.rows.map((e) => e.reason).slice(0, 3)).toEqual(['same-ms-b', 'same-ms-a', 'e24']);
  // new events arrive while the operator reads page one
  for (let i = 0; i < 5; i++) {
    clock.advance(1000);
    await nodes.addEvent(U, { kind: 'phase', reason: `late${i}`, actor: 'test' });
  }
  const seen = [...first.rows];
  let cursor = first.nextCursor;
  while (cursor) {
    const { decodeCursor } = await import('../contract/cursor.ts');
    const page = await nodes.eventsPage(U, { limit: 10, before: decodeCursor(cursor)! });
    seen.push(...page.rows);
    cursor = page.nextCursor;
  }
  const reasons = seen.map((e) => e.reason);
  expect(new Set(reasons).size).toBe(reasons.length);
  expect(reasons.filter((r) => r?.startsWith('late'))).toEqual([]);
  expect(reasons.at(-1)).toBe('first boot request');
  expect(reasons).toHaveLength(28);
});

it('stores facts only when they change (a held node re-registering every minute writes no rows)', async () => {
  const count = async () => (await db.db.execute(`select count(*)::int as n from facts where node_uuid = '${U}'` as never)) as unknown;
  const n = async () => {
    const r = (await count()) as { rows?: { n: number }[] } | { n: number }[];
    return Number((Array.isArray(r) ? r : r.rows!)[0]!.n);
  };
  const facts = sampleFacts(U, { serial: 'S1', macs: ['52:54:00:00:10:01', '52:54:00:00:10:02'] });
  await nodes.register({ facts: facts as never, failures: [] }, 'test');
  for (let i = 0; i < 5; i++) {
    clock.advance(60_000);
    // same machine, NICs listed in the other order and keys in another order: the same facts
    const again = { ...facts, nics: [...facts.nics].reverse() };
    await nodes.register({ facts: JSON.parse(JSON.stringify(again)) as never, failures: [] }, 'test');
  }
  expect(await n()).toBe(1);
  await nodes.register({ facts: { ...facts, system: { ...facts.system, serial: 'S2' } } as never, failures: [] }, 'test');
  expect(await n()).toBe(2);
  expect((await nodes.latestFacts(U))!.facts).toMatchObject({ system: { serial: 'S2' } });
});
