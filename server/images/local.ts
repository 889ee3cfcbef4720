// The embedded default ImageStore: a plain directory (blobs/sha256/xx/<digest>, manifests/<name>/<version>.json).
// Writes go to a temp file and are renamed into place, so a crash never leaves a half blob under a digest.
// Parts of resumable uploads are files in `stagingDir/<upload id>/<part number>`; with several replicas that
// directory (and `dir`) must be shared by all of them, e.g. over NFS (README, "High availability").
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash, randomBytes } from 'node:crypto';
import { assertDigest, blobKey, BlobNotFoundError, manifestKey, PartsRefusedError, UploadGoneError, type BlobBody, type BlobStat, type ImageManifest, type ImageStore, type PartTarget, type PutOptions } from './store.ts';

export interface LocalStoreOptions {
  dir: string;
  /** where upload parts wait until complete (default: `dir`/uploads) */
  stagingDir?: string;
}

const UPLOAD_ID = /^[0-9a-f]{32}$/;

export function createLocalStore({ dir, stagingDir = join(dir, 'uploads') }: LocalStoreOptions): ImageStore {
  const pathOf = (digest: string) => join(dir, blobKey(digest));
  const atomicWrite = async (dest: string, write: (tmp: string) => Promise<void>) => {
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      await write(tmp);
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  };
  const uploadDir = (uploadId: string) => {
    if (!UPLOAD_ID.test(uploadId)) throw new TypeError(`not a local upload id: ${JSON.stringify(uploadId).slice(0, 80)}`);
    return join(stagingDir, uploadId);
  };
  const exists = async (p: string) => {
    try {
      await stat(p);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  };
  const parts: PartTarget = {
    minPartBytes: 1,
    maxPartNumber: 1_000_000,
    async create(digest) {
      assertDigest(digest);
      const id = randomBytes(16).toString('hex');
      await mkdir(uploadDir(id), { recursive: true });
      return id;
    },
    async put(_digest, uploadId, partNumber, data) {
      // no mkdir: a directory the sweep removed stays removed, and the write fails as "gone"
      const dest = join(uploadDir(uploadId), String(partNumber));
      const tmp = `${dest}.tmp-${randomBytes(6).toString('hex')}`;
      try {
        await writeFile(tmp, data);
        await rename(tmp, dest);
      } catch (err) {
        await rm(tmp, { force: true });
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UploadGoneError(uploadId);
        throw err;
      }
      return createHash('md5').update(data).digest('hex');
    },
    async complete(digest, uploadId, list) {
      assertDigest(digest);
      const d = uploadDir(uploadId);
      if (!(await exists(d))) {
        if (await exists(pathOf(digest))) return; // another replica completed it
        throw new UploadGoneError(uploadId);
      }
      await atomicWrite(pathOf(digest), async (tmp) => {
        const out = createWriteStream(tmp);
        await pipeline(
          (async function* concat() {
            // each part must still be the bytes committed (its ETag is their md5): a writer that outlived its
            // lease may have replaced a file
            for (const p of list) {
              const h = createHash('md5');
              for await (const b of createReadStream(join(d, String(p.partNumber)), { highWaterMark: 1 << 20 })) {
                h.update(b as Buffer);
                yield b as Buffer;
              }
              if (h.digest('hex') !== p.etag) throw new PartsRefusedError(uploadId, `part ${p.partNumber} changed after it was committed`);
            }
          })(),
          out,
        );
      });
      await rm(d, { recursive: true, force: true });
    },
    async abort(_digest, uploadId) {
      await rm(uploadDir(uploadId), { recursive: true, force: true });
    },
    async listOpen() {
      let names: string[];
      try {
        names = await readdir(stagingDir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const out: { digest: null; uploadId: string; startedAt: Date }[] = [];
      for (const n of names.filter((x) => UPLOAD_ID.test(x))) {
        try {
          out.push({ digest: null, uploadId: n, startedAt: (await stat(join(stagingDir, n))).mtime });
        } catch {
          /* gone meanwhile */
        }
      }
      return out;
    },
  };
  return {
    kind: 'local',
    parts,
    async stat(digest: string): Promise<BlobStat | null> {
      assertDigest(digest);
      try {
        return { size: (await stat(pathOf(digest))).size };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
    async get(digest: string): Promise<BlobBody> {
      const s = await this.stat(digest);
      if (!s) throw new BlobNotFoundError(digest);
      return { size: s.size, body: createReadStream(pathOf(digest), { highWaterMark: 1 << 20 }) };
    },
    async putFile(digest: string, path: string, opts: PutOptions = {}): Promise<void> {
      assertDigest(digest);
      const size = (await stat(path)).size;
      if (!(await this.stat(digest))) await atomicWrite(pathOf(digest), (tmp) => copyFile(path, tmp));
      opts.onProgress?.({ sent: size, total: size });
    },
    async putManifest(m: ImageManifest): Promise<void> {
      await atomicWrite(join(dir, manifestKey(m.name, m.version)), (tmp) => writeFile(tmp, JSON.stringify(m, null, 2) + '\n'));
    },
    async getManifest(name: string, version: string): Promise<ImageManifest | null> {
      try {
        return JSON.parse(await readFile(join(dir, manifestKey(name, version)), 'utf8')) as ImageManifest;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
    },
  };
}
