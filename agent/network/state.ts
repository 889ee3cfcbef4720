// What the kernel has now, from iproute2's JSON output (`ip -j -d link show`, `ip -j addr show`, `ip -j -4/-6 route
// show`), and the read-back the heartbeat carries (server/contract/agent.ts ConfiguredNetwork). Parsing is pure; the
// one effect is readState(exec). Fixtures: test/fixtures/agent/ip-j-*.json (README there says where each came from).
//
// Why -d on link: only the details carry linkinfo (info_kind bond/vlan, the bond's mode, the vlan id, a member's
// info_slave_kind); without it a bond member looks like any NIC with a "master". /proc/net/bonding is not needed.
import type { ConfiguredNetwork, Detail } from '../../server/contract/agent.ts';
import { run, type Exec } from '../exec.ts';

export interface LinkState {
  name: string;
  /** administratively up (IFF_UP in flags), whatever the carrier */
  up: boolean;
  /** linkinfo.info_kind: bond, vlan, veth, bridge…; absent for a plain NIC */
  kind?: string;
  /** the bond or bridge it is enslaved to */
  master?: string;
  /** a vlan's parent device (`ip -j link` prints it as "link" when the parent is in the same namespace) */
  link?: string;
  vlanId?: number;
  /** a bond's mode as iproute2 names it (802.3ad, active-backup, …) */
  bondMode?: string;
}

export interface AddressState {
  device: string;
  /** address/prefix, as iproute2 prints it (RFC 5952 text for IPv6) */
  address: string;
  family: 4 | 6;
  scope: string;
  /** installed by the kernel from a router advertisement (SLAAC) or by a DHCP client that set a lifetime */
  dynamic: boolean;
  /** IPv6 duplicate address detection (RFC 4862 §5.4) still running */
  tentative: boolean;
  /** IPv6 DAD found another node using it (RFC 4862 §5.4.5): the address is unusable */
  dadfailed: boolean;
}

export interface RouteState {
  family: 4 | 6;
  /** "default" or a CIDR */
  to: string;
  via?: string;
  device?: string;
}

export interface NetState {
  links: LinkState[];
  addresses: AddressState[];
  routes: RouteState[];
}

/** Thrown for output that is not the iproute2 JSON this parser knows (a busybox `ip` has no -j, for one). */
export class IpJsonError extends Error {
  override name = 'IpJsonError';
}

function jsonArray(text: string, what: string): Record<string, unknown>[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new IpJsonError(`${what}: not JSON (${(err as Error).message}); is this iproute2's ip, not busybox's?`);
  }
  if (!Array.isArray(v)) throw new IpJsonError(`${what}: expected a JSON array`);
  return v.filter((x): x is Record<string, unknown> => !!x && typeof x === 'object');
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function parseIpLink(text: string): LinkState[] {
  return jsonArray(text, 'ip -j -d link show').map((l) => {
    const info = (l['linkinfo'] ?? {}) as { info_kind?: unknown; info_data?: Record<string, unknown> };
    const kind = str(info.info_kind);
    const flags = Array.isArray(l['flags']) ? (l['flags'] as unknown[]) : [];
    const out: LinkState = { name: String(l['ifname']), up: flags.includes('UP') };
    if (kind) out.kind = kind;
    const master = str(l['master']);
    if (master) out.master = master;
    const link = str(l['link']);
    if (link) out.link = link;
    if (kind === 'vlan' && typeof info.info_data?.['id'] === 'number') out.vlanId = info.info_data['id'];
    if (kind === 'bond' && str(info.info_data?.['mode'])) out.bondMode = str(info.info_data!['mode']);
    return out;
  });
}

export function parseIpAddr(text: string): AddressState[] {
  return jsonArray(text, 'ip -j addr show').flatMap((l) =>
    (Array.isArray(l['addr_info']) ? (l['addr_info'] as Record<string, unknown>[]) : [])
      .filter((a) => a['family'] === 'inet' || a['family'] === 'inet6')
      .map((a) => ({
        device: String(l['ifname']),
        address: `${String(a['local'])}/${Number(a['prefixlen'])}`,
        family: a['family'] === 'inet' ? (4 as const) : (6 as const),
        scope: str(a['scope']) ?? 'global',
        dynamic: a['dynamic'] === true,
        tentative: a['tentative'] === true,
        dadfailed: a['dadfailed'] === true,
      })),
  );
}

export function parseIpRoute(text: string, family: 4 | 6): RouteState[] {
  return jsonArray(text, `ip -j -${family} route show`).map((r) => ({
    family,
    to: String(r['dst']),
    ...(str(r['gateway']) ? { via: str(r['gateway']) } : {}),
    ...(str(r['dev']) ? { device: str(r['dev']) } : {}),
  }));
}

/** The four reads the planner needs; each failure names its command (ExecError). */
export async function readState(exec: Exec): Promise<NetState> {
  const [link, addr, r4, r6] = await Promise.all([
    run(exec, 'ip', ['-j', '-d', 'link', 'show']),
    run(exec, 'ip', ['-j', 'addr', 'show']),
    run(exec, 'ip', ['-j', '-4', 'route', 'show']),
    run(exec, 'ip', ['-j', '-6', 'route', 'show']),
  ]);
  return { links: parseIpLink(link), addresses: parseIpAddr(addr), routes: [...parseIpRoute(r4, 4), ...parseIpRoute(r6, 6)] };
}

/**
 * IPv4/IPv6 text in one form, so "fd00:20:0:0::7/64" from a server and "fd00:20::7/64" from the kernel compare equal.
 * The WHATWG URL parser serialises IPv6 hosts per RFC 5952 and IPv4 as dotted quad; null when it is neither.
 */
export function canonicalPrefixed(text: string): string | null {
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return null;
  const host = m[1]!.includes(':') ? `[${m[1]}]` : m[1]!;
  try {
    const h = new URL(`http://${host}/`).hostname;
    const bare = h.startsWith('[') ? h.slice(1, -1) : h;
    if (!bare.includes(':') && !/^\d+\.\d+\.\d+\.\d+$/.test(bare)) return null;
    return `${bare}/${Number(m[2])}`;
  } catch {
    return null;
  }
}

export const bareAddress = (prefixed: string) => prefixed.split('/')[0]!;

/** The devices a detail names: where its addresses go, its vlans and its bond. */
export function plannedDevices(detail: Pick<Detail, 'addresses' | 'vlans' | 'bond'>): Set<string> {
  return new Set([...detail.addresses.map((a) => a.device), ...detail.vlans.map((v) => v.device), ...(detail.bond ? [detail.bond.name] : [])]);
}

/**
 * What is configured on the devices the detail names, for the heartbeat. Only those devices: the boot NIC's DHCP
 * lease (init's, not the detail's) would otherwise show up on the server as "unexpected". Left out as well:
 * link-local and host-scope addresses (the kernel's), `dynamic` ones (SLAAC from the segment's router
 * advertisements, not something the node chose) and ones that failed DAD (present but unusable: the server should
 * see them missing). The bond is the detail's one if it exists, else any bond the kernel has, so a stray bond shows.
 */
export function configuredFrom(state: NetState, detail: Pick<Detail, 'addresses' | 'vlans' | 'bond'>): ConfiguredNetwork {
  const devices = plannedDevices(detail);
  const addresses = state.addresses
    .filter((a) => devices.has(a.device) && a.scope === 'global' && !a.dynamic && !a.dadfailed)
    .map((a) => ({ device: a.device, address: a.address }));
  const bonds = state.links.filter((l) => l.kind === 'bond');
  const bond = bonds.find((b) => b.name === detail.bond?.name) ?? bonds.sort((a, b) => a.name.localeCompare(b.name))[0];
  return {
    addresses,
    ...(bond ? { bond: { name: bond.name, mode: bond.bondMode ?? 'unknown', members: state.links.filter((l) => l.master === bond.name).map((l) => l.name) } } : {}),
  };
}
