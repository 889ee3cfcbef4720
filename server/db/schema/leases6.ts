// DHCPv6 leases (issue 19 item 3, issue 14 item 4). Written through boot/dhcp6's Lease6Store seam by
// server/store/leases6.ts: one row per address, replaced when the address changes hands. Not dhcp_leases: a
// DHCPv6 lease belongs to an IA, keyed by the client's DUID and IAID (RFC 8415 §12), and the client need not
// reveal a MAC at all (DUID-UUID from iPXE and EDK2), so mac is nullable here and there is no client-id column.
import { bigint, index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const dhcp6Leases = pgTable(
  'dhcp6_leases',
  {
    /** RFC 5952 text form: the key, since an address has one holder at a time (replicas rely on it) */
    address: text('address').primaryKey(),
    /** client DUID, hex, type included; '' for a declined address nobody owns */
    duid: text('duid').notNull(),
    /** IAID of the IA_NA, an unsigned 32-bit number (does not fit integer) */
    iaid: bigint('iaid', { mode: 'number' }).notNull(),
    /** lower-case colon MAC when the client's messages revealed one */
    mac: text('mac'),
    /** bound | released | declined */
    state: text('state').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    pool: text('pool').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  // not unique: one IA may keep a row for an old address until it expires (the responder moved it to another pool)
  (t) => [index('dhcp6_leases_client_idx').on(t.duid, t.iaid), index('dhcp6_leases_expires_idx').on(t.expiresAt)],
);
