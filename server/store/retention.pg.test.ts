// Retention on a real Debian PostgreSQL (postgres.js binds parameters — the LIMIT, the cutoffs — and returns rows
// differently from PGlite): the same fixture prunes the same rows, in statements of at most batchSize rows.
import { count, sql } from 'drizzle-orm';
import { afterAll, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../db/index.ts';
import { events, facts } from '../db/schema/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { RETENTION_FIXTURE, seedRetention } from '../../test/fakes/retention.ts';
import { FakeClock } from '../clock.ts';
import { RetentionConfig } from '../config.ts';
import { createRetention } from '../fleet/retention.ts';
import { createFenceStore } from './fence.ts';
import { createNodeStore } from './nodes.ts';

let pg: PgCluster | undefined;
let h: DbHandle | undefined;
afterAll(async () => {
  await h?.close();
  pg?.stop();
});

it('prunes the fixture in bounded batches on PostgreSQL, keeping each node latest facts and transition', async () => {
  pg = await startPostgres();
  h = await createDb({ url: await pg.createDatabase('retention'), maxConnections: 2 });
  const db = h.db;
  const clock = new FakeClock(RETENTION_FIXTURE.NOW);
  await seedRetention(db);
  await db.execute(sql.raw(`create table retention_stmt_log (tbl text, n int)`));
  await db.execute(sql.raw(`create function retention_stmt_count() returns trigger language plpgsql as $$ begin insert into retention_stmt_log select TG_TABLE_NAME, count(*) from gone; return null; end $$`));
  for (const t of ['events', 'facts']) await db.execute(sql.raw(`create trigger retention_stmt_${t} after delete on ${t} referencing old table as gone for each statement execute function retention_stmt_count()`));
  const fence = { epoch: (await createFenceStore(db).takeEpoch('pg-leader', clock.now()))!, holder: 'pg-leader' };
  const r = createRetention({ db, config: RetentionConfig.parse({ ...RETENTION_FIXTURE.settings, batchSize: 5 }), clock });
  const run = await r.run(clock.now(), fence);
  expect(run!.pruned).toEqual(RETENTION_FIXTURE.pruned);
  expect((await db.select({ n: count() }).from(events))[0]!.n).toBe(RETENTION_FIXTURE.rows.events - RETENTION_FIXTURE.pruned.events);
  expect((await db.select({ n: count() }).from(facts))[0]!.n).toBe(RETENTION_FIXTURE.rows.facts - RETENTION_FIXTURE.pruned.facts);
  const nodes = createNodeStore(db, { clock });
  expect((await nodes.latestFacts(RETENTION_FIXTURE.A))!.facts).toEqual({ i: 14 });
  const lastTransitionB = await db.execute(sql`select to_state from events where node_uuid = ${RETENTION_FIXTURE.B} and kind = 'transition'`);
  expect([...(lastTransitionB as unknown as { to_state: string }[])].map((x) => x.to_state)).toEqual(['failed']);
  const stmts = [...((await db.execute(sql`select tbl, n from retention_stmt_log order by tbl`)) as unknown as { tbl: string; n: number }[])];
  // events 12 = 5 + 5 + 2, facts 14 = 5 + 5 + 4
  expect(stmts.filter((s) => s.tbl === 'events').map((s) => Number(s.n)).sort()).toEqual([2, 5, 5]);
  expect(stmts.filter((s) => s.tbl === 'facts').map((s) => Number(s.n)).sort()).toEqual([4, 5, 5]);
  expect((await r.status()).lastRun).toMatchObject({ epoch: fence.epoch, pruned: RETENTION_FIXTURE.pruned });
}, 120_000);
