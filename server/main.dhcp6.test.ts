// DHCPv6 wiring in startServer (issue 19 item 3): off unless `dhcp6.enabled`; when enabled, the server answers a
// Solicit through the real BootBackend (PGlite registry) on loopback, binds into dhcp6_leases (the database-backed
// Lease6Store, not the in-memory one), counts it on /metrics, and stop() closes the socket.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { MsgType, decodeDhcp6, encodeDhcp6, findOption } from '../boot/dhcp6/packet.ts';
import { duidLlOf, msg6 } from '../test/support/dhcp/fakes6.ts';
import { parseConfig } from './config.ts';
import { dhcp6Leases } from './db/schema/index.ts';
import { silentLogger } from './log.ts';
import { type Running, startServer } from './main.ts';

const dirs: string[] = [];
let server: Running | undefined;
afterAll(async () => {
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

it('dhcp6.enabled: a Solicit on [::1] gets an Advertise with a pool address and the boot-file URL; stop() frees the port', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bf-main6-'));
  dirs.push(dir);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const config = parseConfig({
    dataDir: dir,
    http: { host: '127.0.0.1', port: 0 },
    auth: { tokens: [{ name: 'admin', role: 'admin', token: 'main-dhcp6-admin-token-0123456789' }] },
    fleet: { enabled: false },
    // loopback has no MAC (00:…:00): the DUID is configured
    dhcp6: { enabled: true, interface: 'lo', serverAddress: '::1', serverDuid: '0003000102bf000000fe', httpBase: 'http://[::1]:8080', port, pools: [{ prefix: '::/120', range: { start: '::10', end: '::20' } }] },
  });
  server = await startServer(config, { log: silentLogger() });
  const s = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  try {
    await new Promise<void>((r) => s.bind({ address: '::1', port: 0 }, () => r()));
    const got = new Promise<Buffer>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no DHCPv6 reply in 10 s')), 10_000);
      s.once('message', (m) => (clearTimeout(t), resolve(m)));
    });
    s.send(encodeDhcp6(msg6({ type: MsgType.SOLICIT, duid: duidLlOf('02:bf:00:00:09:01'), arch: 16, oro: [59], ias: [{ iaid: 1 }] })), port, '::1');
    const d = decodeDhcp6(await got);
    if (!d.ok || 'hopCount' in d.message) throw new Error('not a client message');
    expect(d.message.type).toBe(MsgType.ADVERTISE);
    const ia = findOption(d.message.options, 'iaNa')!;
    expect(findOption(ia.options, 'iaAddr')!.address).toBe('::10');
    expect(findOption(d.message.options, 'bootfileUrl')!.url).toBe('http://[::1]:8080/ipxe.efi');
    // a Rapid Commit Solicit binds at once: the binding is in the database before the Reply leaves
    const bound = new Promise<Buffer>((resolve) => s.once('message', resolve));
    s.send(encodeDhcp6(msg6({ type: MsgType.SOLICIT, duid: duidLlOf('02:bf:00:00:09:02'), rapidCommit: true, ias: [{ iaid: 3 }] })), port, '::1');
    const r = decodeDhcp6(await bound);
    expect(r.ok && r.message.type).toBe(MsgType.REPLY);
    expect(await server.db.db.select({ address: dhcp6Leases.address, duid: dhcp6Leases.duid, iaid: dhcp6Leases.iaid, state: dhcp6Leases.state }).from(dhcp6Leases)).toEqual([
      { address: '::11', duid: '0003000102bf00000902', iaid: 3, state: 'bound' },
    ]);
  } finally {
    s.close();
  }
  // the counters are on /metrics (server/dhcp6-metrics.ts)
  const text = await (await fetch(`${server.url}/metrics`)).text();
  expect(text).toMatch(/^bootfarm_dhcp6_messages_total\{[^}]*event="replied"[^}]*\} 2$/m);
  await server.stop();
  server = undefined;
  // the port is free again: another socket binds it
  const again = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  await new Promise<void>((resolve, reject) => (again.once('error', reject), again.bind({ address: '::', port }, () => resolve())));
  again.close();
}, 120_000);
