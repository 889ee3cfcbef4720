// Two replicas (each its own connection pool) allocating on one real PostgreSQL (test/harness/postgres.ts) at
// once: both read the same rows, choose the same first free address, and only the unique constraints decide. Every
// node gets one address, none twice, and the loser's retry inside its own transaction is what makes it work
// (PGlite is one connection and serialises everything, so it cannot show this).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../db/index.ts';
import { interfaces, nodes } from '../db/schema/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { createIpamStore } from './ipam.ts';

const uuidOf = (i: number) => `1ba40000-0000-4000-8000-${String(i).padStart(12, '0')}`;

let pg: PgCluster;
const handles: DbHandle[] = [];
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  for (const h of handles) await h.close();
  pg?.stop();
});

describe('IPAM across two replicas on one PostgreSQL', () => {
  it('120 node interfaces allocated concurrently through two replicas, each twice: one address each, none twice, the same on the repeat', async () => {
    const url = await pg.createDatabase('ipamha');
    const [a, b] = await Promise.all([createDb({ url, maxConnections: 6 }), createDb({ url, maxConnections: 6 })]);
    handles.push(a, b);
    const replicas = [createIpamStore(a.db), createIpamStore(b.db)];
    await a.db.insert(nodes).values(Array.from({ length: 60 }, (_, i) => ({ uuid: uuidOf(i), state: 'ready' })));
    await a.db.insert(interfaces).values(Array.from({ length: 60 }, (_, i) => ({ mac: `52:54:00:1b:00:${i.toString(16).padStart(2, '0')}`, nodeUuid: uuidOf(i) })));
    await replicas[0]!.putNetwork({ name: 'prov', cidr: 'fd00:1b::/64', gateway: 'fd00:1b::1', dns: [], poolStart: 'fd00:1b::10', poolEnd: 'fd00:1b::200', vlan: null });

    // every (node, interface) asked for by both replicas at the same moment: a rebuild racing an agent retry
    const asks = Array.from({ length: 120 }, (_, i) => ({ node: uuidOf(i % 60), iface: i < 60 ? 'bond0' : 'storage' }));
    const got = await Promise.all(asks.flatMap((q) => replicas.map((r) => r.allocate('prov', q.node, q.iface).then((x) => ({ ...q, address: x.row.address, created: x.created })))));

    const byKey = new Map<string, Set<string>>();
    for (const g of got) (byKey.get(`${g.node}/${g.iface}`) ?? byKey.set(`${g.node}/${g.iface}`, new Set()).get(`${g.node}/${g.iface}`)!).add(g.address);
    // both replicas answered the same address for each key
    expect([...byKey.values()].every((s) => s.size === 1)).toBe(true);
    // the replicas did collide, and the constraints settled it
    expect(replicas[0]!.stats.lostRaces + replicas[1]!.stats.lostRaces).toBeGreaterThan(0);
    // exactly one of the two created it
    expect(got.filter((g) => g.created)).toHaveLength(120);
    const rows = await replicas[1]!.allocations({ network: 'prov' });
    expect(rows).toHaveLength(120);
    expect(new Set(rows.map((r) => r.address)).size).toBe(120);
    // the pool's first 120 addresses after the gateway, no hole: losers moved on to the next free one
    expect(rows.map((r) => r.address)).toEqual(Array.from({ length: 120 }, (_, i) => `fd00:1b::${(0x10 + i).toString(16)}`));

    // a rebuild of all of them at once: nothing moves
    const again = await Promise.all(asks.map((q, i) => replicas[i % 2]!.allocate('prov', q.node, q.iface)));
    expect(again.every((x) => !x.created)).toBe(true);
    expect(new Map(again.map((x) => [`${x.row.nodeUuid}/${x.row.interface}`, x.row.address]))).toEqual(new Map(rows.map((r) => [`${r.nodeUuid}/${r.interface}`, r.address])));
  }, 120_000);
});
