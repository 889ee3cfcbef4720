// The SOL session's decisions with a scripted ipmitool (the real one runs in fleet/console.test.ts against
// ipmi_sim): the password stays off argv, a payload already active is deactivated once and taken over, a dropped
// session restarts after the backoff, and stop() ends the session with "~.".
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { until } from '../../test/harness/wait.ts';
import { createSolSession, type SolChild, type SolSpawn } from './sol.ts';
import type { IpmiExec } from './ipmi.ts';

/** One scripted ipmitool run: the test decides what it prints and when it exits. */
class FakeIpmitool extends EventEmitter {
  stdin = new PassThrough();
  stdout = new PassThrough();
  stderr = new PassThrough();
  typed = '';
  constructor(readonly args: string[], readonly env: Record<string, string>) {
    super();
    this.stdin.on('data', (d) => {
      this.typed += String(d);
      // ipmitool's escape: "~." ends the session
      if (this.typed.includes('~.')) this.exit(0);
    });
  }
  exit(code: number) {
    queueMicrotask(() => this.emit('exit', code, null));
  }
  kill() {
    this.exit(137);
    return true;
  }
}

function scripted(onRun: (run: FakeIpmitool, n: number) => void) {
  const runs: FakeIpmitool[] = [];
  const spawn: SolSpawn = (_file, args, { env }) => {
    const run = new FakeIpmitool(args, env);
    runs.push(run);
    setImmediate(() => onRun(run, runs.length));
    return run as unknown as SolChild;
  };
  const execs: string[][] = [];
  const exec: IpmiExec = async (_file, args) => {
    execs.push(args);
    return { code: 0, stdout: '', stderr: '' };
  };
  return { runs, spawn, exec, execs };
}

const target = { address: '192.0.2.10', port: 623, username: 'admin', password: 's3cret-pw' };
const noSleep = async () => undefined;

describe('SOL session', () => {
  it('sends the password in IPMI_PASSWORD only, and strips the banner from the output', async () => {
    const out: string[] = [];
    const s = scripted((run) => run.stdout.write('[SOL Session operational.  Use ~? for help]\nSeaBIOS\r\n'));
    const sol = createSolSession({ target, onData: (t) => out.push(t), spawn: s.spawn, exec: s.exec, sleep: noSleep });
    await until('output', () => out.join('').includes('SeaBIOS'));
    expect(out.join('')).toBe('SeaBIOS\r\n');
    expect(s.runs[0]!.args).not.toContain('s3cret-pw');
    expect(s.runs[0]!.args).toEqual(expect.arrayContaining(['-E', 'sol', 'activate', '-H', '192.0.2.10']));
    expect(s.runs[0]!.env.IPMI_PASSWORD).toBe('s3cret-pw');
    expect(sol.state()).toBe('active');
    await sol.stop();
    expect(s.runs[0]!.typed).toBe('~.');
    expect(sol.state()).toBe('stopped');
  });

  it('takes over a payload that is already active: sol deactivate, then activate again at once', async () => {
    const s = scripted((run, n) => {
      if (n === 1) {
        run.stderr.write('Info: SOL payload already active on another session\n');
        run.exit(1);
      } else run.stdout.write('login: ');
    });
    const sleeps: number[] = [];
    const out: string[] = [];
    const sol = createSolSession({ target, onData: (t) => out.push(t), spawn: s.spawn, exec: s.exec, sleep: async (ms) => void sleeps.push(ms) });
    await until('second run prints', () => out.join('').includes('login: '));
    expect(s.execs.map((a) => a.slice(-2))).toEqual([['sol', 'deactivate']]);
    expect(sleeps).toEqual([]);
    await sol.stop();
  });

  it('restarts a dropped session after the backoff, and names why it ended', async () => {
    const states: string[] = [];
    const s = scripted((run, n) => {
      if (n <= 2) {
        run.stderr.write('Error: No response to keepalive - Terminating session\n');
        run.exit(1);
      } else run.stdout.write('back\n');
    });
    const sleeps: number[] = [];
    const out: string[] = [];
    const sol = createSolSession({ target, onData: (t) => out.push(t), onState: (st, why) => states.push(why ? `${st}: ${why}` : st), spawn: s.spawn, exec: s.exec, backoff: { baseMs: 100, capMs: 1000, random: () => 0.5 }, sleep: async (ms) => void sleeps.push(ms) });
    await until('third run prints', () => out.join('').includes('back'));
    // full jitter with random 0.5: half of 100, then half of 200
    expect(sleeps).toEqual([50, 100]);
    expect(states).toContain('backoff: Error: No response to keepalive - Terminating session');
    expect(sol.starts()).toBe(3);
    await sol.stop();
  });

  it('a session that stayed up healthyMs restarts the backoff from baseMs', async () => {
    let t = 0;
    const s = scripted((run, n) => {
      // runs 1 and 2 fail at once; run 3 lives 31 s (on the injected clock) and drops; run 4 fails; run 5 stays
      if (n === 3) t += 31_000;
      if (n <= 4) {
        run.stderr.write('Error: No response to keepalive - Terminating session\n');
        run.exit(1);
      }
    });
    const sleeps: number[] = [];
    const sol = createSolSession({ target, onData: () => undefined, spawn: s.spawn, exec: s.exec, now: () => t, backoff: { baseMs: 100, capMs: 1000, random: () => 0.5 }, sleep: async (ms) => void sleeps.push(ms) });
    await until('fifth run', () => s.runs.length === 5);
    expect(sleeps).toEqual([50, 100, 50, 100]);
    await sol.stop();
  });

  it('kills an ipmitool that ignores "~." and deactivates the payload it leaves behind', async () => {
    let deaf = false;
    const s = scripted((run) => {
      run.stdin.removeAllListeners('data');
      run.stdin.resume();
      deaf = true;
    });
    const sol = createSolSession({ target, onData: () => undefined, spawn: s.spawn, exec: s.exec, sleep: noSleep });
    await until('started', () => deaf);
    await sol.stop();
    expect(s.execs.map((a) => a.slice(-2))).toEqual([['sol', 'deactivate']]);
  }, 10_000);
});
