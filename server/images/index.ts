// Wiring for the image area: the `images:` config section (validated here, as config.ts leaves it to us),
// and one factory main calls to get the store, cache, pipeline, catalog and the two hono apps.
import { join } from 'node:path';
import { z } from 'zod';
import type { Registry } from 'prom-client';
import type { Db } from '../db/index.ts';
import { parseSection } from '../config.ts';
import { systemClock, type Clock } from '../clock.ts';
import { createAuditStore } from '../store/audit.ts';
import { createBlobCache, type CacheLogger } from './cache.ts';
import { createLocalStore } from './local.ts';
import { createS3Store } from './s3.ts';
import { createImagePipeline, type FleetBreaker } from './pipeline.ts';
import { createImageServeApp } from './serve.ts';
import { createImageMetrics } from './metrics.ts';
import { createUploads } from './uploads.ts';
import type { ImageStore } from './store.ts';

const GiB = 1024 ** 3;
const ChannelName = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'channel names are lower-case words');

export const ImagesConfig = z.strictObject({
  store: z
    .discriminatedUnion('kind', [
      z.strictObject({ kind: z.literal('local'), dir: z.string().min(1).optional() }),
      z.strictObject({
        kind: z.literal('s3'),
        endpoint: z.url(),
        region: z.string().default('default'),
        bucket: z.string().min(3).max(63),
        accessKeyId: z.string().min(1),
        secretAccessKey: z.string().min(1),
        prefix: z.string().default(''),
        partSizeMiB: z.coerce.number().int().min(5).max(1024).default(8),
        /** create the bucket at start-up when it does not exist */
        createBucket: z.boolean().default(false),
      }),
    ])
    .default({ kind: 'local' }),
  cache: z
    .strictObject({
      dir: z.string().min(1).optional(),
      maxBytes: z.coerce.number().int().min(1024 * 1024).default(20 * GiB),
      corruptHoldSeconds: z.coerce.number().int().min(0).default(30),
    })
    .prefault({}),
  /** answer GET /images/:digest with 302 to a presigned S3 URL instead of serving it */
  redirect: z.strictObject({ enabled: z.boolean().default(false), expiresInSeconds: z.coerce.number().int().min(10).max(86400).default(300) }).prefault({}),
  retryAfterSeconds: z.coerce.number().int().min(1).default(5),
  channels: z.array(ChannelName).min(1).default(['dev', 'canary', 'prod']),
  gates: z
    .strictObject({
      minActiveNodes: z.coerce.number().int().min(0).default(3),
      minSuccessRatio: z.coerce.number().min(0).max(1).default(0.95),
      windowHours: z.coerce.number().positive().default(24),
      noQuarantined: z.boolean().default(true),
    })
    .prefault({}),
  rollback: z
    .strictObject({
      enabled: z.boolean().default(true),
      maxFailureRatio: z.coerce.number().min(0).max(1).default(0.3),
      minSamples: z.coerce.number().int().min(1).default(3),
      windowMinutes: z.coerce.number().positive().default(60),
    })
    .prefault({}),
  maxBlobBytes: z.coerce.number().int().min(1).default(4 * GiB),
  /** upload chunk size for the resumable protocol with the local store (the S3 store uses its part size,
   * at least 5 MiB, S3's minimum); the upload route takes bodies up to this size whatever http.bodyLimitBytes says */
  uploadChunkBytes: z.coerce.number().int().min(64 * 1024).default(2 * 1024 * 1024),
  uploads: z
    .strictObject({
      /** local store only: where upload parts wait until complete (default <dataDir>/images/uploads). With several
       * replicas this directory must be shared by all of them (NFS), like the store directory itself. */
      dir: z.string().min(1).optional(),
      /** an upload idle for longer is aborted (AbortMultipartUpload on S3) by the sweep */
      ttlHours: z.coerce.number().positive().default(24),
    })
    .prefault({}),
});
export type ImagesConfig = z.infer<typeof ImagesConfig>;

export interface ImagesDeps {
  /** dataDir and the `images` section: raw (validated here) or already parsed with parseSection('images', ImagesConfig, …) */
  config: { dataDir: string; images?: unknown };
  db: Db;
  log: CacheLogger & { child?: unknown };
  clock?: Clock;
  metrics?: Registry;
  /** the fleet's circuit breaker for the rollback gate (main wires the fleet controller's); default: never open */
  breaker?: FleetBreaker;
  /** counts image bodies in flight for the boot budget (budget.ts) */
  transfer?: () => () => void;
}

export async function createImages({ config, db, log, clock, metrics, breaker, transfer }: ImagesDeps) {
  // Errors name the setting (images.store.bucket: …) like the rest of the configuration.
  const cfg = parseSection('images', ImagesConfig, config.images);
  const base = join(config.dataDir, 'images');
  let store: ImageStore;
  if (cfg.store.kind === 's3') {
    const s3 = createS3Store({ ...cfg.store, partSize: cfg.store.partSizeMiB * 1024 * 1024 });
    if (cfg.store.createBucket) await s3.ensureBucket();
    store = s3;
  } else {
    store = createLocalStore({ dir: cfg.store.dir ?? join(base, 'store'), stagingDir: cfg.uploads.dir ?? join(base, 'uploads') });
  }
  const uploads = createUploads({
    db,
    store,
    clock,
    chunkBytes: cfg.store.kind === 's3' ? cfg.store.partSizeMiB * 1024 * 1024 : cfg.uploadChunkBytes,
    maxBlobBytes: cfg.maxBlobBytes,
    ttlMs: cfg.uploads.ttlHours * 3600_000,
    log,
  });
  const m = metrics ? createImageMetrics(metrics) : undefined;
  const cache = await createBlobCache({
    dir: cfg.cache.dir ?? join(base, 'cache'),
    store,
    maxBytes: cfg.cache.maxBytes,
    corruptHoldMs: cfg.cache.corruptHoldSeconds * 1000,
    logger: log,
    onCorrupt: m?.onCorrupt,
    onFill: m?.onFill,
  });
  m?.attach(cache, cfg.cache.maxBytes);
  const pipeline = createImagePipeline({
    db,
    store,
    channels: cfg.channels,
    gates: { minActiveNodes: cfg.gates.minActiveNodes, minSuccessRatio: cfg.gates.minSuccessRatio, windowMs: cfg.gates.windowHours * 3600_000, noQuarantined: cfg.gates.noQuarantined },
    rollback: { maxFailureRatio: cfg.rollback.maxFailureRatio, minSamples: cfg.rollback.minSamples, windowMs: cfg.rollback.windowMinutes * 60_000 },
    clock,
    log,
    breaker,
  });
  const serveApp = createImageServeApp({
    cache,
    store,
    catalog: pipeline.catalog,
    redirect: cfg.redirect.enabled ? { expiresInSeconds: cfg.redirect.expiresInSeconds } : false,
    retryAfterSeconds: cfg.retryAfterSeconds,
    logger: log,
    transfer,
    onServed: m?.onServed,
  });
  return {
    config: cfg,
    store,
    cache,
    pipeline,
    catalog: pipeline.catalog,
    /** mount at '/': GET/HEAD /images/:digest and /images/by-name/:name/:channel/kernel|initrd */
    serveApp,
    /** resumable uploads tracked in the database (the admin API, server/api/images.ts `imagesMount`, uses it) */
    uploads,
    /** the audit log over this area's database, for an admin app mounted without createApp (tests, tools) */
    audit: createAuditStore(db, { clock: clock ?? systemClock }),
    /** abort uploads idle for longer than images.uploads.ttlHours (any replica may call it; main runs it on the leader) */
    sweepUploads: () => uploads.sweep(),
    /** one rollback-controller tick (call from the leader's loop); a no-op when rollback is disabled */
    evaluateRollbacks: async () => (cfg.rollback.enabled ? pipeline.evaluateAllRollbacks() : []),
  };
}

export type Images = Awaited<ReturnType<typeof createImages>>;
