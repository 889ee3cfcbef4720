// The local disk cache in front of the ImageStore. Nodes boot in storms (a rack powers on, 1,000 iPXE clients
// ask for the same initrd within a second), so a miss is filled from the store ONCE (single flight): the first
// request starts one GET, every request for the same digest that arrives while it runs joins it and is
// streamed the bytes as they land in the temp file. The blob is sha256-verified before the cache keeps it;
// the last byte is held back from every client until the hash matches, so a corrupt blob never reaches any
// client complete (they see a short body against Content-Length and retry) and is never kept or served twice.
// Entries survive restarts (files named by digest, LRU order from mtime) and are evicted LRU past maxBytes.
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { assertDigest, BlobNotFoundError, DIGEST_RE, StoreUnavailableError, type ImageStore } from './store.ts';

export interface CacheLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silent: CacheLogger = { info() {}, warn() {}, error() {} };

export interface BlobCacheOptions {
  dir: string;
  store: ImageStore;
  /** cache size cap in bytes; least recently used entries are evicted past it */
  maxBytes: number;
  logger?: CacheLogger;
  /** after a corrupt blob, answer "corrupt" for this long instead of fetching it again */
  corruptHoldMs?: number;
  now?: () => number;
  /** RAM for hot blobs (a boot storm asks for the same initrd a thousand times); 0 disables */
  memoryBytes?: number;
  /** blobs larger than this are never held in RAM */
  memoryMaxEntryBytes?: number;
  /** called once per fill from the store that got a body: how it ended, how long it took (seconds), bytes received */
  onFill?: (result: FillResult, seconds: number, bytes: number) => void;
  /** called once per corrupt blob detected (wire a metrics counter here) */
  onCorrupt?: (digest: string, detail: { expected: string; actual: string; size: number; expectedSize: number }) => void;
}

/** The store holds bytes whose sha256 is not their name. */
export class BlobCorruptError extends Error {
  constructor(
    readonly digest: string,
    readonly actual: string,
  ) {
    super(`blob ${digest} in the image store is corrupt (its content hashes to ${actual}); it was not cached or served`);
    this.name = 'BlobCorruptError';
  }
}

/** how a fill from the store ended: verified and kept, refused (sha256 mismatch), or the stream broke */
export type FillResult = 'ok' | 'corrupt' | 'failed';

export interface CacheStats {
  /** GETs sent to the store (fills started) */
  storeGets: number;
  /** bytes received from the store by fills (whatever their outcome) */
  storeBytes: number;
  /** store GETs that failed before a body came: no such blob, store unreachable; and bodies that broke midway */
  storeNotFound: number;
  storeUnavailable: number;
  storeBroken: number;
  hits: number;
  /** requests that joined or started a fill */
  misses: number;
  corrupt: number;
  evictions: number;
  bytes: number;
  entries: number;
  memoryBytes: number;
}

interface Entry {
  size: number;
  touchedAt: number;
}

const CHUNK = 1 << 20;

/** One fill of one digest from the store, shared by every request that asks while it runs. */
export class Flight extends EventEmitter {
  written = 0;
  state: 'filling' | 'ok' | 'failed' = 'filling';
  error?: Error;
  private readers = 0;
  readonly done: Promise<void>;
  private settle!: (err?: Error) => void;
  /** the received chunks, kept when the blob fits the memory tier: readers share them without copies */
  chunks: Buffer[] | null;
  private chunkStarts: number[] = [];

  constructor(
    readonly digest: string,
    readonly size: number,
    readonly fh: FileHandle,
    keepChunks: boolean,
    /** where the verified blob ends up */
    readonly finalPath: string,
  ) {
    super();
    this.setMaxListeners(0);
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve());
    });
    this.done.catch(() => {});
    this.chunks = keepChunks ? [] : null;
  }

  progress(chunk: Buffer): void {
    if (this.chunks) {
      this.chunks.push(chunk);
      this.chunkStarts.push(this.written);
    }
    this.written += chunk.length;
    this.emit('progress');
  }

  /** bytes at pos (up to len) from the shared chunks, without copying */
  private slice(pos: number, len: number): Buffer {
    const starts = this.chunkStarts;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    const c = this.chunks![lo]!;
    const off = pos - starts[lo]!;
    return c.subarray(off, Math.min(c.length, off + len));
  }

  finish(err?: Error): void {
    this.state = err ? 'failed' : 'ok';
    this.error = err;
    this.settle(err);
    this.emit('progress');
    this.maybeClose();
  }

  private closed = false;

  private maybeClose(): void {
    if (this.state !== 'filling' && this.readers === 0 && !this.closed) {
      this.closed = true;
      this.fh.close().catch(() => {});
    }
  }

  /** A stream of bytes [start, end] (inclusive) that follows the fill; the last byte waits for verification. */
  reader(start = 0, end = this.size - 1): Readable {
    // Joined just as the fill finished and its file handle was closed: read the verified file instead.
    if (this.closed && !this.chunks) {
      if (this.state === 'failed') return Readable.from((async function* (e: Error) { throw e; })(this.error ?? new Error('fill failed')));
      return createReadStream(this.finalPath, { start, end, highWaterMark: CHUNK });
    }
    this.readers++;
    let pos = start;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.readers--;
      this.maybeClose();
    };
    const flight = this;
    let reading = false;
    const stream = new Readable({
      highWaterMark: CHUNK,
      read() {
        if (reading) return;
        reading = true;
        void pump();
      },
      destroy(err, cb) {
        release();
        cb(err);
      },
    });
    const pump = async () => {
      try {
        for (;;) {
          if (pos > end) {
            stream.push(null);
            release();
            return;
          }
          if (flight.state === 'failed') throw flight.error ?? new Error('fill failed');
          // Hold back the blob's final byte until the hash is verified (see the file comment).
          const avail = flight.state === 'ok' ? flight.size : Math.min(flight.written, flight.size - 1);
          if (pos < avail) {
            const len = Math.min(CHUNK, avail - pos, end + 1 - pos);
            if (flight.chunks) {
              const b = flight.slice(pos, len);
              pos += b.length;
              if (!stream.push(b)) {
                reading = false;
                return;
              }
              continue;
            }
            const buf = Buffer.allocUnsafe(len);
            const { bytesRead } = await flight.fh.read(buf, 0, len, pos);
            if (bytesRead <= 0) throw new Error('cache temp file shorter than announced');
            pos += bytesRead;
            if (!stream.push(bytesRead === len ? buf : buf.subarray(0, bytesRead))) {
              reading = false;
              return;
            }
            continue;
          }
          await new Promise<void>((r) => flight.once('progress', r));
        }
      } catch (err) {
        stream.destroy(err as Error);
      }
    };
    return stream;
  }
}

export type Lookup =
  | { kind: 'hit'; digest: string; size: number; path: string; /** set when the blob is in the memory tier */ buffer?: Buffer }
  | { kind: 'fill'; digest: string; size: number; flight: Flight };

export interface BlobCache {
  readonly dir: string;
  readonly stats: CacheStats;
  has(digest: string): boolean;
  /** a hit, or the (possibly just started) fill; throws BlobNotFoundError, StoreUnavailableError, BlobCorruptError */
  lookup(digest: string): Promise<Lookup>;
  /** wait until the blob is cached and verified (filling it if needed) */
  ensure(digest: string): Promise<{ path: string; size: number }>;
  /** bytes [start, end] of a lookup as a stream (a hit evicted meanwhile is refilled transparently) */
  open(l: Lookup, start?: number, end?: number): Promise<Readable>;
  /** entries oldest first (for tests and the admin view) */
  entries(): { digest: string; size: number }[];
}

export async function createBlobCache({
  dir,
  store,
  maxBytes,
  logger = silent,
  corruptHoldMs = 30_000,
  now = Date.now,
  onCorrupt,
  onFill,
  memoryBytes = 512 * 1024 * 1024,
  memoryMaxEntryBytes = 128 * 1024 * 1024,
}: BlobCacheOptions): Promise<BlobCache> {
  const blobDir = join(dir, 'sha256');
  const tmpDir = join(dir, 'tmp');
  await mkdir(blobDir, { recursive: true });
  // Half-filled blobs from before a restart are never trusted.
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });

  // Map iteration order is the LRU order: oldest first; a touch moves an entry to the end.
  const index = new Map<string, Entry>();
  const stats: CacheStats = { storeGets: 0, storeBytes: 0, storeNotFound: 0, storeUnavailable: 0, storeBroken: 0, hits: 0, misses: 0, corrupt: 0, evictions: 0, bytes: 0, entries: 0, memoryBytes: 0 };
  const found: { digest: string; size: number; mtime: number }[] = [];
  for (const name of await readdir(blobDir)) {
    if (!DIGEST_RE.test(name)) continue;
    const s = await stat(join(blobDir, name));
    if (s.isFile()) found.push({ digest: name, size: s.size, mtime: s.mtimeMs });
  }
  found.sort((a, b) => a.mtime - b.mtime);
  for (const f of found) {
    index.set(f.digest, { size: f.size, touchedAt: f.mtime });
    stats.bytes += f.size;
  }
  stats.entries = index.size;

  const flights = new Map<string, Promise<Flight>>();
  // The memory tier: verified blobs as Buffers, LRU by Map order, bounded by memoryBytes.
  const mem = new Map<string, Buffer>();
  let memUsed = 0;
  const memLoading = new Set<string>();
  const memEligible = (size: number) => memoryBytes > 0 && size <= Math.min(memoryMaxEntryBytes, memoryBytes);
  const memPut = (digest: string, buf: Buffer) => {
    if (mem.has(digest) || !index.has(digest)) return;
    mem.set(digest, buf);
    memUsed += buf.length;
    for (const [d, b] of mem) {
      if (memUsed <= memoryBytes) break;
      if (d === digest) continue;
      mem.delete(d);
      memUsed -= b.length;
    }
    stats.memoryBytes = memUsed;
  };
  const memDrop = (digest: string) => {
    const b = mem.get(digest);
    if (b) {
      mem.delete(digest);
      memUsed -= b.length;
      stats.memoryBytes = memUsed;
    }
  };
  const corruptUntil = new Map<string, number>();
  const pathOf = (digest: string) => join(blobDir, digest);

  const touch = (digest: string, e: Entry) => {
    index.delete(digest);
    index.set(digest, e);
    const t = now();
    // mtime carries the LRU order across restarts; write it at most once a minute per entry.
    if (t - e.touchedAt > 60_000) {
      e.touchedAt = t;
      const d = new Date(t);
      utimes(pathOf(digest), d, d).catch(() => {});
    }
  };

  const evict = async (keep: string) => {
    for (const [digest, e] of index) {
      if (stats.bytes <= maxBytes) break;
      if (digest === keep && index.size > 1) continue;
      index.delete(digest);
      memDrop(digest);
      stats.bytes -= e.size;
      stats.entries = index.size;
      stats.evictions++;
      // Open readers keep their file descriptor; unlinking under them is safe on POSIX.
      await unlink(pathOf(digest)).catch(() => {});
      logger.info({ digest, size: e.size }, 'image cache: evicted');
    }
    stats.entries = index.size;
  };

  async function fill(digest: string): Promise<Flight> {
    stats.storeGets++;
    const t0 = performance.now();
    let got: Awaited<ReturnType<ImageStore['get']>>;
    try {
      got = await store.get(digest);
    } catch (err) {
      if (err instanceof BlobNotFoundError) stats.storeNotFound++;
      else stats.storeUnavailable++;
      throw err;
    }
    const { size, body } = got;
    const ended = (result: FillResult) => {
      stats.storeBytes += flight.written;
      onFill?.(result, (performance.now() - t0) / 1000, flight.written);
    };
    const tmp = join(tmpDir, `${digest}.${randomBytes(4).toString('hex')}`);
    const fh = await open(tmp, 'w+');
    const flight = new Flight(digest, size, fh, memEligible(size), pathOf(digest));
    void (async () => {
      const hash = createHash('sha256');
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          hash.update(chunk);
          let off = 0;
          while (off < chunk.length) {
            const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, flight.written + off);
            off += bytesWritten;
          }
          flight.progress(chunk);
          if (flight.written > size) break;
        }
        const actual = hash.digest('hex');
        if (actual !== digest || flight.written !== size) {
          stats.corrupt++;
          corruptUntil.set(digest, now() + corruptHoldMs);
          const detail = { expected: digest, actual, size: flight.written, expectedSize: size };
          logger.error(detail, 'image cache: corrupt blob in the image store: not cached, not served');
          onCorrupt?.(digest, detail);
          ended('corrupt');
          await unlink(tmp).catch(() => {});
          flights.delete(digest);
          flight.finish(new BlobCorruptError(digest, actual));
          return;
        }
        await rename(tmp, pathOf(digest));
        index.set(digest, { size, touchedAt: now() });
        stats.bytes += size;
        stats.entries = index.size;
        if (flight.chunks) memPut(digest, Buffer.concat(flight.chunks, size));
        flights.delete(digest);
        ended('ok');
        flight.finish();
        logger.info({ digest, size }, 'image cache: filled from the store');
        await evict(digest);
      } catch (err) {
        body.destroy?.();
        await unlink(tmp).catch(() => {});
        flights.delete(digest);
        stats.storeBroken++;
        ended('failed');
        const e = err instanceof StoreUnavailableError ? err : new StoreUnavailableError(`image store stream broke: ${(err as Error).message}`, { cause: err });
        logger.warn({ digest, err: e.message, written: flight.written, size }, 'image cache: fill failed');
        flight.finish(e);
      }
    })();
    return flight;
  }

  const cache: BlobCache = {
    dir,
    stats,
    has: (digest) => index.has(digest),
    async lookup(digest) {
      assertDigest(digest);
      const e = index.get(digest);
      if (e) {
        stats.hits++;
        touch(digest, e);
        const buf = mem.get(digest);
        if (buf) {
          mem.delete(digest);
          mem.set(digest, buf);
        } else if (memEligible(e.size) && !memLoading.has(digest)) {
          // A blob asked for again is hot: bring it into RAM in the background (it was verified when filled).
          memLoading.add(digest);
          readFile(pathOf(digest))
            .then((b) => b.length === e.size && memPut(digest, b))
            .catch(() => {})
            .finally(() => memLoading.delete(digest));
        }
        return { kind: 'hit', digest, size: e.size, path: pathOf(digest), buffer: buf };
      }
      const until = corruptUntil.get(digest);
      if (until !== undefined) {
        if (now() < until) throw new BlobCorruptError(digest, 'see earlier report');
        corruptUntil.delete(digest);
      }
      stats.misses++;
      let p = flights.get(digest);
      if (!p) {
        p = fill(digest);
        flights.set(digest, p);
        // A failed start (store down, no such blob) must not stick: the next request tries again.
        p.catch(() => flights.delete(digest));
      }
      const flight = await p;
      return { kind: 'fill', digest, size: flight.size, flight };
    },
    async ensure(digest) {
      const l = await cache.lookup(digest);
      if (l.kind === 'fill') await l.flight.done;
      return { path: pathOf(digest), size: l.size };
    },
    async open(l, start = 0, end = l.size - 1) {
      if (l.kind === 'fill') return l.flight.reader(start, end);
      if (l.buffer) return Readable.from([l.buffer.subarray(start, end + 1)], { objectMode: false });
      let fh: FileHandle;
      try {
        fh = await open(l.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // Evicted (or deleted by hand) between lookup and open: forget it and fill again.
        const e = index.get(l.digest);
        if (e) {
          index.delete(l.digest);
          stats.bytes -= e.size;
          stats.entries = index.size;
        }
        return cache.open(await cache.lookup(l.digest), start, end);
      }
      return createReadStream(l.path, { fd: fh, start, end, highWaterMark: CHUNK });
    },
    entries: () => [...index].map(([digest, e]) => ({ digest, size: e.size })),
  };
  return cache;
}
