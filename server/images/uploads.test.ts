// The upload engine's failure paths on PGlite and the local store (the S3 and two-replica cases are in
// server/api/uploads.replicas.pg.test.ts): a replica that dies between the last part and assembling the blob, a
// writer's lease (busy, then expired and taken over), and a part replaced after it was committed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { DbHandle } from '../db/index.ts';
import { FakeClock } from '../clock.ts';
import { AppError } from '../errors.ts';
import { createLocalStore } from './local.ts';
import { createUploads } from './uploads.ts';
import type { ImageStore } from './store.ts';
import { createUploadStore } from '../store/uploads.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { sha256 } from '../../test/fakes/images.ts';

let h: DbHandle;
let tmp: string;
const clock = new FakeClock('2026-12-01T00:00:00Z');

beforeAll(async () => {
  h = await createTestDb();
  tmp = mkdtempSync(join(tmpdir(), 'bf-upl-'));
});
afterAll(async () => {
  await h?.close();
  rmSync(tmp, { recursive: true, force: true });
});

const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    if (e instanceof AppError) return { status: e.status, code: e.code, message: e.message, details: e.details };
    throw e;
  }
  throw new Error('expected a refusal');
};

describe('resumable uploads: failure paths', () => {
  it('a replica that dies after the last part but before assembling: the next status call finishes the blob', async () => {
    const store = createLocalStore({ dir: join(tmp, 's1'), stagingDir: join(tmp, 'up1') });
    let crash = true;
    // replica 1 "dies" inside complete(); replica 2 is healthy; both on one database and one staging directory
    const dying: ImageStore = { ...store, parts: { ...store.parts, complete: async (...a) => (crash ? Promise.reject(new Error('replica killed')) : store.parts.complete(...a)) } };
    const one = createUploads({ db: h.db, store: dying, clock, chunkBytes: 65536 });
    const two = createUploads({ db: h.db, store, clock, chunkBytes: 65536 });
    const data = randomBytes(100_000);
    const digest = sha256(data);
    expect(await one.append({ digest, offset: 0, total: data.length, data: data.subarray(0, 65536), actor: 't' })).toMatchObject({ offset: 65536, complete: false });
    await expect(one.append({ digest, offset: 65536, total: data.length, data: data.subarray(65536), actor: 't' })).rejects.toThrow('replica killed');
    crash = false;
    expect(await store.stat(digest)).toBeNull();
    expect(await two.status(digest)).toEqual({ digest, offset: data.length, complete: true });
    expect(sha256(readFileSync(join(tmp, 's1', 'blobs', 'sha256', digest.slice(0, 2), digest)))).toBe(digest);
    expect(await two.list()).toEqual([]);
    expect(readdirSync(join(tmp, 'up1'))).toEqual([]);
  });

  it('one writer at a time: a second is told the upload is busy; a lease its holder never returns expires', async () => {
    const store = createLocalStore({ dir: join(tmp, 's2'), stagingDir: join(tmp, 'up2') });
    const uploads = createUploads({ db: h.db, store, clock, chunkBytes: 65536 });
    const rows = createUploadStore(h.db);
    const data = randomBytes(150_000);
    const digest = sha256(data);
    await uploads.append({ digest, offset: 0, total: data.length, data: data.subarray(0, 65536), actor: 't' });
    const row = (await rows.get(digest))!;
    // a writer on a replica that then died: it took the lease on the chunk at 65536 and never came back
    const now = clock.now();
    expect(await rows.claim(row.id, 65536, 'dead-writer', now, new Date(now.getTime() + 15_000))).toMatchObject({ partNumber: 2 });
    const busy = await refusal(uploads.append({ digest, offset: 65536, total: data.length, data: data.subarray(65536, 131072), actor: 't' }));
    expect(busy).toMatchObject({ status: 409, code: 'upload_busy', details: { offset: 65536 } });
    clock.advance(15_001);
    expect(await uploads.append({ digest, offset: 65536, total: data.length, data: data.subarray(65536, 131072), actor: 't' })).toMatchObject({ offset: 131072 });
    // the dead writer's commit cannot land any more
    expect(await rows.commit(row.id, 'dead-writer', { partNumber: 2, offset: 65536, size: 65536, etag: 'x' }, 'state', clock.now())).toBe(false);
    expect(await uploads.append({ digest, offset: 131072, total: data.length, data: data.subarray(131072), actor: 't' })).toMatchObject({ complete: true });
    expect((await store.stat(digest))?.size).toBe(data.length);
  });

  it('a part replaced after it was committed is caught when the blob is assembled: nothing lands under the digest', async () => {
    const store = createLocalStore({ dir: join(tmp, 's3'), stagingDir: join(tmp, 'up3') });
    const uploads = createUploads({ db: h.db, store, clock, chunkBytes: 65536 });
    const rows = createUploadStore(h.db);
    const data = randomBytes(80_000);
    const digest = sha256(data);
    await uploads.append({ digest, offset: 0, total: data.length, data: data.subarray(0, 65536), actor: 't' });
    const row = (await rows.get(digest))!;
    // a writer that outlived its lease overwrote part 1 with other bytes
    writeFileSync(join(tmp, 'up3', row.storeUploadId, '1'), randomBytes(65536));
    const r = await refusal(uploads.append({ digest, offset: 65536, total: data.length, data: data.subarray(65536), actor: 't' }));
    expect(r).toMatchObject({ status: 409, code: 'upload_damaged', message: expect.stringMatching(/part 1 changed after it was committed; the upload of [0-9a-f]{64} was discarded: start it again$/) });
    expect(await store.stat(digest)).toBeNull();
    expect(await uploads.status(digest)).toEqual({ digest, offset: 0, complete: false });
  });

  it('refuses a blob larger than maxBlobBytes, a chunk past Upload-Length, and a different Upload-Length for the same blob', async () => {
    const store = createLocalStore({ dir: join(tmp, 's4'), stagingDir: join(tmp, 'up4') });
    const uploads = createUploads({ db: h.db, store, clock, chunkBytes: 65536, maxBlobBytes: 1_000_000 });
    const data = randomBytes(70_000);
    const digest = sha256(data);
    expect(await refusal(uploads.append({ digest, offset: 0, total: 2_000_000, data: data.subarray(0, 10), actor: 't' }))).toMatchObject({ status: 413 });
    expect(await refusal(uploads.append({ digest, offset: 0, total: 5, data: data.subarray(0, 10), actor: 't' }))).toMatchObject({ status: 400, message: expect.stringMatching(/more bytes than Upload-Length \(5\)/) });
    await uploads.append({ digest, offset: 0, total: data.length, data: data.subarray(0, 65536), actor: 't' });
    expect(await refusal(uploads.append({ digest, offset: 65536, total: data.length + 1, data: data.subarray(65536), actor: 't' }))).toMatchObject({ status: 409, code: 'length_mismatch' });
  });

  it('the sweep also aborts staged uploads no row names once they are older than the TTL (a replica died before recording one)', async () => {
    const store = createLocalStore({ dir: join(tmp, 's5'), stagingDir: join(tmp, 'up5') });
    const uploads = createUploads({ db: h.db, store, clock, chunkBytes: 65536, ttlMs: 3600_000 });
    const orphan = await store.parts.create(sha256(Buffer.from('orphan')));
    // young: kept (it may be an upload whose row is being written right now)
    expect((await uploads.sweep(new Date(Date.now() + 60_000))).untracked).toEqual([]);
    expect(readdirSync(join(tmp, 'up5'))).toEqual([orphan]);
    expect((await uploads.sweep(new Date(Date.now() + 2 * 3600_000))).untracked).toEqual([orphan]);
    expect(readdirSync(join(tmp, 'up5'))).toEqual([]);
  });
});
