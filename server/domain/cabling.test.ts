// Cabling compliance as a case table (named in words), and properties over arbitrary LLDP facts (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parseLldpcliJson0 } from '../../agent/facts/lldp.ts';
import { cablingSubjectOf, checkCabling, selectCablingPlan, type NodeCablingPlan, type StoredCablingPlan } from './cabling.ts';

// real lldpd peers (test/fixtures/agent/README.md): netns b saw leaf-sw01 (port ID bfag-a0, description
// "Ethernet1/7 to node R740-Test") on bfag-b0 and leaf-sw02 (port ID Eth1/8) on bfag-b1, as the agent reports them
const realLldp = parseLldpcliJson0(readFileSync(new URL('../../test/fixtures/agent/lldpcli-json0-two-neighbors.json', import.meta.url), 'utf8'));
const realNics = [
  { name: 'bfag-b0', mac: '52:54:00:bb:00:01' },
  { name: 'bfag-b1', mac: '52:54:00:bb:00:02' },
];

const nics = [
  { name: 'eno1', mac: '52:54:00:00:00:01' },
  { name: 'eno2', mac: '52:54:00:00:00:02' },
];
const nb = (iface: string, sw: string, port: string, by: 'name' | 'chassis' = 'name') =>
  by === 'name' ? { interface: iface, systemName: sw, chassisId: '00:11:22:33:44:55', portId: port } : { interface: iface, chassisId: sw, portDescription: port };
const plan = (policy: 'warn' | 'block' = 'block'): NodeCablingPlan => ({
  policy,
  links: [
    { nic: 'eno1', switch: 'leaf-a', port: 'Ethernet1/1' },
    { nic: '52-54-00-00-00-02', switch: 'leaf-b', port: 'Ethernet1/1' },
  ],
});

const cases: { name: string; lldp: unknown; plan?: NodeCablingPlan | null; want: { status: string; action: string; kinds: string[]; reason?: RegExp } }[] = [
  { name: 'cabled as planned (NIC by name and by MAC)', lldp: [nb('eno1', 'leaf-a', 'Ethernet1/1'), nb('eno2', 'leaf-b', 'Ethernet1/1')], want: { status: 'compliant', action: 'pass', kinds: [] } },
  { name: 'switch named by chassis ID, port by description, different case', lldp: [nb('eno1', 'LEAF-A', 'ethernet1/1', 'chassis'), nb('eno2', 'leaf-b', 'Ethernet1/1')], want: { status: 'compliant', action: 'pass', kinds: [] } },
  { name: 'one NIC on the wrong port', lldp: [nb('eno1', 'leaf-a', 'Ethernet1/9'), nb('eno2', 'leaf-b', 'Ethernet1/1')], want: { status: 'failed', action: 'block', kinds: ['wrong-port'], reason: /eno1 expected on leaf-a Ethernet1\/1, seen on leaf-a Ethernet1\/9/ } },
  { name: 'one NIC sees no switch', lldp: [nb('eno2', 'leaf-b', 'Ethernet1/1')], want: { status: 'failed', action: 'block', kinds: ['missing-link'], reason: /eno1 expected on leaf-a Ethernet1\/1, no LLDP neighbour seen/ } },
  { name: 'swapped cables: each NIC on the other\'s planned port', lldp: [nb('eno1', 'leaf-b', 'Ethernet1/1'), nb('eno2', 'leaf-a', 'Ethernet1/1')], want: { status: 'failed', action: 'block', kinds: ['swapped', 'swapped'], reason: /eno1 and 52-54-00-00-00-02 are swapped: eno1 expected on leaf-a Ethernet1\/1, seen on leaf-b Ethernet1\/1/ } },
  { name: 'both wrong but not onto each other\'s port is not a swap', lldp: [nb('eno1', 'leaf-b', 'Ethernet1/2'), nb('eno2', 'leaf-a', 'Ethernet1/1')], want: { status: 'failed', action: 'block', kinds: ['wrong-port', 'wrong-port'] } },
  { name: 'no LLDP facts at all (probe failed)', lldp: undefined, want: { status: 'failed', action: 'block', kinds: ['missing-link', 'missing-link'] } },
  { name: 'policy warn only warns', lldp: [], plan: plan('warn'), want: { status: 'failed', action: 'warn', kinds: ['missing-link', 'missing-link'] } },
  { name: 'a planned MAC the node does not have', lldp: [], plan: { policy: 'block', links: [{ nic: 'aa:bb:cc:dd:ee:ff', switch: 'leaf-a', port: '1' }] }, want: { status: 'failed', action: 'block', kinds: ['unknown-nic'] } },
  { name: 'no plan for the node', lldp: [], plan: null, want: { status: 'unplanned', action: 'pass', kinds: [] } },
];

describe('checkCabling', () => {
  for (const c of cases) {
    it(c.name, () => {
      const v = checkCabling(c.plan === undefined ? plan() : c.plan, { nics, lldp: c.lldp });
      expect(v.status).toBe(c.want.status);
      expect(v.action).toBe(c.want.action);
      expect(v.problems.map((p) => p.kind)).toEqual(c.want.kinds);
      if (c.want.reason) expect(v.reason).toMatch(c.want.reason);
      if (v.status !== 'failed') expect(v.reason).toBeUndefined();
    });
  }

  it('never throws on arbitrary facts, and a failure always has a reason (property)', () => {
    const link = fc.record({ nic: fc.string(), switch: fc.string(), port: fc.string() });
    const anyPlan = fc.option(fc.record({ policy: fc.constantFrom('warn' as const, 'block' as const), links: fc.array(link, { maxLength: 5 }) }), { nil: null });
    const neighbour = fc.record({ interface: fc.oneof(fc.constantFrom('eno1', 'eno2'), fc.anything()), systemName: fc.anything(), chassisId: fc.anything(), portId: fc.anything(), portDescription: fc.anything() }, { requiredKeys: [] });
    const facts = fc.oneof(fc.anything(), fc.record({ nics: fc.oneof(fc.anything(), fc.constant(nics)), lldp: fc.oneof(fc.anything(), fc.array(neighbour, { maxLength: 6 })) }));
    fc.assert(
      fc.property(anyPlan, facts, (p, f) => {
        const v = checkCabling(p, f);
        expect(['compliant', 'failed', 'unplanned']).toContain(v.status);
        expect(v.status === 'failed').toBe(v.problems.length > 0);
        if (v.status === 'failed') expect(typeof v.reason).toBe('string');
        // every problem names a NIC of the plan, and swaps come in pairs
        for (const pr of v.problems) expect(p!.links.map((l) => l.nic)).toContain(pr.nic);
        expect(v.problems.filter((x) => x.kind === 'swapped').length % 2).toBe(0);
      }),
      { numRuns: 500 },
    );
  });

  it('a node cabled exactly as planned is compliant whatever the names (property)', () => {
    const id = fc.stringMatching(/^[A-Za-z0-9/._-]{1,20}$/);
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(id, id, id), { minLength: 1, maxLength: 4, selector: (t) => t[0].toLowerCase() }), (links) => {
        const p: NodeCablingPlan = { policy: 'block', links: links.map(([nic, sw, port]) => ({ nic: `if-${nic}`, switch: sw, port })) };
        const lldp = links.map(([nic, sw, port]) => ({ interface: `if-${nic}`, systemName: sw, portId: port }));
        expect(checkCabling(p, { nics: [], lldp }).status).toBe('compliant');
      }),
    );
  });
});

describe('checkCabling on the facts of real lldpd peers', () => {
  const sw1 = { switch: 'leaf-sw01.rack12.example', port: 'Ethernet1/7 to node R740-Test' };
  const sw2 = { switch: '52:54:00:cc:00:01', port: 'Eth1/8' };
  it('cabled as planned, the switch named by chassis MAC and the port by its description', () => {
    const v = checkCabling({ policy: 'block', links: [{ nic: 'bfag-b0', ...sw1 }, { nic: '52:54:00:BB:00:02', ...sw2 }] }, { nics: realNics, lldp: realLldp });
    expect(v).toMatchObject({ status: 'compliant', action: 'pass' });
  });
  it('swapped cables are named as swapped, also when the plan names ports by description', () => {
    const v = checkCabling({ policy: 'warn', links: [{ nic: 'bfag-b0', ...sw2 }, { nic: 'bfag-b1', ...sw1 }] }, { nics: realNics, lldp: realLldp });
    expect(v.problems.map((p) => p.kind)).toEqual(['swapped', 'swapped']);
    expect(v.action).toBe('warn');
    expect(v.reason).toBe('cabling: bfag-b0 and bfag-b1 are swapped: bfag-b0 expected on 52:54:00:cc:00:01 Eth1/8, seen on leaf-sw01.rack12.example bfag-a0; bfag-b1 and bfag-b0 are swapped: bfag-b1 expected on leaf-sw01.rack12.example Ethernet1/7 to node R740-Test, seen on leaf-sw02.rack12.example Eth1/8');
  });
  it('a wrong port names what to walk to and what is there', () => {
    const v = checkCabling({ policy: 'block', links: [{ nic: 'bfag-b1', switch: 'leaf-sw02.rack12.example', port: 'Eth1/3' }] }, { nics: realNics, lldp: realLldp });
    expect(v.reason).toBe('cabling: bfag-b1 expected on leaf-sw02.rack12.example Eth1/3, seen on leaf-sw02.rack12.example Eth1/8');
  });
});

describe('selectCablingPlan', () => {
  const p = (scope: 'node' | 'rack', key: string, nic = key): StoredCablingPlan => ({ scope, key, policy: 'warn', links: [{ nic, switch: 's', port: '1' }] });
  const uuid = '4c4c4544-0042-3510-8052-b4c04f4e0601';
  const facts = { system: { uuid, serial: 'SN-1' }, nics: [{ name: 'eno1', mac: '52:54:00:00:00:01' }, { name: 'eno2', mac: '52:54:00:00:00:02' }] };
  const subject = cablingSubjectOf(uuid, { rack: 'R12' }, facts);
  const cases: { name: string; plans: StoredCablingPlan[]; want: string | null }[] = [
    { name: 'the UUID wins over serial, MAC and rack', plans: [p('rack', 'r12'), p('node', '52-54-00-00-00-01'), p('node', 'sn-1'), p('node', uuid.toUpperCase())], want: uuid.toUpperCase() },
    { name: 'then the serial', plans: [p('rack', 'r12'), p('node', '5254.0000.0002'), p('node', 'SN-1')], want: 'SN-1' },
    { name: 'then a MAC in any spelling', plans: [p('rack', 'r12'), p('node', '5254.0000.0002')], want: '5254.0000.0002' },
    { name: 'then the rack label', plans: [p('rack', 'r11'), p('rack', 'r12')], want: 'r12' },
    { name: 'nothing matches', plans: [p('rack', 'r11'), p('node', 'SN-2')], want: null },
  ];
  for (const c of cases) it(c.name, () => expect(selectCablingPlan(c.plans, subject)?.key ?? null).toBe(c.want));
  it('a node without a rack label and odd facts has no plan', () => {
    expect(selectCablingPlan([p('rack', 'r12')], cablingSubjectOf(uuid, {}, 'garbage'))).toBeNull();
  });
});
