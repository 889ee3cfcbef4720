// Fleet health and remediation tables (issue 6). Rebuild attempts are rows so that a new leader knows which
// rebuilds are in flight (concurrency limits), when the last one ended (backoff) and when the node first
// failed (time to recover). Webhook deliveries are a queue in the database so retries survive a restart or a
// change of leader.
import { bigint, bigserial, boolean, index, integer, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
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
    /** running | succeeded | failed | abandoned (operator took the node: maintenance, quarantine, retire) | confirmed (a confirm step, attempt 0) */
    outcome: text('outcome').notNull().default('running'),
    /** escalation ladder step: confirm | soft-reset | reprovision | bmc-reset (server/fleet/ladder.ts) */
    step: text('step').notNull().default('reprovision'),
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

/**
 * The control plane's own state, one row (id 'fleet'), shared by every replica (issue 12):
 * - liveness: when the leader last finished a tick, who it is, and since when the current leader has watched the
 *   fleet without a gap (observedSince). A new leader reads the gap from here; no heartbeat verdict counts time
 *   before observedSince, because the control plane could not have heard a heartbeat then.
 * - the fleet-wide circuit breaker: open stops every automatic remediation until a person resumes.
 * - the leader epoch (fencing token, docs/ha.md): a replica that takes the leader lock increments it, in one
 *   transaction on the lock's own session; every controller write checks, in its transaction, that the epoch
 *   is still the one its replica took, so a leader that lost the lock (and does not know yet) writes nothing.
 */
export const fleetControl = pgTable('fleet_control', {
  id: text('id').primaryKey(),
  lastTickAt: ts('last_tick_at'),
  leaderId: text('leader_id'),
  leaderSince: ts('leader_since'),
  observedSince: ts('observed_since'),
  breakerOpen: boolean('breaker_open').notNull().default(false),
  breakerOpenedAt: ts('breaker_opened_at'),
  breakerReason: text('breaker_reason'),
  /** what tripped it: { scope: 'fleet' | rack value, failures, population, share, window } */
  breakerData: jsonb('breaker_data').$type<Record<string, unknown>>(),
  /** failures before this instant never count again toward the breaker (set on resume) */
  breakerResumedAt: ts('breaker_resumed_at'),
  breakerResumedBy: text('breaker_resumed_by'),
  leaderEpoch: bigint('leader_epoch', { mode: 'number' }).notNull().default(0),
  /** the replica that took the current epoch, and when */
  epochHolder: text('epoch_holder'),
  epochAt: ts('epoch_at'),
  /** the retention job's last run (server/fleet/retention.ts): when, by which epoch, rows pruned per table, how long */
  retentionRun: jsonb('retention_run').$type<Record<string, unknown>>(),
});

/** Fleet-level history (audit): breaker opened / resumed, leader changes, outage gaps. Node events stay in `events`. */
export const fleetEvents = pgTable(
  'fleet_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: ts('at').notNull(),
    /** breaker-open | breaker-resume | leader | gap */
    kind: text('kind').notNull(),
    reason: text('reason').notNull(),
    actor: text('actor').notNull(),
    data: jsonb('data').$type<Record<string, unknown>>(),
  },
  (t) => [index('fleet_events_at_idx').on(t.at)],
);

/**
 * The control plane's replicas (issue 14 item 6): each upserts its own row every fleet tick (leader or not), so
 * every replica can list the cluster. A replica whose last_seen is older than missedTicks × tickSeconds is gone;
 * rows of replicas gone for a day are deleted by the leader.
 */
export const replicas = pgTable('replicas', {
  /** host:pid:random, new for every process (the fleet controller's instance id, the leader epoch's holder) */
  id: text('id').primaryKey(),
  hostname: text('hostname').notNull(),
  /** where operators and the load balancer reach it (http.publicUrl), when configured */
  url: text('url'),
  /** product version of the build */
  version: text('version').notNull(),
  /** the latest migration this build knows */
  schemaVersion: text('schema_version').notNull(),
  startedAt: ts('started_at').notNull(),
  lastSeen: ts('last_seen').notNull(),
  /** whether it led at its last tick (the current leader is fleet_control.epoch_holder) */
  leader: boolean('leader').notNull().default(false),
});
