// Bulk enrollment and node delete on a real Debian PostgreSQL (postgres.js binds and returns values differently
// from PGlite: counts, timestamps, arrays), through the store the API uses.
import { afterAll, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { createDb, type DbHandle } from '../db/index.ts';
import { auditLog, dhcp6Leases, dhcpLeases, interfaces } from '../db/schema/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { FakeClock } from '../clock.ts';
import { createSecrets } from '../secrets.ts';
import { parseInventory } from '../domain/inventory.ts';
import { createBmcStore } from './bmcs.ts';
import { createInventoryStore } from './inventory.ts';
import { createNodeStore } from './nodes.ts';

let pg: PgCluster | undefined;
let h: DbHandle | undefined;
afterAll(async () => {
  await h?.close();
  pg?.stop();
});

it('enrolls an inventory in one transaction and deletes a node with its leases and BMC on PostgreSQL', async () => {
  pg = await startPostgres();
  h = await createDb({ url: await pg.createDatabase('inventory'), maxConnections: 2 });
  const clock = new FakeClock('2026-12-02T00:00:00Z');
  const bmcs = createBmcStore(h.db, createSecrets(Buffer.alloc(32, 3)), { clock });
  const nodes = createNodeStore(h.db, { clock });
  const inv = createInventoryStore(h.db, { clock, seal: bmcs.seal });
  const u = (n: number) => `2e7e0000-0000-4000-8000-00000000000${n}`;
  const parsed = parseInventory('csv', `uuid,macs,bmc_address,bmc_username,bmc_password,labels\n${u(1)},52:54:00:ee:00:01,10.8.0.1,admin,pw1,rack=r1\n${u(2)},52:54:00:ee:00:02;52:54:00:ee:00:03,,,,\n`);
  expect(parsed.errors).toEqual([]);
  expect(await inv.clashes(parsed.rows)).toEqual([]);
  expect(await inv.enroll(parsed.rows, 'api:admin')).toEqual({ enrolled: [u(1), u(2)] });
  expect(await inv.clashes(parsed.rows)).toHaveLength(6); // two nodes, three MACs and a BMC, now all someone's
  expect((await bmcs.getCredentials(u(1)))?.password).toBe('pw1');
  expect((await nodes.require(u(1))).labels).toEqual({ rack: 'r1' });

  await h.db.insert(dhcpLeases).values({ ip: '10.6.1.2', mac: '52:54:00:ee:00:02', state: 'bound', expiresAt: new Date('2030-01-01T00:00:00Z'), pool: 'p' });
  // DHCPv6: one lease of its MAC goes with it; one whose client revealed no MAC (DUID-UUID) and another node's stay
  await h.db.insert(dhcp6Leases).values([
    { address: 'fd5b::12', duid: '00030001525400ee0003', iaid: 1, mac: '52:54:00:ee:00:03', state: 'bound', expiresAt: new Date('2030-01-01T00:00:00Z'), pool: 'p6' },
    { address: 'fd5b::13', duid: '0004aabbccdd', iaid: 1, mac: null, state: 'bound', expiresAt: new Date('2030-01-01T00:00:00Z'), pool: 'p6' },
    { address: 'fd5b::11', duid: '00030001525400ee0001', iaid: 1, mac: '52:54:00:ee:00:01', state: 'bound', expiresAt: new Date('2030-01-01T00:00:00Z'), pool: 'p6' },
  ]);
  const r = await inv.deleteNode(u(2), { force: false, actor: 'api:admin' });
  expect(r).toEqual({ uuid: u(2), state: 'discovered', removed: { interfaces: 2, leases: 2, bootAttempts: 0, facts: 0, events: 1, bmc: false, conflictsClosed: 0 } });
  expect((await h.db.select({ a: dhcp6Leases.address }).from(dhcp6Leases)).map((x) => x.a).sort()).toEqual(['fd5b::11', 'fd5b::13']);
  expect(await h.db.select().from(interfaces).where(eq(interfaces.nodeUuid, u(2)))).toEqual([]);
  expect(await h.db.select().from(dhcpLeases)).toEqual([]);
  expect((await h.db.select().from(auditLog)).map((a) => [a.action, a.target])).toEqual([
    ['nodes.enroll', 'nodes:2'],
    ['node.delete', `node:${u(2)}`],
  ]);
}, 180_000);
