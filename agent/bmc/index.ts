// In-band BMC setup from stage-1 (the plan comes from server/bmc/setup.ts through the bmc-setup routes).
// After registering, the agent asks whether an operator requested a setup for this node. If one is pending it
// writes the plan's script to a 0600 file on its tmpfs work dir, runs `ipmitool -I open exec FILE` (the
// kernel's IPMI driver, /dev/ipmi0: no credentials needed as root on the node), deletes the file, and reports
// exit code and output with the password masked. The server then logs in out-of-band with the new credentials
// and only stores them if that works, so the agent never claims success: it reports what ran.
//
// `exec` keeps the password off every command line (/proc/PID/cmdline is world-readable); the file lives only
// for the run and only root can read it.
import { randomBytes } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentClient } from '../client.ts';
import type { Exec, ExecResult } from '../exec.ts';
import type { BmcSetupOutcome, BmcSetupPlan } from '../../server/contract/bmc-setup.ts';

export type Report = (phase: string, message?: string, data?: Record<string, unknown>) => Promise<void>;

export interface BmcSetupContext {
  uuid: string;
  client: AgentClient;
  exec: Exec;
  report: Report;
  /** tmpfs in the stage-1 OS (/run/bootfarm) */
  workDir: string;
  log: (line: string) => void;
  /** server calls go through the flow's retry */
  retry: <T>(what: string, fn: () => Promise<T>) => Promise<T>;
  timeoutMs?: number;
}

export type BmcSetupStepResult = { ran: false } | { ran: true; outcome: BmcSetupOutcome };

/** The secrets in a plan script: the passwords of `user set password ID PASSWORD [16|20]` lines. */
export function scriptSecrets(script: string): string[] {
  const out: string[] = [];
  for (const line of script.split('\n')) {
    const m = /^\s*user\s+set\s+password\s+\d+\s+(\S+)/.exec(line);
    if (m) out.push(m[1]!);
  }
  return out;
}

export function redactSecrets(text: string, secrets: readonly string[]): string {
  let s = text;
  for (const x of secrets) if (x) s = s.split(x).join('***');
  return s;
}

const tail = (s: string, max: number) => (s.length > max ? s.slice(-max) : s);

/** Writes the script 0600 (exclusive create: never follows a planted file), runs it, always deletes it. */
export async function runPlanScript(exec: Exec, plan: BmcSetupPlan, workDir: string, timeoutMs: number): Promise<ExecResult> {
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const file = join(workDir, `bmc-setup-${randomBytes(8).toString('hex')}.ipmitool`);
  const fh = await open(file, 'wx', 0o600);
  try {
    await fh.writeFile(plan.script);
  } finally {
    await fh.close();
  }
  try {
    return await exec('ipmitool', ['-I', plan.interface, 'exec', file], { timeoutMs });
  } finally {
    await rm(file, { force: true });
  }
}

export async function bmcSetupStep(ctx: BmcSetupContext): Promise<BmcSetupStepResult> {
  let offer;
  try {
    offer = await ctx.retry('bmc-setup', () => ctx.client.bmcSetup(ctx.uuid));
  } catch (err) {
    // a server without the route (404) or a passing outage: the boot goes on; the operator's request stays
    // pending on the server until the next boot asks again
    ctx.log(`bmc-setup: ${(err as Error).message}; skipped`);
    return { ran: false };
  }
  if (!offer.pending) return { ran: false };
  const { setupId, plan } = offer;
  const secrets = scriptSecrets(plan.script);
  await ctx.report('bmc-setup-started', `in-band BMC setup ${setupId}: channel ${plan.channel} ${plan.expect.address}, user ${plan.userId} ${plan.expect.username}`, {
    setupId,
    script: plan.redacted,
  });
  const t0 = Date.now();
  let r: ExecResult;
  try {
    r = await runPlanScript(ctx.exec, plan, ctx.workDir, ctx.timeoutMs ?? 120_000);
  } catch (err) {
    // the file could not be written: report that as a run that could not start
    r = { command: 'ipmitool -I open exec FILE', exitCode: null, signal: null, stdout: '', stderr: String((err as Error).message), timedOut: false };
  }
  // ipmitool exits 0 even when a command in the script fails (FACTS.md): the server judges by its own login
  const output = redactSecrets(tail(`${r.stdout}${r.stderr}`, 60_000), secrets);
  const outcome = await ctx.retry('bmc-setup report', () =>
    ctx.client.bmcSetupReport(ctx.uuid, { setupId, exitCode: r.exitCode, output, durationMs: Date.now() - t0, ...(r.timedOut ? { timedOut: true } : {}) }),
  );
  await ctx.report(outcome.ok ? 'bmc-setup-done' : 'bmc-setup-failed', outcome.message, { setupId, exitCode: r.exitCode, state: outcome.state });
  return { ran: true, outcome };
}
