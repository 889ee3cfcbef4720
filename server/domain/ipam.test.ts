// IPAM rules: address arithmetic as case tables, allocation as properties (fast-check) over many nodes and
// interfaces in IPv4 and IPv6 pools — no address twice, a rebuild keeps its address, exhaustion exactly when the
// pool is full — and the bond's member choice from LLDP neighbours.
import fc from 'fast-check';
import { BlockList } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  chooseAddress,
  chooseBondMembers,
  formatAddress,
  bootMacOf,
  networkPlan,
  networkMismatch,
  type Configured,
  type NetworkMismatch,
  networkProblems,
  parseAddress,
  parseCidr,
  poolSize,
  PoolExhaustedError,
  reservationProblem,
  toNetwork,
  type AllocationRequest,
  type Holding,
  type Network,
  type NetworkSpec,
} from './ipam.ts';

const spec = (over: Partial<NetworkSpec>): NetworkSpec => ({ name: 'prov', cidr: '10.20.0.0/24', gateway: null, dns: [], poolStart: null, poolEnd: null, vlan: null, ...over });

describe('address arithmetic', () => {
  const canonical: [string, string, string][] = [
    ['dotted quad', '10.20.0.7', '10.20.0.7'],
    ['IPv6 longest zero run compressed', '2001:db8:0:0:0:0:2:1', '2001:db8::2:1'],
    ['IPv6 first of two equal runs compressed (RFC 5952 §4.2.3)', '2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['IPv6 single zero group not compressed', '2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['IPv6 upper case lowered', 'FD00:20::A', 'fd00:20::a'],
    ['IPv6 all zero', '::', '::'],
    ['IPv4-mapped tail', '::ffff:192.0.2.1', '::ffff:c000:201'],
  ];
  it.each(canonical)('%s: %s → %s', (_, input, out) => {
    expect(formatAddress(parseAddress(input)!)).toBe(out);
  });

  it('refuses what is no address', () => {
    for (const bad of ['10.20.0', '10.20.0.256', 'fe80::1%eth0', 'hello', '']) expect(parseAddress(bad), bad).toBeNull();
  });

  it('round-trips every IPv6 value, and agrees with node:net on membership', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), fc.integer({ min: 0, max: 128 }), (v, prefix) => {
        const text = formatAddress({ family: 6, value: v });
        expect(parseAddress(text)).toEqual({ family: 6, value: v });
        const base = v & (((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n));
        const cidr = parseCidr(`${formatAddress({ family: 6, value: base })}/${prefix}`);
        const list = new BlockList();
        list.addSubnet(formatAddress({ family: 6, value: cidr.base }), prefix, 'ipv6');
        expect(list.check(text, 'ipv6')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a network with host bits set, naming the network meant', () => {
    expect(() => parseCidr('10.20.0.5/24')).toThrow('"10.20.0.5/24" has host bits set; the network is 10.20.0.0/24');
    expect(() => parseCidr('fd00::1/64')).toThrow('the network is fd00::/64');
    expect(() => parseCidr('10.0.0.0/33')).toThrow('an IPv4 prefix is at most /32');
    expect(() => parseCidr('10.0.0.0')).toThrow('not a network in CIDR notation');
  });

  const problems: [string, Partial<NetworkSpec>, string][] = [
    ['gateway outside', { gateway: '10.21.0.1' }, 'gateway: 10.21.0.1 is outside 10.20.0.0/24'],
    ['gateway of the other family', { gateway: 'fd00::1' }, 'gateway: fd00::1 is IPv6 but the network 10.20.0.0/24 is IPv4'],
    ['pool backwards', { poolStart: '10.20.0.200', poolEnd: '10.20.0.100' }, 'pool: poolStart 10.20.0.200 is after poolEnd 10.20.0.100'],
    ['half a pool', { poolStart: '10.20.0.10' }, 'pool: give both poolStart and poolEnd'],
    ['bad DNS server', { dns: ['10.0.0.53', 'dns.example'] }, 'dns[1]: "dns.example" is not an IP address'],
  ];
  it.each(problems)('network problem: %s', (_, over, message) => {
    expect(networkProblems(spec(over)).join('; ')).toContain(message);
  });

  it('default pools leave out the IPv4 network and broadcast addresses, and the IPv6 subnet-router anycast address', () => {
    expect(toNetwork(spec({})).pool).toEqual({ start: parseAddress('10.20.0.1')!.value, end: parseAddress('10.20.0.254')!.value });
    expect(toNetwork(spec({ cidr: '10.20.0.0/31' })).pool).toEqual({ start: parseAddress('10.20.0.0')!.value, end: parseAddress('10.20.0.1')!.value });
    expect(toNetwork(spec({ cidr: 'fd00:20::/64' })).pool.start).toBe(parseAddress('fd00:20::1')!.value);
  });
});

// ---- allocation as properties ---------------------------------------------------------------------------------

/** The store's loop without a database: choose, then record the row (what the insert or update does). */
function allocate(n: Network, rows: Holding[], req: AllocationRequest): string {
  const c = chooseAddress(n, rows, req);
  if (c.kind === 'new') rows.push({ address: c.address, nodeUuid: req.nodeUuid, interface: req.interface, mac: null, reserved: false, state: 'allocated' });
  if (c.kind === 'reservation') {
    if (c.replaces) rows.splice(rows.findIndex((r) => r.address === c.replaces), 1);
    Object.assign(rows.find((r) => r.address === c.address)!, { nodeUuid: req.nodeUuid, interface: req.interface });
  }
  return c.address;
}

const networks = [
  { label: 'IPv4 /27 with gateway in the pool', s: spec({ cidr: '10.20.0.0/27', gateway: '10.20.0.1' }) },
  { label: 'IPv4 range of 20', s: spec({ cidr: '10.20.0.0/16', poolStart: '10.20.3.250', poolEnd: '10.20.4.13' }) },
  { label: 'IPv6 /64 range of 24 across a hextet boundary', s: spec({ cidr: 'fd00:20::/64', gateway: 'fd00:20::1', poolStart: 'fd00:20::fff0', poolEnd: 'fd00:20::1:7' }) },
  { label: 'IPv6 /120', s: spec({ cidr: 'fd00:20::100/120', gateway: 'fd00:20::101' }) },
];

const uuidOf = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
const requests = fc.array(fc.record({ node: fc.integer({ min: 0, max: 60 }), iface: fc.constantFrom('bond0', 'mgmt', 'storage') }), { maxLength: 120 });

describe.each(networks)('allocation: $label', ({ s }) => {
  const n = toNetwork(s);
  const size = Number(poolSize(n));

  it('never hands out one address twice, nor the gateway, nor anything outside the pool; exhaustion exactly when the pool is full', () => {
    fc.assert(
      fc.property(requests, (reqs) => {
        const rows: Holding[] = [];
        const keys = new Set<string>();
        for (const r of reqs) {
          const req = { nodeUuid: uuidOf(r.node), interface: r.iface, macs: [] };
          const key = `${r.node}/${r.iface}`;
          if (!keys.has(key) && keys.size === size) {
            // a new key with every address taken: the error names the network and its pool
            expect(() => allocate(n, rows, req)).toThrow(PoolExhaustedError);
            expect(() => allocate(n, rows, req)).toThrow(new RegExp(`^network prov has no free address: all ${size} addresses of its pool`));
            continue;
          }
          const address = allocate(n, rows, req);
          keys.add(key);
          const v = parseAddress(address)!.value;
          expect(v >= n.pool.start && v <= n.pool.end, `${address} outside the pool`).toBe(true);
          expect(v).not.toBe(n.gateway);
        }
        expect(new Set(rows.map((r) => r.address)).size).toBe(rows.length);
        expect(rows.length).toBe(Math.min(keys.size, size));
      }),
      { numRuns: 200 },
    );
  });

  it('a rebuild (the same requests again, in any order) gets every node the same addresses', () => {
    fc.assert(
      fc.property(requests, fc.integer(), (reqs, seed) => {
        const rows: Holding[] = [];
        const first = new Map<string, string>();
        for (const r of reqs) {
          try {
            first.set(`${r.node}/${r.iface}`, allocate(n, rows, { nodeUuid: uuidOf(r.node), interface: r.iface, macs: [] }));
          } catch (e) {
            if (!(e instanceof PoolExhaustedError)) throw e;
          }
        }
        const again = [...reqs].sort((a, b) => ((a.node * 31 + seed) % 7) - ((b.node * 31 + seed) % 7));
        for (const r of again) {
          const key = `${r.node}/${r.iface}`;
          if (!first.has(key)) continue;
          expect(allocate(n, rows, { nodeUuid: uuidOf(r.node), interface: r.iface, macs: [] })).toBe(first.get(key));
        }
        expect(rows.length).toBe(first.size);
      }),
      { numRuns: 200 },
    );
  });

  it('a released address is handed out again (lowest free first)', () => {
    const rows: Holding[] = [];
    const a = allocate(n, rows, { nodeUuid: uuidOf(1), interface: 'bond0', macs: [] });
    allocate(n, rows, { nodeUuid: uuidOf(2), interface: 'bond0', macs: [] });
    rows.splice(0, 1);
    expect(allocate(n, rows, { nodeUuid: uuidOf(3), interface: 'bond0', macs: [] })).toBe(a);
  });
});

describe('reservations and conflicts', () => {
  const n = toNetwork(spec({ cidr: '10.20.0.0/24', gateway: '10.20.0.1', poolStart: '10.20.0.10', poolEnd: '10.20.0.12' }));

  it('a reservation for a MAC is claimed by the node that has it, and kept out of the pool for everyone else', () => {
    const rows: Holding[] = [{ address: '10.20.0.10', nodeUuid: null, interface: null, mac: '52:54:00:00:00:01', reserved: true, state: 'allocated' }];
    expect(allocate(n, rows, { nodeUuid: uuidOf(1), interface: 'bond0', macs: [] })).toBe('10.20.0.11');
    expect(allocate(n, rows, { nodeUuid: uuidOf(2), interface: 'bond0', macs: ['52:54:00:00:00:01'] })).toBe('10.20.0.10');
    expect(allocate(n, rows, { nodeUuid: uuidOf(2), interface: 'bond0', macs: ['52:54:00:00:00:01'] })).toBe('10.20.0.10');
  });

  it('a MAC reservation made after the node got a pool address replaces it once; a pin on the node stands', () => {
    const rows: Holding[] = [];
    expect(allocate(n, rows, { nodeUuid: uuidOf(1), interface: 'bond0', macs: ['52:54:00:00:00:01'] })).toBe('10.20.0.10');
    rows.push({ address: '10.20.0.99', nodeUuid: null, interface: null, mac: '52:54:00:00:00:01', reserved: true, state: 'allocated' });
    expect(chooseAddress(n, rows, { nodeUuid: uuidOf(1), interface: 'bond0', macs: ['52:54:00:00:00:01'] })).toEqual({ kind: 'reservation', address: '10.20.0.99', replaces: '10.20.0.10' });
    expect(allocate(n, rows, { nodeUuid: uuidOf(1), interface: 'bond0', macs: ['52:54:00:00:00:01'] })).toBe('10.20.0.99');
    expect(rows.map((r) => r.address)).toEqual(['10.20.0.99']);
    // a second MAC reservation does not move a node that is now pinned
    rows.push({ address: '10.20.0.98', nodeUuid: null, interface: null, mac: '52:54:00:00:00:01', reserved: true, state: 'allocated' });
    expect(allocate(n, rows, { nodeUuid: uuidOf(1), interface: 'bond0', macs: ['52:54:00:00:00:01'] })).toBe('10.20.0.99');
  });

  it('an address in conflict is never handed out', () => {
    const rows: Holding[] = [{ address: '10.20.0.10', nodeUuid: null, interface: null, mac: null, reserved: false, state: 'conflict' }];
    expect(allocate(n, rows, { nodeUuid: uuidOf(1), interface: 'bond0', macs: [] })).toBe('10.20.0.11');
  });

  const refused: [string, { address: string; nodeUuid: string | null; mac: string | null }, string][] = [
    ['outside the network', { address: '10.21.0.5', nodeUuid: uuidOf(1), mac: null }, '10.21.0.5 is not inside network prov (10.20.0.0/24)'],
    ['the gateway', { address: '10.20.0.1', nodeUuid: uuidOf(1), mac: null }, '10.20.0.1 is the gateway of network prov'],
    ['held by another node', { address: '10.20.0.50', nodeUuid: uuidOf(1), mac: null }, `10.20.0.50 on network prov is held by node ${uuidOf(2)} (bond0)`],
  ];
  it.each(refused)('a reservation is refused: %s', (_, r, message) => {
    const rows: Holding[] = [{ address: '10.20.0.50', nodeUuid: uuidOf(2), interface: 'bond0', mac: null, reserved: false, state: 'allocated' }];
    expect(reservationProblem(n, rows, { ...r, interface: 'bond0' })?.message).toBe(message);
  });
});

describe('bond members from LLDP', () => {
  const nic = (name: string, chassis: string | null) => ({ name, mac: `52:54:00:00:00:${name.slice(-1)}0`, switchChassis: chassis });
  const cases: [string, ReturnType<typeof nic>[], string[], string][] = [
    ['two NICs on two switches', [nic('eno1', 'sw-a'), nic('eno2', 'sw-b')], ['eno1', 'eno2'], 'two-switches'],
    ['four NICs, first two on one switch: the second member is on the other switch', [nic('eno1', 'sw-a'), nic('eno2', 'sw-a'), nic('eno3', 'sw-b'), nic('eno4', 'sw-b')], ['eno1', 'eno3'], 'two-switches'],
    ['chassis IDs compared without case', [nic('eno1', 'AA:BB'), nic('eno2', 'aa:bb')], ['eno1', 'eno2'], 'one-switch'],
    ['an unplugged NIC is passed over', [nic('eno1', null), nic('eno2', 'sw-a'), nic('eno3', 'sw-b')], ['eno2', 'eno3'], 'two-switches'],
    ['no LLDP at all: the first two by name', [nic('eno3', null), nic('eno1', null), nic('eno2', null)], ['eno1', 'eno2'], 'no-lldp'],
    ['one NIC', [nic('eno1', 'sw-a')], ['eno1'], 'single'],
  ];
  it.each(cases)('%s', (_, nics, members, spread) => {
    expect(chooseBondMembers(nics)).toEqual({ members, spread });
    // the order NICs were reported in does not matter: a rebuild gets the same bond
    expect(chooseBondMembers([...nics].reverse())).toEqual({ members, spread });
  });

  it('leaves the boot NIC out when two other NICs see a switch (the compute OS never enslaves it), else keeps it a candidate', () => {
    const boot = { ...nic('eno1', 'sw-boot'), boot: true };
    expect(chooseBondMembers([boot, nic('eno2', 'sw-a'), nic('eno3', 'sw-b')])).toEqual({ members: ['eno2', 'eno3'], spread: 'two-switches' });
    expect(chooseBondMembers([nic('eno3', 'sw-b'), boot, nic('eno2', 'sw-a')])).toEqual({ members: ['eno2', 'eno3'], spread: 'two-switches' });
    // one other NIC sees a switch, the third none (likely unplugged): the boot NIC stays in, as without the flag
    expect(chooseBondMembers([boot, nic('eno2', null), nic('eno3', 'sw-b')])).toEqual({ members: ['eno1', 'eno3'], spread: 'two-switches' });
    expect(chooseBondMembers([boot, nic('eno2', 'sw-a')])).toEqual({ members: ['eno1', 'eno2'], spread: 'two-switches' });
  });

  it('picks two switches whenever the NICs see two', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ name: fc.stringMatching(/^eno[0-9]{1,2}$/), switchChassis: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }) }), { minLength: 2, maxLength: 8 }), (raw) => {
        const nics = raw.map((r, i) => ({ ...r, name: `${r.name}-${i}`, mac: `m${i}` }));
        const choice = chooseBondMembers(nics);
        expect(choice.members).toHaveLength(2);
        expect(new Set(choice.members).size).toBe(2);
        const seen = new Set(nics.map((x) => x.switchChassis).filter(Boolean));
        if (seen.size >= 2) expect(choice.spread).toBe('two-switches');
        const chassis = choice.members.map((m) => nics.find((x) => x.name === m)!.switchChassis);
        if (choice.spread === 'two-switches') expect(chassis[0]).not.toBe(chassis[1]);
      }),
    );
  });
});

describe('network plan (what detail hands the compute OS)', () => {
  const prov = toNetwork(spec({ name: 'prov', cidr: '10.20.0.0/24', gateway: '10.20.0.1', dns: ['10.20.0.53'] }));
  const storage = toNetwork(spec({ name: 'storage', cidr: 'fd00:30::/64', gateway: 'fd00:30::1', dns: ['10.20.0.53', 'fd00:30::53'], vlan: 30 }));
  const mgmt = toNetwork(spec({ name: 'mgmt', cidr: '10.40.0.0/24', gateway: '10.40.0.1' }));
  const nics = [
    { name: 'eno1', mac: '52:54:00:00:00:01', switchChassis: 'sw-a' },
    { name: 'eno2', mac: '52:54:00:00:00:02', switchChassis: 'sw-a' },
    { name: 'eno3', mac: '52:54:00:00:00:03', switchChassis: 'sw-b' },
  ];

  it('bond from two switches, VLAN device, one default route per family from the first network with a gateway, DNS without repeats', () => {
    const plan = networkPlan(nics, { name: 'bond0', mode: 'active-backup' }, [
      { network: prov, interface: 'bond0', address: '10.20.0.7' },
      { network: storage, interface: 'bond0', address: 'fd00:30::7' },
      { network: mgmt, interface: 'eno2', address: '10.40.0.9' },
    ]);
    expect(plan).toEqual({
      bond: { name: 'bond0', mode: 'active-backup', members: ['eno1', 'eno3'], spread: 'two-switches' },
      vlans: [{ device: 'bond0.30', link: 'bond0', id: 30 }],
      addresses: [
        { network: 'prov', interface: 'bond0', device: 'bond0', address: '10.20.0.7/24', family: 4, gateway: '10.20.0.1' },
        { network: 'storage', interface: 'bond0', device: 'bond0.30', address: 'fd00:30::7/64', family: 6, gateway: 'fd00:30::1', vlan: 30 },
        { network: 'mgmt', interface: 'eno2', device: 'eno2', address: '10.40.0.9/24', family: 4, gateway: '10.40.0.1' },
      ],
      routes: [
        { to: 'default', via: '10.20.0.1', device: 'bond0' },
        { to: 'default', via: 'fd00:30::1', device: 'bond0.30' },
      ],
      dns: ['10.20.0.53', 'fd00:30::53'],
    });
  });

  it('a one-NIC node gets no bond: the bond\'s addresses go on its NIC', () => {
    const plan = networkPlan([nics[0]!], { name: 'bond0', mode: '802.3ad' }, [{ network: prov, interface: 'bond0', address: '10.20.0.7' }]);
    expect(plan.bond).toBeUndefined();
    expect(plan.addresses[0]).toMatchObject({ device: 'eno1', address: '10.20.0.7/24' });
    expect(plan.routes).toEqual([{ to: 'default', via: '10.20.0.1', device: 'eno1' }]);
  });
});

describe('what the node configured against what it was handed (heartbeat)', () => {
  const prov = toNetwork(spec({ name: 'prov', cidr: 'fd00:20::/64', gateway: 'fd00:20::1' }));
  const nics = [
    { name: 'eno1', mac: 'm1', switchChassis: 'a' },
    { name: 'eno2', mac: 'm2', switchChassis: 'b' },
  ];
  const plan = networkPlan(nics, { name: 'bond0', mode: '802.3ad' }, [{ network: prov, interface: 'bond0', address: 'fd00:20::7' }]);

  it('no mismatch when it matches, in whatever spelling and order, with the kernel\'s own addresses beside', () => {
    expect(networkMismatch(plan, { addresses: [{ device: 'bond0', address: 'FD00:20:0:0::7/64' }, { device: 'bond0', address: 'fe80::5054:ff:fe00:1/64' }, { device: 'lo', address: '127.0.0.1/8' }], bond: { name: 'bond0', mode: '802.3ad', members: ['eno2', 'eno1'] } })).toBeNull();
  });

  const cases: [string, Configured, Partial<NetworkMismatch>][] = [
    ['address missing, another configured', { addresses: [{ device: 'bond0', address: 'fd00:20::8/64' }], bond: { name: 'bond0', mode: '802.3ad', members: ['eno1', 'eno2'] } }, { missing: [{ device: 'bond0', address: 'fd00:20::7/64' }], unexpected: [{ device: 'bond0', address: 'fd00:20::8/64' }] }],
    ['right address, wrong prefix', { addresses: [{ device: 'bond0', address: 'fd00:20::7/128' }], bond: { name: 'bond0', mode: '802.3ad', members: ['eno1', 'eno2'] } }, { missing: [{ device: 'bond0', address: 'fd00:20::7/64' }] }],
    ['bond in another mode', { addresses: [{ device: 'bond0', address: 'fd00:20::7/64' }], bond: { name: 'bond0', mode: 'balance-rr', members: ['eno1', 'eno2'] } }, { bond: { expected: { mode: '802.3ad', members: ['eno1', 'eno2'] }, seen: { mode: 'balance-rr', members: ['eno1', 'eno2'] } } }],
    ['no bond at all', { addresses: [{ device: 'bond0', address: 'fd00:20::7/64' }] }, { bond: { expected: { mode: '802.3ad', members: ['eno1', 'eno2'] }, seen: null } }],
  ];
  it.each(cases)('mismatch: %s', (_, seen, expected) => {
    expect(networkMismatch(plan, seen)).toMatchObject(expected);
  });
});

describe('bootMacOf: the NIC a node netbooted from, from its stage-1 facts', () => {
  it('the NIC marked boot, lower case; none when no NIC is marked, the facts are not facts, or the marked NIC is malformed', () => {
    const nic = (mac: string, boot?: boolean) => ({ name: 'eth0', mac, ...(boot === undefined ? {} : { boot }) });
    expect(bootMacOf({ nics: [nic('52:54:00:00:00:01'), nic('52:54:00:AA:00:02', true)] })).toBe('52:54:00:aa:00:02');
    expect(bootMacOf({ nics: [nic('52:54:00:00:00:01', false)] })).toBeUndefined();
    for (const notFacts of [null, undefined, 'nics', { nics: 'eth0' }, { nics: [null, 7, { boot: true }] }, { nics: [{ name: 'eth0', mac: 'not-a-mac', boot: true }] }]) expect(bootMacOf(notFacts)).toBeUndefined();
  });
});
