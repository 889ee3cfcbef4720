// The cabling plan operators load (issue 16 item 5): per node (serial, SMBIOS UUID or MAC) or per rack, the
// planned NIC → switch and port links and the policy. A load replaces the whole plan (PUT /api/v1/cabling), so
// every row carries who loaded it and when. Compliance itself is never stored: it is computed from the node's
// latest LLDP facts against this table (server/domain/cabling.ts), like firmware compliance.
import { bigserial, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const cablingPlans = pgTable(
  'cabling_plans',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** node | rack */
    scope: text('scope').notNull(),
    /** as written in the document: serial, UUID or MAC (node), rack name (rack) */
    key: text('key').notNull(),
    /** the key as compared (server/domain/cabling.ts cablingKey): a MAC's 12 hex digits, anything else lower case */
    keyNorm: text('key_norm').notNull(),
    /** warn | block */
    policy: text('policy').notNull(),
    /** PlannedLink[]: { nic, switch, port } */
    links: jsonb('links').$type<{ nic: string; switch: string; port: string }[]>().notNull(),
    /** the document's format and name: "yaml", "csv racks.csv" */
    source: text('source'),
    loadedAt: ts('loaded_at').notNull().defaultNow(),
    loadedBy: text('loaded_by').notNull(),
  },
  (t) => [uniqueIndex('cabling_plans_key_uq').on(t.scope, t.keyNorm)],
);
