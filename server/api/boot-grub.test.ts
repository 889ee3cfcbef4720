// Issue 19 item 1: /grub/<uuid>.cfg, the Secure Boot path's /ipxe/<uuid>. Through the real app over a migrated
// PGlite: each decision (stage-1, hold, retry, the discovered cap) matches what /ipxe says for the same node, a
// stage-1 token from here is a real boot attempt token, hostile values never reach the script unquoted, and an
// untrusted source gets what /ipxe gives it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootNetworkConfig, client, createTestApp, FixedCatalog, sampleFacts, testConfig, TOKENS } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { FakeClock } from '../clock.ts';
import { createFsOpener } from '../../boot/tftp/index.ts';
import { withGrubOverTftp } from '../secure-boot.ts';
import type { DbHandle } from '../db/index.ts';
import type { ImageCatalog } from '../domain/images.ts';

const NODE_IP = '10.0.0.21';
let db: DbHandle;
let t: ReturnType<typeof createTestApp>;
let api: ReturnType<typeof client>;
const clock = new FakeClock('2026-01-01T00:00:00Z');
let n = 0;
const nextUuid = () => `9b0b0000-0000-4000-8000-${String(++n).padStart(12, '0')}`;

beforeAll(async () => {
  db = await createTestDb();
  t = createTestApp(db, { clock });
  api = client(t.app, { from: NODE_IP });
});
afterAll(async () => db?.close());

describe('GET /grub/grub.cfg', () => {
  it('chains to the per-node config by SMBIOS UUID on this server', async () => {
    const r = await api.get('/grub/grub.cfg');
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.text).toContain('smbios --type 1 --get-uuid 8 --set bf_uuid');
    expect(r.text).toContain('configfile "/grub/${bf_uuid}.cfg"');
  });
});

describe('GET /grub/<uuid>.cfg makes the /ipxe/<uuid> decision', () => {
  it('stage-1: linux + initrd from this server with a boot attempt token the agent can register with', async () => {
    const U = nextUuid();
    const r = await api.get(`/grub/${U}.cfg`);
    expect(r.status).toBe(200);
    const digest = (c: string) => c.repeat(64);
    expect(r.text).toContain(`if linux '/images/${digest('a')}' 'quiet' `);
    expect(r.text).toContain(`'bootfarm.server=http://10.0.0.1:8080' 'bootfarm.uuid=${U}'`);
    expect(r.text).toContain(`  if initrd '/images/${digest('b')}'; then`);
    expect(r.text).toContain(`configfile '/grub/${U}.cfg'`);
    const token = /'bootfarm\.token=([^']+)'/.exec(r.text)![1]!;
    const reg = await api.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U) } });
    expect(reg.status).toBe(200);
    expect(reg.json.state).toBe('ready');
    const ev = (await client(t.app).get(`/api/v1/nodes/${U}/events`, { token: TOKENS.viewer })).json.events as { reason: string; data: Record<string, unknown> }[];
    expect(ev.find((e) => e.reason === 'ipxe-script')?.data).toMatchObject({ loader: 'shim-grub', platform: 'efi' });
  });

  it('hold: a node in maintenance is told why and exits, with a hostile reason made harmless', async () => {
    const U = nextUuid();
    await api.get(`/grub/${U}.cfg`);
    const reason = "PSU'; reboot; echo '${x}\nlinux (http,evil)/k";
    expect((await client(t.app).post(`/api/v1/nodes/${U}/actions`, { token: TOKENS.operator, body: { action: 'maintenance-on', reason } })).status).toBe(200);
    const r = await api.get(`/grub/${U}.cfg`);
    expect(r.text).toBe(
      [`# bootfarm: node ${U} is maintenance`, `echo 'bootfarm: node ${U} is maintenance: PSU?; reboot; echo ???x??linux (http,evil)/k'`, "echo 'bootfarm: not booting; exiting to the next boot device'", 'sleep 5', 'exit 1', ''].join('\n'),
    );
    expect((await api.get(`/ipxe/${U}`)).text).toMatch(/is maintenance: .*\nexit 1\n$/s);
  });

  it('retry: a running node is not handed a second token, like /ipxe', async () => {
    const U = nextUuid();
    const first = await api.get(`/grub/${U}.cfg`);
    const token = /'bootfarm\.token=([^']+)'/.exec(first.text)![1]!;
    expect((await api.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U, { macs: ['52:54:00:9b:00:01'] }) } })).status).toBe(200);
    const profile = await api.get(`/api/v1/agent/${U}/profile`, { token });
    const credential = /bootfarm\.token=(\S+)/.exec(profile.json.cmdline)![1]!;
    expect((await api.post(`/api/v1/agent/${U}/installed`, { token: credential, body: {} })).json).toEqual({ state: 'active' });
    expect((await api.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: { uptimeSeconds: 5 } })).status).toBe(200);
    const again = await api.get(`/grub/${U}.cfg`);
    expect(again.text).not.toContain('bootfarm.token=');
    expect(again.text).toMatch(/^# bootfarm: waiting\n/);
    expect(again.text).toContain(`configfile '/grub/${U}.cfg'`);
    const ipxe = await api.get(`/ipxe/${U}`);
    expect(ipxe.text).not.toContain('bootfarm.token=');
    // the same message in both languages
    expect(again.text.split('\n')[1]!.replace(/^echo 'bootfarm: |'$/g, '')).toBe(/echo bootfarm: (.*)/.exec(ipxe.text)![1]);
  });

  it('retry: no stage-1 image published', async () => {
    const empty: ImageCatalog = { resolve: async () => null };
    const db2 = await createTestDb();
    try {
      const r = await client(createTestApp(db2, { images: empty }).app).get(`/grub/${nextUuid()}.cfg`);
      expect(r.text).toContain("echo 'bootfarm: no stage-1 image is published in stage1:prod'");
      expect(r.text).not.toContain('linux ');
    } finally {
      await db2.close();
    }
  });

  it('an image whose command line cannot be quoted is never rendered: the node is told to retry', async () => {
    const hostile = new FixedCatalog({ stage1: { name: 'stage1', version: '6.6.6', kernel: { digest: 'c'.repeat(64), size: 1 }, initrd: { digest: 'd'.repeat(64), size: 1 }, cmdline: "quiet';reboot;'" } });
    const db2 = await createTestDb();
    try {
      const r = await client(createTestApp(db2, { images: hostile }).app).get(`/grub/${nextUuid()}.cfg`);
      expect(r.status).toBe(200);
      expect(r.text).not.toContain('reboot');
      expect(r.text).not.toContain('linux ');
      expect(r.text).toMatch(/^# bootfarm: waiting\n/);
    } finally {
      await db2.close();
    }
  });

  it('refuses what is not a UUID as /ipxe does', async () => {
    expect((await api.get('/grub/not-a-uuid.cfg')).status).toBe(400);
    expect((await api.get("/grub/x';reboot.cfg")).status).toBe(400);
  });
});

describe('trust rules are those of /ipxe', () => {
  it('an untrusted source gets the same refusal from /grub as from /ipxe, and enrols nothing', async () => {
    const db2 = await createTestDb();
    try {
      const app = createTestApp(db2, { config: { ...bootNetworkConfig({ trustedNetworks: ['10.20.0.0/24'] }), http: { ...testConfig().http } } }).app;
      const outside = client(app, { from: '10.9.9.9' });
      const U = nextUuid();
      const ipxe = await outside.get(`/ipxe/${U}`);
      for (const path of [`/grub/${U}.cfg`, '/grub/grub.cfg']) {
        const g = await outside.get(path);
        expect(g.status).toBe(ipxe.status);
        expect(g.status).toBe(403);
        expect(g.json.error.code).toBe(ipxe.json.error.code);
      }
      expect((await client(app).get('/api/v1/nodes', { token: TOKENS.viewer })).json.nodes).toEqual([]);
      const inside = await client(app, { from: '10.20.0.5' }).get(`/grub/${U}.cfg`);
      expect(inside.text).toContain('bootfarm.token=');
    } finally {
      await db2.close();
    }
  });
});

describe('the per-source rate limit of /ipxe covers /grub', () => {
  it('over the limit a GRUB client gets a GRUB wait-and-retry config, not an iPXE script', async () => {
    const db2 = await createTestDb();
    try {
      const base = testConfig();
      const config = { ...base, boot: { ...base.boot, rateLimit: { ...base.boot.rateLimit, ipxe: { perMinute: 1, burst: 1 } } } };
      const node = client(createTestApp(db2, { config }).app, { from: NODE_IP });
      expect((await node.get('/grub/grub.cfg')).text).toContain('smbios');
      const limited = await node.get(`/grub/${nextUuid()}.cfg`);
      expect(limited.headers.get('retry-after')).not.toBeNull();
      expect(limited.text).toMatch(/^# bootfarm: waiting\n/);
      expect(limited.text).toContain("configfile '/grub/grub.cfg'");
      expect(limited.text).not.toContain('#!ipxe');
    } finally {
      await db2.close();
    }
  });
});

describe('profile option bootloader', () => {
  it('defaults to ipxe and accepts shim-grub only', () => {
    expect(testConfig().profiles.default!.bootloader).toBe('ipxe');
    expect(testConfig({ profiles: { sb: { bootloader: 'shim-grub' } } }).profiles.sb!.bootloader).toBe('shim-grub');
    expect(() => testConfig({ profiles: { sb: { bootloader: 'pxelinux' } } })).toThrow(/bootloader/);
  });
});

// Debian's signed grubnetx64 has no http module (docs/secure-boot.md): it reads its configs from (tftp,SERVER), and
// the TFTP edge asks this same app in-process, as the TFTP client
describe('the same routes over TFTP (withGrubOverTftp)', () => {
  const readAll = async (f: Awaited<ReturnType<ReturnType<typeof withGrubOverTftp>>>) => {
    if (!f) return null;
    if (f.read) return (await f.read(0, f.size)).toString();
    const chunks: Buffer[] = [];
    for await (const c of f.stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  };

  it('answers grub/grub.cfg and grub/<uuid>.cfg with a stage-1 config whose token is a boot attempt of the TFTP client', async () => {
    const db2 = await createTestDb();
    try {
      const app = createTestApp(db2, { config: { ...bootNetworkConfig({ trustedNetworks: ['10.20.0.0/24'] }), http: { ...testConfig().http } } }).app;
      const open = withGrubOverTftp(createFsOpener({ ipxeDefaults: false }), { fetch: (req, env) => app.fetch(req, env), baseUrl: 'http://10.0.0.1:8080' });
      const U = nextUuid();
      const topFile = await open('grub/grub.cfg', { address: '10.20.0.5', port: 1024 });
      const top = await readAll(topFile);
      expect(top).toContain('configfile "/grub/${bf_uuid}.cfg"');
      // the size TFTP announces (tsize) is the body's: a rendered config has no content-length header
      expect(topFile!.size).toBe(Buffer.byteLength(top!));
      const cfg = await readAll(await open(`grub/${U}.cfg`, { address: '10.20.0.5', port: 1024 }));
      expect(cfg).toMatch(/^if linux '\/images\/[^']+' .*'bootfarm\.token=[^']+'/m);
      const ev = (await client(app).get(`/api/v1/nodes/${U}/events`, { token: TOKENS.viewer })).json.events as { reason: string; data: Record<string, unknown> }[];
      expect(ev.find((e) => e.reason === 'ipxe-script')?.data).toMatchObject({ loader: 'shim-grub' });
      // an untrusted TFTP client is refused like an untrusted HTTP one: GRUB gets "file not found", nothing enrols
      const V = nextUuid();
      expect(await open(`grub/${V}.cfg`, { address: '10.9.9.9', port: 1024 })).toBeNull();
      expect((await client(app).get(`/api/v1/nodes/${V}`, { token: TOKENS.viewer })).status).toBe(404);
      // names that are not routes still come from the file opener
      expect(await open('grub/x86_64-efi/grub.cfg', { address: '10.20.0.5', port: 1024 })).toBeNull();
    } finally {
      await db2.close();
    }
  });
});
