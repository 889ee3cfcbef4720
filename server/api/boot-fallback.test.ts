// Issue 12 item 7: a stage-1 image on prod whose command line cannot be rendered (`${x}`) must not turn every
// /ipxe answer into a 500. Through the real HTTP app on a loopback socket, with the real image pipeline (PGlite,
// local store): the node gets the last good image of the channel and an event says so.
// Push refuses such an image now, so the broken version is registered the way an older server let it in: straight
// into the image tables (createImageDbStore), bypassing the push checks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DbHandle } from '../db/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { client, createTestApp, sampleFacts, testConfig } from '../../test/fakes/app.ts';
import { listenApp } from '../../test/fakes/images.ts';
import { initrdFile, kernelFile } from '../../test/fakes/boot-files.ts';
import { silentLogger } from '../log.ts';
import { FakeClock } from '../clock.ts';
import { createImages, type Images } from '../images/index.ts';
import { createImageDbStore } from '../store/images.ts';

const U = '4c4c4544-0042-3510-8052-b4c04f4e4d32';
const U2 = '4c4c4544-0042-3510-8052-b4c04f4e4d33';

describe('GET /ipxe/:uuid when the stage-1 image on prod does not render', () => {
  let db: DbHandle;
  let tmp: string;
  let images: Images;
  let t: ReturnType<typeof createTestApp>;
  let srv: Awaited<ReturnType<typeof listenApp>>;
  const clock = new FakeClock('2026-12-01T10:00:00Z');
  let good: { kernel: string; initrd: string };

  /** register `version` of `name` on prod without the push checks, as a server before them did */
  const registerUnchecked = async (name: string, version: string, like: { kernel: string; initrd: string }, cmdline: string) => {
    const dbs = createImageDbStore(db.db);
    const cur = await dbs.channel(name, 'prod');
    const { image } = await dbs.insertImage({ name, version, arch: 'x86_64', kernelDigest: like.kernel, kernelSize: 1, initrdDigest: like.initrd, initrdSize: 1, cmdline, size: 2, manifestDigest: `${version}`.padEnd(64, '0'), createdBy: 'old-server' });
    await dbs.moveChannel({ name, channel: 'prod', toImageId: image.id, action: 'push', actor: 'old-server', at: clock.now(), expectFromImageId: cur?.image.id ?? null });
  };

  beforeAll(async () => {
    db = await createTestDb();
    tmp = mkdtempSync(join(tmpdir(), 'bfboot-fallback-'));
    images = await createImages({ config: { dataDir: tmp }, db: db.db, log: silentLogger(), clock });
    const k = kernelFile(tmp, 'vmlinuz');
    const i = initrdFile(tmp, 'initrd.img');
    good = { kernel: k.digest, initrd: i.digest };
    await images.pipeline.push({ name: 'stage1', version: '1.0', kernelPath: k.path, initrdPath: i.path, cmdline: 'quiet', channel: 'prod', force: true, actor: 'alice' });
    t = createTestApp(db, { images: images.catalog, clock, config: testConfig({ boot: { stage1: { image: 'stage1', channel: 'prod', cmdline: 'console=ttyS0' }, retrySeconds: 7 } }) });
    srv = await listenApp(t.app.fetch);
  });
  afterAll(async () => {
    await srv?.close();
    await db?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('boots the current image while it renders', async () => {
    const res = await fetch(`${srv.url}/ipxe/${U}`);
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).toContain(`/images/${good.kernel} initrd=initrd.img quiet console=ttyS0 `);
  });

  it('gives the node the last good image and records an event when the current one has ${x} in its command line', async () => {
    await registerUnchecked('stage1', '2.0-broken', { kernel: 'c'.repeat(64), initrd: 'd'.repeat(64) }, 'quiet root=${x}');
    expect((await images.catalog.resolve('stage1', 'prod'))?.version).toBe('2.0-broken');
    const res = await fetch(`${srv.url}/ipxe/${U}`);
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(text.split('\n')[0]).toBe('#!ipxe');
    expect(text).toContain(`kernel http://10.0.0.1:8080/images/${good.kernel} initrd=initrd.img quiet console=ttyS0 `);
    expect(text).not.toContain('c'.repeat(64));
    expect(text).toMatch(/bootfarm\.token=\S+ bootfarm\.mode=stage1/);
    const events = await t.nodes.events(U);
    const fb = events.filter((e) => e.reason === 'image-fallback');
    expect(fb).toHaveLength(1);
    expect(fb[0]).toMatchObject({ kind: 'image', actor: 'ipxe', data: { channel: 'prod', broken: 'stage1@2.0-broken', used: 'stage1@1.0', error: expect.stringContaining('"root=${x}"') } });
    expect(events.at(-1)).toMatchObject({ reason: 'ipxe-script', data: { image: 'stage1@1.0' } });
  });

  it('tells the node to retry, never 500, when no image of the channel renders', async () => {
    const cfg = testConfig({ boot: { stage1: { image: 'bare', channel: 'prod', cmdline: '' }, retrySeconds: 7 } });
    await registerUnchecked('bare', '1.0', good, 'a||b');
    const t2 = createTestApp(db, { images: images.catalog, clock, config: cfg });
    const s2 = await listenApp(t2.app.fetch);
    try {
      const res = await fetch(`${s2.url}/ipxe/${U2}`);
      const text = await res.text();
      expect(res.status).toBe(200);
      expect(text).toMatch(/^echo bootfarm: stage-1 image bare@1\.0 cannot be booted and no earlier image of bare:prod can$/m);
      expect(text).toContain('sleep 7\n');
      expect((await t2.nodes.events(U2)).some((e) => e.reason === 'image-fallback' && (e.data as { used: unknown }).used === null)).toBe(true);
    } finally {
      await s2.close();
    }
  });
});

describe('GET /api/v1/agent/:uuid/profile when the compute image on prod does not render', () => {
  const U3 = '4c4c4544-0042-3510-8052-b4c04f4e4d34';
  it('hands out the last good compute image, records an event, and answers 503 (writing nothing) when none renders', async () => {
    const db = await createTestDb();
    const tmp = mkdtempSync(join(tmpdir(), 'bfprofile-fallback-'));
    const clock = new FakeClock('2026-12-01T10:00:00Z');
    try {
      const images = await createImages({ config: { dataDir: tmp }, db: db.db, log: silentLogger(), clock });
      const k = kernelFile(tmp, 'vmlinuz');
      const i = initrdFile(tmp, 'initrd.img');
      for (const name of ['stage1', 'hypervisor']) await images.pipeline.push({ name, version: '1.0', kernelPath: k.path, initrdPath: i.path, cmdline: 'quiet', channel: 'prod', force: true, actor: 'alice' });
      const dbs = createImageDbStore(db.db);
      const brokenOn = async (name: string, version: string) => {
        const cur = await dbs.channel(name, 'prod');
        const { image } = await dbs.insertImage({ name, version, arch: 'x86_64', kernelDigest: k.digest, kernelSize: 1, initrdDigest: i.digest, initrdSize: 1, cmdline: 'root=${x}', size: 2, manifestDigest: version.padEnd(64, '0'), createdBy: 'old-server' });
        await dbs.moveChannel({ name, channel: 'prod', toImageId: image.id, action: 'push', actor: 'old-server', at: clock.now(), expectFromImageId: cur?.image.id ?? null });
      };
      await brokenOn('hypervisor', '2.0-broken');
      const t = createTestApp(db, { images: images.catalog, clock, config: testConfig({ boot: { stage1: { image: 'stage1', channel: 'prod', cmdline: '' } } }) });
      const http = client(t.app);
      const token = /bootfarm\.token=(\S+)/.exec((await http.get(`/ipxe/${U3}`)).text)![1]!;
      expect((await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U3), agentVersion: 't' } })).json.state).toBe('ready');
      const prof = await http.get(`/api/v1/agent/${U3}/profile`, { token });
      expect(prof.status, prof.text).toBe(200);
      expect(prof.json.image).toMatchObject({ name: 'hypervisor', version: '1.0' });
      expect(prof.json.cmdline).not.toContain('${x}');
      const fb = (await t.nodes.events(U3)).filter((e) => e.reason === 'image-fallback');
      expect(fb).toHaveLength(1);
      expect(fb[0]).toMatchObject({ kind: 'image', actor: 'agent', data: { broken: 'hypervisor@2.0-broken', used: 'hypervisor@1.0' } });

      // nothing renders (here: the profile's own command line cannot be rendered with any image): a 503 that says
      // so, and the node stays ready, with no credential issued
      const U4 = '4c4c4544-0042-3510-8052-b4c04f4e4d35';
      const bad = createTestApp(db, { images: images.catalog, clock, config: testConfig({ boot: { stage1: { image: 'stage1', channel: 'prod', cmdline: '' } }, profiles: { default: { cmdline: 'x=${y}' } } }) });
      const http2 = client(bad.app);
      const token4 = /bootfarm\.token=(\S+)/.exec((await http2.get(`/ipxe/${U4}`)).text)![1]!;
      expect((await http2.post('/api/v1/agent/register', { token: token4, body: { facts: sampleFacts(U4, { macs: ['52:54:00:12:34:57'] }), agentVersion: 't' } })).json.state).toBe('ready');
      const refused = await http2.get(`/api/v1/agent/${U4}/profile`, { token: token4 });
      expect(refused.status, refused.text).toBe(503);
      expect(refused.json.error.message).toContain('cannot be booted');
      const after = await bad.nodes.require(U4);
      expect(after.state).toBe('ready');
      expect(after.credentialHash).toBeNull();
    } finally {
      await db.close();
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
