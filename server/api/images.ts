// Admin API for images, mounted at /api/v1/images: list/show, blob upload + manifest registration (push),
// promote, rollback, channel history and gate figures. Errors are AppErrors; the API's one onError renders them.
import { Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { Role } from '../config.ts';
import { AppError } from '../errors.ts';
import { principalOf } from './auth.ts';
import { audited, provideAudit } from './audit-context.ts';
import type { AuditStore } from '../store/audit.ts';
import { jsonBody, parseWith } from './validate.ts';
import { PromoteBody, RollbackBody } from './requests.ts';
import type { RouteDoc } from './openapi.ts';
import type { Mount } from './app.ts';
import type { Images } from '../images/index.ts';
import type { Uploads } from '../images/uploads.ts';
import { errorResponse } from './errors.ts';
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
  { method: 'get', path: '/api/v1/images/blobs/{digest}/upload', summary: 'Resumable upload: bytes the server has (any replica), complete when in the store, and chunkBytes to send', tag: 'images', auth: 'operator' },
  { method: 'patch', path: '/api/v1/images/blobs/{digest}/upload', summary: 'Resumable upload: the chunk at Upload-Offset (Upload-Length = blob size, optional Upload-Checksum: sha256 <base64>); every chunk but the last at least minChunkBytes (S3: 5 MiB); the blob is committed only if it hashes to its digest', tag: 'images', auth: 'operator' },
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
  /** the audit log, when this app is mounted without createApp (which provides one to every route) */
  audit?: AuditStore;
  /** resumable uploads (server/images/uploads.ts): tracked in the database, parts in the store */
  uploads: Uploads;
  /** largest blob accepted */
  maxBlobBytes?: number;
}

/** The upload route takes chunks bigger than http.bodyLimitBytes (an S3 part is at least 5 MiB): app.ts leaves
 * paths matching this to the route's own limit. */
export const UPLOAD_PATH = /^\/api\/v1\/images\/blobs\/[^/]+\/upload$/;

export function createImagesAdminApp({ audit, pipeline: p, requireRole, uploads, maxBlobBytes = 4 * 1024 ** 3 }: ImagesAdminOptions) {
  const app = new Hono();
  if (audit) app.use(provideAudit(audit, { ifMissing: true }));
  const actor = (c: Parameters<typeof principalOf>[0]) => principalOf(c).name;

  app.get('/', requireRole('viewer'), async (c) => c.json({ images: await p.list(), channels: p.channels }));

  app.post('/', requireRole('operator'), async (c) => {
    const body = await jsonBody(c, RegisterImageBody);
    if (body.force && principalOf(c).role !== 'admin') throw new AppError(403, 'forbidden', 'pushing straight onto a gated channel needs the admin role');
    const r = await audited(c, 'image.push', { kind: 'image', id: `${body.name}:${body.version}` }, (audit) => p.register({ ...body, actor: actor(c), audit }), (r) => ({ action: 'image.push.unchanged', after: { version: r.image.version, created: r.created } }));
    return c.json(r, r.created ? 201 : 200);
  });

  // Resumable blob upload (the offset protocol of tus 1.0): GET …/upload says how many bytes the server has and
  // the chunk size to use; PATCH sends the chunk at Upload-Offset (Upload-Length = blob size, optional
  // Upload-Checksum: sha256 <base64> of the chunk). The upload lives in the database and the store
  // (server/images/uploads.ts), so any replica continues it; the last chunk is checked against the digest
  // before the blob appears under it. An interrupted `bootfarm image push` asks for the offset and continues.
  app.get('/blobs/:digest/upload', requireRole('operator'), async (c) => {
    const digest = parseWith(Digest, c.req.param('digest'));
    return c.json({ ...(await uploads.status(digest)), chunkBytes: uploads.chunkBytes, minChunkBytes: uploads.minChunkBytes });
  });

  app.patch(
    '/blobs/:digest/upload',
    requireRole('operator'),
    // this route's own limit (app.ts leaves it out of http.bodyLimitBytes): one chunk
    bodyLimit({
      maxSize: uploads.chunkBytes,
      onError: (c) => errorResponse(c, new AppError(413, 'payload_too_large', `a chunk may hold at most ${uploads.chunkBytes} bytes (chunkBytes of GET …/upload)`)),
    }),
    async (c) => {
      const digest = parseWith(Digest, c.req.param('digest'));
      const offset = Number(c.req.header('upload-offset'));
      const total = Number(c.req.header('upload-length'));
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(total) || total < 1)
        throw new AppError(400, 'bad_request', 'send Upload-Offset (bytes already staged) and Upload-Length (blob size) headers');
      if (total > maxBlobBytes) throw new AppError(413, 'payload_too_large', `blobs are limited to ${maxBlobBytes} bytes`);
      const checksum = c.req.header('upload-checksum');
      let chunkSha256: string | undefined;
      if (checksum !== undefined) {
        const m = /^sha256 ([A-Za-z0-9+/]{43}=)$/.exec(checksum.trim());
        if (!m) throw new AppError(400, 'bad_request', 'Upload-Checksum must be "sha256 " and the chunk\'s sha256 in base64 (44 characters)');
        chunkSha256 = m[1];
      }
      const data = Buffer.from(await c.req.arrayBuffer());
      const r = await uploads.append({ digest, offset, total, data, chunkSha256, actor: actor(c) });
      // one audit row per completed blob, not per chunk: the verified blob is what changed in the store
      if (r.complete) await audited(c, 'image.blob.upload', { kind: 'blob', id: digest }, async () => total, (size) => ({ after: { size } }));
      return c.json(r, r.complete ? 201 : 200);
    },
  );

  app.get('/:name', requireRole('viewer'), async (c) => c.json(await p.show(c.req.param('name'))));

  app.get('/:name/history', requireRole('viewer'), async (c) => {
    const q = parseWith(HistoryQuery, c.req.query());
    return c.json({ history: await p.history(c.req.param('name'), q.channel, q.limit) });
  });

  app.get('/:name/channels/:channel/gates', requireRole('viewer'), async (c) => c.json(await p.gateReport(c.req.param('name'), c.req.param('channel'))));

  app.post('/:name/promote', requireRole('operator'), async (c) => {
    const body = await jsonBody(c, PromoteBody);
    if (body.force && principalOf(c).role !== 'admin') throw new AppError(403, 'forbidden', 'overriding promotion gates needs the admin role');
    const name = c.req.param('name');
    return c.json(await audited(c, 'image.promote', { kind: 'image', id: name }, (audit) => p.promote({ name, ...body, actor: actor(c), audit })));
  });

  app.post('/:name/rollback', requireRole('operator'), async (c) => {
    const body = await jsonBody(c, RollbackBody);
    const name = c.req.param('name');
    return c.json(await audited(c, 'image.rollback', { kind: 'image', id: name }, (audit) => p.rollback({ name, ...body, actor: actor(c), audit })));
  });

  return app;
}

/** For createApp's `extra`: the admin API at /api/v1/images. (The route file lives in api/, above images/, so
 * the image area never imports HTTP helpers from the API layer.) */
export function imagesMount(images: Images): (requireRole: (min: Role) => MiddlewareHandler) => Mount {
  const { config: cfg } = images;
  return (requireRole) => ({
    at: '/api/v1/images',
    app: createImagesAdminApp({ audit: images.audit, pipeline: images.pipeline, store: images.store, requireRole, uploads: images.uploads, maxBlobBytes: cfg.maxBlobBytes }),
    docs: IMAGE_ROUTE_DOCS,
    ownBodyLimit: UPLOAD_PATH,
  });
}
