// `bootfarm fleet status|resume`: the fleet-wide circuit breaker over a running server's admin API.
import type { ApiClient } from './http.ts';

export const FLEET_USAGE = `  fleet status [--json]                      circuit breaker, controller liveness, nodes by state
  fleet resume [--reason TEXT]               close the circuit breaker: automatic repair resumes (operator)`;

type Out = (line: string) => void;

interface FleetStatus {
  degraded: boolean;
  breaker: { open: boolean; openedAt: string | null; reason: string | null; resumedAt: string | null; resumedBy: string | null };
  liveness: { lastTickAt: string | null; leaderId: string | null; observedSince: string | null };
  nodes: Record<string, number>;
  events: { at: string; kind: string; actor: string; reason: string }[];
}

export async function runFleet(args: string[], opts: { api: ApiClient; out: Out; json?: boolean; reason?: string; fail: (m: string) => Error }): Promise<void> {
  const { api, out } = opts;
  const [sub] = args;
  if (sub === 'status') {
    const s = (await api.get('/api/v1/fleet')) as FleetStatus;
    if (opts.json) return out(JSON.stringify(s, null, 2));
    if (s.degraded) {
      out(`DEGRADED: automatic repair stopped since ${s.breaker.openedAt}: ${s.breaker.reason}`);
      out(`  after finding the shared cause: bootfarm fleet resume --reason '…'`);
    } else out('automatic repair: running');
    if (!s.degraded && s.breaker.resumedAt) out(`last resumed ${s.breaker.resumedAt} by ${s.breaker.resumedBy}`);
    out(`controller: leader ${s.liveness.leaderId ?? '-'}, last tick ${s.liveness.lastTickAt ?? 'never'}, watching since ${s.liveness.observedSince ?? '-'}`);
    out(`nodes: ${Object.entries(s.nodes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
    for (const e of s.events.slice(0, 10)) out(`  ${e.at}  ${e.kind.padEnd(15)}${e.actor.padEnd(24)}${e.reason}`);
    return;
  }
  if (sub === 'resume') {
    const res = (await api.post('/api/v1/fleet/resume', opts.reason ? { reason: opts.reason } : {})) as { breaker: { resumedBy: string } };
    return out(opts.json ? JSON.stringify(res, null, 2) : `automatic repair resumed (by ${res.breaker.resumedBy})`);
  }
  throw opts.fail(`unknown fleet command "${sub ?? ''}"\n${FLEET_USAGE}`);
}
