// GET /api/v1/cluster, `bootfarm cluster` and the per-replica metrics, with two replicas (two fleet controllers,
// each its own registry labelled replica=<id>) on one database: on PGlite (one process: replica B is given an
// elector that never leads) and on a real PostgreSQL (test/harness/postgres.ts: a real election). Time is an
// injected clock: a replica that misses 3 ticks is listed as gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import { createApp } from './app.ts';
import { clusterMount } from './cluster.ts';
import { createFleet, type Fleet } from '../fleet/controller.ts';
import { describeReplica } from '../fleet/replica.ts';
import type { LeaderElector } from '../fleet/leader.ts';
import { runCluster } from '../cli/cluster.ts';
import { apiClient } from '../cli.ts';
import { createDb, buildSchemaVersion, type DbHandle } from '../db/index.ts';
import { createNodeStore } from '../store/nodes.ts';
import { createBmcStore } from '../store/bmcs.ts';
import { createSecrets } from '../secrets.ts';
import { FakeClock } from '../clock.ts';
import { silentLogger } from '../log.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { client, createTestApp, TOKENS } from '../../test/fakes/app.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';

const neverLeads: LeaderElector = { check: async () => false, isLeader: () => false, fence: () => null, stepDown: () => undefined, stop: async () => undefined };

let pg: PgCluster | undefined;
afterAll(() => pg?.stop());

const cases: { name: string; open: () => Promise<DbHandle[]> }[] = [
  {
    name: 'PGlite',
    open: async () => {
      const h = await createTestDb();
      return [h, h];
    },
  },
  {
    name: 'PostgreSQL',
    open: async () => {
      pg ??= await startPostgres();
      const url = await pg.createDatabase('cluster');
      const a = await createDb({ url, maxConnections: 3 });
      return [a, await createDb({ url, maxConnections: 3 })];
    },
  },
];

describe.each(cases)('the cluster view on $name', ({ name, open }) => {
  let handles: DbHandle[];
  const fleets: Fleet[] = [];
  const registries: Registry[] = [];
  const clock = new FakeClock('2026-04-01T00:00:00Z');
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    handles = await open();
    for (const [i, id] of ['replica-a', 'replica-b'].entries()) {
      const h = handles[i]!;
      const registry = new Registry();
      registry.setDefaultLabels({ replica: id });
      registries.push(registry);
      const replica = describeReplica({ id, url: `http://10.0.0.${i + 1}:8080`, startedAt: clock.now() });
      fleets.push(createFleet({ db: h, replica, store: createNodeStore(h.db, { clock }), bmcStore: createBmcStore(h.db, createSecrets(randomBytes(32)), { clock }), clock, config: { leader: { lockKey: 5151 } }, logger: silentLogger(), metrics: registry, ...(name === 'PGlite' && i === 1 ? { leader: neverLeads } : {}) }));
    }
    const t = createTestApp(handles[1]!, { clock });
    app = createApp(t.deps, { extra: [clusterMount({ replicas: fleets[1]!.replicas, clock, goneAfterMs: fleets[1]!.goneAfterMs })] });
  }, 120_000);
  afterAll(async () => {
    for (const f of fleets) await f.stop();
    for (const h of new Set(handles)) await h.close();
  });

  it('lists both replicas, the leader and its epoch; a replica that stops ticking is gone after 3 ticks', async () => {
    const [a, b] = fleets as [Fleet, Fleet];
    expect((await a.tick()).leader).toBe(true);
    expect((await b.tick()).leader).toBe(false);
    const epoch = a.fence()!.epoch;
    const http = client(app);
    expect((await http.get('/api/v1/cluster')).status).toBe(401);
    const res = await http.get('/api/v1/cluster', { token: TOKENS.viewer });
    expect(res.status).toBe(200);
    const base = { hostname: expect.any(String), version: expect.any(String), schemaVersion: buildSchemaVersion(), startedAt: '2026-04-01T00:00:00.000Z', lastSeen: '2026-04-01T00:00:00.000Z', lastSeenAgoSeconds: 0, status: 'up' };
    expect(res.json).toEqual({
      leader: { id: 'replica-a', epoch, since: '2026-04-01T00:00:00.000Z', up: true },
      epoch,
      replicas: [
        { ...base, id: 'replica-a', url: 'http://10.0.0.1:8080', leader: true },
        { ...base, id: 'replica-b', url: 'http://10.0.0.2:8080', leader: false },
      ],
      goneAfterSeconds: 45,
      mixedVersions: false,
    });

    // each replica's /metrics: its own label, whether it leads, the epoch it holds
    expect(await registries[0]!.metrics()).toContain(`bootfarm_leader{replica="replica-a"} 1\n`);
    expect(await registries[0]!.metrics()).toContain(`bootfarm_leader_epoch{replica="replica-a"} ${epoch}\n`);
    expect(await registries[1]!.metrics()).toContain(`bootfarm_leader{replica="replica-b"} 0\n`);

    // A stops ticking (killed); B ticks on. After 3 missed ticks A is gone and the leader "not reporting"
    for (let i = 0; i < 4; i++) {
      clock.advance(15_000);
      await b.tick();
    }
    const later = (await http.get('/api/v1/cluster', { token: TOKENS.viewer })).json;
    expect(later.leader).toEqual({ id: 'replica-a', epoch, since: '2026-04-01T00:00:00.000Z', up: false });
    expect(later.replicas.map((r: { id: string; status: string; leader: boolean; lastSeenAgoSeconds: number }) => [r.id, r.status, r.leader, r.lastSeenAgoSeconds])).toEqual([
      ['replica-b', 'up', false, 0],
      ['replica-a', 'gone', false, 60],
    ]);

    // the CLI prints the same
    const lines: string[] = [];
    await runCluster([], { api: apiClient('http://bootfarm', TOKENS.viewer, (async (u: string | URL | Request, init?: RequestInit) => app.request(String(u).replace('http://bootfarm', ''), init)) as typeof fetch), out: (l) => lines.push(l) });
    expect(lines[0]).toBe(`leader: replica-a (epoch ${epoch}, since 2026-04-01T00:00:00.000Z) — NOT REPORTING: a failover is under way or no replica can lead`);
    expect(lines[2]).toMatch(/^ {2}replica-b +up +\S+ +\d{4}_\w+ +0 s ago +http:\/\/10\.0\.0\.2:8080$/);
    expect(lines[3]).toMatch(/^ {2}replica-a +gone .* 60 s ago +http:\/\/10\.0\.0\.1:8080$/);
    expect(lines.at(-1)).toBe('(a replica is gone after 45 s without a tick)');
  }, 120_000);
});
