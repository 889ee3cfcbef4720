// Named helpers for the image tests and the benchmark (STYLE.md #8): a fixed catalog, blob files with known
// digests, a counting S3 middleware, and an HTTP client that hashes bodies while streaming them.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import type { ImageCatalog, ResolvedImage } from '../../server/domain/images.ts';
import type { S3ImageStore } from '../../server/images/s3.ts';

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A catalog that answers from a fixed table: name/channel → image. */
export function fixedCatalog(table: Record<string, ResolvedImage>): ImageCatalog {
  return { resolve: async (name, channel) => table[`${name}/${channel}`] ?? null };
}

/** Random bytes written to DIR/NAME; returns path, digest and the bytes. */
export function blobFile(dir: string, name: string, size: number) {
  const data = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, data);
  return { path, data, digest: sha256(data), size };
}

/** Count S3 requests by command name (GetObjectCommand, PutObjectCommand, …) through SDK middleware. */
export function countS3Commands(store: S3ImageStore): Record<string, number> {
  const counts: Record<string, number> = {};
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = (context as { commandName?: string }).commandName ?? '?';
      counts[name] = (counts[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'bootfarmCountCommands' },
  );
  return counts;
}

export interface Fetched {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  digest: string;
  body: Buffer;
  /** the connection broke before the body ended */
  aborted: boolean;
}

/** GET/HEAD through node:http, keeping at most `keep` bytes of the body but hashing all of it. */
export function fetchBlob(url: string, { method = 'GET', headers = {}, agent, keep = 1 << 16 }: { method?: string; headers?: Record<string, string>; agent?: http.Agent; keep?: number } = {}): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const hash = createHash('sha256');
      const kept: Buffer[] = [];
      let bytes = 0;
      let settled = false;
      const done = (aborted: boolean) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, digest: hash.digest('hex'), body: Buffer.concat(kept), aborted });
      };
      res.on('data', (b: Buffer) => {
        hash.update(b);
        if (bytes < keep) kept.push(b.subarray(0, keep - bytes));
        bytes += b.length;
      });
      res.on('end', () => done(!res.complete));
      res.on('aborted', () => done(true));
      res.on('error', () => done(true));
      res.on('close', () => done(!res.complete));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Serve a hono app on 127.0.0.1 on a random port with the settings of tuneHttpServer. */
export async function listenApp(fetch: (req: Request, env: unknown) => Response | Promise<Response>): Promise<{ url: string; server: http.Server; close(): Promise<void> }> {
  const { createAdaptorServer } = await import('@hono/node-server');
  const { tuneHttpServer } = await import('../../server/images/serve.ts');
  const server = createAdaptorServer({ fetch }) as http.Server;
  tuneHttpServer(server);
  // A boot storm opens hundreds of connections at once: a deep accept queue avoids SYN retries.
  await new Promise<void>((r) => server.listen({ port: 0, host: '127.0.0.1', backlog: 2048 }, r));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * BrokenStore: a real store whose GET streams break after `failAfter` bytes, like RGW dying mid-transfer.
 * A fake because the break has to land at a known byte, which stopping a real gateway cannot promise.
 */
export function brokenStore(inner: import('../../server/images/store.ts').ImageStore, failAfter: number): import('../../server/images/store.ts').ImageStore {
  return {
    ...inner,
    stat: (d) => inner.stat(d),
    putFile: (d, p, o) => inner.putFile(d, p, o),
    putManifest: (m) => inner.putManifest(m),
    getManifest: (n, v) => inner.getManifest(n, v),
    async get(digest) {
      const { size, body } = await inner.get(digest);
      const { Readable } = await import('node:stream');
      async function* cut() {
        let n = 0;
        for await (const chunk of body as AsyncIterable<Buffer>) {
          const room = failAfter - n;
          if (chunk.length >= room) {
            if (room > 0) yield chunk.subarray(0, room);
            body.destroy();
            throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
          }
          n += chunk.length;
          yield chunk;
        }
      }
      return { size, body: Readable.from(cut(), { objectMode: false }) };
    },
  };
}
