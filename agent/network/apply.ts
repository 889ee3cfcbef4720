// The runner (issue 16 item 1): plans against the kernel's state, runs the steps through the agent's Exec, checks each
// new address for a conflict before the node uses it, asks the server for a replacement when one is found, and
// writes the hostname and resolv.conf. Failures accumulate (one broken step does not hide what the others did) and
// come back with the read-back the heartbeat carries.
//
// Conflict detection:
//   IPv4: an ARP probe before the address is added (RFC 5227 §2.1.1), `arping -D -c N -I dev addr`. busybox's
//         arping (the compute image's, usr/sbin/arping) and iputils' exit 1 when a host answered, 0 when none did;
//         busybox exits 2 on errors such as a missing device, so a conflict is exit 1 AND a "reply from" line.
//   IPv6: duplicate address detection runs in the kernel once the address is added (RFC 4862 §5.4); the address is
//         `tentative` meanwhile and `dadfailed` (still tentative) when another node has it. Measured on this
//         machine's 6.18 kernel: a duplicate was flagged dadfailed about 1–2 s after `ip addr add` (dad_transmits 1).
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { ConfiguredNetwork, Detail, DetailAddress } from '../../server/contract/agent.ts';
import { commandLine, ExecError, run, type Exec } from '../exec.ts';
import type { Sleep } from '../retry.ts';
import { planNetwork, type BootPath, type Step } from './plan.ts';
import { bareAddress, canonicalPrefixed, configuredFrom, parseIpAddr, readState, type NetState } from './state.ts';

export interface FoundConflict {
  device: string;
  /** address/prefix as the detail gave it */
  address: string;
  family: 4 | 6;
  network?: string;
  how: 'arp-probe' | 'ipv6-dad';
  /** who answered, when known (the MAC in the ARP reply) */
  detail?: string;
  /** the server's replacement, once asked */
  replacement?: string;
}

export interface StepFailure {
  command: string;
  error: string;
}

export interface ApplyOptions {
  exec: Exec;
  sleep: Sleep;
  /** the server's answer to a conflict (POST …/addresses/conflict): the replacement address; throws when it has none */
  onConflict?: (c: FoundConflict) => Promise<DetailAddress>;
  resolvConf?: string;
  /** print the commands instead of running them (reads still run) */
  dryRun?: boolean;
  print?: (line: string) => void;
  /** conflicts answered with a replacement before giving up: a pool full of squatters must not loop forever */
  maxConflicts?: number;
  /** the ARP prober; `['busybox', 'arping']` where no arping is on PATH */
  arping?: string[];
  arpingCount?: number;
  /** how long to wait for IPv6 DAD to finish (no carrier keeps an address tentative for ever) */
  dadTimeoutMs?: number;
  dadPollMs?: number;
  /** IP addresses whose path must survive the plan: the server's and the iSCSI portal's (plan.ts BootPath) */
  keep?: string[];
}

export interface ApplyResult {
  /** the detail as applied: conflicted addresses swapped for the server's replacements */
  detail: Detail;
  /** every command run (or printed, on a dry run), in order, across conflict rounds */
  ran: string[];
  /** what failed in the last round (earlier rounds' failures were retried with the replacements) */
  failures: StepFailure[];
  conflicts: FoundConflict[];
  /** the read-back after applying; absent when even reading failed (no iproute2 `ip`) */
  configured?: ConfiguredNetwork;
}

type Probe = { free: true } | { free: false; detail?: string } | { error: string; command: string };

/** RFC 5227 probe through arping; exported for the netns test. */
export async function arpProbe(exec: Exec, device: string, address: string, { arping = ['arping'], count = 2 }: { arping?: string[]; count?: number } = {}): Promise<Probe> {
  const [cmd, ...pre] = arping;
  const r = await exec(cmd!, [...pre, '-D', '-c', String(count), '-I', device, address], { timeoutMs: (count + 5) * 1000 });
  const reply = /reply from \S+ \[([0-9a-f:]+)\]/i.exec(r.stdout);
  if (r.exitCode === 0) return { free: true };
  if (r.exitCode === 1 && reply) return { free: false, detail: `answered by ${reply[1]}` };
  return { error: new ExecError(r).message, command: r.command };
}

const same = (a: string, b: string) => (canonicalPrefixed(a) ?? a) === (canonicalPrefixed(b) ?? b);

interface Round {
  ran: string[];
  failures: StepFailure[];
  found: FoundConflict[];
}

async function runSteps(steps: Step[], detail: Detail, o: ApplyOptions): Promise<Round> {
  const out: Round = { ran: [], failures: [], found: [] };
  const dad: NonNullable<Step['adds']>[] = [];
  const networkOf = (device: string, address: string) => detail.addresses.find((a) => a.device === device && same(a.address, address))?.network;
  for (const s of steps) {
    if (s.refused) {
      out.failures.push({ command: commandLine('ip', s.args), error: `not run: ${s.refused}` });
      continue;
    }
    if (s.adds?.family === 4) {
      const p = await arpProbe(o.exec, s.adds.device, bareAddress(s.adds.address), { arping: o.arping, count: o.arpingCount });
      if ('error' in p) {
        // no probe is no reason to stay off the network: add it, and say it went unchecked
        out.failures.push({ command: p.command, error: `${s.adds.address} on ${s.adds.device} was not checked for a conflict: ${p.error}` });
      } else if (!p.free) {
        const network = networkOf(s.adds.device, s.adds.address);
        out.found.push({ device: s.adds.device, address: s.adds.address, family: 4, how: 'arp-probe', ...(network ? { network } : {}), ...(p.detail ? { detail: p.detail } : {}) });
        continue;
      }
    }
    const line = commandLine('ip', s.args);
    out.ran.push(line);
    const r = await o.exec('ip', s.args, { timeoutMs: 15_000 });
    if (r.exitCode !== 0 || r.timedOut) out.failures.push({ command: line, error: new ExecError(r).message });
    else if (s.adds?.family === 6) dad.push(s.adds);
  }
  if (dad.length) {
    const { dadTimeoutMs = 5000, dadPollMs = 250 } = o;
    let left = dad;
    for (let waited = 0; ; waited += dadPollMs) {
      let now;
      try {
        now = parseIpAddr(await run(o.exec, 'ip', ['-j', 'addr', 'show']));
      } catch (err) {
        out.failures.push({ command: 'ip -j addr show', error: `IPv6 DAD not checked: ${(err as Error).message}` });
        break;
      }
      const state = (a: (typeof dad)[number]) => now.find((x) => x.device === a.device && same(x.address, a.address));
      for (const a of left.filter((a) => state(a)?.dadfailed)) {
        const network = networkOf(a.device, a.address);
        out.found.push({ device: a.device, address: a.address, family: 6, how: 'ipv6-dad', ...(network ? { network } : {}), detail: 'duplicate address detection failed (RFC 4862 §5.4.5)' });
      }
      left = left.filter((a) => state(a)?.tentative && !state(a)?.dadfailed);
      if (!left.length) break;
      if (waited >= dadTimeoutMs) {
        for (const a of left) out.failures.push({ command: `ip addr add ${a.address} dev ${a.device}`, error: `still tentative after ${dadTimeoutMs} ms: IPv6 DAD did not finish (no carrier on ${a.device}?)` });
        break;
      }
      await o.sleep(dadPollMs);
    }
  }
  return out;
}

export function resolvConfText(dns: readonly string[]): string {
  // resolvers read the first three (MAXNS, resolv.conf(5)); the order is the server's: its networks', in profile order
  return `# written by bootfarm-agent from the node's detail (GET /api/v1/agent/:uuid/detail)\n${dns.map((d) => `nameserver ${d}\n`).join('')}`;
}

/**
 * `ip -j route get` of each destination: the device, source address and gateway the kernel uses for it now. A
 * destination it cannot route is left out (nothing of it to protect); a host name is not resolved here.
 */
export async function routesTo(exec: Exec, destinations: readonly string[]): Promise<BootPath[]> {
  const out: BootPath[] = [];
  for (const d of destinations) {
    if (!canonicalPrefixed(`${d}/0`)) continue;
    const r = await exec('ip', ['-j', 'route', 'get', d], { timeoutMs: 5000 });
    if (r.exitCode !== 0) continue;
    out.push(...parseRouteGet(r.stdout, d));
  }
  return out;
}

/** `ip -j route get` output → BootPath (exported for tests) */
export function parseRouteGet(text: string, destination: string): BootPath[] {
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(rows)) return [];
  return rows
    .filter((r): r is Record<string, unknown> => !!r && typeof r === 'object' && typeof (r as Record<string, unknown>)['dev'] === 'string')
    .map((r) => ({
      destination,
      device: r['dev'] as string,
      ...(typeof r['prefsrc'] === 'string' ? { source: r['prefsrc'] } : {}),
      ...(typeof r['gateway'] === 'string' ? { via: r['gateway'] } : {}),
    }));
}

/**
 * What applying `detail` would change now, without changing anything: the `ip` commands the planner would run (its
 * refused steps left out: applying would not run them either, so they are no reason to apply again), `hostname X`
 * when the hostname differs, and `write <resolvConf>` when it does not hold the detail's DNS servers. Empty means the
 * kernel already has the detail's network, as far as it can be had without touching the boot path. Throws when the
 * state cannot be read (the caller then applies, which reports why).
 */
export async function pendingChanges(detail: Detail, o: Pick<ApplyOptions, 'exec' | 'keep' | 'resolvConf'>): Promise<string[]> {
  const { exec, resolvConf = '/etc/resolv.conf' } = o;
  const steps = planNetwork(detail, await readState(exec), await routesTo(exec, o.keep ?? []));
  const out = steps.filter((s) => !s.refused).map((s) => commandLine('ip', s.args));
  if (detail.hostname && (await exec('hostname', [])).stdout.trim() !== detail.hostname) out.push(commandLine('hostname', [detail.hostname]));
  if (detail.dns.length && (await readFile(resolvConf, 'utf8').catch(() => undefined)) !== resolvConfText(detail.dns)) out.push(`write ${resolvConf}`);
  return out;
}

export async function applyNetwork(detail: Detail, o: ApplyOptions): Promise<ApplyResult> {
  const { exec, maxConflicts = 3, resolvConf = '/etc/resolv.conf', print = () => {} } = o;
  let d = detail;
  const ran: string[] = [];
  const conflicts: FoundConflict[] = [];
  let failures: StepFailure[] = [];
  const read = async (): Promise<NetState | undefined> => {
    try {
      return await readState(exec);
    } catch (err) {
      failures.push({ command: 'ip -j', error: `reading the network state: ${(err as Error).message}` });
      return undefined;
    }
  };

  const bootPaths = await routesTo(exec, o.keep ?? []);

  rounds: for (let round = 0; ; round++) {
    failures = [];
    const state = await read();
    if (!state) break;
    const steps = planNetwork(d, state, bootPaths);
    if (o.dryRun) {
      for (const s of steps) {
        if (s.refused) {
          failures.push({ command: commandLine('ip', s.args), error: `not run: ${s.refused}` });
          print(`dry-run: refused: ${commandLine('ip', s.args)}: ${s.refused}`);
          continue;
        }
        ran.push(commandLine('ip', s.args));
        print(`dry-run: ${commandLine('ip', s.args)}`);
      }
      break;
    }
    const r = await runSteps(steps, d, o);
    ran.push(...r.ran);
    failures = r.failures;
    if (!r.found.length) break;
    for (const c of r.found) {
      conflicts.push(c);
      if (conflicts.length > maxConflicts) {
        failures.push({ command: `conflict on ${c.address}`, error: `gave up after ${maxConflicts} replaced addresses: ${c.address} on ${c.device} is in use too (${c.how})` });
        break rounds;
      }
      if (!o.onConflict) {
        failures.push({ command: `conflict on ${c.address}`, error: `${c.address} on ${c.device} is in use by another host (${c.how}) and nobody to ask for a replacement` });
        break rounds;
      }
      let repl: DetailAddress;
      try {
        repl = await o.onConflict(c);
      } catch (err) {
        failures.push({ command: `conflict on ${c.address}`, error: `asking the server for a replacement of ${c.address}: ${(err as Error).message}` });
        break rounds;
      }
      c.replacement = repl.address;
      d = { ...d, addresses: d.addresses.map((a) => (a.device === c.device && same(a.address, c.address) ? repl : a)) };
    }
  }

  if (d.hostname) {
    const cur = (await exec('hostname', [])).stdout.trim();
    if (cur !== d.hostname) {
      ran.push(commandLine('hostname', [d.hostname]));
      if (o.dryRun) print(`dry-run: ${commandLine('hostname', [d.hostname])}`);
      else await run(exec, 'hostname', [d.hostname]).catch((err: Error) => failures.push({ command: `hostname ${d.hostname}`, error: err.message }));
    }
  }
  if (d.dns.length) {
    if (o.dryRun) print(`dry-run: write ${resolvConf}: nameserver ${d.dns.join(', ')}`);
    else {
      try {
        // a whole file or the old one, never half of one: the resolver may read it at any moment
        await writeFile(`${resolvConf}.bootfarm`, resolvConfText(d.dns));
        await rename(`${resolvConf}.bootfarm`, resolvConf);
      } catch (err) {
        failures.push({ command: `write ${resolvConf}`, error: (err as Error).message });
      }
    }
  }
  const after = await read();
  return { detail: d, ran, failures, conflicts, ...(after ? { configured: configuredFrom(after, d) } : {}) };
}
