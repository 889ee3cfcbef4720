// `bootfarm retention`: how long history is kept and what the last pruning run did (GET /api/v1/retention, admin).
import type { Command } from 'commander';
import { RETENTION_TABLES } from '../store/retention.ts';
import { runArea, type CliContext, type ContextOptions, type Out } from './context.ts';

interface RetentionStatus {
  settings: Record<string, number | boolean>;
  lastRun: { at: string; durationMs: number; epoch: number; holder: string; pruned: Record<string, number>; backlog: string[] } | null;
  nextDueAt: string | null;
}

const days = (d: unknown) => (d === 0 ? 'forever' : `${String(d)} d`);

export function printRetention(s: RetentionStatus, out: Out): void {
  const c = s.settings;
  if (!c.enabled) out('retention: off (nothing is pruned)');
  out(`kept: events ${days(c.eventsDays)}, facts ${days(c.factsDays)} (newest ${String(c.factsKeep)} per node always), leases ${days(c.leasesDays)}, boot attempts ${days(c.bootAttemptsDays)}, webhooks ${days(c.webhooksDays)}, rebuilds and firmware attempts ${days(c.repairsDays)}, audit and fleet history ${days(c.auditDays)}, retired data keys ${days(c.dataKeysDays)}, console output ${days(c.consoleDays)}`);
  out(`runs every ${String(c.intervalSeconds)} s on the leader, ${String(c.batchSize)} rows per statement, at most ${String(c.maxBatchesPerRun)} statements per table per run`);
  if (!s.lastRun) out('last run: none yet');
  else {
    const r = s.lastRun;
    // jsonb keeps no key order: the tables in the job's order
    const order = (t: string) => ((RETENTION_TABLES as readonly string[]).indexOf(t) + 1 || 99);
    const pruned = Object.entries(r.pruned).sort(([a], [b]) => order(a) - order(b)).map(([t, n]) => `${t} ${n}`).join(', ');
    out(`last run: ${r.at} by ${r.holder} (epoch ${r.epoch}), ${r.durationMs} ms: ${pruned}`);
    if (r.backlog.length) out(`backlog (more rows due, next runs continue): ${r.backlog.join(', ')}`);
  }
  if (s.nextDueAt) out(`next run due: ${s.nextDueAt}`);
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('retention')
    .description('how long history is kept and what the last pruning run deleted (admin)')
    .action(async () => {
      const s = (await ctx.api().get('/api/v1/retention')) as RetentionStatus;
      if (ctx.globals().json) return ctx.out(JSON.stringify(s, null, 2));
      printRetention(s, ctx.out);
    });
}

/** `bootfarm retention` with an injected client (tests). */
export const runRetention = (args: string[], o: ContextOptions) => runArea(register, ['retention', ...args], o);
