// The drizzle LeaseStore against embedded PGlite and a real Debian PostgreSQL, and the DHCP responder
// running on it (the wiring server/main.ts will do).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DhcpConfigSchema } from '../../boot/dhcp/config.ts';
import type { Lease } from '../../boot/dhcp/leases.ts';
import { MessageType } from '../../boot/dhcp/packet.ts';
import { createResponder } from '../../boot/dhcp/responder.ts';
import { FixedBackend, request } from '../../test/support/dhcp/fakes.ts';
import { type DbHandle, createDb } from '../db/index.ts';
import { type PgCluster, startPostgres } from '../../test/harness/postgres.ts';
import { createLeaseDbStore } from './leases.ts';

const lease = (ip: string, mac: string, over: Partial<Lease> = {}): Lease => ({
  ip,
  mac,
  state: 'bound',
  expiresAt: new Date('2027-01-01T00:00:00Z'),
  pool: '10.0.0.0/24',
  ...over,
});

let pg: PgCluster | undefined;
afterAll(() => pg?.stop());

describe.each([
  ['PGlite', async () => createDb({ dataDir: 'memory://' })],
  [
    'PostgreSQL',
    async () => {
      pg = await startPostgres();
      return createDb({ url: await pg.createDatabase('bfdhcp_leases') });
    },
  ],
] as const)('lease store on %s', (_name, open) => {
  let h: DbHandle;
  beforeAll(async () => {
    h = await open();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('saves a batch, replaces by address (last of a batch wins), loads it back', async () => {
    const store = createLeaseDbStore(h.db);
    await store.saveMany([lease('10.0.0.5', '02:00:00:00:00:01', { clientId: '01020000000001', hostname: 'a' }), lease('10.0.0.6', '02:00:00:00:00:02')]);
    await store.saveMany([lease('10.0.0.6', '02:00:00:00:00:03'), lease('10.0.0.6', '02:00:00:00:00:04', { state: 'released' })]);
    const all = (await store.loadAll()).sort((a, b) => a.ip.localeCompare(b.ip));
    expect(all).toEqual([
      lease('10.0.0.5', '02:00:00:00:00:01', { clientId: '01020000000001', hostname: 'a' }),
      lease('10.0.0.6', '02:00:00:00:00:04', { state: 'released' }),
    ]);
  });

  it('purges leases expired before a date', async () => {
    const store = createLeaseDbStore(h.db);
    await store.saveMany([lease('10.0.0.9', '02:00:00:00:00:09', { expiresAt: new Date('2020-01-01T00:00:00Z') })]);
    expect(await store.purgeExpired(new Date('2021-01-01T00:00:00Z'))).toBe(1);
    expect((await store.loadAll()).some((l) => l.ip === '10.0.0.9')).toBe(false);
  });

  it('a batch larger than one statement can carry (6k rows) is saved whole', async () => {
    const store = createLeaseDbStore(h.db);
    const many = Array.from({ length: 6_000 }, (_, i) => lease(`10.9.${i >> 8}.${i & 255}`, `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`));
    await store.saveMany(many);
    expect((await store.loadAll()).filter((l) => l.ip.startsWith('10.9.')).length).toBe(6_000);
  });

  it('the responder on this store: DORA persists the lease; a restarted responder gives the MAC the same address', async () => {
    const config = DhcpConfigSchema.parse({
      mode: 'full',
      interface: 'bfd0',
      serverIp: '10.5.0.1',
      httpBase: 'http://10.5.0.1',
      pools: [{ subnet: '10.5.0.0/24', range: { start: '10.5.0.10', end: '10.5.0.99' } }],
    });
    const local = { on: 'dhcp' as const, from: { address: '0.0.0.0', port: 68 } };
    const mac = '52:54:00:77:00:01';
    const first = createResponder({ config, backend: new FixedBackend(), leases: createLeaseDbStore(h.db) });
    await first.load();
    const offer = await first.handle(request({ type: MessageType.DISCOVER, mac: '52:54:00:77:00:02' }), local);
    await first.handle(request({ type: MessageType.REQUEST, mac: '52:54:00:77:00:02', serverId: '10.5.0.1', requestedIp: offer!.packet.yiaddr }), local);
    const o2 = await first.handle(request({ type: MessageType.DISCOVER, mac }), local);
    const ack = await first.handle(request({ type: MessageType.REQUEST, mac, serverId: '10.5.0.1', requestedIp: o2!.packet.yiaddr }), local);
    expect(ack!.packet.yiaddr).toBe('10.5.0.11');
    const second = createResponder({ config, backend: new FixedBackend(), leases: createLeaseDbStore(h.db) });
    await second.load();
    const again = await second.handle(request({ type: MessageType.DISCOVER, mac }), local);
    expect(again!.packet.yiaddr).toBe('10.5.0.11');
    const other = await second.handle(request({ type: MessageType.DISCOVER, mac: '52:54:00:77:00:03' }), local);
    expect(other!.packet.yiaddr).toBe('10.5.0.12');
  });
});
