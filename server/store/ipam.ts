// IPAM storage (issue 16 item 1): networks, and the allocations that hold their addresses. The only IPAM code
// that touches drizzle; which address to hand out is decided by server/domain/ipam.ts.
//
// Replicas share one database and no memory, so two of them may choose the same free address for two nodes at
// the same moment. The insert says ON CONFLICT DO NOTHING: the loser's insert waits for the winner's commit, is
// refused by UNIQUE(network, address) or UNIQUE(network, node, interface), and the loser reads the rows again in
// the same transaction (READ COMMITTED: each statement sees what has committed) and chooses again — the next free
// address, or the row another request for the same node and interface just wrote. No lock is held across nodes.
import { and, asc, eq, inArray, isNull, type SQL } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { pgErrorCode } from '../db/index.ts';
import { allocations, interfaces, networks, nodes } from '../db/schema/index.ts';
import {
  canonicalAddress,
  chooseAddress,
  compareAddresses,
  contains,
  formatAddress,
  parseAddress,
  parseCidr,
  poolUsage,
  reservationProblem,
  toNetwork,
  type AllocationRequest,
  type Holding,
  type Network,
  type NetworkSpec,
  type NodeAddress,
} from '../domain/ipam.ts';
import { AppError, notFound } from '../errors.ts';
import { systemClock, type Clock } from '../clock.ts';
import { writeAudit, type AuditIntent } from './audit.ts';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type NetworkRow = typeof networks.$inferSelect;
export type AllocationRow = typeof allocations.$inferSelect;

/** thrown inside a savepoint to roll it back when a reservation was claimed by another request first */
const LOST = Symbol('lost race');

/** attempts to insert before giving up: each lost race moves past one address another replica took */
const MAX_ATTEMPTS = 64;

const specOf = (r: NetworkRow): NetworkSpec => ({ name: r.name, cidr: r.cidr, gateway: r.gateway, dns: r.dns, poolStart: r.poolStart, poolEnd: r.poolEnd, vlan: r.vlan });
const holdingOf = (r: AllocationRow): Holding => ({ address: r.address, nodeUuid: r.nodeUuid, interface: r.interface, mac: r.mac, reserved: r.reserved, state: r.state as Holding['state'] });
const byAddress = (a: AllocationRow, b: AllocationRow) => a.network.localeCompare(b.network) || compareAddresses(a.address, b.address);

export interface NetworkUsage {
  network: NetworkRow;
  pool: { start: string; end: string };
  usage: { size: bigint; used: bigint; free: bigint; allocated: number; reserved: number; conflict: number };
}

export interface Allocated {
  network: Network;
  row: AllocationRow;
  /** false: the node's interface already held it (a rebuild) */
  created: boolean;
}

export function createIpamStore(db: Db, { clock = systemClock }: { clock?: Clock } = {}) {
  /** inserts refused by a unique constraint because another request took the address or wrote the row first */
  const stats = { lostRaces: 0 };
  /** `update`: the network itself changes (put, delete, reserve); `share`: an allocation must not race a change of
   * the network's CIDR or pool, but allocations do not wait for each other */
  const networkIn = async (tx: Pick<Db, 'select'>, name: string, { lock }: { lock?: 'update' | 'share' } = {}): Promise<NetworkRow> => {
    const q = tx.select().from(networks).where(eq(networks.name, name));
    const [row] = lock ? await q.for(lock) : await q;
    if (!row) throw notFound(`network ${name}`, { network: name });
    return row;
  };
  const rowsOf = (tx: Pick<Db, 'select'>, name: string) => tx.select().from(allocations).where(eq(allocations.network, name));

  /** The allocation loop of one (network, node, interface), inside the caller's transaction. */
  async function allocateIn(tx: Tx, n: Network, req: AllocationRequest): Promise<{ row: AllocationRow; created: boolean }> {
    const lost = new Set<bigint>();
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const rows = await rowsOf(tx, n.name);
      const choice = chooseAddress(n, rows.map(holdingOf), req, lost);
      const now = clock.now();
      if (choice.kind === 'existing') return { row: rows.find((r) => r.address === choice.address)!, created: false };
      if (choice.kind === 'reservation') {
        // bind the MAC's reservation to the node; a savepoint, so that losing it to a concurrent claim (unique
        // node/interface) leaves this transaction usable for the next attempt
        const claimed = await tx
          .transaction(async (sp) => {
            if (choice.replaces) await sp.delete(allocations).where(and(eq(allocations.network, n.name), eq(allocations.nodeUuid, req.nodeUuid), eq(allocations.interface, req.interface), eq(allocations.reserved, false)));
            const done = await sp
              .update(allocations)
              .set({ nodeUuid: req.nodeUuid, interface: req.interface, updatedAt: now })
              .where(and(eq(allocations.network, n.name), eq(allocations.address, choice.address), isNull(allocations.nodeUuid)))
              .returning();
            // claimed by someone else meanwhile: undo the delete too
            if (!done[0]) throw LOST;
            return done;
          })
          .catch((e: unknown) => {
            if (e === LOST || pgErrorCode(e) === '23505') return [];
            throw e;
          });
        if (claimed[0]) return { row: claimed[0], created: true };
        continue;
      }
      const [row] = await tx
        .insert(allocations)
        .values({ network: n.name, nodeUuid: req.nodeUuid, interface: req.interface, address: choice.address, createdAt: now, updatedAt: now })
        .onConflictDoNothing()
        .returning();
      if (row) return { row, created: true };
      stats.lostRaces++;
      lost.add(parseAddress(choice.address)!.value);
    }
    throw new AppError(503, 'unavailable', `network ${n.name}: lost ${MAX_ATTEMPTS} races for a free address to other replicas; try again`, { network: n.name }, { 'retry-after': '1' });
  }

  const macsOf = async (tx: Pick<Db, 'select'>, uuid: string) => (await tx.select({ mac: interfaces.mac }).from(interfaces).where(eq(interfaces.nodeUuid, uuid))).map((r) => r.mac.toLowerCase());

  const store = {
    stats,

    async listNetworks(): Promise<NetworkUsage[]> {
      const [nets, rows] = await Promise.all([db.select().from(networks).orderBy(asc(networks.name)), db.select().from(allocations)]);
      return nets.map((net) => usageOf(net, rows.filter((r) => r.network === net.name)));
    },

    async getNetwork(name: string): Promise<NetworkUsage> {
      const net = await networkIn(db, name);
      return usageOf(net, await rowsOf(db, name));
    },

    /**
     * Creates or replaces network `spec.name`. Refused (409, naming the addresses) when allocations would fall
     * outside the new CIDR or the new gateway is someone's address; allocations outside a narrowed pool stay
     * (a node keeps its address), only new ones come from the new pool.
     */
    async putNetwork(spec: NetworkSpec, { audit }: { audit?: AuditIntent } = {}): Promise<{ network: NetworkRow; created: boolean }> {
      const n = toNetwork(spec);
      return db.transaction(async (tx) => {
        const [before] = await tx.select().from(networks).where(eq(networks.name, spec.name)).for('update');
        const rows = before ? await rowsOf(tx, spec.name) : [];
        const outside = rows.filter((r) => !contains(n.cidr, parseAddress(r.address)!));
        if (outside.length)
          throw new AppError(409, 'network_in_use', `network ${spec.name}: ${outside.length} address(es) held outside the new ${spec.cidr} (${outside.slice(0, 5).map((r) => r.address).join(', ')}); release them first`, { network: spec.name, addresses: outside.map((r) => r.address) });
        const gw = spec.gateway ? canonicalAddress(spec.gateway) : null;
        const onGateway = rows.find((r) => r.address === gw);
        if (onGateway) throw new AppError(409, 'network_in_use', `network ${spec.name}: the new gateway ${gw} is held by ${onGateway.nodeUuid ? `node ${onGateway.nodeUuid}` : `a ${onGateway.state} row`}; release it first`, { network: spec.name, address: gw });
        const now = clock.now();
        const values = {
          cidr: `${canonicalAddress(spec.cidr.split('/')[0]!)}/${parseCidr(spec.cidr).prefix}`,
          family: n.cidr.family,
          gateway: gw,
          dns: n.dns,
          poolStart: spec.poolStart ? canonicalAddress(spec.poolStart) : null,
          poolEnd: spec.poolEnd ? canonicalAddress(spec.poolEnd) : null,
          vlan: spec.vlan,
          updatedAt: now,
        };
        const [row] = before
          ? await tx.update(networks).set(values).where(eq(networks.name, spec.name)).returning()
          : await tx
              .insert(networks)
              .values({ name: spec.name, ...values, createdAt: now })
              .returning();
        await writeAudit(tx, audit, { before: before ? specOf(before) : null, after: specOf(row!) }, now);
        return { network: row!, created: !before };
      });
    },

    /** Deletes a network; with allocations on it only when forced (they go with it). */
    async deleteNetwork(name: string, { force = false, audit }: { force?: boolean; audit?: AuditIntent } = {}): Promise<{ allocations: number }> {
      return db.transaction(async (tx) => {
        const net = await networkIn(tx, name, { lock: 'update' });
        const rows = await rowsOf(tx, name);
        if (rows.length && !force) throw new AppError(409, 'network_in_use', `network ${name} holds ${rows.length} address(es) (allocated, reserved or in conflict); release them or delete with force`, { network: name, allocations: rows.length });
        await tx.delete(networks).where(eq(networks.name, name));
        await writeAudit(tx, audit, { before: { ...specOf(net), allocations: rows.length }, after: null }, clock.now());
        return { allocations: rows.length };
      });
    },

    async allocations({ network, node, state }: { network?: string; node?: string; state?: 'allocated' | 'conflict' } = {}): Promise<AllocationRow[]> {
      const conds: SQL[] = [];
      if (network) conds.push(eq(allocations.network, network));
      if (node) conds.push(eq(allocations.nodeUuid, node));
      if (state) conds.push(eq(allocations.state, state));
      return (await db.select().from(allocations).where(conds.length ? and(...conds) : undefined)).sort(byAddress);
    },

    /**
     * The address of a node's interface on a network: the one it holds (a rebuild gets the same), a reservation for
     * one of its MACs, or the first free one of the pool. One transaction. PoolExhaustedError when there is none.
     */
    async allocate(network: string, nodeUuid: string, iface: string): Promise<Allocated> {
      return db.transaction(async (tx) => {
        const n = toNetwork(specOf(await networkIn(tx, network, { lock: 'share' })));
        const res = await allocateIn(tx, n, { nodeUuid, interface: iface, macs: await macsOf(tx, nodeUuid) });
        return { network: n, ...res };
      });
    },

    /** Pins `address` to a node's interface (replacing the address it held there) or to a MAC. */
    async reserve(r: { network: string; address: string; nodeUuid?: string | null; interface?: string | null; mac?: string | null; note?: string | null }, { audit }: { audit?: AuditIntent } = {}): Promise<{ row: AllocationRow; replaced: string | null }> {
      const address = canonicalAddress(r.address);
      if (!address) throw new AppError(400, 'validation_failed', `address: "${r.address}" is not an IP address`);
      const nodeUuid = r.nodeUuid ?? null;
      const mac = r.mac?.toLowerCase() ?? null;
      const iface = nodeUuid ? (r.interface ?? 'bond0') : null;
      if (!nodeUuid === !mac) throw new AppError(400, 'validation_failed', 'a reservation names either a node (node, interface) or a MAC (mac), not both and not neither');
      return db.transaction(async (tx) => {
        const n = toNetwork(specOf(await networkIn(tx, r.network, { lock: 'update' })));
        if (nodeUuid && !(await tx.select({ uuid: nodes.uuid }).from(nodes).where(eq(nodes.uuid, nodeUuid)))[0]) throw notFound(`node ${nodeUuid}`, { uuid: nodeUuid });
        const rows = await rowsOf(tx, r.network);
        const problem = reservationProblem(n, rows.map(holdingOf), { address, nodeUuid, interface: iface, mac });
        if (problem) throw new AppError(problem.kind === 'invalid' ? 400 : 409, problem.kind === 'invalid' ? 'validation_failed' : 'address_taken', problem.message, { network: r.network, address });
        // the row this reservation replaces: the node's interface's, or the MAC's earlier reservation
        const mine = rows.find((x) => (nodeUuid ? x.nodeUuid === nodeUuid && x.interface === iface : x.nodeUuid === null && x.mac === mac));
        const now = clock.now();
        const values = { address, reserved: true, state: 'allocated', note: r.note ?? null, updatedAt: now };
        const [row] = mine
          ? await tx.update(allocations).set(values).where(eq(allocations.id, mine.id)).returning()
          : await tx
              .insert(allocations)
              .values({ network: r.network, nodeUuid, interface: iface, mac, ...values, createdAt: now })
              .returning();
        await writeAudit(tx, audit, { before: mine ? rowView(mine) : null, after: rowView(row!) }, now);
        return { row: row!, replaced: mine && mine.address !== address ? mine.address : null };
      });
    },

    /** Frees an address (an allocation, a reservation or a conflict an operator has cleared up). */
    async release(network: string, address: string, { audit }: { audit?: AuditIntent } = {}): Promise<AllocationRow> {
      const canonical = canonicalAddress(address);
      if (!canonical) throw new AppError(400, 'validation_failed', `address: "${address}" is not an IP address`);
      return db.transaction(async (tx) => {
        await networkIn(tx, network);
        const [row] = await tx
          .delete(allocations)
          .where(and(eq(allocations.network, network), eq(allocations.address, canonical)))
          .returning();
        if (!row) throw notFound(`address ${canonical} on network ${network}`, { network, address: canonical });
        await writeAudit(tx, audit, { before: rowView(row), after: null }, clock.now());
        return row;
      });
    },

    /**
     * A node reports that another device answers for its address (DHCPDECLINE, RFC 2131 §4.4.1; an ARP probe,
     * RFC 5227): the address is marked conflict (kept out of every pool until an operator releases it) and the
     * node's interface gets another one, in the same transaction.
     */
    async decline(nodeUuid: string, address: string, { network, reason }: { network?: string; reason: string }): Promise<{ declined: AllocationRow; replacement: Allocated }> {
      const canonical = canonicalAddress(address);
      if (!canonical) throw new AppError(400, 'validation_failed', `address: "${address}" is not an IP address`);
      return db.transaction(async (tx) => {
        const held = await tx
          .select()
          .from(allocations)
          .where(and(eq(allocations.nodeUuid, nodeUuid), eq(allocations.address, canonical), eq(allocations.state, 'allocated'), network ? eq(allocations.network, network) : undefined));
        if (held.length === 0) throw notFound(`address ${canonical} of node ${nodeUuid}${network ? ` on network ${network}` : ''}`, { address: canonical });
        if (held.length > 1) throw new AppError(400, 'validation_failed', `node ${nodeUuid} holds ${canonical} on networks ${held.map((h) => h.network).join(', ')}; name the network`);
        const row = held[0]!;
        const n = toNetwork(specOf(await networkIn(tx, row.network, { lock: 'share' })));
        const now = clock.now();
        const [declined] = await tx
          .update(allocations)
          .set({ state: 'conflict', nodeUuid: null, interface: null, mac: null, reserved: false, note: `declined by node ${nodeUuid} (${row.interface})${row.reserved ? ', was reserved' : ''}: ${reason}`.slice(0, 1024), updatedAt: now })
          .where(eq(allocations.id, row.id))
          .returning();
        const res = await allocateIn(tx, n, { nodeUuid, interface: row.interface!, macs: await macsOf(tx, nodeUuid) });
        return { declined: declined!, replacement: { network: n, ...res } };
      });
    },

    /** What a node holds (state allocated), with each network's numbers: read only, for comparing with what the
     * node reports it configured. */
    async nodeAddresses(uuid: string): Promise<NodeAddress[]> {
      const rows = await db
        .select({ a: allocations, n: networks })
        .from(allocations)
        .innerJoin(networks, eq(allocations.network, networks.name))
        .where(and(eq(allocations.nodeUuid, uuid), eq(allocations.state, 'allocated')));
      return rows.map((r) => ({ network: toNetwork(specOf(r.n)), interface: r.a.interface ?? '', address: r.a.address }));
    },

    /** The networks by name (for `detail`): the ones that exist. */
    async networksNamed(names: string[]): Promise<NetworkRow[]> {
      if (!names.length) return [];
      return db.select().from(networks).where(inArray(networks.name, names));
    },
  };
  return store;
}

/** an allocation as the audit log and the API show it */
export const rowView = (r: AllocationRow) => ({ network: r.network, address: r.address, node: r.nodeUuid, interface: r.interface, mac: r.mac, reserved: r.reserved, state: r.state, note: r.note, createdAt: r.createdAt.toISOString(), updatedAt: r.updatedAt.toISOString() });

function usageOf(net: NetworkRow, rows: AllocationRow[]): NetworkUsage {
  const n = toNetwork(specOf(net));
  const u = poolUsage(n, rows);
  return {
    network: net,
    pool: { start: formatAddress({ family: n.cidr.family, value: n.pool.start }), end: formatAddress({ family: n.cidr.family, value: n.pool.end }) },
    usage: { ...u, allocated: rows.filter((r) => r.state === 'allocated' && !r.reserved).length, reserved: rows.filter((r) => r.reserved).length, conflict: rows.filter((r) => r.state === 'conflict').length },
  };
}

export type IpamStore = ReturnType<typeof createIpamStore>;
