// `bootfarm fleet status|resume`: the fleet-wide circuit breaker over a running server's admin API.
import type { Command } from 'commander';
import { runArea, type CliContext, type ContextOptions } from './context.ts';

interface FleetStatus {
  degraded: boolean;
  breaker: { open: boolean; openedAt: string | null; reason: string | null; resumedAt: string | null; resumedBy: string | null };
  liveness: { lastTickAt: string | null; leaderId: string | null; observedSince: string | null };
  nodes: Record<string, number>;
  events: { at: string; kind: string; actor: string; reason: string }[];
}

export function register(program: Command, ctx: CliContext): void {
  const fleet = program.command('fleet').description('the fleet-wide circuit breaker');
  fleet
    .command('status')
    .description('circuit breaker, controller liveness, nodes by state')
    .action(async () => {
      const { out } = ctx;
      const s = (await ctx.api().get('/api/v1/fleet')) as FleetStatus;
      if (ctx.globals().json) return out(JSON.stringify(s, null, 2));
      if (s.degraded) {
        out(`DEGRADED: automatic repair stopped since ${s.breaker.openedAt}: ${s.breaker.reason}`);
        out(`  after finding the shared cause: bootfarm fleet resume --reason '…'`);
      } else out('automatic repair: running');
      if (!s.degraded && s.breaker.resumedAt) out(`last resumed ${s.breaker.resumedAt} by ${s.breaker.resumedBy}`);
      out(`controller: leader ${s.liveness.leaderId ?? '-'}, last tick ${s.liveness.lastTickAt ?? 'never'}, watching since ${s.liveness.observedSince ?? '-'}`);
      out(`nodes: ${Object.entries(s.nodes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
      for (const e of s.events.slice(0, 10)) out(`  ${e.at}  ${e.kind.padEnd(15)}${e.actor.padEnd(24)}${e.reason}`);
    });
  fleet
    .command('resume')
    .description('close the circuit breaker: automatic repair resumes (operator)')
    .option('--reason <text>', 'what was fixed (kept in the event log)')
    .action(async (o: { reason?: string }) => {
      const res = (await ctx.api().post('/api/v1/fleet/resume', o.reason ? { reason: o.reason } : {})) as { breaker: { resumedBy: string } };
      ctx.out(ctx.globals().json ? JSON.stringify(res, null, 2) : `automatic repair resumed (by ${res.breaker.resumedBy})`);
    });
}

/** `bootfarm fleet ARGS…` with an injected client (tests). */
export const runFleet = (args: string[], o: ContextOptions) => runArea(register, ['fleet', ...args], o);
