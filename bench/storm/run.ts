// make storm N=1000 (issue 15 items 1 and 6): N simulated machines boot through bootfarm's whole protocol stack,
// and the same run measures how fast this machine moves the same bytes at all.
//
//   namespace bfst-<pid>-s                                   namespace bfst-<pid>-c
//   eth0 10.66.0.1/16 ──────────────── veth ─────────────── eth0 (one leased address per simulated node)
//     bootfarm serve (its own process: CPU and RSS         bench/storm/sim.ts: N nodes from their PXE ROMs
//     are the server's alone), DHCP full mode :67,           (test/support/sim), at most C at once
//     TFTP :69, HTTP :8080; PGlite in-process, or
//     PostgreSQL / Ceph RGW on the namespace's 127.0.0.1 (test/e2e/inns.ts)
//   then bench/storm/bound.ts serve                         bench/storm/bound.ts fetch (same bytes, same C)
//
// Real artefacts: the iPXE binaries from Debian's ipxe package (TFTP), and the stage-1 and compute images of
// `make images` (build/images, or --images DIR). Without them: files of the same sizes as the last `make images`
// (a bzImage header and a newc archive padded with random bytes), and the report says so.
// Prints the table (report.ts), writes out/storm-<db>-<store>-<N>.{json,svg}; --publish also copies them to
// bench/storm/results/ (committed, linked from BENCHMARKS.md).
//   node --import tsx bench/storm/run.ts [--nodes 1000] [--concurrency 100] [--db pglite|pg] [--store local|s3]
//        [--images DIR|synthetic] [--image-scale 1] [--heartbeat-seconds 30] [--hold-seconds 0] [--efi-tftp ovmf|pxe-rom]
//        [--timeout-minutes 60] [--out bench/storm/out] [--publish] [--quiet]
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { must, onSignalCleanup, runAsync, startManaged, waitUntil, tail, type Managed } from '../../test/e2e/proc.ts';
import { deleteNamespace } from '../../test/e2e/netns.ts';
import { startBootfarm, startInNetns, type ServerProc } from '../../test/e2e/services.ts';
import { newcCpio, tinyBzImage } from '../../test/fakes/boot-files.ts';
import { requireCommand, requireFiles } from '../../test/harness/require.ts';
import { buildReport, renderSvg, renderTable } from './report.ts';
import type { StormSample } from './sim.ts';
import type { SimNodeReport } from '../../test/support/sim/node.ts';

const repoRoot = resolve(import.meta.dirname, '../..');
const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '100' },
    db: { type: 'string', default: 'pglite' },
    store: { type: 'string', default: 'local' },
    images: { type: 'string' },
    'image-scale': { type: 'string', default: '1' },
    'heartbeat-seconds': { type: 'string', default: '30' },
    'hold-seconds': { type: 'string', default: '0' },
    // the EFI nodes' TFTP client: 'ovmf' (edk2's: size probe, windowsize 4, 4 s fixed timeout) or 'pxe-rom'
    // (lockstep, 1 s doubling: what runs before 2026-12-03 used for every node)
    'efi-tftp': { type: 'string', default: 'ovmf' },
    'timeout-minutes': { type: 'string', default: '60' },
    out: { type: 'string', default: join(repoRoot, 'bench/storm/out') },
    publish: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});
const N = Number(values.nodes);
const C = Number(values.concurrency);
const db = values.db as 'pglite' | 'pg';
const store = values.store as 's3' | 'local';
if (!['pglite', 'pg'].includes(db) || !['local', 's3'].includes(store) || !(N > 0) || !(C > 0)) throw new Error('usage: run.ts --nodes N --concurrency C --db pglite|pg --store local|s3');
const efiTftp = values['efi-tftp'] as 'ovmf' | 'pxe-rom';
if (!['ovmf', 'pxe-rom'].includes(efiTftp)) throw new Error('usage: --efi-tftp ovmf|pxe-rom');
if (N > 60_000) throw new Error('at most 60,000 nodes: the simulator numbers MACs and the pool holds 10.66.1.0–10.66.254.255');
const say = (l: string) => values.quiet || process.stderr.write(`${l}\n`);
requireCommand('ip', 'iproute2');
requireFiles('apt-get install ipxe (the iPXE binaries the PXE ROMs fetch by TFTP)', '/usr/lib/ipxe/undionly.kpxe', '/usr/lib/ipxe/snponly.efi');

// the sizes of the last `make images` on this machine (images/README.md): used when build/images is absent
const REAL_SIZES = { stage1: { kernel: 8_247_232, initrd: 73_811_578 }, compute: { kernel: 8_247_232, initrd: 56_818_582 } };
const SERVER_IP = '10.66.0.1';
const HTTP = `http://${SERVER_IP}:8080`;
const ADMIN = `bfstorm-admin-${randomBytes(8).toString('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'bfstorm-'));
const tag = `bfst-${process.pid}`;
const S = `${tag}-s`;
const Cns = `${tag}-c`;
const namespaces: string[] = [];
const unhook = onSignalCleanup(() => namespaces.forEach(deleteNamespace));
const procs: Managed[] = [];
const stops: (() => Promise<void>)[] = [];

function imagesDir(): { dir: string; source: string } {
  const given = values.images ?? (existsSync(join(repoRoot, 'build/images/stage1/manifest.json')) ? join(repoRoot, 'build/images') : 'synthetic');
  if (given !== 'synthetic') {
    requireFiles('make images (or --images DIR with stage1/ and compute/)', join(given, 'stage1'), join(given, 'compute'));
    return { dir: given, source: `real (${given})` };
  }
  const scale = Number(values['image-scale']);
  const out = join(dir, 'images');
  for (const [name, sz] of Object.entries(REAL_SIZES)) {
    const d = join(out, name);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'vmlinuz'), tinyBzImage(Math.round(sz.kernel * scale)));
    const want = Math.round(sz.initrd * scale);
    const cpio = newcCpio({ init: randomBytes(Math.max(1024, want - 1024)) });
    writeFileSync(join(d, 'initrd.img'), Buffer.concat([cpio, Buffer.alloc(Math.max(0, want - cpio.length))]));
    writeFileSync(join(d, 'cmdline'), `console=ttyS0 bootfarm.mode=${name}`);
  }
  return { dir: out, source: scale === 1 ? 'synthetic files of the real sizes (no build/images on this machine)' : `synthetic, ${scale}× the real sizes` };
}

function network() {
  for (const ns of [S, Cns]) {
    must(['ip', 'netns', 'add', ns]);
    namespaces.push(ns);
    must(['ip', 'link', 'set', 'lo', 'up'], { netns: ns });
  }
  must(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', Cns], { netns: S });
  must(['ip', 'addr', 'add', `${SERVER_IP}/16`, 'dev', 'eth0'], { netns: S });
  for (const ns of [S, Cns]) must(['ip', 'link', 'set', 'eth0', 'up'], { netns: ns });
  // no address until the first lease: the PXE ROM's broadcasts leave from 0.0.0.0
  must(['ip', 'route', 'add', '255.255.255.255/32', 'dev', 'eth0'], { netns: Cns });
  // 1,000 nodes keep ~2,000 connections and sockets in TIME_WAIT; the defaults are fine, the backlog is not
  must(['sysctl', '-qw', 'net.core.somaxconn=4096'], { netns: S });
}

/** RSS (bytes) and CPU seconds of a process from /proc */
function procSample(pid: number): { rss: number; cpu: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { rss, cpu: (Number(f[11]) + Number(f[12])) / 100 };
  } catch {
    return undefined;
  }
}

async function pushImage(srv: ServerProc, d: string, name: string) {
  const r = await runAsync([process.execPath, '--import', 'tsx', 'test/e2e/inns.ts', 'image-push', HTTP, ADMIN, 'push', d, '--name', name, '--version', 'storm-1', '--channel', 'prod', '--force'], { netns: S, timeoutMs: 600_000, cwd: repoRoot });
  if (r.status !== 0) throw new Error(`image push ${name} failed (${r.status}): ${r.stderr || r.stdout}\n${tail('server', srv.proc.output(), 30)}`);
}

async function main() {
  const t00 = Date.now();
  const images = imagesDir();
  network();
  let dbUrl: string | undefined;
  let s3: Record<string, unknown> | undefined;
  if (db === 'pg') {
    const pg = await startInNetns<{ url: string }>('postgres', { netns: S, dir, repoRoot });
    stops.push(pg.stop);
    dbUrl = pg.info.url;
  }
  if (store === 's3') {
    const ceph = await startInNetns<{ endpoint: string; region: string; accessKeyId: string; secretAccessKey: string }>('ceph', { netns: S, dir, repoRoot });
    stops.push(ceph.stop);
    s3 = { kind: 's3', endpoint: ceph.info.endpoint, region: ceph.info.region, bucket: 'bootfarm-storm', accessKeyId: ceph.info.accessKeyId, secretAccessKey: ceph.info.secretAccessKey, createBucket: true };
  }
  const config = {
    ...(dbUrl ? { databaseUrl: dbUrl } : {}),
    log: { level: 'warn' },
    http: { host: '0.0.0.0', port: 8080, publicUrl: HTTP },
    dhcp: { enabled: true, mode: 'full', interface: 'eth0', serverIp: SERVER_IP, httpBase: HTTP, pools: [{ subnet: '10.66.0.0/16', range: { start: '10.66.1.1', end: '10.66.254.254' }, leaseSeconds: 3600 }] },
    tftp: { enabled: true, address: SERVER_IP, port: 69 },
    images: { store: s3 ?? { kind: 'local' }, cache: { dir: join(dir, 'image-cache') } },
    boot: {
      stage1: { image: 'stage1', channel: 'prod', cmdline: 'console=ttyS0,115200' },
      // a new rack: every machine is discovered at once (the default, 120 a minute, paces enrolment on purpose)
      discoveredPerMinute: Math.max(120, N * 10),
    },
    profiles: { default: { image: 'compute', channel: 'prod', heartbeatIntervalSeconds: Number(values['heartbeat-seconds']) } },
  };
  const configFile = join(dir, 'bootfarm.yaml');
  writeFileSync(configFile, toYaml(config));
  say(`storm: ${N} nodes, ${C} at once, ${db}, ${store} store, images: ${images.source}; work dir ${dir}`);
  const srv = await startBootfarm({ netns: S, dir, repoRoot, ip: SERVER_IP, port: 8080, configFile, adminToken: ADMIN, env: { BOOTFARM_LOG_LEVEL: 'warn' } });
  procs.push(srv.proc);
  stops.push(srv.stop);
  await pushImage(srv, join(images.dir, 'stage1'), 'stage1');
  await pushImage(srv, join(images.dir, 'compute'), 'compute');
  say(`server up and images pushed in ${((Date.now() - t00) / 1000).toFixed(1)} s`);

  // the server process: RSS and CPU every 500 ms; /healthz round trips as the event loop's responsiveness
  const rssBefore = procSample(srv.proc.pid)?.rss ?? 0;
  const server: { t: number; rss: number; cpu: number }[] = [];
  const healthzMs: number[] = [];
  const t0 = Date.now();
  const sampler = setInterval(() => {
    const s = procSample(srv.proc.pid);
    if (s) server.push({ t: Date.now() - t0, ...s });
    const h0 = performance.now();
    void srv.api.raw('GET', '/healthz').then(
      () => healthzMs.push(performance.now() - h0),
      () => {},
    );
  }, 500);

  const resultFile = join(dir, 'sim-result.json');
  const sim = startManaged('storm-sim', [process.execPath, '--import', 'tsx', 'bench/storm/sim.ts', JSON.stringify({ count: N, concurrency: C, iface: 'eth0', prefixLen: 16, result: resultFile, holdSeconds: Number(values['hold-seconds']), timeoutSeconds: Number(values['timeout-minutes']) * 60, efiTftp })], { netns: Cns, cwd: repoRoot, stdin: 'pipe', logFile: join(dir, 'sim.log') });
  procs.push(sim);
  let shown = 0;
  await waitUntil('the storm', Number(values['timeout-minutes']) * 60_000 + 120_000, () => {
    const lines = [...sim.output().matchAll(/^PROGRESS (.*)$/gm)];
    if (lines.length > shown) say(`  ${lines.at(-1)![1]}`), (shown = lines.length);
    if (srv.proc.exited()) throw new Error(`the server exited (${srv.proc.exitCode()}): ${tail('server', srv.proc.output(), 40)}`);
    if (sim.exited() && !/^DONE/m.test(sim.output())) throw new Error(`the simulator exited (${sim.exitCode()}): ${tail('sim', sim.output(), 40)}`);
    return /^DONE .*$/m.exec(sim.output())?.[0];
  }, { intervalMs: 1000 });
  clearInterval(sampler);
  const metrics = (await srv.api.raw('GET', '/metrics').catch(() => ({ text: '' }))).text;
  const eventLoop: Record<string, number> = {};
  for (const m of metrics.matchAll(/^([a-z0-9_]*event_?loop[a-z0-9_]*)(?:\{[^}]*\})? ([0-9.e+-]+)$/gim)) eventLoop[m[1]!] = Number(m[2]);
  await sim.whenExit;
  const simResult = JSON.parse(readFileSync(resultFile, 'utf8')) as { reports: SimNodeReport[]; samples: StormSample[]; settledMs: number | null; simLoopDelayMs?: Record<string, number> };
  await srv.stop();
  say(`storm over (${/^DONE (.*)$/m.exec(sim.output())?.[1]}); measuring the byte bound`);

  // the byte bound: the same files per node, on the same path, with the same concurrency
  const files = ['/usr/lib/ipxe/undionly.kpxe', join(images.dir, 'stage1', 'vmlinuz'), join(images.dir, 'stage1', 'initrd.img'), join(images.dir, 'compute', 'vmlinuz'), join(images.dir, 'compute', 'initrd.img')];
  const bs = startManaged('bound-server', [process.execPath, '--import', 'tsx', 'bench/storm/bound.ts', 'serve', SERVER_IP, '8081', ...files], { netns: S, cwd: repoRoot, logFile: join(dir, 'bound-server.log') });
  procs.push(bs);
  await waitUntil('bound server', 60_000, () => (bs.exited() ? (() => { throw new Error(bs.output()); })() : /^READY/m.test(bs.output()) || undefined));
  const bc = await runAsync([process.execPath, '--import', 'tsx', 'bench/storm/bound.ts', 'fetch', JSON.stringify({ base: `http://${SERVER_IP}:8081`, files: files.length, nodes: N, concurrency: C })], { netns: Cns, cwd: repoRoot, timeoutMs: Number(values['timeout-minutes']) * 60_000 });
  const boundLine = /^DONE (.*)$/m.exec(bc.stdout)?.[1];
  if (!boundLine) throw new Error(`the byte-bound client failed (${bc.status}): ${bc.stderr || bc.stdout}`);
  await bs.stop();

  const report = buildReport({
    config: { nodes: N, concurrency: C, db, store, imagesSource: images.source, heartbeatSeconds: Number(values['heartbeat-seconds']), efiTftp, budget: 'defaults (64 transfers, 32 registrations)', server: 'node --import tsx server/cli.ts serve', machine: { cores: cpus().length, loadavgAtEnd: loadavg().map((l) => Number(l.toFixed(1))) }, date: new Date().toISOString() },
    nodes: N,
    reports: simResult.reports,
    samples: simResult.samples,
    settledMs: simResult.settledMs,
    server,
    rssBefore,
    healthzMs,
    eventLoop,
    simLoopDelayMs: simResult.simLoopDelayMs,
    bound: JSON.parse(boundLine) as { ms: number; bytes: number },
  });
  mkdirSync(values.out!, { recursive: true });
  const base = `storm-${db}-${store}-${N}`;
  writeFileSync(join(values.out!, `${base}.json`), JSON.stringify(report, null, 1));
  writeFileSync(join(values.out!, `${base}.svg`), renderSvg(report));
  // every node's own report (phase times, DHCP, TFTP, retries), for digging into a tail; not published
  copyFileSync(resultFile, join(values.out!, `${base}-nodes.json`));
  if (values.publish) {
    const pub = join(repoRoot, 'bench/storm/results');
    mkdirSync(pub, { recursive: true });
    for (const ext of ['json', 'svg']) copyFileSync(join(values.out!, `${base}.${ext}`), join(pub, `${base}.${ext}`));
  }
  process.stdout.write(`${renderTable(report)}\n  written: ${join(values.out!, base)}.{json,svg}${values.publish ? ' and bench/storm/results/' : ''}\n`);
}

let code = 0;
try {
  await main();
} catch (e) {
  process.stderr.write(`storm: ${(e as Error).stack ?? String(e)}\n`);
  code = 1;
} finally {
  for (const p of procs.reverse()) await p.stop().catch(() => {});
  for (const s of stops.reverse()) await s().catch(() => {});
  for (const ns of namespaces) deleteNamespace(ns);
  unhook();
  if (code === 0) rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`storm: logs kept in ${dir}\n`);
}
process.exit(code);
