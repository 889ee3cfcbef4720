// Two DHCPv6 responders (two replicas, each with its own connection pool and store) on one real Debian PostgreSQL
// (test/harness/postgres.ts) serving one link: dhcp6_leases' key on the address and the store's claim-only upsert
// mean no address is bound to two IAs, however the replicas' in-memory tables disagree, and a restarted replica
// (a new pool, store and responder) gives every client its address back (issue 19 item 3, issue 14 item 4). The
// clients are stand-ins built from messages laid out as dhclient sends them (test/support/dhcp/fakes6.ts): what is
// under test is the store's arbitration, which real clients in namespaces would not add to.
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dhcp6ConfigSchema } from '../../boot/dhcp6/config.ts';
import { type Dhcp6ClientMessage, type Duid, innermost } from '../../boot/dhcp6/packet.ts';
import { createResponder6 } from '../../boot/dhcp6/responder.ts';
import { FixedBackend } from '../../test/support/dhcp/fakes.ts';
import { MsgType, duidLlOf, duidUuid, linkLocalOf, msg6 } from '../../test/support/dhcp/fakes6.ts';
import { type PgCluster, startPostgres } from '../../test/harness/postgres.ts';
import { type DbHandle, createDb, rowsOf } from '../db/index.ts';
import { createLease6DbStore } from './leases6.ts';

let pg: PgCluster;
const handles: DbHandle[] = [];
beforeAll(async () => {
  pg = await startPostgres();
}, 120_000);
afterAll(async () => {
  for (const h of handles) await h.close();
  pg?.stop();
});

const config = Dhcp6ConfigSchema.parse({
  enabled: true,
  interface: 'bf6s0',
  serverAddress: 'fd5b:0:0:6::1',
  httpBase: 'http://[fd5b:0:0:6::1]:8080',
  pools: [{ prefix: 'fd5b:0:0:6::/64', range: { start: 'fd5b:0:0:6::1000', end: 'fd5b:0:0:6::1fff' } }],
  preferredSeconds: 1800,
  validSeconds: 3600,
});
const SERVERS = [duidLlOf('02:bf:00:00:06:f1'), duidLlOf('02:bf:00:00:06:f2')];
const macOf = (i: number) => `02:bf:00:06:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
/** every third client sends a DUID-UUID (iPXE, EDK2): no MAC in it; the rest DUID-LL; IAIDs above 2^31 for some */
const clientOf = (i: number): { mac: string; duid: Duid; duidHex: string; iaid: number } => {
  const mac = macOf(i);
  const duid = i % 3 === 0 ? duidUuid(`6b0c1d2e3f4a5b6c7d8e${i.toString(16).padStart(12, '0')}`) : duidLlOf(mac);
  const duidHex = i % 3 === 0 ? `0004${'6b0c1d2e3f4a5b6c7d8e'}${i.toString(16).padStart(12, '0')}` : `00030001${mac.replaceAll(':', '')}`;
  return { mac, duid, duidHex, iaid: i % 2 ? 0x80000000 + i : 1 };
};
const addrOf = (m: Dhcp6ClientMessage | undefined, iaid: number) => {
  const ia = m?.options.find((o) => o.kind === 'iaNa' && o.iaid === iaid);
  const a = ia?.kind === 'iaNa' ? ia.options.find((o) => o.kind === 'iaAddr') : undefined;
  return a?.kind === 'iaAddr' && a.valid > 0 ? a.address : undefined;
};

function replica(h: DbHandle, n: number) {
  const r = createResponder6({ config, serverDuid: SERVERS[n]!, backend: new FixedBackend([]), leases: createLease6DbStore(h.db) });
  const send = async (m: Dhcp6ClientMessage, mac: string) => {
    const reply = await r.handle(m, { from: { address: linkLocalOf(mac, 'bf6s0'), port: 546 } });
    return reply ? (innermost(reply.message) ?? undefined) : undefined;
  };
  return { r, send, serverDuid: SERVERS[n]! };
}

describe('DHCPv6 across two replicas on one PostgreSQL', () => {
  it('400 clients Solicit/Request concurrently through two responders: each bound once, no address twice (SQL), and a restart gives every client its address back', async () => {
    const url = await pg.createDatabase('dhcp6ha');
    const [a, b] = await Promise.all([createDb({ url, maxConnections: 4 }), createDb({ url, maxConnections: 4 })]);
    handles.push(a, b);
    const replicas = [replica(a, 0), replica(b, 1)];
    for (const x of replicas) await x.r.load();

    // Solicit → Advertise → Request → Reply per client on its replica; an IA answered NoAddrsAvail (the other replica
    // bound the advertised address first) starts over with a Solicit, as RFC 8415 §18.2.10.1 lets a client do
    const N = 400;
    const bind = async (i: number): Promise<{ i: number; address: string; retries: number }> => {
      const c = clientOf(i);
      const x = replicas[i % 2]!;
      for (let retries = 0; retries < 50; retries++) {
        const adv = await x.send(msg6({ type: MsgType.SOLICIT, duid: c.duid, xid: i, ias: [{ iaid: c.iaid }] }), c.mac);
        const offered = addrOf(adv, c.iaid);
        if (!offered) throw new Error(`client ${i}: no address advertised`);
        const rep = await x.send(msg6({ type: MsgType.REQUEST, duid: c.duid, xid: i, serverDuid: x.serverDuid, ias: [{ iaid: c.iaid, addrs: [offered] }] }), c.mac);
        if (rep?.type !== MsgType.REPLY) throw new Error(`client ${i}: no Reply to its Request`);
        const address = addrOf(rep, c.iaid);
        if (address) return { i, address, retries };
      }
      throw new Error(`client ${i}: 50 NoAddrsAvail in a row`);
    };
    const t0 = performance.now();
    const got = await Promise.all(Array.from({ length: N }, (_, i) => bind(i)));
    const ms = performance.now() - t0;

    expect(new Set(got.map((g) => g.address)).size).toBe(N);
    // both replicas advertised the same low addresses at first: the store refused the later claims, and every
    // refusal is one retry
    const taken = replicas.reduce((n, x) => n + x.r.stats.takenByPeer, 0);
    expect(taken).toBeGreaterThan(0);
    expect(got.reduce((n, g) => n + g.retries, 0)).toBe(taken);
    console.log(`${N} clients bound through 2 replicas in ${Math.round(ms)} ms; ${taken} claims refused by the store and retried`);

    // in the database: no address held by two IAs, no IA holding two addresses, and exactly what the clients were told
    const twice = rowsOf(await a.db.execute(sql`select address from dhcp6_leases where state = 'bound' and expires_at > now() group by address having count(distinct (duid, iaid)) > 1`));
    expect(twice).toEqual([]);
    const doubled = rowsOf(await a.db.execute(sql`select duid, iaid from dhcp6_leases where state = 'bound' group by duid, iaid having count(*) > 1`));
    expect(doubled).toEqual([]);
    const rows = rowsOf<{ address: string; duid: string; iaid: string | number }>(await a.db.execute(sql`select address, duid, iaid from dhcp6_leases where state = 'bound' and expires_at > now()`));
    expect(new Map(rows.map((r) => [r.address, `${r.duid}/${Number(r.iaid)}`]))).toEqual(new Map(got.map((g) => [g.address, `${clientOf(g.i).duidHex}/${clientOf(g.i).iaid}`])));

    // a restart: a new pool, store and responder (replica 0's DUID); load() reads the bindings, every client's
    // Solicit is advertised its address, whichever replica bound it, and a new client gets an address nobody holds
    const c2 = await createDb({ url, maxConnections: 2 });
    handles.push(c2);
    const restarted = replica(c2, 0);
    expect(await restarted.r.load()).toBe(N);
    for (const g of got) {
      const c = clientOf(g.i);
      expect(addrOf(await restarted.send(msg6({ type: MsgType.SOLICIT, duid: c.duid, ias: [{ iaid: c.iaid }] }), c.mac), c.iaid), `client ${g.i}`).toBe(g.address);
    }
    const fresh = clientOf(N + 1);
    const rep = await restarted.send(msg6({ type: MsgType.SOLICIT, duid: fresh.duid, rapidCommit: true, ias: [{ iaid: fresh.iaid }] }), fresh.mac);
    const newAddress = addrOf(rep, fresh.iaid);
    expect(newAddress).toBeDefined();
    expect(got.map((g) => g.address)).not.toContain(newAddress);
  }, 180_000);

  it('the store alone: 16 claims on one address from two pools at once, 50 rounds: exactly one wins each round, the rest get that winner back', async () => {
    const url = await pg.createDatabase('dhcp6race');
    const [a, b] = await Promise.all([createDb({ url, maxConnections: 8 }), createDb({ url, maxConnections: 8 })]);
    handles.push(a, b);
    const stores = [createLease6DbStore(a.db), createLease6DbStore(b.db)];
    for (let round = 0; round < 50; round++) {
      const address = `fd5b:0:0:6::${(0x2000 + round).toString(16)}`;
      const claim = (k: number) => ({ address, duid: `00030001${macOf(k).replaceAll(':', '')}`, iaid: 1, state: 'bound' as const, expiresAt: new Date(Date.now() + 3_600_000), pool: 'fd5b:0:0:6::/64' });
      const results = await Promise.all(Array.from({ length: 16 }, (_, k) => stores[k % 2]!.saveMany([claim(k)])));
      const winners = results.flatMap((r, k) => (r.length === 0 ? [k] : []));
      expect(winners, `round ${round}`).toHaveLength(1);
      const holder = claim(winners[0]!).duid;
      for (const r of results) if (r.length) expect(r.map((l) => l.duid)).toEqual([holder]);
    }
  }, 120_000);
});
