// In-band BMC setup requests (server/api/bmc-setup.ts), the latest per node, in the database so that the agent's
// GET and POST may reach any replica and a restart forgets nothing (issue 14 item 1). The plan (its script
// carries the generated password) and the password are sealed by the keyring; both are dropped when the setup
// ends (verified, failed, expired).
import { bigint, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { nodes } from './nodes.ts';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const bmcSetups = pgTable(
  'bmc_setups',
  {
    /** one row per node: a new request replaces the previous one */
    nodeUuid: text('node_uuid')
      .primaryKey()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    id: text('id').notNull().unique(),
    /** pending | delivered | verifying | verified | failed | expired */
    state: text('state').notNull(),
    /** JSON of the plan, sealed (server/store/keyring.ts); null once the setup ended */
    planSealed: text('plan_sealed'),
    passwordSealed: text('password_sealed'),
    /** what may be shown: the plan's redacted script and expected address/port/user */
    summary: jsonb('summary').$type<{ redacted: string; expect: { address: string; port: number; username: string } }>().notNull(),
    requestedBy: text('requested_by').notNull(),
    requestedAt: ts('requested_at').notNull(),
    deliveredAt: ts('delivered_at'),
    /** the boot attempt that was handed the plan and its address: only it may report the result */
    deliveredAttemptId: bigint('delivered_attempt_id', { mode: 'number' }),
    deliveredAddress: text('delivered_address'),
    finishedAt: ts('finished_at'),
    message: text('message'),
  },
  (t) => [index('bmc_setups_open_idx').on(t.state, t.requestedAt)],
);
