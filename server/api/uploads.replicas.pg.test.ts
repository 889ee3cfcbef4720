// Resumable uploads across replicas (issue 14 item 1): two (then three) app instances, each with its own
// connection pool, on one real Debian PostgreSQL (test/harness/postgres.ts; PGlite cannot be shared between
// processes) and one real Ceph RGW (test/harness/ceph.ts). An upload is an S3 multipart upload tracked in the
// uploads tables, so a push that starts on replica A and loses A half-way is finished by replica B; the blob
// lands under its digest only if it hashes to it. The "balancer" in front of the replicas is a fetch wrapper
// that re-targets requests (HAProxy would add nothing to what is under test: the upload state).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { ListMultipartUploadsCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import { createDb, type DbHandle } from '../db/index.ts';
import { silentLogger } from '../log.ts';
import { FakeClock } from '../clock.ts';
import { createAdminAuth } from './auth.ts';
import { createErrorHandler } from './errors.ts';
import { imagesMount } from './images.ts';
import { createImages, type Images } from '../images/index.ts';
import { createS3Store, type S3ImageStore } from '../images/s3.ts';
import { blobKey } from '../images/store.ts';
import { createUploadStore } from '../store/uploads.ts';
import { uploadBlob } from '../cli/image.ts';
import { createHttp } from '../cli/http.ts';
import { blobFile, fetchBlob, listenApp } from '../../test/fakes/images.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { startCeph, type CephCluster } from '../../test/harness/ceph.ts';

const OPS = 'operator-token-0123456789';
const MiB = 1024 * 1024;
const BUCKET = 'bootfarm-uploads';

interface Replica {
  name: string;
  url: string;
  images: Images;
  db: DbHandle;
  stop(): Promise<void>;
}

let pg: PgCluster;
let ceph: CephCluster;
let dbUrl: string;
let tmp: string;
let s3: S3ImageStore;
const clock = new FakeClock('2026-12-01T00:00:00Z');
const replicas: Replica[] = [];

async function startReplica(name: string): Promise<Replica> {
  const log = process.env.DEBUG_UPLOADS ? (await import('../log.ts')).createLogger({ level: 'warn' }) : silentLogger();
  const db = await createDb({ url: dbUrl, maxConnections: 4 });
  const images = await createImages({
    config: {
      dataDir: join(tmp, name),
      images: {
        store: { kind: 's3', endpoint: ceph.endpoint, region: ceph.region, bucket: BUCKET, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, partSizeMiB: 5, createBucket: true },
        uploads: { ttlHours: 1 },
      },
    },
    db: db.db,
    log,
    clock,
  });
  const app = new Hono();
  app.onError(createErrorHandler(log));
  const m = imagesMount(images)(createAdminAuth([{ name: 'ops', role: 'operator', token: OPS }]));
  app.route(m.at, m.app);
  app.route('/', images.serveApp);
  const srv = await listenApp(app.fetch);
  let stopped = false;
  const r: Replica = {
    name,
    url: srv.url,
    images,
    db,
    async stop() {
      if (stopped) return;
      stopped = true;
      await srv.close();
      await db.close();
    },
  };
  replicas.push(r);
  return r;
}

const patch = (r: Replica, digest: string, offset: number, total: number, body: Buffer, checksum?: string) =>
  fetch(`${r.url}/api/v1/images/blobs/${digest}/upload`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${OPS}`, 'upload-offset': String(offset), 'upload-length': String(total), ...(checksum ? { 'upload-checksum': checksum } : {}) },
    body,
  });
const status = async (r: Replica, digest: string) =>
  (await (await fetch(`${r.url}/api/v1/images/blobs/${digest}/upload`, { headers: { authorization: `Bearer ${OPS}` } })).json()) as { offset: number; complete: boolean; chunkBytes: number };
/** the CLI's HTTP caller, as `bootfarm image push` builds it */
const cliCall = (url: string, fetchImpl?: typeof fetch) => createHttp({ url, token: OPS, fetchImpl, fail: (m, status, body) => Object.assign(new Error(m), { status, body }) });
const sha256b64 = (b: Buffer) => `sha256 ${createHash('sha256').update(b).digest('base64')}`;
const openUploads = async (digest: string) =>
  ((await s3.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: blobKey(digest) }))).Uploads ?? []).filter((u) => u.Key === blobKey(digest));

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'bf-uploads-'));
  [pg, ceph] = await Promise.all([startPostgres(), startCeph()]);
  dbUrl = await pg.createDatabase('uploads');
  s3 = createS3Store({ endpoint: ceph.endpoint, region: ceph.region, bucket: BUCKET, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, partSize: 5 * MiB });
}, 180_000);

afterAll(async () => {
  for (const r of replicas) await r.stop();
  await ceph?.stop();
  pg?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('resumable uploads on S3 across replicas sharing one PostgreSQL', () => {
  it('a push started on replica A, which stops half-way, is finished through replica B with the right sha256', async () => {
    const a = await startReplica('a');
    const b = await startReplica('b');
    const blob = blobFile(tmp, 'initrd-ab.img', 17 * MiB + 4321); // four parts: 5 + 5 + 5 + 2 MiB
    // the S3 minimum part size decides the chunk, not the 2 MiB default of the local store
    expect((await status(a, blob.digest)).chunkBytes).toBe(5 * MiB);

    let target = a.url;
    let patches = 0;
    const seenBy: string[] = [];
    const fetchImpl: typeof fetch = async (input, init) => {
      const url = String(input).replace(/^http:\/\/127\.0\.0\.1:\d+/, target);
      if (init?.method === 'PATCH') seenBy.push(target === a.url ? 'a' : 'b');
      const res = await fetch(url, init);
      // replica A goes away right after it accepted the second chunk
      if (init?.method === 'PATCH' && ++patches === 2) await a.stop();
      return res;
    };
    const sleeps: number[] = [];
    // the balancer notices A is down while the CLI waits to retry
    const sleep = async (ms: number) => {
      sleeps.push(ms);
      target = b.url;
    };
    const { resumedFrom } = await uploadBlob(cliCall(a.url, fetchImpl), { sleep }, 'initrd', blob.path, blob.digest, blob.size);
    expect(resumedFrom).toBe(0);
    expect(sleeps).toHaveLength(1); // the third chunk found A gone once, then reached B
    expect(seenBy).toEqual(['a', 'a', 'a', 'b', 'b']);

    // B serves it, hashing what it streams; S3 holds exactly the blob and no open multipart upload
    const served = await fetchBlob(`${b.url}/images/${blob.digest}`);
    expect(served.status).toBe(200);
    expect(served.bytes).toBe(blob.size);
    expect(served.digest).toBe(blob.digest);
    expect((await s3.stat(blob.digest))?.size).toBe(blob.size);
    expect(await openUploads(blob.digest)).toEqual([]);
    expect(await b.images.uploads.list()).toEqual([]);
  }, 180_000);

  it('a fresh replica resumes from the offset in the database after every replica that saw the upload is gone', async () => {
    const c = await startReplica('c');
    const blob = blobFile(tmp, 'kernel-c.img', 11 * MiB);
    expect((await patch(c, blob.digest, 0, blob.size, blob.data.subarray(0, 5 * MiB))).status).toBe(200);
    await c.stop();
    const d = await startReplica('d');
    expect(await status(d, blob.digest)).toMatchObject({ offset: 5 * MiB, complete: false });
    const { resumedFrom } = await uploadBlob(cliCall(d.url), {}, 'kernel', blob.path, blob.digest, blob.size);
    expect(resumedFrom).toBe(5 * MiB);
    expect((await fetchBlob(`${d.url}/images/${blob.digest}`)).digest).toBe(blob.digest);
  }, 180_000);

  it('refuses a corrupted chunk with a 4xx naming it, and never commits a blob that does not hash to its name', async () => {
    const r = await startReplica('e');
    const blob = blobFile(tmp, 'corrupt.img', 10 * MiB + 7);
    const first = blob.data.subarray(0, 5 * MiB);
    const damaged = Buffer.from(first);
    damaged[1234] = damaged[1234]! ^ 0xff;

    // with Upload-Checksum (what the CLI sends): refused at once, nothing stored, the offset does not move
    const bad = await patch(r, blob.digest, 0, blob.size, damaged, sha256b64(first));
    expect(bad.status).toBe(400);
    const err = ((await bad.json()) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe('checksum_mismatch');
    expect(err.message).toMatch(/^the chunk at offset 0 \(5242880 bytes\) hashes to sha256 .*, not the Upload-Checksum/);
    expect(await status(r, blob.digest)).toMatchObject({ offset: 0, complete: false });

    // a chunk under the S3 minimum part size that is not the last is refused, naming the sizes
    const small = await patch(r, blob.digest, 0, blob.size, blob.data.subarray(0, MiB));
    expect(small.status).toBe(400);
    expect(((await small.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'chunk_too_small', message: expect.stringMatching(/at least 5242880 bytes .*this one has 1048576/) });

    // without a checksum the damage is only visible in the whole: the last chunk is refused, the upload aborted
    expect((await patch(r, blob.digest, 0, blob.size, damaged)).status).toBe(200);
    expect((await patch(r, blob.digest, 5 * MiB, blob.size, blob.data.subarray(5 * MiB, 10 * MiB))).status).toBe(200);
    const last = await patch(r, blob.digest, 10 * MiB, blob.size, blob.data.subarray(10 * MiB));
    expect(last.status).toBe(400);
    const lastErr = ((await last.json()) as { error: { code: string; message: string; details: { expected: string } } }).error;
    expect(lastErr.code).toBe('digest_mismatch');
    expect(lastErr.message).toMatch(new RegExp(`^the uploaded bytes hash to [0-9a-f]{64}, not ${blob.digest}; the upload was discarded$`));
    expect(await s3.stat(blob.digest)).toBeNull();
    expect(await openUploads(blob.digest)).toEqual([]);
    expect(await status(r, blob.digest)).toMatchObject({ offset: 0, complete: false });
  }, 180_000);

  it('two clients resuming the same upload at once through two replicas cannot corrupt it', async () => {
    const [x, y] = [await startReplica('x'), await startReplica('y')];
    const blob = blobFile(tmp, 'race.img', 15 * MiB + 99);
    expect((await patch(x, blob.digest, 0, blob.size, blob.data.subarray(0, 5 * MiB))).status).toBe(200);
    // the same chunk from two clients, one per replica, at the same moment: one wins, the other is told the offset
    const chunk = blob.data.subarray(5 * MiB, 10 * MiB);
    const both = await Promise.all([patch(x, blob.digest, 5 * MiB, blob.size, chunk), patch(y, blob.digest, 5 * MiB, blob.size, chunk)]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
    // busy (the other held the lease) or too late (the other had committed): either way it names the offset
    const loser = ((await both.find((r) => r.status === 409)!.json()) as { error: { code: string; details: { offset: number } } }).error;
    expect([
      ['upload_busy', 5 * MiB],
      ['offset_mismatch', 10 * MiB],
    ]).toContainEqual([loser.code, loser.details.offset]);
    const [row] = await x.images.uploads.list();
    const parts = await createUploadStore(x.db.db).parts(row!.id);
    expect(parts.map((p) => [p.partNumber, p.offset, p.size])).toEqual([
      [1, 0, 5 * MiB],
      [2, 5 * MiB, 5 * MiB],
    ]);
    // and RGW holds exactly those parts, with those ETags
    const listed = await s3.client.send(new ListPartsCommand({ Bucket: BUCKET, Key: blobKey(blob.digest), UploadId: row!.storeUploadId }));
    expect((listed.Parts ?? []).map((p) => [p.PartNumber, p.ETag])).toEqual(parts.map((p) => [p.partNumber, p.etag]));

    // then both CLIs push the rest concurrently; whichever chunks win, the blob is the right one, once
    const cli = (r: Replica) => uploadBlob(cliCall(r.url), {}, 'initrd', blob.path, blob.digest, blob.size);
    const results = await Promise.allSettled([cli(x), cli(y)]);
    expect(results.map((r) => (r.status === 'rejected' ? String(r.reason) : r.status))).toEqual(['fulfilled', 'fulfilled']);
    const served = await fetchBlob(`${y.url}/images/${blob.digest}`);
    expect([served.bytes, served.digest]).toEqual([blob.size, blob.digest]);
    expect(await openUploads(blob.digest)).toEqual([]);
  }, 180_000);

  it('an upload idle past the TTL is aborted in S3 by a sweep, and two replicas sweeping at once is harmless', async () => {
    const [p, q] = [await startReplica('p'), await startReplica('q')];
    const blob = blobFile(tmp, 'idle.img', 12 * MiB);
    expect((await patch(p, blob.digest, 0, blob.size, blob.data.subarray(0, 5 * MiB))).status).toBe(200);
    expect(await openUploads(blob.digest)).toHaveLength(1);
    // not yet idle for an hour: nothing happens
    clock.advance(30 * 60_000);
    expect((await p.images.sweepUploads()).aborted).toEqual([]);
    clock.advance(31 * 60_000);
    const [one, two] = await Promise.all([p.images.sweepUploads(), q.images.sweepUploads()]);
    expect([...one.aborted, ...two.aborted]).toContain(blob.digest);
    expect(await openUploads(blob.digest)).toEqual([]);
    expect(await q.images.uploads.list()).toEqual([]);
    // the client that comes back is told to start over, and can
    const late = await patch(q, blob.digest, 5 * MiB, blob.size, blob.data.subarray(5 * MiB, 10 * MiB));
    expect(late.status).toBe(409);
    expect(((await late.json()) as { error: { code: string; details: { offset: number } } }).error).toMatchObject({ code: 'offset_mismatch', details: { offset: 0 } });
    await uploadBlob(cliCall(q.url), {}, 'initrd', blob.path, blob.digest, blob.size);
    expect((await fetchBlob(`${p.url}/images/${blob.digest}`)).digest).toBe(blob.digest);

    // a multipart upload no row names (its replica died before recording it) is aborted once older than the TTL
    const stray = blobFile(tmp, 'stray.img', 1024);
    const orphan = await s3.parts.create(stray.digest);
    expect((await q.images.sweepUploads()).untracked).toEqual([]); // young by RGW's clock: kept
    expect(await openUploads(stray.digest)).toHaveLength(1);
    const later = await q.images.uploads.sweep(new Date(Date.now() + 2 * 3600_000));
    expect(later.untracked).toEqual([orphan]);
    expect(await openUploads(stray.digest)).toEqual([]);
  }, 180_000);
});
