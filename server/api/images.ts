// Admin API for images, mounted at /api/v1/images: list/show, blob upload + manifest registration (push),
// promote, rollback, channel history and gate figures. Errors are AppErrors; the API's one onError renders them.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { Role } from '../config.ts';
import { AppError } from '../errors.ts';
import { principalOf } from './auth.ts';
import { jsonBody, parseWith } from './validate.ts';
import { PromoteBody, RollbackBody } from './requests.ts';
import type { RouteDoc } from './openapi.ts';
import type { Mount } from './app.ts';
import type { Images } from '../images/index.ts';
import type { ImagePipeline } from '../images/pipeline.ts';
import { DIGEST_RE, type ImageStore } from '../images/store.ts';

const Digest = z.string().regex(DIGEST_RE, 'must be a sha256 digest: 64 lower-case hex characters');
const Blob = z.strictObject({ digest: Digest, size: z.number().int().min(1).optional() });

export const RegisterImageBody = z.strictObject({
  name: z.string().min(1).max(63),
  version: z.string().min(1).max(64),
  arch: z.string().min(1).max(32).optional(),
  kernel: Blob,
  initrd: Blob,
  cmdline: z.string().max(4096).optional(),
  notes: z.string().max(4096).optional(),
  /** channel to publish on (default: the first channel); null for none */
  channel: z.string().min(1).max(32).nullable().optional(),
  /** publish straight onto a gated channel (any but the first), skipping promotion (admin role only); recorded in history */
  force: z.boolean().optional(),
});

export { PromoteBody, RollbackBody };

const HistoryQuery = z.strictObject({ channel: z.string().min(1).max(32).optional(), limit: z.coerce.number().int().min(1).max(1000).optional() });

export const IMAGE_ROUTE_DOCS: RouteDoc[] = [
  { method: 'get', path: '/api/v1/images', summary: 'Image names with version counts and channel pointers', tag: 'images', auth: 'viewer' },
  { method: 'post', path: '/api/v1/images', summary: 'Register a version whose blobs are uploaded (kernel, initrd and cmdline are checked; 422 names the part); publishes on the first channel, a later one only with force (admin)', tag: 'images', auth: 'operator', request: RegisterImageBody },
  { method: 'get', path: '/api/v1/images/blobs/{digest}/upload', summary: 'Resumable upload: bytes staged so far (or complete when in the store)', tag: 'images', auth: 'operator' },
  { method: 'patch', path: '/api/v1/images/blobs/{digest}/upload', summary: 'Resumable upload: append a chunk at Upload-Offset (Upload-Length = blob size); verified by sha256 when complete', tag: 'images', auth: 'operator' },
  { method: 'get', path: '/api/v1/images/{name}', summary: 'Versions and channels of one image', tag: 'images', auth: 'viewer' },
  { method: 'get', path: '/api/v1/images/{name}/history', summary: 'Channel history (who, when, from, to, why)', tag: 'images', auth: 'viewer' },
  { method: 'get', path: '/api/v1/images/{name}/channels/{channel}/gates', summary: 'Promotion gate figures for the image on a channel', tag: 'images', auth: 'viewer' },
  { method: 'post', path: '/api/v1/images/{name}/promote', summary: 'Promote between channels if the gates pass', tag: 'images', auth: 'operator', request: PromoteBody },
  { method: 'post', path: '/api/v1/images/{name}/rollback', summary: 'Return a channel to its previous image', tag: 'images', auth: 'operator', request: RollbackBody },
];

export interface ImagesAdminOptions {
  pipeline: ImagePipeline;
  store: ImageStore;
  requireRole: (min: Role) => MiddlewareHandler;
  /** where uploads are staged until complete and verified; keep it across restarts so uploads resume */
  stagingDir?: string;
  /** largest blob accepted */
  maxBlobBytes?: number;
  /** chunk size the CLI is told to use; keep it under the API's body limit */
  chunkBytes?: number;
}

export function createImagesAdminApp({ pipeline: p, store, requireRole, stagingDir = join(tmpdir(), 'bootfarm-uploads'), maxBlobBytes = 4 * 1024 ** 3, chunkBytes = 2 * 1024 * 1024 }: ImagesAdminOptions) {
  const app = new Hono();
  const actor = (c: Parameters<typeof principalOf>[0]) => principalOf(c).name;

  app.get('/', requireRole('viewer'), async (c) => c.json({ images: await p.list(), channels: p.channels }));

  app.post('/', requireRole('operator'), async (c) => {
    const body = await jsonBody(c, RegisterImageBody);
    if (body.force && principalOf(c).role !== 'admin') throw new AppError(403, 'forbidden', 'pushing straight onto a gated channel needs the admin role');
    const r = await p.register({ ...body, actor: actor(c) });
    return c.json(r, r.created ? 201 : 200);
  });

  // Resumable blob upload (the offset protocol of tus 1.0, in small chunks that fit the API's body limit):
  // GET …/upload says how many bytes are staged; PATCH appends a chunk at Upload-Offset; when Upload-Length
  // bytes are staged the file must hash to its name, then goes to the store (resumable multipart on S3).
  // An interrupted `bootfarm image push` asks for the offset and continues from there.
  const busy = new Set<string>();
  const staged = async (digest: string) => {
    try {
      return (await stat(join(stagingDir, digest))).size;
    } catch {
      return 0;
    }
  };

  app.get('/blobs/:digest/upload', requireRole('operator'), async (c) => {
    const digest = parseWith(Digest, c.req.param('digest'));
    const inStore = await store.stat(digest);
    if (inStore) return c.json({ digest, offset: inStore.size, complete: true, chunkBytes });
    return c.json({ digest, offset: await staged(digest), complete: false, chunkBytes });
  });

  app.patch('/blobs/:digest/upload', requireRole('operator'), async (c) => {
    const digest = parseWith(Digest, c.req.param('digest'));
    const offset = Number(c.req.header('upload-offset'));
    const total = Number(c.req.header('upload-length'));
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(total) || total < 1)
      throw new AppError(400, 'bad_request', 'send Upload-Offset (bytes already staged) and Upload-Length (blob size) headers');
    if (total > maxBlobBytes) throw new AppError(413, 'payload_too_large', `blobs are limited to ${maxBlobBytes} bytes`);
    if (busy.has(digest)) throw new AppError(409, 'upload_busy', `another upload of ${digest} is in progress`, { digest });
    busy.add(digest);
    const path = join(stagingDir, digest);
    try {
      await mkdir(stagingDir, { recursive: true });
      const have = await staged(digest);
      if (offset !== have) throw new AppError(409, 'offset_mismatch', `the server has ${have} bytes of ${digest}; send from there`, { offset: have });
      const body = c.req.raw.body;
      if (body) {
        let size = have;
        const meter = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            size += chunk.length;
            if (size > total) return cb(new AppError(400, 'bad_request', `more bytes than Upload-Length (${total})`));
            cb(null, chunk);
          },
        });
        await pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream), meter, createWriteStream(path, { flags: 'a' }));
      }
      const now = await staged(digest);
      if (now < total) return c.json({ digest, offset: now, complete: false });
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
      const actual = hash.digest('hex');
      if (actual !== digest) {
        await rm(path, { force: true });
        throw new AppError(400, 'digest_mismatch', `the uploaded bytes hash to ${actual}, not ${digest}; the staged copy was discarded`, { expected: digest, actual });
      }
      await store.putFile(digest, path);
      await rm(path, { force: true });
      return c.json({ digest, offset: total, complete: true }, 201);
    } finally {
      busy.delete(digest);
    }
  });

  app.get('/:name', requireRole('viewer'), async (c) => c.json(await p.show(c.req.param('name'))));

  app.get('/:name/history', requireRole('viewer'), async (c) => {
    const q = parseWith(HistoryQuery, c.req.query());
    return c.json({ history: await p.history(c.req.param('name'), q.channel, q.limit) });
  });

  app.get('/:name/channels/:channel/gates', requireRole('viewer'), async (c) => c.json(await p.gateReport(c.req.param('name'), c.req.param('channel'))));

  app.post('/:name/promote', requireRole('operator'), async (c) => {
    const body = await jsonBody(c, PromoteBody);
    if (body.force && principalOf(c).role !== 'admin') throw new AppError(403, 'forbidden', 'overriding promotion gates needs the admin role');
    return c.json(await p.promote({ name: c.req.param('name'), ...body, actor: actor(c) }));
  });

  app.post('/:name/rollback', requireRole('operator'), async (c) => {
    const body = await jsonBody(c, RollbackBody);
    return c.json(await p.rollback({ name: c.req.param('name'), ...body, actor: actor(c) }));
  });

  return app;
}

/** For createApp's `extra`: the admin API at /api/v1/images. (The route file lives in api/, above images/, so
 * the image area never imports HTTP helpers from the API layer.) */
export function imagesMount(images: Images): (requireRole: (min: Role) => MiddlewareHandler) => Mount {
  const { config: cfg } = images;
  return (requireRole) => ({
    at: '/api/v1/images',
    app: createImagesAdminApp({ pipeline: images.pipeline, store: images.store, requireRole, stagingDir: images.stagingDir, maxBlobBytes: cfg.maxBlobBytes, chunkBytes: cfg.uploadChunkBytes }),
    docs: IMAGE_ROUTE_DOCS,
  });
}
