// The release as an operator gets it: `make build` (build/dist), `npm pack`, and the packed tarball installed into
// an empty directory with its production dependencies only (no tsx, no TypeScript). Used by test/release/ and the
// container image test (packaging/).
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './net.ts';
import { until } from './wait.ts';

const run = promisify(execFile);
export const ROOT = resolve(import.meta.dirname, '../..');

/** `make build`, serialised across test files (two workers must not rebuild build/dist under each other). */
export function buildRelease(): void {
  mkdirSync(join(ROOT, 'build'), { recursive: true });
  execFileSync('flock', [join(ROOT, 'build/.release.lock'), 'make', '--no-print-directory', '-C', ROOT, 'build'], { stdio: 'pipe', timeout: 600_000 });
}

/** `npm pack` into dir (prepack runs `make build`, a no-op after buildRelease); returns the tarball's path. */
export async function packRelease(dir: string): Promise<string> {
  const { stdout } = await run('flock', [join(ROOT, 'build/.release.lock'), 'npm', 'pack', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 64 << 20 });
  const [info] = JSON.parse(stdout) as { filename: string }[];
  return join(dir, info!.filename);
}

/**
 * Installs the tarball into dir as a dependency of an empty project, the way `npm install bootfarm-X.tgz` would,
 * but pinned to the repository's lockfile: the consumer's lockfile is the tarball plus every non-dev package of
 * ours, so the versions are the tested ones and npm takes them from its cache (`make deps-npm` filled it) when it
 * can, else from the registry. npm then links node_modules/.bin/bootfarm as it does for any bin.
 */
export async function installTarball(tarball: string, dir: string): Promise<{ bin: string; pkgDir: string }> {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Record<string, unknown>> };
  const ours = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; bin: Record<string, string>; engines: unknown };
  const spec = `file:${tarball}`;
  const packages: Record<string, Record<string, unknown>> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { bootfarm: spec } },
    'node_modules/bootfarm': { version: ours.version, resolved: spec, dependencies: ours.dependencies, bin: ours.bin, engines: ours.engines },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || entry.dev || entry.link) continue;
    // npm leaves `resolved` out of lockfile entries from the default registry; --offline needs it to find the tarball
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    packages[path] = { resolved: `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${entry.version}.tgz`, ...entry };
  }
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, dependencies: { bootfarm: spec } }));
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }));
  await run('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, maxBuffer: 64 << 20, timeout: 600_000 });
  return { bin: join(dir, 'node_modules/.bin/bootfarm'), pkgDir: join(dir, 'node_modules/bootfarm') };
}

export interface Served {
  port: number;
  child: ChildProcess;
  log(): string;
  /** SIGTERM to the process group; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `cmd args… serve`-style on a free loopback port with env added; resolves once /healthz answers 200. */
export async function startServed(cmd: string, args: string[], env: Record<string, string>): Promise<Served> {
  const port = await freePort();
  const child = spawn(cmd, args, {
    env: { ...process.env, ...env, BOOTFARM_HTTP__PORT: String(port), BOOTFARM_HTTP__HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {}
    }
    return exited;
  };
  try {
    await until(
      `${cmd} ${args.join(' ')} to answer /healthz`,
      async () => {
        if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}: ${out}`);
        try {
          return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
        } catch {
          return false;
        }
      },
      { limitMs: 120_000, pollMs: 50 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, child, log: () => out, stop };
}
