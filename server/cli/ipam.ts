// `bootfarm networks list|add|rm` and `bootfarm ipam allocations|reserve|release` (issue 16 item 1): IPAM over a
// running server's admin API. The server checks everything (CIDR, gateway, pool, who holds an address) and its
// error names the problem; the CLI only shapes the request and prints tables or --json.
import type { Command } from 'commander';
import type { CliContext } from './context.ts';

const pad = (s: unknown, n: number) => String(s ?? '-').padEnd(n);

interface NetworkView {
  name: string;
  cidr: string;
  family: number;
  gateway: string | null;
  dns: string[];
  pool: { start: string; end: string };
  vlan: number | null;
  usage: { size: string; used: string; free: string; allocated: number; reserved: number; conflict: number };
}

interface AllocationView {
  network: string;
  address: string;
  node: string | null;
  interface: string | null;
  mac: string | null;
  reserved: boolean;
  state: string;
  note: string | null;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

export function register(program: Command, ctx: CliContext): void {
  const { out } = ctx;
  const json = () => ctx.globals().json;

  const networks = program.command('networks').description('IPAM networks: CIDR (IPv4 or IPv6), gateway, DNS, pool, VLAN');
  networks
    .command('list')
    .description('networks with their pools and how full they are')
    .action(async () => {
      const res = await ctx.http()<{ networks: NetworkView[] }>('GET', '/api/v1/networks');
      if (json()) return out(JSON.stringify(res.networks, null, 2));
      out(`${pad('NAME', 14)}${pad('CIDR', 22)}${pad('GATEWAY', 18)}${pad('VLAN', 6)}${pad('POOL', 36)}${pad('USED', 8)}${pad('FREE', 22)}CONFLICTS`);
      for (const n of res.networks) out(`${pad(n.name, 14)}${pad(n.cidr, 22)}${pad(n.gateway, 18)}${pad(n.vlan, 6)}${pad(`${n.pool.start}-${n.pool.end}`, 36)}${pad(n.usage.used, 8)}${pad(n.usage.free, 22)}${n.usage.conflict}`);
    });
  networks
    .command('add')
    .description('create a network, or replace its settings (addresses already held stay where they are)')
    .argument('<name>', 'what profiles call it (profiles.<p>.networks[].name)')
    .requiredOption('--cidr <cidr>', 'e.g. 10.20.0.0/24 or fd00:20::/64')
    .option('--gateway <address>', 'default gateway on this network')
    .option('--dns <address,…>', 'DNS server(s); repeat or separate with commas', collect, [])
    .option('--pool <start-end>', 'the addresses handed out, e.g. 10.20.0.10-10.20.0.200 (default: the whole network)')
    .option('--vlan <id>', '802.1Q VLAN id (1-4094)')
    .action(async (name: string, o: { cidr: string; gateway?: string; dns: string[]; pool?: string; vlan?: string }) => {
      let pool: { start: string; end: string } | null = null;
      if (o.pool !== undefined) {
        // an IPv6 address has no "-", so the first one splits the range
        const [start, end, ...rest] = o.pool.split('-');
        if (!start || !end || rest.length) throw ctx.fail(`--pool ${o.pool}: give the range as START-END, e.g. 10.20.0.10-10.20.0.200`);
        pool = { start: start.trim(), end: end.trim() };
      }
      const vlan = o.vlan === undefined ? null : Number(o.vlan);
      if (vlan !== null && !(Number.isInteger(vlan) && vlan >= 1 && vlan <= 4094)) throw ctx.fail(`--vlan ${o.vlan}: a VLAN id is a whole number from 1 to 4094`);
      const n = await ctx.http()<NetworkView>('PUT', `/api/v1/networks/${encodeURIComponent(name)}`, { cidr: o.cidr, gateway: o.gateway ?? null, dns: o.dns, pool, vlan });
      if (json()) return out(JSON.stringify(n, null, 2));
      out(`network ${n.name}: ${n.cidr}${n.gateway ? ` via ${n.gateway}` : ''}${n.vlan ? ` vlan ${n.vlan}` : ''}, pool ${n.pool.start}-${n.pool.end} (${n.usage.free} free of ${n.usage.size})`);
    });
  networks
    .command('rm')
    .description('delete a network; refused while it holds addresses unless --force (they are deleted with it)')
    .argument('<name>')
    .option('--force', 'delete its allocations, reservations and conflicts too')
    .action(async (name: string, o: { force?: boolean }) => {
      const res = await ctx.http()<{ deleted: string; allocations: number }>('DELETE', `/api/v1/networks/${encodeURIComponent(name)}${o.force ? '?force=true' : ''}`);
      if (json()) return out(JSON.stringify(res, null, 2));
      out(`deleted network ${res.deleted}${res.allocations ? ` and its ${res.allocations} address(es)` : ''}`);
    });

  const ipam = program.command('ipam').description('IPAM addresses: who holds which, reservations, releases');
  ipam
    .command('allocations')
    .description('addresses held: allocated, reserved, or in conflict')
    .option('--network <name>')
    .option('--node <uuid>')
    .option('--conflicts', 'only addresses in conflict (another device answered for them)')
    .action(async (o: { network?: string; node?: string; conflicts?: boolean }) => {
      const q = new URLSearchParams({ ...(o.network ? { network: o.network } : {}), ...(o.node ? { node: o.node } : {}), ...(o.conflicts ? { state: 'conflict' } : {}) });
      const res = await ctx.http()<{ allocations: AllocationView[] }>('GET', `/api/v1/ipam/allocations${q.size ? `?${q}` : ''}`);
      if (json()) return out(JSON.stringify(res.allocations, null, 2));
      out(`${pad('NETWORK', 14)}${pad('ADDRESS', 26)}${pad('NODE', 38)}${pad('IFACE', 10)}${pad('KIND', 12)}NOTE`);
      for (const a of res.allocations) {
        const kind = a.state === 'conflict' ? 'conflict' : a.reserved ? 'reserved' : 'allocated';
        out(`${pad(a.network, 14)}${pad(a.address, 26)}${pad(a.node ?? (a.mac ? `mac ${a.mac}` : null), 38)}${pad(a.interface, 10)}${pad(kind, 12)}${a.note ?? ''}`);
      }
    });
  ipam
    .command('reserve')
    .description("pin an address to a node's interface (replacing the one it held) or to a MAC")
    .argument('<network>')
    .argument('<address>')
    .option('--node <uuid>', 'the node (its SMBIOS UUID)')
    .option('--interface <name>', "the node's interface key (profile networks[].interface)", 'bond0')
    .option('--mac <mac>', 'a MAC, for a node not registered yet')
    .option('--note <text>', 'why (shown in listings)')
    .action(async (network: string, address: string, o: { node?: string; interface: string; mac?: string; note?: string }) => {
      if (!o.node === !o.mac) throw ctx.fail('give --node UUID or --mac MAC (one of them)');
      const res = await ctx.http()<AllocationView & { replaced: string | null }>('POST', '/api/v1/ipam/reservations', { network, address, ...(o.node ? { node: o.node, interface: o.interface } : { mac: o.mac }), ...(o.note ? { note: o.note } : {}) });
      if (json()) return out(JSON.stringify(res, null, 2));
      out(`reserved ${res.address} on ${res.network} for ${res.node ? `node ${res.node} (${res.interface})` : `MAC ${res.mac}`}${res.replaced ? `; it held ${res.replaced}, which is free again` : ''}`);
    });
  ipam
    .command('release')
    .description('free an address (an allocation, a reservation, or a conflict once the other device is gone)')
    .argument('<network>')
    .argument('<address>')
    .action(async (network: string, address: string) => {
      const res = await ctx.http()<{ released: AllocationView }>('POST', '/api/v1/ipam/release', { network, address });
      if (json()) return out(JSON.stringify(res.released, null, 2));
      const r = res.released;
      out(`released ${r.address} on ${r.network}${r.node ? ` (was node ${r.node}, ${r.interface})` : r.state === 'conflict' ? ' (was in conflict)' : ''}`);
    });
}
