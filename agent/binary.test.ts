// The compiled agent (`make agent`: bun build --compile) against the test server on loopback, run for real on
// this machine: real dmidecode (which fails here: no SMBIOS, so the UUID comes from bootfarm.uuid=), real
// ethtool, lsblk, /proc and /sys, real HTTP. kexec is a dry run: this machine must keep running.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RegisterRequest } from '../server/contract/agent.ts';
import { createTestServer, freePort, sha256, type TestServer } from '../test/support/agent/test-server.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'build/agent/bootfarm-agent');
const UUID = '6b1f6c1e-7d2a-4c3b-9e8f-0a1b2c3d4e5f';

function runBinary(args: string[], { timeoutMs = 60_000, onStderr }: { timeoutMs?: number; onStderr?: (all: string) => void } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr);
    });
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('compiled bootfarm-agent', () => {
  let dir: string;
  let srv: TestServer | undefined;
  beforeAll(() => {
    // make rebuilds only when agent/ or server/contract/ changed (~0.5 s when it does)
    execFileSync('make', ['-s', 'agent'], { cwd: ROOT, stdio: 'pipe' });
    dir = mkdtempSync(join(tmpdir(), 'bfagent-bin-'));
  });
  afterEach(async () => {
    await srv?.close();
    srv = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('retries registration until the server comes up, reports every step and prints the kexec commands', async () => {
    const port = await freePort();
    srv = createTestServer({ token: 'tok-1', uuid: UUID });
    srv.setBaseUrl(`http://127.0.0.1:${port}`);
    const cmdline = join(dir, 'cmdline-stage1');
    writeFileSync(cmdline, `console=ttyS0 bootfarm.server=http://127.0.0.1:${port} bootfarm.token=tok-1 bootfarm.uuid=${UUID} bootfarm.mode=stage1\n`);
    // the server is down for the agent's first attempt; it comes up once the agent has said it will retry (an
    // event, not a time: on a loaded machine the agent may take seconds to get that far)
    let failedOnce!: () => void;
    const firstRetry = new Promise<void>((r) => (failedOnce = r));
    const run = runBinary(['--cmdline', cmdline, '--dry-run', '--work-dir', join(dir, 'work'), '--retry-base-ms', '200'], {
      onStderr: (all) => /register: .*; retry 1 in \d+ ms/.test(all) && failedOnce(),
    });
    await Promise.race([firstRetry, run.then((r) => Promise.reject(new Error(`the agent ended before its first retry: ${r.stderr}`)))]);
    await srv.listen(port);
    const r = await run;
    expect(r.stderr).toMatch(/register: POST http:\/\/127\.0\.0\.1:\d+\/api\/v1\/agent\/register: .*; retry 1 in \d+ ms/);
    expect(r.code, r.stderr).toBe(0);
    const kernel = join(dir, 'work', 'kernel');
    expect(r.stdout.trim().split('\n')).toEqual([
      expect.stringMatching(new RegExp(`^dry-run: kexec -l ${kernel} --initrd=${join(dir, 'work', 'initrd')} '--append=console=ttyS0 .*bootfarm\\.kernel=${sha256(srv.kernel)}`)),
      'dry-run: kexec -e',
    ]);
    expect(srv.got.registers).toHaveLength(1);
    const reg = srv.got.registers[0]!;
    expect(RegisterRequest.safeParse(reg).success).toBe(true);
    expect(reg.facts.system.uuid).toBe(UUID);
    expect(reg.facts.nics.find((n) => n.name === 'eth0')?.driver).toBe('virtio_net');
    // this machine has no SMBIOS: the failure is reported, not fatal
    expect(reg.failures.find((f) => f.probe === 'dmidecode')).toMatchObject({ command: 'dmidecode', exitCode: 1 });
    expect(srv.got.events.map((e) => e.phase)).toEqual(['stage1-started', 'facts-collected', 'registered', 'profile-fetched', 'image-downloaded', 'kexec-started']);
  });

  it('in compute mode reports installed and sends heartbeats', async () => {
    srv = createTestServer({ token: 'per-boot', uuid: UUID });
    const url = await srv.listen(await freePort());
    const cmdline = join(dir, 'cmdline-compute');
    const k = 'c'.repeat(64);
    writeFileSync(cmdline, `bootfarm.server=${url} bootfarm.token=per-boot bootfarm.uuid=${UUID} bootfarm.mode=compute bootfarm.kernel=${k} bootfarm.heartbeat=1\n`);
    // --dry-run: compute mode applies the detail's network (hostname included); this machine must keep its own
    const r = await runBinary(['--cmdline', cmdline, '--max-heartbeats', '2', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(srv.got.installed).toHaveLength(1);
    expect(srv.got.installed[0]!.kernelDigest).toBe(k);
    expect(srv.got.installed[0]!.bootId).toMatch(/^[0-9a-f-]{36}$/); // this machine's real /proc boot_id
    expect(srv.got.heartbeats).toHaveLength(2);
    expect(srv.got.heartbeats[0]!.uptimeSeconds).toBeGreaterThan(0);
    expect(r.stdout).toContain('dry-run: hostname hv-test-01');
    expect(srv.got.events.map((e) => e.phase)).toEqual(['compute-started', 'network-planned']);
  });

  it('exits 2 with usage on a bad flag and 1 with a clear message on a bad command line', async () => {
    expect((await runBinary(['--bogus'])).code).toBe(2);
    const cmdline = join(dir, 'cmdline-bad');
    writeFileSync(cmdline, 'console=ttyS0\n');
    const r = await runBinary(['--cmdline', cmdline]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bootfarm\.server= is missing/);
  });
});
