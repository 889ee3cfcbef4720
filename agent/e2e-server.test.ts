// The compiled agent (`make -s agent`: build/agent/bootfarm-agent) end to end against the REAL server app:
// createApp with the firmware gate and mount over a migrated PGlite, served over HTTP on 127.0.0.1 with
// @hono/node-server. Nothing on the server side is a stand-in except the /images/<sha256> blob route (the image
// store's route lands separately) and the catalog (FixedCatalog, pointing at the blobs below).
//
// The node's story: iPXE asks /ipxe/:uuid and boots stage-1 with the kernel arguments of that script (the boot
// token among them); the binary collects facts, registers, is told to update its BIOS (enforce baseline), runs
// the update for real, registers again with fresh facts, gets its profile, downloads and checks the compute
// kernel + initrd and prints the kexec commands (dry run: this machine keeps running). Then the binary runs in
// compute mode with the kexec command line it printed: installed + heartbeats, and the node is `active`.
//
// Facts: this machine has no SMBIOS, so `dmidecode` on the binary's PATH is a script that prints the captured
// QEMU dmidecode output (test/fixtures/agent) with the BIOS version read from a file; the update command
// rewrites that file. ethtool, lsblk, /proc and /sys are this machine's own; lldpcli fails (no lldpd): reported.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../server/api/app.ts';
import { firmwareMount } from '../server/api/firmware.ts';
import { systemClock } from '../server/clock.ts';
import type { DbHandle } from '../server/db/index.ts';
import { createFirmwareGate } from '../server/domain/firmware-gate.ts';
import { silentLogger } from '../server/log.ts';
import { createSecrets } from '../server/secrets.ts';
import { createBmcStore } from '../server/store/bmcs.ts';
import { createFirmwareStore } from '../server/store/firmware.ts';
import { createNodeStore } from '../server/store/nodes.ts';
import { client, FixedCatalog, TEST_KEY, TEST_PLAN_SIGNER, testConfig, TOKENS } from '../test/fakes/app.ts';
import { createTestDb } from '../test/fakes/db.ts';
import { FIXTURE_DIR } from '../test/support/agent/fixtures.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'build/agent/bootfarm-agent');
const UUID = '4c4c4544-0042-3510-8052-b4c04f4e4d32'; // the captured dmidecode's SMBIOS UUID
const MAC = '52:54:00:e2:e0:01';
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const KERNEL = Buffer.from('bootfarm compute kernel\n'.repeat(2000));
const INITRD = Buffer.from('bootfarm compute initrd\n'.repeat(5000));
const BIOS_PKG = Buffer.from('2.9.1\n');
const blobs = new Map([KERNEL, INITRD, BIOS_PKG].map((b) => [sha256(b), b]));

let db: DbHandle;
let server: ServerType;
let base: string;
let app: ReturnType<typeof createApp>;
let dir: string;
let biosFile: string;

function runBinary(args: string[], env: Record<string, string>, { timeoutMs = 60_000 } = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

beforeAll(async () => {
  // make rebuilds only when agent/ or server/contract/ changed
  execFileSync('make', ['-s', 'agent'], { cwd: ROOT, stdio: 'pipe' });
  dir = mkdtempSync(join(tmpdir(), 'bfagent-e2e-'));
  biosFile = join(dir, 'bios-version');
  writeFileSync(biosFile, '2.7.1\n');
  // the node's dmidecode: the captured output with the BIOS version of the moment
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'dmidecode'), `#!/bin/sh\nexec sed "s/^\tVersion: 2\\.7\\.1$/\tVersion: $(cat '${biosFile}')/" '${join(FIXTURE_DIR, 'dmidecode-qemu-smbios.txt')}'\n`);
  chmodSync(join(dir, 'bin', 'dmidecode'), 0o755);

  db = await createTestDb();
  const clock = systemClock;
  const nodes = createNodeStore(db.db, { clock });
  const firmware = createFirmwareStore(db.db, { clock });
  const bmcs = createBmcStore(db.db, createSecrets(TEST_KEY), { clock });
  const images = new FixedCatalog({ hypervisor: { name: 'hypervisor', version: '7.1.0', kernel: { digest: sha256(KERNEL), size: KERNEL.length }, initrd: { digest: sha256(INITRD), size: INITRD.length }, cmdline: 'quiet' } });
  const blobRoute = new Hono().get('/images/:digest', (c) => {
    const b = blobs.get(c.req.param('digest'));
    return b ? c.body(new Uint8Array(b), 200, { 'content-type': 'application/octet-stream' }) : c.notFound();
  });
  // no publicUrl: every URL the server hands out is the origin it was reached at (http://127.0.0.1:PORT)
  const config = testConfig({ http: {}, profiles: { default: { heartbeatIntervalSeconds: 1 } } });
  app = createApp(
    { config, db, nodes, bmcs, images, inspection: createFirmwareGate({ store: firmware }), log: silentLogger(), clock, planSigner: TEST_PLAN_SIGNER },
    { extra: [firmwareMount({ nodes, firmware, clock, planSigner: TEST_PLAN_SIGNER }), () => ({ at: '/', app: blobRoute })] },
  );
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const baseline = `name: acme-r740
selector: { manufacturer: Acme Servers Inc., product: R740-Test }
policy: enforce
components:
  - type: bios
    minimum: "2.9.0"
    update:
      sha256: ${sha256(BIOS_PKG)}
      command: cp "$BOOTFARM_FIRMWARE_FILE" '${biosFile}' && echo "BIOS now $(cat '${biosFile}')"
      timeoutSeconds: 60
`;
  const applied = await fetch(`${base}/api/v1/firmware/baselines`, { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/yaml' }, body: baseline });
  expect(applied.status).toBe(201);
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The arguments iPXE would hand the stage-1 kernel: the script's `kernel` line, with iPXE's ${netX/mac} filled in. */
function kernelArgs(script: string): string {
  const line = script.split('\n').find((l) => l.startsWith('kernel '));
  if (!line) throw new Error(`no kernel line in:\n${script}`);
  return line
    .replace(/^kernel \S+ /, '')
    .replace(/ \|\| goto failed$/, '')
    .replace('${netX/mac:hexhyp}', MAC.replaceAll(':', '-'));
}

describe('compiled bootfarm-agent against the real server', () => {
  let computeCmdline = '';

  it('stage-1: boot token from /ipxe, facts, register, BIOS update, fresh facts, profile, kexec commands printed', async () => {
    const script = await (await fetch(`${base}/ipxe/${UUID}?mac=${MAC}`)).text();
    const args = kernelArgs(script);
    expect(args).toMatch(new RegExp(`bootfarm\\.server=${base.replace(/[.]/g, '\\.')} bootfarm\\.uuid=${UUID} bootfarm\\.token=\\S+ bootfarm\\.mode=stage1`));
    writeFileSync(join(dir, 'cmdline-stage1'), `${args}\n`);

    const r = await runBinary(['--cmdline', join(dir, 'cmdline-stage1'), '--dry-run', '--work-dir', join(dir, 'work'), '--retry-base-ms', '100'], { PATH: `${join(dir, 'bin')}:${process.env.PATH}` });
    expect(r.code, r.stderr).toBe(0);
    console.log(`stage-1 binary run (2 registrations, 1 BIOS update, 2 downloads): ${r.ms} ms`);
    expect(readFileSync(biosFile, 'utf8')).toBe('2.9.1\n');

    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe('dry-run: kexec -e');
    const m = /^dry-run: kexec -l (\S+) --initrd=(\S+) '--append=([^']*)'$/.exec(lines[0]!);
    expect(m, lines[0]).not.toBeNull();
    expect(m![1]).toBe(join(dir, 'work', 'kernel'));
    // the compute OS's command line: the image's, then the server's parameters with this boot's node credential
    // (issued with the profile; the stage-1 token stays behind in stage-1)
    computeCmdline = m![3]!;
    const stage1Token = /bootfarm\.token=(\S+)/.exec(args)![1]!;
    const credential = /bootfarm\.token=(\S+)/.exec(computeCmdline)![1]!;
    expect(credential).not.toBe(stage1Token);
    expect(computeCmdline).toBe(
      `quiet bootfarm.server=${base} bootfarm.uuid=${UUID} bootfarm.token=${credential} bootfarm.mode=compute bootfarm.kernel=${sha256(KERNEL)} bootfarm.initrd=${sha256(INITRD)} bootfarm.heartbeat=1`,
    );
    expect(sha256(readFileSync(join(dir, 'work', 'kernel')))).toBe(sha256(KERNEL));

    const api = client(app);
    const node = (await api.get(`/api/v1/nodes/${UUID}`, { token: TOKENS.viewer })).json;
    expect(node.node).toMatchObject({ state: 'provisioning', imageName: 'hypervisor', imageVersion: '7.1.0' });
    expect(node.facts.facts.bios.version).toBe('2.9.1');
    const fw = (await api.get(`/api/v1/firmware/nodes/${UUID}`, { token: TOKENS.viewer })).json;
    expect(fw.compliance).toMatchObject({ state: 'compliant', components: [{ component: 'bios', current: '2.9.1' }] });
  });

  it('compute: installed + heartbeats with the printed command line; the node is active, with its whole timeline', async () => {
    expect(computeCmdline).not.toBe('');
    writeFileSync(join(dir, 'cmdline-compute'), `${computeCmdline}\n`);
    // --dry-run: compute mode applies the detail's network (hostname included); this machine must keep its own
    const r = await runBinary(['--cmdline', join(dir, 'cmdline-compute'), '--max-heartbeats', '2', '--dry-run'], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/installed: reported \(boot [0-9a-f-]{36}\)/);

    const api = client(app);
    const list = (await api.get(`/api/v1/nodes?state=active`, { token: TOKENS.viewer })).json as { nodes: { uuid: string; state: string; lastHeartbeat: string | null }[] };
    expect(list.nodes.map((n) => [n.uuid, n.state])).toEqual([[UUID, 'active']]);
    expect(list.nodes[0]!.lastHeartbeat).not.toBeNull();
    const events = (await api.get(`/api/v1/nodes/${UUID}/events?limit=1000`, { token: TOKENS.viewer })).json.events.slice().reverse() as { kind: string; actor: string; reason: string | null; toState: string | null; data: { phase?: string; message?: string; data?: Record<string, unknown> } | null }[];
    const agent = events.filter((e) => e.actor === 'agent' && e.kind !== 'ipam' && e.data?.message !== undefined).map((e) => e.data!.phase);
    expect(agent).toEqual([
      ...['stage1-started', 'facts-collected', 'registered', 'firmware-check', 'firmware-updating', 'firmware-updated'],
      ...['facts-collected', 'registered', 'profile-fetched', 'image-downloaded', 'kexec-started'],
      'compute-started',
      'network-planned',
    ]);
    // the dry run printed the detail's bond (this machine's eth0 + ifb0, from its facts) instead of making it: the
    // heartbeat's read-back says so, and the server's comparison turns that into a network-mismatch event
    expect(events.find((e) => e.data?.phase === 'network-planned')?.data?.data?.['ran']).toEqual(expect.arrayContaining(['ip link add bond0 type bond mode 802.3ad miimon 100']));
    expect(events.filter((e) => e.reason === 'network-mismatch').map((e) => e.data?.message)).toEqual([expect.stringMatching(/^the compute OS configured its network differently: bond absent, expected 802\.3ad/)]);
    expect(events.filter((e) => e.kind === 'transition').map((e) => e.toState)).toEqual(['discovered', 'inspecting', 'firmware-updating', 'inspecting', 'ready', 'provisioning', 'active']);
    expect(events.find((e) => e.data?.phase === 'facts-collected')?.data?.data).toMatchObject({ failedProbes: expect.arrayContaining(['lldp']) });
    // the token is on the timeline nowhere (the agent redacts the cmdline it reports)
    const token = /bootfarm\.token=(\S+)/.exec(computeCmdline)![1]!;
    expect(JSON.stringify(events)).not.toContain(token);
    expect(events.find((e) => e.data?.phase === 'kexec-started')?.data?.data?.['cmdline']).toContain('bootfarm.token=<redacted>');
  });
});
