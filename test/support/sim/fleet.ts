// A rack of simulated nodes (node.ts) sharing one DHCP client socket, started over a spread like a rack powering
// on. Reusable: the HA rack (test/e2e/ha) runs 200 of them; the boot-storm work (issue 15) can run more.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createDhcpClient } from './dhcp.ts';
import { runSimNode, type SimNodeReport, type SimNodeSpec, type SimPhase } from './node.ts';

const exec = promisify(execFile);

export interface SimFleetOptions {
  count: number;
  /** distinguishes fleets of different runs/tests: 0–255, in the UUIDs and MACs */
  fleetId?: number;
  /** the interface the leased addresses go on (inside the simulator's namespace) */
  iface: string;
  /** prefix length for the leased addresses when the lease gives no mask */
  prefixLen?: number;
  /** node i starts at i * spreadMs / count */
  spreadMs?: number;
  images?: 'head' | 'full';
  backoff?: { baseMs: number; capMs: number };
  log?: (line: string) => void;
  /** called once per node that gave up (its report says why) */
  onFailed?: (rep: SimNodeReport) => void;
}

export interface SimFleet {
  specs: SimNodeSpec[];
  /** every node's report so far (live objects) */
  reports(): SimNodeReport[];
  counts(): Record<SimPhase, number>;
  /** stops the heartbeats and resolves with the final reports */
  stop(): Promise<SimNodeReport[]>;
}

const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');

export function simSpec(index: number, fleetId = 0x5a): SimNodeSpec {
  return {
    index,
    uuid: `${hex(fleetId, 2)}51a000-0000-4000-8000-${hex(index, 12)}`,
    mac: `52:54:00:${hex(fleetId, 2)}:${hex(index >> 8, 2)}:${hex(index & 255, 2)}`,
    serial: `SIM-${hex(fleetId, 2)}-${String(index).padStart(5, '0')}`,
    manufacturer: 'Bootfarm Labs',
    product: 'Sim-1U',
    platform: 'pcbios',
  };
}

const maskBits = (mask: string) => mask.split('.').reduce((n, o) => n + (Number(o).toString(2).match(/1/g)?.length ?? 0), 0);

export async function startSimFleet({ count, fleetId = 0x5a, iface, prefixLen = 24, spreadMs = 30_000, images = 'head', backoff, log, onFailed }: SimFleetOptions): Promise<SimFleet> {
  const dhcp = await createDhcpClient();
  const specs = Array.from({ length: count }, (_, i) => simSpec(i, fleetId));
  const reports: SimNodeReport[] = [];
  let stopped = false;
  const sleepers = new Set<() => void>();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve();
      const done = () => (clearTimeout(t), sleepers.delete(done), resolve());
      const t = setTimeout(done, ms);
      sleepers.add(done);
    });
  const runs = specs.map(async (spec, i) => {
    await sleep(Math.floor((i * spreadMs) / count));
    const rep = await runSimNode(spec, {
      dhcp,
      onReport: (r) => (reports[i] = r),
      addAddress: async (ip, mask) => {
        await exec('ip', ['addr', 'add', `${ip}/${mask ? maskBits(mask) : prefixLen}`, 'dev', iface]).catch((e: { stderr?: string }) => {
          if (!/File exists/.test(e.stderr ?? '')) throw e;
        });
      },
      sleep,
      now: () => Date.now(),
      images,
      stopped: () => stopped,
      log,
      backoff,
    });
    if (rep.phase === 'failed') onFailed?.(rep);
  });
  return {
    specs,
    reports: () => reports.filter(Boolean),
    counts() {
      const c = { dhcp: 0, ipxe: 0, stage1: 0, registered: 0, profile: 0, installed: 0, active: 0, failed: 0 } as Record<SimPhase, number>;
      for (const r of reports) if (r) c[r.phase]++;
      return c;
    },
    async stop() {
      stopped = true;
      for (const s of [...sleepers]) s();
      await Promise.all(runs);
      dhcp.close();
      return reports;
    },
  };
}
