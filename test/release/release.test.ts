// The release build (issue 17 item 1): `make build` compiles server/ and boot/ to build/dist, `npm pack` packs it,
// and the packed tarball installed into an empty directory runs as `bootfarm` on plain node — no tsx, no
// TypeScript sources, its migrations found beside the compiled code.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRelease, installTarball, packRelease, ROOT, startServed, type Served } from '../harness/release.ts';
import { until } from '../harness/wait.ts';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'bf-release-'));
const running: Served[] = [];
let tarball = '';

beforeAll(async () => {
  buildRelease();
  tarball = await packRelease(tmp);
}, 600_000);

afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  rmSync(tmp, { recursive: true, force: true });
});

describe('make build', () => {
  it('emits JavaScript whose relative imports name .js files, and a CLI with a node shebang', () => {
    const cli = readFileSync(join(ROOT, 'build/dist/server/cli.js'), 'utf8');
    expect(cli.split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(statSync(join(ROOT, 'build/dist/server/cli.js')).mode & 0o111).not.toBe(0);
    expect(cli).toMatch(/from ["']\.\/config\.js["']/);
    expect(cli).not.toMatch(/from ["']\.{1,2}\/[^"']*\.ts["']/);
    expect(existsSync(join(ROOT, 'build/dist/server/db/migrations/meta/_journal.json'))).toBe(true);
    expect(existsSync(join(ROOT, 'build/dist/server/cli.test.js'))).toBe(false);
  });
});

describe('npm pack', () => {
  it('packs the compiled server, boot/ and the migrations, and no TypeScript, tests or test support', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 64 << 20 });
    const files = (JSON.parse(stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
    expect(files).toContain('build/dist/server/cli.js');
    expect(files).toContain('build/dist/server/main.js');
    expect(files).toContain('build/dist/boot/dhcp/index.js');
    expect(files).toContain('build/dist/server/db/migrations/meta/_journal.json');
    const journal = JSON.parse(readFileSync(join(ROOT, 'server/db/migrations/meta/_journal.json'), 'utf8')) as { entries: { tag: string }[] };
    for (const { tag } of journal.entries) expect(files).toContain(`build/dist/server/db/migrations/${tag}.sql`);
    expect(files).toContain('package.json');
    expect(files).toContain('README.md');
    expect(files.filter((f) => f.endsWith('.ts') || /(^|\/)test\//.test(f) || f.includes('.test.') || f.startsWith('build/agent') || f.startsWith('build/images'))).toEqual([]);
  });
});

describe('the packed tarball, installed into an empty directory', () => {
  const dir = join(tmp, 'install');
  let bin = '';

  beforeAll(async () => {
    await run('mkdir', ['-p', dir]);
    ({ bin } = await installTarball(tarball, dir));
  }, 600_000);

  it('has a `bootfarm` bin (npm links the built CLI) and no tsx or TypeScript among its dependencies', () => {
    expect(readlinkSync(bin)).toBe('../bootfarm/build/dist/server/cli.js');
    expect(existsSync(join(dir, 'node_modules/tsx'))).toBe(false);
    expect(existsSync(join(dir, 'node_modules/typescript'))).toBe(false);
    expect(existsSync(join(dir, 'node_modules/bootfarm/server'))).toBe(false);
  });

  it('`bootfarm --help` runs through the bin link on plain node and prints the usage', async () => {
    // executed directly: the kernel reads the shebang (#!/usr/bin/env node), PATH holds only node's directory
    const { stdout } = await run(bin, ['--help'], { env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin` }, cwd: tmp });
    expect(stdout).toMatch(/^usage: bootfarm/i);
    expect(stdout).toMatch(/^\s+serve\b/m);
  });

  it('`bootfarm serve` on a fresh data dir migrates PGlite, answers /healthz and the API, and stops on SIGTERM', async () => {
    const data = join(tmp, 'data');
    const s = await startServed(bin, ['serve'], { BOOTFARM_DATA_DIR: data, PATH: `${dirname(process.execPath)}:/usr/bin:/bin` });
    running.push(s);
    expect(await (await fetch(`http://127.0.0.1:${s.port}/healthz`)).json()).toEqual({ ok: true });
    const token = readFileSync(join(data, 'admin.token'), 'utf8').trim();
    const nodes = await fetch(`http://127.0.0.1:${s.port}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } });
    expect(nodes.status).toBe(200);
    expect(((await nodes.json()) as { nodes: unknown[] }).nodes).toEqual([]);
    // the UI's views (hono JSX, compiled like the rest)
    const login = await fetch(`http://127.0.0.1:${s.port}/ui/login`);
    expect(login.status).toBe(200);
    expect(await login.text()).toMatch(/<form[^>]*>/i);
    const script = await fetch(`http://127.0.0.1:${s.port}/ipxe/4c4c4544-0042-3510-8052-b4c04f4e4d32`);
    expect((await script.text()).split('\n')[0]).toBe('#!ipxe');
    // the process is node running the installed JavaScript, not tsx
    const cmdline = readFileSync(`/proc/${s.child.pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline[0]).toMatch(/(^|\/)node$/);
    expect(cmdline[1]).toContain('node_modules/.bin/bootfarm');
    expect(cmdline.join(' ')).not.toContain('tsx');
    expect(await s.stop()).toBe(0);
  }, 180_000);
});

describe('make run', () => {
  // -o: never remake the npm stamp here (deps-npm would run `npm ci` under the other suites)
  const makeRun = (data: string, ...vars: string[]) =>
    startServed('make', ['--no-print-directory', '-C', ROOT, '-o', 'node_modules/.package-lock.json', 'run', ...vars], { BOOTFARM_DATA_DIR: data });

  /** The command line of the process make's recipe exec'd (make's only child). */
  async function underMake(s: Served): Promise<string> {
    let server = '';
    await until('the server process under make', () => {
      const kids = readFileSync(`/proc/${s.child.pid}/task/${s.child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      server = kids.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')).join(' | ');
      return server !== '';
    });
    return server;
  }

  it('serves from build/dist when a build exists', async () => {
    const s = await makeRun(join(tmp, 'make-run'));
    running.push(s);
    const server = await underMake(s);
    expect(server).toContain('build/dist/server/cli.js serve');
    expect(server).not.toContain('tsx');
    await s.stop();
  }, 180_000);

  it('runs the TypeScript through tsx when there is no build (a fresh clone)', async () => {
    const s = await makeRun(join(tmp, 'make-run-tsx'), 'DIST_STAMP=build/no-such-build/.built');
    running.push(s);
    expect(await underMake(s)).toContain('tsx server/cli.ts serve');
    await s.stop();
  }, 180_000);
});
