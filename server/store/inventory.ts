// Bulk enrollment and node deletion (issue 17 item 6): the only code that writes them to the database. Both run in
// one transaction with their audit row (server/store/audit.ts: it outlives the node, whose events go with it).
import { and, count, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { pgErrorCode } from '../db/index.ts';
import { bmcs, bootAttempts, conflicts, dhcp6Leases, dhcpLeases, events, facts, interfaces, nodes } from '../db/schema/index.ts';
import { writeAuditAs, type AuditIntent } from './audit.ts';
import type { NodeState } from '../contract/lifecycle.ts';
import { deleteRefusal, type InventoryRow, type RowError } from '../domain/inventory.ts';
import { AppError, notFound } from '../errors.ts';
import { nodeWritten } from './node-writes.ts';
import { systemClock, type Clock } from '../clock.ts';

export interface InventoryStoreOptions {
  clock?: Clock;
  /** seals a BMC password for storage (BmcStore.seal) */
  seal: (password: string) => Promise<string>;
}

export interface DeleteResult {
  uuid: string;
  state: string;
  removed: { interfaces: number; leases: number; bootAttempts: number; facts: number; events: number; bmc: boolean; conflictsClosed: number };
}

export function createInventoryStore(db: Db, { clock = systemClock, seal }: InventoryStoreOptions) {
  /** Problems the database has with the rows: a node, MAC or BMC address that is already someone's. */
  async function clashes(tx: Db, rows: { row: number; node: InventoryRow }[]): Promise<RowError[]> {
    const errors: RowError[] = [];
    const uuids = rows.map((r) => r.node.uuid);
    const macs = rows.flatMap((r) => r.node.macs);
    const addresses = rows.flatMap((r) => (r.node.bmc ? [r.node.bmc.address] : []));
    const taken = new Set(uuids.length ? (await tx.select({ uuid: nodes.uuid }).from(nodes).where(inArray(nodes.uuid, uuids))).map((r) => r.uuid) : []);
    const macOwner = new Map(macs.length ? (await tx.select({ mac: interfaces.mac, uuid: interfaces.nodeUuid }).from(interfaces).where(inArray(interfaces.mac, macs))).map((r) => [r.mac, r.uuid]) : []);
    const bmcOwner = new Map(
      addresses.length ? (await tx.select({ address: bmcs.address, port: bmcs.port, uuid: bmcs.nodeUuid }).from(bmcs).where(inArray(bmcs.address, addresses))).map((r) => [`${r.address}:${r.port ?? ''}`, r.uuid]) : [],
    );
    for (const { row, node } of rows) {
      if (taken.has(node.uuid)) errors.push({ row, field: 'uuid', message: `node ${node.uuid} is already enrolled; leave it out, or delete it first` });
      for (const mac of node.macs) {
        const owner = macOwner.get(mac);
        if (owner) errors.push({ row, field: 'macs', message: `MAC ${mac} belongs to node ${owner}` });
      }
      const owner = node.bmc && bmcOwner.get(`${node.bmc.address}:${node.bmc.port ?? ''}`);
      if (owner) errors.push({ row, field: 'bmc.address', message: `BMC ${node.bmc!.address} is node ${owner}'s` });
    }
    return errors;
  }

  return {
    /** What the database has against these rows (for the all-or-nothing report before anything is written). */
    clashes: (rows: { row: number; node: InventoryRow }[]) => clashes(db, rows),

    /**
     * Create every node of the inventory, with its interfaces and BMC, as `discovered`, in one transaction; the
     * rows are checked against the database again inside it, so a clash that appeared since the check writes
     * nothing (409 naming the rows).
     */
    async enroll(rows: { row: number; node: InventoryRow }[], actor: string, intent?: AuditIntent): Promise<{ enrolled: string[] }> {
      const now = clock.now();
      const reason = 'enrolled from an inventory';
      const sealed = new Map<string, string>();
      for (const { node } of rows) if (node.bmc) sealed.set(node.uuid, await seal(node.bmc.password));
      try {
        return await db.transaction(async (tx) => {
          const late = await clashes(tx as unknown as Db, rows);
          if (late.length) throw new AppError(409, 'conflict', `the database changed since the inventory was checked: ${late.length} problem(s); nothing was enrolled`, { errors: late });
          const list = rows.map((r) => r.node);
          await tx.insert(nodes).values(
            list.map((n) => ({ uuid: n.uuid, serial: n.serial ?? null, hostname: n.hostname ?? null, state: 'discovered', stateSince: now, stateReason: reason, labels: n.labels, profile: n.profile ?? null, createdAt: now, updatedAt: now })),
          );
          const nics = list.flatMap((n) => n.macs.map((mac) => ({ mac, nodeUuid: n.uuid, updatedAt: now })));
          if (nics.length) await tx.insert(interfaces).values(nics);
          const withBmc = list.filter((n) => n.bmc);
          if (withBmc.length)
            await tx.insert(bmcs).values(
              withBmc.map((n) => ({ nodeUuid: n.uuid, driver: n.bmc!.driver, address: n.bmc!.address, port: n.bmc!.port ?? null, username: n.bmc!.username, passwordEnc: sealed.get(n.uuid)!, options: {}, createdAt: now, updatedAt: now })),
            );
          await tx.insert(events).values(
            list.flatMap((n) => [
              { nodeUuid: n.uuid, at: now, kind: 'transition', fromState: null, toState: 'discovered', reason, actor, data: { macs: n.macs, serial: n.serial ?? null } },
              ...(n.bmc ? [{ nodeUuid: n.uuid, at: now, kind: 'bmc', reason: `BMC enrolled: ${n.bmc.driver} ${n.bmc.address}${n.bmc.port ? `:${n.bmc.port}` : ''} as ${n.bmc.username}`, actor }] : []),
            ]),
          );
          // BMC addresses only: never a password
          await writeAuditAs(tx, intent, { actor, action: 'nodes.enroll', target: { kind: 'nodes', id: String(list.length) } }, { before: null, after: { uuids: list.map((n) => n.uuid), macs: list.flatMap((n) => n.macs), bmcs: withBmc.map((n) => n.bmc!.address) } }, now);
          return { enrolled: list.map((n) => n.uuid) };
        });
      } catch (err) {
        if (pgErrorCode(err) === '23505') throw new AppError(409, 'conflict', 'a node or MAC of the inventory was enrolled by someone else meanwhile; nothing was enrolled: check again');
        throw err;
      }
    },

    /**
     * Forget a node: its interfaces, DHCP and DHCPv6 leases (by its MACs), boot attempts, node credential, facts, events and BMC
     * go with it; other nodes' open conflicts naming it are closed. The audit row (who, the node as it was without
     * its credential hash, what went with it; action node.delete or node.delete.forced) is in audit_log. Refused for a node that runs or is booting unless forced (domain/inventory.ts).
     */
    async deleteNode(uuid: string, { force, actor, audit: intent }: { force: boolean; actor: string; audit?: AuditIntent }): Promise<DeleteResult> {
      const now = clock.now();
      // counted once the transaction is over: a cached row of this node (server/api/beat-cache.ts) is dropped
      const done = db.transaction(async (tx) => {
        const [node] = await tx.select().from(nodes).where(eq(nodes.uuid, uuid)).for('update');
        if (!node) throw notFound(`node ${uuid}`);
        const refusal = deleteRefusal(node.state as NodeState, force);
        if (refusal) throw new AppError(409, 'node_in_use', refusal, { state: node.state });
        const nics = await tx.select({ mac: interfaces.mac }).from(interfaces).where(eq(interfaces.nodeUuid, uuid));
        const macs = nics.map((n) => n.mac);
        const [bmc] = await tx.select({ driver: bmcs.driver, address: bmcs.address, port: bmcs.port }).from(bmcs).where(eq(bmcs.nodeUuid, uuid));
        const n = async (table: typeof bootAttempts | typeof facts | typeof events) => (await tx.select({ n: count() }).from(table).where(eq(table.nodeUuid, uuid)))[0]!.n;
        const counts = { bootAttempts: await n(bootAttempts), facts: await n(facts), events: await n(events) };
        // DHCPv4 and DHCPv6 leases of its MACs (a DHCPv6 lease whose client never revealed a MAC stays until it expires)
        const leases = macs.length
          ? [
              ...(await tx.delete(dhcpLeases).where(inArray(dhcpLeases.mac, macs)).returning({ ip: dhcpLeases.ip })),
              ...(await tx.delete(dhcp6Leases).where(inArray(dhcp6Leases.mac, macs)).returning({ ip: dhcp6Leases.address })),
            ]
          : [];
        const closed = await tx
          .update(conflicts)
          .set({ resolvedAt: now })
          .where(and(eq(conflicts.otherUuid, uuid), isNull(conflicts.resolvedAt)))
          .returning({ id: conflicts.id });
        // interfaces, boot attempts, facts, events, conflicts, BMC, rebuilds and firmware attempts cascade
        await tx.delete(nodes).where(eq(nodes.uuid, uuid));
        const removed = { interfaces: macs.length, leases: leases.length, ...counts, bmc: !!bmc, conflictsClosed: closed.length };
        const { credentialHash: _secret, ...before } = node;
        await writeAuditAs(tx, intent, { actor, action: 'node.delete', target: { kind: 'node', id: uuid } }, { action: force ? 'node.delete.forced' : 'node.delete', before: { node: { ...before, hadCredential: !!node.credentialHash }, macs, leases: leases.map((l) => l.ip), bmc: bmc ?? null }, after: { removed } }, now);
        return { uuid, state: node.state, removed };
      });
      return done.finally(() => nodeWritten(uuid));
    },
  };
}

export type InventoryStore = ReturnType<typeof createInventoryStore>;
