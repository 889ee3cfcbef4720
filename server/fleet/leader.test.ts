// Leader election on a REAL PostgreSQL (Debian's server, a throwaway cluster from test/harness/postgres.ts):
// two fleet controllers on one database elect exactly one leader; when the leader's lock connection dies
// (pg_terminate_backend on its backend) the other takes over, and the old one becomes a follower.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import postgres from 'postgres';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { createDb, type DbHandle } from '../db/index.ts';
import { createNodeStore } from '../store/nodes.ts';
import { createBmcStore } from '../store/bmcs.ts';
import { createSecrets } from '../secrets.ts';
import { FakeClock } from '../clock.ts';
import { silentLogger } from '../log.ts';
import { until } from '../../test/harness/wait.ts';
import { createFleet, type Fleet } from './controller.ts';
import { randomBytes } from 'node:crypto';

const KEY = 4242;
let pg: PgCluster;
let url: string;
const handles: DbHandle[] = [];
const fleets: Fleet[] = [];
let admin: postgres.Sql;

beforeAll(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase('fleet_leader');
  admin = postgres(url, { max: 1, onnotice: () => {} });
  const clock = new FakeClock();
  // one after the other: both would run the migrations
  for (let i = 0; i < 2; i++) {
    const h = await createDb({ url, maxConnections: 2 });
    handles.push(h);
    fleets.push(createFleet({ db: h, store: createNodeStore(h.db, { clock }), bmcStore: createBmcStore(h.db, createSecrets(randomBytes(32)), { clock }), clock, config: { leader: { lockKey: KEY } }, logger: silentLogger() }));
  }
});
afterAll(async () => {
  await Promise.all(fleets.map((f) => f.stop()));
  await Promise.all(handles.map((h) => h.close()));
  await admin?.end({ timeout: 2 });
  pg?.stop();
});

const lockHolders = async () => (await admin<{ pid: number }[]>`select pid from pg_locks where locktype = 'advisory' and granted and objid = ${KEY} and objsubid = 1`).map((r) => r.pid);

describe('leader election with pg_try_advisory_lock', () => {
  it('elects exactly one leader, and the other takes over when the leader connection is killed', async () => {
    const [a, b] = fleets as [Fleet, Fleet];
    const first = await Promise.all([a.tick(), b.tick()]);
    expect(first.map((r) => r.leader).filter(Boolean)).toHaveLength(1);
    // ticking again changes nothing
    const again = await Promise.all([a.tick(), b.tick()]);
    expect(again.map((r) => r.leader)).toEqual(first.map((r) => r.leader));
    const [leader, follower] = first[0]!.leader ? [a, b] : [b, a];
    expect(leader.isLeader()).toBe(true);
    expect(follower.isLeader()).toBe(false);

    const holders = await lockHolders();
    expect(holders).toHaveLength(1);
    const killed = await admin<{ ok: boolean }[]>`select pg_terminate_backend(${holders[0]!}) as ok`;
    expect(killed[0]?.ok).toBe(true);
    // the lock died with the session: the follower takes it on its next check
    await until('the follower to take the lock', async () => (await follower.tick()).leader, { pollMs: 100 });
    expect(follower.isLeader()).toBe(true);
    // the old leader notices on its next check that its (re-opened) connection does not hold the lock
    const old = await leader.tick();
    expect(old.leader).toBe(false);
    expect((await leader.tick()).leader).toBe(false);
    expect(await lockHolders()).toHaveLength(1);
    // and it is the new leader's session that holds it
    expect((await Promise.all([a.tick(), b.tick()])).map((r) => r.leader).filter(Boolean)).toHaveLength(1);
  });

  // the remaining instance is the one whose lock connection was killed above: taking the lock now proves it
  // re-acquires leadership on its re-opened connection
  it('a stopped leader releases the lock at once, and the instance that lost its connection re-acquires it', async () => {
    const leader = fleets.find((f) => f.isLeader())!;
    const other = fleets.find((f) => f !== leader)!;
    await leader.stop();
    expect(await lockHolders()).toHaveLength(0);
    expect((await other.tick()).leader).toBe(true);
  });
});
