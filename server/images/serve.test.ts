// Image serving against a REAL Ceph RGW (test/harness/ceph.ts, Debian's ceph 16) and the local store.
// Proves: multipart (+resumed) upload, single flight (1,000 concurrent requests → 1 S3 GET), verify-before-keep,
// Range/suffix/HEAD/If-None-Match, LRU eviction, cache surviving a restart, and RGW down → cached blobs still
// served, uncached → 503 + Retry-After. The GET count comes from SDK middleware on the store's client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startCeph, type CephCluster } from '../../test/harness/ceph.ts';
import { createS3Store, type S3ImageStore } from './s3.ts';
import { createLocalStore } from './local.ts';
import { createBlobCache, type BlobCache } from './cache.ts';
import { createImageServeApp } from './serve.ts';
import { blobFile, brokenStore, countS3Commands, fetchBlob, fixedCatalog, listenApp, sha256 } from '../../test/fakes/images.ts';
import { blobKey } from './store.ts';

const MiB = 1024 * 1024;

describe('image serving from Ceph RGW', () => {
  let ceph: CephCluster;
  let store: S3ImageStore;
  let counts: Record<string, number>;
  let tmp: string;
  let cache: BlobCache;
  let srv: Awaited<ReturnType<typeof listenApp>>;
  const corruptReports: string[] = [];
  let kernel: ReturnType<typeof blobFile>;
  let initrd: ReturnType<typeof blobFile>;
  let storm: ReturnType<typeof blobFile>;
  let spare: ReturnType<typeof blobFile>;
  const gets = () => counts.GetObjectCommand ?? 0;

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'bfimg-'));
    ceph = await startCeph();
    store = createS3Store({ endpoint: ceph.endpoint, region: ceph.region, bucket: 'bootfarm-images', accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, partSize: 5 * MiB });
    await store.ensureBucket();
    counts = countS3Commands(store);
    kernel = blobFile(tmp, 'vmlinuz', 300 * 1024);
    initrd = blobFile(tmp, 'initrd.img', 12 * MiB + 12345);
    storm = blobFile(tmp, 'storm.img', 512 * 1024);
    spare = blobFile(tmp, 'spare.img', 64 * 1024);
    for (const b of [kernel, storm, spare]) await store.putFile(b.digest, b.path);
    cache = await createBlobCache({ dir: join(tmp, 'cache'), store, maxBytes: 256 * MiB, corruptHoldMs: 60_000, onCorrupt: (d) => corruptReports.push(d) });
    const catalog = fixedCatalog({
      'compute/prod': { name: 'compute', version: '1.0', channel: 'prod', kernel: { digest: kernel.digest }, initrd: { digest: initrd.digest }, cmdline: 'console=ttyS0' },
    });
    srv = await listenApp(createImageServeApp({ cache, catalog, store }).fetch);
  });

  afterAll(async () => {
    await srv?.close();
    await ceph?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('uploads a >5 MB blob with multipart, resuming an interrupted upload (only missing parts sent)', async () => {
    await store.putFilePartial(initrd.digest, initrd.path, 1);
    const before = counts.UploadPartCommand ?? 0;
    const progress: { sent: number; resumedParts?: number }[] = [];
    await store.putFile(initrd.digest, initrd.path, { onProgress: (p) => progress.push(p) });
    expect(progress[0]?.resumedParts).toBe(1);
    expect(progress.at(-1)?.sent).toBe(initrd.size);
    // 3 parts of 5 MiB: one came from the interrupted upload, two are sent now.
    expect((counts.UploadPartCommand ?? 0) - before).toBe(2);
    expect((await store.stat(initrd.digest))?.size).toBe(initrd.size);
    const { body } = await store.get(initrd.digest);
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c as Buffer);
    expect(sha256(Buffer.concat(chunks))).toBe(initrd.digest);
  });

  it('fills a miss once for 1,000 concurrent requests (exactly one S3 GET) and every client gets the right bytes', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1000 });
    const g0 = gets();
    const results = await Promise.all(Array.from({ length: 1000 }, () => fetchBlob(`${srv.url}/images/${storm.digest}`, { agent, keep: 0 })));
    agent.destroy();
    expect(gets() - g0).toBe(1);
    expect(results.filter((r) => r.status === 200 && !r.aborted && r.digest === storm.digest).length).toBe(1000);
    // Proof that requests really overlapped the fill (they joined it rather than hitting the finished entry).
    expect(cache.stats.misses).toBeGreaterThan(1);
    expect(cache.has(storm.digest)).toBe(true);
  });

  it('serves by channel name with ETag = digest, HEAD, If-None-Match, Range and suffix ranges', async () => {
    const full = await fetchBlob(`${srv.url}/images/by-name/compute/prod/kernel`);
    expect(full.status).toBe(200);
    expect(full.digest).toBe(kernel.digest);
    expect(full.headers.etag).toBe(`"${kernel.digest}"`);
    expect(full.headers['content-length']).toBe(String(kernel.size));
    expect(full.headers['x-image-version']).toBe('1.0');
    // iPXE pools idle connections for 10 s: the server must keep them longer (tuneHttpServer).
    expect(full.headers.connection).toBe('keep-alive');
    expect(full.headers['keep-alive']).toBe('timeout=15');

    const head = await fetchBlob(`${srv.url}/images/${kernel.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.bytes).toBe(0);
    expect(head.headers['content-length']).toBe(String(kernel.size));

    const notModified = await fetchBlob(`${srv.url}/images/${kernel.digest}`, { headers: { 'if-none-match': `W/"x", "${kernel.digest}"` } });
    expect(notModified.status).toBe(304);
    expect(notModified.bytes).toBe(0);

    const r = await fetchBlob(`${srv.url}/images/${kernel.digest}`, { headers: { range: 'bytes=100-199' } });
    expect(r.status).toBe(206);
    expect(r.headers['content-range']).toBe(`bytes 100-199/${kernel.size}`);
    expect(r.body.equals(kernel.data.subarray(100, 200))).toBe(true);

    const suffix = await fetchBlob(`${srv.url}/images/${kernel.digest}`, { headers: { range: 'bytes=-500' } });
    expect(suffix.status).toBe(206);
    expect(suffix.headers['content-range']).toBe(`bytes ${kernel.size - 500}-${kernel.size - 1}/${kernel.size}`);
    expect(suffix.body.equals(kernel.data.subarray(kernel.size - 500))).toBe(true);

    const open = await fetchBlob(`${srv.url}/images/${kernel.digest}`, { headers: { range: `bytes=${kernel.size - 10}-` } });
    expect(open.body.equals(kernel.data.subarray(kernel.size - 10))).toBe(true);

    const bad = await fetchBlob(`${srv.url}/images/${kernel.digest}`, { headers: { range: `bytes=${kernel.size}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${kernel.size}`);

    // A range on an uncached multipart blob waits for the verified fill, then answers from the cache.
    const g0 = gets();
    const mid = await fetchBlob(`${srv.url}/images/by-name/compute/prod/initrd`, { headers: { range: 'bytes=5242870-5242889' } });
    expect(mid.status).toBe(206);
    expect(mid.body.equals(initrd.data.subarray(5242870, 5242890))).toBe(true);
    expect(gets() - g0).toBe(1);
    expect(cache.has(initrd.digest)).toBe(true);
  });

  it('answers unknown names, channels and digests with the error shape', async () => {
    const missing = 'f'.repeat(64);
    const a = await fetchBlob(`${srv.url}/images/${missing}`);
    expect(a.status).toBe(404);
    expect(JSON.parse(a.body.toString()).error.code).toBe('not_found');
    const b = await fetchBlob(`${srv.url}/images/not-a-digest`);
    expect(b.status).toBe(400);
    expect(JSON.parse(b.body.toString()).error.code).toBe('bad_request');
    const c = await fetchBlob(`${srv.url}/images/by-name/compute/dev/kernel`);
    expect(c.status).toBe(404);
    const d = await fetchBlob(`${srv.url}/images/by-name/compute/prod/rootfs`);
    expect(d.status).toBe(400);
  });

  it('rejects a corrupt blob in RGW: never served complete, never cached, reported once, not refetched', async () => {
    const good = blobFile(tmp, 'victim.img', 200 * 1024);
    const evil = Buffer.from(good.data);
    evil[evil.length - 1] = evil[evil.length - 1]! ^ 0xff;
    await store.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: blobKey(good.digest), Body: evil, ContentLength: evil.length }));
    const g0 = gets();
    const first = await Promise.all(Array.from({ length: 5 }, () => fetchBlob(`${srv.url}/images/${good.digest}`)));
    for (const r of first) {
      // Either the stream was cut before its last byte or (joining late) the request was refused.
      expect(r.status === 502 || (r.status === 200 && r.aborted && r.bytes < good.size)).toBe(true);
      expect(r.digest).not.toBe(sha256(evil));
    }
    expect(cache.has(good.digest)).toBe(false);
    expect(cache.stats.corrupt).toBe(1);
    expect(corruptReports).toEqual([good.digest]);
    const again = await fetchBlob(`${srv.url}/images/${good.digest}`);
    expect(again.status).toBe(502);
    expect(JSON.parse(again.body.toString()).error.code).toBe('blob_corrupt');
    expect(gets() - g0).toBe(1);
  });

  it('redirect mode answers an uncached blob with 302 to a presigned RGW URL that serves the bytes', async () => {
    const b = blobFile(tmp, 'redir.img', 100 * 1024);
    await store.putFile(b.digest, b.path);
    const redir = await listenApp(createImageServeApp({ cache, store, catalog: fixedCatalog({}), redirect: { expiresInSeconds: 60 } }).fetch);
    try {
      const r = await fetchBlob(`${redir.url}/images/${b.digest}`);
      expect(r.status).toBe(302);
      const loc = new URL(r.headers.location!);
      expect(loc.origin).toBe(ceph.endpoint);
      expect(loc.searchParams.get('X-Amz-Expires')).toBe('60');
      const direct = await fetchBlob(loc.href);
      expect(direct.status).toBe(200);
      expect(direct.digest).toBe(b.digest);
      expect(cache.has(b.digest)).toBe(false);
    } finally {
      await redir.close();
    }
  });

  it('keeps serving cached blobs with RGW stopped; an uncached one gets 503 + Retry-After, never a truncated 200', async () => {
    await ceph.stopRgw();
    const cached = await fetchBlob(`${srv.url}/images/${storm.digest}`);
    expect(cached.status).toBe(200);
    expect(cached.digest).toBe(storm.digest);
    const down = await fetchBlob(`${srv.url}/images/${spare.digest}`);
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toBe('5');
    const body = JSON.parse(down.body.toString());
    expect(body.error.code).toBe('store_unavailable');
    expect(body.error.message).toMatch(/unreachable/);
  });
});

describe('image cache on the local directory store', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'bfimg-local-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('evicts least recently used entries past the size cap', async () => {
    const store = createLocalStore({ dir: join(tmp, 'store') });
    const blobs = ['a', 'b', 'c'].map((n) => blobFile(tmp, n, 100 * 1024));
    for (const b of blobs) await store.putFile(b.digest, b.path);
    const cache = await createBlobCache({ dir: join(tmp, 'lru'), store, maxBytes: 250 * 1024 });
    await cache.ensure(blobs[0]!.digest);
    await cache.ensure(blobs[1]!.digest);
    await cache.lookup(blobs[0]!.digest); // a is now more recent than b
    await cache.ensure(blobs[2]!.digest);
    expect(cache.has(blobs[0]!.digest)).toBe(true);
    expect(cache.has(blobs[1]!.digest)).toBe(false);
    expect(cache.has(blobs[2]!.digest)).toBe(true);
    expect(cache.stats.evictions).toBe(1);
    expect(cache.stats.bytes).toBe(200 * 1024);
  });

  it('survives a restart: entries come back from disk and are served without the store', async () => {
    const store = createLocalStore({ dir: join(tmp, 'store2') });
    const b = blobFile(tmp, 'persist', 70 * 1024);
    await store.putFile(b.digest, b.path);
    const dir = join(tmp, 'persist-cache');
    const c1 = await createBlobCache({ dir, store, maxBytes: MiB });
    await c1.ensure(b.digest);
    rmSync(join(tmp, 'store2'), { recursive: true });
    const c2 = await createBlobCache({ dir, store, maxBytes: MiB });
    expect(c2.has(b.digest)).toBe(true);
    const srv = await listenApp(createImageServeApp({ cache: c2, store, catalog: fixedCatalog({}) }).fetch);
    try {
      const r = await fetchBlob(`${srv.url}/images/${b.digest}`);
      expect(r.status).toBe(200);
      expect(r.digest).toBe(b.digest);
      expect(c2.stats.storeGets).toBe(0);
    } finally {
      await srv.close();
    }
  });

  it('a store stream that breaks mid-fill cuts every waiting client short (never a complete 200) and caches nothing', async () => {
    const inner = createLocalStore({ dir: join(tmp, 'store4') });
    const b = blobFile(tmp, 'breaks', 3 * MiB);
    await inner.putFile(b.digest, b.path);
    for (const memoryBytes of [0, 64 * MiB]) {
      const cache = await createBlobCache({ dir: join(tmp, `broken-cache-${memoryBytes}`), store: brokenStore(inner, 2 * MiB), maxBytes: 16 * MiB, memoryBytes });
      const srv = await listenApp(createImageServeApp({ cache, store: inner, catalog: fixedCatalog({}) }).fetch);
      try {
        const rs = await Promise.all(Array.from({ length: 10 }, () => fetchBlob(`${srv.url}/images/${b.digest}`, { keep: 0 })));
        for (const r of rs) {
          expect(r.status === 503 || (r.status === 200 && r.aborted && r.bytes < b.size)).toBe(true);
        }
        expect(cache.has(b.digest)).toBe(false);
        expect(cache.stats.entries).toBe(0);
        expect(rs.some((r) => r.status === 200 && r.aborted)).toBe(true);
      } finally {
        await srv.close();
      }
    }
  });

  it('serves a storm from the local store with one read of the store (disk path: memory tier off)', async () => {
    const store = createLocalStore({ dir: join(tmp, 'store3') });
    const b = blobFile(tmp, 'storm-local', 256 * 1024);
    await store.putFile(b.digest, b.path);
    const cache = await createBlobCache({ dir: join(tmp, 'storm-cache'), store, maxBytes: MiB, memoryBytes: 0 });
    const srv = await listenApp(createImageServeApp({ cache, store, catalog: fixedCatalog({}) }).fetch);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 200 });
    try {
      const rs = await Promise.all(Array.from({ length: 200 }, () => fetchBlob(`${srv.url}/images/${b.digest}`, { agent, keep: 0 })));
      expect(rs.every((r) => r.status === 200 && r.digest === b.digest)).toBe(true);
      expect(cache.stats.storeGets).toBe(1);
      expect(cache.stats.memoryBytes).toBe(0);
      const ranged = await fetchBlob(`${srv.url}/images/${b.digest}`, { headers: { range: 'bytes=-3' } });
      expect(ranged.body.equals(b.data.subarray(b.size - 3))).toBe(true);
    } finally {
      agent.destroy();
      await srv.close();
    }
  });
});
