// Serial console capture (issue 16 item 4): what each node printed on its serial port, per boot, as IPMI SOL
// delivered it (server/bmc/sol.ts). Bounded per node: store/console.ts deletes the oldest chunks past the byte
// budget in the same transaction as every append, so a node that prints forever costs at most that budget.
import { bigserial, index, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { nodes } from './nodes.ts';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const consoleChunks = pgTable(
  'console_chunks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeUuid: text('node_uuid')
      .notNull()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    /** which boot the output belongs to: when the node entered the state whose boot was captured (nodes.state_since) */
    bootAt: ts('boot_at').notNull(),
    at: ts('at').notNull().defaultNow(),
    /** UTF-8 byte length of `data` (the per-node budget counts bytes, not characters) */
    bytes: integer('bytes').notNull(),
    data: text('data').notNull(),
  },
  (t) => [index('console_chunks_node_idx').on(t.nodeUuid, t.id), index('console_chunks_at_idx').on(t.at)],
);
