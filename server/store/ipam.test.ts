// The IPAM store on PGlite (test/fakes/db.ts): allocation through the real unique constraints, stable across
// rebuilds (property: a random set of nodes and interfaces allocated, then allocated again), exhaustion naming the
// network, MAC reservations claimed at the node's first allocation, DECLINE marking a conflict and handing out
// another address, and network edits refused while they would strand an address. The concurrent case across two
// replicas on real PostgreSQL is in ipam.replicas.pg.test.ts.
import fc from 'fast-check';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb } from '../../test/fakes/db.ts';
import type { DbHandle } from '../db/index.ts';
import { interfaces, nodes } from '../db/schema/index.ts';
import { PoolExhaustedError, type NetworkSpec } from '../domain/ipam.ts';
import { FakeClock } from '../clock.ts';
import { createIpamStore } from './ipam.ts';

const uuidOf = (i: number) => `1ba40000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const macOf = (i: number, k = 0) => `52:54:00:1b:${k.toString(16).padStart(2, '0')}:${i.toString(16).padStart(2, '0')}`;
const spec = (over: Partial<NetworkSpec>): NetworkSpec => ({ name: 'prov', cidr: '10.20.0.0/24', gateway: '10.20.0.1', dns: ['10.20.0.53'], poolStart: null, poolEnd: null, vlan: null, ...over });

async function addNodes(db: DbHandle, count: number) {
  await db.db.insert(nodes).values(Array.from({ length: count }, (_, i) => ({ uuid: uuidOf(i), state: 'ready' })));
  await db.db.insert(interfaces).values(Array.from({ length: count }, (_, i) => ({ mac: macOf(i), nodeUuid: uuidOf(i), name: 'eno1' })));
}

let db: DbHandle;
let ipam: ReturnType<typeof createIpamStore>;
beforeAll(async () => {
  db = await createTestDb();
  ipam = createIpamStore(db.db, { clock: new FakeClock() });
  await addNodes(db, 40);
});
afterAll(async () => db?.close());

describe('allocation', () => {
  it('hands out the first free address, the same one again on a rebuild, and a clear error when the pool is full', async () => {
    await ipam.putNetwork(spec({ name: 'small', cidr: '10.30.0.0/29', gateway: '10.30.0.1' }));
    // /29 without network and broadcast is .1 – .6; the gateway .1 is never handed out
    const got = [];
    for (let i = 0; i < 5; i++) got.push((await ipam.allocate('small', uuidOf(i), 'bond0')).row.address);
    expect(got).toEqual(['10.30.0.2', '10.30.0.3', '10.30.0.4', '10.30.0.5', '10.30.0.6']);
    const again = await ipam.allocate('small', uuidOf(3), 'bond0');
    expect(again).toMatchObject({ created: false, row: { address: '10.30.0.5' } });
    const full = ipam.allocate('small', uuidOf(9), 'bond0');
    await expect(full).rejects.toThrow(PoolExhaustedError);
    await expect(ipam.allocate('small', uuidOf(9), 'bond0')).rejects.toThrow('network small has no free address: all 5 addresses of its pool 10.30.0.1-10.30.0.6 are allocated, reserved or in conflict');
    // a node that already holds one still gets it with the pool full
    expect((await ipam.allocate('small', uuidOf(0), 'bond0')).row.address).toBe('10.30.0.2');
    expect((await ipam.getNetwork('small')).usage).toMatchObject({ size: 5n, used: 5n, free: 0n, allocated: 5 });
  });

  it('property: any set of nodes and interfaces, allocated and then rebuilt in another order, keeps every address, none twice (IPv6)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.record({ node: fc.integer({ min: 0, max: 39 }), iface: fc.constantFrom('bond0', 'storage') }), { selector: (r) => `${r.node}/${r.iface}`, maxLength: 30 }), async (reqs) => {
        const name = `v6-${Math.random().toString(36).slice(2, 8)}`;
        await ipam.putNetwork(spec({ name, cidr: 'fd00:1b::/64', gateway: 'fd00:1b::1', dns: [], poolStart: 'fd00:1b::fff0', poolEnd: 'fd00:1b::1:20' }));
        const first = new Map<string, string>();
        for (const r of reqs) first.set(`${r.node}/${r.iface}`, (await ipam.allocate(name, uuidOf(r.node), r.iface)).row.address);
        expect(new Set(first.values()).size).toBe(reqs.length);
        for (const r of [...reqs].reverse()) expect((await ipam.allocate(name, uuidOf(r.node), r.iface)).row.address).toBe(first.get(`${r.node}/${r.iface}`));
        const rows = await ipam.allocations({ network: name });
        expect(rows).toHaveLength(reqs.length);
        await ipam.deleteNetwork(name, { force: true });
      }),
      { numRuns: 15 },
    );
  });

  it('the database refuses a second holder of an address, whatever the caller does', async () => {
    await ipam.putNetwork(spec({ name: 'uq' }));
    await ipam.allocate('uq', uuidOf(1), 'bond0');
    await expect(db.db.execute(sql`insert into allocations (network, node_uuid, interface, address) values ('uq', ${uuidOf(2)}, 'bond0', '10.20.0.2')`)).rejects.toThrow();
    await expect(db.db.execute(sql`insert into allocations (network, node_uuid, interface, address) values ('uq', ${uuidOf(1)}, 'bond0', '10.20.0.99')`)).rejects.toThrow();
  });
});

describe('reservations, release and conflicts', () => {
  it('a MAC reservation is kept out of the pool and claimed by the node with that MAC', async () => {
    await ipam.putNetwork(spec({ name: 'res', poolStart: '10.20.0.10', poolEnd: '10.20.0.20' }));
    const r = await ipam.reserve({ network: 'res', address: '10.20.0.10', mac: macOf(7).toUpperCase() });
    expect(r.row).toMatchObject({ nodeUuid: null, mac: macOf(7), reserved: true });
    expect((await ipam.allocate('res', uuidOf(1), 'bond0')).row.address).toBe('10.20.0.11');
    expect((await ipam.allocate('res', uuidOf(7), 'bond0')).row).toMatchObject({ address: '10.20.0.10', nodeUuid: uuidOf(7), interface: 'bond0', reserved: true });
    // outside the pool is fine for a reservation; a node's pin replaces the address it held
    const pin = await ipam.reserve({ network: 'res', address: '10.20.0.200', nodeUuid: uuidOf(1), interface: 'bond0' });
    expect(pin.replaced).toBe('10.20.0.11');
    expect((await ipam.allocate('res', uuidOf(1), 'bond0')).row.address).toBe('10.20.0.200');
  });

  it('a MAC reservation for a node that already holds a pool address moves it there at its next allocation', async () => {
    // .11 is free again: node 1's pin above moved it to .200
    expect((await ipam.allocate('res', uuidOf(8), 'bond0')).row.address).toBe('10.20.0.11');
    await ipam.reserve({ network: 'res', address: '10.20.0.150', mac: macOf(8) });
    expect((await ipam.allocate('res', uuidOf(8), 'bond0')).row).toMatchObject({ address: '10.20.0.150', reserved: true, nodeUuid: uuidOf(8) });
    expect((await ipam.allocations({ node: uuidOf(8) })).map((r) => r.address)).toEqual(['10.20.0.150']);
    expect((await ipam.allocate('res', uuidOf(9), 'bond0')).row.address).toBe('10.20.0.11');
  });

  it('refuses a reservation of a held address (409) or of no address of the network (400), naming it', async () => {
    await expect(ipam.reserve({ network: 'res', address: '10.20.0.200', nodeUuid: uuidOf(2) })).rejects.toMatchObject({ status: 409, message: `10.20.0.200 on network res is held by node ${uuidOf(1)} (bond0)` });
    await expect(ipam.reserve({ network: 'res', address: '10.99.0.1', nodeUuid: uuidOf(2) })).rejects.toMatchObject({ status: 400, message: '10.99.0.1 is not inside network res (10.20.0.0/24)' });
    await expect(ipam.reserve({ network: 'nope', address: '10.20.0.5', nodeUuid: uuidOf(2) })).rejects.toMatchObject({ status: 404, message: 'network nope not found' });
    await expect(ipam.reserve({ network: 'res', address: '10.20.0.5', nodeUuid: '1ba40000-0000-4000-8000-999999999999' })).rejects.toMatchObject({ status: 404 });
  });

  it('DECLINE marks the address conflict, keeps it out of the pool, and gives the node another; release frees it', async () => {
    await ipam.putNetwork(spec({ name: 'dec', poolStart: '10.20.0.10', poolEnd: '10.20.0.12' }));
    expect((await ipam.allocate('dec', uuidOf(1), 'bond0')).row.address).toBe('10.20.0.10');
    const d = await ipam.decline(uuidOf(1), '10.20.0.10', { reason: 'arp probe: answered by 52:54:00:ff:ff:ff' });
    expect(d.declined).toMatchObject({ state: 'conflict', nodeUuid: null, address: '10.20.0.10' });
    expect(d.declined.note).toContain(`declined by node ${uuidOf(1)} (bond0): arp probe`);
    expect(d.replacement.row).toMatchObject({ address: '10.20.0.11', nodeUuid: uuidOf(1), interface: 'bond0' });
    expect((await ipam.allocate('dec', uuidOf(2), 'bond0')).row.address).toBe('10.20.0.12');
    await expect(ipam.allocate('dec', uuidOf(3), 'bond0')).rejects.toThrow(/network dec has no free address/);
    await expect(ipam.decline(uuidOf(2), '10.20.0.11', { reason: 'x' })).rejects.toMatchObject({ status: 404 });
    await ipam.release('dec', '10.20.0.10');
    expect((await ipam.allocate('dec', uuidOf(3), 'bond0')).row.address).toBe('10.20.0.10');
  });

  it('refuses network edits that strand an address, and a delete of a network in use unless forced', async () => {
    await ipam.putNetwork(spec({ name: 'edit' }));
    await ipam.allocate('edit', uuidOf(1), 'bond0');
    await expect(ipam.putNetwork(spec({ name: 'edit', cidr: '10.21.0.0/24', gateway: null }))).rejects.toMatchObject({ status: 409, message: expect.stringContaining('1 address(es) held outside the new 10.21.0.0/24 (10.20.0.2)') });
    await expect(ipam.putNetwork(spec({ name: 'edit', gateway: '10.20.0.2' }))).rejects.toMatchObject({ status: 409, message: expect.stringContaining(`the new gateway 10.20.0.2 is held by node ${uuidOf(1)}`) });
    // a wider network and a narrower pool are fine: the node keeps its address
    expect((await ipam.putNetwork(spec({ name: 'edit', cidr: '10.20.0.0/23', poolStart: '10.20.1.0', poolEnd: '10.20.1.9' }))).created).toBe(false);
    expect((await ipam.allocate('edit', uuidOf(1), 'bond0')).row.address).toBe('10.20.0.2');
    expect((await ipam.allocate('edit', uuidOf(2), 'bond0')).row.address).toBe('10.20.1.0');
    await expect(ipam.deleteNetwork('edit')).rejects.toMatchObject({ status: 409, message: 'network edit holds 2 address(es) (allocated, reserved or in conflict); release them or delete with force' });
    expect(await ipam.deleteNetwork('edit', { force: true })).toEqual({ allocations: 2 });
    expect(await ipam.allocations({ network: 'edit' })).toEqual([]);
  });

  it('a deleted node frees its addresses', async () => {
    await ipam.putNetwork(spec({ name: 'gone' }));
    await ipam.allocate('gone', uuidOf(39), 'bond0');
    await db.db.delete(nodes).where(sql`uuid = ${uuidOf(39)}`);
    expect(await ipam.allocations({ network: 'gone' })).toEqual([]);
  });
});
