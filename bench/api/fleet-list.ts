// make bench-fleet (issue 15 item 5): with 10,000 registered nodes, the node list and the dashboard's fleet page
// over HTTP should answer in < 200 ms, and the server's memory per 1,000 nodes is reported. A benchmark, not a
// timed test: the machine is shared and its load is printed with the numbers. For PGlite and a real PostgreSQL
// (test/harness/postgres.ts), one server each (bench/api/server.ts, its own process, the real app) writes N
// nodes with their interfaces, facts and events (bench/api/fleet-seed.ts), then with C requests in flight and a
// viewer token:
//   GET /api/v1/nodes?limit=100             first page          GET /ui                      fleet page, first
//   GET /api/v1/nodes?limit=100&offset=N-200 deep page (OFFSET)  GET /ui?after=<N-101>        fleet page, last (keyset)
//   GET /api/v1/nodes?state=failed&label=rack=r4   filtered      GET /ui?state=failed&label=rack=r4
//   GET /api/v1/nodes                        the default page (1,000 rows)
// each against GET /boot.ipxe (no database, the same HTTP stack) measured in the same run. Prints p50/p99, the
// ratio to /boot.ipxe, whether p99 < 200 ms, and the server's RSS and heap before seeding, after, per 1,000 nodes
// and after the load.
//   node --import tsx bench/api/fleet-list.ts [--nodes 10000] [--requests 100] [--concurrency 1] [--only pglite|postgres]
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Agent, request } from 'node:http';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startPostgres } from '../../test/harness/postgres.ts';
import { TOKENS } from '../../test/fakes/app.ts';
import { fleetUuid, STATES } from './fleet-seed.ts';

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '10000' }, requests: { type: 'string', default: '100' }, concurrency: { type: 'string', default: '1' }, only: { type: 'string' } } });
const N = Number(values.nodes);
const R = Number(values.requests);
const C = Number(values.concurrency);
const TARGET_MS = 200;

type Mem = { rss: number; heap: number };
interface Srv {
  port: number;
  child: ChildProcess;
  seedMs: number;
  mem: Record<string, Mem>;
  memNow(): Promise<Mem>;
}

async function startServer(url: string | undefined): Promise<Srv> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/api/server.ts', JSON.stringify({ url, flushSeconds: 2, seed: N })], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const mem: Record<string, Mem> = {};
  let seedMs = 0;
  const waiters: ((m: Mem) => void)[] = [];
  lines.on('line', (l) => {
    const m = /^MEM (\w+) (\d+) (\d+)$/.exec(l);
    if (m) {
      const v = { rss: Number(m[2]), heap: Number(m[3]) };
      if (m[1] === 'now') waiters.shift()?.(v);
      else mem[m[1]!] = v;
    }
    const s = /^SEEDED \d+ (\d+)$/.exec(l);
    if (s) seedMs = Number(s[1]);
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (c) => reject(new Error(`bench server exited ${c} before READY`)));
    lines.on('line', (l) => {
      const m = /^READY (\d+)$/.exec(l);
      if (m) resolve(Number(m[1]));
    });
  });
  const memNow = () => new Promise<Mem>((resolve) => (waiters.push(resolve), child.kill('SIGUSR1')));
  return { port, child, seedMs, mem, memNow };
}

const agent = new Agent({ keepAlive: true, maxSockets: C * 2 });
function get(port: number, path: string, token?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: '127.0.0.1', port, method: 'GET', path, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function load(port: number, path: string, token?: string): Promise<{ p50: number; p99: number; max: number }> {
  for (let i = 0; i < 5; i++) await get(port, path, token); // warm-up: the first request compiles the route's code
  const lat: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: C }, async () => {
    while (next++ < R) {
      const t = performance.now();
      const r = await get(port, path, token);
      lat.push(performance.now() - t);
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text.slice(0, 200)}`);
    }
  }));
  lat.sort((a, b) => a - b);
  return { p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.min(lat.length - 1, Math.floor(lat.length * 0.99))]!, max: lat.at(-1)! };
}

// what each case must return, checked once before it is timed: a fast wrong answer is not a result
const failedInR4 = Array.from({ length: N }, (_, i) => i).filter((i) => STATES[i % STATES.length] === 'failed' && i % 20 === 4).length;
const cases: { name: string; path: string; check(text: string): string | null }[] = [
  { name: 'API list, first page (100)', path: '/api/v1/nodes?limit=100', check: (t) => (JSON.parse(t).count === 100 ? null : 'not 100 nodes') },
  { name: `API list, deep page (offset ${N - 200})`, path: `/api/v1/nodes?limit=100&offset=${N - 200}`, check: (t) => (JSON.parse(t).nodes[0]?.uuid === fleetUuid(N - 200) ? null : `does not start at node ${N - 200}`) },
  { name: 'API list, state=failed label rack=r4', path: '/api/v1/nodes?state=failed&label=rack=r4&limit=100', check: (t) => (JSON.parse(t).count === Math.min(100, failedInR4) ? null : `not ${Math.min(100, failedInR4)} nodes`) },
  { name: 'API list, default page (1,000)', path: '/api/v1/nodes', check: (t) => (JSON.parse(t).count === Math.min(1000, N) ? null : 'not 1,000 nodes') },
  { name: 'UI fleet page, first', path: '/ui', check: (t) => ((t.match(/<tr data-uuid="/g)?.length ?? 0) === 100 ? null : 'not 100 rows') },
  { name: 'UI fleet page, last (keyset)', path: `/ui?after=${fleetUuid(N - 101)}`, check: (t) => ((t.match(/<tr data-uuid="/g)?.length ?? 0) === 100 && !t.includes('id="next"') ? null : 'not the 100 rows of the last page') },
  { name: 'UI fleet page, state=failed rack=r4', path: '/ui?state=failed&label=rack%3Dr4', check: (t) => (t.includes(`${failedInR4} matching`) ? null : `no "${failedInR4} matching"`) },
];

const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
const ms = (x: number) => `${x.toFixed(1).padStart(6)} ms`;

async function benchOn(name: string, url: string | undefined) {
  const srv = await startServer(url);
  try {
    console.log(`${name}: ${N} nodes (2 interfaces, 1 facts document, 4 events each) written in ${(srv.seedMs / 1000).toFixed(1)} s; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    const base = await load(srv.port, '/boot.ipxe');
    console.log(`${name}, ${R} requests each, ${C} in flight:`);
    console.log(`  ${'/boot.ipxe (no database)'.padEnd(40)} p50 ${ms(base.p50)}  p99 ${ms(base.p99)}`);
    for (const c of cases) {
      const first = await get(srv.port, c.path, TOKENS.viewer);
      const wrong = first.status === 200 ? c.check(first.text) : `${first.status} ${first.text.slice(0, 200)}`;
      if (wrong) throw new Error(`${name} GET ${c.path}: ${wrong}`);
      const r = await load(srv.port, c.path, TOKENS.viewer);
      console.log(`  ${c.name.padEnd(40)} p50 ${ms(r.p50)}  p99 ${ms(r.p99)}  max ${ms(r.max)}  ${(r.p50 / base.p50).toFixed(0).padStart(4)}× boot.ipxe  ${r.p99 < TARGET_MS ? `< ${TARGET_MS} ms` : `MISSES ${TARGET_MS} ms`}  ${(first.text.length / 1024).toFixed(0)} KiB`);
    }
    const after = await srv.memNow();
    const { before, seeded } = srv.mem as { before: Mem; seeded: Mem };
    const per = (k: keyof Mem) => mb(((seeded[k] - before[k]) / N) * 1000);
    console.log(`  server memory (after GC): before seeding rss ${mb(before.rss)} heap ${mb(before.heap)}; ${N} nodes rss ${mb(seeded.rss)} heap ${mb(seeded.heap)}; per 1,000 nodes rss ${per('rss')} heap ${per('heap')}; after the load rss ${mb(after.rss)} heap ${mb(after.heap)}`);
  } finally {
    srv.child.stdin!.end();
    await new Promise((r) => srv.child.once('exit', r));
  }
}

if (values.only !== 'postgres') await benchOn('PGlite', undefined);
if (values.only !== 'pglite') {
  const pg = await startPostgres();
  try {
    await benchOn('PostgreSQL', await pg.createDatabase('bench_fleet'));
  } finally {
    await pg.stop();
  }
}
agent.destroy();
