// The fleet page's keyset pagination (NodeStore.listPage) over 10,000 nodes on PGlite: every node exactly once
// forwards and backwards, filters by state and label on the server, and a page deep in the fleet read through
// the primary key's index (no sort of the whole table), where OFFSET reads every row in front of it.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import { uuidOf } from '../../test/fakes/fleet.ts';
import type { DbHandle } from '../db/index.ts';
import { nodes } from '../db/schema/index.ts';
import { createNodeStore, type NodeStore } from './nodes.ts';
import { createTestApp, TOKENS } from '../../test/fakes/app.ts';

const N = 10_000;
const STATES = ['active', 'active', 'active', 'ready', 'failed', 'maintenance'] as const;
let db: DbHandle;
let store: NodeStore;

beforeAll(async () => {
  db = await createTestDb();
  store = createNodeStore(db.db);
  // written in bulk (the lifecycle is not what this test is about): state by i, rack label by i
  for (let from = 0; from < N; from += 1000) {
    await db.db.insert(nodes).values(Array.from({ length: 1000 }, (_, k) => from + k).map((i) => ({ uuid: uuidOf(i), state: STATES[i % STATES.length]!, labels: { rack: `r${i % 20}`, role: i % 2 ? 'hv' : 'storage' } })));
  }
  await db.db.execute(sql`analyze nodes`);
});
afterAll(async () => {
  await db?.close();
});

it('walks 10,000 nodes in pages of 100, forwards and back, each node once and in order', async () => {
  const seen: string[] = [];
  let after: string | undefined;
  let pages = 0;
  const t0 = performance.now();
  for (;;) {
    const p = await store.listPage({}, { after, limit: 100 });
    seen.push(...p.nodes.map((n) => n.uuid));
    pages++;
    expect(p.prev).toBe(after === undefined ? null : p.nodes[0]!.uuid);
    if (!p.next) break;
    after = p.next;
  }
  const forwardMs = performance.now() - t0;
  expect(pages).toBe(100);
  expect(seen).toHaveLength(N);
  expect(new Set(seen).size).toBe(N);
  expect([...seen].sort()).toEqual(seen);

  // back from the last page: the same pages in reverse
  const back: string[] = [];
  let before: string | undefined = seen[N - 100];
  back.unshift(...seen.slice(N - 100));
  while (before) {
    const p = await store.listPage({}, { before, limit: 100 });
    back.unshift(...p.nodes.map((n) => n.uuid));
    before = p.prev ?? undefined;
    if (p.prev === null) expect(p.nodes[0]!.uuid).toBe(seen[0]);
  }
  expect(back).toEqual(seen);
  console.info(`[nodes-page] ${N} nodes: 100 keyset pages of 100 in ${forwardMs.toFixed(0)} ms (${(forwardMs / 100).toFixed(1)} ms a page)`);
});

it('filters by state and label on the server, with a count of all matches', async () => {
  const filter = { state: ['failed' as const], labels: { rack: 'r4' } };
  const expected = Array.from({ length: N }, (_, i) => i).filter((i) => STATES[i % STATES.length] === 'failed' && i % 20 === 4).map((i) => uuidOf(i));
  expect(await store.count(filter)).toBe(expected.length);
  const got: string[] = [];
  let after: string | undefined;
  do {
    const p = await store.listPage(filter, { after, limit: 7 });
    expect(p.nodes.every((n) => n.state === 'failed' && n.labels.rack === 'r4')).toBe(true);
    got.push(...p.nodes.map((n) => n.uuid));
    after = p.next ?? undefined;
  } while (after);
  expect(got).toEqual(expected);
  const activeOrReady = Array.from({ length: N }, (_, i) => STATES[i % STATES.length]).filter((s) => s === 'active' || s === 'ready').length;
  expect(await store.count({ state: ['active', 'ready'] })).toBe(activeOrReady);
  expect(await store.count({})).toBe(N);
});

it('reads a page deep in the fleet through the primary key, where OFFSET scans everything in front of it', async () => {
  const deep = uuidOf(9_800);
  const keyset = await explain(sql`select * from nodes where uuid > ${deep} order by uuid limit 101`);
  expect(keyset).toMatch(/Index Scan using nodes_pkey/);
  expect(keyset).not.toMatch(/\bSort\b/);
  // the same page by OFFSET: the index is walked from the start and 9,800 rows are thrown away
  const offset = await explain(sql`select * from nodes order by uuid limit 100 offset 9800`, true);
  const rowsRead = Number(/Index Scan using nodes_pkey on nodes .*?actual time=[\d.]+\.\.[\d.]+ rows=(\d+)/.exec(offset)?.[1]);
  expect(rowsRead).toBe(9_900);
  const timeIt = async (f: () => Promise<unknown>) => {
    const t = performance.now();
    for (let i = 0; i < 20; i++) await f();
    return (performance.now() - t) / 20;
  };
  const keysetMs = await timeIt(() => store.listPage({}, { after: deep, limit: 100 }));
  const offsetMs = await timeIt(() => store.list({ limit: 100, offset: 9_800 }));
  console.info(`[nodes-page] page at node 9,800: keyset ${keysetMs.toFixed(1)} ms, offset ${offsetMs.toFixed(1)} ms (mean of 20)`);
});

it('serves the fleet page deep in 10,000 nodes, filtered or not, over the app', async () => {
  const { app } = createTestApp(db);
  const page = async (q: string) => {
    const t = performance.now();
    const res = await app.request(`/ui?${q}`, { headers: { authorization: `Bearer ${TOKENS.viewer}` } });
    const html = await res.text();
    expect(res.status).toBe(200);
    return { ms: performance.now() - t, rows: [...html.matchAll(/<tr data-uuid="/g)].length, html };
  };
  await page(''); // warm-up
  const first = await page('');
  const deep = await page(`after=${uuidOf(9_899)}`);
  const filtered = await page(`state=failed&label=rack%3Dr4&after=${uuidOf(5_000)}`);
  expect(first.rows).toBe(100);
  expect(deep.rows).toBe(100);
  expect(deep.html).not.toContain('id="next"'); // the last page
  expect(filtered.html).toContain(`${Math.floor(N / 60) + (N % 60 > 4 ? 1 : 0)} matching`);
  console.info(`[nodes-page] GET /ui over ${N} nodes: first page ${first.ms.toFixed(0)} ms, last page ${deep.ms.toFixed(0)} ms, filtered ${filtered.ms.toFixed(0)} ms`);
});

async function explain(q: ReturnType<typeof sql>, analyze = false): Promise<string> {
  const res = (await db.db.execute(sql`explain ${analyze ? sql`(analyze, costs off)` : sql`(costs off)`} ${q}`)) as unknown as { rows: Record<string, string>[] };
  return res.rows.map((r) => Object.values(r)[0]).join('\n');
}
