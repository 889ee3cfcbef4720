// Network namespaces and processes for the real-client DHCP tests and the benchmark. Every name starts
// with "bfdhcp"/"bfd" and carries a random suffix so parallel runs do not collide; everything made here
// is removed by cleanup(), which tests call in afterAll (also on failure).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const repoRoot = new URL('../../../', import.meta.url).pathname;

export function sh(cmd: string, args: string[], opts: { allowFail?: boolean; timeout?: number } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout ?? 15_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (opts.allowFail) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr || e.message}`);
  }
}

export const ip = (...args: string[]) => sh('ip', args);

export interface Proc {
  child: ChildProcess;
  lines: string[];
  /** resolves with the first line matching, rejects after timeoutMs */
  waitFor(pred: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Start a process in a namespace and keep its stdout+stderr lines. */
export function run(ns: string, cmd: string[], opts: { cwd?: string } = {}): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { cwd: opts.cwd ?? repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let exitCode: number | null | undefined;
  const onData = (buf: Buffer) => {
    for (const line of buf.toString().split('\n')) {
      if (!line) continue;
      lines.push(line);
      for (const w of [...waiters]) if (w.pred(line)) (waiters.splice(waiters.indexOf(w), 1), w.resolve(line));
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve((exitCode = code))));
  return {
    child,
    lines,
    waitFor(pred, timeoutMs = 10_000) {
      const hit = lines.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (l: string) => (clearTimeout(t), resolve(l)) };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting; last output:\n${lines.slice(-15).join('\n')}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    async stop(signal = 'SIGTERM') {
      if (exitCode !== undefined) return exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

export const suffix = () => randomBytes(2).toString('hex');

/**
 * Who made each namespace: one file per namespace, holding the PID of the test process. A run killed before its
 * afterAll (vitest stopped, a worker crashed) leaves namespaces that no name-based sweep can attribute (the default
 * suffix is random): the next Lab sweeps every namespace whose maker is dead (sweepOrphans).
 */
export const NETNS_OWNERS = '/run/bootfarm-test-netns';

/** Deletes the namespaces (and kills the processes in them) whose maker, as NETNS_OWNERS records it, is dead. */
export function sweepOrphans(dir = NETNS_OWNERS): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const owner = Number(readFileSync(join(dir, name), 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) continue;
    for (const pid of sh('ip', ['netns', 'pids', name], { allowFail: true }).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    sh('ip', ['netns', 'delete', name], { allowFail: true });
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces and links created through this object are deleted by cleanup(); a killed run's, by the next Lab. */
export class Lab {
  /** a suffix for every name made here; pass one built from the pid to find a leftover's owner (sweepLeftovers) */
  constructor(
    readonly id = suffix(),
    readonly prefix = 'bfdhcp',
    private readonly owners = NETNS_OWNERS,
  ) {
    sweepOrphans(owners);
  }
  private readonly namespaces: string[] = [];
  private readonly procs: Proc[] = [];

  ns(role: string): string {
    const name = `${this.prefix}-${role}-${this.id}`;
    mkdirSync(this.owners, { recursive: true });
    writeFileSync(join(this.owners, name), `${process.pid}\n`);
    ip('netns', 'add', name);
    this.namespaces.push(name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** a veth pair between two namespaces, addresses optional ("10.0.0.1/24") */
  link(a: { ns: string; name: string; addr?: string; mac?: string }, b: { ns: string; name: string; addr?: string; mac?: string }): void {
    ip('link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name);
    for (const end of [a, b]) {
      ip('link', 'set', end.name, 'netns', end.ns);
      if (end.mac) ip('-n', end.ns, 'link', 'set', end.name, 'address', end.mac);
      if (end.addr) ip('-n', end.ns, 'addr', 'add', end.addr, 'dev', end.name);
      ip('-n', end.ns, 'link', 'set', end.name, 'up');
    }
  }

  run(ns: string, cmd: string[]): Proc {
    const p = run(ns, cmd);
    this.procs.push(p);
    return p;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop().catch(() => undefined)));
    // deleting a namespace deletes the veth ends inside it
    for (const n of this.namespaces) {
      sh('ip', ['netns', 'delete', n], { allowFail: true });
      rmSync(join(this.owners, n), { force: true });
    }
  }
}

export const hasCommand = (cmd: string): boolean => sh('sh', ['-c', `command -v ${cmd}`], { allowFail: true }).trim() !== '';

/**
 * Namespaces named PREFIX-ROLE-PID whose test process is gone (killed before its afterAll ran): the processes still
 * inside are killed (`ip netns pids`), then the namespace is deleted. Only names with this prefix and a dead PID are
 * touched, so parallel runs keep theirs. Returns the names removed.
 */
export function sweepLeftovers(prefix: string): string[] {
  const re = new RegExp(`^(${prefix}-[a-z0-9]+-(\\d+))\\b`);
  const removed: string[] = [];
  for (const line of sh('ip', ['netns', 'list'], { allowFail: true }).split('\n')) {
    const m = re.exec(line.trim());
    if (!m || pidAlive(Number(m[2]))) continue;
    for (const pid of sh('ip', ['netns', 'pids', m[1]!], { allowFail: true }).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    sh('ip', ['netns', 'delete', m[1]!], { allowFail: true });
    removed.push(m[1]!);
  }
  return removed;
}
