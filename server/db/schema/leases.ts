// DHCP leases (issue 3, DHCP part). Written through boot/dhcp's LeaseStore seam by server/store/leases.ts:
// one row per address, replaced when the address changes hands.
import { index, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const dhcpLeases = pgTable(
  'dhcp_leases',
  {
    /** dotted IPv4 address: the key, since an address has one holder at a time */
    ip: text('ip').primaryKey(),
    /** lower-case colon MAC; '' for a declined address (in use by something we do not know) */
    mac: text('mac').notNull(),
    /** DHCP option 61, hex */
    clientId: text('client_id'),
    hostname: text('hostname'),
    /** bound | released | declined */
    state: text('state').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    pool: text('pool').notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('dhcp_leases_mac_idx').on(t.mac), index('dhcp_leases_expires_idx').on(t.expiresAt)],
);
