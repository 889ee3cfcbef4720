// A real DHCPv6 client against the real server process, in two network namespaces this file creates and deletes:
//
//   client ns bf6-c-PID [b6cID, link-local only] ── veth ── [b6sID fd5b:0:0:1::1/64] server ns bf6-s-PID [b6tID fd5b:0:0:9::1/64]
//                                                                                                   │ veth
//   relayed-client ns bf6-d-PID [b6dID] ── veth ── [b6rID fd5b:0:0:2::1/64] relay ns bf6-r-PID [b6uID fd5b:0:0:9::2/64]
//
// ISC dhclient -6 (stateful, Rapid Commit, and -S stateless; directly and through ISC dhcrelay -6) with a dhclient.conf that defines and requests option 59 and sends
// option 61 (and option 15 "iPXE" for the stateless run). Only ULA addresses inside these namespaces (fd5b::/48,
// not the host's fd00::/64 or fd01::/64). Namespaces are named by this process's PID: afterAll deletes them, and a
// run killed before that leaves them for the next run's sweepLeftovers (their PID is dead), which kills what is
// still inside and deletes them. A missing tool fails the test, naming its Debian package.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCommand } from '../../test/harness/require.ts';
import { Lab, type Proc, ip, repoRoot, sh, sweepLeftovers } from '../../test/support/dhcp/netns.ts';
import type { Dhcp6ConfigInput } from './config.ts';

const PREFIX = 'bf6';
const lab = new Lab(String(process.pid), PREFIX);
const tag = process.pid.toString(36);
const IF = { s: `b6s${tag}`, c: `b6c${tag}`, t: `b6t${tag}`, u: `b6u${tag}`, r: `b6r${tag}`, d: `b6d${tag}`, n: `b6n${tag}`, m: `b6m${tag}` };
const dir = mkdtempSync(join(tmpdir(), 'bf6-'));
let S: string, C: string, R: string, D: string;
let server: Proc;

const script = join(dir, 'event.sh');
// dhclient passes what it got in the environment (new_ip6_address, new_dhcp6_bootfile_url, …); one line per event
writeFileSync(script, `#!/bin/sh\necho "EVENT reason=$reason addr=$new_ip6_address len=$new_ip6_prefixlen url=$new_dhcp6_bootfile_url dns=$new_dhcp6_name_servers"\n`, { mode: 0o755 });
const field = (line: string, key: string) => new RegExp(`\\b${key}=(\\S*)`).exec(line)?.[1] ?? '';

function conf(name: string, extra: string): string {
  const path = join(dir, `${name}.conf`);
  writeFileSync(
    path,
    [
      'option dhcp6.bootfile-url code 59 = string;',
      'option dhcp6.client-arch-type code 61 = array of unsigned integer 16;',
      'request dhcp6.bootfile-url, dhcp6.name-servers;',
      extra,
      '',
    ].join('\n'),
  );
  return path;
}

const logged = (msg: string, extra: (o: Record<string, unknown>) => boolean = () => true) => (line: string) => {
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    return o.msg === msg && extra(o);
  } catch {
    return false;
  }
};

function dhclient(name: string, cf: string, flags: string[] = [], where: { ns: string; dev: string } = { ns: C, dev: IF.c }): { proc: Proc; leases: string } {
  const leases = join(dir, `${name}.leases`);
  writeFileSync(leases, '');
  const proc = lab.run(where.ns, ['dhclient', '-6', '-d', '-1', '-v', ...flags, '-cf', cf, '-lf', leases, '-pf', join(dir, `${name}.pid`), '-sf', script, where.dev]);
  return { proc, leases };
}

beforeAll(async () => {
  for (const [cmd, pkg] of [['ip', 'iproute2'], ['dhclient', 'isc-dhcp-client'], ['dhcrelay', 'isc-dhcp-relay']] as const) requireCommand(cmd, pkg);
  sweepLeftovers(PREFIX);
  S = lab.ns('s');
  C = lab.ns('c');
  R = lab.ns('r');
  D = lab.ns('d');
  lab.link({ ns: S, name: IF.s }, { ns: C, name: IF.c });
  lab.link({ ns: S, name: IF.t }, { ns: R, name: IF.u });
  lab.link({ ns: R, name: IF.r }, { ns: D, name: IF.d });
  // duplicate address detection would hold the addresses "tentative" for a second or more: no one else is on this wire
  for (const [ns, dev] of [
    [S, IF.s],
    [C, IF.c],
    [S, IF.t],
    [R, IF.u],
    [R, IF.r],
    [D, IF.d],
  ] as const) {
    sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.accept_dad=0`]);
    ip('-n', ns, 'link', 'set', dev, 'down');
    ip('-n', ns, 'link', 'set', dev, 'up');
  }
  ip('-n', S, 'addr', 'add', 'fd5b:0:0:1::1/64', 'dev', IF.s, 'nodad');
  ip('-n', S, 'addr', 'add', 'fd5b:0:0:9::1/64', 'dev', IF.t, 'nodad');
  ip('-n', R, 'addr', 'add', 'fd5b:0:0:9::2/64', 'dev', IF.u, 'nodad');
  ip('-n', R, 'addr', 'add', 'fd5b:0:0:2::1/64', 'dev', IF.r, 'nodad');
  sh('ip', ['netns', 'exec', R, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  ip('-n', S, 'route', 'add', 'fd5b:0:0:2::/64', 'via', 'fd5b:0:0:9::2');
  const config: Dhcp6ConfigInput & Record<string, unknown> = {
    enabled: true,
    interface: IF.s,
    serverAddress: 'fd5b:0:0:1::1',
    httpBase: 'http://[fd5b:0:0:1::1]:8080',
    pools: [
      { prefix: 'fd5b:0:0:1::/64', range: { start: 'fd5b:0:0:1::100', end: 'fd5b:0:0:1::1ff' }, dns: ['fd5b:0:0:1::1'] },
      // the relayed link: chosen by the relay's link-address
      { prefix: 'fd5b:0:0:2::/64', range: { start: 'fd5b:0:0:2::100', end: 'fd5b:0:0:2::1ff' } },
    ],
    preferredSeconds: 1800,
    validSeconds: 3600,
    logLevel: 'debug',
  };
  const file = join(dir, 'server.json');
  writeFileSync(file, JSON.stringify(config));
  server = lab.run(S, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/serve6.ts'), file]);
  await server.waitFor(logged('DHCPv6 server listening'), 20_000);
}, 40_000);

afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
  // nothing of this run is left behind
  expect(sh('ip', ['netns', 'list']).split('\n').filter((l) => l.endsWith(`-${process.pid}`) || l.includes(`-${process.pid} `))).toEqual([]);
});

describe('ISC dhclient -6 against the bootfarm DHCPv6 server', () => {
  it('stateful, UEFI PXE arch 7: an address from the pool, the TFTP boot-file URL, in the script and in the lease file', async () => {
    const { proc, leases } = dhclient('arch7', conf('arch7', 'send dhcp6.client-arch-type 7;'));
    const bound = await proc.waitFor((l) => l.startsWith('EVENT reason=BOUND6'), 20_000);
    expect(field(bound, 'addr')).toMatch(/^fd5b:0:0:1::1[0-9a-f]{2}$/);
    expect(field(bound, 'url')).toBe('tftp://[fd5b:0:0:1::1]/snponly.efi');
    expect(field(bound, 'dns')).toBe('fd5b:0:0:1::1');
    const text = readFileSync(leases, 'utf8');
    expect(text).toContain(`iaaddr ${field(bound, 'addr')} {`);
    expect(text).toMatch(/preferred-life 1800;/);
    expect(text).toMatch(/max-life 3600;/);
    expect(text).toContain('option dhcp6.bootfile-url "tftp://[fd5b:0:0:1::1]/snponly.efi";');
    // the server wrote the binding (in its store) before the Reply left
    await server.waitFor(logged('DHCPv6 lease bound', (o) => o.address === field(bound, 'addr')));
    await proc.stop();

    // dhclient -r: a Release for the lease in the lease file, from the same DUID
    const rel = lab.run(C, ['dhclient', '-6', '-r', '-v', '-cf', join(dir, 'arch7.conf'), '-lf', leases, '-pf', join(dir, 'arch7.pid'), '-sf', script, IF.c]);
    await server.waitFor(logged('DHCPv6 lease released', (o) => o.address === field(bound, 'addr')), 15_000);
    await rel.stop();
  });

  it('stateful, UEFI HTTP boot arch 16: the HTTP URL of the x64 iPXE', async () => {
    ip('-n', C, 'addr', 'flush', 'dev', IF.c, 'scope', 'global');
    const { proc } = dhclient('arch16', conf('arch16', 'send dhcp6.client-arch-type 16;'));
    const bound = await proc.waitFor((l) => l.startsWith('EVENT reason=BOUND6'), 20_000);
    expect(field(bound, 'url')).toBe('http://[fd5b:0:0:1::1]:8080/ipxe.efi');
    await proc.stop();
  });

  it('stateless (-S, Information-Request) with user class iPXE: the script URL, no address', async () => {
    ip('-n', C, 'addr', 'flush', 'dev', IF.c, 'scope', 'global');
    // RFC 8415 §21.15 user-class-data: a 2-byte length, then "iPXE"
    const { proc, leases } = dhclient('ipxe', conf('ipxe', 'option dhcp6.ipxe-user-class code 15 = string;\nsend dhcp6.client-arch-type 7;\nsend dhcp6.ipxe-user-class 00:04:69:50:58:45;'), ['-S']);
    // ISC dhclient 4.4.3 runs its script with reason RENEW6 after the Reply to an Information-Request (measured)
    const got = await proc.waitFor((l) => l.startsWith('EVENT reason='), 20_000);
    expect(field(got, 'reason')).toBe('RENEW6');
    expect(proc.lines.filter((l) => /line \d+:/.test(l))).toEqual([]); // dhclient.conf parsed without complaint
    expect(field(got, 'url')).toBe('http://[fd5b:0:0:1::1]:8080/boot.ipxe');
    expect(field(got, 'addr')).toBe('');
    await proc.stop();
    expect(readFileSync(leases, 'utf8')).not.toContain('iaaddr');
  });

  it('Rapid Commit: the client sends option 14 and takes the Reply to its Solicit (two messages, not four)', async () => {
    ip('-n', C, 'addr', 'flush', 'dev', IF.c, 'scope', 'global');
    const { proc } = dhclient('rapid', conf('rapid', 'send dhcp6.rapid-commit;\nsend dhcp6.client-arch-type 7;'));
    const bound = await proc.waitFor((l) => l.startsWith('EVENT reason=BOUND6'), 20_000);
    expect(field(bound, 'addr')).toMatch(/^fd5b:0:0:1::1[0-9a-f]{2}$/);
    // dhclient logs each message it receives: a Reply and never an Advertise
    expect(proc.lines.some((l) => /RCV: Reply message/.test(l))).toBe(true);
    expect(proc.lines.some((l) => /RCV: Advertise message/.test(l))).toBe(false);
    await proc.stop();
  });

  it('through ISC dhcrelay -6: an address from the relayed link (fd5b:0:0:2::/64) and the boot-file URL', async () => {
    const relay = lab.run(R, ['dhcrelay', '-6', '-d', '-l', IF.r, '-u', `fd5b:0:0:9::1%${IF.u}`]);
    await relay.waitFor((l) => /Sending on|Listening on/.test(l), 10_000);
    const { proc } = dhclient('relayed', conf('relayed', 'send dhcp6.client-arch-type 16;'), [], { ns: D, dev: IF.d });
    const bound = await proc.waitFor((l) => l.startsWith('EVENT reason=BOUND6'), 20_000);
    expect(field(bound, 'addr')).toMatch(/^fd5b:0:0:2::1[0-9a-f]{2}$/);
    expect(field(bound, 'url')).toBe('http://[fd5b:0:0:1::1]:8080/ipxe.efi');
    await server.waitFor(logged('DHCPv6 lease bound', (o) => o.address === field(bound, 'addr') && o.pool === 'fd5b:0:0:2::/64'));
    await proc.stop();
    await relay.stop();
  });

  it('interface binding: a Solicit arriving on another interface of the server (multicast, or unicast to its link-local there) gets no answer', async () => {
    const ll = /inet6 (fe80::[0-9a-f:]+)\//.exec(ip('-n', S, '-6', 'addr', 'show', 'dev', IF.t, 'scope', 'link'))?.[1];
    expect(ll).toBeDefined();
    const before = server.lines.filter(logged('DHCPv6 packet from another interface dropped')).length;
    const sender = lab.run(R, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/solicit6.ts'), '2000', `ff02::1:2%${IF.u}`, `${ll}%${IF.u}`]);
    const done = await sender.waitFor((l) => l.startsWith('{"replies"'), 15_000);
    expect(JSON.parse(done)).toEqual({ replies: 0 });
    // measured: exactly one drop. The unicast one reaches the socket and is dropped for its zone; the multicast one is
    // never delivered to it (the group is joined on IF.s only)
    expect(server.lines.filter(logged('DHCPv6 packet from another interface dropped')).length).toBe(before + 1);
  });

  it('starts on a link without carrier (the switch still down) and answers once the link comes up', async () => {
    // a second server on a link of its own whose far end is down: the server's side is NO-CARRIER, and libuv's
    // interface list (os.networkInterfaces) leaves it out — before, the server refused to start ("there is no interface")
    const N = lab.ns('n');
    const M = lab.ns('m');
    lab.link({ ns: N, name: IF.n }, { ns: M, name: IF.m });
    for (const [ns, dev] of [[N, IF.n], [M, IF.m]] as const) sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${dev}.accept_dad=0`]);
    ip('-n', M, 'link', 'set', IF.m, 'down');
    ip('-n', N, 'link', 'set', IF.n, 'up');
    ip('-n', N, 'addr', 'add', 'fd5b:0:0:3::1/64', 'dev', IF.n, 'nodad');
    expect(ip('-n', N, 'link', 'show', IF.n)).toMatch(/NO-CARRIER/);
    const file = join(dir, 'server-nocarrier.json');
    writeFileSync(file, JSON.stringify({ enabled: true, interface: IF.n, serverAddress: 'fd5b:0:0:3::1', httpBase: 'http://[fd5b:0:0:3::1]:8080', pools: [{ prefix: 'fd5b:0:0:3::/64', range: { start: 'fd5b:0:0:3::100', end: 'fd5b:0:0:3::1ff' } }], logLevel: 'debug' }));
    const second = lab.run(N, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/serve6.ts'), file]);
    await second.waitFor(logged('DHCPv6 interface has no carrier yet: serving once its link comes up', (o) => o.interface === IF.n), 20_000);
    await second.waitFor(logged('DHCPv6 server listening'), 20_000);
    // the switch comes back
    ip('-n', M, 'link', 'set', IF.m, 'up');
    const { proc } = dhclient('nocarrier', conf('nocarrier', 'send dhcp6.client-arch-type 7;'), [], { ns: M, dev: IF.m });
    const bound = await proc.waitFor((l) => l.startsWith('EVENT reason=BOUND6'), 30_000);
    expect(field(bound, 'addr')).toMatch(/^fd5b:0:0:3::1[0-9a-f]{2}$/);
    expect(field(bound, 'url')).toBe('tftp://[fd5b:0:0:3::1]/snponly.efi');
    await proc.stop();
    await second.stop();
  });
});
