// The leader lock's statements on a real PostgreSQL (Debian's server, test/harness/postgres.ts): the two ways a paused
// old leader could hold up failover for as long as it stays paused, each closed (store/fence.ts "lockSql" and
// endStaleWriters; the failover test, server/fleet/failover.pg.test.ts, hit the first 2 times in 25 runs).
import { PgDialect } from 'drizzle-orm/pg-core';
import type { SQL } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, openSession, type Db } from '../db/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { lockSessionSettings } from '../fleet/leader.ts';
import { createFenceStore } from './fence.ts';

const KEY = 5151;
let pg: PgCluster;
let url: string;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase('fence');
  await (await createDb({ url })).close(); // migrate once
}, 120_000);
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  pg?.stop();
});

async function lockSession() {
  const s = await openSession(url, { settings: lockSessionSettings(1) });
  closers.push(() => s.destroy());
  return s;
}

describe('the leader lock session on PostgreSQL', () => {
  it('sends every statement without bind parameters: postgres.js never leaves one half-sent (Parse+Describe, then Bind+Execute) on the lock session', async () => {
    const s = await lockSession();
    const seen: SQL[] = [];
    const recording = new Proxy(s.db, {
      get(target, key, receiver) {
        if (key === 'execute') return (q: SQL) => (seen.push(q), target.execute(q));
        return Reflect.get(target, key, receiver) as unknown;
      },
    }) as Db;
    const fences = createFenceStore(recording);
    expect(await fences.tryLock(KEY)).toBe(true);
    const epoch = await fences.takeEpoch("replica-'quoted'", new Date('2026-12-03T10:00:00Z'), { lockKey: KEY });
    expect(epoch).toBeGreaterThan(0);
    expect(await fences.verify(KEY, { epoch: epoch!, holder: "replica-'quoted'" })).toEqual({ held: true, current: true });
    expect((await fences.current()).holder).toBe("replica-'quoted'");
    await fences.unlock(KEY);
    expect(await fences.verify(KEY, { epoch: epoch!, holder: "replica-'quoted'" })).toEqual({ held: false, current: true });
    // a session that does not hold the lock takes no epoch
    expect(await fences.takeEpoch('not-holding', new Date(), { lockKey: KEY })).toBeNull();
    const dialect = new PgDialect();
    expect(seen.length).toBeGreaterThanOrEqual(7);
    for (const q of seen) expect(dialect.sqlToQuery(q).params, dialect.sqlToQuery(q).sql).toEqual([]);
    await expect(fences.tryLock(1.5)).rejects.toThrow(/not an integer/);
  });

  it("ends the old leader's transaction that holds the epoch row past lock_timeout and no server timeout reaches, then takes the epoch", async () => {
    const s = await lockSession();
    const fences = createFenceStore(s.db);
    expect(await fences.tryLock(KEY)).toBe(true);
    const first = (await fences.takeEpoch('old-leader', new Date(), { lockKey: KEY }))!;
    await fences.unlock(KEY);

    // The old leader's write, stuck: guardTx's FOR SHARE on the epoch row, on a session no idle timeout ends (a
    // paused process between Describe and Bind is "active"; here the timeouts are simply off).
    const old = postgres(url, { max: 1, onnotice: () => {}, connection: { application_name: 'old-leader-write', idle_in_transaction_session_timeout: 0, statement_timeout: 0 } });
    closers.push(() => old.end({ timeout: 1 }));
    const reserved = await old.reserve();
    await reserved`begin`;
    await reserved`select leader_epoch from fleet_control where id = 'fleet' for share`;
    const oldPid = (await reserved<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid;

    // the new holder: the increment waits out lock_timeout (PostgreSQL's 55P03) …
    const next = await lockSession();
    const nf = createFenceStore(next.db);
    expect(await nf.tryLock(KEY)).toBe(true);
    await expect(nf.takeEpoch('new-leader', new Date(), { lockKey: KEY })).rejects.toMatchObject({ cause: { code: '55P03' } });
    // … so it ends the sessions that hold the row, and only those
    const bystander = postgres(url, { max: 1, onnotice: () => {} });
    closers.push(() => bystander.end({ timeout: 1 }));
    const bystanderPid = (await bystander<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid;
    expect(await nf.endStaleWriters()).toEqual([oldPid]);
    const epoch = await nf.takeEpoch('new-leader', new Date(), { lockKey: KEY });
    expect(epoch).toBe(first + 1);
    await expect(reserved`select 1`).rejects.toThrow();
    expect((await bystander<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid).toBe(bystanderPid);
    reserved.release();
  });
});
