// The rack's network: one namespace `bfe2e-<pid>` holding a bridge with the rack's addresses and one
// persistent tap per node enslaved to it. QEMU opens the tap by name (script=no), so the tap, and with it the
// bridge port, outlive QEMU restarts (a BMC power cycle). Nothing is configured outside the namespace;
// deleting it removes bridge, taps and addresses at once.
import { must, run, alive, onSignalCleanup } from './proc.ts';

export const NS_PREFIX = 'bfe2e-';

export interface RackNetOptions {
  /** namespace name; default `bfe2e-<pid>` (≤ 15 characters) */
  name?: string;
  /** IPv4 address of the bridge with prefix (default 10.77.0.1/24); false: an IPv6-only rack, no IPv4 on the link */
  ipv4?: string | false;
  /** IPv6 address of the bridge with prefix, in a private fd00::/8 ULA prefix (default fd00:77::1/64) */
  ipv6?: string;
}

export interface RackNet {
  netns: string;
  bridge: string;
  /** 10.77.0.1 (on an IPv6-only rack: the IPv6 address, as `ipv6`) */
  ip: string;
  /** the server's address as URLs and iSCSI portals write it: 10.77.0.1, or [fd00:77::1] on an IPv6-only rack */
  host: string;
  /** false on an IPv6-only rack */
  hasIpv4: boolean;
  prefixLen: number;
  ipv6: string;
  /** fd00:77::/64 */
  ipv6Prefix: string;
  /** creates a tap (persistent, owned by root) in the bridge and returns its name; `name`/`bridge` for a node's
   * further NICs (default bfe2et<index> on the rack bridge) */
  addTap(index: number, opts?: { name?: string; bridge?: string }): string;
  /** adds another bridge with an IPv4 address/prefix (a second network, e.g. the data network of bonded NICs) */
  addBridge(name: string, ipv4: string): string;
  taps(): string[];
  destroy(): void;
}

function nsExists(name: string): boolean {
  return run(['ip', 'netns', 'list']).stdout.split('\n').some((l) => l.split(' ')[0] === name);
}

/** Kills every process left in a namespace (all of them were started by an e2e run) and deletes it. */
export function deleteNamespace(name: string): void {
  if (!nsExists(name)) return;
  const pids = run(['ip', 'netns', 'pids', name]).stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  run(['ip', 'netns', 'del', name]);
}

/**
 * A previous run that crashed (SIGKILL, machine hiccup) can leave `bfe2e-<pid>` namespaces behind: delete those
 * whose owning test process is gone. Namespaces of a live process (another e2e run) are left alone.
 */
export function deleteStaleNamespaces(): string[] {
  const removed: string[] = [];
  for (const line of run(['ip', 'netns', 'list']).stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (!name.startsWith(NS_PREFIX)) continue;
    const owner = Number(name.slice(NS_PREFIX.length).split('-')[0]);
    if (Number.isInteger(owner) && owner > 0 && alive(owner) && owner !== process.pid) continue;
    if (owner === process.pid) continue;
    deleteNamespace(name);
    removed.push(name);
  }
  return removed;
}

export function createRackNet({ name = `${NS_PREFIX}${process.pid}`, ipv4 = '10.77.0.1/24', ipv6 = 'fd00:77::1/64' }: RackNetOptions = {}): RackNet {
  if (name.length > 15) throw new Error(`namespace name ${name} is longer than 15 characters`);
  deleteStaleNamespaces();
  deleteNamespace(name);
  must(['ip', 'netns', 'add', name]);
  const unhook = onSignalCleanup(() => deleteNamespace(name));
  const bridge = 'bfe2ebr0';
  const taps: string[] = [];
  try {
    const ns = (argv: string[]) => must(argv, { netns: name });
    ns(['ip', 'link', 'set', 'lo', 'up']);
    // STP off and no forward delay: a fresh port forwards at once (the default 15 s delay would eat the
    // first DHCP exchanges of a PXE ROM).
    ns(['ip', 'link', 'add', bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    // LLDP frames (01:80:c2:00:00:0e) are never forwarded by a bridge; lldpd runs on each tap instead.
    if (ipv4) ns(['ip', 'addr', 'add', ipv4, 'dev', bridge]);
    // nodad: the address is usable at once (DAD would hold it "tentative" while the bridge has no carrier)
    ns(['ip', '-6', 'addr', 'add', ipv6, 'dev', bridge, 'nodad']);
    ns(['ip', 'link', 'set', bridge, 'up']);
    if (!ipv4) {
      // A veth port that is up gives the bridge carrier before any node powers on (as boot/dhcp6/pxe6.qemu.test.ts), so
      // the server's DHCPv6 starts on a link that is fully up. (It also starts without carrier now, warning, and
      // serves once the link comes up: boot/dhcp6/server.netns.test.ts; the rack keeps the usual case.)
      ns(['ip', 'link', 'add', 'bfe2ev0', 'type', 'veth', 'peer', 'name', 'bfe2ev1']);
      ns(['ip', 'link', 'set', 'bfe2ev0', 'master', bridge]);
      for (const l of ['bfe2ev0', 'bfe2ev1']) ns(['ip', 'link', 'set', l, 'up']);
    }
    // radvd insists on forwarding being on to advertise; it is local to this namespace
    ns(['sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  } catch (e) {
    deleteNamespace(name);
    unhook();
    throw e;
  }
  const [ip6, bits6] = ipv6.split('/') as [string, string];
  const [ip, bits] = ipv4 ? (ipv4.split('/') as [string, string]) : [ip6, bits6];
  return {
    netns: name,
    bridge,
    ip,
    host: ipv4 ? ip : `[${ip6}]`,
    hasIpv4: !!ipv4,
    prefixLen: Number(bits),
    ipv6: ip6,
    ipv6Prefix: `${ip6.replace(/::?[0-9a-f]*$/i, '::')}/64`,
    addTap(index: number, opts: { name?: string; bridge?: string } = {}) {
      const tap = opts.name ?? `bfe2et${index}`;
      const ns = (argv: string[]) => must(argv, { netns: name });
      ns(['ip', 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      ns(['ip', 'link', 'set', tap, 'master', opts.bridge ?? bridge]);
      ns(['ip', 'link', 'set', tap, 'up']);
      taps.push(tap);
      return tap;
    },
    taps: () => [...taps],
    addBridge(br: string, addr: string) {
      const ns = (argv: string[]) => must(argv, { netns: name });
      ns(['ip', 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
      ns(['ip', 'addr', 'add', addr, 'dev', br]);
      ns(['ip', 'link', 'set', br, 'up']);
      return br;
    },
    destroy() {
      deleteNamespace(name);
      unhook();
    },
  };
}
