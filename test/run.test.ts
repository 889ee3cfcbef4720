// `make run`'s contract: the server starts on embedded defaults (PGlite in a data dir, nothing installed) and
// serves a valid iPXE script for any UUID within seconds. Runs the real CLI in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freePort } from './harness/net.ts';

let child: ChildProcess | undefined;
const dir = mkdtempSync(join(tmpdir(), 'bf-run-'));
afterAll(() => {
  // tsx runs the server as its own child: kill the whole process group
  if (child?.pid) try { process.kill(-child.pid, 'SIGKILL'); } catch {}
  rmSync(dir, { recursive: true, force: true });
});

it('serves GET /ipxe/<uuid> as an iPXE script on embedded defaults, and keeps state across restarts', async () => {
  const port = await freePort();
  const start = () => {
    child = spawn('node_modules/.bin/tsx', ['server/cli.ts', 'serve'], { env: { ...process.env, BOOTFARM_DATA_DIR: dir, BOOTFARM_HTTP__PORT: String(port), BOOTFARM_HTTP__HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let log = '';
    child.stdout!.on('data', (d) => (log += d));
    child.stderr!.on('data', (d) => (log += d));
    return () => log;
  };
  const waitUp = async (log: () => string) => {
    for (let i = 0; i < 600; i++) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (r.ok) return;
      } catch {}
      if (child?.exitCode !== null) throw new Error(`server exited: ${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server did not come up: ${log()}`);
  };
  let log = start();
  await waitUp(log);
  const res = await fetch(`http://127.0.0.1:${port}/ipxe/4c4c4544-0042-3510-8052-b4c04f4e4d32`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text.split('\n')[0]).toBe('#!ipxe');
  expect(log()).toContain('bootfarm serving');
  const token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  expect(token.length).toBeGreaterThan(20);

  const exited = new Promise((r) => child!.once('exit', r));
  process.kill(-child!.pid!, 'SIGTERM');
  await exited;
  log = start();
  await waitUp(log);
  const nodes: any = await (await fetch(`http://127.0.0.1:${port}/api/v1/nodes`, { headers: { authorization: `Bearer ${token}` } })).json();
  expect(nodes.nodes.map((n: { uuid: string }) => n.uuid)).toEqual(['4c4c4544-0042-3510-8052-b4c04f4e4d32']);
}, 180_000);
