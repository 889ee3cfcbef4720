// make bench-images: image serving against nginx (Debian nginx-light, sendfile on) on loopback.
//  1. hot cache: one 30 MB initrd to 100 concurrent keep-alive clients for a fixed time, bootfarm vs nginx
//     serving the very same file (the cache entry), alternating runs; prints the throughput ratio (target ≥ 0.9).
//  2. cold storm: 1,000 clients ask for the uncached initrd at once; prints S3 GETs (target 1) and time to
//     last byte. The S3 store is a real single-node Ceph RGW (test/harness/ceph.ts).
// The image server runs in its own process (as nginx does) so the load generator does not steal its loop.
// Bounded: ~1-2 minutes; every process it starts is stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { Hono } from 'hono';
import { createS3Store } from '../server/images/s3.ts';
import { createBlobCache } from '../server/images/cache.ts';
import { createImageServeApp } from '../server/images/serve.ts';
import { blobFile, countS3Commands, fetchBlob, fixedCatalog, listenApp } from '../test/fakes/images.ts';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_IMAGE_MB ?? 30) * MiB;
const HOT_CLIENTS = Number(process.env.BENCH_HOT_CLIENTS ?? 100);
const HOT_SECONDS = Number(process.env.BENCH_HOT_SECONDS ?? 6);
const STORM = Number(process.env.BENCH_STORM_CLIENTS ?? 1000);

interface S3Env {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
}

/** Child mode: the image server alone in its process. Prints "READY url" on stdout. */
async function child(s3: S3Env, cacheDir: string) {
  const store = createS3Store({ ...s3 });
  const counts = countS3Commands(store);
  const cache = await createBlobCache({ dir: cacheDir, store, maxBytes: 4096 * MiB });
  const app = new Hono();
  app.get('/_stats', (c) => c.json({ ...cache.stats, s3Gets: counts.GetObjectCommand ?? 0 }));
  app.route('/', createImageServeApp({ cache, store, catalog: fixedCatalog({}) }));
  const srv = await listenApp(app.fetch);
  process.stdout.write(`READY ${srv.url}\n`);
}

function startChild(s3: S3Env, cacheDir: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--child', JSON.stringify(s3), cacheDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      const m = /READY (\S+)/.exec(buf);
      if (m) resolve({ proc, url: m[1]! });
    });
    proc.once('exit', (code) => reject(new Error(`image server exited ${code}`)));
  });
}

async function stop(proc: ChildProcess) {
  if (proc.exitCode !== null || proc.pid === undefined) return;
  const done = new Promise((r) => proc.once('exit', r));
  process.kill(proc.pid, 'SIGTERM');
  await done;
}

async function startNginx(dir: string, root: string, port: number): Promise<ChildProcess> {
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `user root;
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 15s;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`,
  );
  const proc = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'inherit' });
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    try {
      await fetch(`http://127.0.0.1:${port}/`).then((r) => r.arrayBuffer());
      return proc;
    } catch {
      /* not yet */
    }
  }
  throw new Error('nginx did not start');
}

function countBytes(url: string, agent: http.Agent): Promise<{ status: number; bytes: number; digest?: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let bytes = 0;
        res.on('data', (b: Buffer) => (bytes += b.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** N keep-alive clients fetching `url` in a loop for `seconds`; bytes per second. */
async function hotLoad(url: string, clients: number, seconds: number): Promise<{ mbps: number; requests: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const end = Date.now() + seconds * 1000;
  let bytes = 0;
  let requests = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        await new Promise<void>((resolve, reject) => {
          http
            .get(url, { agent }, (res) => {
              res.on('data', (b: Buffer) => (bytes += b.length));
              res.on('end', () => {
                if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
                requests++;
                resolve();
              });
              res.on('error', reject);
            })
            .on('error', reject);
        });
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  agent.destroy();
  return { mbps: bytes / MiB / secs, requests };
}

async function main() {
  const { startCeph, freePort } = await import('../test/harness/ceph.ts');
  const tmp = mkdtempSync(join(tmpdir(), 'bfimg-bench-'));
  const procs: ChildProcess[] = [];
  // Bounded: a hard stop, and no process left behind whatever happens (by PID).
  process.once('exit', () => {
    for (const p of procs) if (p.pid !== undefined && p.exitCode === null) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
  });
  setTimeout(() => {
    console.error('bench-images: giving up after 10 minutes');
    process.exit(1);
  }, 600_000).unref();
  const ceph = await startCeph({ memBytes: 1024 * MiB });
  try {
    const s3: S3Env = { endpoint: ceph.endpoint, region: ceph.region, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, bucket: 'bench-images' };
    const store = createS3Store(s3);
    await store.ensureBucket();
    const initrd = blobFile(tmp, 'initrd.img', SIZE);
    await store.putFile(initrd.digest, initrd.path);
    console.log(`blob: ${SIZE / MiB} MiB initrd ${initrd.digest.slice(0, 12)} in Ceph RGW ${ceph.endpoint}`);

    // --- cold storm first (the cache starts empty) ---
    const cacheDir = join(tmp, 'cache');
    const a = await startChild(s3, cacheDir);
    procs.push(a.proc);
    const agent = new http.Agent({ keepAlive: false, maxSockets: STORM });
    const t0 = performance.now();
    // Hashing 30 GB in the load generator would measure the client; 20 clients verify sha256, the rest count bytes.
    const res = await Promise.all(Array.from({ length: STORM }, (_, i) => (i < 20 ? fetchBlob(`${a.url}/images/${initrd.digest}`, { agent, keep: 0 }) : countBytes(`${a.url}/images/${initrd.digest}`, agent))));
    const ttlb = (performance.now() - t0) / 1000;
    agent.destroy();
    const okCount = res.filter((r) => r.status === 200 && r.bytes === SIZE && (r.digest === undefined || r.digest === initrd.digest)).length;
    const stats = (await (await fetch(`${a.url}/_stats`)).json()) as { s3Gets: number; misses: number };
    console.log(`cold storm: ${STORM} clients, ${okCount} complete+verified, S3 GETs ${stats.s3Gets} (target 1), joined fill ${stats.misses}, time to last byte ${ttlb.toFixed(2)} s (${((STORM * SIZE) / MiB / ttlb).toFixed(0)} MiB/s aggregate)`);

    // --- hot cache: same file, bootfarm vs nginx ---
    const port = await freePort();
    const ngDir = join(tmp, 'nginx');
    mkdirSync(ngDir);
    const ng = await startNginx(ngDir, join(cacheDir, 'sha256'), port);
    procs.push(ng);
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let round = 0; round < 2; round++) {
      theirs.push((await hotLoad(`http://127.0.0.1:${port}/${initrd.digest}`, HOT_CLIENTS, HOT_SECONDS)).mbps);
      ours.push((await hotLoad(`${a.url}/images/${initrd.digest}`, HOT_CLIENTS, HOT_SECONDS)).mbps);
    }
    const best = (xs: number[]) => Math.max(...xs);
    console.log(`hot cache, ${HOT_CLIENTS} clients × ${HOT_SECONDS} s, 2 rounds: nginx ${theirs.map((x) => x.toFixed(0)).join('/')} MiB/s, bootfarm ${ours.map((x) => x.toFixed(0)).join('/')} MiB/s`);
    console.log(`ratio bootfarm/nginx (best of each): ${(best(ours) / best(theirs)).toFixed(2)} (target ≥ 0.90)`);
  } finally {
    for (const p of procs) await stop(p).catch(() => {});
    await ceph.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(JSON.parse(process.argv[3]!) as S3Env, process.argv[4]!);
else await main();
