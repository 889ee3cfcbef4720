// ImageStore on S3, aimed at Ceph RGW (path-style addressing, endpoint/region/bucket/credentials from config).
//
// Measured with Ceph 16 RGW (FACTS.md):
// - the SDK's default checksum mode sends streamed bodies as aws-chunked with a trailer, which RGW answers
//   with 411: request/response checksums are set to WHEN_REQUIRED;
// - RGW answers CompleteMultipartUpload with an empty ETag (HEAD later says "md5-N"): ETags are never used
//   as content identity here — the key IS the sha256 and the serving cache verifies it.
//
// Multipart uploads are resumable: the key is the content digest, so an unfinished upload for the same key
// can only be for the same bytes; its parts are listed and only the missing ones are sent. (lib-storage's
// Upload cannot resume an upload it did not start, so the few low-level calls are made here directly.)
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import {
  S3Client,
  HeadObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  HeadBucketCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  AbortMultipartUploadCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createHash } from 'node:crypto';
import { assertDigest, blobKey, DIGEST_RE, BlobNotFoundError, manifestKey, StoreUnavailableError, PartsRefusedError, UploadGoneError, type BlobBody, type BlobStat, type ImageManifest, type ImageStore, type PartTarget, type PutOptions } from './store.ts';

export interface S3StoreOptions {
  endpoint: string;
  region?: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** key prefix inside the bucket, e.g. 'bootfarm/' */
  prefix?: string;
  /** multipart part size (S3 minimum 5 MiB) */
  partSize?: number;
  /** parts in flight at once */
  queueSize?: number;
  /** SDK attempts per request (1 = no retry); kept low so an outage is reported quickly */
  maxAttempts?: number;
  connectTimeoutMs?: number;
  /** socket idle timeout while streaming */
  requestTimeoutMs?: number;
}

export interface S3ImageStore extends ImageStore {
  readonly kind: 's3';
  /** the SDK client, e.g. for middleware that counts requests */
  readonly client: S3Client;
  readonly bucket: string;
  /** create the bucket when it does not exist */
  ensureBucket(): Promise<void>;
  /** upload parts [first, last) only and leave the multipart upload open (tests: simulate an interrupted push) */
  putFilePartial(digest: string, path: string, parts: number): Promise<void>;
}

const MiB = 1024 * 1024;

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNoSuchUpload(err: unknown): boolean {
  return (err as { name?: string }).name === 'NoSuchUpload' || (err as { Code?: string }).Code === 'NoSuchUpload';
}

/** md5 (hex) of a byte range of a file: a part's ETag, without its quotes */
async function md5Etag(path: string, start: number, len: number): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path, { start, end: start + len - 1, highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  return statusOf(err) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}

/** Turn transport failures and 5xx into StoreUnavailableError; pass other errors through. */
function mapError(err: unknown, what: string): unknown {
  if (err instanceof StoreUnavailableError || err instanceof BlobNotFoundError) return err;
  const status = statusOf(err);
  if (status === undefined || status >= 500) {
    const msg = (err as Error).message || (err as { code?: string }).code || String(err);
    return new StoreUnavailableError(`image store unreachable during ${what}: ${msg}`, { cause: err });
  }
  return err;
}

export function createS3Store({
  endpoint,
  region = 'default',
  bucket,
  accessKeyId,
  secretAccessKey,
  prefix = '',
  partSize = 8 * MiB,
  queueSize = 4,
  maxAttempts = 2,
  connectTimeoutMs = 3000,
  requestTimeoutMs = 30_000,
}: S3StoreOptions): S3ImageStore {
  if (partSize < 5 * MiB) throw new RangeError('partSize must be at least 5 MiB (S3 multipart minimum)');
  const agentOpts = { keepAlive: true, maxSockets: 64 };
  const client = new S3Client({
    endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
    requestHandler: {
      connectionTimeout: connectTimeoutMs,
      requestTimeout: requestTimeoutMs,
      httpAgent: new Agent(agentOpts),
      httpsAgent: new HttpsAgent(agentOpts),
    },
  });
  const key = (digest: string) => blobKey(digest, prefix);

  async function stat_(digest: string): Promise<BlobStat | null> {
    assertDigest(digest);
    try {
      const h = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key(digest) }));
      return { size: h.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw mapError(err, 'HEAD');
    }
  }

  async function findOpenUpload(k: string): Promise<string | undefined> {
    const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: k }));
    const ups = (res.Uploads ?? []).filter((u) => u.Key === k && u.UploadId);
    ups.sort((a, b) => (b.Initiated?.getTime() ?? 0) - (a.Initiated?.getTime() ?? 0));
    return ups[0]?.UploadId;
  }

  async function listParts(k: string, uploadId: string): Promise<Map<number, { size: number; etag: string }>> {
    const parts = new Map<number, { size: number; etag: string }>();
    let marker: string | undefined;
    for (;;) {
      const res = await client.send(new ListPartsCommand({ Bucket: bucket, Key: k, UploadId: uploadId, PartNumberMarker: marker }));
      for (const p of res.Parts ?? []) if (p.PartNumber && p.ETag !== undefined) parts.set(p.PartNumber, { size: p.Size ?? -1, etag: p.ETag });
      if (!res.IsTruncated || !res.NextPartNumberMarker) break;
      marker = res.NextPartNumberMarker;
    }
    return parts;
  }

  /** Upload the parts of `path` that the open upload lacks; with `stopAfter`, leave the upload open. */
  async function multipart(digest: string, path: string, size: number, opts: PutOptions, stopAfter?: number): Promise<void> {
    const k = key(digest);
    let uploadId = await findOpenUpload(k);
    const have = uploadId ? await listParts(k, uploadId) : new Map<number, { size: number; etag: string }>();
    if (!uploadId) {
      const res = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: k, ContentType: 'application/octet-stream' }));
      uploadId = res.UploadId!;
    }
    const count = Math.ceil(size / partSize);
    const done: CompletedPart[] = [];
    const todo: number[] = [];
    let sent = 0;
    let resumed = 0;
    for (let n = 1; n <= count; n++) {
      const expect = Math.min(partSize, size - (n - 1) * partSize);
      const prev = have.get(n);
      // reuse a part only if it holds these very bytes (its ETag is their md5): an open upload for this key may
      // be a resumable API upload (uploads.ts), whose part numbers do not follow byte positions
      if (prev && prev.size === expect && prev.etag.replace(/"/g, '') === (await md5Etag(path, (n - 1) * partSize, expect))) {
        done.push({ PartNumber: n, ETag: prev.etag });
        sent += expect;
        resumed++;
      } else todo.push(n);
    }
    opts.onProgress?.({ sent, total: size, resumedParts: resumed });
    const limit = stopAfter === undefined ? todo.length : Math.min(stopAfter, todo.length);
    let next = 0;
    const worker = async () => {
      while (next < limit) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
        const n = todo[next++]!;
        const start = (n - 1) * partSize;
        const len = Math.min(partSize, size - start);
        const res = await client.send(
          new UploadPartCommand({ Bucket: bucket, Key: k, UploadId: uploadId, PartNumber: n, ContentLength: len, Body: createReadStream(path, { start, end: start + len - 1 }) }),
          { abortSignal: opts.signal },
        );
        done.push({ PartNumber: n, ETag: res.ETag ?? '' });
        sent += len;
        opts.onProgress?.({ sent, total: size, resumedParts: resumed });
      }
    };
    await Promise.all(Array.from({ length: Math.min(queueSize, Math.max(1, limit)) }, worker));
    if (stopAfter !== undefined) return;
    done.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: k, UploadId: uploadId, MultipartUpload: { Parts: done } }));
  }

  const parts: PartTarget = {
    minPartBytes: 5 * MiB,
    maxPartNumber: 10_000,
    async create(digest) {
      assertDigest(digest);
      try {
        const res = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key(digest), ContentType: 'application/octet-stream' }));
        if (!res.UploadId) throw new StoreUnavailableError('the image store started a multipart upload without an UploadId');
        return res.UploadId;
      } catch (err) {
        throw mapError(err, 'CreateMultipartUpload');
      }
    },
    async put(digest, uploadId, partNumber, data, signal) {
      try {
        const res = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key(digest), UploadId: uploadId, PartNumber: partNumber, ContentLength: data.length, Body: data }), { abortSignal: signal });
        return res.ETag ?? '';
      } catch (err) {
        if (isNoSuchUpload(err)) throw new UploadGoneError(uploadId);
        throw mapError(err, 'UploadPart');
      }
    },
    async complete(digest, uploadId, list) {
      try {
        await client.send(
          new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key(digest), UploadId: uploadId, MultipartUpload: { Parts: list.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) } }),
        );
      } catch (err) {
        if (isNoSuchUpload(err)) throw new UploadGoneError(uploadId);
        const name = (err as { name?: string }).name;
        if (name === 'InvalidPart' || name === 'InvalidPartOrder') throw new PartsRefusedError(uploadId, name);
        throw mapError(err, 'CompleteMultipartUpload');
      }
    },
    async listOpen() {
      const out: { digest: string | null; uploadId: string; startedAt: Date }[] = [];
      const under = `${prefix}blobs/sha256/`;
      let keyMarker: string | undefined;
      let idMarker: string | undefined;
      try {
        for (;;) {
          const res = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: under, KeyMarker: keyMarker, UploadIdMarker: idMarker }));
          for (const u of res.Uploads ?? []) {
            const digest = u.Key?.slice(u.Key.lastIndexOf('/') + 1) ?? '';
            if (u.UploadId && DIGEST_RE.test(digest)) out.push({ digest, uploadId: u.UploadId, startedAt: u.Initiated ?? new Date(0) });
          }
          if (!res.IsTruncated) break;
          keyMarker = res.NextKeyMarker;
          idMarker = res.NextUploadIdMarker;
        }
      } catch (err) {
        throw mapError(err, 'ListMultipartUploads');
      }
      return out;
    },
    async abort(digest, uploadId) {
      try {
        await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key(digest), UploadId: uploadId }));
      } catch (err) {
        if (isNoSuchUpload(err) || isNotFound(err)) return;
        throw mapError(err, 'AbortMultipartUpload');
      }
    },
  };

  const store: S3ImageStore = {
    kind: 's3',
    client,
    bucket,
    parts,
    async ensureBucket() {
      try {
        await client.send(new HeadBucketCommand({ Bucket: bucket }));
      } catch (err) {
        if (!isNotFound(err)) throw mapError(err, 'HEAD bucket');
        await client.send(new CreateBucketCommand({ Bucket: bucket }));
      }
    },
    stat: stat_,
    async get(digest, { signal } = {}): Promise<BlobBody> {
      assertDigest(digest);
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key(digest) }), { abortSignal: signal });
        return { size: res.ContentLength ?? 0, body: res.Body as Readable };
      } catch (err) {
        if (isNotFound(err)) throw new BlobNotFoundError(digest);
        throw mapError(err, 'GET');
      }
    },
    async putFile(digest, path, opts = {}) {
      assertDigest(digest);
      const size = (await stat(path)).size;
      try {
        if (await stat_(digest)) {
          opts.onProgress?.({ sent: size, total: size });
          return;
        }
        if (size <= partSize) {
          await client.send(
            new PutObjectCommand({ Bucket: bucket, Key: key(digest), ContentLength: size, Body: createReadStream(path), ContentType: 'application/octet-stream' }),
            { abortSignal: opts.signal },
          );
          opts.onProgress?.({ sent: size, total: size });
        } else {
          await multipart(digest, path, size, opts);
        }
        const after = await stat_(digest);
        if (!after || after.size !== size) throw new Error(`upload of ${digest} ended with ${after?.size ?? 'no'} bytes in the store, expected ${size}`);
      } catch (err) {
        throw mapError(err, 'upload');
      }
    },
    async putFilePartial(digest, path, parts) {
      const size = (await stat(path)).size;
      await multipart(digest, path, size, {}, parts);
    },
    async putManifest(m: ImageManifest) {
      const body = JSON.stringify(m, null, 2) + '\n';
      try {
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: manifestKey(m.name, m.version, prefix), Body: body, ContentType: 'application/json' }));
      } catch (err) {
        throw mapError(err, 'manifest upload');
      }
    },
    async getManifest(name, version) {
      try {
        const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey(name, version, prefix) }));
        return JSON.parse(await res.Body!.transformToString()) as ImageManifest;
      } catch (err) {
        if (isNotFound(err)) return null;
        throw mapError(err, 'manifest GET');
      }
    },
    async presign(digest, expiresInSeconds) {
      assertDigest(digest);
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key(digest) }), { expiresIn: expiresInSeconds });
    },
  };
  return store;
}
