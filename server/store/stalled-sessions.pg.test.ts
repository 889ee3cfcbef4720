// endStalledLockHolders on a real PostgreSQL (Debian's server, test/harness/postgres.ts). The stalled client is a
// raw protocol-3 session written here, because no driver lets a test stop between Parse and Bind on purpose: it
// opens a transaction, updates a row, then sends Parse+Flush of its next statement and nothing more — exactly what a
// postgres.js client paused between its two round trips leaves on the server ("active", waiting on ClientRead).
import { connect, type Socket } from 'node:net';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../db/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { createStalledSessionReaper } from '../fleet/stalled-sessions.ts';
import { endStalledLockHolders } from './stalled-sessions.ts';

let pg: PgCluster;
let url: string;
let handle: DbHandle;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase('stalled');
  handle = await createDb({ url });
  closers.push(() => handle.close());
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  await admin`create table stall_t (id int primary key, v int not null)`;
  await admin`insert into stall_t values (1, 0), (2, 0)`;
  await admin.end();
}, 120_000);
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  pg?.stop();
});

/** A protocol-3 session (trust auth): run simple queries, then stall after a Parse+Flush. */
async function rawSession(): Promise<{ pid: number; query: (q: string) => Promise<void>; stallMidStatement: (q: string) => Promise<void>; closed: Promise<void>; end: () => void }> {
  const u = new URL(url);
  const sock: Socket = connect(Number(u.port), u.hostname);
  let buf = Buffer.alloc(0);
  const waiters: { type: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  let pid = 0;
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  sock.on('error', () => undefined);
  sock.on('close', () => {
    for (const w of waiters.splice(0)) w.reject(new Error('connection closed'));
  });
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 5) {
      const len = buf.readInt32BE(1);
      if (buf.length < 1 + len) break;
      const type = String.fromCharCode(buf[0]!);
      const body = buf.subarray(5, 1 + len);
      buf = buf.subarray(1 + len);
      if (type === 'K') pid = body.readInt32BE(0);
      if (type === 'E') for (const w of waiters.splice(0)) w.reject(new Error(`server error: ${body.toString('utf8').replace(/\0/g, ' ')}`));
      const i = waiters.findIndex((w) => w.type === type);
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve();
    }
  });
  const wait = (type: string) => new Promise<void>((resolve, reject) => waiters.push({ type, resolve, reject }));
  const msg = (type: string, body: Buffer) => {
    const head = Buffer.alloc(5);
    head.write(type, 0, 'latin1');
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  };
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const params = Buffer.from(`user\0postgres\0database\0${u.pathname.slice(1)}\0application_name\0stalled-client\0\0`, 'utf8');
  const startup = Buffer.alloc(8);
  startup.writeInt32BE(params.length + 8, 0);
  startup.writeInt32BE(196608, 4);
  const ready = wait('Z');
  sock.write(Buffer.concat([startup, params]));
  await ready;
  return {
    pid,
    closed,
    async query(q) {
      const done = wait('Z');
      sock.write(msg('Q', Buffer.from(`${q}\0`, 'utf8')));
      await done;
    },
    async stallMidStatement(q) {
      const parsed = wait('1'); // ParseComplete; no Sync follows, so the server waits for the rest
      sock.write(Buffer.concat([msg('P', Buffer.concat([Buffer.from(`\0${q}\0`, 'utf8'), Buffer.alloc(2)])), msg('H', Buffer.alloc(0))]));
      await parsed;
    },
    end: () => sock.destroy(),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function activity(pid: number) {
  const s = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return (await s<{ state: string; wait_event: string | null }[]>`select state, wait_event from pg_stat_activity where pid = ${pid}`)[0];
  } finally {
    await s.end();
  }
}

describe('ending sessions stalled in a transaction while others wait for their locks (PostgreSQL)', () => {
  it('ends a session paused between Parse and Bind that holds a row another session waits for; the waiter goes on', async () => {
    const stalled = await rawSession();
    closers.push(async () => stalled.end());
    await stalled.query('begin; update stall_t set v = v + 1 where id = 1');
    await stalled.stallMidStatement('select v from stall_t where id = $1');
    // what no PostgreSQL timeout reaches: "active", waiting for its client
    expect(await activity(stalled.pid)).toMatchObject({ state: 'active', wait_event: 'ClientRead' });

    const other = postgres(url, { max: 1, onnotice: () => {}, connection: { lock_timeout: 30_000 } });
    closers.push(() => other.end({ timeout: 1 }));
    const waiting = other`update stall_t set v = v + 10 where id = 1 returning v`;
    const waitingResult = waiting.then((r) => r[0]!.v as number);
    await sleep(1_500);
    // not yet stalled long enough: left alone
    expect(await endStalledLockHolders(handle.db, { stalledSeconds: 3_600 })).toEqual([]);
    const ended = await endStalledLockHolders(handle.db, { stalledSeconds: 1 });
    expect(ended).toEqual([expect.objectContaining({ pid: stalled.pid, state: 'active', blocking: 1, application: 'stalled-client', query: 'select v from stall_t where id = $1' })]);
    expect(ended[0]!.seconds).toBeGreaterThanOrEqual(1);
    await stalled.closed;
    // its transaction was rolled back as a whole: the waiter's update lands on the old value
    expect(await waitingResult).toBe(10);
  });

  it('leaves alone a stalled session that blocks nobody, and one that is idle in a transaction nobody waits on', async () => {
    const lone = await rawSession();
    closers.push(async () => lone.end());
    await lone.query('begin; update stall_t set v = v + 1 where id = 2');
    await lone.stallMidStatement('select v from stall_t where id = $1');
    const idle = await rawSession();
    closers.push(async () => idle.end());
    await idle.query('begin; select 1');
    await sleep(1_500);
    expect(await endStalledLockHolders(handle.db, { stalledSeconds: 1 })).toEqual([]);
    expect(await activity(lone.pid)).toMatchObject({ state: 'active', wait_event: 'ClientRead' });
    expect(await activity(idle.pid)).toMatchObject({ state: 'idle in transaction' });
    lone.end();
    idle.end();
  });

  it('refuses a threshold that is not a positive number', async () => {
    await expect(endStalledLockHolders(handle.db, { stalledSeconds: 0 })).rejects.toThrow(/stalledSeconds must be > 0/);
  });

  it('the leader task does nothing on PGlite (one process, one connection)', async () => {
    const lite = await createDb();
    try {
      expect(await createStalledSessionReaper({ db: lite }).run()).toEqual([]);
    } finally {
      await lite.close();
    }
  });
});
