// IPAM rules (issue 16 item 1): address arithmetic for IPv4 and IPv6, network checks, which address a node's
// interface gets, and which NICs make its bond. Pure: no storage, no HTTP, no clock. The store
// (server/store/ipam.ts) calls `chooseAddress` inside its transaction and lets the database's unique constraints
// settle a race between replicas.
//
// Why hand-written arithmetic: node:net validates addresses (isIP) and tests membership (BlockList), but has no
// CIDR maths (network base, "the next address", canonical text), and node_modules holds only validators
// (cidr-regex, is-cidr). Addresses are BigInts, so IPv4 and IPv6 share one code path and a /64 pool is as cheap
// as a /24: nothing here enumerates a pool, only the addresses already taken.
import { isIP } from 'node:net';
import { NicFacts } from '../contract/facts.ts';

export type Family = 4 | 6;

export interface Address {
  family: Family;
  value: bigint;
}

export interface Cidr {
  family: Family;
  /** the network address (host bits zero) */
  base: bigint;
  prefix: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** The address `text` as a number, or null when it is no IPv4 or IPv6 address (zone ids are refused). */
export function parseAddress(text: string): Address | null {
  const family = isIP(text);
  if (family === 4) return { family: 4, value: text.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n) };
  if (family !== 6 || text.includes('%')) return null;
  // an embedded IPv4 tail (::ffff:192.0.2.1) becomes two hextets
  let s = text.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const n = parseAddress(v4[1]!)!.value;
    s = `${s.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return { family: 6, value: groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/** Canonical text: dotted quad, or RFC 5952 IPv6 (lower case, longest run of ≥2 zero groups as "::"). */
export function formatAddress(a: Address): string {
  if (a.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((a.value >> s) & 255n)).join('.');
  const g = Array.from({ length: 8 }, (_, i) => Number((a.value >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best.at < 0) return hex(g);
  return `${hex(g.slice(0, best.at))}::${hex(g.slice(best.at + best.len))}`;
}

/** The canonical text of an address, or null (for comparing what an operator or agent typed with what is stored). */
export const canonicalAddress = (text: string): string | null => {
  const a = parseAddress(text.trim());
  return a ? formatAddress(a) : null;
};

export class CidrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CidrError';
  }
}

/** "10.20.0.0/24" or "fd00:20::/64". Host bits must be zero: "10.20.0.5/24" is refused, naming the network meant. */
export function parseCidr(text: string): Cidr {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  const a = m ? parseAddress(m[1]!) : null;
  if (!m || !a) throw new CidrError(`"${text}" is not a network in CIDR notation like 10.20.0.0/24 or fd00:20::/64`);
  const prefix = Number(m[2]);
  if (prefix > BITS[a.family]) throw new CidrError(`"${text}": an IPv${a.family} prefix is at most /${BITS[a.family]}`);
  const base = a.value & mask(a.family, prefix);
  if (base !== a.value) throw new CidrError(`"${text}" has host bits set; the network is ${formatAddress({ family: a.family, value: base })}/${prefix}`);
  return { family: a.family, base, prefix };
}

export const formatCidr = (c: Cidr) => `${formatAddress({ family: c.family, value: c.base })}/${c.prefix}`;

function mask(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** the last address of the network */
export const lastOf = (c: Cidr) => c.base + (1n << BigInt(BITS[c.family] - c.prefix)) - 1n;
export const contains = (c: Cidr, a: Address) => a.family === c.family && a.value >= c.base && a.value <= lastOf(c);

/** A network as stored: text fields, checked by `checkNetwork`. */
export interface NetworkSpec {
  name: string;
  cidr: string;
  gateway: string | null;
  dns: string[];
  poolStart: string | null;
  poolEnd: string | null;
  vlan: number | null;
}

/** A network with its numbers worked out. */
export interface Network {
  name: string;
  cidr: Cidr;
  gateway: bigint | null;
  dns: string[];
  pool: { start: bigint; end: bigint };
  vlan: number | null;
}

/**
 * The pool an operator gave, or the default: IPv4 without the network and broadcast addresses (RFC 919; a /31 or
 * /32 has neither, RFC 3021), IPv6 without the subnet-router anycast address (RFC 4291 §2.6.1).
 */
function defaultPool(c: Cidr): { start: bigint; end: bigint } {
  const last = lastOf(c);
  if (c.family === 4 && c.prefix >= 31) return { start: c.base, end: last };
  return { start: c.base + 1n, end: c.family === 4 ? last - 1n : last };
}

/** Every problem with a network definition, each naming the field and value (empty: fine). */
export function networkProblems(s: NetworkSpec): string[] {
  let cidr: Cidr;
  try {
    cidr = parseCidr(s.cidr);
  } catch (e) {
    return [`cidr: ${(e as Error).message}`];
  }
  const problems: string[] = [];
  const inside = (field: string, text: string | null): Address | null => {
    if (text === null) return null;
    const a = parseAddress(text);
    if (!a) problems.push(`${field}: "${text}" is not an IP address`);
    else if (a.family !== cidr.family) problems.push(`${field}: ${text} is IPv${a.family} but the network ${s.cidr} is IPv${cidr.family}`);
    else if (!contains(cidr, a)) problems.push(`${field}: ${text} is outside ${s.cidr}`);
    else return a;
    return null;
  };
  inside('gateway', s.gateway);
  const start = inside('poolStart', s.poolStart);
  const end = inside('poolEnd', s.poolEnd);
  if ((s.poolStart === null) !== (s.poolEnd === null)) problems.push('pool: give both poolStart and poolEnd, or neither (the whole network)');
  if (start && end && start.value > end.value) problems.push(`pool: poolStart ${s.poolStart} is after poolEnd ${s.poolEnd}`);
  s.dns.forEach((d, i) => {
    if (!parseAddress(d)) problems.push(`dns[${i}]: "${d}" is not an IP address`);
  });
  return problems;
}

export class NetworkError extends Error {
  constructor(readonly network: string, readonly problems: string[]) {
    super(`network ${network}: ${problems.join('; ')}`);
    this.name = 'NetworkError';
  }
}

/** The network's numbers; throws NetworkError listing every problem. */
export function toNetwork(s: NetworkSpec): Network {
  const problems = networkProblems(s);
  if (problems.length) throw new NetworkError(s.name, problems);
  const cidr = parseCidr(s.cidr);
  const pool = s.poolStart && s.poolEnd ? { start: parseAddress(s.poolStart)!.value, end: parseAddress(s.poolEnd)!.value } : defaultPool(cidr);
  return { name: s.name, cidr, gateway: s.gateway ? parseAddress(s.gateway)!.value : null, dns: s.dns.map((d) => canonicalAddress(d)!), pool, vlan: s.vlan };
}

/** How many addresses the pool holds (the gateway, if inside, is never handed out). */
export function poolSize(n: Network): bigint {
  const size = n.pool.end - n.pool.start + 1n;
  return n.gateway !== null && n.gateway >= n.pool.start && n.gateway <= n.pool.end ? size - 1n : size;
}

/** A row of the allocations table as the rules see it. */
export interface Holding {
  address: string;
  nodeUuid: string | null;
  /** the interface name or role the address is for ("bond0", "mgmt") */
  interface: string | null;
  /** a reservation made for a MAC before the node was known */
  mac: string | null;
  reserved: boolean;
  /** conflict: someone else answered for it (DHCPDECLINE, ARP probe, RFC 5227); never handed out until released */
  state: 'allocated' | 'conflict';
}

export interface AllocationRequest {
  nodeUuid: string;
  interface: string;
  /** the node's MACs, lower case: a reservation made for one of them is claimed */
  macs: string[];
}

export type Choice =
  /** the node's interface already holds this address (a rebuild): nothing to write */
  | { kind: 'existing'; address: string }
  /** a reservation for one of the node's MACs: bind it to the node and interface, freeing `replaces` (the address
   * the interface held before the operator pinned the MAC) */
  | { kind: 'reservation'; address: string; replaces: string | null }
  /** the first free address of the pool */
  | { kind: 'new'; address: string };

export class PoolExhaustedError extends Error {
  constructor(readonly network: string, readonly pool: string, readonly size: bigint) {
    super(`network ${network} has no free address: all ${size} addresses of its pool ${pool} are allocated, reserved or in conflict`);
    this.name = 'PoolExhaustedError';
  }
}

export const poolText = (n: Network) => `${formatAddress({ family: n.cidr.family, value: n.pool.start })}-${formatAddress({ family: n.cidr.family, value: n.pool.end })}`;

/**
 * The address a node's interface gets on network `n`, given every row the network holds. The same request against
 * the same rows gives the same answer, so a rebuilt node asks again and keeps its address. Order: its own pinned
 * row, a reservation for one of its MACs, its own row, then the lowest address of the pool that no row holds and that is not
 * the gateway (`also` holds addresses the caller lost a race for since it read the rows).
 */
export function chooseAddress(n: Network, rows: readonly Holding[], req: AllocationRequest, also: ReadonlySet<bigint> = new Set()): Choice {
  const own = rows.find((r) => r.nodeUuid === req.nodeUuid && r.interface === req.interface && r.state === 'allocated');
  // a pin on the node itself stands; a MAC reservation made since the node got a pool address takes its place (the
  // operator asked for it), once, after which it is the node's own pinned row
  if (own?.reserved) return { kind: 'existing', address: own.address };
  const macs = new Set(req.macs.map((m) => m.toLowerCase()));
  const pinned = rows
    .filter((r) => r.reserved && r.state === 'allocated' && r.nodeUuid === null && r.mac !== null && macs.has(r.mac))
    .sort((a, b) => compareAddresses(a.address, b.address))[0];
  if (pinned) return { kind: 'reservation', address: pinned.address, replaces: own?.address ?? null };
  if (own) return { kind: 'existing', address: own.address };
  const taken = new Set(also);
  for (const r of rows) {
    const a = parseAddress(r.address);
    if (a) taken.add(a.value);
  }
  if (n.gateway !== null) taken.add(n.gateway);
  // at most |taken| + 1 steps, however large the pool (a /64 is 2^64 addresses)
  for (let v = n.pool.start; v <= n.pool.end; v++) if (!taken.has(v)) return { kind: 'new', address: formatAddress({ family: n.cidr.family, value: v }) };
  throw new PoolExhaustedError(n.name, poolText(n), poolSize(n));
}

/** numeric order of two addresses of one family (for listings: 10.0.0.9 before 10.0.0.10) */
export const compareAddresses = (a: string, b: string) => {
  const x = parseAddress(a)?.value ?? 0n;
  const y = parseAddress(b)?.value ?? 0n;
  return x < y ? -1 : x > y ? 1 : 0;
};

/** Why a reservation cannot be made (null: it can): an address that is no address of the network is the caller's
 * mistake (invalid), one that someone else holds is a conflict with the current state (taken). */
export function reservationProblem(n: Network, rows: readonly Holding[], r: { address: string; nodeUuid: string | null; interface: string | null; mac: string | null }): { kind: 'invalid' | 'taken'; message: string } | null {
  const a = parseAddress(r.address);
  if (!a || !contains(n.cidr, a)) return { kind: 'invalid', message: `${r.address} is not inside network ${n.name} (${formatCidr(n.cidr)})` };
  if (n.gateway !== null && a.value === n.gateway) return { kind: 'invalid', message: `${r.address} is the gateway of network ${n.name}` };
  const holder = rows.find((x) => x.address === formatAddress(a));
  if (!holder) return null;
  if (holder.state === 'conflict') return { kind: 'taken', message: `${r.address} on network ${n.name} is in conflict (another device answered for it); release it first` };
  const same = (r.nodeUuid !== null && holder.nodeUuid === r.nodeUuid && holder.interface === r.interface) || (r.mac !== null && holder.nodeUuid === null && holder.mac === r.mac);
  if (same) return null;
  return { kind: 'taken', message: `${r.address} on network ${n.name} is held by ${holder.nodeUuid ? `node ${holder.nodeUuid} (${holder.interface})` : `a reservation for ${holder.mac}`}` };
}

/** How full the pool is: rows inside it (the gateway is never counted nor handed out). Sizes are strings in JSON:
 * an IPv6 pool does not fit a number. */
export function poolUsage(n: Network, rows: readonly Pick<Holding, 'address'>[]): { size: bigint; used: bigint; free: bigint } {
  const size = poolSize(n);
  let used = 0n;
  for (const r of rows) {
    const v = parseAddress(r.address)?.value;
    if (v !== undefined && v >= n.pool.start && v <= n.pool.end && v !== n.gateway) used++;
  }
  return { size, used, free: size - used };
}

/** The address with its prefix length, as `ip addr add` takes it. */
export const withPrefix = (n: Network, address: string) => `${address}/${n.cidr.prefix}`;

// ---- the bond -------------------------------------------------------------------------------------------------

export type BondMode = '802.3ad' | 'active-backup';

export interface NicSeen {
  name: string | null;
  mac: string;
  /** the LLDP neighbour's chassis ID on this NIC (IEEE 802.1AB), null when none was seen */
  switchChassis: string | null;
  switchName?: string | null;
  /** the NIC the node netbooted from (its stage-1 facts: BOOTIF), whose DHCP address carries the compute OS's iSCSI
   * disk and control channel */
  boot?: boolean;
}

/** The MAC (lower case) of the NIC a node netbooted from, as its stage-1 facts say (`nics[].boot`, BOOTIF); undefined
 * when the facts name none, or are not facts at all (each NIC is read through the contract, the rest ignored). */
export function bootMacOf(facts: unknown): string | undefined {
  const nics = facts && typeof facts === 'object' && Array.isArray((facts as { nics?: unknown }).nics) ? ((facts as { nics: unknown[] }).nics) : [];
  for (const n of nics) {
    const nic = NicFacts.safeParse(n);
    if (nic.success && nic.data.boot === true) return nic.data.mac.toLowerCase();
  }
  return undefined;
}

export interface BondChoice {
  members: string[];
  /** two-switches: members on two switch chassis; one-switch: LLDP saw a single switch; no-lldp: no neighbour seen,
   * members by name; single: the node has one NIC (no bond) */
  spread: 'two-switches' | 'one-switch' | 'no-lldp' | 'single';
}

/**
 * Two NICs for the bond, on two different switch chassis where LLDP shows that is possible, so that a switch can
 * fail (or be upgraded) without taking the node off the network. NICs with an LLDP neighbour come first (a NIC
 * without one is likely unplugged); among equals, by name, then MAC, so the choice is the same on every rebuild.
 *
 * The boot NIC is left out when two other NICs see a switch: the compute OS never enslaves it (agent/network keeps
 * the boot path: its DHCP address carries the iSCSI disk), so a bond holding it would run on one member and be
 * reported as a network-mismatch at every boot. With fewer such NICs it stays a candidate as before.
 */
export function chooseBondMembers(nics: readonly NicSeen[]): BondChoice {
  const others = nics.filter((n) => !n.boot && n.switchChassis);
  if (others.length >= 2 && others.length < nics.length) return chooseBondMembers(others);
  const key = (n: NicSeen) => n.name || n.mac;
  const sorted = [...nics].sort((a, b) => Number(!a.switchChassis) - Number(!b.switchChassis) || key(a).localeCompare(key(b)) || a.mac.localeCompare(b.mac));
  if (sorted.length < 2) return { members: sorted.map(key), spread: 'single' };
  const first = sorted[0]!;
  if (!first.switchChassis) return { members: sorted.slice(0, 2).map(key), spread: 'no-lldp' };
  const other = sorted.find((n) => n.switchChassis && n.switchChassis.toLowerCase() !== first.switchChassis!.toLowerCase());
  if (other) return { members: [key(first), key(other)], spread: 'two-switches' };
  return { members: [key(first), key(sorted[1]!)], spread: 'one-switch' };
}

// ---- what the compute OS configures ---------------------------------------------------------------------------

export interface NodeAddress {
  network: Network;
  /** the allocation's interface key (profile `networks[].interface`) */
  interface: string;
  address: string;
}

export interface NetworkPlan {
  bond?: { name: string; mode: BondMode; members: string[]; spread: BondChoice['spread'] };
  vlans: { device: string; link: string; id: number }[];
  addresses: { network: string; interface: string; device: string; address: string; family: Family; gateway?: string; vlan?: number }[];
  routes: { to: string; via: string; device: string }[];
  dns: string[];
}

/**
 * What the node's compute OS sets up with iproute2, from its NICs (with LLDP neighbours), the profile's bond and
 * the addresses IPAM gave it. The bond is built from two NICs when the node has two or more; an address whose
 * interface key is the bond's name goes on the bond (or, on a one-NIC node, on that NIC), any other key names a
 * NIC; a network with a VLAN puts it on <device>.<vlan>. The first network with a gateway, per address family, gives
 * the default route (profile order: the operator lists the primary network first).
 */
export function networkPlan(nics: readonly NicSeen[], bond: { name: string; mode: BondMode }, addresses: readonly NodeAddress[]): NetworkPlan {
  const choice = chooseBondMembers(nics);
  const bonded = choice.members.length >= 2;
  const base = (key: string) => (key === bond.name ? (bonded ? bond.name : (choice.members[0] ?? bond.name)) : key);
  const plan: NetworkPlan = { vlans: [], addresses: [], routes: [], dns: [] };
  if (bonded) plan.bond = { name: bond.name, mode: bond.mode, members: choice.members, spread: choice.spread };
  const routed = new Set<Family>();
  for (const a of addresses) {
    const n = a.network;
    const link = base(a.interface);
    const device = n.vlan ? `${link}.${n.vlan}` : link;
    if (n.vlan && !plan.vlans.some((v) => v.device === device)) plan.vlans.push({ device, link, id: n.vlan });
    const gateway = n.gateway !== null ? formatAddress({ family: n.cidr.family, value: n.gateway }) : undefined;
    plan.addresses.push({ network: n.name, interface: a.interface, device, address: withPrefix(n, a.address), family: n.cidr.family, ...(gateway ? { gateway } : {}), ...(n.vlan ? { vlan: n.vlan } : {}) });
    if (gateway && !routed.has(n.cidr.family)) {
      routed.add(n.cidr.family);
      plan.routes.push({ to: 'default', via: gateway, device });
    }
    for (const d of n.dns) if (!plan.dns.includes(d)) plan.dns.push(d);
  }
  return plan;
}

/** What the compute OS reports it configured (server/contract/agent.ts ConfiguredNetwork). */
export interface Configured {
  addresses: { device: string; address: string }[];
  bond?: { name: string; mode: string; members: string[] };
}

export interface NetworkMismatch {
  /** handed out but not configured */
  missing: { device: string; address: string }[];
  /** configured but not handed out (link-local and loopback addresses are the kernel's, not counted) */
  unexpected: { device: string; address: string }[];
  bond?: { expected: { mode: string; members: string[] } | null; seen: { mode: string; members: string[] } | null };
}

/** "10.20.0.7/24" in canonical text (null when it is not address/prefix) */
const canonicalPrefixed = (text: string): string | null => {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  const a = m ? canonicalAddress(m[1]!) : null;
  return a ? `${a}/${Number(m![2])}` : null;
};

/** the kernel's own addresses (RFC 4291 link-local fe80::/10, loopback, RFC 3927 169.254/16) */
const kernelOwn = (text: string) => {
  const a = parseAddress(text.split('/')[0]!);
  if (!a) return false;
  if (a.family === 6) return a.value >> 118n === 0x3fan || a.value === 1n;
  return a.value >> 24n === 127n || a.value >> 16n === 0xa9fen;
};

/**
 * The difference between the plan the server handed out and what the node reports it configured (null: none).
 * Addresses compare by canonical text and device; bond members as a set (the kernel lists them in its own order).
 */
export function networkMismatch(plan: NetworkPlan, seen: Configured): NetworkMismatch | null {
  const key = (x: { device: string; address: string }) => `${x.device} ${canonicalPrefixed(x.address) ?? x.address.trim()}`;
  const want = new Map(plan.addresses.map((a) => [key(a), { device: a.device, address: a.address }]));
  const got = new Map(seen.addresses.filter((a) => !kernelOwn(a.address)).map((a) => [key(a), { device: a.device, address: a.address }]));
  const out: NetworkMismatch = { missing: [...want].filter(([k]) => !got.has(k)).map(([, v]) => v), unexpected: [...got].filter(([k]) => !want.has(k)).map(([, v]) => v) };
  const expected = plan.bond ? { mode: plan.bond.mode, members: [...plan.bond.members].sort() } : null;
  const bond = seen.bond ? { mode: seen.bond.mode, members: [...seen.bond.members].sort() } : null;
  if (JSON.stringify(expected) !== JSON.stringify(bond)) out.bond = { expected, seen: bond };
  return out.missing.length || out.unexpected.length || out.bond ? out : null;
}
