// Serial over LAN (IPMI v2.0 §15, §24): one node's serial console through its BMC, as `ipmitool -I lanplus
// sol activate` delivers it on stdout. This is how a data centre reads consoles: the BMC owns the serial port
// whatever the host does (BIOS, iPXE, kernel panic), and nothing runs on the node. ipmitool does the RMCP+
// session, the SOL payload and its keepalives; this file starts it, decodes its output, and starts it again.
//
// Measured against ipmi_sim (openipmi 2.0.33, `sol "tcp:HOST:PORT" 115200` in lan.conf) and ipmitool 1.8.19:
// - The password travels in IPMI_PASSWORD with -E, never on argv (/proc/PID/cmdline is world-readable).
// - stdin must stay open: ipmitool reads it for the escape sequence and ends the session at EOF. With a pipe
//   (not a tty) it prints "tcgetattr: Inappropriate ioctl for device" on stderr and works.
// - "~." ends the session cleanly (ipmitool deactivates the payload). ipmitool treats the start of input as the
//   start of a line, so "~." is recognised as the first thing ever written; nothing else is written to stdin.
//   A killed ipmitool leaves the payload active on the BMC: the next activate is answered "Info: SOL payload
//   already active on another session" (exit 1), and `sol deactivate` clears it.
// - When the BMC goes away, ipmitool notices on its own keepalive: with `-N 1 -R 1` it prints "Error: No response
//   to keepalive - Terminating session" and exits ~26 s later (with ipmitool's default -N/-R it was still running
//   after 40 s). The session then restarts with the project's backoff (contract/backoff.ts).
// - ipmitool prints "[SOL Session operational.  Use ~? for help]" on stdout when the payload is up, but stdout is a
//   pipe, so libc holds the banner until the first console bytes flush it: the banner cannot say "connected" on a
//   quiet console. A failed activate (wrong password, payload taken, no BMC) exits within ~1 s here, so a run
//   still going after activeAfterMs counts as an open session. The banner is dropped from the output, and so is
//   ipmitool's "~. [terminated ipmitool]" when we end the session.
import { spawn as nodeSpawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import type { Readable, Writable } from 'node:stream';
import { backoffDelay } from '../contract/backoff.ts';
import { execRunner, type IpmiExec } from './ipmi.ts';
import { redact } from './types.ts';

export interface SolTarget {
  address: string;
  port?: number | null;
  username: string;
  password: string;
  /** RMCP+ cipher suite (ipmi.ts: 3 unless the BMC needs another) */
  cipherSuite?: number;
}

/** The parts of a child process the session uses (a fake in unit tests, node's spawn in production). */
export interface SolChild {
  stdin: Writable | null;
  stdout: Readable | null;
  stderr: Readable | null;
  pid?: number;
  kill(signal?: NodeJS.Signals): boolean;
  once(event: 'exit', fn: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
  once(event: 'error', fn: (err: Error) => void): unknown;
}
export type SolSpawn = (file: string, args: string[], opts: { env: Record<string, string> }) => SolChild;

export type SolState = 'connecting' | 'active' | 'backoff' | 'stopped';

export interface SolSessionOptions {
  target: SolTarget;
  /** console output as it arrives (UTF-8 decoded; a character split across reads is kept whole) */
  onData: (text: string) => void;
  /** state changes, with the reason for a 'backoff' (the line ipmitool ended with) */
  onState?: (state: SolState, detail?: string) => void;
  spawn?: SolSpawn;
  /** runs `sol deactivate` (ipmi.ts execRunner by default) */
  exec?: IpmiExec;
  ipmitool?: string;
  /** restart spacing after a session ends (contract/backoff.ts: full jitter, so a rack whose BMC switch came back
   * does not reconnect in lock-step) */
  backoff?: { baseMs: number; capMs: number; random?: () => number };
  /** a session that stayed up this long counts as healthy (a console may be quiet for hours): the next restart
   * starts at baseMs again */
  healthyMs?: number;
  /** an ipmitool still running after this long has its session (see the header) */
  activeAfterMs?: number;
  now?: () => number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface SolSession {
  readonly target: string;
  state(): SolState;
  /** sessions started so far (1 after the first activate) */
  starts(): number;
  /** ends the session ("~.", then a kill and `sol deactivate` if ipmitool does not go) and stops restarting */
  stop(): Promise<void>;
}

const BANNER = /^\[SOL Session operational\.[^\]\n]*\]\r?\n?/;
const ALREADY_ACTIVE = /SOL payload already active/i;

const defaultSpawn: SolSpawn = (file, args, { env }) => nodeSpawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });

const abortableSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Starts capturing at once; runs until stop(). Never throws: every failure is a state change and a restart. */
export function createSolSession({ target: t, onData, onState, spawn = defaultSpawn, exec = execRunner, ipmitool = 'ipmitool', backoff = { baseMs: 1000, capMs: 60_000 }, healthyMs = 30_000, activeAfterMs = 1500, now = Date.now, sleep = abortableSleep }: SolSessionOptions): SolSession {
  const target = `${t.address}:${t.port ?? 623}`;
  // -N 1 -R 1: ipmitool's keepalive then gives up on a silent BMC within ~26 s (see the header)
  const base = ['-I', 'lanplus', '-C', String(t.cipherSuite ?? 3), '-H', t.address, '-p', String(t.port ?? 623), '-U', t.username, '-E', '-N', '1', '-R', '1'];
  // only what ipmitool needs: the parent's environment may hold other secrets
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', IPMI_PASSWORD: t.password };
  const clean = (s: string) => redact(s, [t.password]);
  const abort = new AbortController();
  let state: SolState = 'connecting';
  let starts = 0;
  let child: SolChild | null = null;
  const set = (s: SolState, detail?: string) => {
    state = s;
    onState?.(s, detail);
  };

  async function deactivate(): Promise<void> {
    await exec(ipmitool, [...base, 'sol', 'deactivate'], { env, timeoutMs: 10_000 }).catch(() => undefined);
  }

  /** One ipmitool run: resolves with why it ended and whether it stayed up for healthyMs. */
  function runOnce(): Promise<{ why: string; healthy: boolean; alreadyActive: boolean }> {
    return new Promise((resolve) => {
      starts++;
      const started = now();
      let banner = true;
      let errText = '';
      const decoder = new StringDecoder('utf8');
      const c = spawn(ipmitool, [...base, 'sol', 'activate'], { env });
      child = c;
      c.stdout?.on('data', (d: Buffer) => {
        let s = decoder.write(d);
        if (banner) {
          // the banner, when ipmitool prints it on stdout, comes first, alone or with the first console bytes
          banner = false;
          const m = BANNER.exec(s);
          if (m) s = s.slice(m[0].length);
        }
        if (abort.signal.aborted) return; // "~. [terminated ipmitool]"
        if (state !== 'active') set('active');
        if (s) onData(s);
      });
      c.stderr?.on('data', (d: Buffer) => {
        errText = (errText + String(d)).slice(-2000);
      });
      const settled = setTimeout(() => state === 'connecting' && !abort.signal.aborted && set('active'), activeAfterMs);
      // the pipe to a dead ipmitool: EPIPE on the "~." write is expected, not an error
      c.stdin?.on('error', () => undefined);
      let ended = false;
      const end = (why: string) => {
        if (ended) return;
        ended = true;
        clearTimeout(settled);
        child = null;
        const lines = clean(errText)
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !/^tcgetattr/.test(l));
        resolve({ why: lines.at(-1) ?? why, healthy: now() - started >= healthyMs, alreadyActive: ALREADY_ACTIVE.test(errText) });
      };
      c.once('error', (e) => end(`cannot run ${ipmitool}: ${clean(e.message)}`));
      c.once('exit', (code, signal) => end(signal ? `ipmitool ended by ${signal}` : `ipmitool exited ${code}`));
    });
  }

  const loop = (async () => {
    let retry = 0;
    let clearedActive = false;
    while (!abort.signal.aborted) {
      set('connecting');
      const r = await runOnce();
      if (abort.signal.aborted) break;
      if (r.alreadyActive && !clearedActive) {
        // a session of ours that died without deactivating (or an operator's): take the console over once, at
        // once; if it is taken again right away, someone else wants it and the backoff spaces our attempts
        clearedActive = true;
        await deactivate();
        continue;
      }
      clearedActive = false;
      if (r.healthy) retry = 0;
      const delay = backoffDelay(retry++, { ...backoff, jitter: 'full', random: backoff.random });
      set('backoff', r.why);
      await sleep(delay, abort.signal);
    }
    set('stopped');
  })();

  return {
    target,
    state: () => state,
    starts: () => starts,
    async stop() {
      if (abort.signal.aborted) return loop;
      abort.abort();
      const c = child;
      if (c) {
        const gone = new Promise<void>((r) => c.once('exit', () => r()));
        // "~." = ipmitool's own "terminate connection": it deactivates the payload on the BMC
        c.stdin?.write('~.');
        const within = (p: Promise<void>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref())]);
        if (!(await within(gone, 3000))) {
          c.kill('SIGKILL');
          await within(gone, 3000);
          await deactivate();
        }
      }
      await loop;
    },
  };
}
