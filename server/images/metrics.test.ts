// Image cache metrics (issue 17 item 6): real GETs through the serve app and the disk cache in front of the local
// store move the /metrics counters by exactly what happened — misses filled from the store, a hit from disk, a
// blob the store does not have, a store body that breaks midway, and an LRU eviction.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { blobFile, brokenStore, fetchBlob, fixedCatalog, listenApp } from '../../test/fakes/images.ts';
import { createBlobCache } from './cache.ts';
import { createLocalStore } from './local.ts';
import { createImageMetrics } from './metrics.ts';
import { createImageServeApp } from './serve.ts';
import type { ImageStore } from './store.ts';
import { sample } from '../../test/support/metrics.ts';

const KiB = 1024;
const MAX = 1024 * KiB;
let tmp: string;
let srv: Awaited<ReturnType<typeof listenApp>>;
const registry = new Registry();
let blobs: Record<'kernel' | 'initrd' | 'later' | 'bad', ReturnType<typeof blobFile>>;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'bf-img-metrics-'));
  const local = createLocalStore({ dir: join(tmp, 'store'), stagingDir: join(tmp, 'uploads') });
  blobs = {
    kernel: blobFile(tmp, 'vmlinuz', 300 * KiB),
    initrd: blobFile(tmp, 'initrd', 600 * KiB),
    later: blobFile(tmp, 'later', 400 * KiB),
    bad: blobFile(tmp, 'bad', 200 * KiB),
  };
  for (const b of Object.values(blobs)) await local.putFile(b.digest, b.path);
  // the store's body for `bad` breaks after 64 KiB (an RGW connection reset midway)
  const broken = brokenStore(local, 64 * KiB);
  const store: ImageStore = { ...local, get: (d) => (d === blobs.bad.digest ? broken.get(d) : local.get(d)) };
  const m = createImageMetrics(registry);
  // no RAM tier: a second request is a disk hit, deterministically (the RAM tier loads in the background)
  const cache = await createBlobCache({ dir: join(tmp, 'cache'), store, maxBytes: MAX, memoryBytes: 0, onCorrupt: m.onCorrupt, onFill: m.onFill });
  m.attach(cache, MAX);
  srv = await listenApp(createImageServeApp({ cache, store, catalog: fixedCatalog({}), onServed: m.onServed }).fetch);
});
afterAll(async () => {
  await srv?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

it('misses, a disk hit, a missing blob, a broken store body and an eviction are counted', async () => {
  const get = (digest: string) => fetchBlob(`${srv.url}/images/${digest}`);
  const k1 = await get(blobs.kernel.digest);
  expect([k1.status, k1.digest]).toEqual([200, blobs.kernel.digest]);
  const k2 = await get(blobs.kernel.digest);
  expect([k2.status, k2.digest]).toEqual([200, blobs.kernel.digest]);
  expect((await get('0'.repeat(64))).status).toBe(404);
  const bad = await get(blobs.bad.digest);
  expect(bad.aborted).toBe(true);
  expect((await get(blobs.initrd.digest)).digest).toBe(blobs.initrd.digest);
  // 300 + 600 KiB fit the 1 MiB cache; 400 more evict the least recently used (the kernel)
  expect((await get(blobs.later.digest)).digest).toBe(blobs.later.digest);

  const text = await registry.metrics();
  const good = blobs.kernel.size + blobs.initrd.size + blobs.later.size;
  expect(sample(text, 'bootfarm_image_cache_requests_total', { result: 'hit' })).toBe(1);
  expect(sample(text, 'bootfarm_image_cache_requests_total', { result: 'miss' })).toBe(5);
  expect(sample(text, 'bootfarm_image_store_fetches_total')).toBe(5);
  expect(sample(text, 'bootfarm_image_store_errors_total', { kind: 'not_found' })).toBe(1);
  expect(sample(text, 'bootfarm_image_store_errors_total', { kind: 'broken_stream' })).toBe(1);
  expect(sample(text, 'bootfarm_image_store_errors_total', { kind: 'unavailable' })).toBe(0);
  expect(sample(text, 'bootfarm_image_store_fetch_duration_seconds_count', { result: 'ok' })).toBe(3);
  expect(sample(text, 'bootfarm_image_store_fetch_duration_seconds_count', { result: 'failed' })).toBe(1);
  expect(sample(text, 'bootfarm_image_store_fetch_duration_seconds_count', { result: 'corrupt' })).toBe(0);
  // the three good blobs whole, and what came of the broken one before it broke
  const fetched = sample(text, 'bootfarm_image_store_fetched_bytes_total')!;
  expect(fetched).toBeGreaterThanOrEqual(good);
  expect(fetched).toBeLessThanOrEqual(good + 64 * KiB);
  // bodies started: every miss streamed from its fill (the broken one promised its full length), the hit from disk
  expect(sample(text, 'bootfarm_image_served_bytes_total', { source: 'fill' })).toBe(good + blobs.bad.size);
  expect(sample(text, 'bootfarm_image_served_bytes_total', { source: 'disk' })).toBe(blobs.kernel.size);
  expect(sample(text, 'bootfarm_image_served_bytes_total', { source: 'memory' })).toBe(0);
  expect(sample(text, 'bootfarm_image_cache_evictions_total')).toBe(1);
  expect(sample(text, 'bootfarm_image_cache_entries')).toBe(2);
  expect(sample(text, 'bootfarm_image_cache_bytes')).toBe(blobs.initrd.size + blobs.later.size);
  expect(sample(text, 'bootfarm_image_cache_max_bytes')).toBe(MAX);
  expect(sample(text, 'bootfarm_image_corrupt_blobs_total')).toBe(0);
});
