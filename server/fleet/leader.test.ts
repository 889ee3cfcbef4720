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
import { createPgLeaderElector, type LeaderElector } from './leader.ts';
import { createFenceStore, FencedError, type Fence } from '../store/fence.ts';
import { bootToActive } from '../../test/fakes/fleet.ts';
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

const UUID = 'fe000000-0000-4000-8000-000000000001';
const advisoryHolders = async (key: number) => (await admin<{ pid: number }[]>`select pid from pg_locks where locktype = 'advisory' and granted and objid = ${key} and objsubid = 1`).map((r) => r.pid);
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

// Fencing on the same real PostgreSQL, in one process with an injected clock: leader A has watched a node go
// silent and would fail it at its next tick; before that tick A loses its lock session (it has not noticed: its
// elector is made to answer "still leader", as a paused process that wakes mid-tick would), B takes the lock and
// a new epoch. A's tick writes nothing: its first write is refused by the epoch check in the same transaction.
describe('leader epoch (fencing token)', () => {
  it("takes a new epoch on every change of leader and refuses a stale leader's writes", async () => {
    const dbUrl = await pg.createDatabase('fleet_fencing');
    const key = 4244;
    const clock = new FakeClock('2026-03-01T00:00:00Z');
    const mk = async (id: string, wrap?: (e: LeaderElector) => LeaderElector) => {
      const h = await createDb({ url: dbUrl, maxConnections: 2 });
      handles.push(h);
      const real = await createPgLeaderElector({ url: dbUrl, lockKey: key, holder: id, checkSeconds: 1, clock });
      const f = createFleet({ db: h, store: createNodeStore(h.db, { clock }), bmcStore: createBmcStore(h.db, createSecrets(randomBytes(32)), { clock }), clock, config: { leader: { lockKey: key } }, logger: silentLogger(), instanceId: id, leader: wrap ? wrap(real) : real });
      fleets.push(f);
      return { f, h };
    };
    let pretend = false;
    const a = await mk('fence-a', (e) => ({ ...e, check: async () => (pretend ? true : e.check()), isLeader: () => pretend || e.isLeader(), fence: () => (pretend ? staleFence : e.fence()) }));
    let staleFence: Fence | null = null;
    const b = await mk('fence-b');
    const nodes = createNodeStore(a.h.db, { clock });
    await bootToActive(nodes, UUID);
    await nodes.touch(UUID, { lastHeartbeat: clock.now() });

    const first = await a.f.tick();
    expect(first).toMatchObject({ leader: true, epoch: expect.any(Number) });
    expect((await b.f.tick()).leader).toBe(false);
    staleFence = a.f.fence();
    expect(staleFence).toEqual({ epoch: first.epoch, holder: 'fence-a' });
    // 3 heartbeat intervals of silence: A's next tick would fail the node
    clock.advance(5 * 60_000);

    const holders = await advisoryHolders(key);
    expect(holders).toHaveLength(1);
    await admin`select pg_terminate_backend(${holders[0]!})`;
    pretend = true; // A does not know yet
    await until('B to take the lock and a new epoch', async () => (await b.f.tick()).leader, { pollMs: 50 });
    const bEpoch = b.f.fence()!.epoch;
    expect(bEpoch).toBe(first.epoch! + 1);

    const eventsBefore = (await nodes.events(UUID)).length;
    const stale = await a.f.tick();
    expect(stale.leader).toBe(false);
    expect(stale.lost).toMatch(new RegExp(`^fenced: this replica's leader epoch ${first.epoch} is stale \\(the current epoch is ${bEpoch}, taken by fence-b\\); nothing written$`));
    // nothing A decided was written: the node is still active, no event, the control row is B's
    expect((await nodes.require(UUID)).state).toBe('active');
    expect(await nodes.events(UUID)).toHaveLength(eventsBefore);
    expect(await createFenceStore(a.h.db).current()).toMatchObject({ epoch: bEpoch, holder: 'fence-b' });
    // and directly: a write under the stale fence is refused in its transaction
    await expect(createFenceStore(a.h.db).run(staleFence!, async () => 'written')).rejects.toBeInstanceOf(FencedError);
    await expect(nodes.transition(UUID, { type: 'fail', reason: 'stale' }, 'fleet', {}, { guard: createFenceStore(a.h.db).guard(staleFence!) })).rejects.toBeInstanceOf(FencedError);
    expect((await nodes.require(UUID)).state).toBe('active');

    // A wakes for real: its own check finds the lock gone and does not lead
    pretend = false;
    expect((await a.f.tick()).leader).toBe(false);
    expect(a.f.fence()).toBeNull();
    // B, the one leader, acts under its epoch once it has watched the silent node for 3 intervals itself
    const types: string[] = [];
    for (let i = 0; i < 40 && (await nodes.require(UUID)).state === 'active'; i++) {
      clock.advance(15_000);
      const r = await b.f.tick();
      expect(r).toMatchObject({ leader: true, epoch: bEpoch });
      types.push(...r.decisions.map((d) => d.type));
    }
    expect(types).toContain('fail');
    expect((await nodes.require(UUID)).state).toBe('failed');
    expect((await nodes.events(UUID)).find((e) => e.toState === 'failed')?.actor).toBe('fleet');
  }, 120_000);
});
