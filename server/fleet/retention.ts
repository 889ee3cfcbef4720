// The retention job (issue 17 item 5): on the leader only (a fleet leader task, controller.ts leaderTasks), every
// retention.intervalSeconds, it deletes the rows past their retention period (server/store/retention.ts says which
// and what is never deleted). Every batch is one short statement in its own transaction that first checks the
// leader epoch (store/fence.ts run): a replica that lost leadership mid-run deletes nothing more, and no batch
// holds locks for long on a large fleet. A run deletes at most maxBatchesPerRun × batchSize rows per table; a
// larger backlog is worked off over the next runs (the run says which tables still have one).
//
// The last run is kept in fleet_control.retention_run, so every replica reports it (GET /api/v1/retention) and a
// new leader does not start over early. Metrics (this replica's registry):
//   bootfarm_retention_pruned_total{table}              rows deleted
//   bootfarm_retention_last_run_timestamp_seconds       when the last run on this replica ended
//   bootfarm_retention_last_run_duration_seconds        how long it took
//   bootfarm_retention_backlog{table}                   1 when the last run stopped with rows still due
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Db } from '../db/index.ts';
import type { RetentionConfig } from '../config.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { createFenceStore, type Fence } from '../store/fence.ts';
import { createRetentionStore, RETENTION_TABLES, type RetentionCutoffs, type RetentionRun, type RetentionTable } from '../store/retention.ts';

const DAY_MS = 86_400_000;

/** The cutoffs of a run at `now`: `days` 0 keeps a table forever. */
export function retentionCutoffs(config: RetentionConfig, now: Date): RetentionCutoffs {
  const ago = (days: number) => (days > 0 ? new Date(now.getTime() - days * DAY_MS) : null);
  return {
    events: ago(config.eventsDays),
    facts: ago(config.factsDays),
    factsKeep: config.factsKeep,
    dhcp_leases: ago(config.leasesDays),
    boot_attempts: ago(config.bootAttemptsDays),
    fleet_webhook_deliveries: ago(config.webhooksDays),
    fleet_rebuilds: ago(config.repairsDays),
    firmware_attempts: ago(config.repairsDays),
    fleet_events: ago(config.auditDays),
    audit_log: ago(config.auditDays),
    data_keys: ago(config.dataKeysDays),
    console_chunks: ago(config.consoleDays),
    now,
  };
}

export interface RetentionDeps {
  db: Db;
  config: RetentionConfig;
  clock?: Clock;
  /** where the metrics are registered (main: the /metrics registry) */
  metrics?: Registry;
  logger?: Pick<Logger, 'info' | 'warn'>;
}

export function createRetention({ db, config, clock = systemClock, metrics: registry, logger }: RetentionDeps) {
  const fences = createFenceStore(db);
  const store = createRetentionStore(db);
  const registers = registry ? [registry] : [];
  const pruned = new Counter({ name: 'bootfarm_retention_pruned_total', help: 'Rows deleted by the retention job, by table', labelNames: ['table'] as const, registers });
  const lastRunAt = new Gauge({ name: 'bootfarm_retention_last_run_timestamp_seconds', help: 'When the last retention run on this replica ended (unix seconds)', registers });
  const lastRunDuration = new Gauge({ name: 'bootfarm_retention_last_run_duration_seconds', help: 'How long the last retention run on this replica took', registers });
  const backlog = new Gauge({ name: 'bootfarm_retention_backlog', help: '1 when the last retention run stopped at maxBatchesPerRun with rows of the table still due', labelNames: ['table'] as const, registers });
  for (const t of RETENTION_TABLES) pruned.inc({ table: t }, 0);

  /**
   * One run under `fence`, if one is due (or `force`): every table in batches. Throws FencedError as soon as a
   * batch is refused (this replica does not lead any more): what earlier batches deleted stays deleted.
   */
  async function run(now: Date, fence: Fence, { force = false }: { force?: boolean } = {}): Promise<RetentionRun | null> {
    if (!config.enabled) return null;
    const last = await store.lastRun();
    if (!force && last && now.getTime() - Date.parse(last.at) < config.intervalSeconds * 1000) return null;
    const started = clock.now().getTime();
    const cutoffs = retentionCutoffs(config, now);
    const counts: Partial<Record<RetentionTable, number>> = {};
    const due: RetentionTable[] = [];
    for (const table of RETENTION_TABLES) {
      let total = 0;
      let full = false;
      for (let i = 0; i < config.maxBatchesPerRun; i++) {
        const n = await fences.run(fence, (tx) => createRetentionStore(tx).pruneBatch(table, cutoffs, config.batchSize));
        total += n;
        if (n) pruned.inc({ table }, n);
        full = n === config.batchSize;
        if (!full) break;
      }
      counts[table] = total;
      if (full) due.push(table);
      backlog.set({ table }, full ? 1 : 0);
    }
    const end = clock.now().getTime();
    const result: RetentionRun = { at: now.toISOString(), finishedAt: new Date(end).toISOString(), durationMs: end - started, epoch: fence.epoch, holder: fence.holder, pruned: counts, backlog: due };
    await fences.run(fence, (tx) => createRetentionStore(tx).recordRun(result));
    lastRunAt.set(end / 1000);
    lastRunDuration.set((end - started) / 1000);
    const rows = Object.values(counts).reduce((a, b) => a + b, 0);
    if (rows || due.length) logger?.info({ pruned: counts, backlog: due, durationMs: result.durationMs }, `retention: ${rows} row(s) pruned`);
    return result;
  }

  return {
    run,
    /** for createFleet's leaderTasks */
    task: { name: 'retention', run: (now: Date, fence: Fence) => run(now, fence) },
    /** the settings and the last run (any replica): GET /api/v1/retention */
    async status() {
      const last = await store.lastRun();
      const nextDueAt = config.enabled ? new Date((last ? Date.parse(last.at) : clock.now().getTime()) + (last ? config.intervalSeconds * 1000 : 0)).toISOString() : null;
      return { settings: config, lastRun: last, nextDueAt };
    },
  };
}

export type Retention = ReturnType<typeof createRetention>;
