// The drizzle Lease6Store on embedded PGlite: the claim rule row by row (bind, renew, release, decline, expiry, a
// second client refused), and DHCPv6 responders on it: a restart keeps bindings, and two responders sharing it
// (two replicas' tables that disagree) never leave two clients believing they hold one address.
// leases6.replicas.pg.test.ts runs the concurrent case on a real PostgreSQL.
import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dhcp6ConfigSchema, ip6ToBig } from '../../boot/dhcp6/config.ts';
import type { Lease6 } from '../../boot/dhcp6/leases.ts';
import { type Dhcp6ClientMessage, type Duid, innermost } from '../../boot/dhcp6/packet.ts';
import { type Reply6, createResponder6 } from '../../boot/dhcp6/responder.ts';
import { FixedBackend, fakeClock, recordingLogger } from '../../test/support/dhcp/fakes.ts';
import { HeldAddresses, MsgType, OP6_TYPE, duidLlOf, iaAddrs, linkLocalOf, msg6 } from '../../test/support/dhcp/fakes6.ts';
import { type DbHandle, createDb } from '../db/index.ts';
import { createLease6DbStore } from './leases6.ts';

const HOUR = 3_600_000;
const A = '0003000102bf00000a01';
const B = '0003000102bf00000a02';
/** expiries relative to the real clock: the store judges "expired" by the database's now() */
const lease = (address: string, duid: string, over: Partial<Lease6> = {}): Lease6 => ({
  address,
  duid,
  iaid: 1,
  state: 'bound',
  expiresAt: new Date(Math.floor((Date.now() + HOUR) / 1000) * 1000),
  pool: 'fd5b:0:0:1::/64',
  ...over,
});

let h: DbHandle;
beforeAll(async () => {
  h = await createDb({ dataDir: 'memory://' });
});
afterAll(async () => {
  await h?.close();
});
beforeEach(async () => {
  await h.db.execute(sql`truncate dhcp6_leases`);
});
const row = async (address: string) => (await createLease6DbStore(h.db).loadAll()).find((l) => l.address === address);

describe('the claim rule, row by row', () => {
  it('bind: saved and loaded back as given (no MAC for a DUID-UUID client, an IAID above 2^31)', async () => {
    const store = createLease6DbStore(h.db);
    const l1 = lease('fd5b:0:0:1::100', A, { mac: '02:bf:00:00:0a:01' });
    const l2 = lease('fd5b:0:0:1::101', '00040123456789abcdef0123456789abcdef', { iaid: 0xffffffff });
    expect(await store.saveMany([l1, l2])).toEqual([]);
    expect((await store.loadAll()).sort((x, y) => x.address.localeCompare(y.address))).toEqual([l1, l2]);
  });

  it('renew: the same IA extends its row', async () => {
    const store = createLease6DbStore(h.db);
    await store.saveMany([lease('fd5b:0:0:1::100', A)]);
    const later = new Date(Math.floor((Date.now() + 2 * HOUR) / 1000) * 1000);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', A, { expiresAt: later })])).toEqual([]);
    expect((await row('fd5b:0:0:1::100'))?.expiresAt).toEqual(later);
  });

  it("a second client is refused an address bound to the first, and told the holder; so is the same DUID's other IA", async () => {
    const store = createLease6DbStore(h.db);
    const first = lease('fd5b:0:0:1::100', A, { mac: '02:bf:00:00:0a:01' });
    await store.saveMany([first]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', B), lease('fd5b:0:0:1::101', B)])).toEqual([first]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', A, { iaid: 2 })])).toEqual([first]);
    expect(await row('fd5b:0:0:1::100')).toEqual(first);
    // the batch's other address was free: written
    expect((await row('fd5b:0:0:1::101'))?.duid).toBe(B);
  });

  it("release: the holder's release is written and the address may then be bound by another client", async () => {
    const store = createLease6DbStore(h.db);
    await store.saveMany([lease('fd5b:0:0:1::100', A)]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', A, { state: 'released', expiresAt: new Date() })])).toEqual([]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', B)])).toEqual([]);
    expect((await row('fd5b:0:0:1::100'))?.duid).toBe(B);
  });

  it("a release from another IA (a replica's stale table) is refused: it would free B's live binding for a third client", async () => {
    const store = createLease6DbStore(h.db);
    const held = lease('fd5b:0:0:1::100', B);
    await store.saveMany([held]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', A, { state: 'released', expiresAt: new Date() })])).toEqual([held]);
    expect(await row('fd5b:0:0:1::100')).toEqual(held);
  });

  it('decline: written over the binding, then nobody may bind the address until the decline expires', async () => {
    const store = createLease6DbStore(h.db);
    await store.saveMany([lease('fd5b:0:0:1::100', A)]);
    const declined = lease('fd5b:0:0:1::100', '', { state: 'declined' });
    expect(await store.saveMany([declined])).toEqual([]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', A)])).toEqual([declined]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', B)])).toEqual([declined]);
    await store.saveMany([{ ...declined, expiresAt: new Date(Date.now() - 1000) }]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', B)])).toEqual([]);
  });

  it("expiry: a lapsed binding (by the database's clock) is taken by another client; purgeExpired deletes what lapsed before a date", async () => {
    const store = createLease6DbStore(h.db);
    await store.saveMany([lease('fd5b:0:0:1::100', A, { expiresAt: new Date(Date.now() - 1000) }), lease('fd5b:0:0:1::101', A, { iaid: 2, expiresAt: new Date('2020-01-01T00:00:00Z') })]);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', B)])).toEqual([]);
    expect(await store.purgeExpired(new Date('2021-01-01T00:00:00Z'))).toBe(1);
    expect((await store.loadAll()).map((l) => [l.address, l.duid])).toEqual([['fd5b:0:0:1::100', B]]);
  });

  it('a batch naming one address twice: the last wins (one statement may not touch a row twice)', async () => {
    const store = createLease6DbStore(h.db);
    expect(await store.saveMany([lease('fd5b:0:0:1::100', A), lease('fd5b:0:0:1::100', A, { state: 'released' })])).toEqual([]);
    expect((await row('fd5b:0:0:1::100'))?.state).toBe('released');
  });
});

// ---------------------------------------------------------------- responders on the store
const SERVER_1 = duidLlOf('02:bf:00:00:00:f1');
const SERVER_2 = duidLlOf('02:bf:00:00:00:f2');
const config = (range: { start: string; end: string }) =>
  Dhcp6ConfigSchema.parse({ enabled: true, interface: 'bf6s0', serverAddress: 'fd5b:0:0:1::1', httpBase: 'http://[fd5b:0:0:1::1]:8080', pools: [{ prefix: 'fd5b:0:0:1::/64', range }], preferredSeconds: 1800, validSeconds: 3600, declineSeconds: 60 });
const macOf = (i: number) => `02:bf:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const clientOf = (reply: Reply6 | null): Dhcp6ClientMessage => {
  const m = reply && innermost(reply.message);
  if (!m) throw new Error('no reply');
  return m;
};

/** A responder ("replica") on its own store instance over the shared database; the clock starts at the real time. */
function replica(serverDuid: Duid, range = { start: 'fd5b:0:0:1::100', end: 'fd5b:0:0:1::1ff' }, clock = fakeClock(Date.now())) {
  const { logger, lines } = recordingLogger();
  const r = createResponder6({ config: config(range), serverDuid, backend: new FixedBackend([]), leases: createLease6DbStore(h.db), logger, clock: clock.now });
  return { r, lines, clock, serverDuid };
}
const send = (rep: ReturnType<typeof replica>, m: Dhcp6ClientMessage, mac: string) => rep.r.handle(m, { from: { address: linkLocalOf(mac, 'bf6s0'), port: 546 } });

describe('responders on the store', () => {
  it('Solicit/Request binds into dhcp6_leases; a restarted responder (new store) gives the client the same address and another client a different one', async () => {
    const first = replica(SERVER_1);
    await first.r.load();
    const mac = macOf(1);
    const duid = duidLlOf(mac);
    const offered = iaAddrs(clientOf(await send(first, msg6({ type: MsgType.SOLICIT, duid, ias: [{ iaid: 7 }] }), mac)))[0]!.address;
    const bound = iaAddrs(clientOf(await send(first, msg6({ type: MsgType.REQUEST, duid, serverDuid: SERVER_1, ias: [{ iaid: 7, addrs: [offered] }] }), mac)));
    expect(bound[0]).toMatchObject({ address: offered, valid: 3600 });
    expect(await row(offered)).toMatchObject({ duid: `00030001${mac.replaceAll(':', '')}`, iaid: 7, mac, state: 'bound' });

    const restarted = replica(SERVER_1);
    expect(await restarted.r.load()).toBe(1);
    const other = macOf(2);
    expect(iaAddrs(clientOf(await send(restarted, msg6({ type: MsgType.SOLICIT, duid: duidLlOf(other), ias: [{ iaid: 7 }] }), other)))[0]!.address).not.toBe(offered);
    expect(iaAddrs(clientOf(await send(restarted, msg6({ type: MsgType.SOLICIT, duid, ias: [{ iaid: 7 }] }), mac)))[0]!.address).toBe(offered);
  });

  it("a Release from a replica whose table still shows the sender's lapsed lease: refused, the holder learned, its address not offered", async () => {
    const range = { start: 'fd5b:0:0:1::100', end: 'fd5b:0:0:1::101' };
    // replica 1's clock runs two hours behind the database's: A's one-hour lease there has already lapsed in the table
    const one = replica(SERVER_1, range, fakeClock(Date.now() - 2 * HOUR));
    const two = replica(SERVER_2, range);
    const [ma, mb, mc] = [macOf(10), macOf(11), macOf(12)];
    const a = iaAddrs(clientOf(await send(one, msg6({ type: MsgType.SOLICIT, duid: duidLlOf(ma), rapidCommit: true, ias: [{ iaid: 1 }] }), ma)))[0]!.address;
    const b = iaAddrs(clientOf(await send(two, msg6({ type: MsgType.SOLICIT, duid: duidLlOf(mb), rapidCommit: true, ias: [{ iaid: 1 }] }), mb)))[0]!.address;
    expect(b).toBe(a);
    await send(one, msg6({ type: MsgType.RELEASE, duid: duidLlOf(ma), serverDuid: SERVER_1, ias: [{ iaid: 1, addrs: [a] }] }), ma);
    expect(await row(a)).toMatchObject({ duid: `00030001${mb.replaceAll(':', '')}`, state: 'bound' });
    expect(one.r.table.get(ip6ToBig(a))?.duid).toBe(`00030001${mb.replaceAll(':', '')}`);
    const c = iaAddrs(clientOf(await send(one, msg6({ type: MsgType.SOLICIT, duid: duidLlOf(mc), ias: [{ iaid: 1 }] }), mc)))[0]?.address;
    expect(c).toBe('fd5b:0:0:1::101');
  });
});

describe('property: random exchanges through two replicas sharing the store', () => {
  const duids = [0, 1, 2, 3, 4].map((i) => duidLlOf(macOf(0x300 + i)));
  const op = fc.record({
    at: fc.integer({ min: 0, max: 1 }),
    who: fc.integer({ min: 0, max: 4 }),
    iaid: fc.integer({ min: 1, max: 2 }),
    kind: fc.constantFrom('solicit', 'rapid', 'request', 'renew', 'rebind', 'release', 'decline'),
    advance: fc.integer({ min: 0, max: 600 }),
  });

  it('no address is ever believed held by two IAs at once, whatever each replica table says; no errors logged', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        await h.db.execute(sql`truncate dhcp6_leases`);
        // one clock for both replicas and the clients; it starts at the real time and only moves forward, so a
        // lease the clients think lapsed may still be live in the database (refused: safe), never the reverse
        const clock = fakeClock(Date.now());
        const range = { start: 'fd5b:0:0:1::100', end: 'fd5b:0:0:1::103' };
        const reps = [replica(SERVER_1, range, clock), replica(SERVER_2, range, clock)];
        const held = new HeldAddresses();
        /** which replica each client last got an Advertise or Reply from: its Request, Renew, Release go there */
        const serverOf = new Map<number, number>();
        for (const o of ops) {
          clock.advance(o.advance * 1000);
          const key = `${o.who}/${o.iaid}`;
          const mine = held.mine(key);
          const named = ['request', 'renew', 'release', 'decline'].includes(o.kind);
          const at = named ? (serverOf.get(o.who) ?? o.at) : o.at;
          const type = OP6_TYPE[o.kind];
          const mac = macOf(0x300 + o.who);
          const reply = await send(reps[at]!, msg6({ type, duid: duids[o.who], serverDuid: named ? reps[at]!.serverDuid : undefined, rapidCommit: o.kind === 'rapid', ias: [{ iaid: o.iaid, addrs: mine ? [mine] : [] }] }), mac);
          if (reply) serverOf.set(o.who, at);
          held.record(key, o.kind, reply, clock.now());
          const live = held.live(clock.now());
          expect(new Set(live).size, JSON.stringify([...held.held])).toBe(live.length);
        }
        expect(reps.flatMap((r) => r.lines.filter((l) => l.level === 'error'))).toEqual([]);
      }),
      { numRuns: 60 },
    );
  }, 120_000);
});
