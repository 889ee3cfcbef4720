// ImageStore: where image blobs and manifests live. Content-addressed: every blob is stored under its sha256
// (hex), so a key never changes meaning and a cached copy can always be verified against its name.
// Two implementations: S3 (Ceph RGW in production, s3.ts) and a local directory (the embedded default, local.ts).
import type { Readable } from 'node:stream';

export const DIGEST_RE = /^[0-9a-f]{64}$/;

export interface BlobStat {
  size: number;
}

export interface BlobBody {
  size: number;
  body: Readable;
}

export interface PutProgress {
  /** bytes sent so far (counting parts skipped on resume) */
  sent: number;
  total: number;
  /** parts already in the store from an interrupted earlier upload */
  resumedParts?: number;
}

export interface PutOptions {
  onProgress?: (p: PutProgress) => void;
  signal?: AbortSignal;
}

/** A manifest as written beside the blobs (and kept in the database). */
export interface ImageManifest {
  schema: 1;
  name: string;
  version: string;
  arch: string;
  kernel: { digest: string; size: number };
  initrd: { digest: string; size: number };
  cmdline: string;
  /** kernel + initrd bytes */
  size: number;
  created: string;
  notes?: string;
}

export interface ImageStore {
  readonly kind: 's3' | 'local';
  /** null when the blob is not there; throws StoreUnavailableError when the store cannot be asked */
  stat(digest: string): Promise<BlobStat | null>;
  /** the blob's bytes as they come from the store (NOT verified: the cache verifies) */
  get(digest: string, opts?: { signal?: AbortSignal }): Promise<BlobBody>;
  /** store a file under its digest (the caller computed it); resumable where the store supports it */
  putFile(digest: string, path: string, opts?: PutOptions): Promise<void>;
  putManifest(m: ImageManifest): Promise<void>;
  getManifest(name: string, version: string): Promise<ImageManifest | null>;
  /** a time-limited URL a client can GET the blob from directly (S3 only) */
  presign?(digest: string, expiresInSeconds: number): Promise<string>;
  /** parts of a resumable upload (server/images/uploads.ts keeps their numbers and ETags in the database) */
  readonly parts: PartTarget;
}

/**
 * Where the parts of a resumable upload go until it is complete: an S3 multipart upload (s3.ts), or files in a
 * staging directory every replica shares (local.ts). `complete` puts the blob under its digest in one step, with
 * exactly the parts named, in that order; nothing of an upload is visible under the digest before that.
 */
export interface PartTarget {
  /** the smallest part accepted, except the last one (S3: 5 MiB; local: 1 byte) */
  readonly minPartBytes: number;
  /** the largest part number the store accepts (S3: 10000) */
  readonly maxPartNumber: number;
  /** start an upload; returns its id */
  create(digest: string): Promise<string>;
  /** store one part; returns its ETag. Throws UploadGoneError when the upload was aborted (expired). */
  put(digest: string, uploadId: string, partNumber: number, data: Buffer, signal?: AbortSignal): Promise<string>;
  /** assemble the parts, in the order given, under the digest; UploadGoneError when there is no such upload,
   * PartsRefusedError when a part's bytes are not the ones its ETag names */
  complete(digest: string, uploadId: string, parts: { partNumber: number; etag: string }[]): Promise<void>;
  /** drop an upload and its parts; a missing upload is not an error */
  abort(digest: string, uploadId: string): Promise<void>;
  /** every upload open in the store, tracked or not (the sweep aborts old ones the database does not know:
   * a replica that died between starting one and recording it, or a push that never finished) */
  listOpen(): Promise<{ digest: string | null; uploadId: string; startedAt: Date }[]>;
}

/** The store refused to assemble the parts: a part it holds is not the one committed (its ETag differs). */
export class PartsRefusedError extends Error {
  constructor(readonly uploadId: string, detail: string) {
    super(`the image store refused to assemble upload ${uploadId}: ${detail}`);
    this.name = 'PartsRefusedError';
  }
}

/** The store no longer has the upload (aborted by the expiry sweep, or completed by another replica). */
export class UploadGoneError extends Error {
  constructor(readonly uploadId: string) {
    super(`upload ${uploadId} is no longer open in the image store`);
    this.name = 'UploadGoneError';
  }
}

export class BlobNotFoundError extends Error {
  constructor(readonly digest: string) {
    super(`blob ${digest} is not in the image store`);
    this.name = 'BlobNotFoundError';
  }
}

/** The store could not be reached or answered with a server error: an outage, not a missing blob. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

export function blobKey(digest: string, prefix = ''): string {
  return `${prefix}blobs/sha256/${digest.slice(0, 2)}/${digest}`;
}

export function manifestKey(name: string, version: string, prefix = ''): string {
  return `${prefix}manifests/${encodeURIComponent(name)}/${encodeURIComponent(version)}.json`;
}

export function assertDigest(digest: string): void {
  if (!DIGEST_RE.test(digest)) throw new TypeError(`not a sha256 digest: ${JSON.stringify(digest).slice(0, 80)}`);
}
