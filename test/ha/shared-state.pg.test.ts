// Shared state across replicas (issue 14 item 1) on a real Debian PostgreSQL: two servers as server/main.ts
// starts them (startServer: own data directory, own process state, one database, the same KEK), plus a third
// with another KEK. A BMC password sealed by replica A is opened by replica B (B drives a real ipmi_sim with it);
// a token created on A works on B, revoked on B fails on A at once; the bootstrap admin token is one token; a BMC
// setup plan made through A's store is handed out once through B's (and survives a "restart": a new pool); a
// wrong KEK refuses to start, naming the check values.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../server/config.ts';
import { createDb, type DbHandle } from '../../server/db/index.ts';
import { silentLogger } from '../../server/log.ts';
import { startServer, type Running } from '../../server/main.ts';
import { systemClock } from '../../server/clock.ts';
import { createKeyring } from '../../server/store/keyring.ts';
import { createBmcSetupStore } from '../../server/store/bmc-setups.ts';
import { createNodeStore } from '../../server/store/nodes.ts';
import { startIpmiSim, type IpmiSim } from '../harness/ipmisim.ts';
import { startPostgres, type PgCluster } from '../harness/postgres.ts';

const KEK = Buffer.alloc(32, 0x5a).toString('base64');
const WRONG_KEK = Buffer.alloc(32, 0x33).toString('base64');
const NODE = '14140000-0000-4000-8000-000000000001';
const PLAN_NODE = '14140000-0000-4000-8000-000000000002';

let pg: PgCluster;
let url: string;
let sim: IpmiSim;
const dirs: string[] = [];
const servers: Running[] = [];
let a: Running;
let b: Running;

function config(kek: string): Config {
  const dataDir = mkdtempSync(join(tmpdir(), 'bf-replica-'));
  dirs.push(dataDir);
  // no configured tokens: each replica takes part in the bootstrap admin token
  return parseConfig({ dataDir, databaseUrl: url, http: { host: '127.0.0.1', port: 0 }, secrets: { kek }, fleet: { enabled: false } });
}

async function call(server: Running, method: string, path: string, token: string | undefined, body?: unknown) {
  const res = await fetch(server.url + path, { method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

beforeAll(async () => {
  [pg, sim] = await Promise.all([startPostgres(), startIpmiSim({ power: 0 })]);
  url = await pg.createDatabase('shared_state');
  a = await startServer(config(KEK), { log: silentLogger() });
  servers.push(a);
  b = await startServer(config(KEK), { log: silentLogger() });
  servers.push(b);
}, 180_000);

afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => undefined);
  await sim?.stop();
  pg?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('two replicas on one PostgreSQL', () => {
  it('have one bootstrap admin token: the first wrote it, the second invented none, both accept it', async () => {
    expect(a.adminToken).toMatch(/^bft_/);
    expect(b.adminToken).toBeUndefined();
    for (const s of [a, b]) expect((await call(s, 'GET', '/api/v1/tokens', a.adminToken)).status).toBe(200);
  });

  it('a BMC password sealed by A is opened by B (B logs in to a real ipmi_sim with it)', async () => {
    const put = await call(a, 'PUT', `/api/v1/nodes/${NODE}/bmc`, a.adminToken, { driver: 'ipmi', address: '127.0.0.1', port: sim.port, username: sim.username, password: sim.password });
    expect(put.status).toBe(200);
    const status = await call(b, 'GET', `/api/v1/nodes/${NODE}/power`, a.adminToken);
    expect(status.status, status.text).toBe(200);
    expect(status.json.power).toBe('off');
    // after a rotation on B, A opens it (and seals new values with B's new key)
    const rot = await call(b, 'POST', '/api/v1/secrets/rotate', a.adminToken, {});
    expect(rot.status).toBe(200);
    expect(rot.json.reencrypted).toBe(1);
    const on = await call(a, 'POST', `/api/v1/nodes/${NODE}/power`, a.adminToken, { action: 'on' });
    expect(on.status, on.text).toBe(200);
    expect(await sim.power()).toBe(1);
  });

  it('a token created on A works on B; revoked on B, A refuses it at the next request', async () => {
    const created = await call(a, 'POST', '/api/v1/tokens', a.adminToken, { name: 'ci', role: 'operator' });
    expect(created.status).toBe(201);
    const token = created.json.token as string;
    expect((await call(b, 'GET', '/api/v1/nodes', token)).status).toBe(200);
    expect((await call(a, 'GET', '/api/v1/nodes', token)).status).toBe(200);
    const revoked = await call(b, 'DELETE', `/api/v1/tokens/${created.json.id}`, a.adminToken);
    expect(revoked.status).toBe(200);
    const after = await call(a, 'GET', '/api/v1/nodes', token);
    expect(after.status).toBe(401);
    expect(after.json.error.message).toMatch(/revoked/);
  });

  it('a BMC setup plan made through A is handed out once through B, also after a restart, and once under a race', async () => {
    const handles: DbHandle[] = [];
    const replica = async () => {
      const h = await createDb({ url, maxConnections: 4 });
      handles.push(h);
      const keyring = createKeyring(h.db, { kek: Buffer.from(KEK, 'base64'), clock: systemClock });
      await keyring.init();
      return { h, setups: createBmcSetupStore(h.db, { secrets: keyring, clock: systemClock }) };
    };
    try {
      const A = await replica();
      await createNodeStore(A.h.db, { clock: systemClock }).enroll(PLAN_NODE, {}, 'test');
      const plan = { redacted: 'user set password 3 ********', expect: { address: '10.9.0.2', port: 623, username: 'bf' }, script: 'user set password 3 s3cret-pw' };
      const { record } = await A.setups.create({ id: 'plan-1', uuid: PLAN_NODE, plan, password: 's3cret-pw', requestedBy: 'test' });
      expect(record.state).toBe('pending');
      // "restart": B is a new pool and keyring, with no memory of A
      const B = await replica();
      expect((await B.setups.current(PLAN_NODE, 3_600_000))!.record).toMatchObject({ id: 'plan-1', state: 'pending' });
      const got = await B.setups.claim<typeof plan>('plan-1', { attemptId: 1, address: '10.9.0.2' });
      expect(got!.plan).toEqual(plan);
      expect(await A.setups.claim('plan-1', { attemptId: 1, address: '10.9.0.2' })).toBeNull();
      expect(await B.setups.claim('plan-1', { attemptId: 1, address: '10.9.0.2' })).toBeNull();
      // verification is taken once too, by the attempt it was delivered to
      expect(await A.setups.startVerify('plan-1', { attemptId: 2, address: '10.9.0.2' })).toBeNull();
      expect(await A.setups.startVerify('plan-1', { attemptId: 1, address: '10.9.0.2' })).toBe('s3cret-pw');
      expect(await B.setups.startVerify('plan-1', { attemptId: 1, address: '10.9.0.2' })).toBeNull();
      // a race between the replicas for a new plan: exactly one wins
      await A.setups.create({ id: 'plan-2', uuid: PLAN_NODE, plan, password: 'pw-2', requestedBy: 'test' });
      const race = await Promise.all([A, B, A, B].map((r, i) => r.setups.claim('plan-2', { attemptId: 10 + i, address: '10.9.0.2' })));
      expect(race.filter(Boolean)).toHaveLength(1);
    } finally {
      for (const h of handles) await h.close();
    }
  });

  it('a replica with another KEK refuses to start, naming the check values', async () => {
    const err = await startServer(config(WRONG_KEK), { log: silentLogger() }).then(
      (s) => {
        servers.push(s);
        return null;
      },
      (e: Error) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.name).toBe('KekMismatchError');
    expect(err!.message).toMatch(/this replica's KEK does not match the database: data key \d+ was wrapped by the KEK with check value [0-9a-f]{16}, this replica knows [0-9a-f]{16}/);
    // and the replicas with the right KEK still answer
    expect((await call(a, 'GET', '/api/v1/secrets', a.adminToken)).json.keys.length).toBeGreaterThan(1);
  });
});
