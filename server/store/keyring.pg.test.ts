// Purging retired data keys on a real Debian PostgreSQL (postgres.js binds the cutoff and the LIMIT, returns rows
// differently from PGlite, and has real concurrent sessions): the same scenario as keyring.test.ts gives the same
// result, and a purge beside a running rotation (another session holding the keyring lock) deletes nothing.
import { sql } from 'drizzle-orm';
import { afterAll, expect, it } from 'vitest';
import { FakeClock } from '../clock.ts';
import { createDb, type DbHandle } from '../db/index.ts';
import { dataKeys } from '../db/schema/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { KEY_PURGE, keyPurgeScenario } from '../../test/fakes/keyring.ts';
import { createKeyring, KEYRING_LOCK_KEY, purgeRetiredKeys } from './keyring.ts';

let pg: PgCluster | undefined;
const handles: DbHandle[] = [];
afterAll(async () => {
  for (const h of handles) await h.close();
  pg?.stop();
});

async function database(name: string): Promise<DbHandle> {
  pg ??= await startPostgres();
  const h = await createDb({ url: await pg.createDatabase(name), maxConnections: 2 });
  handles.push(h);
  return h;
}

it('purges the keys two rotations retired once past dataKeysDays, keeps a key a value still names, every password opens', async () => {
  const h = await database('keypurge');
  expect(await keyPurgeScenario(h.db)).toEqual(KEY_PURGE.expected);
}, 120_000);

it('deletes nothing while a rotation in another session holds the keyring lock, and purges once it is released', async () => {
  const h = await database('keypurgelock');
  const clock = new FakeClock(KEY_PURGE.START);
  const a = createKeyring(h.db, { kek: KEY_PURGE.KEK, clock });
  await a.init();
  await a.rotate({ actor: 'cli' });
  const later = new Date(clock.now().getTime() + 86_400_000);
  const purge = () => h.db.transaction((tx) => purgeRetiredKeys(tx, { retiredBefore: later, limit: 10, at: later }));
  let release!: () => void;
  let locked!: () => void;
  const holding = new Promise<void>((r) => (locked = r));
  // the rotation's transaction, on the pool's other connection
  const rotation = h.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${KEYRING_LOCK_KEY}::bigint)`);
    locked();
    await new Promise<void>((r) => (release = r));
  });
  await holding;
  expect(await purge()).toBe(0);
  expect(await h.db.select().from(dataKeys)).toHaveLength(2);
  release();
  await rotation;
  expect(await purge()).toBe(1);
  expect((await h.db.select().from(dataKeys)).map((k) => k.active)).toEqual([true]);
}, 120_000);
