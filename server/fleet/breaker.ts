// The fleet-wide circuit breaker (issue 12 §3, docs/self-repair.md) as a pure verdict over counts. When many
// active nodes fail together, a shared cause (a switch, a PDU, the boot network, the control plane itself) is far
// likelier than many broken machines, and power-cycling them all makes it worse: automatic repair stops and a
// person resumes it. The controller (controller.ts) gathers the counts from the database and opens the breaker.
import type { FleetConfig } from './config.ts';

export interface BreakerInputs {
  /** distinct nodes the controller failed from `active` inside the window, with their rack label value */
  failures: readonly { uuid: string; rack: string | null; state: string }[];
  /** nodes active now, per rack label value (null = no rack label) */
  active: readonly { rack: string | null; n: number }[];
}

export interface BreakerTrip {
  /** 'fleet', or `rack=<value>` */
  scope: string;
  failures: number;
  /** the nodes the share is taken of: active now + those failed in the window that are not active again */
  population: number;
  share: number;
  reason: string;
}

/** Whether the failures inside the window trip the breaker, fleet-wide first, then per rack; null if not. */
export function breakerVerdict({ failures, active }: BreakerInputs, config: FleetConfig): BreakerTrip | null {
  const b = config.breaker;
  if (!b.enabled) return null;
  const windowMin = Math.round(b.windowSeconds / 60);
  const judge = (scope: string, fails: readonly { state: string }[], activeNow: number): BreakerTrip | null => {
    const population = activeNow + fails.filter((f) => f.state !== 'active').length;
    if (fails.length < b.minFailures || population === 0) return null;
    const share = fails.length / population;
    if (share <= b.share) return null;
    const where = scope === 'fleet' ? 'of the fleet' : `in ${scope}`;
    return { scope, failures: fails.length, population, share, reason: `${fails.length} of ${population} active nodes ${where} failed within ${windowMin} min (${(share * 100).toFixed(0)} % > ${(b.share * 100).toFixed(0)} %): automatic repair stopped` };
  };
  const total = active.reduce((a, r) => a + r.n, 0);
  const fleet = judge('fleet', failures, total);
  if (fleet || !b.perRack) return fleet;
  const racks = new Set(failures.map((f) => f.rack).filter((r): r is string => r !== null));
  for (const rack of [...racks].sort()) {
    const trip = judge(`${config.rebuild.rackLabel}=${rack}`, failures.filter((f) => f.rack === rack), active.find((a) => a.rack === rack)?.n ?? 0);
    if (trip) return trip;
  }
  return null;
}
