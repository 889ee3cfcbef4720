// `bootfarm cluster`: the control plane's replicas, the leader and its epoch (GET /api/v1/cluster).
import type { Command } from 'commander';
import type { ClusterView } from '../domain/cluster.ts';
import { runArea, type CliContext, type ContextOptions, type Out } from './context.ts';

const pad = (s: unknown, n: number) => String(s ?? '-').padEnd(n);

/** The table an operator reads: one line per replica, the leader marked, gone replicas last. */
export function printCluster(v: ClusterView, out: Out): void {
  if (v.leader) out(`leader: ${v.leader.id} (epoch ${v.leader.epoch}, since ${v.leader.since ?? '-'})${v.leader.up ? '' : ' — NOT REPORTING: a failover is under way or no replica can lead'}`);
  else out('leader: none yet (no replica has taken the lock)');
  if (v.mixedVersions) out('note: replicas run different versions or schema versions');
  out(`${pad('', 2)}${pad('REPLICA', 36)}${pad('STATUS', 8)}${pad('VERSION', 10)}${pad('SCHEMA', 34)}${pad('LAST SEEN', 12)}URL`);
  for (const r of v.replicas) out(`${pad(r.leader ? '*' : '', 2)}${pad(r.id, 36)}${pad(r.status, 8)}${pad(r.version, 10)}${pad(r.schemaVersion, 34)}${pad(`${r.lastSeenAgoSeconds} s ago`, 12)}${r.url ?? '-'}`);
  out(`(a replica is gone after ${v.goneAfterSeconds} s without a tick)`);
}

export function register(program: Command, ctx: CliContext): void {
  program
    .command('cluster')
    .description('control-plane replicas (up or gone), the leader and its epoch')
    .action(async () => {
      const v = (await ctx.api().get('/api/v1/cluster')) as ClusterView;
      if (ctx.globals().json) return ctx.out(JSON.stringify(v, null, 2));
      printCluster(v, ctx.out);
    });
}

/** `bootfarm cluster` with an injected client (tests). */
export const runCluster = (args: string[], o: ContextOptions) => runArea(register, ['cluster', ...args], o);
