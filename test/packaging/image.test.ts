// The OCI image (packaging/oci/, issue 17 item 2), built with Debian's podman from a Debian 13 root file system
// (mmdebstrap; no registry image is reachable here) and the packed release, then started on the host network
// (as the Kubernetes manifests run it) and asked for /healthz. The first build takes minutes (mmdebstrap); both
// layers are tagged by the hash of their inputs and reused while those are unchanged (packaging/oci/build.sh).
//
// This machine's sandbox needs two podman settings, passed here and not baked into the scripts: crun refuses
// its hybrid cgroup layout ("cgroups in hybrid mode not supported"), so containers run under runc; and raising
// RLIMIT_NOFILE/RLIMIT_NPROC is refused, while rootful podman raises both by default, so they are set at or below
// the current limits.
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/net.ts';
import { buildRelease, ROOT } from '../harness/release.ts';
import { requireCommand } from '../harness/require.ts';
import { until } from '../harness/wait.ts';

const run = promisify(execFile);
const hardNofile = execFileSync('sh', ['-c', 'ulimit -Hn']).toString().trim();
const LIMITS = ['--ulimit', `nofile=${hardNofile}:${hardNofile}`, '--ulimit', 'nproc=4096:4096'];
const BUILD_FLAGS = ['--runtime', 'runc', ...LIMITS].join(' ');
const podman = (...args: string[]) => run('podman', ['--runtime', 'runc', ...args], { maxBuffer: 64 << 20, timeout: 300_000 });
const containers: string[] = [];
let image = '';

/** A free privileged TCP port on 127.0.0.1 (this test runs as root, so it can probe one by binding it). */
async function freePrivilegedPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 900 + Math.floor(Math.random() * 100);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port in 900-999 on 127.0.0.1');
}

/** Starts the image detached on the host network; resolves with the container id once /healthz answers on port. */
async function startContainer(port: number, ...flags: string[]): Promise<string> {
  const { stdout } = await podman('run', '-d', ...LIMITS, '--network', 'host', ...flags, '-e', `BOOTFARM_HTTP__PORT=${port}`, '-e', 'BOOTFARM_HTTP__HOST=127.0.0.1', image);
  const id = stdout.trim();
  containers.push(id);
  await until(
    'the container to answer /healthz',
    async () => {
      const state = (await run('podman', ['inspect', '--format', '{{.State.Status}}', id])).stdout.trim();
      if (state === 'exited') throw new Error(`container exited: ${(await run('podman', ['logs', id])).stderr}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
      } catch {
        return false;
      }
    },
    { limitMs: 180_000, pollMs: 200 },
  );
  return id;
}

async function buildImage(): Promise<{ image: string; log: string }> {
  const { stdout } = await run(`${ROOT}/packaging/oci/build.sh`, [], {
    cwd: ROOT,
    env: { ...process.env, PODMAN_BUILD_FLAGS: BUILD_FLAGS },
    maxBuffer: 256 << 20,
    timeout: 1_500_000,
  });
  const lines = stdout.trim().split('\n');
  return { image: lines.at(-1)!, log: stdout };
}

beforeAll(async () => {
  requireCommand('podman', 'podman');
  requireCommand('mmdebstrap', 'mmdebstrap');
  requireCommand('runc', 'runc');
  buildRelease();
  ({ image } = await buildImage());
}, 1_800_000);

afterAll(async () => {
  for (const c of containers) await podman('rm', '-f', '-v', c).catch(() => undefined);
});

describe('packaging/oci image', () => {
  it('is tagged by version and input hash, and a second build with the same inputs reuses it', async () => {
    expect(image).toMatch(/^localhost\/bootfarm:\d+\.\d+\.\d+-[0-9a-f]{16}$/);
    const again = await buildImage();
    expect(again.image).toBe(image);
    expect(again.log).toContain(`image ${image} exists`);
    expect(again.log).not.toContain('building');
  }, 300_000);

  it("holds Debian's nodejs 20, the iPXE binaries and the release with its production dependencies only", async () => {
    const sh = async (script: string) => (await podman('run', '--rm', ...LIMITS, '--network', 'none', '--entrypoint', '/bin/sh', image, '-c', script)).stdout.trim();
    expect(await sh('node --version')).toMatch(/^v20\.(19|[2-9]\d)\./);
    expect(await sh("dpkg-query -W -f '${Version}' nodejs")).toMatch(/^20\./);
    expect(await sh('ls /usr/lib/ipxe')).toMatch(/undionly\.kpxe/);
    expect(await sh('readlink /usr/local/bin/bootfarm')).toBe('/opt/bootfarm/build/dist/server/cli.js');
    expect(await sh('ls /opt/bootfarm/node_modules')).toContain('hono');
    expect(await sh('test -e /opt/bootfarm/node_modules/tsx || test -e /opt/bootfarm/node_modules/typescript || test -e /opt/bootfarm/server || echo clean')).toBe('clean');
    const config = JSON.parse((await run('podman', ['image', 'inspect', '--format', '{{json .Config}}', image])).stdout) as { User: string; Entrypoint: string[]; Cmd: string[] };
    expect(config.User).toBe('bootfarm');
    expect([...config.Entrypoint, ...config.Cmd]).toEqual(['/usr/local/bin/bootfarm', 'serve']);
  }, 300_000);

  it('starts as user bootfarm on the host network, answers /healthz and /readyz, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const id = await startContainer(port);
    expect(await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()).toEqual({ ok: true, db: 'pglite' });
    expect((await podman('exec', id, 'id', '-un')).stdout.trim()).toBe('bootfarm');
    expect((await podman('exec', id, 'ls', '/var/lib/bootfarm')).stdout).toMatch(/pglite/);
    await podman('stop', '-t', '60', id);
    expect((await run('podman', ['inspect', '--format', '{{.State.ExitCode}}', id])).stdout.trim()).toBe('0');
  }, 300_000);

  it('as user bootfarm, --cap-add NET_BIND_SERVICE (an ambient capability under podman) binds a privileged port, as DHCP and TFTP need', async () => {
    const port = await freePrivilegedPort();
    const id = await startContainer(port, '--cap-add', 'NET_BIND_SERVICE');
    expect((await podman('exec', id, 'id', '-un')).stdout.trim()).toBe('bootfarm');
    const status = (await podman('exec', id, 'cat', '/proc/1/status')).stdout;
    expect(/^CapAmb:\s*([0-9a-f]+)$/m.exec(status)?.[1]).toBe('0000000000000400'); // bit 10: CAP_NET_BIND_SERVICE
    expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()).toEqual({ ok: true });
    await podman('stop', '-t', '60', id);

    // without it the same start fails on the port (the check can fail)
    const other = await freePrivilegedPort();
    const { stdout } = await podman('run', '-d', ...LIMITS, '--network', 'host', '-e', `BOOTFARM_HTTP__PORT=${other}`, '-e', 'BOOTFARM_HTTP__HOST=127.0.0.1', image);
    const denied = stdout.trim();
    containers.push(denied);
    await until('the container without NET_BIND_SERVICE to exit', async () => (await run('podman', ['inspect', '--format', '{{.State.Status}}', denied])).stdout.trim() === 'exited', { limitMs: 180_000, pollMs: 200 });
    const logs = await run('podman', ['logs', denied]);
    expect(logs.stdout + logs.stderr).toMatch(/EACCES/);
  }, 300_000);
});
