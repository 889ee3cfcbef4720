// Serving image blobs to booting nodes: GET/HEAD /images/:digest and the names iPXE scripts use,
// /images/by-name/:name/:channel/kernel|initrd. Bytes come from the local cache (cache.ts), which fills a miss
// from the store once however many nodes ask. HTTP semantics follow RFC 9110: strong ETag = the digest
// (§8.8.3), If-None-Match (§13.1.2), single byte ranges incl. suffix ranges and If-Range (§14), 416 with
// "bytes */size" for an unsatisfiable range (§15.5.17), Retry-After on 503 (§10.2.3).
import type { Server } from 'node:http';
import { ServerResponse } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import { Hono, type Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { ImageCatalog } from '../domain/images.ts';
import { BlobCorruptError, type BlobCache, type CacheLogger, type Lookup } from './cache.ts';
import { BlobNotFoundError, DIGEST_RE, StoreUnavailableError, type ImageStore } from './store.ts';

export interface ImageServeOptions {
  cache: BlobCache;
  catalog: ImageCatalog;
  /** needed for HEAD of uncached blobs and for redirect mode */
  store: ImageStore;
  /** answer GETs with 302 to a presigned store URL instead of serving bytes (S3 only) */
  redirect?: false | { expiresInSeconds: number };
  retryAfterSeconds?: number;
  logger?: CacheLogger;
  /** counts image bodies in flight (the boot budget, budget.ts): called when one starts, returns its release */
  transfer?: () => () => void;
  /** told for every GET body started: where its bytes come from and how many (Content-Length) — the RAM tier,
   * the disk cache, or a fill from the store in progress (a miss) */
  onServed?: (source: ServedFrom, bytes: number) => void;
}

export type ServedFrom = 'memory' | 'disk' | 'fill';
const servedFrom = (l: Lookup): ServedFrom => (l.kind === 'fill' ? 'fill' : l.buffer ? 'memory' : 'disk');

type ErrorCode = 'bad_request' | 'not_found' | 'store_unavailable' | 'blob_corrupt' | 'range_not_satisfiable';

export function errorBody(code: ErrorCode | string, message: string, details?: unknown) {
  return { error: { code, message, ...(details === undefined ? {} : { details }) } };
}

/** RFC 9110 §14.1.2 byte-range-spec / suffix-byte-range-spec, one range only. */
export type RangeResult = { kind: 'none' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

export function parseRange(header: string | undefined, size: number): RangeResult {
  if (!header) return { kind: 'none' };
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  // Unparseable or multi-range: a server MAY ignore Range and send the whole representation (§14.2).
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'none' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  let end = m[2] === '' ? size - 1 : Number(m[2]);
  if (m[2] !== '' && end < start) return { kind: 'none' }; // invalid: ignore (§14.1.1)
  if (start >= size) return { kind: 'unsatisfiable' };
  end = Math.min(end, size - 1);
  return { kind: 'range', start, end };
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  // weak comparison (§13.1.2): W/ prefixes are ignored
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/**
 * Settings the HTTP server needs for iPXE: it keeps idle connections for 10 s and reuses them for the
 * kernel and initrd, so the server must keep them longer (15 s). headersTimeout must exceed keepAliveTimeout
 * or Node closes reused sockets early. requestTimeout bounds receiving a request, not sending a 30 MB body.
 */
export function tuneHttpServer(server: Server, { keepAliveMs = 15_000 } = {}): void {
  server.keepAliveTimeout = keepAliveMs;
  server.headersTimeout = keepAliveMs + 5_000;
  server.requestTimeout = 300_000;
  server.maxRequestsPerSocket = 0;
}

export function createImageServeApp({ cache, catalog, store, redirect = false, retryAfterSeconds = 5, logger, transfer, onServed }: ImageServeOptions) {
  const app = new Hono();

  const fail = (c: Context, err: unknown, digest: string) => {
    if (err instanceof BlobNotFoundError) return c.json(errorBody('not_found', `no blob ${digest} in the image store`, { digest }), 404);
    if (err instanceof StoreUnavailableError) {
      c.header('Retry-After', String(retryAfterSeconds));
      return c.json(errorBody('store_unavailable', `the image store is unreachable and ${digest} is not cached; retry later`, { digest, retryAfterSeconds }), 503);
    }
    if (err instanceof BlobCorruptError) {
      c.header('Retry-After', String(retryAfterSeconds * 6));
      return c.json(errorBody('blob_corrupt', err.message, { digest }), 502);
    }
    logger?.error({ digest, err: String(err) }, 'image serving failed');
    return c.json(errorBody('internal', 'image serving failed', { digest }), 500);
  };

  /** Write status + headers (+ body stream) straight to Node's response when we have it: no web-stream hop. */
  const send = (c: Context, status: number, headers: Record<string, string>, body: Readable | Buffer | null) => {
    const outgoing = (c.env as { outgoing?: unknown } | undefined)?.outgoing;
    // Hono answers HEAD by dispatching GET and re-wrapping the Response, so HEAD (and bodiless answers) must
    // go back through hono rather than write to the socket directly.
    if (body && outgoing instanceof ServerResponse) {
      // one slot of the boot budget until the response is over: 'close' comes after the last byte is handed to the
      // kernel, and also when the client goes away or the socket is destroyed mid-body
      if (transfer) outgoing.once('close', transfer());
      outgoing.writeHead(status, headers);
      // A hot blob from the memory tier: one write, no copies in JS, the kernel drains it.
      if (Buffer.isBuffer(body)) {
        outgoing.end(body);
        return RESPONSE_ALREADY_SENT;
      }
      pipeline(body, outgoing, (err) => {
        // A broken fill or a corrupt blob: the socket is destroyed, so the client sees fewer bytes than
        // Content-Length promised and retries — never a complete-looking response.
        if (err && !outgoing.destroyed) outgoing.destroy(err);
      });
      return RESPONSE_ALREADY_SENT;
    }
    // without Node's response (an in-process request): a stream holds its slot until it closes
    if (body && !Buffer.isBuffer(body) && transfer) body.once('close', transfer());
    if (Buffer.isBuffer(body)) return new Response(new Uint8Array(body.buffer, body.byteOffset, body.length), { status, headers });
    return new Response(body ? (Readable.toWeb(body) as ReadableStream) : null, { status, headers });
  };

  const serveDigest = async (c: Context, digest: string, extra: Record<string, string>) => {
    const head = c.req.method === 'HEAD';
    const etag = `"${digest}"`;
    const base: Record<string, string> = {
      etag,
      'accept-ranges': 'bytes',
      'cache-control': 'public, max-age=31536000, immutable',
      ...extra,
    };
    if (etagMatches(c.req.header('if-none-match'), etag)) return send(c, 304, base, null);
    if (redirect && store.presign && !head && !cache.has(digest)) {
      try {
        return c.redirect(await store.presign(digest, redirect.expiresInSeconds), 302);
      } catch (err) {
        return fail(c, err, digest);
      }
    }
    try {
      let size: number;
      let l: Lookup | undefined;
      if (head && !cache.has(digest)) {
        // HEAD does not start a fill: ask the store for the size only.
        const s = await store.stat(digest);
        if (!s) throw new BlobNotFoundError(digest);
        size = s.size;
      } else {
        l = await cache.lookup(digest);
        size = l.size;
      }
      const ifRange = c.req.header('if-range');
      const range = ifRange && ifRange.trim() !== etag ? ({ kind: 'none' } as const) : parseRange(c.req.header('range'), size);
      const headers: Record<string, string> = { ...base, 'content-type': 'application/octet-stream' };
      if (range.kind === 'unsatisfiable') {
        return send(c, 416, { ...base, 'content-range': `bytes */${size}`, 'content-length': '0' }, null);
      }
      if (range.kind === 'range') {
        headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
        headers['content-length'] = String(range.end - range.start + 1);
        if (head) return send(c, 206, headers, null);
        // A range is served only from a verified cache entry, never from a fill in progress.
        if (l?.kind !== 'hit') {
          await cache.ensure(digest);
          l = await cache.lookup(digest);
        }
        onServed?.(servedFrom(l), range.end - range.start + 1);
        if (l.kind === 'hit' && l.buffer) return send(c, 206, headers, l.buffer.subarray(range.start, range.end + 1));
        return send(c, 206, headers, await cache.open(l, range.start, range.end));
      }
      headers['content-length'] = String(size);
      if (head) return send(c, 200, headers, null);
      l ??= await cache.lookup(digest);
      onServed?.(servedFrom(l), size);
      if (l.kind === 'hit' && l.buffer) return send(c, 200, headers, l.buffer);
      return send(c, 200, headers, await cache.open(l));
    } catch (err) {
      return fail(c, err, digest);
    }
  };

  app.on(['GET', 'HEAD'], '/images/by-name/:name/:channel/:part', async (c) => {
    const { name, channel, part } = c.req.param();
    if (part !== 'kernel' && part !== 'initrd') return c.json(errorBody('bad_request', `unknown image part ${JSON.stringify(part)}: use kernel or initrd`), 400);
    const img = await catalog.resolve(name, channel);
    if (!img) return c.json(errorBody('not_found', `nothing is published on channel ${channel} of image ${name}`, { name, channel }), 404);
    const digest = img[part].digest;
    // The channel can move: tell caches to revalidate the name (the digest URL itself is immutable).
    return serveDigest(c, digest, { 'cache-control': 'no-cache', 'x-image-version': img.version, 'x-image-digest': digest });
  });

  app.on(['GET', 'HEAD'], '/images/:digest', async (c) => {
    const digest = c.req.param('digest').replace(/^sha256:/, '');
    if (!DIGEST_RE.test(digest)) return c.json(errorBody('bad_request', 'an image blob is named by its sha256: 64 lower-case hex characters', { digest: digest.slice(0, 80) }), 400);
    return serveDigest(c, digest, {});
  });

  return app;
}
