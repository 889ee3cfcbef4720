// `make bench-dhcp`: completed DORA exchanges per second, leases persisted, for our server, dnsmasq
// (--no-ping, lease file) and kea-dhcp4 (memfile), in the same two namespaces with the same load
// generator (loadgen.ts, speaking as a relay). Prints a table and the ratios; JSON with --json.
//
//   [server ns] bfb<id> 10.88.0.1/24 ── veth ── 10.88.0.2/24 bfl<id> [load ns] (+ giaddr 10.89.0.1/16)
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Lab, type Proc, hasCommand, ip, repoRoot } from '../../test/support/dhcp/netns.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '20000' },
    window: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '20' },
    only: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
  },
});

const lab = new Lab();
const dir = mkdtempSync(join(tmpdir(), 'bfdhcp-bench-'));
const SIF = `bfb${lab.id}`;
const LIF = `bfl${lab.id}`;
const SERVER = '10.88.0.1';
const GIADDR = '10.89.0.1';
const RANGE = ['10.89.1.0', '10.89.255.254'] as const;
const LEASE = 3600;

interface Result {
  started: number;
  completed: number;
  failed: number;
  naks: number;
  seconds: number;
  rate: number;
  p50ms: number;
  p99ms: number;
  /** server CPU (user+system) per 1000 completed exchanges: independent of what else runs on the machine */
  cpuMsPer1k?: number;
}

const leaseDir = () => {
  const d = join(dir, 'leases');
  mkdirSync(d, { recursive: true });
  return d;
};

/** user+system CPU of a process in ms (/proc/PID/stat fields 14 and 15, in clock ticks of 10 ms) */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitReady(p: Proc, pred: (l: string) => boolean, ms = 20_000): Promise<void> {
  await p.waitFor(pred, ms);
  await sleep(300);
}

/** The DHCP config every bootfarm target runs with, plus what its lease store needs. */
function writeConfig(name: string, extra: Record<string, unknown>): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      mode: 'full',
      interface: SIF,
      serverIp: SERVER,
      httpBase: `http://${SERVER}:8080`,
      pools: [{ subnet: '10.89.0.0/16', range: { start: RANGE[0], end: RANGE[1] } }],
      leaseSeconds: LEASE,
      logLevel: 'warn',
      ...extra,
    }),
  );
  return file;
}

async function bootfarm(S: string, fsync: boolean): Promise<Proc> {
  const file = writeConfig(`bootfarm-${fsync}`, { leaseFile: join(leaseDir(), `bootfarm-${fsync}.jsonl`), leaseFsync: fsync });
  // BFDHCP_PROF=DIR: write a V8 CPU profile of our server there
  const prof = process.env.BFDHCP_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BFDHCP_PROF}`] : [];
  const p = lab.run(S, ['node', ...prof, '--import', 'tsx', join(repoRoot, 'test/support/dhcp/serve.ts'), file]);
  await waitReady(p, (l) => l === '{"msg":"ready"}');
  return p;
}

// The product's own path: leases in the database (PGlite in a fresh data dir), the registry as backend. It lives
// in server/ (boot/ may not import it); the bench only starts it as a process.
async function bootfarmDb(S: string): Promise<Proc> {
  const file = writeConfig('bootfarm-db', { dataDir: mkdtempSync(join(leaseDir(), 'pglite-')) });
  const p = lab.run(S, ['node', '--import', 'tsx', join(repoRoot, 'bench/dhcp-serve.ts'), file]);
  await waitReady(p, (l) => l === '{"msg":"ready"}', 120_000);
  return p;
}

const targets: Record<string, (S: string) => Promise<Proc>> = {
  // the product: leases in PGlite through server/store/leases.ts
  'bootfarm-db': bootfarmDb,
  // append-only lease file, fdatasync per group-committed batch
  bootfarm: (S) => bootfarm(S, true),
  // the same file written without fsync: what kea's memfile does
  'bootfarm-nosync': (S) => bootfarm(S, false),
  async dnsmasq(S) {
    const p = lab.run(S, [
      'dnsmasq',
      '--no-daemon',
      '--conf-file=/dev/null',
      '--port=0',
      '--no-ping',
      '--no-resolv',
      `--interface=${SIF}`,
      '--bind-interfaces',
      `--dhcp-range=${RANGE[0]},${RANGE[1]},255.255.0.0,${LEASE}`,
      `--dhcp-leasefile=${join(leaseDir(), 'dnsmasq.leases')}`,
      '--dhcp-lease-max=200000',
      '--dhcp-authoritative',
      `--pid-file=${join(dir, 'dnsmasq.pid')}`,
      '--log-facility=-',
      '--quiet-dhcp',
    ]);
    await waitReady(p, (l) => /DHCP, IP range/.test(l));
    return p;
  },
  async kea(S) {
    const conf = join(dir, 'kea.json');
    writeFileSync(
      conf,
      JSON.stringify({
        Dhcp4: {
          'interfaces-config': { interfaces: [SIF], 'dhcp-socket-type': 'udp' },
          'lease-database': { type: 'memfile', persist: true, name: join(leaseDir(), 'kea-leases4.csv'), 'lfc-interval': 0 },
          'valid-lifetime': LEASE,
          subnet4: [{ id: 1, subnet: '10.89.0.0/16', pools: [{ pool: `${RANGE[0]} - ${RANGE[1]}` }] }],
          loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'WARN' }],
        },
      }),
    );
    const p = lab.run(S, ['env', `KEA_PIDFILE_DIR=${dir}`, `KEA_LOCKFILE_DIR=${dir}`, 'kea-dhcp4', '-c', conf]);
    await sleep(1500); // kea logs nothing at WARN once it listens
    return p;
  },
};

async function main(): Promise<void> {
  const S = lab.ns('b');
  const L = lab.ns('l');
  lab.link({ ns: S, name: SIF, addr: `${SERVER}/24` }, { ns: L, name: LIF, addr: '10.88.0.2/24' });
  ip('-n', L, 'addr', 'add', `${GIADDR}/16`, 'dev', LIF);
  ip('-n', S, 'route', 'add', '10.89.0.0/16', 'via', '10.88.0.2');

  const names = (values.only ? values.only.split(',') : Object.keys(targets)).filter((n) => {
    const bin = ({ bootfarm: 'node', 'bootfarm-nosync': 'node', 'bootfarm-db': 'node', dnsmasq: 'dnsmasq', kea: 'kea-dhcp4' } as Record<string, string>)[n];
    if (!bin || !hasCommand(bin)) {
      console.error(`skipping ${n}: ${bin ?? 'unknown target'} not installed`);
      return false;
    }
    return true;
  });
  // rounds are interleaved (a b c, a b c, …) and the median taken: the machine is shared, and a burst of
  // someone else's work should not decide a comparison
  const rounds = Math.max(1, Math.min(Number(values.rounds), 9));
  const all: Record<string, Result[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const server = await targets[name]!(S);
      const cpu0 = cpuMs(server.child.pid);
      const gen = lab.run(L, ['node', '--import', 'tsx', join(repoRoot, 'bench/dhcp/loadgen.ts'), '--server', SERVER, '--giaddr', GIADDR, '--count', values.count!, '--window', values.window!, '--seconds', values.seconds!]);
      const line = await gen.waitFor((l) => l.startsWith('{"started"'), (Number(values.seconds) + 15) * 1000);
      const r = JSON.parse(line) as Result;
      r.cpuMsPer1k = Math.round(((cpuMs(server.child.pid) - cpu0) / Math.max(1, r.completed)) * 1000);
      (all[name] ??= []).push(r);
      await gen.stop();
      await server.stop();
      rmSync(join(dir, 'leases'), { recursive: true, force: true }); // every round starts with empty lease files
      if (!values.json) console.error(`round ${round + 1} ${name}: ${JSON.stringify(r)}`);
    }
  }
  const results: Record<string, Result> = {};
  for (const [n, rs] of Object.entries(all)) results[n] = [...rs].sort((a, b) => a.rate - b.rate)[Math.floor(rs.length / 2)]!;
  if (values.json) {
    console.log(JSON.stringify(results));
    return;
  }
  console.log(`\nDORA exchanges/s, leases persisted, window ${values.window}, up to ${values.count} exchanges or ${values.seconds} s each; median of ${rounds} rounds`);
  console.log('server            completed  failed   DORA/s   p50 ms   p99 ms   server CPU ms / 1000 DORA');
  for (const [n, r] of Object.entries(results)) {
    console.log(`${n.padEnd(17)} ${String(r.completed).padStart(9)} ${String(r.failed).padStart(7)} ${String(r.rate).padStart(8)} ${String(r.p50ms).padStart(8)} ${String(r.p99ms).padStart(8)} ${String(r.cpuMsPer1k).padStart(8)}`);
  }
  for (const [mine, m] of Object.entries(results)) {
    if (!mine.startsWith('bootfarm')) continue;
    for (const [n, r] of Object.entries(results)) {
      if (n.startsWith('bootfarm') || r.rate <= 0) continue;
      console.log(`${mine} / ${n}: ${(m.rate / r.rate).toFixed(2)}× the rate, ${((m.cpuMsPer1k ?? NaN) / (r.cpuMsPer1k ?? NaN)).toFixed(2)}× the CPU per exchange`);
    }
  }
}

try {
  await main();
} finally {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
