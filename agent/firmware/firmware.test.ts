// The agent's firmware step against the REAL server: createApp with the firmware mount and the firmware gate
// over a migrated PGlite, served over HTTP on 127.0.0.1 (@hono/node-server). The agent runs its whole stage-1
// flow (runAgent) with firmwareUpdateStep: real downloads with real sha256 checks, real `sh -c` update commands
// that rewrite a fake BIOS-version file, and a dmidecode that reads that file (captured QEMU dmidecode output
// with the BIOS version, UUID and product taken from the test: this machine has no SMBIOS to flash).
// The packages are served at /images/<sha256> by a small blob route, standing in for the image store's route.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../server/api/app.ts';
import { firmwareMount } from '../../server/api/firmware.ts';
import { systemClock } from '../../server/clock.ts';
import type { DbHandle } from '../../server/db/index.ts';
import { createFirmwareGate } from '../../server/domain/firmware-gate.ts';
import { silentLogger } from '../../server/log.ts';
import { createSecrets } from '../../server/secrets.ts';
import { createBmcStore } from '../../server/store/bmcs.ts';
import { createFirmwareStore } from '../../server/store/firmware.ts';
import { createNodeStore } from '../../server/store/nodes.ts';
import { bootToken, client, FixedCatalog, TEST_KEY, TEST_PLAN_SIGNER, testConfig, TOKENS } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { spawnExec, type Exec } from '../exec.ts';
import { runAgent } from '../flow.ts';
import { fixture, FixtureExec } from '../../test/support/agent/fixtures.ts';
import { firmwareUpdateStep } from './index.ts';
import { createPlanSigner, PLAN_SIGNATURE_HEADER } from '../../server/contract/plan-signature.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const FIXTURE_UUID = '4c4c4544-0042-3510-8052-b4c04f4e4d32';

// blobs the server hands out at /images/<sha256>: the compute image and the firmware packages
const KERNEL = Buffer.from('compute kernel\n'.repeat(300));
const INITRD = Buffer.from('compute initrd\n'.repeat(700));
const BIOS_291 = Buffer.from('2.9.1\n');
const BIOS_300 = Buffer.from('3.0.0\n');
const blobs = new Map([KERNEL, INITRD, BIOS_291, BIOS_300].map((b) => [sha256(b), b]));

let db: DbHandle;
let server: ServerType;
let base: string;
let app: ReturnType<typeof createApp>;
let api: ReturnType<typeof client>;
let dir: string;
let blobGets: string[] = [];
let firmware: ReturnType<typeof createFirmwareStore>;

/** "flash" = copy the package (a version string) over the node's BIOS file; prove the variable and the digest */
const FLASH = `set -e; echo "flashing $BOOTFARM_FIRMWARE_COMPONENT from $BOOTFARM_FIRMWARE_FILE"; test -s "$BOOTFARM_FIRMWARE_FILE"; cp "$BOOTFARM_FIRMWARE_FILE" "$BIOS_FILE"; echo "BIOS now $(cat "$BIOS_FILE")"`;

const baselines = `
- name: flash-then-boot
  selector: { manufacturer: Acme Servers Inc., product: FW-Direct }
  policy: enforce
  components:
    - type: bios
      minimum: "2.9.0"
      update: { sha256: ${sha256(BIOS_291)}, command: 'BIOS_FILE=${'${BIOS_DIR}'}/direct ; ${FLASH}', timeoutSeconds: 60, reboot: false }
- name: flash-then-reboot
  selector: { manufacturer: Acme Servers Inc., product: FW-Reboot }
  policy: enforce
  components:
    - type: bios
      minimum: "3.0.0"
      update: { sha256: ${sha256(BIOS_300)}, command: 'BIOS_FILE=${'${BIOS_DIR}'}/reboot ; ${FLASH}', timeoutSeconds: 60, reboot: true }
- name: broken-updater
  selector: { manufacturer: Acme Servers Inc., product: FW-Broken }
  policy: enforce
  maxAttempts: 2
  components:
    - type: bios
      minimum: "2.9.0"
      update: { sha256: ${sha256(BIOS_291)}, command: 'echo "checking $BOOTFARM_FIRMWARE_FILE"; echo "flash verify failed at block 7" >&2; exit 3', timeoutSeconds: 60 }
- name: hung-updater
  selector: { manufacturer: Acme Servers Inc., product: FW-Hung }
  policy: enforce
  maxAttempts: 1
  components:
    - type: bios
      minimum: "2.9.0"
      update: { sha256: ${sha256(BIOS_291)}, command: 'exec sleep 30', timeoutSeconds: 1 }
- name: tampered-package
  selector: { manufacturer: Acme Servers Inc., product: FW-Tampered }
  policy: enforce
  maxAttempts: 1
  components:
    - type: bios
      minimum: "2.9.0"
      update: { sha256: ${'e'.repeat(64)}, command: 'touch "$BIOS_DIR/tampered-ran"', timeoutSeconds: 60 }
`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bfagent-fw-'));
  db = await createTestDb();
  const clock = systemClock;
  const nodes = createNodeStore(db.db, { clock });
  firmware = createFirmwareStore(db.db, { clock });
  const bmcs = createBmcStore(db.db, createSecrets(TEST_KEY), { clock });
  const images = new FixedCatalog({ hypervisor: { name: 'hypervisor', version: '7.1.0', kernel: { digest: sha256(KERNEL), size: KERNEL.length }, initrd: { digest: sha256(INITRD), size: INITRD.length }, cmdline: 'quiet' } });
  const blobRoute = new Hono().get('/images/:digest', (c) => {
    blobGets.push(c.req.param('digest'));
    const b = blobs.get(c.req.param('digest'));
    return b ? c.body(new Uint8Array(b), 200, { 'content-type': 'application/octet-stream' }) : c.json({ error: { code: 'not_found', message: 'no such blob' } }, 404);
  });
  // every node of this file boots from 127.0.0.1, more often than the per-address limits allow: they are off here
  // no publicUrl: the server tells the node the origin it was reached at (http://127.0.0.1:PORT)
  app = createApp(
    { config: testConfig({ http: {}, boot: { rateLimit: { agent: { perMinute: 0, burst: 1 }, ipxe: { perMinute: 0, burst: 1 } } } }), db, nodes, bmcs, images, inspection: createFirmwareGate({ store: firmware }), log: silentLogger(), clock, planSigner: TEST_PLAN_SIGNER },
    { extra: [firmwareMount({ nodes, firmware, clock, planSigner: TEST_PLAN_SIGNER }), () => ({ at: '/', app: blobRoute })] },
  );
  api = client(app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve());
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const applied = await app.request('/api/v1/firmware/baselines', { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/yaml' }, body: baselines });
  expect(applied.status, await applied.clone().text()).toBe(201);
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Node {
  uuid: string;
  product: string;
  biosFile: string;
  sysNet: string;
  workDir: string;
  cmdline: string;
}

/** A node: its BIOS file, one NIC in a fake sysfs, a work dir; facts come from these on every collection. */
function makeNode(n: number, product: string, bios: string, biosName: string): Node {
  const uuid = `4c4c4544-0042-3510-8052-b4c04f4e4e${String(n).padStart(2, '0')}`;
  const root = join(dir, product);
  mkdirSync(join(root, 'net', 'eth0'), { recursive: true });
  for (const [f, v] of Object.entries({ type: '1', address: `52:54:00:fa:00:${String(n).padStart(2, '0')}`, operstate: 'up', mtu: '1500' })) writeFileSync(join(root, 'net', 'eth0', f), `${v}\n`);
  const biosFile = join(dir, biosName);
  writeFileSync(biosFile, `${bios}\n`);
  return { uuid, product, biosFile, sysNet: join(root, 'net'), workDir: join(root, 'work'), cmdline: join(root, 'cmdline') };
}

function nodeExec(node: Node): Exec {
  const rest = new FixtureExec({ 'ethtool -i eth0': 'ethtool-i-virtio_net.txt', 'lldpcli -f json0 show neighbors details': 'lldpcli-json0-one-neighbor.json' });
  const real = spawnExec();
  return async (cmd, args, opts) => {
    if (cmd === 'dmidecode') {
      const out = fixture('dmidecode-qemu-smbios.txt')
        .replace('Version: 2.7.1', `Version: ${readFileSync(node.biosFile, 'utf8').trim()}`)
        .replace(FIXTURE_UUID, node.uuid)
        .replace('R740-Test', node.product)
        .replace('BF-SN-000123', `SN-${node.product}`);
      return { command: 'dmidecode', exitCode: 0, signal: null, stdout: out, stderr: '', timedOut: false };
    }
    // the update commands run for real; BIOS_DIR tells them where this test keeps the BIOS files
    if (cmd === 'sh') return real(cmd, args, { ...opts, env: { ...opts?.env, BIOS_DIR: dir } });
    return rest.exec(cmd, args, opts);
  };
}

/** What stands between the agent and the server: here the plan response can be altered in transit (a stand-in for
 * an attacker on the plain-HTTP segment; the server under it is real). */
type Tamper = (url: string, res: Response) => Promise<Response>;

async function stage1(node: Node, { holdStops = false, planKey = TEST_PLAN_SIGNER.publicKey as string | null, tamper }: { holdStops?: boolean; planKey?: string | null; tamper?: Tamper } = {}) {
  const token = await bootToken(app, node.uuid);
  writeFileSync(node.cmdline, `console=ttyS0 bootfarm.server=${base} bootfarm.token=${token} bootfarm.uuid=${node.uuid} bootfarm.mode=stage1${planKey ? ` bootfarm.planKey=${planKey}` : ''}\n`);
  const printed: string[] = [];
  const logged: string[] = [];
  const result = await runAgent({
    exec: nodeExec(node),
    fetch: async (i, init) => {
      const res = await fetch(i, init);
      return tamper && (init?.method ?? 'GET') === 'GET' && /\/firmware$/.test(i) ? tamper(i, res) : res;
    },
    // a hold (quarantine) would wait for an operator: the test stops there
    sleep: async (ms) => {
      if (holdStops && ms === 7000) throw new Error('held');
    },
    now: () => new Date(),
    random: () => 0.5,
    holdSeconds: 7,
    attempts: 3,
    backoff: { baseMs: 1 },
    dryRun: true,
    firmware: firmwareUpdateStep,
    paths: { cmdline: node.cmdline, workDir: node.workDir, sysNet: node.sysNet, productUuid: join(dir, 'no-such-file'), ipmiDevice: join(dir, 'no-ipmi') },
    log: (l) => logged.push(l),
    print: (l) => printed.push(l),
  }).catch((e: Error) => ({ outcome: 'error' as const, message: e.message }));
  return { result, printed, logged, token };
}

type Ev = { kind: string; reason: string | null; toState: string | null; actor: string; data: { phase?: string; message?: string; data?: Record<string, unknown> } | null };

/** the agent's own phases, in order (the server writes `registered` too: that one has no message) */
const agentPhases = (events: Ev[]) => events.filter((e) => e.kind === 'phase' && e.actor === 'agent' && e.data?.message !== undefined).map((e) => e.data!.phase);

describe('firmware step against the real server', () => {
  it('flashes, registers again with fresh facts, and boots on without a reboot', async () => {
    const node = makeNode(1, 'FW-Direct', '2.7.1', 'direct');
    blobGets = [];
    const { result, printed } = await stage1(node);
    expect(result.outcome, JSON.stringify(result)).toBe('kexec');
    expect(readFileSync(node.biosFile, 'utf8')).toBe('2.9.1\n');
    expect(printed[0]).toMatch(/^dry-run: kexec -l .*bootfarm\.mode=compute/);
    // the package was fetched by digest and removed after its step
    expect(blobGets[0]).toBe(sha256(BIOS_291));
    expect(readdirSync(node.workDir).filter((f) => f.startsWith('firmware-'))).toEqual([]);

    const events = (await api.get(`/api/v1/nodes/${node.uuid}/events?limit=1000`, { token: TOKENS.viewer })).json.events.slice().reverse() as Ev[];
    expect(agentPhases(events)).toEqual(['stage1-started', 'facts-collected', 'registered', 'firmware-check', 'firmware-updating', 'firmware-updated', 'facts-collected', 'registered', 'profile-fetched', 'image-downloaded', 'kexec-started']);
    const updating = events.find((e) => e.data?.phase === 'firmware-updating')!;
    expect(updating.data!.message).toBe('bios: 2.7.1 → ≥ 2.9.0');
    // the server's own story: planned on old facts, the report noted, ready only on the fresh facts
    expect(events.filter((e) => e.kind === 'firmware' || (e.kind === 'transition' && e.toState !== 'inspecting')).map((e) => e.toState ?? e.reason)).toEqual([
      'discovered',
      'firmware plan 1: bios 2.7.1 → ≥ 2.9.0',
      'firmware-updating',
      'firmware attempt 1: all 1 update(s) ran',
      'ready',
      'provisioning',
    ]);
    const row = (await api.get(`/api/v1/firmware/nodes/${node.uuid}`, { token: TOKENS.viewer })).json;
    expect(row.compliance).toMatchObject({ state: 'compliant', components: [{ component: 'bios', current: '2.9.1', status: 'compliant' }] });
  });

  it('reports the output of each step, and reboots (printed on a dry run) when the plan says so; the next boot is ready', async () => {
    const node = makeNode(2, 'FW-Reboot', '2.9.1', 'reboot');
    const first = await stage1(node);
    expect(first.result).toEqual({ outcome: 'reboot', reason: expect.stringMatching(/^firmware attempt 1: bios exit 0; takes effect after a reboot$/) });
    expect(first.printed).toEqual(['dry-run: reboot']);
    // the stored report: what the agent ran and printed
    const attempt = await firmware.latestAttempt(node.uuid);
    expect(attempt?.results).toEqual([
      expect.objectContaining({ component: 'bios', exitCode: 0, sha256: sha256(BIOS_300), stdout: expect.stringMatching(/^flashing bios from .*firmware-[0-9a-f]{64}\nBIOS now 3\.0\.0\n$/) }),
    ]);
    // the server still reads 2.9.1 until the node registers with fresh facts after the reboot
    expect((await api.get(`/api/v1/firmware/nodes/${node.uuid}`, { token: TOKENS.viewer })).json.compliance.components[0]).toMatchObject({ current: '2.9.1', status: 'updating' });

    const second = await stage1(node);
    expect(second.result.outcome).toBe('kexec');
    const phases = agentPhases((await api.get(`/api/v1/nodes/${node.uuid}/events?limit=1000`, { token: TOKENS.viewer })).json.events.slice().reverse());
    expect(phases).toEqual([
      ...['stage1-started', 'facts-collected', 'registered', 'firmware-check', 'firmware-updating', 'firmware-updated'],
      ...['stage1-started', 'facts-collected', 'registered', 'profile-fetched', 'image-downloaded', 'kexec-started'],
    ]);
  });

  it('reports a failing updater with its stderr, tries again with fresh facts, and stops when the server quarantines', async () => {
    const node = makeNode(3, 'FW-Broken', '2.7.1', 'broken');
    const { result } = await stage1(node, { holdStops: true });
    expect(result).toMatchObject({ outcome: 'error', message: 'held' });
    const events = (await api.get(`/api/v1/nodes/${node.uuid}/events?limit=1000`, { token: TOKENS.viewer })).json.events.slice().reverse() as Ev[];
    const failed = events.filter((e) => e.data?.phase === 'firmware-failed');
    expect(failed.map((e) => e.data!.message)).toEqual(['attempt 1: bios exit 3', 'attempt 2: bios exit 3']);
    expect(failed[0]!.data!.data).toMatchObject({ stderr: 'flash verify failed at block 7\n' });
    expect(events.filter((e) => e.kind === 'firmware').map((e) => e.reason)).toEqual([
      'firmware plan 1: bios 2.7.1 → ≥ 2.9.0',
      'firmware attempt 1 failed: bios exit 3',
      'firmware plan 2: bios 2.7.1 → ≥ 2.9.0',
      'firmware attempt 2 failed: bios exit 3',
    ]);
    const nodeView = (await api.get(`/api/v1/nodes/${node.uuid}`, { token: TOKENS.viewer })).json;
    expect(JSON.stringify(nodeView)).toContain('still bios 2.7.1 → ≥ 2.9.0 after 2 update attempts');
    expect(readFileSync(node.biosFile, 'utf8')).toBe('2.7.1\n');
  });

  it('kills an updater at its timeout and reports it as timed out', async () => {
    const node = makeNode(4, 'FW-Hung', '2.7.1', 'hung');
    // `exec sleep 30` puts sleep in sh's place, so the kill at 1 s reaches it (see agent/README.md on children)
    const { result } = await stage1(node, { holdStops: true });
    expect(result).toMatchObject({ outcome: 'error', message: 'held' });
    const events = (await api.get(`/api/v1/nodes/${node.uuid}/events?limit=1000`, { token: TOKENS.viewer })).json.events.slice().reverse() as Ev[];
    expect(events.find((e) => e.data?.phase === 'firmware-failed')?.data?.message).toBe('attempt 1: bios exit none (timed out)');
    expect(events.filter((e) => e.kind === 'firmware').map((e) => e.reason)).toContain('firmware attempt 1 failed: bios exit none (timed out)');
  });

  it('refuses a package whose sha256 does not match and never runs its command', async () => {
    // the server has no blob with the planned digest: serve other bytes under that name
    blobs.set('e'.repeat(64), Buffer.from('not the firmware you are looking for'));
    const node = makeNode(5, 'FW-Tampered', '2.7.1', 'tampered');
    const { result } = await stage1(node, { holdStops: true });
    expect(result).toMatchObject({ outcome: 'error', message: 'held' });
    const events = (await api.get(`/api/v1/nodes/${node.uuid}/events?limit=1000`, { token: TOKENS.viewer })).json.events.slice().reverse() as Ev[];
    const failed = events.find((e) => e.data?.phase === 'firmware-failed')!;
    expect(failed.data!.message).toBe('attempt 1: bios exit none');
    expect(failed.data!.data!['stderr']).toMatch(/^download: GET http:\/\/127\.0\.0\.1:\d+\/images\/e{64}: sha256 is [0-9a-f]{64}, the profile says e{64}/);
    expect(readdirSync(dir)).not.toContain('tampered-ran');
  });
});

// the tests above run signed plans end to end (the agent now refuses any other): these are the refusals
describe('signed plans: the agent runs nothing it cannot verify (issue 16 item 7)', () => {
  /** the same plan bytes with one changed: the update command's timeout (a digit, so the JSON stays valid) */
  const flipByte: Tamper = async (_url, res) => {
    const text = await res.text();
    const altered = text.replace('"timeoutSeconds":60', '"timeoutSeconds":61');
    expect(altered).not.toBe(text);
    return new Response(altered, { status: res.status, headers: res.headers });
  };
  const dropSignature: Tamper = async (_url, res) => {
    const headers = new Headers(res.headers);
    headers.delete(PLAN_SIGNATURE_HEADER);
    return new Response(await res.text(), { status: res.status, headers });
  };

  async function refused(n: number, opts: Parameters<typeof stage1>[1]) {
    const node = makeNode(n, 'FW-Direct', '2.7.1', `refused-${n}`);
    const { result } = await stage1(node, opts);
    const events = (await api.get(`/api/v1/nodes/${node.uuid}/events?limit=1000`, { token: TOKENS.viewer })).json.events.slice().reverse() as Ev[];
    const refusal = events.find((e) => e.data?.phase === 'firmware-refused');
    // nothing ran: the BIOS file is untouched, no step started, no report reached the server
    expect(readFileSync(node.biosFile, 'utf8')).toBe('2.7.1\n');
    expect(agentPhases(events)).not.toContain('firmware-updating');
    expect((await firmware.latestAttempt(node.uuid))?.results ?? null).toBeNull();
    return { result, refusal };
  }

  it('the plan route signs the exact bytes it sends, and the boot script carries the key', async () => {
    const node = makeNode(20, 'FW-Direct', '2.7.1', 'signed-route');
    const script = (await api.get(`/ipxe/${node.uuid}`)).text;
    expect(script).toContain(`bootfarm.planKey=${TEST_PLAN_SIGNER.publicKey}`);
    const token = /bootfarm\.token=(\S+)/.exec(script)![1]!;
    const res = await app.request(`/api/v1/agent/${node.uuid}/firmware`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(res.headers.get(PLAN_SIGNATURE_HEADER)).toBe(TEST_PLAN_SIGNER.sign(body));
  });

  it('refuses a plan with one altered byte', async () => {
    const { result, refusal } = await refused(22, { tamper: flipByte });
    expect(result).toMatchObject({ outcome: 'error', message: expect.stringContaining('firmware plan refused (bad-signature)') });
    expect(refusal?.data?.message).toMatch(/^firmware plan refused, nothing was run: the firmware plan does not match its signature/);
    expect(refusal?.data?.data).toMatchObject({ reason: 'bad-signature' });
  });

  it('refuses a plan without a signature', async () => {
    const { result, refusal } = await refused(23, { tamper: dropSignature });
    expect(result).toMatchObject({ outcome: 'error', message: expect.stringContaining('(unsigned)') });
    expect(refusal?.data?.data).toMatchObject({ reason: 'unsigned' });
  });

  it('refuses a plan signed by another key than the one the node booted with', async () => {
    const other = createPlanSigner(Buffer.alloc(32, 1));
    const { result, refusal } = await refused(24, { planKey: other.publicKey });
    expect(result).toMatchObject({ outcome: 'error', message: expect.stringContaining('(bad-signature)') });
    expect(refusal?.data?.data).toMatchObject({ reason: 'bad-signature' });
  });

  it('refuses a plan re-signed by an attacker with their own key', async () => {
    const attacker = createPlanSigner(Buffer.alloc(32, 2));
    const resign: Tamper = async (_url, res) => {
      const text = (await res.text()).replace(/"command":"[^"]*"/, '"command":"touch /tmp/pwned"');
      const headers = new Headers(res.headers);
      headers.set(PLAN_SIGNATURE_HEADER, attacker.sign(text));
      return new Response(text, { status: res.status, headers });
    };
    const { refusal } = await refused(25, { tamper: resign });
    expect(refusal?.data?.data).toMatchObject({ reason: 'bad-signature' });
  });

  it('refuses every plan when the boot carries no key', async () => {
    const { refusal } = await refused(26, { planKey: null });
    expect(refusal?.data?.data).toMatchObject({ reason: 'no-key' });
  });

  it("refuses another node's genuine signed plan replayed at this node", async () => {
    const victim = makeNode(27, 'FW-Direct', '2.7.1', 'replay-victim');
    const donor = makeNode(28, 'FW-Direct', '2.7.1', 'replay-donor');
    // the donor registers and gets a plan of its own (its agent is stopped before it runs anything)
    await stage1(donor, { tamper: dropSignature });
    const donorToken = await bootToken(app, donor.uuid);
    const donorPlan = await app.request(`/api/v1/agent/${donor.uuid}/firmware`, { headers: { authorization: `Bearer ${donorToken}` } });
    const donorBody = await donorPlan.text();
    expect(JSON.parse(donorBody).uuid).toBe(donor.uuid);
    const replay: Tamper = async () => new Response(donorBody, { status: 200, headers: donorPlan.headers });
    const { result } = await stage1(victim, { tamper: replay });
    expect(result).toMatchObject({ outcome: 'error', message: expect.stringContaining('(other-node)') });
    expect(readFileSync(victim.biosFile, 'utf8')).toBe('2.7.1\n');
  });
});

