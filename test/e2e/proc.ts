// Process bookkeeping for the e2e rack: every process the rack starts is registered here with its PID and
// stopped by that PID (SIGTERM, then SIGKILL after a grace period), on success, on failure and on
// SIGINT/SIGTERM of the test process. Commands that must run inside the rack's network namespace go through
// `ip netns exec NS …`, which setns()es and then execs the command, so the PID we hold is the command's own.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** argv prefix that runs a command inside a network namespace (empty for the host namespace). */
export const nsPrefix = (netns: string | undefined): string[] => (netns ? ['ip', 'netns', 'exec', netns] : []);

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a short command to completion (synchronously: used for setup/teardown steps that take milliseconds). */
export function run(argv: string[], { netns, input, timeoutMs = 30_000, env }: { netns?: string; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): RunResult {
  const full = [...nsPrefix(netns), ...argv];
  const r = spawnSync(full[0]!, full.slice(1), { encoding: 'utf8', input, timeout: timeoutMs, env: env ?? process.env });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** Like run() but throws with the command's output when it fails. */
export function must(argv: string[], opts: Parameters<typeof run>[1] = {}): string {
  const r = run(argv, opts);
  if (r.status !== 0) throw new Error(`${opts.netns ? `[netns ${opts.netns}] ` : ''}${argv.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim().slice(-1500)}`);
  return r.stdout;
}

/** Asynchronous variant (for commands that take seconds, e.g. ipmitool, so the event loop keeps serving). */
export function runAsync(argv: string[], { netns, timeoutMs = 30_000, env, cwd }: { netns?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  const full = [...nsPrefix(netns), ...argv];
  return new Promise((resolve) => {
    const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => (stderr += String(e)));
    child.once('close', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops one PID: SIGTERM, wait up to graceMs for it to go, then SIGKILL. */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    if (!alive(pid)) return;
    await sleep(50);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
  for (let i = 0; i < 40 && alive(pid); i++) await sleep(50);
}

export interface Managed {
  name: string;
  pid: number;
  child: ChildProcess;
  /** stdout+stderr captured so far (also written to logFile when given) */
  output(): string;
  exited(): boolean;
  exitCode(): number | null;
  /** resolves when the process has exited */
  whenExit: Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

const registry = new Set<Managed>();
/** Cleanup callbacks run on SIGINT/SIGTERM (namespace deletion etc.), newest first. */
const cleanups = new Set<() => void>();
let signalsHooked = false;

function hookSignals() {
  if (signalsHooked) return;
  signalsHooked = true;
  // synchronous last-ditch cleanup: kill every registered PID, then run the namespace cleanups
  const lastDitch = () => {
    for (const m of registry) {
      try {
        process.kill(m.pid, 'SIGKILL');
      } catch {}
    }
    for (const c of [...cleanups].reverse()) {
      try {
        c();
      } catch {}
    }
    cleanups.clear();
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      lastDitch();
      process.exit(130);
    });
  }
  // an uncaught exception or a process.exit() without destroy(): still leave nothing behind
  process.once('exit', lastDitch);
}

/** Registers a synchronous cleanup for SIGINT/SIGTERM; returns the function that unregisters it. */
export function onSignalCleanup(fn: () => void): () => void {
  hookSignals();
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/**
 * Starts a long-running process (optionally inside a netns), captures its output (to memory, capped, and to
 * logFile), and registers it so that stopAll() and the signal handlers end it by PID.
 */
export function startManaged(name: string, argv: string[], { netns, env, cwd, logFile, stdin = 'ignore' }: { netns?: string; env?: NodeJS.ProcessEnv; cwd?: string; logFile?: string; stdin?: 'ignore' | 'pipe' } = {}): Managed {
  hookSignals();
  const full = [...nsPrefix(netns), ...argv];
  const opts: SpawnOptions = { stdio: [stdin, 'pipe', 'pipe'], env: env ?? process.env, cwd };
  const child = spawn(full[0]!, full.slice(1), opts);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${full.join(' ')}`);
  let out = '';
  let file: WriteStream | undefined;
  if (logFile) file = createWriteStream(logFile, { flags: 'a' });
  const take = (d: Buffer) => {
    out += d.toString('utf8');
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    if (file && !file.writableEnded) file.write(d);
  };
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  child.once('error', (e) => (out += `\n[spawn error] ${String(e)}\n`));
  let done = false;
  let code: number | null = null;
  // 'exit' can come before the last output is read; the log file is closed on 'close' (pipes drained)
  child.once('close', () => file?.end());
  const whenExit = new Promise<void>((r) =>
    child.once('exit', (c) => {
      done = true;
      code = c;
      r();
    }),
  );
  const m: Managed = {
    name,
    pid: child.pid,
    child,
    output: () => out,
    exited: () => done,
    exitCode: () => code,
    whenExit,
    async stop(graceMs = 3000) {
      if (!done) {
        await stopPid(child.pid!, graceMs);
        await Promise.race([whenExit, sleep(2000)]);
      }
      registry.delete(m);
    },
  };
  registry.add(m);
  return m;
}

/** Stops every process started with startManaged that is still registered (in reverse start order). */
export async function stopAll(): Promise<void> {
  for (const m of [...registry].reverse()) await m.stop();
}

/**
 * Polls `probe` until it returns a value (not undefined) or the deadline passes; on timeout throws an Error
 * whose message says what was awaited and appends `context()` (log tails) so a failure explains itself.
 */
export async function waitUntil<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>, { intervalMs = 200, context }: { intervalMs?: number; context?: () => string } = {}): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until) break;
    await sleep(intervalMs);
  }
  const why = last ? ` (last error: ${(last as Error).message ?? String(last)})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}${context ? `\n${context()}` : ''}`);
}

/** The last n lines of a text, labelled, for error messages. */
export function tail(label: string, text: string, n = 40): string {
  const lines = text.replace(/\r/g, '').split('\n');
  return `--- ${label} (last ${Math.min(n, lines.length)} lines) ---\n${lines.slice(-n).join('\n')}`;
}
