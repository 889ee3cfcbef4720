// The escalation ladder (issue 12 §5, docs/self-repair.md): what the controller does to a failed node, gentlest
// first. Pure: which step an attempt takes. The controller (controller.ts) drives the BMC for each step.
//
//   confirm      BMC power status; then wait one more heartbeat interval (none if the BMC says the power is off)
//   soft-reset   warm reset (`chassis power reset` / Redfish ForceRestart), or power on if it is off
//   reprovision  next boot from PXE + power cycle (power on if off): the node boots stage-1 afresh
//   bmc-reset    `mc reset cold` / Redfish Manager.Reset, wait for the BMC to answer, then reprovision
//   (then)       quarantine after rebuild.maxAttempts reboot steps: a person decides
import type { FleetConfig, LadderStep } from './config.ts';

export type { LadderStep } from './config.ts';
export type RebootStep = Exclude<LadderStep, 'confirm'>;

/** The ladder of a node's profile, else the fleet default. */
export function ladderFor(profile: string | null, config: FleetConfig): readonly LadderStep[] {
  return (profile ? config.rebuild.profileLadders[profile] : undefined) ?? config.rebuild.ladder;
}

/** The reboot step of attempt n (1-based); attempts past the end of the ladder repeat its last step. */
export function stepOfAttempt(ladder: readonly LadderStep[], attempt: number): RebootStep {
  const reboots = ladder.filter((s): s is RebootStep => s !== 'confirm');
  if (!reboots.length) return 'reprovision';
  return reboots[Math.min(attempt, reboots.length) - 1]!;
}
