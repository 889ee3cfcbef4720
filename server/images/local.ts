// The embedded default ImageStore: a plain directory (blobs/sha256/xx/<digest>, manifests/<name>/<version>.json).
// Writes go to a temp file and are renamed into place, so a crash never leaves a half blob under a digest.
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { assertDigest, blobKey, BlobNotFoundError, manifestKey, type BlobBody, type BlobStat, type ImageManifest, type ImageStore, type PutOptions } from './store.ts';

export interface LocalStoreOptions {
  dir: string;
}

export function createLocalStore({ dir }: LocalStoreOptions): ImageStore {
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
  return {
    kind: 'local',
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
