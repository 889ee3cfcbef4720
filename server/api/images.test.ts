// The admin API and the `bootfarm image` CLI functions end to end over HTTP: PGlite, the local store, the
// real hono apps on a loopback port. Covers resumable upload, push from a directory, list/show/history,
// promotion gates, force (admin only), rollback and the error shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { createDb, type DbHandle } from '../db/index.ts';
import { silentLogger } from '../log.ts';
import { createAdminAuth } from './auth.ts';
import { createErrorHandler } from './errors.ts';
import { imagesMount } from './images.ts';
import { createImages, type Images } from '../images/index.ts';
import { runImageCommand, type ImageCliOptions } from '../cli/image.ts';
import { blobFile, fetchBlob, listenApp } from '../../test/fakes/images.ts';
import { initrdFile, kernelFile } from '../../test/fakes/boot-files.ts';

const ADMIN = 'admin-token-0123456789';
const OPS = 'operator-token-0123456789';

describe('images admin API and CLI', () => {
  let h: DbHandle;
  let tmp: string;
  let images: Images;
  let srv: Awaited<ReturnType<typeof listenApp>>;
  let out: string[];
  let progress: string[];
  const cli = (argv: string[], token = ADMIN) => {
    const opts: ImageCliOptions = { url: srv.url, token, out: (l) => out.push(l), progress: { write: (s) => progress.push(s), isTTY: false } };
    return runImageCommand(argv, opts);
  };
  const fails = async (argv: string[], token?: string) => {
    try {
      await cli(argv, token);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected the command to fail');
  };

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bfimg-admin-'));
    h = await createDb({ dataDir: 'memory://' });
    const log = silentLogger();
    images = await createImages({ config: { dataDir: tmp, images: { uploadChunkBytes: 65536, gates: { minActiveNodes: 1 } } }, db: h.db, log });
    const app = new Hono();
    app.onError(createErrorHandler(log));
    const requireRole = createAdminAuth([
      { name: 'alice', role: 'admin', token: ADMIN },
      { name: 'ops', role: 'operator', token: OPS },
    ]);
    const m = imagesMount(images)(requireRole);
    app.route(m.at, m.app);
    app.route('/', images.serveApp);
    srv = await listenApp(app.fetch);
  });
  beforeAll(() => {
    out = [];
    progress = [];
  });
  afterAll(async () => {
    await srv?.close();
    await h?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('pushes a directory, resuming an initrd upload that was interrupted, and serves it by channel name', async () => {
    const dir = join(tmp, 'build');
    mkdirSync(dir);
    const k = kernelFile(dir, 'vmlinuz-6.1.0-28-amd64', 100_000);
    const i = initrdFile(dir, 'initrd.img-6.1.0-28-amd64', 300_000);
    writeFileSync(join(dir, 'cmdline'), 'console=ttyS0,115200 quiet\n');
    // An earlier push died after one chunk of the initrd.
    const first = await fetch(`${srv.url}/api/v1/images/blobs/${i.digest}/upload`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${OPS}`, 'upload-offset': '0', 'upload-length': String(i.size) },
      body: i.data.subarray(0, 65536),
    });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ offset: 65536, complete: false });

    expect(await cli(['push', dir, '--name', 'compute', '--version', '1.0'], OPS)).toBe(0);
    expect(out).toContain(`initrd: resumed an interrupted upload at 65536 of ${i.size} bytes`);
    expect(out.at(-1)).toMatch(/^compute 1\.0 pushed \(manifest [0-9a-f]{12}\), now on dev$/);
    expect(progress.some((p) => /^initrd +\[#+-*\] +2\d% /.test(p))).toBe(true);
    expect(progress.filter((p) => p.startsWith('initrd') && p.includes('100%'))).toHaveLength(1);

    const served = await fetchBlob(`${srv.url}/images/by-name/compute/dev/initrd`);
    expect(served.status).toBe(200);
    expect(served.digest).toBe(i.digest);
    const kernel = await fetchBlob(`${srv.url}/images/${k.digest}`);
    expect(kernel.digest).toBe(k.digest);
    const resolved = await images.catalog.resolve('compute', 'dev');
    expect(resolved?.cmdline).toBe('console=ttyS0,115200 quiet');
  });

  it('sends a chunk again, with backoff, when the connection drops on the way', async () => {
    const dir = join(tmp, 'flaky');
    mkdirSync(dir);
    kernelFile(dir, 'vmlinuz', 70_000);
    const i = initrdFile(dir, 'initrd.img', 200_000);
    let dropped = 0;
    const sleeps: number[] = [];
    // the second PATCH of the initrd never reaches the server: a connection reset, as fetch reports it
    let patches = 0;
    const fetchImpl: typeof fetch = async (input, init) => {
      if (init?.method === 'PATCH' && String(input).includes(i.digest) && ++patches === 2 && dropped++ === 0) throw new TypeError('fetch failed', { cause: { code: 'ECONNRESET' } });
      return fetch(input, init);
    };
    const opts: ImageCliOptions = { url: srv.url, token: OPS, out: (l) => out.push(l), progress: { write: (s) => progress.push(s), isTTY: false }, fetchImpl, sleep: async (ms) => void sleeps.push(ms) };
    expect(await runImageCommand(['push', dir, '--name', 'flaky', '--version', '1.0'], opts)).toBe(0);
    expect(dropped).toBe(1);
    expect(sleeps).toHaveLength(1);
    expect(sleeps[0]).toBeLessThan(500); // full jitter under the first backoff step
    expect(progress.some((p) => /^initrd: cannot reach .*; retry 1 in \d+ ms/.test(p))).toBe(true);
    expect((await fetchBlob(`${srv.url}/images/by-name/flaky/dev/initrd`)).digest).toBe(i.digest);
  });

  it('refuses an upload whose bytes do not hash to its name, and discards it', async () => {
    const bogus = 'a'.repeat(64);
    const res = await fetch(`${srv.url}/api/v1/images/blobs/${bogus}/upload`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${OPS}`, 'upload-offset': '0', 'upload-length': '5' },
      body: 'hello',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('digest_mismatch');
    const st = await (await fetch(`${srv.url}/api/v1/images/blobs/${bogus}/upload`, { headers: { authorization: `Bearer ${OPS}` } })).json();
    expect(st).toMatchObject({ offset: 0, complete: false });
  });

  it('lists and shows images', async () => {
    out = [];
    await cli(['list']);
    expect(out[0]).toMatch(/^NAME +VERSIONS +LATEST +DEV +CANARY +PROD/);
    expect(out[1]).toMatch(/^compute +1 +1\.0 +1\.0 +- +-/);
    out = [];
    await cli(['show', 'compute', '--json']);
    expect(JSON.parse(out.join('\n')).channels.dev.version).toBe('1.0');
  });

  it('promotion gates refuse with the failed condition; force needs admin; rollback returns the channel', async () => {
    const msg = await fails(['promote', 'compute', '--from', 'dev', '--to', 'canary'], OPS);
    expect(msg).toMatch(/^409 gate_failed: .*0 node\(s\) active on the candidate, 1 required/);
    expect(await fails(['promote', 'compute', '--from', 'dev', '--to', 'canary', '--force'], OPS)).toMatch(/^403 forbidden/);
    out = [];
    await cli(['promote', 'compute', '--from', 'dev', '--to', 'canary', '--force', '--reason', 'lab rack']);
    expect(out).toEqual(['compute: canary now on 1.0 (from dev)']);

    const k2 = kernelFile(tmp, 'k2', 5000);
    const i2 = initrdFile(tmp, 'i2', 7000);
    await cli(['push', k2.path, i2.path, '--name', 'compute', '--version', '1.1', '--cmdline', 'console=ttyS0']);
    await cli(['promote', 'compute', '--from', 'dev', '--to', 'canary', '--force']);
    out = [];
    await cli(['rollback', 'compute', '--channel', 'canary', '--reason', 'NIC firmware regression'], OPS);
    expect(out).toEqual(['compute: canary rolled back from 1.1 to 1.0']);
    expect((await images.catalog.resolve('compute', 'canary'))?.version).toBe('1.0');
    out = [];
    await cli(['history', 'compute', '--channel', 'canary']);
    expect(out).toHaveLength(3);
    expect(out[0]).toMatch(/canary +rollback +1\.1 +→ 1\.0 +ops: NIC firmware regression$/);
    expect(out[2]).toMatch(/canary +promote +- +→ 1\.0 +alice: lab rack$/);
  });

  it('refuses random bytes as a kernel, a non-cpio initrd and an unrenderable command line with 422 naming the part', async () => {
    const upload = async (data: Buffer, digest: string) => {
      const r = await fetch(`${srv.url}/api/v1/images/blobs/${digest}/upload`, { method: 'PATCH', headers: { authorization: `Bearer ${OPS}`, 'upload-offset': '0', 'upload-length': String(data.length) }, body: data });
      expect(r.status).toBe(201);
    };
    const junk = blobFile(tmp, 'junk', 5000);
    const k = kernelFile(tmp, 'k9');
    const i = initrdFile(tmp, 'i9');
    for (const b of [junk, k, i]) await upload(b.data, b.digest);
    const register = async (kernel: string, initrd: string, cmdline = '') => {
      const r = await fetch(`${srv.url}/api/v1/images`, { method: 'POST', headers: { authorization: `Bearer ${OPS}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'compute', version: '9.9', kernel: { digest: kernel }, initrd: { digest: initrd }, cmdline }) });
      return { status: r.status, body: (await r.json()) as { error: { code: string; message: string; details: unknown } } };
    };
    const rk = await register(junk.digest, i.digest);
    expect([rk.status, rk.body.error.code, rk.body.error.details]).toEqual([422, 'invalid_image', { part: 'kernel' }]);
    expect(rk.body.error.message).toMatch(/^kernel: is not a bootable kernel: no x86 bzImage header/);
    const ri = await register(k.digest, junk.digest);
    expect([ri.status, ri.body.error.details]).toEqual([422, { part: 'initrd' }]);
    expect(ri.body.error.message).toMatch(/^initrd: it is neither a newc cpio archive/);
    const rc = await register(k.digest, i.digest, 'console=ttyS0 init=${x}');
    expect([rc.status, rc.body.error.details]).toEqual([422, { part: 'cmdline' }]);
    expect(rc.body.error.message).toMatch(/^cmdline: .*"init=\$\{x\}"/);
    // the CLI checks the files before uploading them
    expect(await fails(['push', junk.path, i.path, '--name', 'compute', '--version', '9.9'])).toMatch(/^refused before upload: kernel: is not a bootable kernel/);
    expect((await images.pipeline.show('compute')).versions.map((v) => v.version)).not.toContain('9.9');
  });

  it('pushes straight onto prod only with --force by an admin, and records it in history', async () => {
    const k = kernelFile(tmp, 'k4');
    const i = initrdFile(tmp, 'i4');
    const args = ['push', k.path, i.path, '--name', 'compute', '--version', '4.0', '--channel', 'prod'];
    expect(await fails(args)).toMatch(/^409 gated_channel: prod is reached by promotion \(dev → canary → prod\)/);
    expect(await fails([...args, '--force'], OPS)).toMatch(/^403 forbidden: pushing straight onto a gated channel needs the admin role/);
    out = [];
    expect(await cli([...args, '--force'])).toBe(0);
    expect(out.at(-1)).toMatch(/^compute 4\.0 pushed .*, now on prod$/);
    const [h] = await images.pipeline.history('compute', 'prod', 1);
    expect(h).toMatchObject({ action: 'push', actor: 'alice', reason: 'pushed 4.0 straight onto prod with force: promotion gates skipped', data: { forced: true, gatesSkipped: true } });
  });

  it('answers errors in the project shape and needs a token', async () => {
    const r = await fetch(`${srv.url}/api/v1/images`);
    expect(r.status).toBe(401);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    expect(await fails(['rollback', 'compute', '--channel', 'staging'])).toMatch(/^400 unknown_channel/);
    expect(await fails(['show', 'nothing'])).toMatch(/^404 not_found/);
  });
});
