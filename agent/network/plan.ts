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
//
// The boot path is protected (BootPath, from `ip route get` of the server and the iSCSI portal): the compute OS's
// disk is an iSCSI session and its control channel an HTTP connection, both over the boot NIC's DHCP address. A plan
// that enslaves that NIC to a bond, deletes that address, or replaces the default route those destinations use would
// cut the node from its own disk. Such steps are planned as refused (never run; reported with the reason); the rest
// of the plan goes ahead, and the server's network-mismatch event shows the operator what is missing. Moving the boot
// address onto a bond (with an iSCSI reconnect) is not done.
import type { Detail } from '../../server/contract/agent.ts';
import { canonicalPrefixed, plannedDevices, type NetState } from './state.ts';

/** bonding's MII link monitoring interval: without it (default 0) a bond never notices a dead member */
export const BOND_MIIMON_MS = 100;

export interface Step {
  /** arguments to `ip` */
  args: string[];
  /** not run: it would cut the boot path (the reason, for the failure report) */
  refused?: string;
  /** set on `ip addr add`: the runner probes IPv4 before it and waits for IPv6 DAD after it */
  adds?: { device: string; address: string; family: 4 | 6 };
}

export type PlanInput = Pick<Detail, 'bond' | 'vlans' | 'addresses' | 'routes'>;

/** How the node reaches what it cannot lose (the server, the iSCSI portal): `ip route get` of each. */
export interface BootPath {
  destination: string;
  device: string;
  /** the local address the kernel uses for it (prefsrc) */
  source?: string;
  /** the gateway, when the destination is not on-link */
  via?: string;
}

const sameAddress = (a: string, b: string) => canonicalPrefixed(`${a}/0`) === canonicalPrefixed(`${b}/0`);
const key = (device: string, address: string) => `${device} ${canonicalPrefixed(address) ?? address}`;

/** both a.b.c.d/p in the subnet of the first one's prefix */
function sameV4Subnet(deleted: string, other: string): boolean {
  const parse = (t: string) => {
    const [ip, p] = t.split('/');
    const o = ip!.split('.').map(Number);
    return o.length === 4 && o.every((x) => Number.isInteger(x) && x >= 0 && x <= 255) ? { n: ((o[0]! << 24) | (o[1]! << 16) | (o[2]! << 8) | o[3]!) >>> 0, p: Number(p ?? 32) } : null;
  };
  const a = parse(deleted);
  const b = parse(other);
  if (!a || !b || !(a.p >= 0 && a.p <= 32)) return false;
  const mask = a.p === 0 ? 0 : (~0 << (32 - a.p)) >>> 0;
  return ((a.n & mask) >>> 0) === ((b.n & mask) >>> 0);
}

export function planNetwork(detail: PlanInput, state: NetState, bootPaths: readonly BootPath[] = []): Step[] {
  const steps: Step[] = [];
  const ip = (...args: string[]) => steps.push({ args });
  const refuse = (why: string, ...args: string[]) => steps.push({ args, refused: why });
  const pathOn = (device: string) => bootPaths.find((p) => p.device === device);
  const pathFrom = (device: string, address: string) => bootPaths.find((p) => p.device === device && p.source !== undefined && sameAddress(p.source, address.split('/')[0]!));
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
      const path = pathOn(m);
      if (path) {
        refuse(`${m} carries the boot path to ${path.destination}${path.source ? ` (from ${path.source})` : ''}: enslaving it to ${bond.name} would cut the node from its server and iSCSI disk; ${bond.name} runs on its other members`, 'link', 'set', m, 'master', bond.name);
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
  const deleted: { device: string; address: string }[] = [];
  for (const a of state.addresses) {
    if (!devices.has(a.device) || a.scope !== 'global' || a.dynamic) continue;
    const k = key(a.device, a.address);
    if (!wanted.has(k) || a.dadfailed) {
      const path = wanted.has(k) ? undefined : pathFrom(a.device, a.address);
      if (path) refuse(`${a.address} on ${a.device} is the address the node reaches ${path.destination} from: it stays`, 'addr', 'del', a.address, 'dev', a.device);
      else {
        ip('addr', 'del', a.address, 'dev', a.device);
        if (a.family === 4) deleted.push({ device: a.device, address: a.address });
      }
    } else present.add(k);
  }
  // Deleting a primary IPv4 address takes the secondaries of its subnet with it (promote_secondaries off, the
  // default): an address the node already holds in that subnet is put back with `replace` (no probe: it was ours a
  // moment ago; `replace` also succeeds when the kernel kept it)
  for (const a of detail.addresses) {
    const k = key(a.device, a.address);
    if (a.family !== 4 || !present.has(k) || !deleted.some((d) => d.device === a.device && sameV4Subnet(d.address, a.address))) continue;
    ip('addr', 'replace', a.address, 'dev', a.device);
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
    // a default route the boot path goes through (the server behind a router) is not moved elsewhere
    const def = state.routes.find((x) => x.family === family && x.to === 'default');
    const path = r.to === 'default' && def?.via ? bootPaths.find((p) => p.via && sameAddress(p.via, def.via!) && p.device === def.device) : undefined;
    if (path) {
      refuse(`the node reaches ${path.destination} through the default route via ${path.via} on ${path.device}: replacing it would cut that path`, `-${family}`, 'route', 'replace', r.to, 'via', r.via, 'dev', r.device);
      continue;
    }
    ip(`-${family}`, 'route', 'replace', r.to, 'via', r.via, 'dev', r.device);
  }
  return steps;
}
