// Fleet health and remediation tables (issue 6). Rebuild attempts are rows so that a new leader knows which
// rebuilds are in flight (concurrency limits), when the last one ended (backoff) and when the node first
// failed (time to recover). Webhook deliveries are a queue in the database so retries survive a restart or a
// change of leader.
import { bigserial, index, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { nodes } from './nodes.ts';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const fleetRebuilds = pgTable(
  'fleet_rebuilds',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeUuid: text('node_uuid')
      .notNull()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    /** 1-based attempt within one repair loop (failed → … → active) */
    attempt: integer('attempt').notNull(),
    /** value of the rack label when the rebuild started (per-rack concurrency) */
    rack: text('rack'),
    /** when the node first failed in this repair loop */
    failedAt: ts('failed_at').notNull(),
    startedAt: ts('started_at').notNull(),
    finishedAt: ts('finished_at'),
    /** running | succeeded | failed | abandoned (operator took the node: maintenance, quarantine, retire) */
    outcome: text('outcome').notNull().default('running'),
    reason: text('reason'),
  },
  (t) => [index('fleet_rebuilds_node_idx').on(t.nodeUuid, t.id), index('fleet_rebuilds_outcome_idx').on(t.outcome)],
);

export const fleetWebhookDeliveries = pgTable(
  'fleet_webhook_deliveries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** failed | rebuilt | quarantined */
    event: text('event').notNull(),
    nodeUuid: text('node_uuid'),
    url: text('url').notNull(),
    /** the exact bytes that are signed and sent */
    body: text('body').notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: ts('next_attempt_at').notNull(),
    deliveredAt: ts('delivered_at'),
    gaveUpAt: ts('gave_up_at'),
    lastError: text('last_error'),
    createdAt: ts('created_at').notNull(),
  },
  (t) => [index('fleet_webhook_due_idx').on(t.nextAttemptAt)],
);
