// The API under test for bench/api/bench.ts, in its own process so the load generator does not share its event
// loop: the real app (server/api/app.ts) over PGlite or PostgreSQL with a catalog that always has images
// (test/fakes/app.ts FixedCatalog: no image store in the way), per-source rate limits off (every request comes
// from 127.0.0.1), heartbeats buffered for `flushSeconds` (0: written one by one, the behaviour before issue 15).
//   node --import tsx bench/api/server.ts '{"url":"postgres://…"|undefined,"flushSeconds":2}'  → prints "READY <port>"
// With "seed": N (bench/api/fleet-list.ts) the server writes N nodes (bench/api/fleet-seed.ts) before READY and
// prints its memory before and after ("MEM <tag> <rss> <heapUsed>", bytes, after a GC when run with --expose-gc);
// SIGUSR1 prints it again ("MEM now …"): the load generator cannot read another process's memoryUsage().
import { createAdaptorServer } from '@hono/node-server';
import type { Server } from 'node:http';
import { createDb } from '../../server/db/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { createTestApp, testConfig } from '../../test/fakes/app.ts';
import { createBeatBuffer, type BeatBuffer } from '../../server/fleet/beats.ts';
import { systemClock } from '../../server/clock.ts';
import { tuneHttpServer } from '../../server/images/serve.ts';

const opts = JSON.parse(process.argv[2] ?? '{}') as { url?: string; flushSeconds: number; extra?: Record<string, unknown>; seed?: number };
const db = opts.url ? await createDb({ url: opts.url, maxConnections: 10 }) : await createTestDb();
const config = testConfig({
  http: { publicUrl: 'http://127.0.0.1:8080' },
  boot: { rateLimit: { ipxe: { perMinute: 0, burst: 1 }, agent: { perMinute: 0, burst: 1 } }, discoveredPerMinute: 1_000_000 },
  ...(opts.extra ?? {}),
});
let beats: BeatBuffer | undefined;
const t = createTestApp(db, { config, clock: systemClock, beats: (nodes) => (beats = createBeatBuffer({ store: nodes, flushSeconds: opts.flushSeconds })) });
beats!.start();
const server = createAdaptorServer({ fetch: t.app.fetch }) as Server;
tuneHttpServer(server);
await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => r()));
const port = (server.address() as { port: number }).port;
const mem = (tag: string) => {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  process.stdout.write(`MEM ${tag} ${m.rss} ${m.heapUsed}\n`);
};
if (opts.seed) {
  const { seedFleet } = await import('./fleet-seed.ts');
  mem('before');
  const t0 = performance.now();
  await seedFleet(db, opts.seed);
  process.stdout.write(`SEEDED ${opts.seed} ${Math.round(performance.now() - t0)}\n`);
  mem('seeded');
  process.on('SIGUSR1', () => mem('now'));
}
process.stdout.write(`READY ${port}\n`);
const stop = async () => {
  server.close();
  server.closeAllConnections();
  await beats!.stop();
  await db.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
// bench.ts --profile: SIGUSR2 starts a CPU profile of this process, the next one writes it to $BENCH_PROFILE,
// so the profile holds one load phase and not the seeding before it
if (process.env.BENCH_PROFILE) {
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  let on = false;
  process.on('SIGUSR2', () => {
    on = !on;
    void (on
      ? session.post('Profiler.start').then(() => process.stdout.write('PROFILING\n'))
      : session.post('Profiler.stop').then(({ profile }) => {
          writeFileSync(process.env.BENCH_PROFILE!, JSON.stringify(profile));
          process.stdout.write('PROFILED\n');
        }));
  });
}
process.stdin.on('close', () => void stop());
process.stdin.resume();
