// make bench-api (issue 15 item 4): the agent API's hot paths through HTTP, before and after heartbeat coalescing,
// in the same run, on PGlite and on a real PostgreSQL (test/harness/postgres.ts). For each database two servers
// (bench/api/server.ts, own processes) get the same fleet of N nodes brought to active through the real calls
// (/ipxe, register, profile, installed); then, with C requests in flight:
//   heartbeats      flushSeconds 0 (each beat writes the node row and closes attempts: the previous behaviour)
//                   vs flushSeconds 2 (beats.ts: in memory, one statement per flush)
//   /ipxe/<uuid>    of nodes in stage-1 (each opens a boot attempt), against /boot.ipxe (no database) as the bound
// Prints req/s, p50 and p99 per case and the ratios. Rounds alternate between the two servers (shared machine).
//   node --import tsx bench/api/bench.ts [--nodes 300] [--concurrency 32] [--requests 4000] [--rounds 3] [--only pglite|postgres]
//     [--profile FILE]  a CPU profile of the coalescing server during the last round's heartbeats, to FILE-<db>.cpuprofile
//                       (Chrome DevTools or speedscope; bench/api/profile-summary.ts prints self time by package)
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { startPostgres } from '../../test/harness/postgres.ts';
import { sampleFacts } from '../../test/fakes/app.ts';

const { values } = parseArgs({
  options: { nodes: { type: 'string', default: '300' }, concurrency: { type: 'string', default: '32' }, requests: { type: 'string', default: '4000' }, rounds: { type: 'string', default: '3' }, only: { type: 'string' }, profile: { type: 'string' } },
});
const N = Number(values.nodes);
const C = Number(values.concurrency);
const R = Number(values.requests);
const ROUNDS = Number(values.rounds);

interface Srv {
  port: number;
  child: ChildProcess;
  toggleProfile(want: 'PROFILING' | 'PROFILED'): Promise<void>;
}

async function startServer(opts: { url?: string; flushSeconds: number }, profile?: string): Promise<Srv> {
  const env = profile ? { ...process.env, BENCH_PROFILE: profile } : process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/api/server.ts', JSON.stringify(opts)], { stdio: ['pipe', 'pipe', 'inherit'], env });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`bench server exited ${c}`)));
    lines.on('line', (l) => {
      const m = /^READY (\d+)$/.exec(l);
      if (m) resolve(Number(m[1]));
    });
  });
  /** SIGUSR2 toggles the server's profiler (bench/api/server.ts); resolves when it says it did */
  const toggleProfile = (want: 'PROFILING' | 'PROFILED') =>
    new Promise<void>((resolve) => {
      const on = (l: string) => l === want && (lines.off('line', on), resolve());
      lines.on('line', on);
      child.kill('SIGUSR2');
    });
  return { port, child, toggleProfile };
}

const agent = new Agent({ keepAlive: true, maxSockets: C * 2 });
function call(port: number, method: string, path: string, { token, body }: { token?: string; body?: unknown } = {}): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ agent, host: '127.0.0.1', port, method, path, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

const uuidOf = (i: number) => `be0c0000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const macOf = (i: number) => `52:54:00:be:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

async function pool<T>(items: T[], n: number, fn: (x: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

/** N nodes to active; returns their compute credentials, and N more in stage-1 (their /ipxe opens attempts) */
async function seed(port: number): Promise<{ active: { uuid: string; cred: string }[]; stage1: string[] }> {
  const active: { uuid: string; cred: string }[] = [];
  await pool(Array.from({ length: N }, (_, i) => i), 16, async (i) => {
    const uuid = uuidOf(i);
    const s = await call(port, 'GET', `/ipxe/${uuid}?mac=${macOf(i)}`);
    const token = /bootfarm\.token=(\S+)/.exec(s.text)?.[1];
    if (!token) throw new Error(`no stage-1 token for ${uuid}: ${s.text.slice(0, 200)}`);
    const reg = await call(port, 'POST', '/api/v1/agent/register', { token, body: { facts: sampleFacts(uuid, { macs: [macOf(i)], serial: `BENCH-${i}` }) } });
    if (reg.status >= 300) throw new Error(`register ${uuid}: ${reg.status} ${reg.text}`);
    const prof = await call(port, 'GET', `/api/v1/agent/${uuid}/profile`, { token });
    const cred = /bootfarm\.token=(\S+)/.exec(JSON.parse(prof.text).cmdline)![1]!;
    const inst = await call(port, 'POST', `/api/v1/agent/${uuid}/installed`, { token: cred, body: { kernelDigest: 'a'.repeat(64), initrdDigest: 'b'.repeat(64) } });
    if (inst.status >= 300) throw new Error(`installed ${uuid}: ${inst.status} ${inst.text}`);
    active.push({ uuid, cred });
  });
  return { active, stage1: Array.from({ length: N }, (_, i) => uuidOf(N + i)) };
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}
async function load(total: number, fn: (i: number) => Promise<{ status: number }>): Promise<Result> {
  const lat: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  await pool(Array.from({ length: total }, (_, i) => i), C, async (i) => {
    const s = performance.now();
    const r = await fn(i);
    lat.push(performance.now() - s);
    if (r.status >= 300) errors++;
  });
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rps: total / secs, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]!, errors };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summary = (rs: Result[]) => ({ rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), errors: rs.reduce((n, r) => n + r.errors, 0) });
const fmt = (r: ReturnType<typeof summary>) => `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(1).padStart(6)} ms  p99 ${r.p99.toFixed(1).padStart(6)} ms${r.errors ? `  ${r.errors} errors` : ''}`;

async function benchOn(name: string, url: (tag: string) => Promise<string | undefined>) {
  const before = await startServer({ url: await url('before'), flushSeconds: 0 });
  const profile = values.profile ? `${values.profile}-${name.toLowerCase()}.cpuprofile` : undefined;
  const after = await startServer({ url: await url('after'), flushSeconds: 2 }, profile);
  try {
    const t0 = performance.now();
    const [sb, sa] = [await seed(before.port), await seed(after.port)];
    console.log(`${name}: ${N} nodes to active on each server in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const res: Record<string, Result[]> = { hbBefore: [], hbAfter: [], ipxe: [], bootIpxe: [] };
    for (let round = 0; round < ROUNDS; round++) {
      res.hbBefore!.push(await load(R, (i) => { const n = sb.active[i % N]!; return call(before.port, 'POST', `/api/v1/agent/${n.uuid}/heartbeat`, { token: n.cred, body: { uptimeSeconds: i, kernelDigest: 'a'.repeat(64) } }); }));
      const profiled = profile && round === ROUNDS - 1;
      if (profiled) await after.toggleProfile('PROFILING');
      res.hbAfter!.push(await load(R, (i) => { const n = sa.active[i % N]!; return call(after.port, 'POST', `/api/v1/agent/${n.uuid}/heartbeat`, { token: n.cred, body: { uptimeSeconds: i, kernelDigest: 'a'.repeat(64) } }); }));
      if (profiled) {
        await after.toggleProfile('PROFILED');
        console.log(`${name}: profile of the last round's coalesced heartbeats in ${profile}`);
      }
      res.ipxe!.push(await load(Math.floor(R / 2), (i) => call(after.port, 'GET', `/ipxe/${sa.stage1[i % N]}?mac=${macOf(N + (i % N))}`)));
      res.bootIpxe!.push(await load(R, () => call(after.port, 'GET', '/boot.ipxe')));
    }
    const s = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, summary(v)])) as Record<string, ReturnType<typeof summary>>;
    console.log(`${name}, ${C} in flight, median of ${ROUNDS} rounds:`);
    console.log(`  heartbeat, written one by one (before)  ${fmt(s.hbBefore!)}`);
    console.log(`  heartbeat, coalesced (after)            ${fmt(s.hbAfter!)}`);
    console.log(`    after/before: ${(s.hbAfter!.rps / s.hbBefore!.rps).toFixed(2)}× req/s, p99 ${(s.hbAfter!.p99 / s.hbBefore!.p99).toFixed(2)}×`);
    console.log(`  /ipxe/<uuid> (stage-1, opens an attempt) ${fmt(s.ipxe!)}`);
    console.log(`  /boot.ipxe (no database)                ${fmt(s.bootIpxe!)}`);
    console.log(`    /ipxe / boot.ipxe: ${(s.ipxe!.rps / s.bootIpxe!.rps).toFixed(3)}×`);
  } finally {
    for (const s of [before, after]) {
      s.child.stdin!.end();
      await new Promise((r) => s.child.once('exit', r));
    }
  }
}

if (values.only !== 'postgres') await benchOn('PGlite', async () => undefined);
if (values.only !== 'pglite') {
  const pg = await startPostgres();
  try {
    await benchOn('PostgreSQL', (tag) => pg.createDatabase(`bench_${tag}`));
  } finally {
    await pg.stop();
  }
}
agent.destroy();
