// Cabling compliance as a case table (named in words), and properties over arbitrary LLDP facts (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkCabling, type NodeCablingPlan } from './cabling.ts';

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
  { name: 'one NIC on the wrong port', lldp: [nb('eno1', 'leaf-a', 'Ethernet1/9'), nb('eno2', 'leaf-b', 'Ethernet1/1')], want: { status: 'failed', action: 'block', kinds: ['wrong-port'], reason: /eno1 is on leaf-a Ethernet1\/9, planned leaf-a Ethernet1\/1/ } },
  { name: 'one NIC sees no switch', lldp: [nb('eno2', 'leaf-b', 'Ethernet1/1')], want: { status: 'failed', action: 'block', kinds: ['missing-link'], reason: /eno1 sees no switch/ } },
  { name: 'swapped cables: each NIC on the other\'s planned port', lldp: [nb('eno1', 'leaf-b', 'Ethernet1/1'), nb('eno2', 'leaf-a', 'Ethernet1/1')], want: { status: 'failed', action: 'block', kinds: ['swapped', 'swapped'], reason: /eno1 and 52-54-00-00-00-02 are swapped/ } },
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
