// Resumable blob uploads that any replica can continue (issue 14 item 1).
//
// The HTTP contract is the offset protocol of tus 1.0 (server/api/images.ts): a client asks how many bytes the
// server has, then sends chunks in order at that offset. Here a chunk becomes one part in the store (an S3
// multipart upload on Ceph RGW, or a file in the shared staging directory of the local store), and the upload's
// row in the database says which parts make the blob: part numbers, ETags, offsets, sizes. Nothing about an
// upload lives in a replica's memory or on its disk, so a resume that reaches another replica, or a replica
// restarted mid-upload, carries on.
//
// Verifying the sha256: the chunks are strictly ordered (a chunk is accepted only at the upload's offset), so the
// running hash state after each committed part is stored with the part (hash-wasm's save()/load(): 116 bytes).
// The replica that receives the last chunk loads the state, hashes the chunk and compares with the digest
// BEFORE it asks the store to assemble the parts: no blob is ever visible under a digest it does not hash to, and
// nothing is read back (the other way, completing into a side key and streaming it back, would read every
// blob once more from RGW and then need a server-side copy limited to 5 GiB).
//
// Concurrency: a chunk first takes a 15 s lease on the row (a conditional update: only while the upload is at
// the chunk's offset and nobody else holds it), writes part number next_part, then commits with another
// conditional update naming its lease. A second client sending the same chunk meanwhile gets 409 upload_busy,
// one arriving after gets 409 offset_mismatch. Part numbers have no gaps (1, 2, 3…): RGW 16 refuses
// CompleteMultipartUpload when the list skips a part it holds (InvalidPart), so a failed attempt's part is
// overwritten by the next attempt rather than left behind under its own number. Should a writer that outlived
// its lease still overwrite a part, its ETag no longer matches the one committed and the store refuses to
// complete (InvalidPart): the upload is discarded, never assembled from the wrong bytes.
//
// Expiry: an upload idle for longer than the TTL is marked expired (conditional, so a chunk accepted meanwhile
// keeps it), aborted in the store (AbortMultipartUpload, idempotent) and deleted. Any replica may sweep; two
// sweeps abort the same upload twice, which is harmless.
import { createHash, randomBytes } from 'node:crypto';
import { createSHA256, type IHasher } from 'hash-wasm';
import type { Db } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { systemClock, type Clock } from '../clock.ts';
import { createUploadStore, type UploadRow } from '../store/uploads.ts';
import { PartsRefusedError, UploadGoneError, type ImageStore } from './store.ts';

/** How long a writer holds an upload while it stores one chunk (received in full before the lease is taken, so
 * this covers hashing and one UploadPart to the store). A holder that dies blocks the upload this long. */
const LEASE_MS = 15_000;

/** What hash_state was written by: a replica refuses state it cannot load rather than mis-hash. */
export const HASH_FORMAT = 'hash-wasm-4/sha256';

export interface UploadLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface UploadsOptions {
  db: Db;
  store: ImageStore;
  clock?: Clock;
  /** chunk size clients are told to use; raised to the store's minimum part size (S3: 5 MiB) */
  chunkBytes?: number;
  maxBlobBytes?: number;
  /** uploads idle for longer are aborted by sweep() */
  ttlMs?: number;
  log?: UploadLogger;
}

export interface AppendInput {
  digest: string;
  /** Upload-Offset */
  offset: number;
  /** Upload-Length */
  total: number;
  data: Buffer;
  /** Upload-Checksum's sha256 of this chunk (base64), when the client sent one */
  chunkSha256?: string;
  actor: string;
}

export interface UploadStatus {
  digest: string;
  offset: number;
  complete: boolean;
}

async function hasherAt(state: string | null): Promise<IHasher> {
  const h = await createSHA256();
  if (state) h.load(Buffer.from(state, 'base64'));
  else h.init();
  return h;
}

export function createUploads({ db, store, clock = systemClock, chunkBytes = 8 * 1024 * 1024, maxBlobBytes = 4 * 1024 ** 3, ttlMs = 24 * 3600_000, log }: UploadsOptions) {
  const rows = createUploadStore(db);
  const target = store.parts;
  const chunk = Math.max(chunkBytes, target.minPartBytes);
  if (Math.ceil(maxBlobBytes / chunk) > target.maxPartNumber)
    throw new RangeError(`images.maxBlobBytes (${maxBlobBytes}) needs more than ${target.maxPartNumber} parts of ${chunk} bytes: raise the part size`);

  const mismatch = (have: number, digest: string) => new AppError(409, 'offset_mismatch', `the server has ${have} bytes of ${digest}; send from there`, { offset: have });

  /** Drop an upload: its parts in the store, then its rows. */
  async function discard(row: UploadRow): Promise<void> {
    await target.abort(row.digest, row.storeUploadId);
    await rows.remove(row.id);
  }

  /** Assemble a fully committed upload under its digest (idempotent: a second replica finishing it is fine). */
  async function finish(row: UploadRow): Promise<void> {
    const parts = await rows.parts(row.id);
    let at = 0;
    for (const p of parts) {
      if (p.offset !== at) throw new Error(`upload ${row.id} of ${row.digest}: part ${p.partNumber} starts at ${p.offset}, expected ${at}`);
      at += p.size;
    }
    const actual = at === row.total ? (await hasherAt(row.hashState)).digest('hex') : null;
    if (actual !== row.digest) {
      // cannot happen through append() (it checks before committing the last part); refuse rather than publish
      await discard(row);
      throw new AppError(400, 'digest_mismatch', `the uploaded bytes hash to ${actual ?? '(incomplete)'}, not ${row.digest}; the upload was discarded`, { expected: row.digest, actual });
    }
    try {
      await target.complete(row.digest, row.storeUploadId, parts);
    } catch (err) {
      if (err instanceof PartsRefusedError) {
        await discard(row);
        throw new AppError(409, 'upload_damaged', `${err.message}; the upload of ${row.digest} was discarded: start it again`, { offset: 0 });
      }
      if (!(err instanceof UploadGoneError)) throw err;
      const there = await store.stat(row.digest);
      if (!there || there.size !== row.total) {
        await rows.remove(row.id);
        throw new AppError(409, 'upload_expired', `the upload of ${row.digest} is no longer open in the image store (expired); start it again`, { offset: 0 });
      }
    }
    await rows.remove(row.id);
    log?.info({ digest: row.digest, bytes: row.total, parts: parts.length }, 'upload complete');
  }

  const uploads = {
    /** the chunk size clients should use */
    chunkBytes: chunk,
    /** the smallest chunk accepted except the last */
    minChunkBytes: target.minPartBytes,

    /** How far an upload is; finishes one whose bytes are all there but that was not assembled (its replica died). */
    async status(digest: string): Promise<UploadStatus> {
      const row = await rows.get(digest);
      if (row && row.state === 'open') {
        if (row.offset < row.total) return { digest, offset: row.offset, complete: false };
        await finish(row);
        return { digest, offset: row.total, complete: true };
      }
      const there = await store.stat(digest);
      if (there) return { digest, offset: there.size, complete: true };
      return { digest, offset: 0, complete: false };
    },

    /** Take the chunk at `offset`; when it is the last, verify the sha256 and put the blob under its digest. */
    async append({ digest, offset, total, data, chunkSha256, actor }: AppendInput): Promise<UploadStatus> {
      if (total > maxBlobBytes) throw new AppError(413, 'payload_too_large', `blobs are limited to ${maxBlobBytes} bytes`);
      const len = data.length;
      if (offset + len > total) throw new AppError(400, 'bad_request', `more bytes than Upload-Length (${total}): ${len} at offset ${offset}`);
      if (len > chunk) throw new AppError(413, 'payload_too_large', `a chunk may hold at most ${chunk} bytes; this one has ${len}`);
      const final = offset + len === total;
      if (len === 0 && !final) throw new AppError(400, 'bad_request', 'the chunk is empty; send the bytes from Upload-Offset');
      if (!final && len < target.minPartBytes)
        throw new AppError(400, 'chunk_too_small', `every chunk but the last must hold at least ${target.minPartBytes} bytes (the ${store.kind} store's minimum part size); this one has ${len}: send ${chunk}-byte chunks`, {
          minChunkBytes: target.minPartBytes,
          chunkBytes: chunk,
        });
      if (chunkSha256 !== undefined) {
        const got = createHash('sha256').update(data).digest('base64');
        if (got !== chunkSha256)
          throw new AppError(400, 'checksum_mismatch', `the chunk at offset ${offset} (${len} bytes) hashes to sha256 ${got}, not the Upload-Checksum ${chunkSha256}; it was not stored: send it again`, { offset, expected: chunkSha256, actual: got });
      }

      let row = await rows.get(digest);
      if (!row) {
        if (await store.stat(digest)) return { digest, offset: total, complete: true };
        if (offset !== 0) throw mismatch(0, digest);
        const id = await target.create(digest);
        const made = await rows.create({ digest, total, store: store.kind, storeUploadId: id, hashFormat: HASH_FORMAT, createdBy: actor, at: clock.now() });
        // another replica started the same upload at the same moment: use theirs, drop ours
        if (!made.created) await target.abort(digest, id);
        row = made.row;
      }
      if (row.state !== 'open') throw new AppError(409, 'upload_expired', `the upload of ${digest} expired and is being discarded; start it again shortly`, { offset: 0 });
      if (row.total !== total) throw new AppError(409, 'length_mismatch', `Upload-Length ${total} differs from the upload of ${digest} in progress (${row.total} bytes)`, { total: row.total });
      if (row.hashFormat !== HASH_FORMAT) throw new AppError(409, 'upload_incompatible', `the upload of ${digest} was started by a replica whose hash state is ${row.hashFormat}; this one writes ${HASH_FORMAT}`);
      if (row.offset === total) {
        await finish(row);
        return { digest, offset: total, complete: true };
      }
      if (row.offset !== offset) throw mismatch(row.offset, digest);

      const token = randomBytes(12).toString('base64url');
      const at = clock.now();
      const claim = await rows.claim(row.id, offset, token, at, new Date(at.getTime() + LEASE_MS));
      if (!claim) {
        const now = await rows.get(digest);
        if (now && now.state === 'open' && now.offset === offset)
          throw new AppError(409, 'upload_busy', `another client is sending the chunk at offset ${offset} of ${digest}; try again shortly`, { offset }, { 'retry-after': String(Math.ceil(LEASE_MS / 1000)) });
        throw mismatch(now?.offset ?? 0, digest);
      }
      if (claim.partNumber > target.maxPartNumber) {
        await discard(row);
        throw new AppError(409, 'too_many_parts', `the upload of ${digest} needs more than ${target.maxPartNumber} parts (chunks too small); it was discarded: start again with ${chunk}-byte chunks`, { offset: 0 });
      }
      let committed = false;
      try {
        const hasher = await hasherAt(claim.hashState);
        hasher.update(data);
        const state = Buffer.from(hasher.save()).toString('base64');
        if (final) {
          const actual = hasher.digest('hex');
          if (actual !== digest) {
            await discard(row);
            committed = true; // nothing left to release
            throw new AppError(400, 'digest_mismatch', `the uploaded bytes hash to ${actual}, not ${digest}; the upload was discarded`, { expected: digest, actual });
          }
        }
        let etag: string;
        try {
          // a holder never writes past its lease: after it, another writer may own this part number
          etag = await target.put(digest, row.storeUploadId, claim.partNumber, data, AbortSignal.timeout(LEASE_MS - 1000));
        } catch (err) {
          if (err instanceof UploadGoneError) throw new AppError(409, 'upload_expired', `the upload of ${digest} is no longer open in the image store (expired); start it again`, { offset: 0 });
          throw err;
        }
        committed = await rows.commit(row.id, token, { partNumber: claim.partNumber, offset, size: len, etag }, state, clock.now());
        if (!committed) throw mismatch((await rows.get(digest))?.offset ?? 0, digest);
        if (final) await finish({ ...row, offset: total, hashState: state, nextPart: claim.partNumber + 1 });
      } finally {
        if (!committed) await rows.release(row.id, token).catch(() => undefined);
      }
      if (!final) return { digest, offset: offset + len, complete: false };
      return { digest, offset: total, complete: true };
    },

    /** Abort uploads idle for longer than the TTL (safe on every replica at once). */
    async sweep(now: Date = clock.now()): Promise<{ aborted: string[]; untracked: string[] }> {
      const aborted: string[] = [];
      for (const row of await rows.markExpired(new Date(now.getTime() - ttlMs))) {
        try {
          await discard(row);
          aborted.push(row.digest);
        } catch (err) {
          // stays marked expired: the next sweep tries again
          log?.warn({ digest: row.digest, err: (err as Error).message }, 'could not abort an expired upload');
        }
      }
      // uploads open in the store that no row names (a replica died between starting one and recording it, or a
      // push outside the API never finished): aborted once they are older than the TTL, so a fresh one is safe
      const known = new Set((await rows.list()).map((r) => r.storeUploadId));
      const orphans: string[] = [];
      for (const u of await target.listOpen()) {
        if (known.has(u.uploadId) || u.startedAt.getTime() >= now.getTime() - ttlMs) continue;
        try {
          await target.abort(u.digest ?? '', u.uploadId);
          orphans.push(u.uploadId);
        } catch (err) {
          log?.warn({ uploadId: u.uploadId, err: (err as Error).message }, 'could not abort an untracked upload');
        }
      }
      if (aborted.length || orphans.length) log?.info({ aborted: aborted.length, untracked: orphans.length }, 'expired uploads aborted');
      return { aborted, untracked: orphans };
    },

    /** open uploads, for operators and tests */
    list: () => rows.list(),
  };
  return uploads;
}

export type Uploads = ReturnType<typeof createUploads>;
