// IPAM (issue 16 item 1): the networks nodes get addresses on, and who holds which address. Replicas are
// stateless and share this database, so the database itself keeps an address to one holder: UNIQUE(network,
// address) and UNIQUE(network, node, interface). A replica that loses a race to another is refused by the
// constraint and picks the next address (server/store/ipam.ts); the rules are in server/domain/ipam.ts.
import { bigserial, boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { nodes } from './nodes.ts';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const networks = pgTable('networks', {
  /** what profiles name ("prov", "storage") */
  name: text('name').primaryKey(),
  /** 10.20.0.0/24 or fd00:20::/64, host bits zero */
  cidr: text('cidr').notNull(),
  /** 4 | 6 */
  family: integer('family').notNull(),
  gateway: text('gateway'),
  /** DNS servers handed to nodes on this network */
  dns: jsonb('dns').$type<string[]>().notNull().default([]),
  /** the addresses handed out; null: the whole network (server/domain/ipam.ts defaultPool) */
  poolStart: text('pool_start'),
  poolEnd: text('pool_end'),
  /** 802.1Q VLAN id: the node puts the address on <bond>.<vlan> */
  vlan: integer('vlan'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
});

/**
 * One address on one network: a node's interface's (allocated, or reserved by an operator), a reservation for a
 * MAC whose node is not known yet (node null, mac set), or an address another device answered for (state
 * conflict, node null) that is never handed out until an operator releases it. Addresses are stored in canonical
 * text (server/domain/ipam.ts formatAddress), so equal addresses are equal strings.
 */
export const allocations = pgTable(
  'allocations',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    network: text('network')
      .notNull()
      .references(() => networks.name, { onDelete: 'cascade' }),
    nodeUuid: text('node_uuid').references(() => nodes.uuid, { onDelete: 'cascade' }),
    /** the interface name or role the profile gives the address to ("bond0") */
    interface: text('interface'),
    /** a reservation's MAC (lower case) */
    mac: text('mac'),
    address: text('address').notNull(),
    /** pinned by an operator: never moved or freed by the system */
    reserved: boolean('reserved').notNull().default(false),
    /** allocated | conflict */
    state: text('state').notNull().default('allocated'),
    /** why (a conflict: which node declined it and how) */
    note: text('note'),
    createdAt: ts('created_at').notNull().defaultNow(),
    updatedAt: ts('updated_at').notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('allocations_address_uq').on(t.network, t.address),
    // NULL node/interface rows (MAC reservations, conflicts) are distinct from each other, as PostgreSQL treats NULLs
    uniqueIndex('allocations_node_iface_uq').on(t.network, t.nodeUuid, t.interface),
    uniqueIndex('allocations_mac_uq').on(t.network, t.mac).where(sql`mac is not null and node_uuid is null`),
    index('allocations_node_idx').on(t.nodeUuid),
  ],
);
