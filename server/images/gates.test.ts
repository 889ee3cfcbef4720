// Issue 12 item 6: the automatic rollback (and the promotion gates) count only failures the image caused. Runs the
// real pipeline and node store on PGlite and on a real PostgreSQL server; node histories are written the way the
// agent routes and the fleet controller write them (test/fakes/node-history.ts). The circuit breaker is a
// stand-in: the fleet's breaker is injected through FleetBreaker, and here its state is set by the test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDb, type DbHandle } from '../db/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { FakeClock } from '../clock.ts';
import { createNodeStore, type NodeStore } from '../store/nodes.ts';
import { createLocalStore } from './local.ts';
import { createImagePipeline, type FleetBreaker, type ImagePipeline } from './pipeline.ts';
import type { BreakerSpan } from '../domain/promotion.ts';
import { initrdFile, kernelFile } from '../../test/fakes/boot-files.ts';
import { bootNode, type ImageDigests } from '../../test/fakes/node-history.ts';

let pg: PgCluster | undefined;
const backends: [string, () => Promise<DbHandle>][] = [
  ['PGlite', () => createTestDb()],
  [
    'PostgreSQL',
    async () => {
      pg ??= await startPostgres();
      return createDb({ url: await pg.createDatabase('imggates'), maxConnections: 4 });
    },
  ],
];
afterAll(() => pg?.stop());

const uuid = (n: number) => `abababab-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe.each(backends)('rollback gates on %s', (_name, makeDb) => {
  let db: DbHandle;
  let tmp: string;
  let p: ImagePipeline;
  let nodes: NodeStore;
  const clock = new FakeClock('2026-12-01T10:00:00Z');
  /** stand-in for the fleet's breaker (issue 12 item 3); the test opens and closes it */
  const breaker = { open: false, episodes: [] as BreakerSpan[] };
  const fleetBreaker: FleetBreaker = { breakerOpen: async () => breaker.open, spans: async () => breaker.episodes };
  let v1: ImageDigests;
  let v2: ImageDigests;

  beforeAll(async () => {
    db = await makeDb();
    tmp = mkdtempSync(join(tmpdir(), 'bfimg-gates-'));
    nodes = createNodeStore(db.db, { clock });
    p = createImagePipeline({ db: db.db, store: createLocalStore({ dir: join(tmp, 'store') }), clock, breaker: fleetBreaker, rollback: { maxFailureRatio: 0.3, minSamples: 4, windowMs: 3600_000 } });
    for (const version of ['1', '2']) {
      const k = kernelFile(tmp, `k${version}`);
      const i = initrdFile(tmp, `i${version}`);
      await p.push({ name: 'compute', version, kernelPath: k.path, initrdPath: i.path, actor: 'alice', channel: 'prod', force: true });
      if (version === '1') v1 = { kernel: k.digest, initrd: i.digest };
      else v2 = { kernel: k.digest, initrd: i.digest };
    }
  });
  afterAll(async () => {
    await db?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('does not count BMC, power, operator and before-kexec failures; counts heartbeat loss after active and timeouts after kexec', async () => {
    await bootNode(nodes, uuid(1), v2, ['kexec', 'active', { fail: 'heartbeat' }]); // counted
    await bootNode(nodes, uuid(2), v2, ['kexec', 'active', { fail: 'power-off' }]);
    await bootNode(nodes, uuid(3), v2, ['kexec', 'active', { fail: 'bmc-health' }]);
    await bootNode(nodes, uuid(4), v2, ['kexec', { fail: 'timeout' }]); // counted: its kernel never reported in
    await bootNode(nodes, uuid(5), v2, [{ fail: 'timeout' }]); // stage-1 never got to kexec
    await bootNode(nodes, uuid(6), v2, ['kexec', 'active', { fail: null }]); // an operator's fail action
    await bootNode(nodes, uuid(7), v2, ['kexec', 'active']);
    await bootNode(nodes, uuid(8), v2, ['kexec', 'active']);
    const g = await p.gateReport('compute', 'prod');
    expect(g.health).toEqual({
      active: 2,
      quarantined: 0,
      windowActive: 5, // 2, 3, 6 reached active before their non-image failure; 7, 8
      windowFailed: 2, // 1, 4
      ignoredFailures: { 'bmc-or-power': 2, 'before-kexec': 1, 'not-image-cause': 1 },
    });
    // 2 of 7 = 0.286 < 0.3 (counting every failure, 6 of 8, would have rolled prod back)
    expect(await p.evaluateRollback({ name: 'compute', channel: 'prod' })).toMatchObject({ rollback: false, samples: 7, version: '2' });
  });

  it('never rolls back while the breaker is open, and does not count failures inside a breaker episode after the resume', async () => {
    clock.advance(60_000);
    const from = clock.now();
    // a switch outage: six active nodes stop heartbeating together; the fleet opens its breaker
    for (const n of [7, 8]) await nodes.transition(uuid(n), { type: 'fail', reason: 'no heartbeat' }, 'fleet', { cause: 'heartbeat' });
    for (const n of [9, 10, 11, 12]) await bootNode(nodes, uuid(n), v2, ['kexec', 'active', { fail: 'heartbeat' }]);
    breaker.open = true;
    breaker.episodes = [{ from, to: null }];
    expect(await p.evaluateRollback({ name: 'compute', channel: 'prod' })).toMatchObject({ rollback: false, reason: expect.stringMatching(/circuit breaker is open/) });
    clock.advance(10 * 60_000);
    breaker.open = false;
    breaker.episodes = [{ from, to: clock.now() }]; // an operator resumed
    const d = await p.evaluateRollback({ name: 'compute', channel: 'prod' });
    expect(d).toMatchObject({ rollback: false, samples: 11 });
    const g = await p.gateReport('compute', 'prod');
    expect(g.health).toMatchObject({ windowActive: 9, windowFailed: 2, ignoredFailures: { 'breaker-open': 6 } });
    expect((await p.catalog.resolve('compute', 'prod'))?.version).toBe('2');
  });

  it('rolls back once failures the image caused cross the threshold', async () => {
    clock.advance(60_000);
    for (const n of [13, 14, 15, 16]) await bootNode(nodes, uuid(n), v2, ['kexec', 'active', { fail: 'heartbeat' }]);
    // 6 of 15 boots = 0.4 ≥ 0.3
    const d = await p.evaluateRollback({ name: 'compute', channel: 'prod' });
    expect(d).toMatchObject({ rollback: true, samples: 15, version: '2', rolledBackTo: '1' });
    expect(d.failureRatio).toBeCloseTo(0.4, 5);
    const [last] = await p.history('compute', 'prod', 1);
    expect(last).toMatchObject({ action: 'auto-rollback', from: { version: '2' }, to: { version: '1' } });
    expect((last!.data as { health: { ignoredFailures: Record<string, number> } }).health.ignoredFailures).toEqual({ 'bmc-or-power': 2, 'before-kexec': 1, 'not-image-cause': 1, 'breaker-open': 6 });
  });

  it('judges the image now on the channel: not a boot of another image, not a failure the fleet marked as breaker-open', async () => {
    clock.advance(2 * 3600_000); // everything above leaves the window
    await bootNode(nodes, uuid(20), { kernel: v1.kernel, initrd: 'f'.repeat(64) }, ['kexec', 'active', { fail: 'heartbeat' }]);
    await bootNode(nodes, uuid(21), v1, ['kexec', 'active', { fail: 'heartbeat', data: { breakerOpen: true } }]);
    await bootNode(nodes, uuid(22), v1, ['kexec', 'active']);
    const g = await p.gateReport('compute', 'prod');
    expect(g.version).toBe('1');
    expect(g.health).toMatchObject({ windowActive: 2, windowFailed: 0, ignoredFailures: { 'breaker-open': 1 } });
  });
});
