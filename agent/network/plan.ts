// The planner (issue 16 item 1): the node's detail plus what the kernel has now → the iproute2 commands that make
// the kernel match, in the order the kernel needs them. Pure, and idempotent: planned against the state it
// produced, it returns nothing. It removes nothing it did not put there, with one exception: a global address on a
// device the detail configures that the detail does not list (a replaced conflict, a DHCP lease on the same NIC).
//
// Order, and why:
//   1. bond: create (mode + miimon), then each member down → master → up (the bonding driver enslaves only a
//      device that is down; Documentation/networking/bonding.rst), then the bond up
//   2. plain NICs that carry addresses: up
//   3. vlans (802.1Q) on their parents, then up
//   4. stale addresses out BEFORE new ones in: deleting a primary IPv4 address also deletes the secondaries of its
//      subnet unless promote_secondaries is set (ip-address(8), Documentation/networking/ip-sysctl.rst), so a
//      new address added next to an old one in the same subnet would vanish with it
//   5. addresses (IPv4 ones are ARP-probed by the runner before they are added: RFC 5227)
//   6. routes, with `replace`: a DHCP client's default route is replaced, not duplicated
import type { Detail } from '../../server/contract/agent.ts';
import { canonicalPrefixed, plannedDevices, type NetState } from './state.ts';

/** bonding's MII link monitoring interval: without it (default 0) a bond never notices a dead member */
export const BOND_MIIMON_MS = 100;

export interface Step {
  /** arguments to `ip` */
  args: string[];
  /** set on `ip addr add`: the runner probes IPv4 before it and waits for IPv6 DAD after it */
  adds?: { device: string; address: string; family: 4 | 6 };
}

export type PlanInput = Pick<Detail, 'bond' | 'vlans' | 'addresses' | 'routes'>;

const sameAddress = (a: string, b: string) => canonicalPrefixed(`${a}/0`) === canonicalPrefixed(`${b}/0`);
const key = (device: string, address: string) => `${device} ${canonicalPrefixed(address) ?? address}`;

export function planNetwork(detail: PlanInput, state: NetState): Step[] {
  const steps: Step[] = [];
  const ip = (...args: string[]) => steps.push({ args });
  const links = new Map(state.links.map((l) => [l.name, l]));
  /** devices this plan created or brought up, so a later "is it up?" sees the plan's effect */
  const upNow = new Set(state.links.filter((l) => l.up).map((l) => l.name));
  const up = (dev: string) => {
    if (upNow.has(dev)) return;
    ip('link', 'set', dev, 'up');
    upNow.add(dev);
  };

  const bond = detail.bond;
  if (bond) {
    const have = links.get(bond.name);
    if (have && (have.kind !== 'bond' || have.bondMode !== bond.mode)) {
      // the bonding driver refuses a mode change while it has members: the bond is the detail's, so rebuild it
      ip('link', 'del', bond.name);
      upNow.delete(bond.name);
    }
    const fresh = !have || have.kind !== 'bond' || have.bondMode !== bond.mode;
    if (fresh) ip('link', 'add', bond.name, 'type', 'bond', 'mode', bond.mode, 'miimon', String(BOND_MIIMON_MS));
    for (const m of bond.members) {
      const cur = links.get(m);
      if (!fresh && cur?.master === bond.name) {
        up(m);
        continue;
      }
      if (cur?.master && cur.master !== bond.name) ip('link', 'set', m, 'nomaster');
      ip('link', 'set', m, 'down');
      ip('link', 'set', m, 'master', bond.name);
      ip('link', 'set', m, 'up');
      upNow.add(m);
    }
    up(bond.name);
  }

  const vlanDevices = new Set(detail.vlans.map((v) => v.device));
  for (const d of new Set(detail.addresses.map((a) => a.device))) if (!vlanDevices.has(d) && d !== bond?.name) up(d);
  // a vlan's parent must exist and be up before the vlan is useful (a NIC named only as a vlan parent)
  for (const v of detail.vlans) if (v.link !== bond?.name) up(v.link);

  for (const v of detail.vlans) {
    const have = links.get(v.device);
    const right = have?.kind === 'vlan' && have.vlanId === v.id && have.link === v.link;
    if (have && !right) {
      ip('link', 'del', v.device);
      upNow.delete(v.device);
    }
    if (!right) ip('link', 'add', 'link', v.link, 'name', v.device, 'type', 'vlan', 'id', String(v.id));
    up(v.device);
  }

  const wanted = new Set(detail.addresses.map((a) => key(a.device, a.address)));
  const devices = plannedDevices(detail);
  // an address that failed DAD stays on the device, flagged, and is never retried by the kernel: delete it so the
  // add below runs DAD again (the conflict may have gone), unless the detail no longer wants it at all
  const present = new Set<string>();
  for (const a of state.addresses) {
    if (!devices.has(a.device) || a.scope !== 'global' || a.dynamic) continue;
    const k = key(a.device, a.address);
    if (!wanted.has(k) || a.dadfailed) ip('addr', 'del', a.address, 'dev', a.device);
    else present.add(k);
  }
  for (const a of detail.addresses) {
    if (present.has(key(a.device, a.address))) continue;
    steps.push({ args: ['addr', 'add', a.address, 'dev', a.device], adds: { device: a.device, address: a.address, family: a.family } });
    present.add(key(a.device, a.address));
  }

  for (const r of detail.routes) {
    const family = r.via.includes(':') ? 6 : 4;
    const have = state.routes.find((x) => x.family === family && (x.to === r.to || canonicalPrefixed(x.to) === canonicalPrefixed(r.to)));
    if (have && have.via && sameAddress(have.via, r.via) && have.device === r.device) continue;
    ip(`-${family}`, 'route', 'replace', r.to, 'via', r.via, 'dev', r.device);
  }
  return steps;
}
