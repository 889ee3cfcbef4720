// The one door to external commands (STYLE.md §3: the core takes a function, the edge supplies it).
// Every probe and every kexec goes through an `Exec`; tests hand in their own, the binary uses `spawnExec`.
// The result keeps stdout/stderr so a failed probe can put them into its failure report.
import { spawn } from 'node:child_process';

export interface ExecResult {
  /** the command line as run, for reports */
  command: string;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** extra environment on top of the agent's own */
  env?: Record<string, string>;
}

export type Exec = (cmd: string, args: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

/** A command that did not succeed; carries the whole result for the failure report. */
export class ExecError extends Error {
  constructor(readonly result: ExecResult, why?: string) {
    super(
      why ??
        (result.timedOut
          ? `${result.command}: timed out`
          : result.exitCode === null && result.stderr.startsWith('spawn ')
            ? `${result.command}: ${result.stderr}`
            : `${result.command}: exit ${result.exitCode ?? result.signal}${result.stderr.trim() ? `: ${lastLine(result.stderr)}` : ''}`),
    );
    this.name = 'ExecError';
  }
}

function lastLine(s: string): string {
  const lines = s.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 300);
}

const MAX_OUTPUT = 8 * 1024 * 1024;

export function quoteArg(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}

export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(quoteArg).join(' ');
}

/** Runs a command without a shell; never rejects: a missing binary is exitCode null with the spawn error in stderr. */
export function spawnExec({ defaultTimeoutMs = 30_000 }: { defaultTimeoutMs?: number } = {}): Exec {
  return function exec(cmd, args, opts = {}) {
    const command = commandLine(cmd, args);
    const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
    return new Promise<ExecResult>((resolve) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let settled = false;
      const done = (exitCode: number | null, signal: string | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ command, exitCode, signal, stdout, stderr, timedOut });
      };
      // its own process group, so a timeout kills what the command forked too (`sh -c 'sleep 5'` forks sleep;
      // killing only sh left the caller waiting for sleep's end)
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ? { ...process.env, ...opts.env } : process.env, detached: true });
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        if (stdout.length < MAX_OUTPUT) stdout += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < MAX_OUTPUT) stderr += d;
      });
      child.on('error', (err) => {
        stderr += `spawn ${cmd}: ${err.message}`;
        done(null, null);
      });
      child.on('close', (code, signal) => done(code, signal));
    });
  };
}

/** Runs and demands exit 0; throws ExecError otherwise. */
export async function run(exec: Exec, cmd: string, args: readonly string[], opts?: ExecOptions): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.exitCode !== 0 || r.timedOut) throw new ExecError(r);
  return r.stdout;
}
