// The firmware step of the stage-1 flow. The flow calls a FirmwareStep with the register response and acts on
// its outcome: continue (fetch the profile), reboot (`reboot -f`; the update takes effect on the next boot),
// or register (collect facts again and register again).
//
// `firmwareUpdateStep` is the real one: when the server says `next: 'firmware'` it fetches the plan
// (GET /api/v1/agent/:uuid/firmware), and for each step downloads the package from bootfarm.server + its URL,
// checks its sha256, runs the step's command with `sh -c` through the agent's one exec (the file's path in
// $BOOTFARM_FIRMWARE_FILE) under the step's timeout, then reports every step's exit code and output tails
// (POST …/firmware). It never claims a version: compliance changes only when the server reads the versions in
// fresh facts, so after the updates the agent registers again (or reboots first when the plan says so).
// The plan is verified before anything in it is parsed or run: its exact bytes against the ed25519 signature
// header, under the public key this boot came with (bootfarm.planKey=; server/contract/plan-signature.ts). An
// unsigned, altered, foreign-key or other-node plan is refused with a `firmware-refused` event and the step throws
// PlanRefusedError: the boot stops there (a fresh boot brings a fresh key and a fresh plan).
// `defaultFirmwareStep` is the seam's no-op, kept for flows that do not inject a step.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegisterResponse } from '../../server/contract/agent.ts';
import type { Facts } from '../../server/contract/facts.ts';
import { FirmwarePlan, type PlanStep, type StepResult } from '../../server/contract/firmware.ts';
import { verifyPlan } from '../../server/contract/plan-signature.ts';
import { AgentApiError, AgentResponseError, type AgentClient, type Fetch } from '../client.ts';
import type { Exec } from '../exec.ts';
import { downloadVerified } from '../kexec/index.ts';

export type Report = (phase: string, message?: string, data?: Record<string, unknown>) => Promise<void>;

export interface FirmwareContext {
  register: RegisterResponse;
  facts: Facts;
  client: AgentClient;
  exec: Exec;
  report: Report;
  dryRun: boolean;
  /** bootfarm.server=: plan package URLs are paths on it */
  server: string;
  fetch: Fetch;
  /** tmpfs in the stage-1 OS: packages are written here and removed after their step */
  workDir: string;
  log: (line: string) => void;
  /** bootfarm.planKey=: the public key plans must be signed with; without it every plan is refused */
  planKey?: string | undefined;
  /** server calls and downloads go through the flow's retry (with backoff) */
  retry: <T>(what: string, fn: () => Promise<T>, opts?: { attempts?: number }) => Promise<T>;
}

/**
 * continue: go on to the profile; reboot: firmware was flashed and needs a cold boot (the flow reboots);
 * register: collect facts and register again (the server decides from the fresh facts what comes next).
 */
export type FirmwareOutcome = { action: 'continue' } | { action: 'reboot'; reason: string } | { action: 'register'; reason: string };

export type FirmwareStep = (ctx: FirmwareContext) => Promise<FirmwareOutcome>;

export const defaultFirmwareStep: FirmwareStep = async function defaultFirmwareStep({ register, report }) {
  if (register.next !== 'firmware') return { action: 'continue' };
  await report('firmware-check', 'the server asked for a firmware update but this agent has no firmware step; continuing', { reason: register.reason });
  return { action: 'continue' };
};

/** StepResult allows 64 KiB per stream; keep the end, where updaters print their verdict. */
const MAX_TAIL = 60_000;
const tail = (s: string) => (s.length > MAX_TAIL ? s.slice(-MAX_TAIL) : s);

export function packageUrl(server: string, url: string): string {
  return /^https?:\/\//i.test(url) ? url : `${server.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}`;
}

const succeeded = (r: StepResult) => r.exitCode === 0 && !r.timedOut;

async function runStep(ctx: FirmwareContext, step: PlanStep): Promise<StepResult> {
  const t0 = Date.now();
  const base = { component: step.component.slice(0, 128), command: step.command.slice(0, 4096) };
  const file = join(ctx.workDir, `firmware-${step.package.sha256}`);
  const url = packageUrl(ctx.server, step.package.url);
  try {
    await ctx.retry(`firmware package ${step.component}`, () => downloadVerified(ctx.fetch, url, step.package.sha256, file), { attempts: 5 });
  } catch (err) {
    // nothing ran: no digest to vouch for, no exit code
    return { ...base, exitCode: null, stdout: '', stderr: tail(`download: ${(err as Error).message}`), durationMs: Date.now() - t0 };
  }
  try {
    const r = await ctx.exec('sh', ['-c', step.command], {
      timeoutMs: step.timeoutSeconds * 1000,
      env: { BOOTFARM_FIRMWARE_FILE: file, BOOTFARM_FIRMWARE_COMPONENT: step.component, BOOTFARM_FIRMWARE_DEVICES: step.devices.join(' ') },
    });
    return {
      ...base,
      exitCode: r.timedOut ? null : r.exitCode,
      stdout: tail(r.stdout),
      stderr: tail(r.stderr),
      durationMs: Date.now() - t0,
      ...(r.timedOut ? { timedOut: true } : {}),
      sha256: step.package.sha256,
    };
  } finally {
    await rm(file, { force: true });
  }
}

/** The firmware plan failed verification: nothing from it was run. */
export class PlanRefusedError extends Error {
  override name = 'PlanRefusedError';
}

/** Fetches the plan and verifies it (signature over the exact bytes, then shape, then that it is this node's). */
async function verifiedPlan(ctx: FirmwareContext, uuid: string): Promise<FirmwarePlan> {
  const signed = await ctx.retry('firmware plan', () => ctx.client.firmwarePlanSigned(uuid));
  const refuse = async (reason: string, message: string): Promise<never> => {
    await ctx.report('firmware-refused', `firmware plan refused, nothing was run: ${message}`, { reason, bytes: signed.bytes.length });
    throw new PlanRefusedError(`firmware plan refused (${reason}): ${message}`);
  };
  const verdict = verifyPlan(signed.bytes, signed.signature, ctx.planKey);
  if (!verdict.ok) return refuse(verdict.reason, verdict.message);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(signed.bytes));
  } catch {
    throw new AgentResponseError(`GET ${signed.url}: signed plan is not JSON`);
  }
  const parsed = FirmwarePlan.safeParse(json);
  if (!parsed.success) throw new AgentResponseError(`GET ${signed.url}: unexpected response: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`);
  // a genuine plan for another node, replayed at this one, is still not this node's plan
  if (parsed.data.uuid !== uuid) return refuse('other-node', `the signed plan is for node ${parsed.data.uuid}, not ${uuid}`);
  return parsed.data;
}

export const firmwareUpdateStep: FirmwareStep = async function firmwareUpdateStep(ctx) {
  const { register, report } = ctx;
  if (register.next !== 'firmware') return { action: 'continue' };
  const uuid = register.uuid;
  const plan = await verifiedPlan(ctx, uuid);
  if (plan.attempt === null || plan.steps.length === 0) {
    await report('firmware-check', 'the server asked for a firmware update but its plan has no steps; registering again', { reason: register.reason });
    return { action: 'register', reason: 'empty firmware plan' };
  }
  const attempt = plan.attempt;
  await report('firmware-check', `baseline ${plan.baseline?.name ?? '?'} v${plan.baseline?.version ?? '?'}: attempt ${attempt}, ${plan.steps.length} update(s)${plan.reboot ? ', then a reboot' : ''}`, {
    attempt,
    baseline: plan.baseline,
    components: plan.steps.map((s) => s.component),
  });

  const results: StepResult[] = [];
  for (const step of plan.steps) {
    await report('firmware-updating', `${step.component}${step.devices.length ? ` (${step.devices.join(', ')})` : ''}: ${step.current ?? 'unknown'} → ${step.required}`, {
      attempt,
      component: step.component,
      sha256: step.package.sha256,
    });
    const r = await runStep(ctx, step);
    results.push(r);
    ctx.log(`firmware ${step.component}: exit ${r.exitCode ?? (r.timedOut ? 'none (timed out)' : 'none')} in ${r.durationMs} ms`);
    // stop at the first failure: a later package may assume this one is in (BMC before BIOS, NIC after driver)
    if (!succeeded(r)) break;
  }

  let res;
  try {
    res = await ctx.retry('firmware report', () => ctx.client.firmwareReport(uuid, { attempt, results }));
  } catch (err) {
    // 409: the server moved on (another attempt, or the node was released): its next answer comes from fresh facts
    if (!(err instanceof AgentApiError && err.status === 409)) throw err;
    await report('firmware-failed', `attempt ${attempt}: the server refused the report: ${err.serverMessage}`, { attempt });
    return { action: 'register', reason: `firmware attempt ${attempt} report refused` };
  }
  const summary = results.map((r) => `${r.component} exit ${r.exitCode ?? 'none'}${r.timedOut ? ' (timed out)' : ''}`).join('; ');
  if (!res.ok) {
    const skipped = plan.steps.slice(results.length).map((s) => s.component);
    const last = results.at(-1);
    await report('firmware-failed', `attempt ${attempt}: ${summary}${skipped.length ? `; not run: ${skipped.join(', ')}` : ''}`, {
      attempt,
      results: results.map((r) => ({ component: r.component, exitCode: r.exitCode, timedOut: r.timedOut ?? false, durationMs: r.durationMs })),
      ...(last && !succeeded(last) ? { stderr: last.stderr.slice(-512) } : {}),
    });
    // the server counts attempts and decides from fresh facts: try again, or quarantine after maxAttempts
    return { action: 'register', reason: `firmware attempt ${attempt} failed` };
  }
  if (res.next === 'reboot') return { action: 'reboot', reason: `firmware attempt ${attempt}: ${summary}; takes effect after a reboot` };
  await report('firmware-updated', `attempt ${attempt}: ${summary}; registering again with fresh facts`, { attempt });
  return { action: 'register', reason: `firmware attempt ${attempt} applied` };
};
