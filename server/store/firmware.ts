// Firmware baselines (versioned, with history) and update attempts. The only firmware code that touches drizzle.
import { and, asc, desc, eq, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { events, facts, firmwareAttempts, firmwareBaselineHistory, firmwareBaselines, nodes } from '../db/schema/index.ts';
import { Baseline, type PlanStep, type StepResult } from '../contract/firmware.ts';
import type { Facts } from '../contract/facts.ts';
import type { AttemptSummary, StoredBaseline } from '../domain/firmware.ts';
import type { ReportNode } from '../domain/firmware-report.ts';
import { AppError, notFound } from '../errors.ts';
import { systemClock, type Clock } from '../clock.ts';
import { writeAudit, type AuditIntent } from './audit.ts';
import { latestFactsByNode } from './latest-facts.ts';

export interface BaselineRecord extends StoredBaseline {
  source: string | null;
  createdAt: Date;
  updatedAt: Date;
  updatedBy: string;
}

export interface BaselineChange {
  name: string;
  version: number;
  action: 'create' | 'update' | 'delete';
  spec: Baseline;
  source: string | null;
  changedAt: Date;
  actor: string;
}

export interface AttemptRecord extends AttemptSummary {
  id: number;
  nodeUuid: string;
  baselineName: string;
  baselineVersion: number;
  steps: PlanStep[];
  createdAt: Date;
  reportedAt: Date | null;
  ok: boolean | null;
}

type AttemptRow = typeof firmwareAttempts.$inferSelect;
type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
/** what the fleet report reads of a facts document (nics as [] when a document has none) */
const FIRMWARE_FACTS = sql<Facts>`jsonb_strip_nulls(jsonb_build_object('system', ${facts.facts}->'system', 'bios', ${facts.facts}->'bios', 'baseboard', ${facts.facts}->'baseboard', 'bmc', ${facts.facts}->'bmc', 'nics', coalesce(${facts.facts}->'nics', '[]'::jsonb), 'lldp', ${facts.facts}->'lldp', 'firmware', ${facts.facts}->'firmware'))`;

/** Key order does not make a change: compare documents with sorted keys. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const toAttempt = (r: AttemptRow): AttemptRecord => ({
  id: r.id,
  nodeUuid: r.nodeUuid,
  number: r.number,
  baselineName: r.baselineName,
  baselineVersion: r.baselineVersion,
  steps: r.steps as PlanStep[],
  components: (r.steps as PlanStep[]).map((s) => s.component),
  results: (r.results as StepResult[] | null) ?? null,
  outcome: r.outcome as AttemptSummary['outcome'],
  createdAt: r.createdAt,
  reportedAt: r.reportedAt,
  ok: r.ok,
});

export function createFirmwareStore(db: Db, { clock = systemClock }: { clock?: Clock } = {}) {
  const toRecord = (r: typeof firmwareBaselines.$inferSelect): BaselineRecord => ({
    // stored documents were validated on the way in; parsing again fills defaults added since
    spec: Baseline.parse(r.spec),
    version: r.version,
    source: r.source,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    updatedBy: r.updatedBy,
  });

  async function openRows(tx: Db | Tx, uuid: string): Promise<AttemptRow[]> {
    return tx.select().from(firmwareAttempts).where(and(eq(firmwareAttempts.nodeUuid, uuid), eq(firmwareAttempts.outcome, 'open'))).orderBy(asc(firmwareAttempts.id));
  }

  const store = {
    /**
     * Creates or changes a baseline. Applying the same document again changes nothing (no new version), so a
     * CI job can apply a directory of baselines on every run. Every real change is a history row.
     */
    async applyBaseline(spec: Baseline, { actor, source = null, audit }: { actor: string; source?: string | null; audit?: AuditIntent }): Promise<{ name: string; version: number; action: 'created' | 'updated' | 'unchanged' }> {
      return db.transaction(async (tx) => {
        const now = clock.now();
        const [row] = await tx.select().from(firmwareBaselines).where(eq(firmwareBaselines.name, spec.name)).for('update');
        const doc = spec as unknown as Record<string, unknown>;
        if (!row) {
          // two replicas creating the same name at once: the loser's insert is a no-op and it retries as an update
          const inserted = await tx.insert(firmwareBaselines).values({ name: spec.name, version: 1, spec: doc, source, createdAt: now, updatedAt: now, updatedBy: actor }).onConflictDoNothing().returning();
          if (!inserted.length) throw new AppError(409, 'conflict', `baseline ${spec.name} was created concurrently; apply again`);
          await tx.insert(firmwareBaselineHistory).values({ name: spec.name, version: 1, action: 'create', spec: doc, source, changedAt: now, actor });
          await writeAudit(tx, audit, { before: null, after: { version: 1, spec: doc } }, now);
          return { name: spec.name, version: 1, action: 'created' as const };
        }
        if (canonical(row.spec) === canonical(doc)) {
          await writeAudit(tx, audit, { action: 'firmware.baseline.unchanged', before: { version: row.version }, after: { version: row.version } }, now);
          return { name: spec.name, version: row.version, action: 'unchanged' as const };
        }
        const version = row.version + 1;
        await tx.update(firmwareBaselines).set({ version, spec: doc, source, updatedAt: now, updatedBy: actor }).where(eq(firmwareBaselines.name, spec.name));
        await tx.insert(firmwareBaselineHistory).values({ name: spec.name, version, action: 'update', spec: doc, source, changedAt: now, actor });
        await writeAudit(tx, audit, { before: { version: row.version, spec: row.spec }, after: { version, spec: doc } }, now);
        return { name: spec.name, version, action: 'updated' as const };
      });
    },

    async deleteBaseline(name: string, actor: string, audit?: AuditIntent): Promise<void> {
      await db.transaction(async (tx) => {
        const [row] = await tx.select().from(firmwareBaselines).where(eq(firmwareBaselines.name, name)).for('update');
        if (!row) throw notFound(`baseline ${name}`, { name });
        await tx.delete(firmwareBaselines).where(eq(firmwareBaselines.name, name));
        await tx.insert(firmwareBaselineHistory).values({ name, version: row.version + 1, action: 'delete', spec: row.spec, source: row.source, changedAt: clock.now(), actor });
        await writeAudit(tx, audit, { before: { version: row.version, spec: row.spec }, after: null }, clock.now());
      });
    },

    async listBaselines(): Promise<BaselineRecord[]> {
      return (await db.select().from(firmwareBaselines).orderBy(asc(firmwareBaselines.name))).map(toRecord);
    },

    async getBaseline(name: string): Promise<BaselineRecord | null> {
      const [row] = await db.select().from(firmwareBaselines).where(eq(firmwareBaselines.name, name));
      return row ? toRecord(row) : null;
    },

    async history(name: string): Promise<BaselineChange[]> {
      const rows = await db.select().from(firmwareBaselineHistory).where(eq(firmwareBaselineHistory.name, name)).orderBy(asc(firmwareBaselineHistory.version));
      return rows.map((r) => ({ name: r.name, version: r.version, action: r.action as BaselineChange['action'], spec: r.spec as unknown as Baseline, source: r.source, changedAt: r.changedAt, actor: r.actor }));
    },

    // ---- attempts ----

    async openAttempts(uuid: string): Promise<AttemptRecord[]> {
      return (await openRows(db, uuid)).map(toAttempt);
    },

    async latestAttempt(uuid: string): Promise<AttemptRecord | null> {
      const [row] = await db.select().from(firmwareAttempts).where(eq(firmwareAttempts.nodeUuid, uuid)).orderBy(desc(firmwareAttempts.id)).limit(1);
      return row ? toAttempt(row) : null;
    },

    /** Starts the next attempt of the node's current streak and notes it on the node's timeline. */
    async startAttempt(uuid: string, baseline: { name: string; version: number }, steps: PlanStep[], actor: string): Promise<AttemptRecord> {
      return db.transaction(async (tx) => {
        const now = clock.now();
        // serialise attempts per node on the node row (the store's lock for everything about one node)
        await tx.select({ uuid: nodes.uuid }).from(nodes).where(eq(nodes.uuid, uuid)).for('update');
        const open = await openRows(tx, uuid);
        const number = open.length + 1;
        const [row] = await tx.insert(firmwareAttempts).values({ nodeUuid: uuid, number, baselineName: baseline.name, baselineVersion: baseline.version, steps, createdAt: now }).returning();
        await tx.insert(events).values({
          nodeUuid: uuid,
          at: now,
          kind: 'firmware',
          reason: `firmware plan ${number}: ${steps.map((s) => `${s.component} ${s.current ?? 'unknown'} → ${s.required}`).join('; ')}`,
          actor,
          data: { attempt: number, baseline: baseline.name, baselineVersion: baseline.version, components: steps.map((s) => s.component) },
        });
        return toAttempt(row!);
      });
    },

    /** Ends the node's streak of open attempts: `closed` (compliant now, or no longer enforced) or `gave-up` (quarantined). */
    async closeAttempts(uuid: string, outcome: 'closed' | 'gave-up'): Promise<number> {
      const done = await db
        .update(firmwareAttempts)
        .set({ outcome, closedAt: clock.now() })
        .where(and(eq(firmwareAttempts.nodeUuid, uuid), eq(firmwareAttempts.outcome, 'open')))
        .returning({ id: firmwareAttempts.id });
      return done.length;
    },

    /**
     * The agent's report for the open attempt `number`. It records what ran; it changes no compliance (only the
     * next registration's facts do). A report for an attempt that is not the node's latest open one is refused.
     */
    async recordReport(uuid: string, number: number, results: StepResult[], actor: string): Promise<AttemptRecord> {
      return db.transaction(async (tx) => {
        const now = clock.now();
        await tx.select({ uuid: nodes.uuid }).from(nodes).where(eq(nodes.uuid, uuid)).for('update');
        const open = await openRows(tx, uuid);
        const current = open.at(-1);
        if (!current) throw new AppError(409, 'conflict', `node ${uuid} has no firmware plan in progress`, { attempt: number });
        if (current.number !== number) throw new AppError(409, 'conflict', `attempt ${number} is not the node's current firmware attempt (${current.number})`, { attempt: number, current: current.number });
        const steps = current.steps as PlanStep[];
        const planned = steps.map((s) => s.component);
        // a step counts only if it ran the planned package (when the agent says which digest it verified)
        const ranOk = (s: PlanStep) => results.some((r) => r.component === s.component && r.exitCode === 0 && r.timedOut !== true && (r.sha256 === undefined || r.sha256 === s.package.sha256));
        const ok = steps.every(ranOk);
        const [row] = await tx.update(firmwareAttempts).set({ results, ok, reportedAt: now }).where(eq(firmwareAttempts.id, current.id)).returning();
        const failed = results.filter((r) => r.exitCode !== 0 || r.timedOut || steps.some((s) => s.component === r.component && r.sha256 !== undefined && r.sha256 !== s.package.sha256));
        await tx.insert(events).values({
          nodeUuid: uuid,
          at: now,
          kind: 'firmware',
          reason: ok
            ? `firmware attempt ${number}: all ${planned.length} update(s) ran`
            : `firmware attempt ${number} failed: ${failed.map((r) => `${r.component} exit ${r.exitCode ?? 'none'}${r.timedOut ? ' (timed out)' : ''}${r.exitCode === 0 && !r.timedOut ? ' (ran a package other than the planned one)' : ''}`).join('; ') || 'not every planned component was reported'}`,
          actor,
          // the tails of the output stay on the attempt; the event keeps a short summary
          data: { attempt: number, ok, results: results.map((r) => ({ component: r.component, exitCode: r.exitCode, timedOut: r.timedOut ?? false, durationMs: r.durationMs, stderr: r.stderr.slice(-512) })) },
        });
        return toAttempt(row!);
      });
    },

    // ---- reports ----

    /**
     * Every node that is not retired (or the one node asked for), with the firmware-relevant sections of its latest facts (not the whole
     * document: a fleet of thousands would otherwise pull megabytes of lldp and disk facts) and its latest attempt.
     * The shape is the report's input (domain/firmware-report.ts ReportNode); the facts are the stored jsonb, not
     * validated here: the report parses them.
     */
    async fleet({ uuid }: { uuid?: string } = {}): Promise<ReportNode[]> {
      const nodeRows = await db
        .select({ uuid: nodes.uuid, hostname: nodes.hostname, state: nodes.state, manufacturer: nodes.manufacturer, product: nodes.product, labels: nodes.labels })
        .from(nodes)
        .where(uuid ? eq(nodes.uuid, uuid) : ne(nodes.state, 'retired'))
        .orderBy(asc(nodes.uuid));
      if (nodeRows.length === 0) return [];
      const latest = await latestFactsByNode(db, FIRMWARE_FACTS, { uuid });
      const attemptRows = await db
        .selectDistinctOn([firmwareAttempts.nodeUuid])
        .from(firmwareAttempts)
        .where(uuid ? eq(firmwareAttempts.nodeUuid, uuid) : undefined)
        .orderBy(firmwareAttempts.nodeUuid, desc(firmwareAttempts.id));
      const attemptBy = new Map(attemptRows.map((a) => [a.nodeUuid, toAttempt(a)]));
      return nodeRows.map((n) => {
        const f = latest.get(n.uuid);
        return { ...n, facts: f?.facts ?? null, factsAt: f?.collectedAt ?? null, attempt: attemptBy.get(n.uuid) ?? null };
      });
    },
  };
  return store;
}

export type FirmwareStore = ReturnType<typeof createFirmwareStore>;
