// The upload route takes chunks above http.bodyLimitBytes (an S3 part is at least 5 MiB, the default body limit
// 4 MiB), composed as main does (createApp + imagesMount): its own limit is the chunk size, and every other
// route keeps the global one.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DbHandle } from '../db/index.ts';
import { createApp } from './app.ts';
import { imagesMount } from './images.ts';
import { createImages } from '../images/index.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { createTestApp, TOKENS } from '../../test/fakes/app.ts';
import { sha256 } from '../../test/fakes/images.ts';
import { silentLogger } from '../log.ts';

const MiB = 1024 * 1024;
let db: DbHandle;
let tmp: string;
beforeAll(async () => {
  db = await createTestDb();
  tmp = mkdtempSync(join(tmpdir(), 'bf-uplimit-'));
});
afterAll(async () => {
  await db?.close();
  rmSync(tmp, { recursive: true, force: true });
});

it('a 6 MiB chunk reaches the upload route past the 4 MiB body limit; a bigger one, and big bodies elsewhere, get 413', async () => {
  const { deps } = createTestApp(db);
  expect(deps.config.http.bodyLimitBytes).toBe(4 * MiB);
  const images = await createImages({ config: { dataDir: tmp, images: { uploadChunkBytes: 6 * MiB } }, db: db.db, log: silentLogger() });
  const app = createApp(deps, { extra: [imagesMount(images)] });
  const data = randomBytes(7 * MiB);
  const digest = sha256(data);
  const patch = (body: Buffer, offset: number) =>
    app.request(`/api/v1/images/blobs/${digest}/upload`, { method: 'PATCH', headers: { authorization: `Bearer ${TOKENS.operator}`, 'upload-offset': String(offset), 'upload-length': String(data.length), 'content-length': String(body.length) }, body });
  const first = await patch(data.subarray(0, 6 * MiB), 0);
  expect(first.status).toBe(200);
  expect(await first.json()).toMatchObject({ offset: 6 * MiB, complete: false });
  const last = await patch(data.subarray(6 * MiB), 6 * MiB);
  expect(last.status).toBe(201);
  expect((await images.store.stat(digest))?.size).toBe(data.length);

  const tooBig = await app.request(`/api/v1/images/blobs/${'c'.repeat(64)}/upload`, { method: 'PATCH', headers: { authorization: `Bearer ${TOKENS.operator}`, 'upload-offset': '0', 'upload-length': String(8 * MiB), 'content-length': String(7 * MiB) }, body: randomBytes(7 * MiB) });
  expect(tooBig.status).toBe(413);
  expect(((await tooBig.json()) as { error: { message: string } }).error.message).toBe(`a chunk may hold at most ${6 * MiB} bytes (chunkBytes of GET …/upload)`);
  const elsewhere = await app.request('/api/v1/nodes/enroll', { method: 'POST', headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json', 'content-length': String(5 * MiB) }, body: 'x'.repeat(5 * MiB) });
  expect(elsewhere.status).toBe(413);
  expect(((await elsewhere.json()) as { error: { message: string } }).error.message).toBe(`request body exceeds ${4 * MiB} bytes`);
});
