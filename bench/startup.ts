// make bench-startup: process start → first 200 from /healthz, the built server (node build/dist/server/cli.js)
// against the TypeScript through tsx (what `make run` did before the build). Runs interleaved (built, tsx, built, …)
// because the machine is shared; prints the median and range of each, on a fresh data directory (first start:
// PGlite created and migrated) and on the same directory again (a restart).
//   node --import tsx bench/startup.ts [--runs 5]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../test/harness/net.ts';
import { buildRelease, ROOT } from '../test/harness/release.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const runs = Number(values.runs);

const variants = {
  built: [process.execPath, join(ROOT, 'build/dist/server/cli.js'), 'serve'],
  tsx: [join(ROOT, 'node_modules/.bin/tsx'), join(ROOT, 'server/cli.ts'), 'serve'],
} as const;

async function startOnce(cmd: readonly string[], dataDir: string): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(cmd[0]!, cmd.slice(1), {
    cwd: ROOT,
    env: { ...process.env, BOOTFARM_DATA_DIR: dataDir, BOOTFARM_HTTP__PORT: String(port), BOOTFARM_HTTP__HOST: '127.0.0.1', BOOTFARM_LOG_LEVEL: 'warn' },
    stdio: 'ignore',
    detached: true,
  });
  const exited = new Promise((r) => child.once('exit', r));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${cmd.join(' ')} exited with ${child.exitCode}`);
      try {
        if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return performance.now() - t0;
      } catch {}
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {}
    await exited;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

buildRelease();
const results: Record<string, { fresh: number[]; restart: number[] }> = { built: { fresh: [], restart: [] }, tsx: { fresh: [], restart: [] } };
for (let i = 0; i < runs; i++) {
  for (const [name, cmd] of Object.entries(variants)) {
    const dir = mkdtempSync(join(tmpdir(), 'bf-startup-'));
    results[name]!.fresh.push(await startOnce(cmd, dir));
    results[name]!.restart.push(await startOnce(cmd, dir));
    rmSync(dir, { recursive: true, force: true });
  }
}
const fmt = (xs: number[]) => `${(median(xs) / 1000).toFixed(2)} s (${(Math.min(...xs) / 1000).toFixed(2)}–${(Math.max(...xs) / 1000).toFixed(2)})`;
console.log(`| server | fresh data dir: median (min–max) | restart: median (min–max) |`);
console.log(`| --- | ---: | ---: |`);
for (const [name, r] of Object.entries(results)) console.log(`| ${name} | ${fmt(r.fresh)} | ${fmt(r.restart)} |`);
for (const k of ['fresh', 'restart'] as const) console.log(`${k}: tsx / built = ${(median(results.tsx![k]) / median(results.built![k])).toFixed(2)}×`);
