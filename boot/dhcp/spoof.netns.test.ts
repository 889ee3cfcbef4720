// DECLINE / RELEASE spoofing against the real server process, with ISC dhclient as the victim (issue 13,
// "DHCP DECLINE/RELEASE spoofing tests"). Three namespaces on one bridge, all made here and deleted in
// afterAll (names carry this process's pid):
//
//   victim ns [bfv] ── veth ──┐
//                             bridge [bfb 10.70.0.1] server ns
//   forger ns [bff] ── veth ──┘   10.70.0.250, a second machine on the boot network
//
// The forger crafts DECLINEs and RELEASEs with our own codec from an ordinary UDP socket (spoof.ts): it
// copies the victim's chaddr, leaves out or gets wrong its client identifier, zeroes hlen. The proof that
// the victim's lease and address stay: the victim's dhclient keeps its address, a restarted dhclient
// gets the same address back (INIT-REBOOT), and a third machine asking for that address is given another
// one — and a genuine `dhclient -r` does free it (so the probe can tell).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Stats } from './responder.ts';
import { Lab, type Proc, ip, repoRoot, sh } from '../../test/support/dhcp/netns.ts';

const lab = new Lab(process.pid.toString(36));
const dir = mkdtempSync(join(tmpdir(), `bfspoof-${process.pid}-`));
const id = lab.id;
const IF = { br: `bfb${id}`, sv: `bfsv${id}`, v: `bfv${id}`, sf: `bfsf${id}`, f: `bff${id}` };
const SERVER = '10.70.0.1';
const FORGER = '10.70.0.250';
const VICTIM_MAC = '02:bf:70:00:00:01';
const RESERVED_MAC = '02:bf:70:00:00:42';
const RESERVED_IP = '10.70.0.42';
const cidOf = (mac: string) => `01${mac.replaceAll(':', '')}`; // what `send dhcp-client-identifier = hardware` sends
let S: string, V: string, F: string;
let server: Proc;

// dhclient's script: put the address on the interface (so the victim really holds it) and report the event
const script = join(dir, 'dhclient-script.sh');
writeFileSync(
  script,
  `#!/bin/sh
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/24" dev "$interface" ;;
  RELEASE|EXPIRE|STOP) ip addr flush dev "$interface" ;;
esac
echo "EVENT \${reason:-$1} ip=\${new_ip_address:-$ip} old=$old_ip_address"
`,
  { mode: 0o755 },
);
// a client identifier on every message (RFC 2131 §2: the same one in all of them), like udhcpc and most OS clients send
const conf = join(dir, 'dhclient.conf');
writeFileSync(conf, 'send dhcp-client-identifier = hardware;\ntimeout 20;\nretry 5;\ninitial-interval 1;\n');
const field = (line: string, key: string) => new RegExp(`\\b${key}=(\\S*)`).exec(line)?.[1] ?? '';

const json = (line: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};
const logged = (msg: string, extra: (o: Record<string, unknown>) => boolean = () => true) => (line: string) => {
  const o = json(line);
  return o?.msg === msg && extra(o);
};
const count = (msg: string, extra?: (o: Record<string, unknown>) => boolean) => server.lines.filter(logged(msg, extra)).length;

let runs = 0;
/** every run gets its own pid file: `dhclient -r` kills whatever pid it finds there, and a stale one may be reused */
function dhclient(lease: string, extra: string[] = []): Proc {
  return lab.run(V, ['dhclient', '-d', '-1', '-v', '-cf', conf, '-sf', script, '-lf', join(dir, lease), '-pf', join(dir, `run${++runs}.pid`), ...extra, IF.v]);
}
const bound = (p: Proc) => p.waitFor((l) => /^EVENT (BOUND|REBOOT)/.test(l), 30_000).then((l) => field(l, 'ip'));
const addrsOf = (ns: string, dev: string) => sh('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', dev]);

async function forge(spec: Record<string, unknown>): Promise<void> {
  const p = lab.run(F, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/spoof.ts'), SERVER, JSON.stringify({ bind: FORGER, ...spec })]);
  await p.waitFor((l) => l.startsWith('{"sent"'), 20_000);
}

/** the server's counters now (serve.ts prints them on SIGUSR2) */
async function stats(): Promise<Stats> {
  const printed = () => server.lines.filter(logged('stats'));
  const before = printed().length;
  server.child.kill('SIGUSR2');
  await server.waitFor(() => printed().length > before, 5_000);
  return json(printed().at(-1)!)!.stats as Stats;
}

/** a third machine (the forger's namespace under a fresh MAC) asks for `want` with option 50: what does it get? */
async function probe(mac: string, want: string): Promise<string> {
  ip('-n', F, 'link', 'set', IF.f, 'address', mac);
  const p = lab.run(F, ['busybox', 'udhcpc', '-i', IF.f, '-f', '-q', '-n', '-t', '4', '-T', '1', '-A', '1', '-r', want, '-s', '/bin/true']);
  await server.waitFor(logged('lease bound', (o) => o.mac === mac), 15_000);
  await p.stop();
  return server.lines.map(json).find((o) => o?.msg === 'lease bound' && o.mac === mac)!.ip as string;
}

beforeAll(async () => {
  S = lab.ns('s');
  V = lab.ns('v');
  F = lab.ns('f');
  lab.link({ ns: S, name: IF.sv }, { ns: V, name: IF.v, mac: VICTIM_MAC });
  lab.link({ ns: S, name: IF.sf }, { ns: F, name: IF.f, addr: `${FORGER}/24` });
  ip('-n', S, 'link', 'add', IF.br, 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
  for (const port of [IF.sv, IF.sf]) ip('-n', S, 'link', 'set', port, 'master', IF.br);
  ip('-n', S, 'addr', 'add', `${SERVER}/24`, 'dev', IF.br);
  ip('-n', S, 'link', 'set', IF.br, 'up');
  const file = join(dir, 'server.json');
  writeFileSync(
    file,
    JSON.stringify({
      mode: 'full',
      interface: IF.br,
      serverIp: SERVER,
      httpBase: `http://${SERVER}:8080`,
      pools: [{ subnet: '10.70.0.0/24', range: { start: '10.70.0.100', end: '10.70.0.150' }, routers: [SERVER] }],
      leaseSeconds: 600,
      hosts: [{ mac: RESERVED_MAC, ipv4: RESERVED_IP, hostname: 'resv-node', allowBoot: true }],
      logLevel: 'debug',
    }),
  );
  server = lab.run(S, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/serve.ts'), file]);
  await server.waitFor(logged('DHCP server listening'), 20_000);
}, 60_000);

afterAll(async () => {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('forged DECLINE and RELEASE against a dhclient lease', () => {
  it("forged packets for the victim's lease are dropped or ignored; the victim keeps its lease and address", async () => {
    const victim = dhclient('victim.leases');
    const addr = await bound(victim);
    expect(addr).toMatch(/^10\.70\.0\.1([0-4]\d|50)$/);
    await server.waitFor(logged('lease bound', (o) => o.ip === addr && o.clientId === cidOf(VICTIM_MAC)));
    expect(addrsOf(V, IF.v)).toContain(`${addr}/24`);

    await forge({ type: 'release', mac: VICTIM_MAC, ciaddr: addr, hlen: 0 }); // hlen 0: no hardware address at all
    await forge({ type: 'release', mac: VICTIM_MAC, ciaddr: addr }); // chaddr copied, option 61 left out
    await forge({ type: 'release', mac: VICTIM_MAC, ciaddr: addr, clientId: cidOf(VICTIM_MAC) }); // both copied, but not from the leased address
    await forge({ type: 'decline', mac: VICTIM_MAC, requestedIp: addr, clientId: cidOf('02:00:00:00:00:99') }); // wrong option 61
    await forge({ type: 'decline', mac: '02:bf:70:00:00:fe', requestedIp: addr }); // the forger's own chaddr

    await server.waitFor(logged('DHCP packet with a bad hlen dropped', (o) => o.hlen === 0));
    await server.waitFor(logged('DHCPRELEASE for a lease the sender does not own ignored', (o) => o.ip === addr));
    await server.waitFor(logged('DHCPDECLINE for a lease the sender does not own ignored', (o) => o.ip === addr));
    const s = await stats();
    expect({ badHlen: s.badHlen, foreignReleases: s.foreignReleases, foreignDeclines: s.foreignDeclines }).toEqual({ badHlen: 1, foreignReleases: 2, foreignDeclines: 2 });
    expect(count('lease released')).toBe(0);
    expect(count('address declined')).toBe(0);

    // the victim still holds its address, and nobody else is given it
    expect(addrsOf(V, IF.v)).toContain(`${addr}/24`);
    expect(victim.lines.filter((l) => l.startsWith('EVENT'))).toHaveLength(2); // PREINIT + BOUND, nothing since
    expect(await probe('02:bf:70:00:00:a1', addr)).not.toBe(addr);

    // a restarted dhclient asks for its address back (INIT-REBOOT) and gets it
    await victim.stop('SIGKILL');
    const again = dhclient('victim.leases');
    expect(await bound(again)).toBe(addr);
    expect(again.lines.some((l) => /^EVENT REBOOT/.test(l)), again.lines.join('\n')).toBe(true);
    await again.stop('SIGKILL');

    // control: the real owner's RELEASE (dhclient -r, unicast from the address, with its identifier) is honoured,
    // and then the probe is given the address — so the probe above would have seen a forged release
    const rel = dhclient('victim.leases', ['-r']);
    await server.waitFor(logged('lease released', (o) => o.ip === addr && o.mac === VICTIM_MAC), 15_000);
    await rel.stop();
    expect(await probe('02:bf:70:00:00:a2', addr)).toBe(addr);
  }, 120_000);
});

describe("forged DECLINEs against a reserved node's address", () => {
  it('a flood of DECLINEs with the copied chaddr never locks the reservation out: one warning line, counted, the node boots again with its address', async () => {
    ip('-n', V, 'addr', 'flush', 'dev', IF.v);
    ip('-n', V, 'link', 'set', IF.v, 'address', RESERVED_MAC);
    const node = dhclient('reserved.leases');
    expect(await bound(node)).toBe(RESERVED_IP);
    await server.waitFor(logged('lease bound', (o) => o.ip === RESERVED_IP && o.clientId === cidOf(RESERVED_MAC)));

    const before = await stats();
    await forge({ type: 'decline', mac: RESERVED_MAC, requestedIp: RESERVED_IP, count: 200 }); // chaddr copied, option 61 not
    await forge({ type: 'decline', mac: '02:bf:70:00:00:fe', requestedIp: RESERVED_IP }); // another chaddr
    const refused = 'DHCPDECLINE of a reserved address from another client ignored';
    await server.waitFor(logged(refused, (o) => o.source === '02:bf:70:00:00:fe'));
    let s = await stats();
    expect(s.reservedDeclinesRefused - before.reservedDeclinesRefused).toBe(201);
    expect(count(refused)).toBe(2); // one line per source per interval, not 201

    // a perfect copy (chaddr and option 61) cannot be told from the node: it is recorded as a conflict, and
    // the reservation is kept all the same
    await forge({ type: 'decline', mac: RESERVED_MAC, requestedIp: RESERVED_IP, clientId: cidOf(RESERVED_MAC) });
    await server.waitFor(logged('reserved address is in use by another machine (DHCPDECLINE from its owner); reservation kept', (o) => o.ip === RESERVED_IP));
    s = await stats();
    expect(s.reservedConflicts - before.reservedConflicts).toBe(1);
    expect(count('address declined')).toBe(0);

    // the node still has its address; rebooted from scratch (DISCOVER, no lease file) it gets it again
    expect(addrsOf(V, IF.v)).toContain(`${RESERVED_IP}/24`);
    await node.stop('SIGKILL');
    ip('-n', V, 'addr', 'flush', 'dev', IF.v);
    const fresh = dhclient('reserved-fresh.leases');
    expect(await bound(fresh)).toBe(RESERVED_IP);
    expect(fresh.lines.some((l) => /^EVENT BOUND/.test(l))).toBe(true);
    expect(count('reserved address is leased to another client')).toBe(0);
    await fresh.stop('SIGKILL');
  }, 120_000);
});
