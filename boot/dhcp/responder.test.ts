import { describe, expect, it } from 'vitest';
import { classify } from './classify.ts';
import { type DhcpConfigInput, DhcpConfigSchema } from './config.ts';
import { BrokenLeaseStore, type LeaseStore, MemoryLeaseStore } from './leases.ts';
import { MessageType, Opt, encodeSubOptions, intToIp, ipToInt, optIp, optU32, optU8, subOptions } from './packet.ts';
import { type Received, createResponder } from './responder.ts';
import { BrokenBackend, FixedBackend, fakeClock, fixturePacket, recordingLogger, request } from '../../test/support/dhcp/fakes.ts';
import { golden } from '../../test/support/dhcp/golden.ts';
import type { BootBackend } from '../backend.ts';

const base: DhcpConfigInput = {
  mode: 'full',
  interface: 'bfd0',
  serverIp: '10.0.0.1',
  httpBase: 'http://10.0.0.1:8080',
  pools: [
    { subnet: '10.0.0.0/24', range: { start: '10.0.0.100', end: '10.0.0.199' }, routers: ['10.0.0.1'], dns: ['10.0.0.1'], domain: 'farm.test' },
    { name: 'rack2', subnet: '10.1.0.0/24', range: { start: '10.1.0.10', end: '10.1.0.20' }, routers: ['10.1.0.1'] },
  ],
  leaseSeconds: 3600,
};
const local: Received = { on: 'dhcp', from: { address: '0.0.0.0', port: 68 } };
const MAC = '52:54:00:12:34:56';

function setup(over: Partial<DhcpConfigInput> = {}, opts: { backend?: BootBackend; leases?: LeaseStore } = {}) {
  const clock = fakeClock();
  const store = (opts.leases ?? new MemoryLeaseStore()) as MemoryLeaseStore;
  const log = recordingLogger();
  const r = createResponder({ config: DhcpConfigSchema.parse({ ...base, ...over }), backend: opts.backend ?? new FixedBackend(), leases: store, logger: log.logger, clock: clock.now });
  return { r, clock, store, log };
}
const type = (reply: { packet: { options: Map<number, Buffer> } } | null) => (reply ? optU8(reply.packet as never, Opt.MESSAGE_TYPE) : undefined);

async function dora(r: ReturnType<typeof createResponder>, mac: string, extra: Partial<Parameters<typeof request>[0]> = {}) {
  const offer = await r.handle(request({ type: MessageType.DISCOVER, mac, ...extra }), local);
  if (!offer) return { offer, ack: null };
  const ack = await r.handle(request({ type: MessageType.REQUEST, mac, serverId: '10.0.0.1', requestedIp: offer.packet.yiaddr, ...extra }), local);
  return { offer, ack };
}

describe('golden replies to real client packets', () => {
  const cases: [string, string, Partial<DhcpConfigInput>][] = [
    ['full-offer-udhcpc', 'udhcpc-discover.hex', {}],
    ['full-offer-dhclient', 'dhclient-discover.hex', {}],
    ['full-offer-ipxe-rom-bios', 'ipxe-rom-bios-discover.hex', {}],
    ['full-offer-ipxe-rom-efi', 'ipxe-rom-efi-discover.hex', {}],
    ['full-offer-ovmf-pxe', 'ovmf-pxe-discover.hex', {}],
    ['proxy-offer-ipxe-rom-bios', 'ipxe-rom-bios-discover.hex', { mode: 'proxy', pools: [] }],
    ['proxy-offer-ovmf-pxe', 'ovmf-pxe-discover.hex', { mode: 'proxy', pools: [] }],
    ['proxy-silent-udhcpc', 'udhcpc-discover.hex', { mode: 'proxy', pools: [] }],
    ['full-offer-ovmf-http', 'ovmf-http-discover.hex', {}],
    ['proxy-offer-ovmf-http', 'ovmf-http-discover.hex', { mode: 'proxy', pools: [] }],
  ];
  it.each(cases)('%s', async (name, fixture, over) => {
    const { r } = setup(over);
    const [actual, expected] = golden(name, await r.handle(fixturePacket(fixture), local));
    expect(actual).toBe(expected);
  });

  it('proxy ACK on port 4011 goes back unicast to the asking client', async () => {
    const { r } = setup({ mode: 'proxy', pools: [] });
    const req = fixturePacket('ovmf-pxe-discover.hex');
    req.options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST]));
    req.ciaddr = '10.0.0.57';
    const [actual, expected] = golden('proxy-ack-4011-ovmf-pxe', await r.handle(req, { on: 'pxe', from: { address: '10.0.0.57', port: 4011 } }));
    expect(actual).toBe(expected);
  });
});

describe('golden replies to whole exchanges captured from real clients', () => {
  it('udhcpc: DISCOVER → OFFER, SELECTING REQUEST → ACK, RENEW → unicast ACK, RELEASE → released', async () => {
    const { r, clock, store } = setup();
    const offer = await r.handle(fixturePacket('udhcpc-discover-2.hex'), local);
    expect(offer!.packet.yiaddr).toBe('10.0.0.100');
    const [a1, e1] = golden('full-ack-udhcpc-select', await r.handle(fixturePacket('udhcpc-select-request.hex'), local));
    expect(a1).toBe(e1);
    clock.advance(1_000);
    const [a2, e2] = golden('full-ack-udhcpc-renew', await r.handle(fixturePacket('udhcpc-renew-request.hex'), { on: 'dhcp', from: { address: '10.0.0.100', port: 68 } }));
    expect(a2).toBe(e2);
    expect(await r.handle(fixturePacket('udhcpc-release.hex'), local)).toBeNull();
    expect(store.rows.get('10.0.0.100')).toMatchObject({ state: 'released', mac: MAC, clientId: '01525400123456', hostname: 'node1' });
  });

  it('dhclient: DISCOVER → OFFER, SELECTING REQUEST → ACK', async () => {
    const { r } = setup();
    await r.handle(fixturePacket('dhclient-discover.hex'), local);
    const [actual, expected] = golden('full-ack-dhclient-select', await r.handle(fixturePacket('dhclient-select-request.hex'), local));
    expect(actual).toBe(expected);
  });
});

describe('full mode', () => {
  it('DORA: offer from the pool, ACK after the lease is saved, with lease times and network options', async () => {
    const { r, store } = setup();
    const offer = await r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local);
    expect(type(offer)).toBe(MessageType.OFFER);
    expect(offer!.packet.yiaddr).toBe('10.0.0.100');
    expect(offer!.broadcast).toBe(true);
    expect(store.rows.size).toBe(0); // offers are not written
    const ack = await r.handle(request({ type: MessageType.REQUEST, mac: MAC, serverId: '10.0.0.1', requestedIp: '10.0.0.100' }), local);
    expect(type(ack)).toBe(MessageType.ACK);
    expect(ack!.packet.yiaddr).toBe('10.0.0.100');
    expect(optU32(ack!.packet, Opt.LEASE_TIME)).toBe(3600);
    expect(optU32(ack!.packet, Opt.RENEWAL_TIME)).toBe(1800);
    expect(optU32(ack!.packet, Opt.REBINDING_TIME)).toBe(3150);
    expect(optIp(ack!.packet, Opt.SUBNET_MASK)).toBe('255.255.255.0');
    expect(store.rows.get('10.0.0.100')).toMatchObject({ mac: MAC, state: 'bound', pool: '10.0.0.0/24' });
  });

  it('the same MAC gets the same address again; another MAC the next one', async () => {
    const { r } = setup();
    await dora(r, MAC);
    expect((await dora(r, MAC)).ack!.packet.yiaddr).toBe('10.0.0.100');
    expect((await dora(r, '52:54:00:00:00:02')).ack!.packet.yiaddr).toBe('10.0.0.101');
  });

  it('honours option 50 when that address is free and in range', async () => {
    const { r } = setup();
    const { ack } = await dora(r, MAC, { requestedIp: '10.0.0.150' });
    expect(ack!.packet.yiaddr).toBe('10.0.0.150');
  });

  it('reservation by MAC from the backend, with its hostname; the address is never given to another client', async () => {
    const backend = new FixedBackend([{ mac: MAC, ipv4: '10.0.0.120', hostname: 'node-7', allowBoot: true }]);
    const { r } = setup({}, { backend });
    const { ack } = await dora(r, MAC);
    expect(ack!.packet.yiaddr).toBe('10.0.0.120');
    expect(ack!.packet.options.get(Opt.HOSTNAME)?.toString()).toBe('node-7');
    const other = await r.handle(request({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:09', requestedIp: '10.0.0.120' }), local);
    expect(other!.packet.yiaddr).not.toBe('10.0.0.120');
  });

  it('RENEW (unicast, ciaddr) extends the lease and answers the client directly', async () => {
    const { r, clock, store } = setup();
    await dora(r, MAC);
    clock.advance(1_800_000);
    const renew = await r.handle(request({ type: MessageType.REQUEST, mac: MAC, ciaddr: '10.0.0.100' }), { on: 'dhcp', from: { address: '10.0.0.100', port: 68 } });
    expect(type(renew)).toBe(MessageType.ACK);
    expect(renew!.to).toEqual({ address: '10.0.0.100', port: 68 });
    expect(renew!.broadcast).toBe(false);
    expect(store.rows.get('10.0.0.100')!.expiresAt.getTime()).toBe(clock.now() + 3_600_000);
  });

  it('REBIND from a client whose lease we lost (wiped store) gets its free in-range address back', async () => {
    const { r } = setup();
    const rebind = await r.handle(request({ type: MessageType.REQUEST, mac: MAC, ciaddr: '10.0.0.130', broadcast: true }), local);
    expect(type(rebind)).toBe(MessageType.ACK);
    expect(rebind!.packet.yiaddr).toBe('10.0.0.130');
  });

  it('NAK: wrong subnet, address of another client, address not offered; NAK is broadcast', async () => {
    const { r } = setup();
    await dora(r, MAC);
    const wrongNet = await r.handle(request({ type: MessageType.REQUEST, mac: '52:54:00:00:00:02', requestedIp: '192.168.7.5' }), local);
    expect(type(wrongNet)).toBe(MessageType.NAK);
    expect(wrongNet!.broadcast).toBe(true);
    expect(wrongNet!.packet.yiaddr).toBe('0.0.0.0');
    const stolen = await r.handle(request({ type: MessageType.REQUEST, mac: '52:54:00:00:00:02', requestedIp: '10.0.0.100' }), local);
    expect(type(stolen)).toBe(MessageType.NAK);
    const notOffered = await r.handle(request({ type: MessageType.REQUEST, mac: '52:54:00:00:00:03', serverId: '10.0.0.1', requestedIp: '10.0.0.160' }), local);
    expect(type(notOffered)).toBe(MessageType.NAK);
  });

  it('INIT-REBOOT for an address we have no record of: silence (RFC 2131 §4.3.2)', async () => {
    const { r } = setup();
    expect(await r.handle(request({ type: MessageType.REQUEST, mac: MAC, requestedIp: '10.0.0.140' }), local)).toBeNull();
  });

  it('a REQUEST naming another server drops our offer silently; the address asked of that server is held for the client', async () => {
    const { r } = setup();
    const offer = await r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local);
    expect(offer!.packet.yiaddr).toBe('10.0.0.100');
    // another replica offered the same address and the client took that one: it is being bound there
    expect(await r.handle(request({ type: MessageType.REQUEST, mac: MAC, serverId: '10.0.0.254', requestedIp: '10.0.0.100' }), local)).toBeNull();
    const next = await r.handle(request({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:02' }), local);
    expect(next!.packet.yiaddr).toBe('10.0.0.101');
    // the client itself still gets its address here (it may ask this replica next time)
    expect((await r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local))!.packet.yiaddr).toBe('10.0.0.100');
  });

  it('a REQUEST naming another server for an address outside our ranges frees our offer', async () => {
    const { r } = setup();
    const offer = await r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local);
    expect(await r.handle(request({ type: MessageType.REQUEST, mac: MAC, serverId: '192.168.9.1', requestedIp: '192.168.9.50' }), local)).toBeNull();
    const next = await r.handle(request({ type: MessageType.DISCOVER, mac: '52:54:00:00:00:02' }), local);
    expect(next!.packet.yiaddr).toBe(offer!.packet.yiaddr);
  });

  it('RELEASE frees the address (no reply) and is saved', async () => {
    const { r, store } = setup();
    await dora(r, MAC);
    expect(await r.handle(request({ type: MessageType.RELEASE, mac: MAC, ciaddr: '10.0.0.100', serverId: '10.0.0.1' }), local)).toBeNull();
    expect(store.rows.get('10.0.0.100')!.state).toBe('released');
    // fresh addresses are handed out first (a returning client finds its old one); asked for, it is free
    expect((await dora(r, '52:54:00:00:00:02')).ack!.packet.yiaddr).toBe('10.0.0.101');
    expect((await dora(r, '52:54:00:00:00:03', { requestedIp: '10.0.0.100' })).ack!.packet.yiaddr).toBe('10.0.0.100');
  });

  it('DECLINE takes the address out of use for declineSeconds and the client gets another', async () => {
    const { r, store, clock } = setup({ declineSeconds: 600 });
    await dora(r, MAC);
    await r.handle(request({ type: MessageType.DECLINE, mac: MAC, requestedIp: '10.0.0.100', serverId: '10.0.0.1' }), local);
    expect(store.rows.get('10.0.0.100')).toMatchObject({ state: 'declined', mac: '' });
    expect((await dora(r, MAC)).ack!.packet.yiaddr).toBe('10.0.0.101');
    clock.advance(601_000);
    expect((await dora(r, '52:54:00:00:00:02', { requestedIp: '10.0.0.100' })).ack!.packet.yiaddr).toBe('10.0.0.100');
  });

  it('INFORM: configuration only, no address, no lease time, unicast to ciaddr', async () => {
    const { r } = setup();
    const reply = await r.handle(request({ type: MessageType.INFORM, mac: MAC, ciaddr: '10.0.0.33' }), { on: 'dhcp', from: { address: '10.0.0.33', port: 68 } });
    expect(type(reply)).toBe(MessageType.ACK);
    expect(reply!.packet.yiaddr).toBe('0.0.0.0');
    expect(reply!.packet.options.has(Opt.LEASE_TIME)).toBe(false);
    expect(reply!.to).toEqual({ address: '10.0.0.33', port: 68 });
  });

  it('relay: pool chosen by giaddr, reply unicast to the relay on port 67, option 82 echoed', async () => {
    const { r } = setup();
    const agent = encodeSubOptions([[1, Buffer.from('port7')]]);
    const { offer, ack } = await dora(r, MAC, { giaddr: '10.1.0.1', relayAgent: agent });
    expect(offer!.packet.yiaddr).toBe('10.1.0.10');
    expect(offer!.to).toEqual({ address: '10.1.0.1', port: 67 });
    expect(offer!.packet.giaddr).toBe('10.1.0.1');
    expect(subOptions(ack!.packet.options.get(Opt.RELAY_AGENT)).get(1)?.toString()).toBe('port7');
    expect(optIp(ack!.packet, Opt.ROUTER)).toBe('10.1.0.1');
  });

  it('relay: RFC 3527 link selection overrides giaddr', async () => {
    const { r } = setup();
    const agent = encodeSubOptions([[5, Buffer.from([10, 1, 0, 0])]]);
    const offer = await r.handle(request({ type: MessageType.DISCOVER, mac: MAC, giaddr: '10.0.0.2', relayAgent: agent }), local);
    expect(offer!.packet.yiaddr).toBe('10.1.0.10');
  });

  it('a relay from a subnet we do not serve: silence', async () => {
    const { r } = setup();
    expect(await r.handle(request({ type: MessageType.DISCOVER, mac: MAC, giaddr: '172.16.5.1' }), local)).toBeNull();
  });

  it('pool exhausted: logs "pool exhausted" once a second, answers nothing, and recovers when leases expire', async () => {
    const { r, log, clock } = setup();
    for (let i = 0; i < 11; i++) expect((await dora(r, `52:54:00:00:01:${i.toString(16).padStart(2, '0')}`, { giaddr: '10.1.0.1' })).ack).not.toBeNull();
    for (let i = 0; i < 50; i++) expect(await r.handle(request({ type: MessageType.DISCOVER, mac: `52:54:00:00:02:${i.toString(16).padStart(2, '0')}`, giaddr: '10.1.0.1' }), local)).toBeNull();
    expect(log.lines.filter((l) => l.msg === 'pool exhausted')).toHaveLength(1);
    expect(r.stats.exhausted).toBe(50);
    clock.advance(3_601_000);
    expect((await dora(r, '52:54:00:00:03:01', { giaddr: '10.1.0.1' })).ack).not.toBeNull();
  });

  it('unknown MAC: served by default, silent with unknownClients=ignore (logged at debug, not as an error)', async () => {
    expect((await dora(setup().r, MAC)).ack).not.toBeNull();
    const { r, log } = setup({ unknownClients: 'ignore' });
    expect(await r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local)).toBeNull();
    expect(log.lines.find((l) => (l.obj as { why?: string }).why === 'unknown machine')?.level).toBe('debug');
  });

  it('pools split known machines from a discovery pool for unknown ones', async () => {
    const backend = new FixedBackend([{ mac: MAC, allowBoot: true }]);
    const { r } = setup(
      {
        pools: [
          { name: 'known', subnet: '10.0.0.0/24', range: { start: '10.0.0.10', end: '10.0.0.19' }, clients: 'known' },
          { name: 'discovery', subnet: '10.0.0.0/24', range: { start: '10.0.0.200', end: '10.0.0.209' }, clients: 'unknown' },
        ],
      },
      { backend },
    );
    expect((await dora(r, MAC)).ack!.packet.yiaddr).toBe('10.0.0.10');
    expect((await dora(r, '52:54:00:00:00:99')).ack!.packet.yiaddr).toBe('10.0.0.200');
  });

  it('a machine the backend marks allowBoot=false gets nothing', async () => {
    const { r } = setup({}, { backend: new FixedBackend([{ mac: MAC, allowBoot: false }]) });
    expect(await r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local)).toBeNull();
  });

  it('backend or lease store down: no reply, no exception, counted', async () => {
    expect(await setup({}, { backend: BrokenBackend }).r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local)).toBeNull();
    const { r } = setup({}, { leases: new BrokenLeaseStore() });
    const { offer, ack } = await dora(r, MAC);
    expect(offer).not.toBeNull();
    expect(ack).toBeNull();
    expect(r.stats.storeErrors).toBe(1);
  });

  it('concurrent bindings are written in one batch (group commit)', async () => {
    const store = new MemoryLeaseStore();
    const { r } = setup({}, { leases: store });
    const macs = Array.from({ length: 20 }, (_, i) => `52:54:00:00:05:${i.toString(16).padStart(2, '0')}`);
    const offers = await Promise.all(macs.map((mac) => r.handle(request({ type: MessageType.DISCOVER, mac }), local)));
    const acks = await Promise.all(macs.map((mac, i) => r.handle(request({ type: MessageType.REQUEST, mac, serverId: '10.0.0.1', requestedIp: offers[i]!.packet.yiaddr }), local)));
    expect(acks.every((a) => type(a) === MessageType.ACK)).toBe(true);
    expect(store.rows.size).toBe(20);
    expect(store.writes).toBeLessThanOrEqual(2);
  });

  it('leases survive a restart: a new responder loads them and gives the MAC its address', async () => {
    const store = new MemoryLeaseStore();
    const first = setup({}, { leases: store }).r;
    await dora(first, '52:54:00:00:00:02');
    await dora(first, MAC);
    const fresh = setup({}, { leases: store }).r;
    expect(await fresh.load()).toBe(2);
    expect((await dora(fresh, MAC)).ack!.packet.yiaddr).toBe('10.0.0.101');
    expect((await dora(fresh, '52:54:00:00:00:03')).ack!.packet.yiaddr).toBe('10.0.0.102');
  });

  it('allocation with 100k leases loaded does not scan: the next DISCOVER on a nearly full /15 is answered', async () => {
    const store = new MemoryLeaseStore();
    const exp = new Date(Date.UTC(2027, 0, 1));
    const start = ipToInt('10.2.0.10');
    for (let i = 0; i < 100_000; i++) store.rows.set(intToIp(start + i), { ip: intToIp(start + i), mac: `02:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:01`, state: 'bound', expiresAt: exp, pool: 'big' });
    const { r } = setup({ serverIp: '10.2.0.1', pools: [{ name: 'big', subnet: '10.2.0.0/15', range: { start: '10.2.0.10', end: '10.3.255.250' } }] }, { leases: store });
    await r.load();
    const offer = await r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local);
    expect(offer!.packet.yiaddr).toBe(intToIp(start + 100_000));
  });

  it('OVMF HTTP boot, captured exchange: DISCOVER → OFFER with the URL, REQUEST → ACK with the URL and HTTPClient', async () => {
    const { r } = setup({ serverIp: '10.69.0.1', httpBase: 'http://10.69.0.1:8080', pools: [{ subnet: '10.69.0.0/24', range: { start: '10.69.0.100', end: '10.69.0.110' }, routers: ['10.69.0.1'] }] });
    const offer = await r.handle(fixturePacket('ovmf-http-discover.hex'), local);
    expect(offer!.packet).toMatchObject({ yiaddr: '10.69.0.100', siaddr: '0.0.0.0', file: 'http://10.69.0.1:8080/ipxe.efi' });
    const [a, e] = golden('full-ack-ovmf-http', await r.handle(fixturePacket('ovmf-http-request.hex'), local));
    expect(a).toBe(e);
    expect(a).toContain('("HTTPClient")');
    expect(a).toContain('("http://10.69.0.1:8080/ipxe.efi")');
  });

  it('a boot URL longer than the file field goes whole in option 67, never truncated into file', async () => {
    const long = `http://10.0.0.1:8080/${'x'.repeat(120)}`;
    const { r } = setup({ httpBase: 'http://10.0.0.1:8080', bootfiles: { bios: 'undionly.kpxe', uefi: 'snponly.efi', uefiHttp: `${'x'.repeat(120)}`, script: 'boot.ipxe' } });
    const p = fixturePacket('ovmf-http-discover.hex');
    p.options.set(Opt.PARAM_LIST, Buffer.from([1, 3, 6])); // not asked for: sent anyway
    const offer = await r.handle(p, local);
    expect(offer!.packet.file).toBe('');
    expect(offer!.packet.options.get(Opt.BOOTFILE)?.toString()).toBe(long);
  });

  it('HTTP boot client: URL bootfile and option 60 HTTPClient echoed', async () => {
    const { r } = setup();
    const offer = await r.handle(request({ type: MessageType.DISCOVER, mac: MAC, vendorClass: 'HTTPClient:Arch:00016:UNDI:003001', arch: 16 }), local);
    expect(offer!.packet.file).toBe('http://10.0.0.1:8080/ipxe.efi');
    expect(offer!.packet.options.get(Opt.VENDOR_CLASS)?.toString()).toBe('HTTPClient');
  });

  it('a classification of the reply-less cases never throws on real packets', () => {
    expect(() => classify(fixturePacket('ipxe-rom-efi-discover.hex'))).not.toThrow();
  });
});

describe('proxy mode', () => {
  it('answers OVMF HTTP boot with the URL and HTTPClient, no address, no PXE option 43; the per-node decision is the same as for PXE', async () => {
    const { r } = setup({ mode: 'proxy', pools: [] });
    const offer = await r.handle(fixturePacket('ovmf-http-discover.hex'), local);
    expect(offer!.packet).toMatchObject({ yiaddr: '0.0.0.0', siaddr: '0.0.0.0', file: 'http://10.0.0.1:8080/ipxe.efi' });
    expect(offer!.packet.options.get(Opt.VENDOR_CLASS)?.toString()).toBe('HTTPClient');
    expect(offer!.packet.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
    // its REQUEST goes to the DHCP server that gave the address: not ours to answer
    expect(await r.handle(fixturePacket('ovmf-http-request.hex'), local)).toBeNull();
    const held = setup({ mode: 'proxy', pools: [] }, { backend: new FixedBackend([{ mac: '52:54:00:bf:00:17', allowBoot: false }]) }).r;
    expect(await held.handle(fixturePacket('ovmf-http-discover.hex'), local)).toBeNull();
    const strict = setup({ mode: 'proxy', pools: [], unknownClients: 'ignore' }).r;
    expect(await strict.handle(fixturePacket('ovmf-http-discover.hex'), local)).toBeNull();
  });

  it('hands a node whose profile says shim-grub the signed shim, in proxy and in full mode (issue 19 item 1)', async () => {
    const pxe = classify(fixturePacket('ovmf-pxe-discover.hex')).mac;
    const http = classify(fixturePacket('ovmf-http-discover.hex')).mac;
    const backend = new FixedBackend([{ mac: pxe, allowBoot: true, bootloader: 'shim-grub' }, { mac: http, allowBoot: true, bootloader: 'shim-grub' }]);
    const proxy = setup({ mode: 'proxy', pools: [] }, { backend }).r;
    expect((await proxy.handle(fixturePacket('ovmf-pxe-discover.hex'), local))!.packet.file).toBe('shimx64.efi');
    expect((await proxy.handle(fixturePacket('ovmf-http-discover.hex'), local))!.packet.file).toBe('http://10.0.0.1:8080/shimx64.efi');
    const full = setup({}, { backend }).r;
    expect((await full.handle(fixturePacket('ovmf-pxe-discover.hex'), local))!.packet.file).toBe('shimx64.efi');
    // the same packets from a node without the option: today's files
    const plain = setup({ mode: 'proxy', pools: [] }).r;
    expect((await plain.handle(fixturePacket('ovmf-pxe-discover.hex'), local))!.packet.file).toBe('snponly.efi');
  });

  it('answers PXE clients with boot info only (no address), discovery control 8, UUID echoed', async () => {
    const { r } = setup({ mode: 'proxy', pools: [] });
    const offer = await r.handle(fixturePacket('ovmf-pxe-discover.hex'), local);
    expect(offer!.packet.yiaddr).toBe('0.0.0.0');
    expect(offer!.packet.file).toBe('snponly.efi');
    expect(offer!.packet.siaddr).toBe('10.0.0.1');
    expect(offer!.packet.options.get(Opt.VENDOR_CLASS)?.toString()).toBe('PXEClient');
    expect(subOptions(offer!.packet.options.get(Opt.VENDOR_SPECIFIC)).get(6)).toEqual(Buffer.from([8]));
    expect(offer!.packet.options.get(Opt.CLIENT_UUID)?.length).toBe(17);
    expect(offer!.packet.options.has(Opt.LEASE_TIME)).toBe(false);
  });

  it('stays silent for non-PXE clients and for REQUESTs meant for the real DHCP server', async () => {
    const { r } = setup({ mode: 'proxy', pools: [] });
    expect(await r.handle(fixturePacket('udhcpc-discover.hex'), local)).toBeNull();
    const req = fixturePacket('ipxe-rom-bios-discover.hex');
    req.options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST]));
    req.options.set(Opt.SERVER_ID, Buffer.from([10, 0, 0, 254]));
    expect(await r.handle(req, local)).toBeNull();
  });
});

describe('DECLINE and RELEASE only from the lease owner (RFC 2131 §4.3.3, §4.3.4)', () => {
  const OTHER = '52:54:00:66:66:66';
  const cid = (mac: string) => Buffer.from(`01${mac.replaceAll(':', '')}`, 'hex'); // type 1 + MAC, as udhcpc and dhclient send it
  const withCid = (mac: string, id = cid(mac)) => ({ extra: [[Opt.CLIENT_ID, id]] as [number, Buffer][] });
  const release = (mac: string, ip: string, over: Partial<Parameters<typeof request>[0]> = {}) => request({ type: MessageType.RELEASE, mac, ciaddr: ip, serverId: '10.0.0.1', ...over });
  const decline = (mac: string, ip: string, over: Partial<Parameters<typeof request>[0]> = {}) => request({ type: MessageType.DECLINE, mac, requestedIp: ip, serverId: '10.0.0.1', ...over });
  const from = (address: string): Received => ({ on: 'dhcp', from: { address, port: 68 } });
  /** does another machine that asks for `ip` get it? (it does once the lease is released or expired) */
  const takenBy = async (r: ReturnType<typeof createResponder>, mac: string, ip: string) => (await dora(r, mac, { requestedIp: ip })).ack!.packet.yiaddr === ip;
  const warnings = (log: ReturnType<typeof recordingLogger>, msg: string) => log.lines.filter((l) => l.level === 'warn' && l.msg === msg);

  it('the reported bug: a RELEASE with hlen=0 no longer cancels a DECLINE lock-out (dropped, counted, logged)', async () => {
    const { r, store, log } = setup();
    await dora(r, MAC);
    await r.handle(decline(MAC, '10.0.0.100'), local);
    expect(store.rows.get('10.0.0.100')).toMatchObject({ state: 'declined', mac: '' });
    const forged = release(MAC, '10.0.0.100');
    forged.hlen = 0;
    forged.chaddr = Buffer.alloc(16);
    expect(await r.handle(forged, local)).toBeNull();
    expect(r.stats.badHlen).toBe(1);
    expect(store.rows.get('10.0.0.100')).toMatchObject({ state: 'declined', mac: '' });
    expect(await takenBy(r, OTHER, '10.0.0.100')).toBe(false);
    expect(warnings(log, 'DHCP packet with a bad hlen dropped')[0]!.obj).toMatchObject({ htype: 1, hlen: 0, suppressed: 0 });
  });

  it('htype 1 needs hlen 6: any other hlen is dropped for every message type; other htypes need 1..16', async () => {
    const { r } = setup();
    for (const hlen of [0, 5, 7, 16, 200]) {
      const p = request({ type: MessageType.DISCOVER, mac: MAC });
      p.hlen = hlen;
      expect(await r.handle(p, local), `hlen ${hlen}`).toBeNull();
    }
    expect(r.stats.badHlen).toBe(5);
    const ieee802 = request({ type: MessageType.DISCOVER, mac: MAC });
    ieee802.htype = 6; // IEEE 802 networks, also 6 bytes
    expect(type(await r.handle(ieee802, local))).toBe(MessageType.OFFER);
    const ipoib = request({ type: MessageType.DISCOVER, mac: MAC });
    ipoib.htype = 32;
    ipoib.hlen = 0; // RFC 4390: InfiniBand sends no chaddr, and we key leases by chaddr
    expect(await r.handle(ipoib, local)).toBeNull();
    expect(r.stats.badHlen).toBe(6);
  });

  it('RELEASE from another hardware address: ignored and counted; the lease stays bound', async () => {
    const { r, store, log } = setup();
    await dora(r, MAC);
    expect(await r.handle(release(OTHER, '10.0.0.100'), local)).toBeNull();
    expect(store.rows.get('10.0.0.100')).toMatchObject({ state: 'bound', mac: MAC });
    expect(r.stats.foreignReleases).toBe(1);
    expect(warnings(log, 'DHCPRELEASE for a lease the sender does not own ignored')[0]!.obj).toMatchObject({ ip: '10.0.0.100', owner: MAC, source: OTHER });
    expect(await takenBy(r, '52:54:00:00:00:02', '10.0.0.100')).toBe(false);
  });

  it("RELEASE with the owner's chaddr but without, or with another, client identifier: ignored; with the same one: honoured", async () => {
    const { r, store } = setup();
    await dora(r, MAC, withCid(MAC));
    expect(store.rows.get('10.0.0.100')!.clientId).toBe(`01${MAC.replaceAll(':', '')}`);
    await r.handle(release(MAC, '10.0.0.100'), local);
    await r.handle(release(MAC, '10.0.0.100', withCid(MAC, Buffer.from('ff0000000001', 'hex'))), local);
    expect(store.rows.get('10.0.0.100')!.state).toBe('bound');
    expect(r.stats.foreignReleases).toBe(2);
    await r.handle(release(MAC, '10.0.0.100', withCid(MAC)), local);
    expect(store.rows.get('10.0.0.100')!.state).toBe('released');
    expect(await takenBy(r, '52:54:00:00:00:02', '10.0.0.100')).toBe(true);
  });

  it('a lease bound without a client identifier is released by its chaddr alone', async () => {
    const { r, store } = setup();
    await dora(r, MAC);
    await r.handle(release(MAC, '10.0.0.100', withCid(MAC)), local);
    expect(store.rows.get('10.0.0.100')!.state).toBe('released');
  });

  it('a RELEASE sent directly from another IP address than the leased one is not from the owner (RFC 2131 §4.4.6: unicast from ciaddr)', async () => {
    const { r, store } = setup();
    await dora(r, MAC);
    await r.handle(release(MAC, '10.0.0.100'), from('10.0.0.250'));
    expect(store.rows.get('10.0.0.100')!.state).toBe('bound');
    expect(r.stats.foreignReleases).toBe(1);
    await r.handle(release(MAC, '10.0.0.100'), from('10.0.0.100'));
    expect(store.rows.get('10.0.0.100')!.state).toBe('released');
  });

  it('a RELEASE through a relay comes from the relay, not the leased address: honoured from the owner', async () => {
    const { r, store } = setup();
    await dora(r, MAC, { giaddr: '10.1.0.1' });
    await r.handle(release(MAC, '10.1.0.10', { giaddr: '10.1.0.1' }), from('10.66.9.2'));
    expect(store.rows.get('10.1.0.10')!.state).toBe('released');
  });

  it('the owner check survives a restart: the client identifier is kept with the lease', async () => {
    const store = new MemoryLeaseStore();
    await dora(setup({}, { leases: store }).r, MAC, withCid(MAC));
    const { r } = setup({}, { leases: store });
    await r.load();
    await r.handle(release(MAC, '10.0.0.100'), local);
    expect(store.rows.get('10.0.0.100')!.state).toBe('bound');
    await r.handle(release(MAC, '10.0.0.100', withCid(MAC)), local);
    expect(store.rows.get('10.0.0.100')!.state).toBe('released');
  });

  it('DECLINE from another chaddr, or with another client identifier: ignored; the owner keeps its address', async () => {
    const { r, store } = setup();
    await dora(r, MAC, withCid(MAC));
    await r.handle(decline(OTHER, '10.0.0.100'), local);
    await r.handle(decline(MAC, '10.0.0.100'), local);
    await r.handle(decline(MAC, '10.0.0.100', withCid(MAC, cid(OTHER))), local);
    expect(r.stats.foreignDeclines).toBe(3);
    expect(store.rows.get('10.0.0.100')).toMatchObject({ state: 'bound', mac: MAC });
    expect((await dora(r, MAC, withCid(MAC))).ack!.packet.yiaddr).toBe('10.0.0.100');
    // the owner itself: the address is taken out of use (RFC 2131 §4.3.3)
    await r.handle(decline(MAC, '10.0.0.100', withCid(MAC)), local);
    expect(store.rows.get('10.0.0.100')).toMatchObject({ state: 'declined', mac: '' });
  });

  describe('a reserved address', () => {
    const RESERVED = '10.0.0.120';
    const reserved = () => setup({}, { backend: new FixedBackend([{ mac: MAC, ipv4: RESERVED, hostname: 'node-7', allowBoot: true }]) });

    it("is never locked out by someone else's DECLINE (spoofed chaddr without the client id, or another chaddr): alert, and the node keeps it", async () => {
      const { r, store, log } = reserved();
      await dora(r, MAC, withCid(MAC));
      await r.handle(decline(MAC, RESERVED), local); // chaddr copied, option 61 not
      await r.handle(decline(OTHER, RESERVED), local);
      expect(r.stats.reservedDeclinesRefused).toBe(2);
      expect(store.rows.get(RESERVED)).toMatchObject({ state: 'bound', mac: MAC });
      const alerts = warnings(log, 'DHCPDECLINE of a reserved address from another client ignored');
      expect(alerts.map((a) => a.obj)).toMatchObject([
        { ip: RESERVED, reservedFor: MAC, source: MAC },
        { ip: RESERVED, reservedFor: MAC, source: OTHER },
      ]);
      expect((await dora(r, MAC, withCid(MAC))).ack!.packet.yiaddr).toBe(RESERVED);
      expect(log.lines.some((l) => l.msg === 'reserved address is leased to another client')).toBe(false);
    });

    it('is not locked out either when nobody holds a lease on it (reservation known from an earlier offer)', async () => {
      const { r, clock } = reserved();
      await r.handle(request({ type: MessageType.DISCOVER, mac: MAC }), local); // offered, never requested
      clock.advance(120_000); // the offer lapsed
      await r.handle(decline(OTHER, RESERVED), local);
      expect(r.stats.reservedDeclinesRefused).toBe(1);
      expect((await dora(r, MAC)).ack!.packet.yiaddr).toBe(RESERVED);
    });

    it("a DECLINE from its owner (or a perfect copy of it) is recorded as a conflict: counted, warned, reservation and lease kept", async () => {
      const { r, store, log } = reserved();
      await dora(r, MAC, withCid(MAC));
      await r.handle(decline(MAC, RESERVED, withCid(MAC)), local);
      expect(r.stats.reservedConflicts).toBe(1);
      expect(store.rows.get(RESERVED)).toMatchObject({ state: 'bound', mac: MAC });
      expect(warnings(log, 'reserved address is in use by another machine (DHCPDECLINE from its owner); reservation kept')[0]!.obj).toMatchObject({ ip: RESERVED });
      expect(log.lines.some((l) => l.msg === 'address declined')).toBe(false);
      expect((await dora(r, MAC, withCid(MAC))).ack!.packet.yiaddr).toBe(RESERVED);
    });

    it('a flood of 500 forged DECLINEs prints one line per source per interval, then one carrying the suppressed count', async () => {
      const { r, log, clock } = reserved();
      await dora(r, MAC, withCid(MAC));
      for (let i = 0; i < 500; i++) await r.handle(decline(MAC, RESERVED), local);
      const msg = 'DHCPDECLINE of a reserved address from another client ignored';
      expect(warnings(log, msg)).toHaveLength(1);
      expect(r.stats.reservedDeclinesRefused).toBe(500);
      await r.handle(decline(OTHER, RESERVED), local); // another source gets its own line
      expect(warnings(log, msg)).toHaveLength(2);
      clock.advance(60_000);
      await r.handle(decline(MAC, RESERVED), local);
      expect(warnings(log, msg).map((l) => (l.obj as { suppressed: number }).suppressed)).toEqual([0, 0, 499]);
    });
  });
});
