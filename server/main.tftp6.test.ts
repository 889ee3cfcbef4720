// TFTP over IPv6 wired through startServer (issue 19 item 3): the chain a UEFI PXE client over IPv6 follows, minus the
// firmware. A DHCPv6 Solicit for arch 7 gets option 59 tftp://[::1]:PORT/snponly.efi, and tftp-hpa 5.2 fetches that
// very URL over IPv6 from bootfarm's own TFTP server (dual stack on loopback), byte for byte Debian's snponly.efi.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, expect, it } from 'vitest';
import { MsgType, decodeDhcp6, encodeDhcp6, findOption } from '../boot/dhcp6/packet.ts';
import { duidLlOf, msg6 } from '../test/support/dhcp/fakes6.ts';
import { sh, sha256File } from '../test/support/tftp/netlab.ts';
import { parseConfig } from './config.ts';
import { createLogger } from './log.ts';
import { type Running, startServer } from './main.ts';

const dirs: string[] = [];
let server: Running | undefined;
afterAll(async () => {
  await server?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** a pino logger whose lines land in `lines`, parsed */
function capture(lines: Record<string, unknown>[]) {
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return createLogger({ level: 'info', destination });
}

it('DHCPv6 option 59 names tftp://[::1]:PORT/snponly.efi and bootfarm serves it over IPv6 (and IPv4 on the same port)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bf-main-tftp6-'));
  dirs.push(dir);
  const dhcp6Port = 20000 + Math.floor(Math.random() * 20000);
  const tftpPort = dhcp6Port + 1;
  const lines: Record<string, unknown>[] = [];
  const config = parseConfig({
    dataDir: dir,
    http: { host: '127.0.0.1', port: 0 },
    auth: { tokens: [{ name: 'admin', role: 'admin', token: 'main-tftp6-admin-token-0123456789' }] },
    fleet: { enabled: false },
    tftp: { address: ['127.0.0.1', '::1'], port: tftpPort, ipxeDefaults: true },
    dhcp6: { enabled: true, interface: 'lo', serverAddress: '::1', serverDuid: '0003000102bf000000fe', httpBase: 'http://[::1]:8080', tftpBase: `tftp://[::1]:${tftpPort}`, port: dhcp6Port, pools: [{ prefix: '::/120', range: { start: '::10', end: '::20' } }] },
  });
  server = await startServer(config, { log: capture(lines) });
  expect(lines.find((l) => l['msg'] === 'TFTP serving')?.['listening']).toEqual([`127.0.0.1:${tftpPort}`, `[::1]:${tftpPort}`]);
  // the URL DHCPv6 hands out is served here: no cross-check warning (server/boot-paths.ts)
  expect(lines.filter((l) => String(l['msg']).startsWith('dhcp6 hands'))).toEqual([]);

  const s = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  let url: URL;
  try {
    await new Promise<void>((r) => s.bind({ address: '::1', port: 0 }, () => r()));
    const got = new Promise<Buffer>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no DHCPv6 reply in 10 s')), 10_000);
      s.once('message', (m) => (clearTimeout(t), resolve(m)));
    });
    // arch 7: UEFI x64 PXE, which loads by TFTP only
    s.send(encodeDhcp6(msg6({ type: MsgType.SOLICIT, duid: duidLlOf('02:bf:00:00:09:07'), arch: 7, oro: [59], ias: [{ iaid: 1 }] })), dhcp6Port, '::1');
    const d = decodeDhcp6(await got);
    if (!d.ok || 'hopCount' in d.message) throw new Error('not a client message');
    url = new URL(findOption(d.message.options, 'bootfileUrl')!.url);
  } finally {
    s.close();
  }
  expect(url.href).toBe(`tftp://[::1]:${tftpPort}/snponly.efi`);

  const want = await sha256File('/usr/lib/ipxe/snponly.efi');
  const local6 = join(dir, 'snponly6.efi');
  const r6 = await sh('tftp', ['-6', '-m', 'binary', url.hostname.slice(1, -1), url.port, '-c', 'get', url.pathname.slice(1), local6]);
  expect(r6.stdout + r6.stderr).toBe('');
  expect(await sha256File(local6)).toBe(want);
  const local4 = join(dir, 'snponly4.efi');
  await sh('tftp', ['-4', '-m', 'binary', '127.0.0.1', String(tftpPort), '-c', 'get', 'snponly.efi', local4]);
  expect(await sha256File(local4)).toBe(want);

  const text = await (await fetch(`${server.url}/metrics`)).text();
  expect(text).toMatch(/^bootfarm_tftp_transfers_completed_total\{[^}]*\} 2$/m);
  await server.stop();
  server = undefined;
}, 120_000);

it('warns at start when DHCPv6 hands out a tftp:// URL on this host that bootfarm\'s TFTP does not serve', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bf-main-tftp6-'));
  dirs.push(dir);
  const dhcp6Port = 20000 + Math.floor(Math.random() * 20000);
  const lines: Record<string, unknown>[] = [];
  const config = parseConfig({
    dataDir: dir,
    http: { host: '::1', port: 0 }, // and the HTTP listener on an IPv6 literal: its URL needs brackets
    auth: { tokens: [{ name: 'admin', role: 'admin', token: 'main-tftp6-admin-token-0123456789' }] },
    fleet: { enabled: false },
    tftp: { address: '127.0.0.1', port: dhcp6Port + 1 }, // IPv4 only: the default tftp://[::1] is not served
    dhcp6: { enabled: true, interface: 'lo', serverAddress: '::1', serverDuid: '0003000102bf000000fe', httpBase: 'http://[::1]:8080', port: dhcp6Port, pools: [{ prefix: '::/120', range: { start: '::10', end: '::20' } }] },
  });
  server = await startServer(config, { log: capture(lines) });
  const warnings = lines.filter((l) => String(l['msg']).startsWith('dhcp6 hands'));
  expect(warnings.map((l) => [l['level'], l['msg']])).toEqual([
    [40, "dhcp6 hands UEFI PXE over IPv6 tftp://[::1]/…, but bootfarm's TFTP server listens on 127.0.0.1 only: add '::1' (or '::') to tftp.address, or point dhcp6.tftpBase at the TFTP server that serves it"],
  ]);
  expect(server.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
  expect(lines.find((l) => l['msg'] === 'bootfarm serving')?.['url']).toBe(server.url);
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  await server.stop();
  server = undefined;
}, 120_000);
