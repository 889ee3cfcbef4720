// Real clients against the real server process, in network namespaces this file creates and deletes:
//
//   client ns  [bfc] ── veth ── [bfs 10.66.0.1]  server ns  [bfs2 10.66.9.1] ── veth ── [bfr1 10.66.9.2] relay ns [bfr2 10.67.0.1] ── veth ── [bfd] relayed-client ns
//
// Clients: busybox udhcpc, ISC dhclient, ISC dhcrelay; a PXE client is the QEMU iPXE ROM's captured
// DISCOVER replayed from a UDP socket in the client namespace (pxe-client.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DhcpConfigInput } from './config.ts';
import { Lab, type Proc, ip, repoRoot, sh } from '../../test/support/dhcp/netns.ts';

const lab = new Lab();
const dir = mkdtempSync(join(tmpdir(), 'bfdhcp-'));
const id = lab.id;
const IF = { s: `bfs${id}`, c: `bfc${id}`, s2: `bfs2${id}`, r1: `bfr1${id}`, r2: `bfr2${id}`, d: `bfd${id}` };
let S: string, C: string, R: string, D: string;
const RESERVED_MAC = '02:bf:00:00:00:01';

const script = join(dir, 'event.sh');
writeFileSync(
  script,
  `#!/bin/sh
echo "EVENT \${1:-$reason} ip=\${ip:-$new_ip_address} router=\${router:-$new_routers} hostname=\${hostname:-$new_host_name} lease=\${lease:-$new_dhcp_lease_time} serverid=\${serverid:-$new_dhcp_server_identifier}"
`,
  { mode: 0o755 },
);
const field = (line: string, key: string) => new RegExp(`\\b${key}=(\\S*)`).exec(line)?.[1] ?? '';

function startServer(name: string, config: DhcpConfigInput & Record<string, unknown>): Proc {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  return lab.run(S, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/serve.ts'), file]);
}
const logged = (msg: string, extra: (o: Record<string, unknown>) => boolean = () => true) => (line: string) => {
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    return o.msg === msg && extra(o);
  } catch {
    return false;
  }
};

const udhcpc = (ns: string, iface: string, extra: string[] = []) => lab.run(ns, ['busybox', 'udhcpc', '-i', iface, '-f', '-t', '4', '-T', '1', '-A', '1', '-s', script, ...extra]);

beforeAll(() => {
  S = lab.ns('s');
  C = lab.ns('c');
  R = lab.ns('r');
  D = lab.ns('d');
  lab.link({ ns: S, name: IF.s, addr: '10.66.0.1/24' }, { ns: C, name: IF.c });
  lab.link({ ns: S, name: IF.s2, addr: '10.66.9.1/24' }, { ns: R, name: IF.r1, addr: '10.66.9.2/24' });
  lab.link({ ns: R, name: IF.r2, addr: '10.67.0.1/24' }, { ns: D, name: IF.d });
  // the relay forwards to 10.66.0.1; replies go to giaddr 10.67.0.1 through the relay
  sh('ip', ['netns', 'exec', R, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  ip('-n', R, 'route', 'add', '10.66.0.0/24', 'via', '10.66.9.1');
  ip('-n', S, 'route', 'add', '10.67.0.0/24', 'via', '10.66.9.2');
});

afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('full mode with real clients', () => {
  let server: Proc;
  beforeAll(async () => {
    server = startServer('full', {
      mode: 'full',
      interface: IF.s,
      serverIp: '10.66.0.1',
      httpBase: 'http://10.66.0.1:8080',
      pools: [
        { subnet: '10.66.0.0/24', range: { start: '10.66.0.100', end: '10.66.0.150' }, routers: ['10.66.0.1'], dns: ['10.66.0.1'] },
        { subnet: '10.67.0.0/24', range: { start: '10.67.0.100', end: '10.67.0.150' }, routers: ['10.67.0.1'] },
      ],
      leaseSeconds: 600,
      hosts: [{ mac: RESERVED_MAC, ipv4: '10.66.0.42', hostname: 'resv-node', allowBoot: true }],
      logLevel: 'debug',
    });
    await server.waitFor(logged('DHCP server listening'), 20_000);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('busybox udhcpc: DISCOVER/OFFER/REQUEST/ACK, lease persisted before the ACK', async () => {
    const client = udhcpc(C, IF.c, ['-q', '-n']);
    const bound = await client.waitFor((l) => l.startsWith('EVENT bound'));
    expect(field(bound, 'ip')).toMatch(/^10\.66\.0\.(1[0-4]\d|150)$/);
    expect(field(bound, 'router')).toBe('10.66.0.1');
    expect(field(bound, 'serverid')).toBe('10.66.0.1');
    expect(field(bound, 'lease')).toBe('600');
    await server.waitFor(logged('lease bound', (o) => o.ip === field(bound, 'ip')));
    expect(await client.stop()).toBe(0);
  });

  it('ISC dhclient: gets a lease', async () => {
    const leases = join(dir, 'dhclient.leases');
    writeFileSync(leases, '');
    const client = lab.run(C, ['dhclient', '-d', '-1', '-v', '-sf', script, '-lf', leases, '-pf', join(dir, 'dhclient.pid'), IF.c]);
    const bound = await client.waitFor((l) => /^EVENT (BOUND|REBOOT)/.test(l), 15_000);
    expect(field(bound, 'ip')).toMatch(/^10\.66\.0\.\d+$/);
    expect(field(bound, 'lease')).toBe('600');
    await client.stop();
  });

  it('reservation by MAC: the reserved address and hostname', async () => {
    ip('-n', C, 'link', 'set', IF.c, 'address', RESERVED_MAC);
    const client = udhcpc(C, IF.c, ['-q', '-n']);
    const bound = await client.waitFor((l) => l.startsWith('EVENT bound'));
    expect(field(bound, 'ip')).toBe('10.66.0.42');
    expect(field(bound, 'hostname')).toBe('resv-node');
  });

  it('renew (unicast REQUEST) then release on exit', async () => {
    const client = udhcpc(C, IF.c, ['-R']);
    const bound = await client.waitFor((l) => l.startsWith('EVENT bound'));
    const addr = field(bound, 'ip');
    // udhcpc leaves addressing to its script; give the interface the address so the renewal can go unicast
    ip('-n', C, 'addr', 'replace', `${addr}/24`, 'dev', IF.c);
    const before = server.lines.filter(logged('lease bound', (o) => o.ip === addr)).length;
    client.child.kill('SIGUSR1'); // udhcpc: renew now
    const renewed = await client.waitFor((l) => l.startsWith('EVENT renew'));
    expect(field(renewed, 'ip')).toBe(addr);
    await server.waitFor(() => server.lines.filter(logged('lease bound', (o) => o.ip === addr)).length > before);
    await client.stop('SIGTERM'); // -R: send DHCPRELEASE
    await server.waitFor(logged('lease released', (o) => o.ip === addr));
    ip('-n', C, 'addr', 'flush', 'dev', IF.c);
  });

  it('relay: ISC dhcrelay forwards with giaddr; the pool is the relay subnet; replies go back through it', async () => {
    const relay = lab.run(R, ['dhcrelay', '-d', '-4', '-iu', IF.r1, '-id', IF.r2, '10.66.0.1']);
    await new Promise((r) => setTimeout(r, 500));
    const client = udhcpc(D, IF.d, ['-q', '-n']);
    const bound = await client.waitFor((l) => l.startsWith('EVENT bound'), 15_000);
    expect(field(bound, 'ip')).toMatch(/^10\.67\.0\.\d+$/);
    expect(field(bound, 'router')).toBe('10.67.0.1');
    await relay.stop();
  });

  it('interface binding: a client broadcasting on another interface of the server host gets no answer', async () => {
    // bfs2 carries no DHCP service: replies leave from the socket bound to 10.66.0.1, i.e. out of bfs only
    const client = udhcpc(R, IF.r1, ['-q', '-n', '-t', '2']);
    await client.waitFor((l) => /no lease|failing/.test(l), 15_000);
    expect(client.lines.some((l) => l.startsWith('EVENT bound'))).toBe(false);
  });
});

describe('proxy mode with a PXE client', () => {
  let server: Proc;
  beforeAll(async () => {
    server = startServer('proxy', { mode: 'proxy', interface: IF.s, serverIp: '10.66.0.1', httpBase: 'http://10.66.0.1:8080', logLevel: 'debug' });
    await server.waitFor(logged('DHCP server listening'), 20_000);
  });
  afterAll(async () => {
    await server.stop();
  });

  it('answers the iPXE ROM DISCOVER on 67 (broadcast) and a ProxyDHCP REQUEST on 4011 (unicast); ignores udhcpc', async () => {
    ip('-n', C, 'addr', 'replace', '10.66.0.77/24', 'dev', IF.c);
    ip('-n', C, 'route', 'add', 'default', 'dev', IF.c); // a limited broadcast needs a route to leave
    const pxe = lab.run(C, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/pxe-client.ts'), '10.66.0.1']);
    const offer = JSON.parse((await pxe.waitFor((l) => l.startsWith('{"offer"'), 15_000)).trim()).offer;
    expect(offer).toMatchObject({ yiaddr: '0.0.0.0', file: 'http://10.66.0.1:8080/boot.ipxe', vendorClass: 'PXEClient', discoveryControl: 8 });
    const ack = JSON.parse((await pxe.waitFor((l) => l.startsWith('{"ack"'), 15_000)).trim()).ack;
    expect(ack).toMatchObject({ type: 5, file: 'http://10.66.0.1:8080/boot.ipxe', from: '10.66.0.1:4011' });
    const plain = udhcpc(C, IF.c, ['-q', '-n', '-t', '2']);
    await plain.waitFor((l) => /no lease|failing/.test(l), 15_000);
    expect(plain.lines.some((l) => l.startsWith('EVENT bound'))).toBe(false);
    ip('-n', C, 'addr', 'flush', 'dev', IF.c);
  });
});
