// The DHCP MAC table across replicas on one REAL PostgreSQL (Debian's server, test/harness/postgres.ts): two
// replicas, each its own connection pool, store and boot backend. What replica A changes — a node registered
// with its MACs, a reservation (labels), a profile assignment (shim-grub), a retirement, a deletion — replica B answers from its in-memory table
// without waiting for its periodic reload (set to an hour here, as is the miss reload): by LISTEN/NOTIFY, and
// with notifications off, by polling the change counter every 200 ms. Times are printed, not asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { startPostgres, type PgCluster } from '../test/harness/postgres.ts';
import { until } from '../test/harness/wait.ts';
import { sampleFacts } from '../test/fakes/app.ts';
import { createDb, type DbHandle } from './db/index.ts';
import { nodes as nodesTable } from './db/schema/index.ts';
import { createNodeStore } from './store/nodes.ts';
import { createMacChanges } from './store/mac-changes.ts';
import { createBootBackend, type CachedBootBackend } from './boot-backend.ts';

const HOUR = 3_600_000;
let pg: PgCluster;
const handles: DbHandle[] = [];
const backends: CachedBootBackend[] = [];
const measured: string[] = [];

beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  for (const b of backends) b.stop();
  for (const h of handles) await h.close();
  pg?.stop();
  // eslint-disable-next-line no-console
  console.log(`MAC table across replicas: ${measured.join(', ')}`);
});

async function replicas(name: string) {
  const url = await pg.createDatabase(name);
  const a = await createDb({ url, maxConnections: 3 });
  const b = await createDb({ url, maxConnections: 3 });
  handles.push(a, b);
  return { a, b, storeA: createNodeStore(a.db) };
}

/** waits for `what` on replica B and records how long it took from `t0` */
async function seen(label: string, t0: number, check: () => Promise<boolean>) {
  await until(label, check, { limitMs: 30_000, pollMs: 5 });
  measured.push(`${label} ${Math.round(performance.now() - t0)} ms`);
}

describe('the boot backend across two replicas', () => {
  it('LISTEN/NOTIFY: a MAC registered, reserved, given a shim-grub profile, retired and deleted through A is answered accordingly by B', async () => {
    const { a, b, storeA } = await replicas('macs_notify');
    let loads = 0;
    const storeB = createNodeStore(b.db);
    const backendB = createBootBackend({
      nodes: { macTable: () => (loads++, storeB.macTable()) },
      changes: createMacChanges(b),
      refreshMs: HOUR,
      missRefreshMs: HOUR,
      pollMs: HOUR,
      bootloaderOf: (n) => (n.profile === 'secure' ? 'shim-grub' : 'ipxe'),
    });
    backends.push(backendB);
    await backendB.ready;
    const U = 'ac000000-0000-4000-8000-000000000001';
    const mac = '52:54:00:ac:00:01';
    expect(await backendB.dhcpHost(mac)).toBeNull(); // the first load: nothing known yet
    const first = loads;

    let t0 = performance.now();
    await storeA.register({ facts: sampleFacts(U, { macs: [mac, '52:54:00:ac:00:02'] }) as never, failures: [] }, 'test');
    await seen('notify: registered', t0, async () => (await backendB.dhcpHost(mac)) !== null);
    expect(await backendB.dhcpHost('52:54:00:ac:00:02')).toEqual({ mac: '52:54:00:ac:00:02', allowBoot: true });
    expect(loads).toBeGreaterThan(first);

    t0 = performance.now();
    await storeA.setLabels(U, { 'bootfarm.io/ipv4': '10.7.0.50', 'bootfarm.io/hostname': 'hv-ac' }, 'test');
    await seen('notify: reservation', t0, async () => (await backendB.dhcpHost(mac))?.ipv4 === '10.7.0.50');
    expect(await backendB.dhcpHost(mac)).toEqual({ mac, allowBoot: true, hostname: 'hv-ac', ipv4: '10.7.0.50' });

    // an explicit profile assignment (migration 0024): B hands the node shim-grub without its hourly reload
    t0 = performance.now();
    await storeA.touch(U, { profile: 'secure' });
    await seen('notify: profile', t0, async () => (await backendB.dhcpHost(mac))?.bootloader === 'shim-grub');

    t0 = performance.now();
    await storeA.transition(U, { type: 'retire' }, 'test');
    await seen('notify: retired', t0, async () => (await backendB.dhcpHost(mac))?.allowBoot === false);

    t0 = performance.now();
    await a.db.delete(nodesTable).where(eq(nodesTable.uuid, U));
    await seen('notify: deleted', t0, async () => (await backendB.dhcpHost(mac)) === null);

    // a heartbeat (lastHeartbeat, updatedAt) changes nothing DHCP answers: no reload for it
    const U2 = 'ac000000-0000-4000-8000-000000000002';
    await storeA.register({ facts: sampleFacts(U2, { macs: ['52:54:00:ac:00:03'] }) as never, failures: [] }, 'test');
    await until('B to know the second node', async () => (await backendB.dhcpHost('52:54:00:ac:00:03')) !== null, { limitMs: 30_000 });
    await backendB.refresh();
    const before = loads;
    for (let i = 0; i < 5; i++) await storeA.touch(U2, { lastHeartbeat: new Date(), lastSeen: new Date() });
    // a change that does reload, after the heartbeats: once it is seen, the heartbeats' notifications (if any) were too
    await storeA.setLabels(U2, { 'bootfarm.io/ipv4': '10.7.0.51' }, 'test');
    await until('B to see the reservation after the heartbeats', async () => (await backendB.dhcpHost('52:54:00:ac:00:03'))?.ipv4 === '10.7.0.51', { limitMs: 30_000 });
    expect(loads - before).toBeLessThanOrEqual(2);
  }, 300_000);

  it('polling alone (no LISTEN): a MAC registered through A is answered by B within the poll bound', async () => {
    const { b, storeA } = await replicas('macs_poll');
    const storeB = createNodeStore(b.db);
    const backendB = createBootBackend({ nodes: storeB, changes: createMacChanges(b), listen: false, refreshMs: HOUR, missRefreshMs: HOUR, pollMs: 200 });
    backends.push(backendB);
    const mac = '52:54:00:ad:00:01';
    expect(await backendB.dhcpHost(mac)).toBeNull();
    const t0 = performance.now();
    await storeA.register({ facts: sampleFacts('ad000000-0000-4000-8000-000000000001', { macs: [mac] }) as never, failures: [] }, 'test');
    await seen('poll (200 ms): registered', t0, async () => (await backendB.dhcpHost(mac)) !== null);
    expect(await backendB.dhcpHost(mac)).toMatchObject({ mac, allowBoot: true });
  }, 300_000);
});
