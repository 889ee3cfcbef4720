// The firmware step of the stage-1 flow. The plan endpoint belongs to the firmware issue (not yet written), so
// this is a seam: the flow calls a FirmwareStep with the register response and acts on its outcome.
// The default does nothing unless the server said `next: 'firmware'`, and then only reports that this
// agent build has no firmware updater, so the timeline shows why nothing happened.
import type { RegisterResponse } from '../../server/contract/agent.ts';
import type { Facts } from '../../server/contract/facts.ts';
import type { AgentClient } from '../client.ts';
import type { Exec } from '../exec.ts';

export type Report = (phase: string, message?: string, data?: Record<string, unknown>) => Promise<void>;

export interface FirmwareContext {
  register: RegisterResponse;
  facts: Facts;
  client: AgentClient;
  exec: Exec;
  report: Report;
  dryRun: boolean;
}

/** continue: go on to the profile; reboot: firmware was flashed and needs a cold boot (the flow reboots). */
export type FirmwareOutcome = { action: 'continue' } | { action: 'reboot'; reason: string };

export type FirmwareStep = (ctx: FirmwareContext) => Promise<FirmwareOutcome>;

export const defaultFirmwareStep: FirmwareStep = async function defaultFirmwareStep({ register, report }) {
  if (register.next !== 'firmware') return { action: 'continue' };
  await report('firmware-check', 'the server asked for a firmware update but this agent has no firmware step; continuing', { reason: register.reason });
  return { action: 'continue' };
};
