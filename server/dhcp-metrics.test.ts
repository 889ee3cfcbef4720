// DHCP metrics (issue 17 item 6): the responder's plain counters reach /metrics as labelled series, and a real
// exchange over loopback sockets moves them by exactly what happened.
import dgram from 'node:dgram';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { DhcpConfigSchema } from '../boot/dhcp/config.ts';
import { MemoryLeaseStore } from '../boot/dhcp/leases.ts';
import { decodePacket, encodePacket, MessageType, Opt } from '../boot/dhcp/packet.ts';
import { createResponder } from '../boot/dhcp/responder.ts';
import { createDhcpServer, type DhcpServer } from '../boot/dhcp/server.ts';
import { FixedBackend, request } from '../test/support/dhcp/fakes.ts';
import { until } from '../test/harness/wait.ts';
import { createDhcpLatency, registerDhcpMetrics } from './dhcp-metrics.ts';
import { sample } from '../test/support/metrics.ts';

const POOL = { subnet: '10.0.0.0/24', range: { start: '10.0.0.10', end: '10.0.0.10' } };
const RELAY_POOL = { name: 'rack-2', subnet: '10.0.2.0/24', range: { start: '10.0.2.10', end: '10.0.2.19' } };

describe('DHCP metrics', () => {
  it('the spoofing counters reach /metrics at scrape time', async () => {
    const config = DhcpConfigSchema.parse({ mode: 'full', interface: 'x', serverIp: '10.0.0.1', httpBase: 'http://10.0.0.1', pools: [{ subnet: '10.0.0.0/24', range: { start: '10.0.0.10', end: '10.0.0.20' } }] });
    const r = createResponder({ config, backend: new FixedBackend(), leases: new MemoryLeaseStore() });
    const registry = new Registry();
    registerDhcpMetrics(registry, { mode: 'full', responder: r });
    const p = request({ type: MessageType.RELEASE, mac: '02:00:00:00:00:01', ciaddr: '10.0.0.10' });
    p.hlen = 0;
    await r.handle(p, { on: 'dhcp', from: { address: '0.0.0.0', port: 68 } });
    const text = await registry.metrics();
    expect(text).toMatch(/^bootfarm_dhcp_bad_hlen_dropped 1$/m);
    expect(text).toMatch(/^bootfarm_dhcp_reserved_declines_refused 0$/m);
  });

  it('counts requests by type and path, replies by type, lease events, an exhausted pool and the lease table', async () => {
    const config = DhcpConfigSchema.parse({ mode: 'full', interface: 'x', serverIp: '10.0.0.1', httpBase: 'http://10.0.0.1', pools: [POOL, RELAY_POOL] });
    let now = Date.UTC(2026, 0, 1);
    const r = createResponder({ config, backend: new FixedBackend(), leases: new MemoryLeaseStore(), clock: () => now });
    const registry = new Registry();
    registerDhcpMetrics(registry, { mode: 'full', responder: r, now: () => now });
    const direct = { on: 'dhcp' as const, from: { address: '0.0.0.0', port: 68 } };
    const a = '02:00:00:00:00:0a';
    // A takes the only address of the local pool (DISCOVER → OFFER, REQUEST → ACK)
    expect((await r.handle(request({ type: MessageType.DISCOVER, mac: a }), direct))?.packet.yiaddr).toBe('10.0.0.10');
    expect((await r.handle(request({ type: MessageType.REQUEST, mac: a, serverId: '10.0.0.1', requestedIp: '10.0.0.10' }), direct))?.packet.options.get(Opt.MESSAGE_TYPE)?.[0]).toBe(MessageType.ACK);
    // B finds the pool full: no reply, one exhaustion
    expect(await r.handle(request({ type: MessageType.DISCOVER, mac: '02:00:00:00:00:0b' }), direct)).toBeNull();
    // a REQUEST for an address never offered: NAK
    expect((await r.handle(request({ type: MessageType.REQUEST, mac: '02:00:00:00:00:0c', serverId: '10.0.0.1', requestedIp: '10.0.0.99' }), direct))?.packet.options.get(Opt.MESSAGE_TYPE)?.[0]).toBe(MessageType.NAK);
    // two DISCOVERs through a relay in rack 2 get offers from rack 2's pool
    for (const mac of ['02:00:00:00:02:01', '02:00:00:00:02:02']) expect((await r.handle(request({ type: MessageType.DISCOVER, mac, giaddr: '10.0.2.1' }), { on: 'dhcp', from: { address: '10.0.2.1', port: 67 } }))?.packet.yiaddr).toMatch(/^10\.0\.2\./);
    // A declines its address (someone else answers ARP for it)
    expect(await r.handle(request({ type: MessageType.DECLINE, mac: a, serverId: '10.0.0.1', requestedIp: '10.0.0.10' }), direct)).toBeNull();

    const text = await registry.metrics();
    const req = (via: string, type: string) => sample(text, 'bootfarm_dhcp_requests_total', { mode: 'full', via, type });
    expect([req('direct', 'discover'), req('direct', 'request'), req('direct', 'decline'), req('relayed', 'discover'), req('pxe', 'discover'), req('direct', 'inform')]).toEqual([2, 2, 1, 2, 0, 0]);
    const rep = (type: string) => sample(text, 'bootfarm_dhcp_replies_total', { mode: 'full', type });
    expect([rep('offer'), rep('ack'), rep('nak')]).toEqual([3, 1, 1]);
    expect(sample(text, 'bootfarm_dhcp_lease_events_total', { event: 'bound' })).toBe(1);
    expect(sample(text, 'bootfarm_dhcp_lease_events_total', { event: 'declined' })).toBe(1);
    expect(sample(text, 'bootfarm_dhcp_lease_events_total', { event: 'released' })).toBe(0);
    expect(sample(text, 'bootfarm_dhcp_lease_failures_total', { reason: 'pool_exhausted' })).toBe(1);
    expect(sample(text, 'bootfarm_dhcp_leases', { pool: '10.0.0.0/24', state: 'declined' })).toBe(1);
    expect(sample(text, 'bootfarm_dhcp_leases', { pool: 'rack-2', state: 'offered' })).toBe(2);
    expect(sample(text, 'bootfarm_dhcp_pool_addresses', { pool: 'rack-2' })).toBe(10);
    expect(sample(text, 'bootfarm_dhcp_pool_addresses', { pool: '10.0.0.0/24' })).toBe(1);
    // the offers lapse after offerSeconds: the same table now counts them expired
    now += config.offerSeconds * 1000 + 1;
    const later = await registry.metrics();
    expect(sample(later, 'bootfarm_dhcp_leases', { pool: 'rack-2', state: 'offered' })).toBe(0);
    expect(sample(later, 'bootfarm_dhcp_leases', { pool: 'rack-2', state: 'expired' })).toBe(2);
  });

  describe('over loopback sockets', () => {
    let srv: DhcpServer | undefined;
    let client: dgram.Socket | undefined;
    afterEach(async () => {
      client?.close();
      await srv?.stop();
      client = srv = undefined;
    });

    it('a DISCOVER/REQUEST exchange moves the counters and the handling-time histogram, garbage is counted as undecodable', async () => {
      const port = 20000 + Math.floor(Math.random() * 20000);
      const clientPort = port + 2;
      const registry = new Registry();
      srv = createDhcpServer({
        mode: 'full',
        interface: 'lo',
        serverIp: '127.0.0.1',
        httpBase: 'http://127.0.0.1:8080',
        port,
        proxyPort: port + 1,
        clientPort,
        pools: [{ subnet: '127.0.0.0/24', range: { start: '127.0.0.10', end: '127.0.0.20' } }],
        backend: new FixedBackend(),
        leases: new MemoryLeaseStore(),
        skipInterfaceCheck: true,
        onHandled: createDhcpLatency(registry),
      });
      await srv.start();
      registerDhcpMetrics(registry, { mode: 'full', responder: srv.responder, socketDrops: () => srv!.socketDrops() });
      // the client already has an address (ciaddr): replies come back unicast to it, which loopback can deliver
      const ciaddr = '127.0.0.5';
      client = dgram.createSocket('udp4');
      const replies: number[] = [];
      const yiaddrs: string[] = [];
      client.on('message', (m) => {
        const d = decodePacket(m);
        if (d.ok) {
          replies.push(d.packet.options.get(Opt.MESSAGE_TYPE)![0]!);
          yiaddrs.push(d.packet.yiaddr);
        }
      });
      await new Promise<void>((r) => client!.bind({ address: ciaddr, port: clientPort }, () => r()));
      const mac = '02:00:00:00:00:77';
      const send = (b: Buffer) => new Promise<void>((r, j) => client!.send(b, port, '127.0.0.1', (e) => (e ? j(e) : r())));
      await send(encodePacket(request({ type: MessageType.DISCOVER, mac, ciaddr })));
      await until('the OFFER', () => replies.length === 1);
      await send(encodePacket(request({ type: MessageType.REQUEST, mac, ciaddr, serverId: '127.0.0.1', requestedIp: yiaddrs[0] })));
      await until('the ACK', () => replies.length === 2);
      expect(replies).toEqual([MessageType.OFFER, MessageType.ACK]);
      await send(Buffer.from('not a dhcp packet'));
      await until('the garbage datagram to be counted', () => srv!.stats.undecodable === 1);

      const text = await registry.metrics();
      expect(sample(text, 'bootfarm_dhcp_requests_total', { via: 'direct', type: 'discover' })).toBe(1);
      expect(sample(text, 'bootfarm_dhcp_requests_total', { via: 'direct', type: 'request' })).toBe(1);
      expect(sample(text, 'bootfarm_dhcp_replies_total', { type: 'offer' })).toBe(1);
      expect(sample(text, 'bootfarm_dhcp_replies_total', { type: 'ack' })).toBe(1);
      expect(sample(text, 'bootfarm_dhcp_lease_events_total', { event: 'bound' })).toBe(1);
      expect(sample(text, 'bootfarm_dhcp_leases', { pool: '127.0.0.0/24', state: 'bound' })).toBe(1);
      expect(sample(text, 'bootfarm_dhcp_undecodable_dropped')).toBe(1);
      // two decoded requests handled; the undecodable datagram is not a handled request
      expect(sample(text, 'bootfarm_dhcp_handle_duration_seconds_count')).toBe(2);
      expect(sample(text, 'bootfarm_dhcp_handle_duration_seconds_bucket', { le: '+Inf' })).toBe(2);
      expect(sample(text, 'bootfarm_dhcp_socket_drops')).toBe(0);
    });
  });
});
