// IPMI driver over `ipmitool -I lanplus` (IPMI v2.0 RMCP+, IPMI spec §13). The command runner is injected
// so tests can count calls; the default runs ipmitool with execFile (no shell).
//
// Facts that shape this file (FACTS.md, re-measured against ipmi_sim):
// - `-C 3` (cipher suite 3: RAKP-HMAC-SHA1 / HMAC-SHA1-96 / AES-CBC-128) is required here; without it every
//   command waits ~10 s while ipmitool probes suites the BMC does not answer.
// - ipmitool exits 0 even when `chassis bootdev pxe` fails, so success is judged from its output.
// - The password travels in the IPMI_PASSWORD environment variable with `-E`, never on argv, where any
//   user could read it from /proc/PID/cmdline.
// - With `-v` ipmitool says why a session could not be opened ("RAKP 2 HMAC is invalid" = wrong password,
//   "unauthorized name" = unknown user, "Get Auth Capabilities error" = nobody answered); without it all three
//   read "Unable to establish IPMI v2 / RMCP+ session". -v costs nothing measurable.
import { execFile } from 'node:child_process';
import { BmcError, redact, type Bmc, type BmcErrorKind, type BmcHealth, type BootDevice, type PowerAction, type PowerState } from './types.ts';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type IpmiExec = (file: string, args: string[], opts: { env: Record<string, string>; timeoutMs: number }) => Promise<ExecResult>;

/** Runs a program without a shell; a non-zero exit is a result, not a rejection. Rejects only when it cannot start. */
export const execRunner: IpmiExec = (file, args, { env, timeoutMs }) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 1 << 20, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      const timedOut = !!err && (err as { killed?: boolean }).killed === true;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (timedOut ? `\nipmitool killed after ${timeoutMs} ms` : '') });
    });
  });

export interface IpmiOptions {
  address: string;
  port?: number | null;
  username: string;
  password: string;
  /** RMCP+ cipher suite; 3 unless a BMC needs another (e.g. 17) */
  cipherSuite?: number;
  /** ipmitool -N: seconds to wait for each answer */
  timeoutSeconds?: number;
  /** ipmitool -R: retries per request */
  retries?: number;
  exec?: IpmiExec;
  ipmitool?: string;
  /** called after every ipmitool run (metrics: latency and errors per operation) */
  observe?: (operation: string, ms: number, error?: BmcError) => void;
}

const POWER_VERB: Record<PowerAction, string> = { on: 'on', off: 'off', cycle: 'cycle', reset: 'reset', soft: 'soft' };

/** Classifies a failed ipmitool run from its output (see the header comment for where each string comes from). */
export function classifyIpmiFailure(text: string): BmcErrorKind {
  if (/RAKP 2 HMAC is invalid|unauthorized name|invalid user ?name|password/i.test(text)) return 'auth';
  if (/insufficient privilege|privilege level/i.test(text)) return 'auth';
  if (/Invalid data field in request|Invalid command|not supported|Unsupported/i.test(text)) return 'unsupported';
  if (/Get Auth Capabilities error|No response|timed out|killed after|Unable to establish|Connection refused|Address lookup/i.test(text)) return 'unreachable';
  return 'failed';
}

export function createIpmiBmc({ address, port, username, password, cipherSuite = 3, timeoutSeconds = 1, retries = 2, exec = execRunner, ipmitool = 'ipmitool', observe }: IpmiOptions): Bmc {
  const target = `${address}:${port ?? 623}`;
  // `-R 0` is not "no retries": ipmitool then falls back to its default and waits ~20 s (measured).
  retries = Math.max(1, Math.floor(retries));
  const base = ['-I', 'lanplus', '-C', String(cipherSuite), '-H', address, '-p', String(port ?? 623), '-U', username, '-E', '-N', String(timeoutSeconds), '-R', String(retries), '-v'];
  // Only what ipmitool needs: the parent's environment may hold other secrets.
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', IPMI_PASSWORD: password };
  const clean = (s: string) => redact(s, [password]);
  // ipmitool's own retry loop is bounded by -N × -R; the outer kill is only a backstop against a hung process.
  const killAfterMs = (timeoutSeconds * (retries + 1) + 5) * 1000;

  async function run(operation: string, args: string[]): Promise<string> {
    const t0 = performance.now();
    let error: BmcError | undefined;
    try {
      let res: ExecResult;
      try {
        res = await exec(ipmitool, [...base, ...args], { env, timeoutMs: killAfterMs });
      } catch (e) {
        throw (error = new BmcError('failed', target, operation, `cannot run ${ipmitool}: ${clean((e as Error).message)}`));
      }
      const out = clean(res.stdout);
      const err = clean(res.stderr);
      // ipmitool prints "… failed: <completion code text>" on stderr for rejected commands, with exit 0 for
      // some of them (chassis bootdev): any "failed" line is a failure whatever the exit code says.
      const lines = meaningfulLines(`${err}\n${out}`);
      const failedLine = lines.find((l) => /\bfailed\b|^Error/i.test(l));
      if (res.code !== 0 || failedLine) {
        const kind = classifyIpmiFailure(lines.join('\n'));
        // the line that says why: the auth or reachability diagnosis when there is one, else the failure line
        const why = (kind === 'auth' ? lines.find((l) => classifyIpmiFailure(l) === 'auth') : kind === 'unreachable' ? lines.find((l) => classifyIpmiFailure(l) === 'unreachable') : undefined) ?? failedLine ?? lines.at(-1) ?? `exit ${res.code}`;
        const detail = kind === 'auth' ? `authentication rejected (${why})` : kind === 'unreachable' ? `no answer from the BMC (${why})` : kind === 'unsupported' ? `not supported by this BMC (${why})` : why;
        throw (error = new BmcError(kind, target, operation, detail));
      }
      return out;
    } finally {
      observe?.(operation, performance.now() - t0, error);
    }
  }

  return {
    driver: 'ipmi',
    target,
    async powerStatus(): Promise<PowerState> {
      const out = await run('power status', ['chassis', 'power', 'status']);
      const m = /Chassis Power is (on|off)/i.exec(out);
      if (!m) throw new BmcError('protocol', target, 'power status', `unexpected answer: ${out.trim().slice(0, 200)}`);
      return m[1]!.toLowerCase() as PowerState;
    },
    async power(action) {
      const out = await run(`power ${action}`, ['chassis', 'power', POWER_VERB[action]]);
      if (!/Chassis Power Control/i.test(out)) throw new BmcError('protocol', target, `power ${action}`, `unexpected answer: ${out.trim().slice(0, 200)}`);
    },
    async setBootDevice(device: BootDevice, { persistent = false, uefi = false } = {}) {
      const args = ['chassis', 'bootdev', device];
      // IPMI v2.0 §28.13 boot flags, parameter 5: "persistent" sets bit 6, "efiboot" bit 5 (BIOS boot type EFI)
      const opts = [...(persistent ? ['persistent'] : []), ...(uefi ? ['efiboot'] : [])];
      if (opts.length) args.push(`options=${opts.join(',')}`);
      const out = await run(`bootdev ${device}`, args);
      if (!new RegExp(`Set Boot Device to ${device}`, 'i').test(out)) throw new BmcError('protocol', target, `bootdev ${device}`, `unexpected answer: ${out.trim().slice(0, 200)}`);
    },
    async nmi() {
      // `chassis power diag` = Chassis Control 05h "pulse diagnostic interrupt" (IPMI v2.0 §28.3); optional
      // for a BMC, ipmi_sim answers "Invalid data field in request".
      await run('nmi', ['chassis', 'power', 'diag']);
    },
    async identify(seconds = 15) {
      await run('identify', ['chassis', 'identify', String(Math.max(0, Math.min(255, Math.floor(seconds))))]);
    },
    async health(): Promise<BmcHealth> {
      const out = await run('chassis status', ['chassis', 'status']);
      return parseChassisStatus(out);
    },
    async mcResetCold() {
      // Cold Reset (IPMI v2.0 §20.2, NetFn App 02h): the BMC restarts; ipmitool prints "Sent cold reset command to MC"
      const out = await run('mc reset cold', ['mc', 'reset', 'cold']);
      if (!/cold reset/i.test(out)) throw new BmcError('protocol', target, 'mc reset cold', `unexpected answer: ${out.trim().slice(0, 200)}`);
    },
  };
}

/** Output lines without the chatter -v adds to every run (IANA registry, the VSO capability probe). */
function meaningfulLines(s: string): string[] {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Loading IANA|^Running Get VSO|^Discovered IPMB|^Invalid completion code received: Invalid command$/.test(l));
}

/** `ipmitool chassis status` → health: any power or cooling or drive fault is a warning, a main power fault critical. */
export function parseChassisStatus(out: string): BmcHealth {
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(\\S+)`, 'im').exec(out)?.[1]?.toLowerCase();
  const faults: string[] = [];
  for (const f of ['Power Overload', 'Power Control Fault', 'Drive Fault', 'Cooling/Fan Fault']) if (field(f.replace('/', '\\/')) === 'true') faults.push(f);
  if (field('Main Power Fault') === 'true') return { health: 'critical', detail: ['Main Power Fault', ...faults].join(', ') };
  if (faults.length) return { health: 'warning', detail: faults.join(', ') };
  if (!field('System Power')) return { health: 'unknown', detail: 'no chassis status' };
  return { health: 'ok' };
}
