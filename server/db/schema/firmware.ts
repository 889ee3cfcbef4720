// Firmware compliance tables (issue 7): baselines with their change history, and the update attempts the
// inspection gate hands out under policy enforce. Compliance itself is never stored: it is computed from the
// node's latest facts, so it cannot drift from what the machine last reported.
import { bigserial, boolean, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { nodes } from './nodes.ts';

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const firmwareBaselines = pgTable('firmware_baselines', {
  name: text('name').primaryKey(),
  /** 1 on create, +1 on every change */
  version: integer('version').notNull(),
  /** the validated Baseline document (server/contract/firmware.ts) */
  spec: jsonb('spec').$type<Record<string, unknown>>().notNull(),
  /** where it came from: file name or "api" */
  source: text('source'),
  createdAt: ts('created_at').notNull().defaultNow(),
  updatedAt: ts('updated_at').notNull().defaultNow(),
  updatedBy: text('updated_by').notNull(),
});

export const firmwareBaselineHistory = pgTable(
  'firmware_baseline_history',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    name: text('name').notNull(),
    version: integer('version').notNull(),
    /** create | update | delete */
    action: text('action').notNull(),
    spec: jsonb('spec').$type<Record<string, unknown>>().notNull(),
    source: text('source'),
    changedAt: ts('changed_at').notNull().defaultNow(),
    actor: text('actor').notNull(),
  },
  (t) => [uniqueIndex('firmware_baseline_history_uq').on(t.name, t.version)],
);

export const firmwareAttempts = pgTable(
  'firmware_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    nodeUuid: text('node_uuid')
      .notNull()
      .references(() => nodes.uuid, { onDelete: 'cascade' }),
    /** 1, 2, … within one streak of attempts; a streak ends when the node is compliant or quarantined */
    number: integer('number').notNull(),
    baselineName: text('baseline_name').notNull(),
    baselineVersion: integer('baseline_version').notNull(),
    /** the plan's steps (PlanStep[]) */
    steps: jsonb('steps').$type<unknown[]>().notNull(),
    createdAt: ts('created_at').notNull().defaultNow(),
    reportedAt: ts('reported_at'),
    /** StepResult[] from the agent */
    results: jsonb('results').$type<unknown[]>(),
    ok: boolean('ok'),
    /** open | compliant | gave-up */
    outcome: text('outcome').notNull().default('open'),
    closedAt: ts('closed_at'),
  },
  (t) => [index('firmware_attempts_node_idx').on(t.nodeUuid, t.id)],
);
