// The compute network's planner, parsers and runner on captured iproute2/arping output (test/fixtures/agent/README.md
// says where each came from) and FakeIp. The bond and vlan fixtures are hand-written: this machine's kernel has
// neither the bonding nor the 8021q module (`ip link add x type bond` → "Unknown device type"), so their JSON was
// written from iproute2's printers (ip/iplink_bond.c bond_print_opt "mode"/"miimon", iplink_bond_slave.c, iplink_vlan.c
// "protocol"/"id") around the real veth capture; the "master" field's shape is from a real bridge port capture.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Detail, DetailAddress } from '../../server/contract/agent.ts';
import { commandLine, type Exec } from '../exec.ts';
import { FakeIp } from '../../test/support/agent/fake-ip.ts';
import { fixture } from '../../test/support/agent/fixtures.ts';
import { applyNetwork, arpProbe, canonicalPrefixed, configuredFrom, parseIpAddr, parseIpLink, parseIpRoute, planNetwork, type NetState } from './index.ts';
import { parseRouteGet } from './apply.ts';
import { bootDestinations } from '../flow.ts';

const UUID = '4c4c4544-0042-3510-8052-b4c04f4e4d32';

const BONDED: Detail = {
  uuid: UUID,
  hostname: 'hv-r12-07',
  interfaces: [],
  bond: { name: 'bond0', mode: '802.3ad', members: ['eno1', 'eno2'], spread: 'two-switches' },
  vlans: [{ device: 'bond0.20', link: 'bond0', id: 20 }],
  addresses: [
    { network: 'prod', interface: 'bond0', device: 'bond0', address: '10.20.0.7/24', family: 4, gateway: '10.20.0.1' },
    { network: 'storage6', interface: 'bond0', device: 'bond0.20', address: 'fd00:20::7/64', family: 6, vlan: 20 },
  ],
  routes: [{ to: 'default', via: '10.20.0.1', device: 'bond0' }],
  dns: ['10.20.0.53', 'fd00:20::53'],
  labels: {},
};

/** the hand-written bonded node with BONDED applied (see the file comment) */
const bondedState = (): NetState => ({
  links: parseIpLink(fixture('ip-j-d-link-bond-vlan.handwritten.json')),
  addresses: parseIpAddr(fixture('ip-j-addr-bond-vlan.handwritten.json')),
  routes: parseIpRoute('[{"dst":"default","gateway":"10.20.0.1","dev":"bond0","flags":[]},{"dst":"10.20.0.0/24","dev":"bond0","protocol":"kernel","scope":"link","prefsrc":"10.20.0.7","flags":[]}]', 4),
});

/** the same node before: three NICs, the boot lease on eno3 with its default route */
const bareState = (): NetState => ({
  links: [
    { name: 'lo', up: true },
    { name: 'eno1', up: true },
    { name: 'eno2', up: false },
    { name: 'eno3', up: true },
  ],
  addresses: [{ device: 'eno3', address: '192.168.50.23/24', family: 4, scope: 'global', dynamic: false, tentative: false, dadfailed: false }],
  routes: [{ family: 4, to: 'default', via: '192.168.50.1', device: 'eno3' }],
});

describe('parsers on real ip -j output', () => {
  it('links: up flag, kind, and a bridge port\'s master', () => {
    expect(parseIpLink(fixture('ip-j-d-link-fresh.json'))).toEqual([
      { name: 'lo', up: true },
      { name: 'bfnc0', up: false, kind: 'veth' },
    ]);
    expect(parseIpLink(fixture('ip-j-d-link-bridge-port.json')).find((l) => l.name === 'bfnb0')).toEqual({ name: 'bfnb0', up: true, kind: 'veth', master: 'bfbr0' });
  });

  it('addresses: family, prefix, scope and the DAD flags', () => {
    const a = parseIpAddr(fixture('ip-j-addr-dadfailed.json'));
    expect(a.filter((x) => x.device === 'bfna0').map((x) => [x.address, x.scope, x.tentative, x.dadfailed])).toEqual([
      ['10.77.0.7/24', 'global', false, false],
      ['fd00:77::9/64', 'global', true, true],
      ['fd00:77::7/64', 'global', false, false],
      ['fe80::4c36:42ff:feb0:999e/64', 'link', false, false],
    ]);
    expect(a.find((x) => x.device === 'lo' && x.family === 4)).toMatchObject({ address: '127.0.0.1/8', scope: 'host' });
  });

  it('routes, both families', () => {
    expect(parseIpRoute(fixture('ip-j-route-v4.json'), 4)).toEqual([
      { family: 4, to: 'default', via: '10.77.0.1', device: 'bfna0' },
      { family: 4, to: '10.77.0.0/24', device: 'bfna0' },
    ]);
    expect(parseIpRoute(fixture('ip-j-route-v6.json'), 6).map((r) => r.to)).toEqual(['fd00:77::/64', 'fe80::/64']);
  });

  it('says what is wrong with output that is not iproute2 JSON (busybox ip has no -j)', () => {
    expect(() => parseIpLink('1: lo: <LOOPBACK,UP> mtu 65536')).toThrow(/ip -j -d link show: not JSON .*busybox/);
  });

  it('hand-written bond + vlan: mode from linkinfo, members by master, vlan id and parent', () => {
    const links = parseIpLink(fixture('ip-j-d-link-bond-vlan.handwritten.json'));
    expect(links.find((l) => l.name === 'bond0')).toEqual({ name: 'bond0', up: true, kind: 'bond', bondMode: '802.3ad' });
    expect(links.filter((l) => l.master === 'bond0').map((l) => l.name)).toEqual(['eno1', 'eno2']);
    expect(links.find((l) => l.name === 'bond0.20')).toEqual({ name: 'bond0.20', up: true, kind: 'vlan', link: 'bond0', vlanId: 20 });
  });
});

describe('configuredFrom (the heartbeat\'s read-back)', () => {
  it('reports the detail\'s devices only, without link-local, SLAAC (dynamic) or the boot NIC\'s lease, and the bond', () => {
    expect(configuredFrom(bondedState(), BONDED)).toEqual({
      addresses: [
        { device: 'bond0', address: '10.20.0.7/24' },
        { device: 'bond0.20', address: 'fd00:20::7/64' },
      ],
      bond: { name: 'bond0', mode: '802.3ad', members: ['eno1', 'eno2'] },
    });
  });

  it('leaves out an address that failed DAD: present but unusable, so the server sees it missing', () => {
    const s: NetState = { links: parseIpLink(fixture('ip-j-d-link-veth.json')), addresses: parseIpAddr(fixture('ip-j-addr-dadfailed.json')), routes: [] };
    const d = { addresses: [{ network: 'n', interface: 'bfna0', device: 'bfna0', address: 'fd00:77::9/64', family: 6 as const }], vlans: [] };
    expect(configuredFrom(s, d).addresses.map((a) => a.address)).toEqual(['10.77.0.7/24', 'fd00:77::7/64']);
  });
});

describe('planNetwork', () => {
  it('bare NICs → bond (mode, miimon), members down/master/up, vlan, addresses, the default route replaced', () => {
    expect(planNetwork(BONDED, bareState()).map((s) => commandLine('ip', s.args))).toEqual([
      'ip link add bond0 type bond mode 802.3ad miimon 100',
      'ip link set eno1 down',
      'ip link set eno1 master bond0',
      'ip link set eno1 up',
      'ip link set eno2 down',
      'ip link set eno2 master bond0',
      'ip link set eno2 up',
      'ip link set bond0 up',
      'ip link add link bond0 name bond0.20 type vlan id 20',
      'ip link set bond0.20 up',
      'ip addr add 10.20.0.7/24 dev bond0',
      'ip addr add fd00:20::7/64 dev bond0.20',
      'ip -4 route replace default via 10.20.0.1 dev bond0',
    ]);
  });

  it('is idempotent: against the state it produces it plans nothing', () => {
    expect(planNetwork(BONDED, bondedState())).toEqual([]);
  });

  it('compares addresses canonically (a server may send fd00:20:0:0::7)', () => {
    const d = { ...BONDED, addresses: BONDED.addresses.map((a) => (a.family === 6 ? { ...a, address: 'fd00:20:0:0::7/64' } : a)) };
    expect(planNetwork(d, bondedState())).toEqual([]);
    expect(canonicalPrefixed('FD00:20:0:0::7/64')).toBe('fd00:20::7/64');
    expect(canonicalPrefixed('bond0/24')).toBeNull();
  });

  it('a replaced address: the old one out before the new one in; SLAAC, link-local and other devices untouched', () => {
    const d = { ...BONDED, addresses: [{ ...BONDED.addresses[0]!, address: '10.20.0.9/24' }, BONDED.addresses[1]!] };
    expect(planNetwork(d, bondedState()).map((s) => commandLine('ip', s.args))).toEqual(['ip addr del 10.20.0.7/24 dev bond0', 'ip addr add 10.20.0.9/24 dev bond0']);
  });

  it('a bond in another mode is rebuilt (the driver refuses a mode change with members)', () => {
    const s = bondedState();
    s.links = s.links.map((l) => (l.name === 'bond0' ? { ...l, bondMode: 'active-backup' } : l));
    expect(planNetwork(BONDED, s).map((x) => commandLine('ip', x.args)).slice(0, 9)).toEqual([
      'ip link del bond0',
      'ip link add bond0 type bond mode 802.3ad miimon 100',
      'ip link set eno1 down',
      'ip link set eno1 master bond0',
      'ip link set eno1 up',
      'ip link set eno2 down',
      'ip link set eno2 master bond0',
      'ip link set eno2 up',
      'ip link set bond0 up',
    ]);
  });

  it('a member enslaved elsewhere is released first; a vlan with the wrong id is recreated', () => {
    const s = bondedState();
    s.links = s.links.map((l) => (l.name === 'eno2' ? { ...l, master: 'br0' } : l.name === 'bond0.20' ? { ...l, vlanId: 30 } : l));
    expect(planNetwork(BONDED, s).map((x) => commandLine('ip', x.args))).toEqual([
      'ip link set eno2 nomaster',
      'ip link set eno2 down',
      'ip link set eno2 master bond0',
      'ip link set eno2 up',
      'ip link del bond0.20',
      'ip link add link bond0 name bond0.20 type vlan id 20',
      'ip link set bond0.20 up',
    ]);
  });

  it('an address that failed DAD is deleted and added again, so the kernel runs DAD once more', () => {
    const s: NetState = { links: parseIpLink(fixture('ip-j-d-link-veth.json')), addresses: parseIpAddr(fixture('ip-j-addr-dadfailed.json')), routes: parseIpRoute(fixture('ip-j-route-v4.json'), 4) };
    const a = (address: string, family: 4 | 6): DetailAddress => ({ network: 'n', interface: 'bfna0', device: 'bfna0', address, family });
    const d = { addresses: [a('10.77.0.7/24', 4), a('fd00:77::7/64', 6), a('fd00:77::9/64', 6)], vlans: [], routes: [{ to: 'default', via: '10.77.0.1', device: 'bfna0' }] };
    expect(planNetwork(d, s).map((x) => commandLine('ip', x.args))).toEqual(['ip addr del fd00:77::9/64 dev bfna0', 'ip addr add fd00:77::9/64 dev bfna0']);
  });
});

describe('the boot path (the server and the iSCSI portal) is never cut', () => {
  // the compute OS's disk is an iSCSI session over the boot NIC's DHCP address: enslaving that NIC, deleting that
  // address or moving the default route the server is reached through would take the node's disk away
  const overBoot = { ...BONDED, bond: { ...BONDED.bond!, members: ['eno1', 'eno3'] } };
  const path = [{ destination: '192.168.50.5', device: 'eno3', source: '192.168.50.23' }];

  it('a bond member that carries the boot path is refused (with the reason); the bond runs on the others', () => {
    const steps = planNetwork(overBoot, bareState(), path);
    expect(steps.filter((s) => !s.refused).map((s) => commandLine('ip', s.args))).not.toContain('ip link set eno3 master bond0');
    expect(steps.filter((s) => !s.refused).map((s) => commandLine('ip', s.args))).not.toContain('ip link set eno3 down');
    expect(steps.filter((s) => s.refused).map((s) => [commandLine('ip', s.args), s.refused])).toEqual([
      ['ip link set eno3 master bond0', expect.stringMatching(/^eno3 carries the boot path to 192\.168\.50\.5 \(from 192\.168\.50\.23\): enslaving it to bond0 would cut/)],
    ]);
    expect(steps.map((s) => commandLine('ip', s.args))).toContain('ip link set eno1 master bond0');
    // without a boot path on it, the same member is enslaved
    expect(planNetwork(overBoot, bareState()).map((s) => commandLine('ip', s.args))).toContain('ip link set eno3 master bond0');
  });

  it('the boot address is not deleted from a device the detail configures, and a default route the server is reached through is not replaced', () => {
    const onBoot: Detail = { ...BONDED, bond: undefined, vlans: [], addresses: [{ network: 'prod', interface: 'eno3', device: 'eno3', address: '10.20.0.7/24', family: 4 }], routes: [{ to: 'default', via: '10.20.0.1', device: 'eno3' }] };
    const routed = [{ destination: '10.99.0.5', device: 'eno3', source: '192.168.50.23', via: '192.168.50.1' }];
    const steps = planNetwork(onBoot, bareState(), routed);
    expect(steps.filter((s) => !s.refused).map((s) => commandLine('ip', s.args))).toEqual(['ip addr add 10.20.0.7/24 dev eno3']);
    expect(steps.filter((s) => s.refused).map((s) => commandLine('ip', s.args))).toEqual(['ip addr del 192.168.50.23/24 dev eno3', 'ip -4 route replace default via 10.20.0.1 dev eno3']);
    // nothing to protect: the lease goes and the route is replaced, as before
    expect(planNetwork(onBoot, bareState()).map((s) => commandLine('ip', s.args))).toEqual(['ip addr del 192.168.50.23/24 dev eno3', 'ip addr add 10.20.0.7/24 dev eno3', 'ip -4 route replace default via 10.20.0.1 dev eno3']);
  });

  it('an address it holds in the subnet of one it deletes is put back (the kernel drops the secondaries with their primary)', () => {
    const d: Detail = { ...BONDED, bond: undefined, vlans: [], routes: [], addresses: [{ network: 'prod', interface: 'eno3', device: 'eno3', address: '192.168.50.61/24', family: 4 }] };
    const st = bareState();
    st.addresses.push({ device: 'eno3', address: '192.168.50.61/24', family: 4, scope: 'global', dynamic: false, tentative: false, dadfailed: false });
    expect(planNetwork(d, st).map((s) => commandLine('ip', s.args))).toEqual(['ip addr del 192.168.50.23/24 dev eno3', 'ip addr replace 192.168.50.61/24 dev eno3']);
    // another subnet is not touched
    st.addresses[1] = { ...st.addresses[1]!, address: '10.9.0.61/24' };
    expect(planNetwork({ ...d, addresses: [{ ...d.addresses[0]!, address: '10.9.0.61/24' }] }, st).map((s) => commandLine('ip', s.args))).toEqual(['ip addr del 192.168.50.23/24 dev eno3']);
  });

  it('reads ip -j route get, and takes the destinations from the command line', () => {
    expect(parseRouteGet('[{"dst":"10.99.0.5","gateway":"192.168.50.1","dev":"eno3","prefsrc":"192.168.50.23","flags":[],"uid":0,"cache":[]}]', '10.99.0.5')).toEqual([{ destination: '10.99.0.5', device: 'eno3', source: '192.168.50.23', via: '192.168.50.1' }]);
    expect(parseRouteGet('[{"dst":"fd5b::1","dev":"lo","prefsrc":"fd5b::1","flags":[]}]', 'fd5b::1')).toEqual([{ destination: 'fd5b::1', device: 'lo', source: 'fd5b::1' }]);
    expect(parseRouteGet('not json', 'x')).toEqual([]);
    expect(bootDestinations({ server: 'http://192.168.50.5:8080', iscsiPortal: '192.168.50.6:3260' })).toEqual(['192.168.50.5', '192.168.50.6']);
    expect(bootDestinations({ server: 'http://[fd5b::1]:8080', iscsiPortal: '[fd5b::6]:3260' })).toEqual(['fd5b::1', 'fd5b::6']);
    expect(bootDestinations({ server: 'http://192.168.50.5', iscsiPortal: '192.168.50.5' })).toEqual(['192.168.50.5']);
  });
});

describe('arpProbe on captured busybox arping -D results', () => {
  it('exit 1 with a reply is a conflict (with the MAC), exit 0 is free, exit 2 is an error, not a conflict', async () => {
    const fake = new FakeIp({ arping: { '10.77.0.9': 'arping-D-reply', '10.77.0.50': 'arping-D-none' } });
    expect(await arpProbe(fake.exec, 'bfna0', '10.77.0.9')).toEqual({ free: false, detail: 'answered by 06:72:6d:72:e3:ca' });
    expect(await arpProbe(fake.exec, 'bfna0', '10.77.0.50')).toEqual({ free: true });
    const nodev = new FakeIp({ arping: { '10.77.0.50': 'arping-D-nodev' } });
    expect(await arpProbe(nodev.exec, 'nosuch', '10.77.0.50')).toEqual({ command: 'arping -D -c 2 -I nosuch 10.77.0.50', error: 'arping -D -c 2 -I nosuch 10.77.0.50: exit 2: arping: interface nosuch not found: No such device' });
  });
});

describe('applyNetwork with FakeIp', () => {
  let dir: string;
  beforeEach(() => void (dir = mkdtempSync(join(tmpdir(), 'bfnet-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const single = (address: string, extra: Partial<Detail> = {}): Detail => ({
    uuid: UUID,
    hostname: 'hv-r12-08',
    interfaces: [],
    vlans: [],
    addresses: [{ network: 'prod', interface: 'bfnc0', device: 'bfnc0', address, family: 4, gateway: '10.77.0.1' }],
    routes: [{ to: 'default', via: '10.77.0.1', device: 'bfnc0' }],
    dns: ['10.77.0.53'],
    labels: {},
    ...extra,
  });
  const noSleep = async () => {};

  it('an IPv4 address someone answers for is never added: the server\'s replacement is, and hostname + resolv.conf are written', async () => {
    const fake = new FakeIp({ arping: { '10.77.0.9': 'arping-D-reply' } });
    const asked: unknown[] = [];
    const r = await applyNetwork(single('10.77.0.9/24'), {
      exec: fake.exec,
      sleep: noSleep,
      resolvConf: join(dir, 'resolv.conf'),
      onConflict: async (c) => {
        asked.push({ ...c });
        return { network: 'prod', interface: 'bfnc0', device: 'bfnc0', address: '10.77.0.10/24', family: 4, gateway: '10.77.0.1' };
      },
    });
    expect(asked).toEqual([{ device: 'bfnc0', address: '10.77.0.9/24', family: 4, how: 'arp-probe', network: 'prod', detail: 'answered by 06:72:6d:72:e3:ca' }]);
    expect(fake.changes).not.toContain('ip addr add 10.77.0.9/24 dev bfnc0');
    expect(fake.calls.filter((c) => c.startsWith('arping') || c.startsWith('ip addr') || c.startsWith('hostname '))).toEqual([
      'arping -D -c 2 -I bfnc0 10.77.0.9',
      'arping -D -c 2 -I bfnc0 10.77.0.10',
      'ip addr add 10.77.0.10/24 dev bfnc0',
      'hostname hv-r12-08',
    ]);
    expect(r.failures).toEqual([]);
    expect(r.conflicts).toEqual([expect.objectContaining({ address: '10.77.0.9/24', replacement: '10.77.0.10/24' })]);
    expect(r.detail.addresses.map((a) => a.address)).toEqual(['10.77.0.10/24']);
    expect(readFileSync(join(dir, 'resolv.conf'), 'utf8')).toBe("# written by bootfarm-agent from the node's detail (GET /api/v1/agent/:uuid/detail)\nnameserver 10.77.0.53\n");
    expect(fake.hostname).toBe('hv-r12-08');
  });

  it('gives up after maxConflicts replacements that are all in use, and says so', async () => {
    const fake = new FakeIp({ arping: { '10.77.0.9': 'arping-D-reply', '10.77.0.10': 'arping-D-reply', '10.77.0.11': 'arping-D-reply' } });
    let next = 10;
    const r = await applyNetwork(single('10.77.0.9/24', { dns: [] }), {
      exec: fake.exec,
      sleep: noSleep,
      maxConflicts: 2,
      onConflict: async () => ({ network: 'prod', interface: 'bfnc0', device: 'bfnc0', address: `10.77.0.${next++}/24`, family: 4 }),
    });
    expect(r.conflicts.map((c) => c.address)).toEqual(['10.77.0.9/24', '10.77.0.10/24', '10.77.0.11/24']);
    expect(r.failures.at(-1)?.error).toBe('gave up after 2 replaced addresses: 10.77.0.11/24 on bfnc0 is in use too (arp-probe)');
    expect(fake.changes.filter((c) => c.startsWith('ip addr add'))).toEqual([]);
  });

  it('IPv6: a dadfailed address is reported, deleted and replaced in the next round', async () => {
    const fake = new FakeIp({ link: 'ip-j-d-link-veth.json' });
    // the kernel's view after the duplicate was added: the real capture (fd00:77::9 dadfailed)
    const exec: Exec = async (cmd, args, o) => {
      const r = await fake.exec(cmd, args, o);
      if (commandLine(cmd, args) === 'ip addr add fd00:77::9/64 dev bfna0') fake.addr = 'ip-j-addr-dadfailed.json';
      return r;
    };
    const a = (address: string, family: 4 | 6): DetailAddress => ({ network: family === 4 ? 'prod' : 'prod6', interface: 'bfna0', device: 'bfna0', address, family });
    const d: Detail = { ...single('x', { dns: [], hostname: '' }), addresses: [a('10.77.0.7/24', 4), a('fd00:77::7/64', 6), a('fd00:77::9/64', 6)], routes: [] };
    const found: string[] = [];
    const r = await applyNetwork(d, {
      exec,
      sleep: noSleep,
      onConflict: async (c) => {
        found.push(`${c.address} ${c.how} ${c.network}`);
        return a('fd00:77::10/64', 6);
      },
    });
    expect(found).toEqual(['fd00:77::9/64 ipv6-dad prod6']);
    expect(r.ran).toEqual([
      'ip addr add 10.77.0.7/24 dev bfna0',
      'ip addr add fd00:77::7/64 dev bfna0',
      'ip addr add fd00:77::9/64 dev bfna0',
      // round 2, planned against the capture
      'ip addr del fd00:77::9/64 dev bfna0',
      'ip addr add fd00:77::10/64 dev bfna0',
    ]);
    expect(r.failures).toEqual([]);
  });

  it('a failing step is reported with its command and the kernel\'s words; the other steps still run', async () => {
    const fake = new FakeIp({ fail: { 'ip link add link bfnc0 name bfnc0.20 type vlan id 20': { exitCode: 2, stderr: 'Error: Unknown device type.\n' } } });
    const d: Detail = {
      ...single('10.77.0.9/24', { dns: [] }),
      vlans: [{ device: 'bfnc0.20', link: 'bfnc0', id: 20 }],
      addresses: [
        { network: 'prod', interface: 'bfnc0', device: 'bfnc0', address: '10.77.0.9/24', family: 4 },
        { network: 'stor', interface: 'bfnc0', device: 'bfnc0.20', address: '10.77.20.9/24', family: 4, vlan: 20 },
      ],
    };
    const r = await applyNetwork(d, { exec: fake.exec, sleep: noSleep });
    expect(r.failures[0]).toEqual({ command: 'ip link add link bfnc0 name bfnc0.20 type vlan id 20', error: 'ip link add link bfnc0 name bfnc0.20 type vlan id 20: exit 2: Error: Unknown device type.' });
    expect(fake.changes).toContain('ip addr add 10.77.0.9/24 dev bfnc0');
    expect(fake.changes).toContain('ip -4 route replace default via 10.77.0.1 dev bfnc0');
  });

  it('a dry run prints the commands and changes nothing', async () => {
    const fake = new FakeIp();
    const printed: string[] = [];
    const r = await applyNetwork(single('10.77.0.9/24'), { exec: fake.exec, sleep: noSleep, dryRun: true, print: (l) => printed.push(l), resolvConf: join(dir, 'resolv.conf') });
    expect(printed).toEqual([
      'dry-run: ip link set bfnc0 up',
      'dry-run: ip addr add 10.77.0.9/24 dev bfnc0',
      'dry-run: ip -4 route replace default via 10.77.0.1 dev bfnc0',
      'dry-run: hostname hv-r12-08',
      `dry-run: write ${join(dir, 'resolv.conf')}: nameserver 10.77.0.53`,
    ]);
    expect(fake.changes).toEqual([]);
    expect(fake.calls.some((c) => c.startsWith('arping') || c.startsWith('hostname '))).toBe(false);
    expect(r.ran).toHaveLength(4);
  });
});
